"""Blob references (:mod:`.refs`: how many index entries refer to each blob) and
their garbage collector (:mod:`.gc`).  The bodies themselves live in a blob store
(``server.blobs``); this layer keeps only their counts, sizes and GC markers."""

"""The node: one composition root (:mod:`.parts`) used by a one-process node and by each
worker process, the services it serves (:mod:`.service`, registered in
:mod:`.services`), the worker pool (:mod:`.pool`, :mod:`.worker`), the HTTP server
(:mod:`.http`) and the leased periodic jobs (:mod:`.jobs`).  :class:`.node.Node` is
the node itself; ``fdbmail serve`` runs :func:`.node.serve`."""

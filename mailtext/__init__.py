"""Pure text algorithms of Internet mail that both the store layers (``fdb_layers``) and the
node (``server``) need: no I/O, no imports from either, so each can use them without one
importing the other.  Today: RFC 5256 base subjects and the RFC 5051 i;unicode-casemap
comparison form (:mod:`mailtext.subjects`)."""

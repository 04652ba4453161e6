"""Pure parsing and serialising of IMAP (RFC 9051, RFC 3501 and extensions): no sockets, no clocks.

* :mod:`.framing` — :class:`~.framing.CommandReader`, the connection-level reader: bytes in,
  commands / literal continuation requests / rejections out; AUTHENTICATE and IDLE modes.
* :mod:`.parser` — one complete command to a frozen dataclass of :mod:`.commands`, with
  :mod:`.lexer` (grammar primitives), :mod:`.search` (search keys), :mod:`.fetch` (fetch
  attributes), :mod:`.sequence` (sequence sets with ``*`` and ``$``), :mod:`.mutf7` (names).
* :mod:`.responses` — the server's responses and response codes as bytes; :mod:`.values`
  chooses atom / quoted / literal / literal8.
* :mod:`.render_command` — the inverse of the parser (the client's side, used by the tests).
"""

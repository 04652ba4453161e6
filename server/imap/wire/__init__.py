"""Pure parsing and serialising of IMAP (RFC 9051, RFC 3501 and extensions): no sockets, no clocks.

* :mod:`.framing` — :class:`~.framing.CommandReader`, the connection-level reader: bytes in,
  commands / literal continuation requests / rejections out; AUTHENTICATE and IDLE modes.
* :mod:`.parser` — one complete command to a frozen dataclass of :mod:`.commands`, with
  :mod:`.lexer` (grammar primitives), :mod:`.search` (search keys), :mod:`.fetch` (fetch
  attributes), :mod:`.sequence` (sequence sets with ``*`` and ``$``), :mod:`.mutf7` (names).
* :mod:`.responses` — status responses, response codes, continuation requests and untagged
  data as bytes; :mod:`.fetch_data` — FETCH data item by item; :mod:`.values` chooses atom /
  quoted / literal / literal8.
* :mod:`.render_command` — the inverse of the parser (the client's side, used by the tests).

How a session drives it (the I/O loop owns the socket, the session owns the state)::

    reader = CommandReader(Limits(max_upload=appendlimit))
    reader.feed(data)
    while (event := reader.next_event()) is not NEED_DATA:
        if isinstance(event, ContinuationRequired):
            write(Continuation().render())              # the client then sends the literal
        elif isinstance(event, Rejected):
            write(event.response().render(utf8))        # BAD / NO [TOOBIG]; stream in sync
        elif isinstance(event, (AuthenticateLine, IdleDone)):
            ...                                         # after reader.set_mode(...)
        else:
            ...                                         # a command: dispatch on its type

After ``ENABLE IMAP4rev2`` or ``UTF8=ACCEPT`` the session calls ``reader.set_utf8(True)`` and
renders responses with ``utf8=True``; after STARTTLS it drops ``reader.take_buffered()``.
"""

"""IMAP4rev2 / IMAP4rev1 (RFC 9051, RFC 3501) and its extensions: :mod:`.wire` is the pure parser
and serializer; the session state machine and the listener come on top of it."""

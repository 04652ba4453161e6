"""Pure parsing of what arrives on an SMTP connection (no sockets, no clocks): the arguments
of MAIL and RCPT (:mod:`.path`) and the framing of DATA (:mod:`.data`)."""

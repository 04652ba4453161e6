"""The mail layer: accounts, mailboxes, messages, keywords, threads, quota, changes.

What protocols (IMAP, JMAP, the delivery pipeline) may call is listed in
:mod:`.api`; the other modules are its parts."""

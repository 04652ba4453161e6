"""What every network service of a node shares: listen addresses, connection limits,
connection ids and TLS contexts.  Protocol-neutral: no module here knows SMTP or IMAP."""

"""Sending mail: the outbound queue's users (see ``fdb_layers.queue``).

* :mod:`.settings`: the ``[outbound]`` section;
* :mod:`.outbox`: submission's way into the queue (blob, then queue entry, before 250);
* :mod:`.routing`: next hops: relay hosts, per-domain routes, MX lookup (dnspython);
* :mod:`.client`: the SMTP client side of one delivery attempt;
* :mod:`.dsn`: delivery status notifications (RFC 3464 multipart/report);
* :mod:`.worker`: the delivery workers every node process runs;
* :mod:`.cli`: ``fdbmail queue list|show|retry|delete``.
"""

"""Mail authentication: DKIM signing of what our users send (:mod:`.sign`, keys in
:mod:`.dkim_keys`), and the checks on what arrives from outside -- SPF, DKIM, DMARC,
ARC -- recorded in an Authentication-Results header (:mod:`.verify`, :mod:`.results`)."""

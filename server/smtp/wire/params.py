"""The MAIL parameters fdbmail accepts (SMTP and LMTP alike), checked without I/O:
BODY (RFC 6152), SMTPUTF8 (RFC 6531 section 3.4), SIZE (RFC 1870 section 3) and AUTH
(RFC 4954 section 5: accepted, not trusted)."""

from __future__ import annotations

from .path import PathArgument


def check_mail_params(path: PathArgument, *, extended: bool, smtputf8: bool,
                      max_size: int, binarymime: bool = False,
                      dsn: bool = False) -> str | None:
    """None if ``path``'s parameters are acceptable, else the reply.  ``extended``: the
    client greeted with EHLO (or LHLO); ``max_size``: 0 for no limit; ``binarymime``:
    BODY=BINARYMIME is offered (RFC 3030 section 3); ``dsn``: RET and ENVID are offered
    (RFC 3461 section 4, checked by :func:`.dsn.mail_dsn`)."""
    params = dict(path.params)
    if params and not extended:
        return "501 5.5.4 Parameters need EHLO"
    body = params.pop("BODY", "7BIT")
    bodies = ("7BIT", "8BITMIME", "BINARYMIME") if binarymime else ("7BIT", "8BITMIME")
    if body is None or body.upper() not in bodies:
        return f"501 5.5.4 BODY must be {', '.join(bodies[:-1])} or {bodies[-1]}"
    if dsn:
        params.pop("RET", None)
        params.pop("ENVID", None)
    utf8 = "SMTPUTF8" in params
    if utf8 and (params.pop("SMTPUTF8") is not None or not smtputf8):
        return "501 5.5.4 SMTPUTF8 takes no value" if smtputf8 \
            else "555 5.5.4 SMTPUTF8 not supported"
    if "SIZE" in params:
        size = params.pop("SIZE")
        # RFC 1870 section 3: 1*20DIGIT, ASCII digits only ("²", "①" and full-width
        # digits are digits to str.isdigit(), and int() reads some of them)
        if size is None or not (size.isascii() and size.isdigit()) or len(size) > 20:
            return "501 5.5.4 SIZE must be a number"
        if max_size and int(size) > max_size:
            return f"552 5.3.4 Message size exceeds fixed maximum of {max_size} octets"
    params.pop("AUTH", None)
    if params:
        return f"555 5.5.4 MAIL parameter {next(iter(params))} not supported"
    if not path.is_ascii and not utf8:
        return "553 5.6.7 Non-ASCII address needs SMTPUTF8"
    return None

"""LDAP search filters from templates: every ``?`` in a configured filter receives the
looked-up value, escaped per RFC 4515 section 3 so that no value can change the filter's
structure (``*)(uid=*`` stays one literal assertion value)."""

from __future__ import annotations

# RFC 4515 section 3: NUL, '(', ')', '*' and '\' must be escaped as \XX.  Whitespace and
# control characters are escaped as well, so that no client library trims or mangles them.
_ALWAYS = frozenset("*()\\\x00")


def escape_filter_value(value: str) -> str:
    """``value`` as an RFC 4515 assertion value; ValueError if it is not valid Unicode text
    (a lone surrogate cannot be sent as UTF-8)."""
    value.encode("utf-8")   # raises UnicodeEncodeError (a ValueError) for lone surrogates
    out: list[str] = []
    for ch in value:
        if ch in _ALWAYS or ch.isspace() or not ch.isprintable():
            out.append("".join(f"\\{b:02x}" for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    return "".join(out)


def fill_filter(template: str, value: str) -> str:
    """The template with each ``?`` replaced by the escaped value."""
    return template.replace("?", escape_filter_value(value))


def unescape_filter_value(text: str) -> bytes:
    """The octets an escaped assertion value stands for (the inverse, for tests and logs)."""
    raw = text.encode("utf-8")
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == 0x5C:
            out.append(int(raw[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return bytes(out)

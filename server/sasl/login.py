"""LOGIN (draft-murchison-sasl-login-00): the user name, then the password, each
answering a challenge ("Username:", "Password:").

Section 2: an initial response, if the client sends one, is the user name.  Obsolete but
what many clients still use first; it sends the password in clear like PLAIN.
"""

from __future__ import annotations

from .mechanism import Challenge, Credentials, Malformed, SequenceError, Step, decode_utf8

USERNAME = b"Username:"
PASSWORD = b"Password:"
MAX_FIELD = 255   # as PLAIN's fields (RFC 4616 section 2)


class Login:
    name = "LOGIN"

    def __init__(self) -> None:
        self._state = "start"
        self._user = ""

    def start(self, initial: bytes | None) -> Step:
        if self._state != "start":
            raise SequenceError("LOGIN already started")
        if initial is None:
            self._state = "user"
            return Challenge(USERNAME)
        return self._user_name(initial)

    def respond(self, response: bytes) -> Step:
        if self._state == "user":
            return self._user_name(response)
        if self._state == "password":
            self._state = "done"
            if not response or len(response) > MAX_FIELD or b"\0" in response:
                return Malformed("LOGIN password is empty, too long or has NUL")
            secret = decode_utf8(response, "LOGIN password")
            if isinstance(secret, Malformed):
                return secret
            return Credentials(self._user, secret)
        raise SequenceError("LOGIN expects no response now")

    def _user_name(self, data: bytes) -> Step:
        if not data or len(data) > MAX_FIELD or b"\0" in data:
            self._state = "done"
            return Malformed("LOGIN user name is empty, too long or has NUL")
        user = decode_utf8(data, "LOGIN user name")
        if isinstance(user, Malformed):
            self._state = "done"
            return user
        self._user = user
        self._state = "password"
        return Challenge(PASSWORD)

"""LOGIN (draft-murchison-sasl-login-00): user name, then password."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.sasl import Challenge, Credentials, Malformed, SequenceError
from server.sasl.login import Login


def test_two_challenges() -> None:
    m = Login()
    assert m.start(None) == Challenge(b"Username:")
    assert m.respond(b"tim") == Challenge(b"Password:")
    assert m.respond(b"tanstaaf") == Credentials("tim", "tanstaaf")
    with pytest.raises(SequenceError):
        m.respond(b"more")


def test_initial_response_is_the_user_name() -> None:
    m = Login()
    assert m.start("jörg".encode()) == Challenge(b"Password:")
    assert m.respond("pässwörd".encode()) == Credentials("jörg", "pässwörd")


@pytest.mark.parametrize(("user", "password"), [
    (b"", b"pw"), (b"tim", b""), (b"\xff", b"pw"), (b"tim", b"\xff"), (b"t\0m", b"pw"),
    (b"t" * 256, b"pw"),
])
def test_malformed(user: bytes, password: bytes) -> None:
    m = Login()
    step = m.start(user)
    if isinstance(step, Challenge):
        step = m.respond(password)
    assert isinstance(step, Malformed)
    with pytest.raises(SequenceError):
        m.respond(b"x")


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=3), st.booleans())
def test_garbage_gives_steps_never_exceptions(responses: list[bytes], initial: bool) -> None:
    m = Login()
    step = m.start(responses.pop(0) if initial else None)
    while isinstance(step, Challenge) and responses:
        step = m.respond(responses.pop(0))
    assert isinstance(step, Challenge | Credentials | Malformed)

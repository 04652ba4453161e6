"""What is advertised is what is usable."""

from __future__ import annotations

import pytest

from server.sasl import LOGIN, PLAIN, Challenge, MechanismSpec, Registry
from server.sasl.plain import Plain


def test_plaintext_mechanisms_only_where_allowed() -> None:
    r = Registry()
    assert r.names == ("LOGIN", "PLAIN")
    assert r.usable(plaintext_allowed=True) == ("LOGIN", "PLAIN")
    assert r.usable(plaintext_allowed=False) == ()
    assert r.start("plain", plaintext_allowed=False) is None
    m = r.start("plain", plaintext_allowed=True)
    assert m is not None and m.start(None) == Challenge(b"")


def test_unknown_mechanism() -> None:
    assert Registry().start("CRAM-MD5", plaintext_allowed=True) is None


def test_a_mechanism_without_plaintext_is_offered_everywhere() -> None:
    scram = MechanismSpec("SCRAM-SHA-256", Plain, plaintext=False)   # a stand-in
    r = Registry([scram, LOGIN, PLAIN])
    assert r.usable(plaintext_allowed=False) == ("SCRAM-SHA-256",)
    assert r.usable(plaintext_allowed=True) == ("SCRAM-SHA-256", "LOGIN", "PLAIN")


def test_names_are_upper_case_and_unique() -> None:
    with pytest.raises(ValueError):
        Registry([PLAIN, PLAIN])
    with pytest.raises(ValueError):
        Registry([MechanismSpec("plain", Plain, plaintext=True)])

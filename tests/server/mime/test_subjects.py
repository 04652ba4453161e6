"""RFC 5256 §2.1 base subject extraction, step by step."""

from __future__ import annotations

import time

import pytest

from server.mime import base_subject
from server.mime.subjects import casemap


@pytest.mark.parametrize(
    ("subject", "base"),
    [
        ("hello", "hello"),
        ("Hello\t  World", "hello world"),  # step 1: white space collapsed
        ("hello (fwd)", "hello"),  # step 2: subj-trailer
        ("hello (FWD) (fwd)  ", "hello"),
        ("Re: hello", "hello"),  # step 3: subj-refwd
        ("RE: re: FW: Fwd: hello", "hello"),
        ("Re : hello", "hello"),  # *WSP before ":"
        ("Re[2]: hello", "hello"),  # subj-blob inside subj-refwd
        ("[list] Re: hello", "hello"),  # *subj-blob before subj-refwd
        ("[list] hello", "hello"),  # step 4: a leading blob goes...
        ("[list]", "[list]"),  # ...unless nothing would remain
        ("Re: [list] Re: [x] hello", "hello"),  # step 5: repeat 3 and 4
        ("[Fwd: Re: hello]", "hello"),  # step 6: subj-fwd-hdr / subj-fwd-trl
        ("[fwd: [fwd: hello (fwd)]]", "hello"),
        ("Re:", ""),
        ("", ""),
        ("Reply: hello", "reply: hello"),  # "re" must be followed by ":" or a blob
    ],
)
def test_rfc5256_base_subject(subject: str, base: str) -> None:
    assert base_subject(subject) == casemap(base)


@pytest.mark.parametrize(
    "subject", ["Re: " * 5_000, "(fwd)" * 5_000 + "x", "[" * 10_000, "[fwd:" * 5_000]
)
def test_hostile_subjects_are_quick(subject: str) -> None:
    start = time.perf_counter()
    base_subject(subject)
    assert time.perf_counter() - start < 2.0

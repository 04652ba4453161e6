"""PatchObject (RFC 8620 section 5.3)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.jmap.errors import SetError
from server.jmap.patch import apply_patch
from server.jmap.pointer import escape_token, resolve_pointer

EMAIL: dict[str, Any] = {"keywords": {"$seen": True}, "mailboxIds": {"inbox": True},
                         "alerts": [{"offset": 1}], "subject": "hi"}


def test_mail_style_patches() -> None:
    patched = apply_patch(EMAIL, {"keywords/$flagged": True, "keywords/$seen": None,
                                  "mailboxIds/inbox": None, "mailboxIds/archive": True,
                                  "subject": "re: hi"})
    assert patched == {"keywords": {"$flagged": True}, "mailboxIds": {"archive": True},
                       "alerts": [{"offset": 1}], "subject": "re: hi"}
    assert EMAIL["keywords"] == {"$seen": True}  # the original is untouched


def test_null_removes_or_restores_the_default() -> None:
    assert "subject" not in apply_patch(EMAIL, {"subject": None})
    assert apply_patch(EMAIL, {"subject": None}, defaults={"subject": ""})["subject"] == ""
    assert apply_patch(EMAIL, {"keywords/$none": None}) == EMAIL  # absent: a no-op
    assert apply_patch(EMAIL, {"a~1b": 1})["a/b"] == 1             # escaped slash


@pytest.mark.parametrize("patch", [
    {"alerts/0/offset": 2},              # into an array
    {"alerts/0": {}},                     # replacing an array item
    {"subject/x": 1},                     # into a string
    {"missing/x": 1},                     # a part before the last does not exist
    {"keywords": {}, "keywords/$a": True},  # one pointer a prefix of another
    {"alerts": [], "alerts/0/offset": 1},
    {"keywords/a~2": True},               # bad escape
])
def test_invalid_patches(patch: dict[str, Any]) -> None:
    with pytest.raises(SetError) as caught:
        apply_patch(EMAIL, patch)
    assert caught.value.type == "invalidPatch"
    assert caught.value.to_json()["type"] == "invalidPatch"


scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=4)
values = st.recursive(scalars, lambda c: st.lists(c, max_size=3)
                      | st.dictionaries(st.text(max_size=3), c, max_size=3), max_leaves=10)
records = st.dictionaries(st.text(max_size=4), values, max_size=5)


@given(records, st.dictionaries(st.text(max_size=6), values, max_size=5))
def test_any_patch_gives_an_object_or_invalid_patch_and_never_mutates(
        record: dict[str, Any], patch: dict[str, Any]) -> None:
    before = copy.deepcopy(record)
    try:
        out = apply_patch(record, patch)
    except SetError as e:
        assert e.type == "invalidPatch"
    else:
        assert isinstance(out, dict)
    assert record == before


@given(records, st.dictionaries(st.text(max_size=4), values, max_size=5))
def test_top_level_patches_are_an_update(record: dict[str, Any],
                                         patch: dict[str, Any]) -> None:
    expected = {**record, **{k: v for k, v in patch.items() if v is not None}}
    for k, v in patch.items():
        if v is None:
            expected.pop(k, None)
    assert apply_patch(record, {escape_token(k): v for k, v in patch.items()}) == expected


@given(st.dictionaries(st.text(max_size=3), st.dictionaries(st.text(max_size=3), scalars,
                                                            max_size=3), max_size=3),
       st.data())
def test_nested_sets_read_back_through_the_pointer(record: dict[str, Any],
                                                   data: st.DataObject) -> None:
    if not record:
        return
    parent = data.draw(st.sampled_from(sorted(record)))
    members = data.draw(st.lists(st.text(max_size=3), unique=True, max_size=3))
    value = data.draw(scalars.filter(lambda v: v is not None))
    patch = {f"{escape_token(parent)}/{escape_token(m)}": value for m in members}
    out = apply_patch(record, patch)
    for m in members:
        assert resolve_pointer(out, f"/{escape_token(parent)}/{escape_token(m)}") == value

"""Email submission records with their change log (fdb_layers/submissions.py) and the
vacation response with its once-per-sender marks (fdb_layers/vacation.py), on every
engine (faults included: each write must give the same answer when run again)."""

from __future__ import annotations

from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from fdb_layers.submissions import (
    Address,
    DeliveryStatus,
    Submission,
    create_submission,
    destroy_submission,
    get_submission,
    get_submission_changes,
    get_submission_state,
    list_submissions,
    set_delivery_status,
)
from fdb_layers.vacation import Vacation, claim_reply, get_vacation, get_vacation_state, \
    set_vacation


def _submission(submission_id: str) -> Submission:
    return Submission(submission_id, "ident", "Memail", "Tthread",
                      Address("a@example.com", {"SIZE": "10"}),
                      (Address("b@example.com"), Address("c@remote.test")), 1000.5,
                      "q1", delivery_status={"c@remote.test": DeliveryStatus("250", "queued")})


async def test_submissions_and_their_changes(engine: Engine) -> None:
    assert await transact(engine, get_submission_state, "acc") == 0
    first = await transact(engine, create_submission, "acc", _submission("S1"))
    again = await transact(engine, create_submission, "acc", _submission("S1"))
    assert again == first and first.created == 1  # a repeat stores nothing
    await transact(engine, create_submission, "acc", _submission("S2"))
    got = await transact(engine, get_submission, "acc", "S1")
    assert got is not None and got.mail_from == Address("a@example.com", {"SIZE": "10"})
    assert got.rcpt_to[1] == Address("c@remote.test") and got.send_at == 1000.5
    assert await transact(engine, list_submissions, "other") == []

    s2 = await transact(engine, get_submission_state, "acc")
    status = {"c@remote.test": DeliveryStatus("250 ok", "yes")}
    assert await transact(engine, set_delivery_status, "acc", "S1", status)
    s3 = await transact(engine, get_submission_state, "acc")
    assert s3 == s2 + 1
    assert await transact(engine, set_delivery_status, "acc", "S1", status)  # unchanged
    assert await transact(engine, get_submission_state, "acc") == s3
    assert not await transact(engine, set_delivery_status, "acc", "nope", status)

    changes = await transact(engine, get_submission_changes, "acc", 0)
    assert changes is not None and changes.created == ("S1", "S2") and not changes.has_more
    page = await transact(engine, get_submission_changes, "acc", 0, 1)
    assert page is not None and page.has_more and page.created == ("S1",)
    assert page.new_state == 1
    updated = await transact(engine, get_submission_changes, "acc", s2)
    assert updated is not None and updated.updated == ("S1",)

    assert await transact(engine, destroy_submission, "acc", "S1", op_id="op1")
    assert not await transact(engine, destroy_submission, "acc", "S1", op_id="op2")
    assert [s.id for s in await transact(engine, list_submissions, "acc")] == ["S2"]
    later = await transact(engine, get_submission_changes, "acc", s3)
    assert later is not None and later.destroyed == ("S1",)
    since_start = await transact(engine, get_submission_changes, "acc", 0)
    assert since_start is not None and since_start.destroyed == ()  # made and gone
    assert await transact(engine, get_submission_changes, "acc", 10**6) is None


async def test_vacation_and_once_per_sender(engine: Engine) -> None:
    assert await transact(engine, get_vacation, "acc") == Vacation()
    on = Vacation(True, 100.0, 200.0, "Away", "text", None)
    state = await transact(engine, set_vacation, "acc", on)
    assert await transact(engine, get_vacation, "acc") == on
    assert await transact(engine, get_vacation_state, "acc") == state >= 1
    assert on.active(150.0) and not on.active(99.0) and not on.active(200.0)

    def claim(sender: str, now: float, delivery: str) -> object:
        return transact(engine, claim_reply, "acc", sender, now=now, period=50.0,
                        delivery_id=delivery)
    assert await claim("X@remote.test", 100.0, "d1")
    assert await claim("x@remote.test", 101.0, "d1")  # the same delivery again
    assert not await claim("x@remote.test", 120.0, "d2")  # within the period
    assert await claim("y@remote.test", 120.0, "d2")  # another sender
    assert await claim("x@remote.test", 151.0, "d3")  # the period is over
    await transact(engine, set_vacation, "acc", on)  # a new response: answered again
    assert await claim("x@remote.test", 152.0, "d4")

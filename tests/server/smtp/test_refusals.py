"""SMTP's one table from domain errors to replies, and the DATA reply it gives."""

from __future__ import annotations

import pytest

from fdb_layers.mail.errors import (
    EmailExists,
    MailboxNotFound,
    MailboxNotSelectable,
    MailError,
    QuotaExceeded,
)
from server.delivery import (
    DeliveryRequest,
    DeliveryResult,
    InvalidRequest,
    MessageTooLarge,
    NoSuchBlob,
    Refusal,
    Refused,
    TemporaryFailure,
    Unavailable,
)
from server.smtp.refusals import reply_for
from tests.server.smtp.conftest import FakeDelivery, StartHarness
from tests.server.smtp.test_delivery import send


@pytest.mark.parametrize("error, reply", [
    (QuotaExceeded(10, 10, 5), "552 5.2.2 Mailbox full"),
    (MailboxNotFound("m"), "550 5.2.0 Target mailbox does not exist"),
    (MailboxNotSelectable("m"), "550 5.2.0 Target mailbox cannot hold messages"),
    (MessageTooLarge(10, 5), "552 5.3.4 Message too big for this mailbox"),
    (NoSuchBlob("0" * 64), "554 5.3.0 Message body not found"),
    (InvalidRequest("bad keyword"), "554 5.6.0 Message cannot be stored as asked"),
    (EmailExists("M1"), "554 5.0.0 Delivery refused"),  # any other MailError
    (MailError("quota words in a text mean nothing"), "554 5.0.0 Delivery refused"),
    (TemporaryFailure(Unavailable.STORAGE_FULL),
     "452 4.3.1 Insufficient system storage, try again later"),
    (TemporaryFailure(Unavailable.STORE), "451 4.3.0 Temporary delivery failure, try again later"),
    (TemporaryFailure(Unavailable.INTERNAL),
     "451 4.3.0 Temporary delivery failure, try again later"),
])
def test_table(error: Refusal, reply: str) -> None:
    assert str(reply_for(error)) == reply
    assert reply_for(error).temporary == isinstance(error, TemporaryFailure)


class RefusingDelivery(FakeDelivery):
    """Refuses each account with the error given for it."""

    def __init__(self, errors: dict[str, Refusal]) -> None:
        super().__init__()
        self.errors = errors

    async def deliver(self, request: DeliveryRequest) -> list[DeliveryResult]:
        stored = await super().deliver(request)
        return [Refused(r.account_id, self.errors[r.account_id])
                if r.account_id in self.errors else r for r in stored]


@pytest.mark.parametrize("errors, reply", [
    ({"alice": TemporaryFailure(Unavailable.STORAGE_FULL),
      "bob": TemporaryFailure(Unavailable.STORAGE_FULL)}, "452 4.3.1"),
    ({"alice": TemporaryFailure(Unavailable.STORAGE_FULL),
      "bob": TemporaryFailure(Unavailable.STORE)}, "451 4.3.0"),
    ({"alice": TemporaryFailure(Unavailable.STORE), "bob": QuotaExceeded(1, 1, 1)}, "451 4.3.0"),
    ({"alice": QuotaExceeded(1, 1, 1), "bob": QuotaExceeded(1, 1, 1)}, "552 5.2.2"),
    ({"alice": QuotaExceeded(1, 1, 1), "bob": MessageTooLarge(9, 1)}, "554 5.0.0"),
    ({"alice": QuotaExceeded(1, 1, 1)}, "250 2.0.0"),  # bob has it: accepted
])
async def test_data_reply(start: StartHarness, errors: dict[str, Refusal], reply: str) -> None:
    h = await start(delivery=RefusingDelivery(errors))
    assert (await send(h, ["team@example.com"])).startswith(reply)

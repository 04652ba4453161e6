"""Sending with a real client: ``jmapc`` creates a draft, submits it (its creation id
referenced from EmailSubmission/set) and clears ``$draft`` with onSuccessUpdateEmail
(RFC 8621 section 7.5), over HTTPS against the node's JMAP routes under uvicorn."""

from __future__ import annotations

from pathlib import Path

import jmapc
from jmapc import Address, EmailAddress, EmailBodyPart, EmailBodyValue, EmailHeader, Envelope
from jmapc import EmailSubmission as Submission
from jmapc import MailboxQueryFilterCondition
from jmapc.methods import (
    EmailSet,
    EmailSetResponse,
    EmailSubmissionGet,
    EmailSubmissionGetResponse,
    EmailSubmissionSet,
    EmailSubmissionSetResponse,
    IdentityGet,
    IdentityGetResponse,
    MailboxQuery,
    MailboxQueryResponse,
)

from tests.server.jmap.test_jmapc import in_thread
from tests.server.jmap.test_jmapc_write import host  # noqa: F401 (the fixture)
from tests.server.jmap.test_mail import Mail
from tests.support.mailbox import inbox_messages


async def test_jmapc_sends_a_draft(host: tuple[str, Mail], tmp_path: Path) -> None:  # noqa: F811
    address, mail = host
    client = jmapc.Client.create_with_password(address, "alice", "wonderland")
    identities = await in_thread(lambda: client.request(IdentityGet()))
    assert isinstance(identities, IdentityGetResponse)
    identity = identities.data[0].id
    boxes = await in_thread(lambda: client.request(
        MailboxQuery(filter=MailboxQueryFilterCondition(role="drafts"))))
    assert isinstance(boxes, MailboxQueryResponse) and isinstance(boxes.ids, list)
    drafts = boxes.ids[0]
    draft = jmapc.Email(
        mail_from=[EmailAddress(name="Alice", email="alice@example.com")],
        to=[EmailAddress(name="Bob", email="bob@example.com")],
        subject="Sent with jmapc", keywords={"$draft": True},
        mailbox_ids={drafts: True},
        body_values={"body": EmailBodyValue(value="Hello from jmapc")},
        text_body=[EmailBodyPart(part_id="body", type="text/plain")],
        headers=[EmailHeader(name="X-Client", value="jmapc")])
    results = await in_thread(lambda: client.request([
        EmailSet(create={"draft": draft}),
        EmailSubmissionSet(
            on_success_update_email={"#send": {"keywords/$draft": None}},
            create={"send": Submission(
                email_id="#draft", identity_id=identity,
                envelope=Envelope(mail_from=Address(email="alice@example.com"),
                                  rcpt_to=[Address(email="bob@example.com")]))}),
    ]))
    created, submitted, implicit = (r.response for r in results)
    assert isinstance(created, EmailSetResponse) and created.created
    assert isinstance(submitted, EmailSubmissionSetResponse) and submitted.created
    assert isinstance(implicit, EmailSetResponse)
    email_id = created.created["draft"].id
    assert implicit.updated == {email_id: None}
    submission_id = submitted.created["send"].id
    got = await in_thread(lambda: client.request(EmailSubmissionGet(ids=[submission_id])))
    assert isinstance(got, EmailSubmissionGetResponse)
    [record] = got.data
    assert record.email_id == email_id and record.undo_status is not None
    assert record.undo_status.value == "final"
    assert record.delivery_status is not None
    assert record.delivery_status["bob@example.com"].delivered.value == "yes"
    [raw] = await inbox_messages(mail.node.engine, mail.node.blobs, mail.ids["bob"])
    assert b"Subject: Sent with jmapc" in raw and b"Hello from jmapc" in raw

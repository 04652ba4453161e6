"""The write side with a real client: ``jmapc`` over HTTPS against the node's own JMAP
routes (server.jmap.node.routes over the node's store, blobs and delivery) under uvicorn
-- upload, Email/import, Email/set, Identity/get."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from pathlib import Path

import jmapc
import pytest
from jmapc import MailboxQueryFilterCondition
from jmapc.methods import CustomMethod, EmailGet, EmailGetResponse, EmailSet, EmailSetResponse
from jmapc.methods import IdentityGet, IdentityGetResponse, MailboxQuery, MailboxQueryResponse
from starlette.applications import Starlette

from server.jmap.node import routes
from server.net import tls
from tests.server.jmap.test_jmapc import in_thread, serve
from tests.server.jmap.test_mail import MAIL, Mail
from tests.server.jmap.writes import mail_node

MESSAGE = b"Subject: via jmapc\r\nFrom: x@remote.test\r\nTo: alice@example.com\r\n\r\nhi\r\n"


@pytest.fixture
async def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[
        tuple[str, Mail]]:
    cert, key = tls.ensure_self_signed(tmp_path / "tls", "localhost")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    async with mail_node(tmp_path) as mail:
        assert mail.node.parts is not None
        app = Starlette(routes=routes(mail.node.parts))
        async for port in serve(app, (cert, key)):
            yield f"127.0.0.1:{port}", mail
            gc.collect()  # jmapc's pooled TLS connections (see test_jmapc)


def _call(name: str, args: dict[str, object]) -> CustomMethod:
    method = CustomMethod(data=args)
    method.jmap_method, method.using = name, {MAIL}  # type: ignore[misc]
    return method


async def test_jmapc_uploads_imports_sets_and_reads_identities(
        host: tuple[str, Mail], tmp_path: Path) -> None:
    address, mail = host
    alice = mail.ids["alice"]
    client = jmapc.Client.create_with_password(address, "alice", "wonderland")
    path = tmp_path / "message.eml"
    path.write_bytes(MESSAGE)
    blob = await in_thread(lambda: client.upload_blob(path))  # RFC 8620 6.1
    assert blob.size == len(MESSAGE) and blob.type == "message/rfc822"

    boxes = await in_thread(lambda: client.request(
        MailboxQuery(filter=MailboxQueryFilterCondition(role="inbox"))))
    assert isinstance(boxes, MailboxQueryResponse) and isinstance(boxes.ids, list)
    inbox = boxes.ids[0]
    imported = await in_thread(lambda: client.request(_call("Email/import", {
        "accountId": alice, "emails": {"m": {"blobId": blob.id,
                                             "mailboxIds": {inbox: True}}}})))
    email_id = imported.data["created"]["m"]["id"]

    updated = await in_thread(lambda: client.request(EmailSet(
        update={email_id: {"keywords/$flagged": True}})))
    assert isinstance(updated, EmailSetResponse) and updated.updated == {email_id: None}
    got = await in_thread(lambda: client.request(EmailGet(
        ids=[email_id], properties=["subject", "keywords"])))
    assert isinstance(got, EmailGetResponse)
    assert [(e.id, e.subject, e.keywords) for e in got.data] == [
        (email_id, "via jmapc", {"$flagged": True})]

    identities = await in_thread(lambda: client.request(IdentityGet()))
    assert isinstance(identities, IdentityGetResponse)
    assert [i.email for i in identities.data] == ["alice@example.com"]

"""Download (RFC 8620 section 6.2) from a real node: messages delivered over SMTP, their
blobs and their parts' blobs fetched over HTTP with httpx, whole and by Range (RFC 9110
section 14), and never across accounts."""

from __future__ import annotations

import asyncio
import smtplib
from typing import Any

import httpx

from server.jmap.download import content_disposition, parse_range
from tests.server.jmap.messages import AGENDA_PDF, ALTERNATIVE, INNER, LATIN1, NESTED
from tests.server.jmap.test_mail import Mail, mail, one

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py

__all__ = ["mail"]


async def deliver(mail: Mail, raw: bytes, to: str = "alice@example.com") -> None:
    port = mail.node.ports["mx"]

    def run() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            smtp.sendmail("someone@remote.test", [to], raw)
    await asyncio.to_thread(run)


async def only_email(mail: Mail, client: httpx.AsyncClient, user: str = "alice",
                     **args: Any) -> dict[str, Any]:
    account = mail.ids[user]
    query = await one(client, "Email/query", {"accountId": account})
    [email_id] = query["ids"]
    got = await one(client, "Email/get", {"accountId": account, "ids": [email_id], **args})
    [email] = got["list"]
    return email  # type: ignore[no-any-return]


def url(mail: Mail, blob_id: str, name: str = "file", user: str = "alice",
        accept: str = "") -> str:
    path = f"/download/{mail.ids[user]}/{blob_id}/{name}"
    return path + (f"?accept={accept}" if accept else "")


async def test_download_of_the_message_and_its_parts(mail: Mail) -> None:
    await deliver(mail, ALTERNATIVE)
    async with mail.client() as c:
        email = await only_email(mail, c, properties=["blobId", "size", "attachments",
                                                      "textBody"])
        whole = await c.get(url(mail, email["blobId"], "message.eml"))
        assert whole.status_code == 200
        assert whole.headers["content-type"] == "message/rfc822"
        assert len(whole.content) == email["size"]
        assert whole.content.endswith(ALTERNATIVE)  # after the trace fields added
        assert "immutable" in whole.headers["cache-control"]
        again = await c.get(url(mail, email["blobId"]),
                            headers={"If-None-Match": whole.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        [pdf] = email["attachments"]
        got = await c.get(url(mail, pdf["blobId"], "agenda.pdf", accept="application/pdf"))
        assert got.status_code == 200 and got.content == AGENDA_PDF  # base64 removed
        assert len(got.content) == pdf["size"]
        assert got.headers["content-type"] == "application/pdf"
        assert got.headers["content-disposition"] == (
            "attachment; filename=\"agenda.pdf\"; filename*=UTF-8''agenda.pdf")
        [text] = email["textBody"]
        plain = await c.get(url(mail, text["blobId"]))  # quoted-printable removed
        assert plain.content.decode() == "Réunion lundi — agenda attached."
        assert plain.headers["content-type"] == "text/plain; charset=utf-8"
        typed = await c.get(url(mail, text["blobId"], accept="text/x-note;%20format=flowed"))
        # RFC 8620 section 6.2: the type given is the Content-Type, as given
        assert typed.headers["content-type"] == "text/x-note; format=flowed"
        for bad in ("text/plain%0d%0aX-Injected:%201", "nonsense", "a/b;%20c=%22d%22"):
            odd = await c.get(url(mail, text["blobId"], accept=bad))
            assert odd.headers["content-type"] == "text/plain; charset=utf-8", bad


async def test_ranges(mail: Mail) -> None:
    await deliver(mail, ALTERNATIVE)
    async with mail.client() as c:
        email = await only_email(mail, c, properties=["blobId", "size", "attachments"])
        size = email["size"]
        first = await c.get(url(mail, email["blobId"]), headers={"Range": "bytes=0-9"})
        assert first.status_code == 206
        assert first.headers["content-range"] == f"bytes 0-9/{size}"
        whole = (await c.get(url(mail, email["blobId"]))).content
        assert first.content == whole[:10]
        tail = await c.get(url(mail, email["blobId"]), headers={"Range": "bytes=-7"})
        assert tail.status_code == 206 and tail.content == whole[-7:]
        rest = await c.get(url(mail, email["blobId"]), headers={"Range": f"bytes={size - 3}-"})
        assert rest.content == whole[-3:]
        beyond = await c.get(url(mail, email["blobId"]), headers={"Range": f"bytes={size}-"})
        assert beyond.status_code == 416
        assert beyond.headers["content-range"] == f"bytes */{size}"
        several = await c.get(url(mail, email["blobId"]),
                              headers={"Range": "bytes=0-1,5-6"})
        assert several.status_code == 200 and several.content == whole
        [pdf] = email["attachments"]
        part = await c.get(url(mail, pdf["blobId"]), headers={"Range": "bytes=1-3"})
        assert part.status_code == 206 and part.content == AGENDA_PDF[1:4]
        assert part.headers["content-range"] == f"bytes 1-3/{len(AGENDA_PDF)}"


async def test_an_attached_message_downloads_as_its_octets(mail: Mail) -> None:
    await deliver(mail, NESTED)
    async with mail.client() as c:
        email = await only_email(mail, c, properties=["attachments"])
        [inner] = email["attachments"]
        got = await c.get(url(mail, inner["blobId"]))
        assert got.status_code == 200 and got.content == INNER
        assert got.headers["content-type"] == "message/rfc822"


async def test_a_text_part_says_its_own_charset(mail: Mail) -> None:
    await deliver(mail, LATIN1)
    async with mail.client() as c:
        email = await only_email(mail, c, properties=["textBody"])
        [text] = email["textBody"]
        got = await c.get(url(mail, text["blobId"]))
        assert got.headers["content-type"] == "text/plain; charset=iso-8859-1"
        assert got.content.decode("iso-8859-1").startswith("Un café crème")


async def test_another_accounts_blob_or_an_unknown_one_is_not_found(mail: Mail) -> None:
    await deliver(mail, ALTERNATIVE)
    async with mail.client() as c:
        email = await only_email(mail, c, properties=["blobId", "attachments"])
    blob, part = email["blobId"], email["attachments"][0]["blobId"]
    async with mail.client("bob") as bob:
        for blob_id in (blob, part):
            # bob's own account id with alice's blob, and alice's account id
            assert (await bob.get(url(mail, blob_id, user="bob"))).status_code == 404
            assert (await bob.get(url(mail, blob_id, user="alice"))).status_code == 404
    async with mail.client() as c:
        for bad in ("0" * 64, blob[:-1], f"{blob}_9", f"{blob}_1", f"{blob}__", "..", "x"):
            assert (await c.get(url(mail, bad))).status_code == 404, bad
    async with httpx.AsyncClient(base_url=mail.base) as anonymous:
        assert (await anonymous.get(url(mail, blob))).status_code == 401
        # a browser's preflight is answered without credentials, Range allowed
        preflight = await anonymous.options(url(mail, blob))
        assert preflight.status_code == 204
        assert "Range" in preflight.headers["access-control-allow-headers"]


def test_range_parsing_rfc_9110_14_1_2() -> None:
    assert parse_range(None, 10) is None
    assert parse_range("bytes=0-0", 10) == (0, 1)
    assert parse_range("bytes=2-", 10) == (2, 10)
    assert parse_range("bytes=3-100", 10) == (3, 10)
    assert parse_range("bytes=-4", 10) == (6, 10)
    assert parse_range("bytes=-40", 10) == (0, 10)
    assert parse_range("bytes=10-", 10) is False
    assert parse_range("bytes=5-4", 10) is False
    assert parse_range("bytes=-0", 10) is False
    assert parse_range("bytes=-", 10) is None
    assert parse_range("items=0-1", 10) is None
    assert parse_range("bytes=0-1,3-4", 10) is None


def test_content_disposition_rfc_6266() -> None:
    assert content_disposition('€ rates "q".png') == (
        "attachment; filename=\"_ rates _q_.png\"; "
        "filename*=UTF-8''%E2%82%AC%20rates%20%22q%22.png")


async def test_an_uploaded_text_blob_downloads_with_the_type_given(mail: Mail) -> None:
    """RFC 8620 section 6.2: ``type`` is "The type for the server to set in the
    Content-Type header of the response": a text type without a charset comes back as
    it was given (no charset added), and so does one with parameters."""
    account = mail.ids["alice"]
    async with mail.client() as c:
        r = await c.post(f"/upload/{account}/", content=b"foo",
                         headers={"Content-Type": "text/plain"})
        blob = r.json()["blobId"]
        got = await c.get(url(mail, blob, "myfile.txt", accept="text/plain"))
        assert got.status_code == 200 and got.content == b"foo"
        assert got.headers["content-type"] == "text/plain"
        assert 'filename="myfile.txt"' in got.headers["content-disposition"]
        other = await c.get(url(mail, blob, accept="text/csv;%20header=present"))
        assert other.headers["content-type"] == "text/csv; header=present"
        cached = await c.get(url(mail, blob, accept="text/plain"),
                             headers={"If-None-Match": got.headers["etag"]})
        assert cached.status_code == 304 and "content-type" not in cached.headers

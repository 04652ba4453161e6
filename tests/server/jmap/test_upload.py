"""Upload (RFC 8620 section 6.1) through a real node: the response, the account check,
and the size cap enforced before and while streaming (the node stops reading, stores
nothing and stays up)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from fdb_layers.blobs.uploads import get_upload
from fdb_layers.mail import transact
from tests.server.jmap.test_mail import Mail
from tests.server.jmap.writes import mail_node, upload

NODE_ENGINES = ("sqlite", "foundationdb")  # the node's store: tests/support/nodes.py

CAP = 4096


@pytest.fixture
async def mail(tmp_path: Path) -> AsyncIterator[Mail]:
    async with mail_node(tmp_path, f"max_size_upload = {CAP}\n") as m:
        yield m


async def test_upload_answers_the_blob_and_references_it(mail: Mail) -> None:
    account = mail.ids["alice"]
    data = b"Subject: hi\r\n\r\nhello\r\n"
    async with mail.client() as c:
        got = await upload(c, account, data, "message/rfc822")
        # RFC 8620 6.1: accountId, blobId, type, size
        assert got == {"accountId": account, "blobId": hashlib.sha256(data).hexdigest(),
                       "type": "message/rfc822", "size": len(data)}
        untyped = await c.post(f"/upload/{account}/", content=b"x")
        assert untyped.status_code == 201
    assert mail.node.blobs is not None and mail.node.engine is not None
    assert await mail.node.blobs.get(got["blobId"]) == data
    expires = await transact(mail.node.engine, get_upload, account, got["blobId"])
    assert expires is not None  # kept from the blob GC until it expires
    assert await transact(mail.node.engine, get_upload, mail.ids["bob"], got["blobId"]) is None


async def test_an_upload_downloads_for_its_uploader_only(mail: Mail) -> None:
    """RFC 8620 section 6.2: a blob id from upload is downloadable by that account; another
    account gets 404 for it, as for any blob it may not read."""
    data = b"\x00\x01 attachment bytes \xff"
    async with mail.client("alice") as c:
        got = await upload(c, mail.ids["alice"], data, "application/octet-stream")
        r = await c.get(f"/download/{mail.ids['alice']}/{got['blobId']}/a.bin")
        assert r.status_code == 200 and r.content == data
        r = await c.get(f"/download/{mail.ids['alice']}/{got['blobId']}/a.bin",
                        headers={"Range": "bytes=0-1"})
        assert r.status_code == 206 and r.content == data[:2]
    async with mail.client("bob") as c:
        r = await c.get(f"/download/{mail.ids['bob']}/{got['blobId']}/a.bin")
        assert r.status_code == 404


async def test_upload_to_another_account_or_without_credentials_is_refused(
        mail: Mail) -> None:
    async with mail.client("alice") as c:
        r = await c.post(f"/upload/{mail.ids['bob']}/", content=b"data")
        assert r.status_code == 404
    async with httpx.AsyncClient(base_url=mail.base) as anonymous:
        r = await anonymous.post(f"/upload/{mail.ids['alice']}/", content=b"data")
        assert r.status_code == 401 and "WWW-Authenticate" in r.headers


async def _raw_request(mail: Mail, head: bytes, body: bytes = b"") -> bytes:
    """Send ``head`` (and ``body``), read what the node answers before the client
    sends anything more."""
    assert mail.node.http is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", mail.node.http.port)
    try:
        writer.write(head + body)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), 30)
    finally:
        writer.close()


def _auth() -> bytes:
    return b"Authorization: Basic " + base64.b64encode(b"alice:wonderland") + b"\r\n"


async def test_an_announced_gigabyte_is_refused_before_any_byte_is_read(mail: Mail) -> None:
    head = (f"POST /upload/{mail.ids['alice']}/ HTTP/1.1\r\nHost: x\r\n"
            "Content-Length: 1000000000\r\n").encode() + _auth() + b"\r\n"
    answer = await _raw_request(mail, head)  # no body sent at all: answered anyway
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 413")
    problem = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert problem["type"] == "urn:ietf:params:jmap:error:limit"
    assert problem["limit"] == "maxSizeUpload"
    async with mail.client() as c:  # and the node is still up
        assert (await upload(c, mail.ids["alice"], b"small"))["size"] == 5


async def test_a_chunked_body_past_the_cap_is_cut_off_and_not_stored(mail: Mail) -> None:
    chunk = b"y" * 1024
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(8))  # no end chunk
    head = (f"POST /upload/{mail.ids['alice']}/ HTTP/1.1\r\nHost: x\r\n"
            "Transfer-Encoding: chunked\r\n").encode() + _auth() + b"\r\n"
    # 8 KiB sent of a body that never ends: the node answers once it passed 4 KiB
    answer = await _raw_request(mail, head, body)
    assert answer.startswith(b"HTTP/1.1 413")
    assert mail.node.blobs is not None
    assert not await mail.node.blobs.exists(hashlib.sha256(chunk * 4).hexdigest())
    assert not await mail.node.blobs.exists(hashlib.sha256(chunk * 8).hexdigest())
    async with mail.client() as c:
        r = await c.post(f"/upload/{mail.ids['alice']}/", content=b"z" * (CAP + 1))
        assert r.status_code == 413 and r.json()["limit"] == "maxSizeUpload"
        assert (await upload(c, mail.ids["alice"], b"z" * CAP))["size"] == CAP


async def test_max_concurrent_upload_per_account(tmp_path: Path) -> None:
    async with mail_node(tmp_path, "max_concurrent_upload = 1\n") as node:
        assert node.node.http is not None
        head = (f"POST /upload/{node.ids['alice']}/ HTTP/1.1\r\nHost: x\r\n"
                "Transfer-Encoding: chunked\r\n").encode() + _auth() + b"\r\n"
        # two uploads that have not ended: one holds the account's only slot, the
        # other is refused (RFC 8620 6.1 maxConcurrentUpload) -- and is the only answer
        streams = [await asyncio.open_connection("127.0.0.1", node.node.http.port)
                   for _ in range(2)]
        for _, writer in streams:
            writer.write(head + b"4\r\nslow\r\n")
            await writer.drain()
        reads = {asyncio.ensure_future(reader.read(65536)): i
                 for i, (reader, _) in enumerate(streams)}
        done, pending = await asyncio.wait(reads, timeout=30,
                                           return_when=asyncio.FIRST_COMPLETED)
        [refused] = done
        assert refused.result().startswith(b"HTTP/1.1 429")
        assert b'"limit":"maxConcurrentUpload"' in refused.result()
        async with node.client("bob") as other:  # another account is not held up
            assert (await upload(other, node.ids["bob"], b"bob's"))["size"] == 5
        [held] = pending
        _, writer = streams[reads[held]]
        writer.write(b"0\r\n\r\n")  # the held upload ends: the slot is free again
        await writer.drain()
        assert (await asyncio.wait_for(held, 30)).startswith(b"HTTP/1.1 201")
        async with node.client() as c:
            assert (await upload(c, node.ids["alice"], b"third"))["size"] == 5
        for _, w in streams:
            w.close()

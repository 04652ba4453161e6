"""End to end: smtplib and swaks against a real server on port 0, with the real SQL
directory (accounts made with `fdbmail directory`), the sqlite engine, the fs blob store and
the delivery pipeline; messages are read back through the mailbox layer."""

from __future__ import annotations

import asyncio
import io
import shutil
import smtplib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from fdb_layers.engine.base import ErrorCode, StoreError
from fdb_layers.engine.sqlite import SqliteEngine
from server.blobs import BlobStore, open_blob_store
from server.cli import main as cli
from server.config import Config, load_config
from server.delivery import Delivery
from server.directory import Directory, open_directory
from server.mime import MessageSummary
from server.smtp import SmtpService, start_smtp
from server.smtp.wire.data import dot_stuff
from tests.server.smtp.conftest import Client
from tests.support.mailbox import inbox_messages

MAX_SIZE = 32 * 1024 * 1024


def fdbmail(config_path: Path, *args: str, stdin: str = "") -> None:
    import sys
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        assert cli(["-c", str(config_path), "directory", *args]) == 0
    finally:
        sys.stdin = old


class FlakyEncryption:
    """A temporary store failure for chosen accounts, injected through the pipeline's
    encryption-at-rest seam (which runs before anything is stored)."""

    def __init__(self) -> None:
        self.failing: frozenset[str] | set[str] = frozenset()

    async def encrypt(self, account_id: str, raw: bytes, summary: MessageSummary
                      ) -> tuple[bytes, MessageSummary]:
        if account_id in self.failing:
            raise StoreError("injected", code=ErrorCode.NOT_COMMITTED)
        return raw, summary


class FlakyDelivery(Delivery):
    """The real pipeline, given a :class:`FlakyEncryption`; ``failing`` is its set."""

    def __init__(self, engine: SqliteEngine, blobs: BlobStore) -> None:
        self.flaky = FlakyEncryption()
        super().__init__(engine, blobs, encryption=self.flaky)

    @property
    def failing(self) -> frozenset[str] | set[str]:
        return self.flaky.failing

    @failing.setter
    def failing(self, accounts: frozenset[str] | set[str]) -> None:
        self.flaky.failing = accounts


@dataclass
class Node:
    config: Config
    service: SmtpService
    directory: Directory
    engine: SqliteEngine
    blobs: BlobStore
    delivery: FlakyDelivery | None  # None: sessions run in worker processes

    def in_this_process(self) -> FlakyDelivery:
        if self.delivery is None:
            pytest.skip("injects failures into, or reads the metrics of, this process")
        return self.delivery

    def port(self, kind: str = "mx") -> int:
        return self.service.ports[kind]

    async def inbox(self, name: str) -> list[bytes]:
        principal = await self.directory.get_principal(name)
        assert principal is not None
        return await inbox_messages(self.engine, self.blobs, principal.id)

    async def raw(self, kind: str = "mx") -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port(kind))
        c = Client(reader, writer)
        assert (await c.reply()).startswith("220")
        return c


@pytest.fixture(params=["one-process", "workers"])
async def node(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Node]:
    """Every test runs on a node in one process, and on a node whose SMTP sessions
    run in 2 worker processes ([server] workers)."""
    data = tmp_path / "data"
    cfg = tmp_path / "fdbmail.toml"
    cfg.write_text(f"""
[server]
data_dir = "{data}"
hostname = "mx.example.com"
[imap]
listen = "127.0.0.1:0"
tls_listen = "127.0.0.1:0"
[smtp]
mx_listen = "127.0.0.1:0"
submission_listen = "127.0.0.1:0"
submissions_listen = "127.0.0.1:0"
max_message_size = {MAX_SIZE}
[directory]
cache_ttl = 0.0
[outbound]
workers = false  # queued mail stays queued: only 127.0.0.1 is contacted (tests/server/outbound)
""")
    fdbmail(cfg, "add-domain", "example.com")
    fdbmail(cfg, "add-domain", "bücher.example")
    fdbmail(cfg, "add", "alice", "--email", "alice@example.com", "--email",
            "a.liddell@example.com", "--password-stdin", stdin="wonderland\n")
    fdbmail(cfg, "add", "bob", "--email", "bob@example.com")
    fdbmail(cfg, "add", "jorg", "--email", "jörg@bücher.example")
    fdbmail(cfg, "add", "carl", "--email", "carl@example.com", "--quota", "3000")
    fdbmail(cfg, "add", "team", "--type", "group", "--email", "team@example.com")
    fdbmail(cfg, "add-member", "team", "alice")
    fdbmail(cfg, "add-member", "team", "bob")
    if request.param == "workers":
        from server.node.node import Node as AppNode

        app = AppNode(load_config(cfg, env={"FDBMAIL_SERVER_WORKERS": "2",
                                            "FDBMAIL_SERVER_HTTP_LISTEN": "127.0.0.1:0"}))
        await app.start()
        try:
            assert app.pool is not None and app.directory is not None
            assert isinstance(app.engine, SqliteEngine) and app.blobs is not None
            yield Node(app.config, app.pool, app.directory, app.engine,  # type: ignore[arg-type]
                       app.blobs, None)
        finally:
            await app.stop()
        return
    config = load_config(cfg, env={})
    engine = await SqliteEngine.open(data / "store.sqlite3")
    blobs = await open_blob_store(config)
    directory = await open_directory(config)
    delivery = FlakyDelivery(engine, blobs)
    from server.outbound.outbox import Outbox
    service = await start_smtp(config, directory, delivery, outbox=Outbox(engine, blobs))
    try:
        yield Node(config, service, directory, engine, blobs, delivery)
    finally:
        await service.close()
        await directory.close()
        await blobs.close()
        await engine.close()


def no_verify() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


Refused = dict[str, tuple[int, bytes]]


def send(port: int, sender: str, rcpts: list[str], msg: bytes, **kw: object) -> Refused:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
        return s.sendmail(sender, rcpts, msg, **kw)  # type: ignore[arg-type]


MSG = (b"From: Carol <carol@remote.test>\r\nTo: alice@example.com\r\nSubject: plain\r\n"
       b"Message-ID: <plain@remote.test>\r\nDate: Wed, 25 Nov 2026 12:00:00 +0000\r\n\r\n"
       b"Hello Alice.\r\n.leading dot\r\n")


async def test_plain_alias_plus_and_group(node: Node) -> None:
    await asyncio.to_thread(send, node.port(), "carol@remote.test", ["alice@example.com"], MSG)
    [raw] = await node.inbox("alice")
    assert raw.startswith(b"Return-Path: <carol@remote.test>\r\nReceived: from ")
    assert raw.endswith(MSG)
    msg2 = MSG.replace(b"plain@", b"alias@")
    await asyncio.to_thread(send, node.port(), "carol@remote.test",
                            ["a.liddell@example.com", "alice+news@example.com",
                             "team@example.com"], msg2)
    alice, bob = await node.inbox("alice"), await node.inbox("bob")
    assert len(alice) == 2 and alice[1].endswith(msg2)      # once, though named thrice
    assert len(bob) == 1 and bob[0].endswith(msg2)


async def test_eight_bit_and_smtputf8(node: Node) -> None:
    body = (b"From: carol@remote.test\r\nSubject: 8bit\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
            b"\r\nGr\xc3\xbc\xc3\x9fe \xe2\x80\x94 \xff raw byte\r\n")
    await asyncio.to_thread(send, node.port(), "carol@remote.test", ["bob@example.com"], body,
                            mail_options=["BODY=8BITMIME"])
    assert (await node.inbox("bob"))[0].endswith(body)
    utf8 = "From: jürgen@remote.test\r\nTo: jörg@bücher.example\r\nSubject: Grüße\r\n\r\nHallo\r\n"
    await asyncio.to_thread(send, node.port(), "jürgen@remote.test", ["jörg@bücher.example"],
                            utf8.encode(), mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    [raw] = await node.inbox("jorg")
    assert raw.startswith("Return-Path: <jürgen@remote.test>".encode())
    assert b"with UTF8SMTP" in raw and raw.endswith(utf8.encode())


async def test_unknown_user_and_relay(node: Node) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        await asyncio.to_thread(send, node.port(), "c@remote.test", ["nobody@example.com"], MSG)
    assert e.value.recipients["nobody@example.com"][0] == 550
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        await asyncio.to_thread(send, node.port(), "c@remote.test", ["x@gmail.com"], MSG)
    assert e.value.recipients["x@gmail.com"] == (554, b"5.7.1 Relay access denied")
    refused = await asyncio.to_thread(send, node.port(), "c@remote.test",
                                      ["nobody@example.com", "bob@example.com"], MSG)
    assert list(refused) == ["nobody@example.com"] and len(await node.inbox("bob")) == 1


# a submitted message names its author (issue 10, item 14)
SUBMITTED = MSG.replace(b"From: Carol <carol@remote.test>", b"From: Alice <alice@example.com>")


def submit(port: int, login: str, password: str, *, starttls: bool = True) -> Refused:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        if starttls:
            s.starttls(context=no_verify())
        s.login(login, password)
        return s.sendmail("alice@example.com", ["bob@example.com"], SUBMITTED)


async def test_submission_auth(node: Node) -> None:
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        await asyncio.to_thread(submit, node.port("submission"), "alice", "wrong")
    assert e.value.smtp_code == 535
    with pytest.raises(smtplib.SMTPNotSupportedError):       # AUTH not offered in clear
        await asyncio.to_thread(submit, node.port("submission"), "alice", "wonderland",
                                starttls=False)
    c = await node.raw("submission")
    await c.cmd("EHLO me")
    assert (await c.cmd("AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=")).startswith("538 5.7.11")
    await c.close()
    await asyncio.to_thread(submit, node.port("submission"), "alice", "wonderland")
    assert len(await node.inbox("bob")) == 1

    def implicit() -> None:
        with smtplib.SMTP_SSL("127.0.0.1", node.port("submissions"), context=no_verify(),
                              timeout=30) as s:
            s.login("alice", "wonderland")
            with pytest.raises(smtplib.SMTPSenderRefused) as e:
                s.sendmail("bob@example.com", ["bob@example.com"], MSG)
            assert e.value.smtp_code == 553
            # a remote recipient is queued for outbound delivery (issue 14)
            assert s.sendmail("alice@example.com", ["friend@remote.test"], SUBMITTED) == {}
    await asyncio.to_thread(implicit)
    from fdb_layers.engine.run import transact
    from fdb_layers.queue import list_messages
    queued = await transact(node.engine, list_messages)
    assert [r.address for m in queued for r in m.recipients] == ["friend@remote.test"]


@pytest.mark.slow
async def test_thirty_megabytes_and_oversize(node: Node) -> None:
    line = b"0123456789" * 7 + b"abcdef\r\n"
    body = b"Subject: big\r\n\r\n" + line * (30 * 1024 * 1024 // len(line))
    await asyncio.to_thread(send, node.port(), "carol@remote.test", ["bob@example.com"], body)
    [raw] = await node.inbox("bob")
    assert raw.endswith(body) and len(raw) > 30 * 1024 * 1024
    with pytest.raises(smtplib.SMTPSenderRefused) as e:       # SIZE= at MAIL FROM
        await asyncio.to_thread(send, node.port(), "carol@remote.test", ["bob@example.com"],
                                body + line * 50_000)
    assert e.value.smtp_code == 552
    c = await node.raw()                                      # no SIZE=: refused after DATA
    await c.cmd("EHLO me")
    await c.cmd("MAIL FROM:<carol@remote.test>")
    await c.cmd("RCPT TO:<bob@example.com>")
    assert (await c.cmd("DATA")).startswith("354")
    await c.send(dot_stuff(body + line * 50_000))
    assert (await c.reply()).startswith("552 5.3.4")
    assert len(await node.inbox("bob")) == 1


async def test_pipelined_transactions_and_idempotent_repeat(node: Node) -> None:
    c = await node.raw()
    await c.cmd("EHLO me")
    batch = b""
    for i in range(3):
        batch += (b"MAIL FROM:<carol@remote.test>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n"
                  + dot_stuff(MSG.replace(b"plain@", b"p%d@" % i)))
    batch += (b"MAIL FROM:<carol@remote.test>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n"
              + dot_stuff(MSG.replace(b"plain@", b"p2@")))     # a retry of the third
    await c.send(batch + b"QUIT\r\n")
    codes = [(await c.reply())[:3] for _ in range(4 * 4 + 1)]
    assert codes == ["250", "250", "354", "250"] * 4 + ["221"]
    assert len(await node.inbox("bob")) == 3


async def test_disconnect_mid_data(node: Node) -> None:
    c = await node.raw()
    await c.cmd("EHLO me")
    await c.cmd("MAIL FROM:<carol@remote.test>")
    await c.cmd("RCPT TO:<bob@example.com>")
    assert (await c.cmd("DATA")).startswith("354")
    await c.send(MSG + b"x" * 100_000 + b"\r\n")
    await c.close()
    await asyncio.sleep(0.3)
    assert await node.inbox("bob") == []
    root = Path(str(node.config.data_dir)) / "blobs"
    blobs = [b for b in root.rglob("*") if b.is_file() and b.parent != root]  # not LAYOUT
    assert blobs == []
    assert [b async for b, _ in node.blobs.list()] == []  # packed ones too


swaks = pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed "
                           "(Debian package swaks; ops/test installs it)")


async def run_swaks(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "swaks", "--server", "127.0.0.1", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode("utf-8", "replace")


@swaks
async def test_swaks_mx_pipelining(node: Node) -> None:
    code, out = await run_swaks("--port", str(node.port()), "--from", "carol@remote.test",
                                "--to", "alice@example.com,bob@example.com", "--pipeline",
                                "--header", "Subject: swaks")
    assert code == 0, out
    assert "250 2.0.0 OK" in out
    assert len(await node.inbox("alice")) == 1 and len(await node.inbox("bob")) == 1


@swaks
async def test_swaks_submission_tls_auth(node: Node) -> None:
    code, out = await run_swaks("--port", str(node.port("submission")), "--tls",
                                "--auth", "PLAIN", "--auth-user", "alice",
                                "--auth-password", "wrong", "--from", "alice@example.com",
                                "--to", "bob@example.com")
    assert code != 0 and "535 5.7.8" in out
    code, out = await run_swaks("--port", str(node.port("submission")), "--tls",
                                "--auth", "LOGIN", "--auth-user", "alice",
                                "--auth-password", "wonderland", "--from", "alice@example.com",
                                "--to", "bob@example.com")
    assert code == 0, out
    [raw] = await node.inbox("bob")
    assert b"with ESMTPSA (TLSv1.3)" in raw
    code, out = await run_swaks("--port", str(node.port()), "--from", "carol@remote.test",
                                "--to", "someone@elsewhere.test")
    assert code != 0 and "554 5.7.1 Relay access denied" in out


async def test_temporary_failure_retry_is_idempotent(node: Node) -> None:
    """One recipient fails temporarily: 451, the client retries the same message, and the
    recipient already served does not get it twice (the delivery id is the same)."""
    delivery = node.in_this_process()
    delivery.failing = {"bob"}
    with pytest.raises(smtplib.SMTPDataError) as e:
        await asyncio.to_thread(send, node.port(), "carol@remote.test",
                                ["alice@example.com", "bob@example.com"], MSG)
    assert e.value.smtp_code == 451
    assert len(await node.inbox("alice")) == 1 and await node.inbox("bob") == []
    delivery.failing = set()
    await asyncio.to_thread(send, node.port(), "carol@remote.test",
                            ["bob@example.com", "alice@example.com"], MSG)
    assert len(await node.inbox("alice")) == 1 and len(await node.inbox("bob")) == 1


async def test_quota_and_metrics(node: Node) -> None:
    node.in_this_process()

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0
    accepted = sample("fdbmail_smtp_messages_total", listener="mx", result="accepted",
                      reason="ok")
    partial = sample("fdbmail_smtp_messages_total", listener="mx", result="partial",
                     reason="recipient_failed")
    big = MSG + b"x" * 4000 + b"\r\n"
    with pytest.raises(smtplib.SMTPDataError) as e:
        await asyncio.to_thread(send, node.port(), "carol@remote.test", ["carl@example.com"],
                                big)
    assert (e.value.smtp_code, e.value.smtp_error) == (552, b"5.2.2 Mailbox full")
    # over quota for one, stored for the other: accepted (and counted as partial)
    await asyncio.to_thread(send, node.port(), "carol@remote.test",
                            ["carl@example.com", "bob@example.com"], big)
    assert await node.inbox("carl") == [] and len(await node.inbox("bob")) == 1
    await asyncio.to_thread(send, node.port(), "carol@remote.test", ["carl@example.com"], MSG)
    assert len(await node.inbox("carl")) == 1
    assert sample("fdbmail_smtp_messages_total", listener="mx", result="accepted",
                  reason="ok") == accepted + 1
    assert sample("fdbmail_smtp_messages_total", listener="mx", result="partial",
                  reason="recipient_failed") == partial + 1
    assert sample("fdbmail_smtp_delivery_duration_seconds_count") > 0
    assert sample("fdbmail_smtp_connections_total", listener="mx", result="accepted") > 0

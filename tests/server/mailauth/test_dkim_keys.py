"""DKIM keys: made (RSA-2048, Ed25519), kept in the store on every engine, listed;
``fdbmail dkim generate|list`` prints the TXT record to publish (RFC 6376 section
3.6.1; RFC 8463 section 4 for k=ed25519)."""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from fdb_layers.engine.sqlite import SqliteEngine
from server.cli import main as cli
from server.mailauth.dkim_keys import (
    DkimKeyError,
    KeyCache,
    generate,
    get_key,
    list_keys,
    store_key,
    txt_record,
)


def test_rsa_key_is_2048_bits_and_its_record_holds_the_public_key() -> None:
    key = generate("Example.TEST.", "rsa", now=1796520000)
    assert (key.domain, key.selector, key.algorithm) == ("example.test", "rsa202612", "rsa")
    public = serialization.load_der_public_key(base64.b64decode(key.public))
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
    assert key.record() == f"v=DKIM1; k=rsa; p={key.public.decode()}"
    line = txt_record(key)
    assert line.startswith("rsa202612._domainkey.example.test. IN TXT ( \"v=DKIM1; k=rsa; p=")
    strings = re.findall(r'"([^"]*)"', line)
    assert all(len(s) <= 255 for s in strings) and "".join(strings) == key.record()


def test_ed25519_key_record() -> None:
    key = generate("example.test", "ed25519", selector="mail", now=0)
    assert len(base64.b64decode(key.public)) == 32        # RFC 8463 section 4
    assert len(base64.b64decode(key.private)) == 32
    assert txt_record(key) == (f'mail._domainkey.example.test. IN TXT ( "v=DKIM1; '
                               f'k=ed25519; p={key.public.decode()}" )')


@pytest.mark.parametrize("domain", ["", "localhost", "a..b", "-x.test.", "a b.test",
                                    "x" * 64 + ".test"])
def test_bad_domains_are_refused(domain: str) -> None:
    with pytest.raises(DkimKeyError):
        generate(domain, "ed25519")


@pytest.mark.parametrize("selector", ["a_b", "a..b", "sel ector", "é"])
def test_bad_selectors_are_refused(selector: str) -> None:
    with pytest.raises(DkimKeyError):
        generate("example.test", "ed25519", selector=selector)


async def test_keys_in_the_store(engine: Engine) -> None:
    rsa_old = generate("example.test", "rsa", selector="old", now=1000)
    rsa_new = generate("example.test", "rsa", selector="new", now=2000)
    ed = generate("example.test", "ed25519", selector="ed", now=1500)
    other = generate("other.test", "ed25519", selector="ed", now=1500)
    for key in (rsa_old, rsa_new, ed, other):
        for _ in range(2):
            await transact(engine, store_key, key)
    assert await transact(engine, get_key, "example.test", "new") == rsa_new
    assert await transact(engine, list_keys, "example.test") == [ed, rsa_new, rsa_old]
    assert len(await transact(engine, list_keys)) == 4
    # signing uses the newest key of each algorithm
    assert await KeyCache(engine).keys_for("EXAMPLE.test") == [ed, rsa_new]
    assert await KeyCache(engine).keys_for("nokeys.test") == []


async def test_cli_generate_and_list(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    cfg = tmp_path / "fdbmail.toml"
    cfg.write_text(f'[server]\ndata_dir = "{data}"\n')

    def run(*args: str) -> int:
        return cli(["-c", str(cfg), "dkim", *args])

    assert await asyncio.to_thread(run, "generate", "example.test", "--selector", "s1") == 0
    out = capsys.readouterr().out
    assert 's1._domainkey.example.test. IN TXT ( "v=DKIM1; k=rsa; p=' in out
    assert await asyncio.to_thread(run, "generate", "example.test", "--algorithm",
                                   "ed25519", "--selector", "s2") == 0
    assert "k=ed25519" in capsys.readouterr().out
    # the same selector again: refused, the stored key kept
    assert await asyncio.to_thread(run, "generate", "example.test", "--selector", "s1") == 1
    assert "selector s1 already" in capsys.readouterr().err
    assert await asyncio.to_thread(run, "generate", "not a domain") == 1
    assert "not a domain name" in capsys.readouterr().err
    assert await asyncio.to_thread(run, "list") == 0
    out = capsys.readouterr().out
    assert "example.test s1 rsa" in out and "example.test s2 ed25519" in out
    engine = await SqliteEngine.open(data / "store.sqlite3")
    try:
        keys = await transact(engine, list_keys, "example.test")
    finally:
        await engine.close()
    assert [(k.selector, k.algorithm) for k in keys] == [("s1", "rsa"), ("s2", "ed25519")]
    assert keys[0].record() in out.replace('" "', "").replace('"', "")


async def test_the_node_signs_unless_turned_off(tmp_path: Path) -> None:
    from server.config import load_config
    from server.mailauth.sign import Signer
    from server.node.parts import signer

    engine = await SqliteEngine.open(tmp_path / "store.sqlite3")
    try:
        on = load_config(None, env={})
        off = on.with_overrides({"mailauth": {"dkim_sign": False}})
        assert isinstance(signer(on, engine), Signer)
        assert signer(off, engine) is None
    finally:
        await engine.close()


def test_config_show_documents_mailauth(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "[mailauth]" in out and "dmarc_policy" in out and "trusted_networks" in out

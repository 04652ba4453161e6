"""HTTP Basic on every JMAP request, through a real node and its SQLite directory: the
credential cache's password versions are reused while the directory's file is unchanged
(server/directory/sqlite_memo.py), so a password changed by ``fdbmail directory passwd``
(another process) must refuse the old password at the very next request (RFC 7617 section
2: the server checks the credentials of each request), and take the new one."""

from __future__ import annotations

from server.jmap.session import API_PATH
from tests.server.directory.conftest import run_cli
from tests.server.jmap.test_mail import Mail, mail

__all__ = ["mail"]

ECHO = {"using": ["urn:ietf:params:jmap:core"],
        "methodCalls": [["Core/echo", {"hello": True}, "e"]]}


async def test_a_password_changed_by_the_cli_is_seen_by_the_next_request(mail: Mail) -> None:
    cfg = mail.node.config.data_dir.parent / "fdbmail.toml"
    async with mail.client() as c:
        for _ in range(3):  # the versions are looked up once, then reused
            assert (await c.post(API_PATH, json=ECHO)).status_code == 200
        assert run_cli(cfg, "passwd", "alice", "--password-stdin", stdin="changed\n") == 0
        r = await c.post(API_PATH, json=ECHO)
        assert r.status_code == 401, r.text
    async with mail.client() as c:
        c.auth = ("alice", "changed")
        assert (await c.post(API_PATH, json=ECHO)).status_code == 200
        assert (await c.post(API_PATH, json=ECHO)).status_code == 200
    async with mail.client("bob") as b:
        assert (await b.post(API_PATH, json=ECHO)).status_code == 200

"""Robustness of the whole JMAP surface of a real node (issue 13): every method with
arguments of any shape and type, unknown properties, strings JSON can carry but UTF-8
cannot, an announced gigabyte: each gets its RFC 8620 error (section 3.6.1
request-level, 3.6.2 method-level) with its status, never a 500 nor serverFail, and
the node stays up.

The node runs in its own thread and event loop, so that hypothesis drives it with
plain synchronous httpx calls."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.config import load_config
from server.directory.apppasswords import AppPasswords
from server.jmap.errors import METHOD_ERRORS
from server.node.node import Node
from tests.server.directory.conftest import run_cli
from tests.server.jmap.conftest import JSON
from tests.server.jmap.test_download import deliver
from tests.server.jmap.test_mail import Mail
from tests.server.jmap.messages import ALTERNATIVE
from tests.server.jmap.test_mail import _config

USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail",
         "urn:ietf:params:jmap:blob", "urn:ietf:params:jmap:quota",
         "urn:ietf:params:jmap:submission"]
METHODS = [
    "Core/echo", "Mailbox/get", "Mailbox/changes", "Mailbox/query", "Mailbox/queryChanges",
    "Mailbox/set", "Email/get", "Email/changes", "Email/query", "Email/queryChanges",
    "Email/set", "Email/copy", "Email/import", "Email/parse", "Thread/get",
    "Thread/changes", "SearchSnippet/get", "Blob/copy", "Blob/get", "Blob/lookup",
    "Blob/upload", "Quota/get", "Quota/changes", "Quota/query", "Quota/queryChanges",
    "Identity/get", "Identity/changes", "Identity/set"]
ARGUMENTS = [
    "accountId", "fromAccountId", "ids", "properties", "bodyProperties", "filter", "sort",
    "position", "anchor", "anchorOffset", "limit", "calculateTotal", "collapseThreads",
    "sinceState", "sinceQueryState", "maxChanges", "upToId", "create", "update",
    "destroy", "ifInState", "ifFromInState", "onSuccessDestroyOriginal", "blobIds",
    "emails", "emailIds", "typeNames", "offset", "length", "fetchTextBodyValues",
    "fetchHTMLBodyValues", "fetchAllBodyValues", "maxBodyValueBytes",
    "onDestroyRemoveEmails", "sortAsTree", "filterAsTree", "unknown"]
# what a method may answer for arguments it cannot use; never serverFail (a bug) nor
# serverUnavailable / serverPartialFail (the store is up)
EXPECTED_ERRORS = METHOD_ERRORS - {"serverFail", "serverUnavailable", "serverPartialFail"}


class NodeThread:
    """A node started and stopped in a thread of its own."""

    def __init__(self, tmp_path: Path) -> None:
        cfg = _config(tmp_path)
        assert run_cli(cfg, "add-domain", "example.com") == 0
        for name, password in {"alice": "wonderland", "bob": "builder"}.items():
            assert run_cli(cfg, "add", name, "--email", f"{name}@example.com",
                           "--password-stdin", stdin=password + "\n") == 0
        self.node = Node(load_config(cfg, env={}))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.run(self.node.start())
        assert self.node.http is not None
        self.base = f"http://127.0.0.1:{self.node.http.port}"
        directory = self.node.directory
        assert directory is not None
        alice = self.run(directory.get_principal("alice"))
        bob = self.run(directory.get_principal("bob"))
        self.ids = {"alice": alice.id, "bob": bob.id}
        # a bearer token: checked by its SHA-256, not a password hash per request
        assert isinstance(directory, AppPasswords)
        _, self.token = self.run(directory.create(alice, "robustness tests"))

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def stop(self) -> None:
        try:
            self.run(self.node.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(30)
            self.loop.close()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeThread]:
    n = NodeThread(tmp_path_factory.mktemp("robust"))
    try:
        # a message, so that ids, blobs and parts exist
        n.run(deliver(Mail(n.node, n.ids), ALTERNATIVE))
        yield n
    finally:
        n.stop()


def _client(node: NodeThread) -> httpx.Client:
    return httpx.Client(base_url=node.base, timeout=60,
                        headers={"Authorization": f"Bearer {node.token}"})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=False) | st.text(max_size=12)
    | st.sampled_from(["alice", "#a", "inbox", "\udc80", "$seen", "receivedAt", "1", ""]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8) | st.sampled_from(
        ["name", "parentId", "role", "keywords/$seen", "mailboxIds", "inMailbox", "text",
         "property", "isAscending", "operator", "conditions", "#ids", "data", "blobId"]),
        children, max_size=4),
    max_leaves=20)


def _arguments(account: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(ARGUMENTS), json_values, max_size=6).flatmap(
        lambda args: st.sampled_from([{**args, "accountId": account}, args]))


def _check(r: httpx.Response, method: str) -> None:
    assert r.status_code in (200, 400), r.text
    body = r.json()
    if r.status_code == 400:  # a request-level problem (RFC 7807)
        assert body["type"].startswith("urn:ietf:params:jmap:error:"), body
        return
    for name, args, _ in body["methodResponses"]:
        if name == "error":
            assert args["type"] in EXPECTED_ERRORS, (method, args)
        else:
            assert name in METHODS or name.split("/")[0] in {"Email", "Mailbox"}, name


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(data=st.data())
def test_any_arguments_to_any_method_get_a_method_answer(node: NodeThread,
                                                         data: st.DataObject) -> None:
    """RFC 8620 3.6.2: invalidArguments and friends, never serverFail."""
    method = data.draw(st.sampled_from(METHODS))
    args = data.draw(_arguments(node.ids["alice"]))
    raw = json.dumps({"using": USING, "methodCalls": [[method, args, "c0"]]})
    with _client(node) as c:
        r = c.post("/jmap/api", content=raw.encode("utf-8", "surrogatepass"), headers=JSON)
    _check(r, method)


@pytest.mark.parametrize("method", METHODS)
def test_unknown_properties_and_wrong_types_are_invalid_arguments(
        node: NodeThread, method: str) -> None:
    """RFC 8620 3.6.2 and 5.1: an unknown argument or property, or an argument of the
    wrong type, is invalidArguments (or unknownMethod for one outside the method)."""
    account = node.ids["alice"]
    calls = [
        [method, {"accountId": account, "noSuchArgument": 1}, "a"],
        [method, {"accountId": 7}, "b"],
        [method, {"accountId": account, "ids": "not a list", "properties": ["nope"]}, "c"],
        [method, {"accountId": account, "properties": [1, {}], "filter": "x",
                  "sort": {"a": 1}, "limit": "ten", "create": [], "update": 3}, "d"],
    ]
    with _client(node) as c:
        r = c.post("/jmap/api", json={"using": USING, "methodCalls": calls})
    assert r.status_code == 200, r.text
    for name, args, call_id in r.json()["methodResponses"]:
        if method == "Core/echo":
            assert name == "Core/echo"
            continue
        assert name == "error", (method, call_id, args)
        assert args["type"] == "invalidArguments", (method, call_id, args)


def test_lone_surrogates_in_any_string_are_not_json(node: NodeThread) -> None:
    """JSON may escape a lone surrogate that no UTF-8 can carry; JMAP requests are
    I-JSON (RFC 8620 section 1.5, RFC 7493 section 2.1), so wherever it is, the
    request is notJSON (400), never a 500."""
    account = node.ids["alice"]
    bad = "\\ud800x\\udfff"
    calls = [
        f'["Mailbox/set", {{"accountId": "{account}", '
        f'"create": {{"m": {{"name": "{bad}"}}}}}}, "a"]',
        f'["Email/query", {{"accountId": "{account}", "filter": {{"text": "{bad}"}}}}, "b"]',
        f'["Mailbox/get", {{"accountId": "{account}", "ids": ["{bad}"]}}, "c"]',
        f'["Email/get", {{"accountId": "{account}", "ids": ["x"], '
        f'"properties": ["header:{bad}"]}}, "e"]',
        f'["Blob/upload", {{"accountId": "{account}", "create": {{"b": {{"data": '
        f'[{{"data:asText": "{bad}"}}]}}}}}}, "f"]',
        f'["Core/echo", {{"{bad}": 1}}, "g"]',
    ]
    with _client(node) as c:
        for call in calls:
            raw = f'{{"using": {json.dumps(USING)}, "methodCalls": [{call}]}}'
            r = c.post("/jmap/api", content=raw.encode(), headers=JSON)
            assert r.status_code == 400, (call, r.text)
            assert r.json()["type"] == "urn:ietf:params:jmap:error:notJSON"
        # the same calls with the string made valid run
        raw = f'{{"using": {json.dumps(USING)}, "methodCalls": [{", ".join(calls)}]}}'
        r = c.post("/jmap/api", content=raw.replace(bad, "ok").encode(), headers=JSON)
        _check(r, "several")
        assert r.status_code == 200 and len(r.json()["methodResponses"]) == len(calls)


def test_invalid_utf8_anywhere_in_a_request_is_not_json(node: NodeThread) -> None:
    """RFC 8620 3.6.1: a body that is not UTF-8 JSON (RFC 8259 section 8.1) is
    notJSON, 400."""
    with _client(node) as c:
        for raw in (b'{"using": ["\xff"], "methodCalls": []}',
                    b'\xef\xbb\xbf{"using": [], "methodCalls": []}\xc3',
                    b'{"using": [], "methodCalls": [["Core/echo", {"a": "\xed\xa0\x80"}, "0"]]}'):
            r = c.post("/jmap/api", content=raw, headers=JSON)
            assert r.status_code == 400, r.text
            assert r.json()["type"] == "urn:ietf:params:jmap:error:notJSON"


def _raw(node: NodeThread, data: bytes) -> bytes:
    assert node.node.http is not None
    with socket.create_connection(("127.0.0.1", node.node.http.port), timeout=30) as s:
        s.sendall(data)
        answer = b""
        while b"\r\n\r\n" not in answer or not _complete(answer):
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def test_an_announced_gigabyte_request_is_refused_before_it_is_read(
        node: NodeThread) -> None:
    """RFC 8620 3.6.1 limit maxSizeRequest, 400, answered from Content-Length alone
    while the client has sent nothing of its body; the node stays up."""
    auth = base64.b64encode(b"alice:wonderland").decode()
    head = ("POST /jmap/api HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Basic {auth}\r\nContent-Length: 1073741824\r\n\r\n")
    answer = _raw(node, head.encode() + b'{"using": [')
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 400"), answer[:300]
    problem = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert problem["type"] == "urn:ietf:params:jmap:error:limit"
    assert problem["limit"] == "maxSizeRequest"
    with _client(node) as c:  # still up
        r = c.post("/jmap/api", json={"using": USING,
                                      "methodCalls": [["Core/echo", {"x": 1}, "0"]]})
        assert r.json()["methodResponses"] == [["Core/echo", {"x": 1}, "0"]]
        assert c.get("/healthz").status_code == 200


@pytest.mark.parametrize("path", [
    "/download/{alice}/" + "f" * 10_000 + "/x",
    "/download/{alice}/%ff%fe/x",
    "/download/{alice}/..%2f..%2fetc%2fpasswd/x",
    "/download/{alice}/{sha}_1_1_1_1_1_1_1_1_1_1_1_1_1_1_1_1_1_1_1_1_1_1_1_1_1_1_1/x",
    "/download/{alice}/{sha}_99999999999999999999999/x",
    "/download/%ff/{sha}/x",
    "/download/{bob}/{sha}/x",
    "/download/{alice}/{sha}_%00/x",
])
def test_odd_download_paths_are_not_found(node: NodeThread, path: str) -> None:
    """RFC 8620 6.2: a blob the account cannot read is 404, whatever its id looks like."""
    with _client(node) as c:
        email = c.post("/jmap/api", json={"using": USING, "methodCalls": [
            ["Email/query", {"accountId": node.ids["alice"]}, "q"],
            ["Email/get", {"accountId": node.ids["alice"], "properties": ["blobId"],
                           "#ids": {"resultOf": "q", "name": "Email/query",
                                    "path": "/ids"}}, "g"]]}).json()
        sha = email["methodResponses"][1][1]["list"][0]["blobId"]
        r = c.get(path.format(alice=node.ids["alice"], bob=node.ids["bob"], sha=sha))
    assert r.status_code == 404, r.text


@pytest.mark.parametrize("path", ["/upload/%ff/", "/upload/{bob}/", "/upload/" + "a" * 5000 + "/"])
def test_odd_upload_paths_are_refused(node: NodeThread, path: str) -> None:
    """RFC 8620 6.1: an upload to an account that is not the caller's is refused."""
    with _client(node) as c:
        r = c.post(path.format(bob=node.ids["bob"]), content=b"data")
    assert r.status_code in (403, 404), r.text
    assert r.headers["content-type"] == "application/problem+json"

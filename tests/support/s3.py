"""A real S3-compatible server for tests: ``moto_server`` in a subprocess.

Use the session-scoped fixture from any test module::

    from tests.support.s3 import s3_server  # noqa: F401  (a pytest fixture)

    async def test_x(s3_server: S3Server) -> None:
        bucket = s3_server.create_bucket()
        ...  # endpoint s3_server.endpoint_url, keys s3_server.access_key/secret_key

The server listens on 127.0.0.1 on a free port, speaks real HTTP, and is
killed when the session ends.  No in-process mocking.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REGION = "us-east-1"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
_bucket_numbers = itertools.count(1)


@dataclass
class S3Server:
    endpoint_url: str
    process: subprocess.Popen[bytes]
    region: str = REGION
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    buckets: list[str] = field(default_factory=list)

    def client(self) -> Any:
        """A plain (blocking) boto3 client, for setup and checks in tests."""
        import boto3  # type: ignore[import-untyped]

        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, region_name=self.region,
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)

    def create_bucket(self, name: str | None = None) -> str:
        """A new empty bucket (a fresh name by default, so tests do not share state)."""
        name = name or f"test-bucket-{os.getpid()}-{next(_bucket_numbers)}"
        self.client().create_bucket(Bucket=name)
        self.buckets.append(name)
        return name


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/moto-api/", timeout=1):
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.05)
    raise RuntimeError(f"moto_server did not answer on {url} within {timeout}s")


def start_s3_server(timeout: float = 30.0) -> S3Server:
    """Start ``moto_server`` from this interpreter's environment; stop it with
    :func:`stop_s3_server`."""
    exe = Path(sys.executable).parent / "moto_server"
    port = _free_port()
    process = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, timeout)
    except BaseException:
        stop_s3_server(process)
        raise
    return S3Server(url, process)


def stop_s3_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A running S3-compatible server for the whole test session."""
    server = start_s3_server()
    try:
        yield server
    finally:
        stop_s3_server(server.process)

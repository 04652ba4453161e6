"""A small filesystem of its own for tests of a full disk: a tmpfs mounted on
a temporary folder (root only; the tests that need it skip elsewhere).

    from tests.support.disk import tiny_disk  # noqa: F401  (a pytest fixture)

    def test_x(tiny_disk: TinyDisk) -> None:
        tiny_disk.fill()     # a file takes every free block: writes fail with ENOSPC
        tiny_disk.free()     # and space returns
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class TinyDisk:
    path: Path

    @property
    def _filler(self) -> Path:
        return self.path / "filler"

    def fill(self) -> None:
        """Write a file until the filesystem has no block left."""
        with open(self._filler, "ab", buffering=0) as f:
            chunk = b"\0" * 65536
            while True:
                try:
                    f.write(chunk)
                except OSError:
                    if len(chunk) == 1:
                        return
                    chunk = chunk[: len(chunk) // 2]

    def free(self) -> None:
        self._filler.unlink(missing_ok=True)


@pytest.fixture
def tiny_disk() -> Iterator[TinyDisk]:
    """A 4 MiB tmpfs, unmounted after the test."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    path = Path(tempfile.mkdtemp(prefix="fdbmail-disk-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs",
                              str(path)], capture_output=True, text=True)
    if mounted.returncode != 0:
        path.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield TinyDisk(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
        path.rmdir()

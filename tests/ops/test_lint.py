"""The checks STYLE.md asks for, run by CI: ruff on the whole tree, mypy (strict where
pyproject.toml says so) on the layers and the wire parsers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff() -> None:
    result = run(str(BIN / "ruff"), "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_on_layers_and_wire_parsers() -> None:
    result = run(sys.executable, "-m", "mypy", "--no-incremental", "fdb_layers",
                 "mailtext", "server/smtp/wire", "server/imap/wire")
    assert result.returncode == 0, result.stdout + result.stderr

"""The checks STYLE.md asks for, run by CI: ruff on the whole tree, mypy over the
whole tree (strict where pyproject.toml says so: the layers and every wire parser)."""

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


def test_mypy_on_the_whole_tree() -> None:
    """Typed defs everywhere; strict on the layers and every wire/ parser (pyproject.toml)."""
    result = run(sys.executable, "-m", "mypy", "--no-incremental", "server", "fdb_layers",
                 "mailtext")
    assert result.returncode == 0, result.stdout + result.stderr

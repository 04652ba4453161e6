"""Checks of a /metrics exposition shared by the tests."""

from __future__ import annotations

import shutil
import subprocess

import pytest


def assert_promtool_accepts(text: str) -> None:
    """Prometheus's own linter accepts ``text`` (skips where promtool is missing)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Debian package prometheus) is not installed; ops/test installs it")
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr

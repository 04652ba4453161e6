"""The benchmark scripts keep running (their figures are in the README).

Only that they run to the end and print their comparison is checked here:
timings never belong in tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("script", "args", "expect"),
    [
        ("store.py", ["--transactions", "300", "--keys", "2000"],
         ["ceiling: plain sqlite3", "engine tx/s"]),
        ("smtp.py", ["--quick"], ["ceiling", "fdbmail", "ratio fdbmail/ceiling",
                                  "ratio workers=2/ceiling"]),
        ("mailbox.py", ["--quick"], ["open (SELECT data)", "summaries of newest 50"]),
        ("jmap.py", ["--quick"], ["query+get", "Email/changes after", "download of a"]),
        ("imap.py", ["--quick", "--no-dovecot"],
         ["appends/s", "UID FETCH 1:* (FLAGS ENVELOPE)", "UID FETCH BODY[]", "commands/s",
          "SELECT p50 1,000", "IDLE:    100 connections", "store transactions retried"]),
        ("imap.py", ["--parts", "bulk", "--bulk", "300", "--no-dovecot", "--workers", "0"],
         ["UID COPY 1:* A", "UID MOVE 1:* B", "RENAME B C", "DELETE C", "cleanup of C",
          "JMAP Mailbox/set destroy J", "EXPUNGE "]),
        ("mailqueue.py", ["--quick", "--no-postfix"], ["msg/s", "fdbmail ", "p99 ms"]),
    ],
)
def test_benchmark_runs(script: str, args: list[str], expect: list[str], tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "ops" / "bench" / script), *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for text in expect:
        assert text in proc.stdout, f"{script} printed no {text!r}:\n{proc.stdout[-2000:]}"

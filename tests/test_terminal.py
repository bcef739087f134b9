"""The main commands on a real (pseudo-)terminal: exit codes as documented, no traceback.

Every other test runs without a terminal, where the CLI picks the plain
reporter; rich's live progress bars only run when stderr is a TTY. A
terminal-only crash (``task.speed`` is None before a task's first update)
once made every command end in a traceback for anyone who typed it, and
``seed --replace`` wiped the database before it crashed. These tests run
``etl`` as a subprocess with stdin, stdout and stderr on a pty.
"""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest

ETL = Path(sys.executable).with_name("etl")


def run_in_terminal(
    args: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 180.0
) -> tuple[int, str]:
    """Run ``etl ARGS`` on a fresh pty (120×40); its exit code and everything it printed."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "ETL_"))}
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS"):
        base.pop(name, None)
    proc = subprocess.Popen(
        [str(ETL), *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=cwd,
        env={**base, "TERM": "xterm-256color", **env},
        start_new_session=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                pytest.fail(f"etl {' '.join(args)} ran over {timeout}s:\n{_text(chunks)}")
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                continue
            try:
                data = os.read(master, 1 << 16)
            except OSError:  # EIO: every copy of the pty's other end is closed
                break
            if not data:
                break
            chunks.append(data)
        return proc.wait(timeout=30), _text(chunks)
    finally:
        os.close(master)


def _text(chunks: list[bytes]) -> str:
    return b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")


@pytest.mark.unit
def test_speed_renders_before_the_first_update() -> None:
    from etl.progress import format_speed

    assert format_speed(None) == "         – rows/s"
    assert format_speed(1234.4) == "     1,234 rows/s"


@pytest.mark.db
def test_main_commands_on_a_terminal(driver: Any, etl_env: dict[str, str], tmp_path: Path) -> None:
    export, transform = str(tmp_path / "export"), str(tmp_path / "transform")
    stages = ["--in", transform, "--export", export]
    steps: list[tuple[list[str], int, str]] = [
        (["seed", "--workflows", "50", "--dirty", "0.1", "--replace"], 0, "Seeded 50 workflows"),
        (["export", "--out", export], 0, "nodes/Workflow.parquet"),
        (["transform", "--in", export, "--out", transform], 0, f"→ {transform}"),
        # Differences found: the documented exit 1; an export against itself is identical.
        (["diff", export, transform, "--migration", "workflow-to-workflowrun"], 1, "WorkflowRun"),
        (["diff", export, export], 0, "nodes/Workflow"),
        (["plan", *stages], 1, "WorkflowRun"),  # 1: changes pending
        (["load", *stages, "--ledger-dir", str(tmp_path / "load")], 0, "WorkflowRun"),
        (["validate", *stages], 0, "PASS"),
        (["report", "--export", export, "--transform", transform, "--load",
          str(tmp_path / "load"), "--out", str(tmp_path / "report.html")], 0,
         f"Report written to {tmp_path / 'report.html'}"),
    ]  # fmt: skip
    for args, code, expected in steps:
        rc, out = run_in_terminal(args, env=etl_env, cwd=tmp_path)
        assert "Traceback" not in out, f"etl {args[0]} on a terminal:\n{out}"
        assert (rc, expected in out) == (code, True), f"etl {' '.join(args)} → {rc}:\n{out}"
    assert (tmp_path / "report.html").stat().st_size > 0

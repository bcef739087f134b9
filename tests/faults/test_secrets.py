"""Case 6: the password never appears in what the tool writes, shows or runs as.

The whole pipeline runs as real processes with the password in
``NEO4J_PASSWORD`` (the only way to pass it): seed, export, verify, transform,
diff, load, validate, report, backup, plus the error paths (wrong password,
unreachable server), ``--debug`` and ``--json`` included. Then every file
under the working directory, every stdout and stderr, and every ``ps`` line
of the tool's processes sampled while they ran are searched for the password
(and for the wrong one).
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from etl.errors import ExitCode
from etl.settings import Settings
from tests.conftest import free_port
from tests.faults.support import ETL, etl_environ, files_under

CASE = "6. secrets"

pytestmark = pytest.mark.db

WRONG = "wr0ng-Secret-for-the-fault-suite"


class PsSampler:
    """``ps -eo pid,args`` lines of one process tree, sampled until stopped."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.seen = 0
        self._pids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def watch(self, pid: int) -> None:
        self._pids.add(pid)

    def __enter__(self) -> PsSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            out = subprocess.run(
                ["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True
            ).stdout
            for line in out.splitlines():
                parts = line.split(None, 2)
                if len(parts) >= 2 and (int(parts[0]) in self._pids or int(parts[1]) in self._pids):
                    self._pids.add(int(parts[0]))
                    self.lines.append(line)
                    self.seen += 1
            time.sleep(0.05)


def _run(
    sampler: PsSampler,
    env: dict[str, str],
    cwd: Path,
    *args: str | Path,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen(
        [str(ETL), *map(str, args)],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sampler.watch(proc.pid)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_password_appears_nowhere(
    driver: Any, neo4j_settings: Settings, etl_env: dict[str, str], tmp_path: Path
) -> None:
    """The password is in no file, output, error message or `ps` line of the tool"""
    assert neo4j_settings.password is not None
    password = neo4j_settings.password.reveal()
    assert len(password) >= 16
    env = etl_environ(etl_env)
    work = tmp_path / "work"
    work.mkdir()
    e, t, led = work / "export", work / "transform", work / "load"
    outputs: list[str] = []
    with PsSampler() as ps:

        def ok(*args: str | Path, code: int = 0, extra: dict[str, str] | None = None) -> str:
            result = _run(ps, {**env, **(extra or {})}, work, *args)
            outputs.extend([result.stdout, result.stderr])
            assert result.returncode == code, (args, result.stderr[-3000:])
            return result.stdout + result.stderr

        ok("seed", "--workflows", "40", "--dirty", "0.3")
        ok("--json", "export", "--out", e, "--batch-size", "7")
        ok("verify", e)
        ok("transform", "--in", e, "--out", t)
        ok("diff", e, t, "--migration", "workflow-to-workflowrun", "--out", work / "diff", code=1)
        ok("load", "--in", t, "--ledger-dir", led, "--batch-size", "9")
        ok("--json", "validate", "--in", t)
        ok("report", "--export", e, "--transform", t, "--load", led, "--out", work / "r.html")
        ok("backup")
        ok("backup", "--list")

        # Error paths, plain and with tracebacks (--debug).
        down = f"bolt://127.0.0.1:{free_port()}"
        for debug in ((), ("--debug",)):
            code = ExitCode.UNREACHABLE  # --debug adds the traceback, keeps the code
            wrong = ok(*debug, "export", "--out", work / "x", code=code,
                       extra={"NEO4J_PASSWORD": WRONG})  # fmt: skip
            assert "authentication failed" in wrong
            unreachable = ok(*debug, "load", "--in", t, "--ledger-dir", work / "l2",
                             code=code, extra={"NEO4J_URI": down})  # fmt: skip
            assert f"cannot reach Neo4j at {down}" in unreachable
            assert ("Traceback" in unreachable) == bool(debug)
    assert ps.seen >= 10, "ps sampling saw the tool's processes"

    written = files_under(work)
    assert any(p.name == "ledger.jsonl" for p in written)
    assert any(p.suffix == ".html" for p in written)
    assert any(p.parent.parent.name == "backups" for p in written)
    for secret in (password, WRONG):
        needle = secret.encode()
        leaks = [str(p) for p in written if needle in p.read_bytes()]
        assert not leaks, f"password written to {leaks}"
        assert not [o for o in outputs if secret in o], "password in an output or error message"
        assert not [line for line in ps.lines if secret in line], "password in ps output"


def test_credentials_in_the_uri_are_refused_without_echo(
    driver: Any, neo4j_settings: Settings, etl_env: dict[str, str], tmp_path: Path
) -> None:
    """Credentials in NEO4J_URI: refused as a usage error, the password not echoed"""
    assert neo4j_settings.password is not None
    password = neo4j_settings.password.reveal()
    uri = neo4j_settings.uri.replace("://", f"://neo4j:{password}@")
    env = {**etl_environ(etl_env), "NEO4J_URI": uri}
    result = subprocess.run(
        [str(ETL), "export", "--out", str(tmp_path / "x")], env=env, capture_output=True, text=True
    )
    assert password not in result.stdout + result.stderr
    assert result.returncode == ExitCode.USAGE
    assert "Traceback" not in result.stderr

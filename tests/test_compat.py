"""`make test-compat`: the whole tool on each Neo4j version our users run.

For every version in ``ETL_COMPAT_VERSIONS`` (the Makefile passes 5.26.3, which
the application's compose file pins; the pinned 5.26.30; and the newest calendar
release on Maven Central), as a user would type it, each command a process of
its own on a bundled server of that version in a home of its own:

    etl db start → seed 2,000 workflows --dirty → export → transform → load → validate
    → backup → restore online (replay, re-export, diff: identical)
    → restore offline (neo4j-admin import, re-export, diff: identical)
    → load --mode offline of the transform stage (import, counts, invariants) → db stop

Skipped unless ``ETL_COMPAT_VERSIONS`` is set: it takes minutes per version.
Each step's seconds go to ``ETL_COMPAT_REPORT`` (JSON) when that is set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from etl.settings import PROJECT_ROOT
from tests.conftest import free_port

VERSIONS = os.environ.get("ETL_COMPAT_VERSIONS", "").split()
WORKFLOWS = int(os.environ.get("ETL_COMPAT_WORKFLOWS", "2000"))

pytestmark = [
    pytest.mark.db,
    pytest.mark.slow,
    pytest.mark.skipif(not VERSIONS, reason="set ETL_COMPAT_VERSIONS (make test-compat)"),
]


class Run:
    """Runs `etl` commands in a working directory of its own, timing each one."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd, self.env = cwd, env
        self.seconds: dict[str, float] = {}

    def __call__(self, step: str, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "etl.cli", "--quiet", *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        self.seconds[step] = round(time.perf_counter() - started, 1)
        assert proc.returncode == expect, (
            f"`etl {' '.join(args)}` exited {proc.returncode}, not {expect}\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def json(self, step: str, *args: str) -> Any:
        return json.loads(self(step, "--json", *args).stdout)


def _record(version: str, seconds: dict[str, float]) -> None:
    report = os.environ.get("ETL_COMPAT_REPORT")
    if not report:
        return
    path = Path(report)
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[version] = {**seconds, "total": round(sum(seconds.values()), 1)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


@pytest.mark.parametrize("version", VERSIONS)
def test_the_pipeline_round_trips_on(version: str, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "ETL_NEO4J_"))}
    env |= {
        "ETL_NEO4J_HOME": str(tmp_path / "home"),
        "ETL_NEO4J_BOLT_PORT": str(port),
        "ETL_NEO4J_VERSION": version,
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    run = Run(tmp_path, env)
    try:
        started = run.json("db start", "db", "start")
        assert started["uri"] == f"bolt://127.0.0.1:{port}"
        status = run.json("db status", "db", "status")
        assert status["version"] == f"{version} community"

        seeded = run.json("seed", "seed", "--workflows", str(WORKFLOWS), "--dirty", "0.1")
        run("export", "export", "--out", "data/export")
        transformed = run.json(
            "transform", "transform", "--in", "data/export", "--out", "data/transform"
        )
        assert transformed["runs_out"] == seeded["expected"]["runs_out"]
        assert transformed["rejected"] == seeded["expected"]["rejected"]
        run("load", "load", "--in", "data/transform", "--ledger-dir", "data/load")
        valid = run("validate", "validate", "--in", "data/transform")
        assert valid.stdout.rstrip().endswith("All invariants hold."), valid.stdout

        run("backup", "backup", "--root", "backups")
        (backup,) = (tmp_path / "backups").iterdir()
        for mode in ("online", "offline"):
            args = ["restore", str(backup), "--replace", "--mode", mode]
            restored = run.json(f"restore {mode}", *args, "--work-dir", f"data/restore-{mode}")
            assert restored["diff"]["identical"] is True, restored["diff"]
        run(
            "load offline",
            *("load", "--mode", "offline", "--replace", "--in", "data/transform"),
            *("--ledger-dir", "data/load-offline"),
        )
    finally:
        run("db stop", "db", "stop")
        _record(version, run.seconds)

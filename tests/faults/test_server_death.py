"""Case 2: the Neo4j server dies during a load (SIGTERM and SIGKILL), then restarts.

These tests run their own server (a temporary home on a free port), since
they stop it. The load is a real process paused (injected) before its 5th
batch; the server is then stopped, the load released, and the server started
again. The load must either finish through the driver's retries (exit 0) or
exit with the documented "unreachable" code 4; ``--resume`` then completes,
and the graph equals the uninterrupted replay of the same stage.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from etl import localdb
from etl.errors import ExitCode
from etl.graph.connection import open_driver
from etl.settings import Settings, load_settings
from tests.conftest import free_port
from tests.faults.conftest import Record
from tests.faults.support import ETL, etl_environ, fault, run_etl, wait_for
from tests.test_load_support import Stages, snapshot

CASE = "2. server dies during load"

pytestmark = [pytest.mark.db, pytest.mark.slow]


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("neo4j-own")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
    overrides = {"local_home": str(home), "bolt_port": free_port()}
    settings = load_settings(overrides, environ=environ, env_file=Path("/nonexistent"))
    localdb.start(settings)
    settings = load_settings(overrides, environ=environ, env_file=Path("/nonexistent"))
    try:
        yield settings
    finally:
        localdb.stop(settings)


def _env(settings: Settings) -> dict[str, str]:
    assert settings.password is not None
    return {
        "NEO4J_URI": settings.uri,
        "NEO4J_USERNAME": settings.username,
        "NEO4J_PASSWORD": settings.password.reveal(),
        "NEO4J_DATABASE": settings.database,
    }


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_server_dies_mid_load_then_resume(
    how: signal.Signals,
    own_server: Settings,
    legacy_stages: Stages,
    replay_snapshot: Any,
    tmp_path: Path,
    record: Record,
) -> None:
    """Server stopped mid-load and restarted: exit 0 or 4, `--resume` gives the same graph"""
    from etl.graph import admin

    with open_driver(own_server) as driver:
        admin.wipe_database(driver, own_server.database)
    env = _env(own_server)
    ledger, mark, release = tmp_path / "ledger", tmp_path / "paused", tmp_path / "go"
    args = ["load", "--in", str(legacy_stages.transform), "--ledger-dir", str(ledger)]
    spec = fault("etl.load:write_batch", 5, "pause", release=str(release))
    proc = subprocess.Popen(
        [str(ETL), *args, "--batch-size", "10"],
        env=etl_environ(env, fault_spec=spec, mark=mark),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(mark, proc)
    pid = localdb.status(own_server).pid
    assert pid is not None
    if how == signal.SIGTERM:
        localdb.stop(own_server)
    else:
        os.kill(pid, signal.SIGKILL)
        while localdb.status(own_server).running:
            time.sleep(0.1)
    release.touch()  # the load meets a dead server
    time.sleep(1.0)
    localdb.start(own_server)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode in (ExitCode.OK, ExitCode.UNREACHABLE), err[-3000:]
    if proc.returncode == ExitCode.UNREACHABLE:
        assert f"Error: cannot reach Neo4j at {own_server.uri}" in err
        assert "Traceback" not in err
    record.note(f"{how.name}: load exit {proc.returncode}")
    resumed = run_etl(env, *args, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "All invariants hold." in resumed.stdout
    with open_driver(own_server) as driver:
        assert snapshot(driver, own_server) == replay_snapshot

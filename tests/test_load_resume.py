"""Interrupted loads: an exception between batches, and a real SIGKILL, then `--resume`.

Both end in the same graph as an uninterrupted load (the snapshot of the
stage replayed into an empty database, which ``test_load`` proves equal to an
in-place load), and a resumed load skips what the ledger says committed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from etl.errors import StageError
from etl.graph.write import write_batch
from etl.load import run_load
from etl.settings import Settings
from tests.test_load_support import (
    cypher,
    legacy_scenario,
    legacy_stages,
    replay_snapshot,
    snapshot,
)

__all__ = ["legacy_stages", "replay_snapshot"]  # session fixtures used here

pytestmark = pytest.mark.db

ETL = Path(sys.executable).with_name("etl")


def _ledger(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip().endswith("}")]


def test_exception_between_batches_then_resume(
    driver: Any,
    neo4j_settings: Settings,
    replay_snapshot: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stages = legacy_scenario(driver, neo4j_settings, tmp_path)
    ledger = tmp_path / "ledger"
    real = write_batch
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("simulated crash between batches")
        return real(*args, **kwargs)

    monkeypatch.setattr("etl.load.write_batch", flaky)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_load(
            neo4j_settings, in_dir=stages.transform, ledger_dir=ledger, batch_size=8, workers=1
        )
    monkeypatch.setattr("etl.load.write_batch", real)
    committed = [e for e in _ledger(ledger / "ledger.jsonl") if e["t"] == "batch"]
    assert len(committed) == 3
    assert not any(e["t"] == "done" for e in _ledger(ledger / "ledger.jsonl"))
    assert not cypher(driver, neo4j_settings, "MATCH (l:EtlLock) RETURN l"), "lock released"

    with pytest.raises(StageError, match="--resume"):
        run_load(neo4j_settings, in_dir=stages.transform, ledger_dir=ledger, batch_size=4)
    # The batch size of the ledger wins: batches must line up with the recorded ones.
    resumed = run_load(
        neo4j_settings, in_dir=stages.transform, ledger_dir=ledger, batch_size=1000, resume=True
    )
    assert resumed.report["batch_size"] == 8
    assert resumed.report["rows_skipped"] == sum(e["rows"] for e in committed)
    assert resumed.validation is not None and resumed.validation.ok
    assert snapshot(driver, neo4j_settings) == replay_snapshot


def test_sigkill_then_resume(
    driver: Any,
    neo4j_settings: Settings,
    replay_snapshot: Any,
    tmp_path: Path,
    etl_env: dict[str, str],
) -> None:
    stages = legacy_scenario(driver, neo4j_settings, tmp_path)
    ledger = tmp_path / "ledger"
    env = {**os.environ, **etl_env}
    args = [str(ETL), "load", "--in", str(stages.transform), "--ledger-dir", str(ledger)]
    proc = subprocess.Popen(
        [*args, "--batch-size", "5"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while sum(e["t"] == "batch" for e in _ledger(ledger / "ledger.jsonl")) < 2:
        assert proc.poll() is None, (
            f"load ended before the kill: {proc.stderr and proc.stderr.read().decode()}"
        )
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    entries = _ledger(ledger / "ledger.jsonl")
    assert not any(e["t"] == "done" for e in entries)
    assert cypher(driver, neo4j_settings, "MATCH (l:EtlLock) RETURN l.pid AS pid") == [
        {"pid": proc.pid}
    ], "a killed load leaves its lock behind"

    refused = subprocess.run(args, env=env, capture_output=True, text=True)
    assert refused.returncode == 1
    assert "--resume" in refused.stderr
    resumed = subprocess.run([*args, "--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "took over the lock" in resumed.stderr
    assert "All invariants hold." in resumed.stdout
    report = json.loads((ledger / "report.json").read_text())
    assert report["rows_skipped"] >= 10
    assert snapshot(driver, neo4j_settings) == replay_snapshot


def test_fresh_replay_crash_after_commit_before_ledger_line(
    driver: Any,
    neo4j_settings: Settings,
    legacy_stages: Any,
    replay_snapshot: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worst moment to die: a batch committed, its ledger line not yet written.

    A fresh replay creates (does not merge), so replaying that batch would
    duplicate it; its marker, committed in the same transaction, says it is
    done, and the resumed load skips it.
    """
    from etl.load_ledger import Ledger

    ledger = tmp_path / "ledger"
    real = Ledger.batch
    calls = {"n": 0}

    def dies_before_third_line(self: Ledger, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("killed between commit and ledger line")
        real(self, *args, **kwargs)

    monkeypatch.setattr(Ledger, "batch", dies_before_third_line)
    with pytest.raises(RuntimeError, match="between commit and ledger line"):
        run_load(
            neo4j_settings,
            in_dir=legacy_stages.transform,
            ledger_dir=ledger,
            batch_size=50,
            workers=1,
        )
    monkeypatch.setattr(Ledger, "batch", real)
    header = _ledger(ledger / "ledger.jsonl")[0]
    assert header["fresh"] is True
    assert cypher(driver, neo4j_settings, "MATCH (m:EtlBatch) RETURN count(m) AS n")[0]["n"] >= 3

    resumed = run_load(
        neo4j_settings, in_dir=legacy_stages.transform, ledger_dir=ledger, resume=True
    )
    assert resumed.validation is not None and resumed.validation.ok
    # Batches 0, 1 and 3 have ledger lines (3 was in flight and finished); 2 has its marker.
    assert resumed.report["rows_skipped"] == 4 * 50
    assert snapshot(driver, neo4j_settings) == replay_snapshot
    assert cypher(driver, neo4j_settings, "MATCH (m:EtlBatch) RETURN count(m) AS n")[0]["n"] == 0

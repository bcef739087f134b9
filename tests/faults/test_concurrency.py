"""Case 7: two `etl load` at once; the second is refused by the lock; `--break-lock`.

Load A is a real process paused (by the injected ``sitecustomize``) just before
its first batch: it holds the lock, its ledger has a header, nothing is
written. Load B then runs for real and must be refused with the holder named,
writing nothing. Released, A finishes into the same graph as an uninterrupted
load.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from etl.errors import ExitCode
from etl.settings import Settings
from tests.faults.support import (
    ETL,
    db_state,
    etl_environ,
    fault,
    killed_at,
    run_etl,
    wait_for,
)
from tests.test_load_support import Stages, cypher, snapshot

CASE = "7. concurrency"

pytestmark = pytest.mark.db

README = Path(__file__).resolve().parents[2] / "README.md"


def _start_paused(
    etl_env: dict[str, str], stages: Stages, ledger: Path, tmp_path: Path
) -> tuple[subprocess.Popen[str], Path]:
    mark, release = tmp_path / "paused", tmp_path / "release"
    spec = fault("etl.load:write_batch", 1, "pause", release=str(release))
    proc = subprocess.Popen(
        [str(ETL), "load", "--in", str(stages.transform), "--ledger-dir", str(ledger)],
        env=etl_environ(etl_env, fault_spec=spec, mark=mark),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(mark, proc)
    return proc, release


def test_second_load_is_refused_by_the_lock(
    driver: Any,
    neo4j_settings: Settings,
    legacy_stages: Stages,
    replay_snapshot: Any,
    etl_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """A second load (new ledger, or --resume of the first's) is refused; the first finishes"""
    ledger_a, ledger_b = tmp_path / "a", tmp_path / "b"
    proc, release = _start_paused(etl_env, legacy_stages, ledger_a, tmp_path)
    try:
        holder = f"pid {proc.pid}"
        lock = cypher(driver, neo4j_settings, "MATCH (l:EtlLock) RETURN l.pid AS pid")
        assert lock == [{"pid": proc.pid}]
        before = db_state(driver, neo4j_settings)

        other = run_etl(etl_env, "load", "--in", legacy_stages.transform, "--ledger-dir", ledger_b)
        assert other.returncode == ExitCode.FAILURE, other.stderr
        assert re.search(
            rf"Error: another load holds the lock: \S+@\S+ {holder}, load", other.stderr
        )
        assert "`etl load --break-lock`" in other.stderr
        assert not ledger_b.exists(), "the refused load started no ledger"

        same = run_etl(
            etl_env, "load", "--in", legacy_stages.transform, "--ledger-dir", ledger_a, "--resume"
        )
        assert same.returncode == ExitCode.FAILURE, same.stderr
        assert "another load holds the lock: " in same.stderr and holder in same.stderr
        assert "took over" not in same.stderr, "a live holder's lock is never taken over"
        assert db_state(driver, neo4j_settings) == before, "the refused loads wrote nothing"
    finally:
        release.touch()
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "All invariants hold." in out
    assert snapshot(driver, neo4j_settings) == replay_snapshot
    assert not cypher(driver, neo4j_settings, "MATCH (l:EtlLock) RETURN l")


def test_break_lock_removes_a_lock_left_on_another_host(
    driver: Any,
    neo4j_settings: Settings,
    legacy_stages: Stages,
    replay_snapshot: Any,
    etl_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """A lock left by a dead load on another host: refused until `--break-lock`, then resumed"""
    ledger, mark = tmp_path / "ledger", tmp_path / "mark"
    args = ("load", "--in", legacy_stages.transform, "--ledger-dir", ledger)
    dead = run_etl(
        etl_env, *args, "--batch-size", "10", fault_spec=fault("etl.load:write_batch", 3), mark=mark
    )
    killed_at(dead, mark)
    # Seen from here, the holder ran elsewhere: its pid cannot be checked, the lock is kept.
    cypher(driver, neo4j_settings, "MATCH (l:EtlLock) SET l.host = 'build-07', l.pid = 4242")
    refused = run_etl(etl_env, *args, "--resume")
    assert refused.returncode == ExitCode.FAILURE
    assert "another load holds the lock: " in refused.stderr
    assert "remove the lock with `etl load --break-lock`" in refused.stderr

    broken = run_etl(etl_env, "load", "--break-lock")
    assert broken.returncode == 0, broken.stderr
    assert broken.stdout.startswith("Removed the load lock of ")
    again = run_etl(etl_env, "load", "--break-lock")
    assert again.stdout.strip() == "No load lock was held."

    resumed = run_etl(etl_env, *args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "All invariants hold." in resumed.stdout
    assert snapshot(driver, neo4j_settings) == replay_snapshot


def test_break_lock_is_documented() -> None:
    """`--break-lock` appears in the README and in `etl load --help`"""
    assert "[--break-lock]" in README.read_text()
    result = subprocess.run([str(ETL), "load", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "--break-lock" in result.stdout and "stale load lock" in result.stdout


def test_break_lock_refuses_a_live_local_holder(
    driver: Any, legacy_stages: Stages, etl_env: dict[str, str], tmp_path: Path
) -> None:
    """`--break-lock` refuses to break the lock of a load that is still running here"""
    proc, release = _start_paused(etl_env, legacy_stages, tmp_path / "a", tmp_path)
    try:
        broken = run_etl(etl_env, "load", "--break-lock")
        assert broken.returncode == ExitCode.FAILURE, broken.stdout
        assert f"pid {proc.pid}" in broken.stderr and "still running" in broken.stderr
    finally:
        release.touch()
        proc.communicate(timeout=300)

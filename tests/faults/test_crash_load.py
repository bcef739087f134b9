"""Case 1: `etl load` SIGKILLed at exact points, then `etl load --resume`.

The load runs as a real process; the injected ``sitecustomize`` SIGKILLs it at
the k-th call of a function (before it, or after it returned), so every point
is hit exactly, without timing. After the kill, ``--resume`` must finish
(exit 0, invariants hold), and the graph must be the uninterrupted run's:

* a re-export (``--all``) diffs empty (``etl diff`` exit 0) against the
  re-export of an uninterrupted load of the same stage;
* no duplicate node or relationship: per label (nodes, distinct keys) and per
  type (relationships, distinct endpoint pairs) equal the uninterrupted run's;
* the whole-graph snapshot equals the uninterrupted run's.

Replay points use the standard scenario's stage into an empty database (a
*fresh* replay: batch markers give exactly-once); in-place points seed, export
and transform the legacy graph per test, then convert it where it lies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from etl.export import run_export
from etl.graph import admin
from etl.load import run_load
from etl.settings import Settings
from tests.faults.support import fault, key_census, killed_at, ledger, run_etl
from tests.test_load_support import Stages, cypher, legacy_scenario, snapshot

CASE = "1. crash during load"

pytestmark = pytest.mark.db

BATCH = "10"


@dataclass(frozen=True)
class Reference:
    export: Path
    census: dict[str, tuple[int, int]]
    graph: tuple[list[str], list[str]]


def _reference(driver: Any, settings: Settings, out: Path) -> Reference:
    export = run_export(settings, out_dir=out, all_labels=True).out_dir
    return Reference(export, key_census(driver, settings), snapshot(driver, settings))


@pytest.fixture(scope="session")
def replay_reference(
    tmp_path_factory: pytest.TempPathFactory,
    neo4j_settings: Settings,
    _session_driver: Any,
    legacy_stages: Stages,
) -> Reference:
    """The uninterrupted replay of the standard stage, re-exported."""
    root = tmp_path_factory.mktemp("replay-ref")
    admin.wipe_database(_session_driver, neo4j_settings.database)
    run_load(neo4j_settings, in_dir=legacy_stages.transform, ledger_dir=root / "ledger")
    ref = _reference(_session_driver, neo4j_settings, root / "export")
    admin.wipe_database(_session_driver, neo4j_settings.database)
    return ref


@pytest.fixture(scope="session")
def in_place_reference(
    tmp_path_factory: pytest.TempPathFactory, neo4j_settings: Settings, _session_driver: Any
) -> Reference:
    """The uninterrupted in-place load of the standard scenario, re-exported."""
    root = tmp_path_factory.mktemp("in-place-ref")
    admin.wipe_database(_session_driver, neo4j_settings.database)
    stages = legacy_scenario(_session_driver, neo4j_settings, root)
    result = run_load(neo4j_settings, in_dir=stages.transform, ledger_dir=root / "ledger")
    assert result.mode == "in-place"
    ref = _reference(_session_driver, neo4j_settings, root / "re-export")
    admin.wipe_database(_session_driver, neo4j_settings.database)
    return ref


TX_RUN = "neo4j:ManagedTransaction.run"
RELS = "-[r:"  # the text of every relationship write statement
RETIRE = "REMOVE n:`Workflow`"  # the in-place Workflow → WorkflowRun conversion

#: (id, mode, fault spec, what is left when it dies, quick?)
POINTS: list[tuple[str, str, dict[str, Any], bool]] = [
    ("before-first-batch", "replay", fault("etl.load:write_batch", 1), False),
    ("committed-before-ledger-line", "replay", fault("etl.load:write_batch", 4, "after"), False),
    ("between-batches-after-ledger-line", "replay",
     fault("etl.load_ledger:Ledger.batch", 6, "after"), False),
    ("inside-node-transaction", "replay",
     fault(TX_RUN, 9, "after", match="UNWIND", peek=True), True),
    ("inside-relationship-transaction", "replay",
     fault(TX_RUN, 3, "after", match=RELS, peek=True), False),
    ("between-relationship-batches", "replay",
     fault("etl.load:write_batch", 2, "after", match=RELS), False),
    ("clearing-batch-markers", "replay", fault("etl.load:clear_markers", 1), False),
    ("during-validation", "replay", fault("etl.load:check_loaded", 1), False),
    ("inside-legacy-retirement-transaction", "in-place",
     fault(TX_RUN, 2, "after", match=RETIRE, peek=True), False),
    ("between-legacy-retirement-batches", "in-place",
     fault("etl.load:write_batch", 2, "after", match=RETIRE), False),
    ("inside-has-runs-transaction", "in-place",
     fault(TX_RUN, 1, "after", match="-[r:`HAS_RUNS`]", peek=True), False),
]  # fmt: skip


def _params() -> list[Any]:
    return [
        pytest.param(mode, spec, id=name, marks=() if quick else pytest.mark.slow)
        for name, mode, spec, quick in POINTS
    ]


@pytest.mark.parametrize(("mode", "spec"), _params())
def test_sigkill_then_resume_gives_the_uninterrupted_graph(
    mode: str,
    spec: dict[str, Any],
    driver: Any,
    neo4j_settings: Settings,
    legacy_stages: Stages,
    request: pytest.FixtureRequest,
    etl_env: dict[str, str],
    run_cli: Any,
    tmp_path: Path,
) -> None:
    """SIGKILL at an exact point, `--resume`: re-export diffs empty, no duplicates"""
    if mode == "replay":
        stage = legacy_stages.transform
        ref: Reference = request.getfixturevalue("replay_reference")
    else:
        ref = request.getfixturevalue("in_place_reference")  # first: it wipes the database
        stage = legacy_scenario(driver, neo4j_settings, tmp_path / "stages").transform
    led, mark = tmp_path / "ledger", tmp_path / "mark"
    args = ("load", "--in", stage, "--ledger-dir", led, "--batch-size", BATCH)
    killed = run_etl(etl_env, *args, fault_spec=spec, mark=mark)
    killed_at(killed, mark)
    entries = ledger(led / "ledger.jsonl")
    assert entries and entries[0]["t"] == "header" and entries[0]["mode"] == mode, entries[:1]
    finished = any(e["t"] == "done" for e in entries)
    assert finished == (spec["target"] == "etl.load:check_loaded")

    if not finished:
        refused = run_etl(etl_env, *args)
        assert refused.returncode == 1 and "--resume" in refused.stderr, refused.stderr
    resumed = run_etl(etl_env, *args, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "All invariants hold." in resumed.stdout
    if not finished:
        assert "took over the lock" in resumed.stderr, "the dead load's lock was taken over"

    assert not cypher(driver, neo4j_settings, "MATCH (l:EtlLock) RETURN l")
    assert not cypher(driver, neo4j_settings, "MATCH (m:EtlBatch) RETURN m LIMIT 1")
    assert key_census(driver, neo4j_settings) == ref.census
    again = run_export(neo4j_settings, out_dir=tmp_path / "re-export", all_labels=True).out_dir
    diff = run_cli("diff", str(ref.export), str(again))
    assert diff.exit_code == 0, diff.output
    assert snapshot(driver, neo4j_settings) == ref.graph

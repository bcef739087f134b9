"""What `etl load` refuses, and the lock: nothing is written unless everything checks out.

Uses one transform stage for the module (replayed into the empty database the
``driver`` fixture gives each test), and copies of it that are tampered with.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from etl.errors import ExitCode, LockHeld
from etl.graph.schema import acquire_lock, release_lock
from etl.load import run_load
from etl.settings import Settings
from etl.stage import StageWriter, TableEntry
from tests.test_load_support import (
    Stages,
    counts,
    cypher,
    legacy_scenario,
    legacy_stages,
    schema_names,
)

__all__ = ["legacy_stages"]  # session fixture used here

pytestmark = pytest.mark.db


@pytest.fixture
def stages(legacy_stages: Stages) -> Stages:
    return legacy_stages


def _untouched(driver: Any, settings: Settings) -> None:
    assert counts(driver, settings) == {"labels": {}, "types": {}}
    assert schema_names(driver, settings) == []
    assert not cypher(driver, settings, "MATCH (l:EtlLock) RETURN l")


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_tampered_stage_is_refused_before_any_write(
    driver: Any, neo4j_settings: Settings, stages: Stages, tmp_path: Path, run_cli: Any
) -> None:
    copy = tmp_path / "transform"
    shutil.copytree(stages.transform, copy)
    _flip(copy / "nodes" / "WorkflowRun.parquet")
    result = run_cli("load", "--in", str(copy), "--ledger-dir", str(tmp_path / "l"))
    assert result.exit_code == ExitCode.VALIDATION, result.output
    assert "nodes/WorkflowRun.parquet: sha256 differs" in result.output
    _untouched(driver, neo4j_settings)
    assert not (tmp_path / "l").exists(), "no ledger for a refused input"


def test_lineage_is_checked(
    driver: Any, neo4j_settings: Settings, stages: Stages, tmp_path: Path, run_cli: Any
) -> None:
    base = ("load", "--in", str(stages.transform), "--ledger-dir", str(tmp_path / "l"))
    missing = run_cli(*base, "--export", str(tmp_path / "nowhere"))
    assert missing.exit_code == ExitCode.VALIDATION
    assert "the export this transform was made from is missing" in missing.output

    tampered = tmp_path / "export"
    shutil.copytree(stages.export, tampered)
    _flip(tampered / "nodes" / "Workflow.parquet")
    bad = run_cli(*base, "--export", str(tampered))
    assert bad.exit_code == ExitCode.VALIDATION
    assert "nodes/Workflow.parquet: sha256 differs" in bad.output

    other = tmp_path / "other-export"
    with StageWriter(other, stage="export") as w:
        import pyarrow as pa

        w.write_table(
            TableEntry("nodes/Workflow.parquet", "node", "Workflow", key=["id"]),
            pa.table({"_element_id": ["4:x:1"], "id": ["w1"]}),
        )
        w.commit()
    wrong = run_cli(*base, "--export", str(other))
    assert wrong.exit_code == ExitCode.VALIDATION
    assert "is not the export" in wrong.output
    _untouched(driver, neo4j_settings)


def test_a_database_that_is_neither_empty_nor_the_source_is_refused(
    driver: Any, neo4j_settings: Settings, stages: Stages, tmp_path: Path, run_cli: Any
) -> None:
    cypher(driver, neo4j_settings, "CREATE (:Something {id: 'else'})")
    result = run_cli("load", "--in", str(stages.transform), "--ledger-dir", str(tmp_path / "l"))
    assert result.exit_code == ExitCode.FAILURE
    assert "neither the source" in result.output and "--into-nonempty" in result.output
    assert counts(driver, neo4j_settings)["labels"] == {"Something": 1}
    forced = run_cli(
        "load",
        "--in",
        str(stages.transform),
        "--ledger-dir",
        str(tmp_path / "l"),
        "--into-nonempty",
    )
    assert forced.exit_code == ExitCode.VALIDATION, forced.output  # Something is unexpected
    assert "FAIL  5." in forced.output and "Something 1 (expected 0)" in forced.output


def test_lock_contention_and_break_lock(
    driver: Any, neo4j_settings: Settings, stages: Stages, tmp_path: Path, run_cli: Any
) -> None:
    other = acquire_lock(driver, neo4j_settings.database, purpose="load", input_sha="x")
    with pytest.raises(LockHeld, match="--break-lock") as held:
        run_load(neo4j_settings, in_dir=stages.transform, ledger_dir=tmp_path / "l")
    assert other.holder in str(held.value)
    result = run_cli("load", "--in", str(stages.transform), "--ledger-dir", str(tmp_path / "l"))
    assert result.exit_code == ExitCode.FAILURE
    assert f"another load holds the lock: {other.holder}" in result.output
    assert counts(driver, neo4j_settings) == {"labels": {}, "types": {}}, "nothing written"

    # The holder is this (live) process: not stale, so --break-lock refuses.
    live = run_cli("load", "--break-lock")
    assert live.exit_code == ExitCode.FAILURE
    assert "still running on this host" in live.output
    # A holder on another host cannot be checked from here: the user vouches for it.
    cypher(driver, neo4j_settings, "MATCH (l:EtlLock) SET l.host = 'another-host'")
    broken = run_cli("load", "--break-lock")
    assert broken.exit_code == 0
    assert f"Removed the load lock of {other.holder}" in broken.output
    release_lock(driver, neo4j_settings.database, other)  # the old holder: a no-op now
    assert run_cli("load", "--break-lock").output.strip() == "No load lock was held."
    ok = run_cli("load", "--in", str(stages.transform), "--ledger-dir", str(tmp_path / "l"))
    assert ok.exit_code == 0, ok.output
    assert not cypher(driver, neo4j_settings, "MATCH (l:EtlLock) RETURN l")


def test_unfinished_ledger_rules(
    driver: Any, neo4j_settings: Settings, stages: Stages, tmp_path: Path, run_cli: Any
) -> None:
    ledger = tmp_path / "l"
    ledger.mkdir()
    header = {
        "t": "header",
        "input_manifest_sha256": "another",
        "input": "/old/stage",
        "started_at": "2026-01-01T00:00:00Z",
        "mode": "replay",
    }
    (ledger / "ledger.jsonl").write_text(json.dumps(header) + "\n")
    base = ("load", "--in", str(stages.transform), "--ledger-dir", str(ledger))
    other = run_cli(*base)
    assert other.exit_code == ExitCode.FAILURE
    assert "unfinished load of another input (/old/stage" in other.output
    both = run_cli(*base, "--resume", "--restart")
    assert both.exit_code == ExitCode.USAGE
    assert "--resume and --restart exclude each other" in both.output
    restarted = run_cli(*base, "--restart")
    assert restarted.exit_code == 0, restarted.output
    assert len(list(ledger.glob("ledger.*.jsonl"))) == 1, "the discarded ledger is kept aside"
    # The offline import replaces a whole database: refused on this loaded one, untouched.
    before = counts(driver, neo4j_settings)
    offline = run_cli(*base, "--mode", "offline")
    assert offline.exit_code == ExitCode.FAILURE
    assert "an offline import replaces the whole database" in offline.output
    assert counts(driver, neo4j_settings) == before


def test_another_copy_of_the_legacy_graph_is_refused(
    driver: Any, neo4j_settings: Settings, stages: Stages, tmp_path: Path, run_cli: Any
) -> None:
    """The exported legacy graph under other element ids (a dump, or a file copy that
    got a new database id) is not the exported database. Its Events carry the stage's
    ids, which once passed for "an earlier replay" and wrote a second node per run
    beside the legacy Workflows."""
    legacy_scenario(driver, neo4j_settings, tmp_path / "again")  # the same seed and size
    # Each Workflow becomes a copy of itself: the same graph, new element ids.
    cypher(
        driver,
        neo4j_settings,
        "MATCH (w:Workflow) CREATE (c:Workflow) SET c = properties(w) DETACH DELETE w",
    )
    exported = pq.read_table(stages.transform / "nodes" / "WorkflowRun.parquet")
    pairs = exported.select(["_element_id", "id"]).to_pylist()
    assert not cypher(
        driver,
        neo4j_settings,
        "UNWIND $pairs AS p MATCH (w:Workflow) WHERE elementId(w) = p._element_id "
        "AND w.id = p.id RETURN w LIMIT 1",
        pairs=pairs,
    ), "precondition: no exported Workflow kept its element id"
    before = counts(driver, neo4j_settings)
    result = run_cli("load", "--in", str(stages.transform), "--ledger-dir", str(tmp_path / "l"))
    assert result.exit_code == ExitCode.FAILURE, result.output
    assert "sampled WorkflowRuns are legacy Workflows in this database" in result.output
    assert "export and transform this database again" in result.output
    assert counts(driver, neo4j_settings) == before
    assert not cypher(driver, neo4j_settings, "MATCH (l:EtlLock) RETURN l")


def test_an_unloadable_table_fails_before_the_first_write(
    driver: Any, neo4j_settings: Settings, tmp_path: Path, run_cli: Any
) -> None:
    """A relationship table whose endpoint label has no node table: refused before any write.

    The node table sorts first, so without the preflight its rows were written
    and committed before the relationship step failed: a half-applied load.
    """
    import pyarrow as pa

    stage = tmp_path / "backup"
    with StageWriter(stage, stage="export") as w:
        w.write_table(
            TableEntry("nodes/Workflow.parquet", "node", "Workflow", key=["id"]),
            pa.table({"_element_id": ["4:x:1", "4:x:2"], "id": ["w1", "w2"]}),
        )
        w.write_table(
            TableEntry("relationships/HAUNTS.parquet", "relationship", "HAUNTS"),
            pa.table(
                {
                    "_element_id": ["5:x:9"],
                    "_start_label": ["Ghost"],
                    "_start_element_id": ["4:x:7"],
                    "_start.id": ["g1"],
                    "_end_label": ["Workflow"],
                    "_end_element_id": ["4:x:1"],
                    "_end.id": ["w1"],
                }
            ),
        )
        w.commit()
    result = run_cli("load", "--in", str(stage), "--ledger-dir", str(tmp_path / "l"))
    assert result.exit_code == ExitCode.FAILURE, result.output
    assert (
        "Error: relationships/HAUNTS: endpoint label 'Ghost' has no node table in the stage"
        in result.output
    )
    # Only the lock's constraint (taking the lock makes it): no data, no record, no ledger.
    assert counts(driver, neo4j_settings) == {"labels": {}, "types": {}}
    assert set(schema_names(driver, neo4j_settings)) <= {"etl_lock"}
    assert not cypher(driver, neo4j_settings, "MATCH (h:EtlHistory) RETURN h")
    assert not (tmp_path / "l" / "ledger.jsonl").exists()

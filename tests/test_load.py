"""`etl load` against the real server: replay, in place, no-op reloads, plans, rollback.

The stages come from the real pipeline (seed → export → transform, see
``test_load_support``). The strongest checks here: a graph loaded *in place*
and the same stage *replayed* into an empty database hold exactly the same
data (``snapshot``); the plan counts exactly what the load then does; and a
rollback gives back an export equal to the original one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from etl.export import run_export
from etl.load import run_load
from etl.load_input import open_input
from etl.load_plan import run_plan
from etl.load_rollback import run_rollback
from etl.settings import Settings
from etl.validate import expected_counts
from tests.test_load_support import (
    Stages,
    counts,
    cypher,
    legacy_scenario,
    legacy_stages,
    replay_snapshot,
    schema_names,
    snapshot,
)

__all__ = ["legacy_stages", "replay_snapshot"]  # session fixtures used here

pytestmark = pytest.mark.db


def test_replay_into_empty_database_and_reload_is_a_no_op(
    driver: Any,
    neo4j_settings: Settings,
    legacy_stages: Stages,
    replay_snapshot: Any,
    tmp_path: Path,
) -> None:
    stages, expected = legacy_stages, replay_snapshot
    first = run_load(neo4j_settings, in_dir=stages.transform, ledger_dir=tmp_path / "l")
    assert first.mode == "replay"
    assert first.validation is not None and first.validation.ok
    stage = open_input(stages.transform)
    assert counts(driver, neo4j_settings) == expected_counts(stage, "replay")
    assert snapshot(driver, neo4j_settings) == expected

    second = run_load(neo4j_settings, in_dir=stages.transform, ledger_dir=tmp_path / "l")
    # The database's history proves this stage is loaded: nothing is written, nothing redone.
    assert second.report["nothing_to_do"] is True
    assert second.report["mode_reason"].startswith("already loaded here: workflow-to-workflowrun")
    assert second.report["applied"]["stage_sha256"] == stage.sha256
    assert second.validation is None  # not validated again: `etl validate` does that
    assert snapshot(driver, neo4j_settings) == expected
    # The ledger of the load that did it is left as it is (not archived, not appended to).
    assert not list((tmp_path / "l").glob("ledger.*.jsonl"))
    assert not run_plan(neo4j_settings, in_dir=stages.transform).changed
    assert not cypher(driver, neo4j_settings, "MATCH (l:EtlLock) RETURN l")


def test_in_place_plan_load_reload_and_rollback(
    driver: Any, neo4j_settings: Settings, replay_snapshot: Any, tmp_path: Path, run_cli: Any
) -> None:
    stages = legacy_scenario(driver, neo4j_settings, tmp_path)
    before = snapshot(driver, neo4j_settings)
    plan = run_plan(neo4j_settings, in_dir=stages.transform)
    assert snapshot(driver, neo4j_settings) == before, "a plan must not write"
    assert plan.mode == "in-place"
    got = {f"{k}/{n}": c.to_json() for (k, n), c in plan.changes.items()}
    assert got == _expected_in_place_plan(stages)
    dry = run_cli("load", "--dry-run", "--in", str(stages.transform))
    assert dry.exit_code == 1, dry.output
    assert "Changes pending" in dry.output

    loaded = run_cli("load", "--in", str(stages.transform), "--ledger-dir", str(tmp_path / "l"))
    assert loaded.exit_code == 0, loaded.output
    assert "in-place load" in loaded.output and "All invariants hold." in loaded.output
    after = snapshot(driver, neo4j_settings)
    assert after == replay_snapshot, "in place and replayed loads must give the same graph"

    again = run_cli("load", "--in", str(stages.transform), "--ledger-dir", str(tmp_path / "l"))
    assert again.exit_code == 0, again.output
    assert snapshot(driver, neo4j_settings) == after
    planned = run_cli("plan", "--in", str(stages.transform))
    assert planned.exit_code == 0, planned.output
    assert "Nothing to change (exit code 0)." in planned.output
    _rollback_restores_the_export(driver, neo4j_settings, stages, tmp_path, run_cli)


def _rollback_restores_the_export(
    driver: Any, neo4j_settings: Settings, stages: Stages, tmp_path: Path, run_cli: Any
) -> None:
    """After the in-place load: `--rollback`, then a re-export equals the original export."""
    ledger = tmp_path / "l"
    names = set(schema_names(driver, neo4j_settings))
    # Event and Plan constraints are built while the batches are written: still there.
    assert {"etl_WorkflowRun_id_unique", "etl_Event_id_unique", "etl_Plan_id_unique"} <= names
    report = json.loads((ledger / "report.json").read_text())
    assert any("(Event {id})" in item for item in report["schema"]), report["schema"]
    out = run_cli("load", "--rollback", "--in", str(stages.transform), "--ledger-dir", str(ledger))
    assert out.exit_code == 0, out.output
    assert "Rolled back to the export" in out.output
    assert set(schema_names(driver, neo4j_settings)) <= {"etl_lock", "etl_history"}
    lines = [json.loads(x) for x in (ledger / "ledger.jsonl").read_text().splitlines()]
    assert lines[-1]["t"] == "rolled_back"

    again = run_export(neo4j_settings, out_dir=tmp_path / "export-after").out_dir
    original = json.loads((stages.export / "manifest.json").read_text())
    after = json.loads((again / "manifest.json").read_text())
    assert [(t["path"], t["rows"]) for t in after["tables"]] == [
        (t["path"], t["rows"]) for t in original["tables"]
    ]
    assert after["source"]["counts_before"] == original["source"]["counts_before"]
    for table in original["tables"]:
        a = pl.read_parquet(stages.export / table["path"])
        b = pl.read_parquet(again / table["path"])
        if table["path"] == "relationships/BASED_ON_ISSUE.parquet":
            # Re-created relationships get new element ids from Neo4j; nothing else may differ.
            cols = [c for c in a.columns if c != "_element_id"]
            a, b = a.select(cols).sort(cols), b.select(cols).sort(cols)
        assert_frame_equal(a, b, check_exact=True)
    # The rolled-back database loads again from the same stage.
    reloaded = run_load(neo4j_settings, in_dir=stages.transform, ledger_dir=ledger)
    assert reloaded.mode == "in-place" and reloaded.validation is not None
    assert reloaded.validation.ok


def _expected_in_place_plan(stages: Stages) -> dict[str, dict[str, Any]]:
    """What the in-place load must change, counted from the Parquet tables themselves."""
    t, e = stages.transform, stages.export
    runs = pl.read_parquet(t / "nodes/WorkflowRun.parquet")
    issues = pl.read_parquet(t / "nodes/Issue.parquet")
    legacy = pl.read_parquet(e / "nodes/Workflow.parquet").filter(
        pl.col("_element_id").is_in(runs["_element_id"].implode())
    )
    based_on = pl.read_parquet(e / "relationships/BASED_ON_ISSUE.parquet").filter(
        pl.col("_start_element_id").is_in(runs["_element_id"].implode())
    )
    n_runs, created = runs.height, int(issues["_created"].sum())

    def change(kind: str, name: str, **kw: Any) -> dict[str, Any]:
        base = {
            "kind": kind,
            "name": name,
            "create": 0,
            "update": 0,
            "unchanged": 0,
            "delete": 0,
            "properties_set": {},
            "properties_removed": {},
            "missing": 0,
        }
        return {**base, **kw}

    def non_null(frame: pl.DataFrame, col: str) -> int:
        return frame.height - frame[col].null_count()

    sets = {
        c: non_null(runs, c)
        for c in ("workflowType", "createdAt", "status", "result", "postToGithub")
    }
    removes = {c: non_null(legacy, c) for c in ("metadata", "created_at")}
    return {
        "label/Issue": change(
            "label",
            "Issue",
            create=created,
            update=issues.height - created,
            properties_set={"number": issues.height - created},
        ),
        "label/Workflow": change("label", "Workflow", delete=n_runs),
        "label/WorkflowRun": change(
            "label",
            "WorkflowRun",
            update=n_runs,
            properties_set={k: v for k, v in sets.items() if v},
            properties_removed={k: v for k, v in removes.items() if v},
        ),
        "type/BASED_ON_ISSUE": change("type", "BASED_ON_ISSUE", delete=based_on.height),
        "type/HAS_RUNS": change("type", "HAS_RUNS", create=stages.report["has_runs"]),
    }


def test_rollback_of_a_replay_is_refused(
    driver: Any, neo4j_settings: Settings, legacy_stages: Stages, tmp_path: Path
) -> None:
    stages = legacy_stages
    run_load(neo4j_settings, in_dir=stages.transform, ledger_dir=tmp_path / "l")
    with pytest.raises(Exception, match="no legacy state"):
        run_rollback(neo4j_settings, in_dir=stages.transform, ledger_dir=tmp_path / "l")


def test_end_to_end_cli(
    driver: Any, run_cli: Any, tmp_path: Path, neo4j_settings: Settings
) -> None:
    """seed → export → transform → load → validate, and a second load changes nothing."""
    steps = [
        ("seed", "--workflows", "200", "--dirty", "0.2", "--replace"),
        ("export", "--out", str(tmp_path / "export")),
        ("transform", "--in", str(tmp_path / "export"), "--out", str(tmp_path / "transform")),
        ("load", "--in", str(tmp_path / "transform"), "--ledger-dir", str(tmp_path / "load")),
        ("validate", "--in", str(tmp_path / "transform")),
    ]
    for args in steps:
        result = run_cli(*args)
        assert result.exit_code == 0, (args, result.output)
    assert "PASS  5. counts per label and type" in result.output
    first = counts(driver, neo4j_settings)
    report = json.loads((tmp_path / "load" / "report.json").read_text())
    assert report["mode"] == "in-place" and report["validation"]["ok"]
    again = run_cli(
        "load", "--in", str(tmp_path / "transform"), "--ledger-dir", str(tmp_path / "load")
    )
    assert again.exit_code == 0, again.output
    assert counts(driver, neo4j_settings) == first

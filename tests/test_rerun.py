"""Running the pipeline again on a migrated database changes nothing (issue: rerun corruption).

`make export transform load` after a successful in-place load used to take the
re-export for "an earlier replay" and write a second copy of the graph into
production. These tests run the same commands as the Makefile, through the
CLI, against the real server: the database's history (``EtlHistory``) is what
tells every stage that the migration already ran.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from etl.errors import ExitCode
from etl.graph.history import read_history
from etl.load import run_load
from etl.migrations import get_migration, source_checksum
from etl.settings import Settings
from etl.stage import manifest_sha256
from etl.transform import run_transform
from tests.test_load_support import Stages, counts, legacy_stages, snapshot
from tests.test_load_support import legacy_scenario as seed_export_transform

__all__ = ["legacy_stages"]  # session fixture used here

pytestmark = pytest.mark.db


def _tables(stage: Path) -> dict[str, tuple[int, str]]:
    manifest = json.loads((stage / "manifest.json").read_text())
    return {t["path"]: (t["rows"], t["sha256"]) for t in manifest["tables"]}


def _pipeline(run_cli: Any, root: Path) -> tuple[Any, Any, Any]:
    """`make export transform load`, as the Makefile spells it."""
    export = run_cli("export", "--out", str(root / "export"))
    transform = run_cli("transform", "--in", str(root / "export"), "--out", str(root / "transform"))
    load = run_cli("load", "--in", str(root / "transform"), "--ledger-dir", str(root / "load"))
    return export, transform, load


def test_rerunning_the_pipeline_on_a_migrated_database_is_a_no_op(
    driver: Any, neo4j_settings: Settings, tmp_path: Path, run_cli: Any
) -> None:
    first = seed_export_transform(driver, neo4j_settings, tmp_path)
    original_export = _tables(first.export)
    applied_stage = manifest_sha256(first.transform)
    loaded = run_cli("load", "--in", str(first.transform), "--ledger-dir", str(tmp_path / "load"))
    assert loaded.exit_code == 0, loaded.output
    assert "in-place load" in loaded.output
    (record,) = read_history(driver, neo4j_settings.database)
    assert (record["state"], record["mode"]) == ("applied", "in-place")
    assert record["stage_sha256"] == applied_stage
    assert record["migration"] == "workflow-to-workflowrun"
    assert record["migration_version"] == "0001"
    assert record["migration_checksum"] == source_checksum(get_migration(record["migration"]))
    assert record["input_sha256"] == manifest_sha256(first.export)
    migrated = snapshot(driver, neo4j_settings)
    migrated_counts = counts(driver, neo4j_settings)

    reexports = []
    for attempt in (1, 2):
        export, transform, load = _pipeline(run_cli, tmp_path)
        assert export.exit_code == 0, export.output
        assert transform.exit_code == 0, transform.output
        assert load.exit_code == 0, load.output
        # The export sees the migrated graph, WorkflowRuns included, and its history.
        tables = _tables(tmp_path / "export")
        assert "nodes/WorkflowRun.parquet" in tables
        manifest = json.loads((tmp_path / "export" / "manifest.json").read_text())
        assert [h["stage_sha256"] for h in manifest["source"]["history"]] == [applied_stage]
        reexports.append(tables)
        assert "Nothing to migrate: workflow-to-workflowrun is already applied" in (
            transform.output
        )
        assert "left as it is" in transform.output
        assert manifest_sha256(tmp_path / "transform") == applied_stage
        assert "Nothing to load: already loaded here" in load.output
        assert "Nothing was written; `etl validate` checks the database" in load.output
        assert snapshot(driver, neo4j_settings) == migrated, f"rerun {attempt} wrote"
        assert counts(driver, neo4j_settings) == migrated_counts
        # The export the in-place load depends on was kept (once), never overwritten.
        kept = sorted(tmp_path.glob("export.kept-*"))
        assert len(kept) == 1, kept
        assert _tables(kept[0]) == original_export
        if attempt == 1:
            assert f"kept the previous {tmp_path / 'export'} as {kept[0]}" in export.output
        else:
            assert "kept the previous" not in export.output
    assert reexports[0] == reexports[1], "a re-export must be identical to the one before"

    planned = run_cli("plan", "--in", str(tmp_path / "transform"))
    assert planned.exit_code == 0, planned.output
    assert "Nothing to change (exit code 0)." in planned.output

    # The migration can still be undone: the rollback finds its export by identity.
    rolled = run_cli(
        "load", "--rollback", "--in", str(tmp_path / "transform"), "--ledger-dir",
        str(tmp_path / "load"),
    )  # fmt: skip
    assert rolled.exit_code == 0, rolled.output
    back = run_cli("export", "--out", str(tmp_path / "after-rollback"))
    assert back.exit_code == 0, back.output
    diffed = run_cli("diff", str(kept[0]), str(tmp_path / "after-rollback"))
    assert diffed.exit_code == 0, diffed.output
    (record,) = read_history(driver, neo4j_settings.database)
    assert record["state"] == "rolled_back"
    # Rolled back, the migration is pending again: a new transform migrates.
    again = run_cli(
        "transform", "--in", str(tmp_path / "after-rollback"), "--out", str(tmp_path / "t2")
    )
    assert again.exit_code == 0, again.output
    assert "WorkflowRuns out:" in again.output


def test_a_second_transform_of_an_applied_migration_is_refused_before_any_write(
    driver: Any, neo4j_settings: Settings, tmp_path: Path, run_cli: Any
) -> None:
    first = seed_export_transform(driver, neo4j_settings, tmp_path)
    run_load(neo4j_settings, in_dir=first.transform, ledger_dir=tmp_path / "load")
    # Another transform of the same export: another stage (other options), same migration.
    other = run_transform(in_dir=first.export, out_dir=tmp_path / "other", infer_type=True)
    assert other.out_dir is not None
    assert manifest_sha256(other.out_dir) != manifest_sha256(first.transform)
    before = snapshot(driver, neo4j_settings)
    out = run_cli("load", "--in", str(other.out_dir), "--ledger-dir", str(tmp_path / "l2"))
    assert out.exit_code == ExitCode.FAILURE, out.output
    assert "Error: workflow-to-workflowrun is already applied to this database" in out.output
    assert f"etl load --rollback --in {first.transform}" in out.output
    assert snapshot(driver, neo4j_settings) == before
    assert not (tmp_path / "l2" / "ledger.jsonl").exists()
    planned = run_cli("plan", "--in", str(other.out_dir))
    assert planned.exit_code == ExitCode.FAILURE, planned.output
    assert "already applied to this database" in planned.output


def test_keys_that_happen_to_exist_are_not_an_earlier_replay(
    driver: Any, neo4j_settings: Settings, legacy_stages: Stages, tmp_path: Path, run_cli: Any
) -> None:
    """A replayed database is loaded again only by the stage its history names."""
    out = run_cli("load", "--in", str(legacy_stages.export), "--ledger-dir", str(tmp_path / "a"))
    assert out.exit_code == 0, out.output
    assert "replay" in out.output
    replayed = snapshot(driver, neo4j_settings)
    again = run_cli("load", "--in", str(legacy_stages.export), "--ledger-dir", str(tmp_path / "a"))
    assert again.exit_code == 0, again.output
    assert "Nothing to load: already loaded here: the export stage" in again.output
    # The export of the replayed database has the same keys, but it is another stage.
    reexport = run_cli("export", "--out", str(tmp_path / "reexport"))
    assert reexport.exit_code == 0, reexport.output
    refused = run_cli(
        "load", "--in", str(tmp_path / "reexport"), "--ledger-dir", str(tmp_path / "b")
    )
    assert refused.exit_code == ExitCode.FAILURE, refused.output
    assert "source of the export stage" in refused.output
    other = run_cli(
        "load", "--in", str(legacy_stages.transform), "--ledger-dir", str(tmp_path / "c")
    )
    assert other.exit_code == ExitCode.FAILURE, other.output
    assert "another copy of the exported database" in other.output
    assert "etl db reset" not in other.output
    assert snapshot(driver, neo4j_settings) == replayed


def test_rollback_advice_never_wipes_more_than_the_replay(
    driver: Any, neo4j_settings: Settings, legacy_stages: Stages, tmp_path: Path, run_cli: Any
) -> None:
    ledger = tmp_path / "l"
    out = run_cli("load", "--in", str(legacy_stages.transform), "--ledger-dir", str(ledger))
    assert out.exit_code == 0, out.output
    only = run_cli("load", "--rollback", "--in", str(legacy_stages.transform), "--ledger-dir",
                   str(ledger))  # fmt: skip
    assert only.exit_code == ExitCode.FAILURE, only.output
    assert "holds nothing but that replay" in only.output
    assert "etl db reset --yes" in only.output
    driver.execute_query(
        "CREATE (:Unrelated {name: 'precious'})", database_=neo4j_settings.database
    )
    more = run_cli("load", "--rollback", "--in", str(legacy_stages.transform), "--ledger-dir",
                   str(ledger))  # fmt: skip
    assert more.exit_code == ExitCode.FAILURE, more.output
    assert "holds more than that replay" in more.output
    assert "etl db reset" not in more.output
    assert "etl restore" in more.output


def test_what_the_history_lacks_or_leaves_unfinished_is_refused(
    driver: Any, neo4j_settings: Settings, tmp_path: Path, run_cli: Any
) -> None:
    """Each refusal names the fix, and none writes."""
    first = seed_export_transform(driver, neo4j_settings, tmp_path)
    ledger = tmp_path / "load"
    run_load(neo4j_settings, in_dir=first.transform, ledger_dir=ledger)
    migrated = snapshot(driver, neo4j_settings)
    db = neo4j_settings.database

    # A load left unfinished there (as a crash leaves it): a transform of the
    # half-migrated graph would replace the stage --resume needs.
    driver.execute_query("MATCH (h:EtlHistory) SET h.state = 'loading'", database_=db)
    exported = run_cli("export", "--out", str(tmp_path / "e2"))
    assert exported.exit_code == 0, exported.output
    refused = run_cli("transform", "--in", str(tmp_path / "e2"), "--out", str(tmp_path / "t2"))
    assert refused.exit_code == ExitCode.FAILURE, refused.output
    assert "has an unfinished load of workflow-to-workflowrun" in refused.output
    assert f"etl load --in {first.transform} --resume" in refused.output
    assert not (tmp_path / "t2").exists()

    # A database whose history is gone (an older etl, or wiped records).
    driver.execute_query("MATCH (h:EtlHistory) DETACH DELETE h", database_=db)
    again = run_cli("load", "--in", str(first.transform), "--ledger-dir", str(tmp_path / "l2"))
    assert again.exit_code == ExitCode.FAILURE, again.output
    assert "is already converted here, but the database's history has no record" in again.output
    back = run_cli("load", "--rollback", "--in", str(first.transform), "--ledger-dir", str(ledger))
    assert back.exit_code == ExitCode.FAILURE, back.output
    assert "the database has no record of a load of" in back.output

    # A ledger that says "unfinished" is no proof either: the database decides.
    lines = (ledger / "ledger.jsonl").read_text().splitlines()
    (ledger / "ledger.jsonl").write_text("\n".join(lines[:-1]) + "\n")  # as if killed before done
    resumed = run_cli("load", "--resume", "--in", str(first.transform), "--ledger-dir", str(ledger))
    assert resumed.exit_code == ExitCode.FAILURE, resumed.output
    assert "the database has no record of it: it was wiped or replaced since" in resumed.output
    assert "etl load --restart" in resumed.output
    assert snapshot(driver, neo4j_settings) == migrated

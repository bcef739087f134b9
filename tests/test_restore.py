"""`etl restore`: a backup replayed into a fresh database, online and offline, then proven.

The proof is the product's own: ``run_restore`` exports the restored database
again and diffs it against the backup, and fails unless identical. These
tests check that it refuses what it must (non-empty targets, non-backups),
that ``--replace`` puts back exactly the backed-up graph over a changed one,
and, independently of the product's proof, that the restored graph's
snapshot equals the original's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from etl.errors import StageError
from etl.export import run_backup
from etl.restore import run_restore
from etl.seed import seed_database
from etl.settings import Settings
from tests.test_load_support import Stages, counts, cypher, legacy_stages
from tests.test_offline import exact_snapshot, target

__all__ = ["legacy_stages", "target"]  # fixtures used here

pytestmark = pytest.mark.db


def _seed(driver: Any, settings: Settings) -> None:
    seed_database(
        driver, database=settings.database, workflows=40, seed=11, dirty=0.3, replace=False,
        batch_size=200, reporter=None,
    )  # fmt: skip
    # Values and names a restore must carry exactly (mixed types, empty strings, bytes).
    cypher(
        driver,
        settings,
        "CREATE (:`Odd Label` {id: 'x', empty: '', mixed: 1, bytes: $b})"
        "-[:`REL TYPE` {w: []}]->(:`Odd Label` {id: 'y', mixed: 'one'})",
        b=b"\x00\xff",
    )


def test_online_restore_refuses_then_replaces_and_proves(
    driver: Any, neo4j_settings: Settings, tmp_path: Path
) -> None:
    _seed(driver, neo4j_settings)
    original = exact_snapshot(driver, neo4j_settings)
    backup = run_backup(neo4j_settings, root=tmp_path / "backups").out_dir

    # The database is not empty: refused, nothing touched.
    with pytest.raises(StageError, match="not empty: it holds") as e:
        run_restore(neo4j_settings, backup=backup, work_dir=tmp_path / "r1")
    assert "--replace" in str(e.value)
    assert exact_snapshot(driver, neo4j_settings) == original

    # Change the database, then restore over it.
    cypher(driver, neo4j_settings, "MATCH (n:Event) WITH n LIMIT 5 DETACH DELETE n")
    cypher(driver, neo4j_settings, "CREATE (:Intruder {id: 1})")
    report = run_restore(neo4j_settings, backup=backup, work_dir=tmp_path / "r2", replace=True)
    assert report["diff"]["identical"] is True
    assert report["replaced"]["labels"]["Intruder"] == 1
    assert exact_snapshot(driver, neo4j_settings) == original
    assert json.loads((tmp_path / "r2" / "restore.json").read_text())["mode"] == "online"


def test_offline_restore_into_another_home(
    driver: Any, neo4j_settings: Settings, target: Settings, tmp_path: Path
) -> None:
    _seed(driver, neo4j_settings)
    original = exact_snapshot(driver, neo4j_settings)
    before = counts(driver, neo4j_settings)
    backup = run_backup(neo4j_settings, root=tmp_path / "backups").out_dir
    report = run_restore(
        target, backup=backup, work_dir=tmp_path / "r", mode="offline", replace=True
    )
    assert report["diff"]["identical"] is True
    settings = target.with_password(target.password_file.read_text().strip())
    from etl.graph.connection import open_driver

    with open_driver(settings) as d:
        assert exact_snapshot(d, settings) == original
        assert counts(d, settings) == before


def test_restore_refuses_a_stage_that_is_not_a_backup(
    neo4j_settings: Settings, legacy_stages: Stages, tmp_path: Path
) -> None:
    with pytest.raises(StageError, match="is a transform stage, not a backup"):
        run_restore(neo4j_settings, backup=legacy_stages.transform, work_dir=tmp_path)


def test_restore_cli(run_cli: Any, driver: Any, neo4j_settings: Settings, tmp_path: Path) -> None:
    _seed(driver, neo4j_settings)
    backup = run_backup(neo4j_settings, root=tmp_path / "backups").out_dir
    refused = run_cli("restore", str(backup), "--work-dir", str(tmp_path / "w"))
    assert refused.exit_code == 1
    assert "not empty" in refused.output and "--replace" in refused.output
    done = run_cli("restore", str(backup), "--replace", "--work-dir", str(tmp_path / "w"))
    assert done.exit_code == 0, done.output
    assert "identical" in done.output

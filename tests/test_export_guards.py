"""What `etl export` and `etl backup` refuse instead of writing an empty or wrong stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from etl.errors import ExitCode

pytestmark = pytest.mark.db


def test_a_label_that_is_not_in_the_database_is_refused(
    driver: Any, run_cli: Any, tmp_path: Path
) -> None:
    driver.execute_query("CREATE (:Workflow {id: 'w'}), (:Issue {number: 1.0})")
    out = tmp_path / "x"
    result = run_cli("export", "--out", str(out), "--labels", "Workflow,Nope")
    assert result.exit_code == ExitCode.USAGE, result.output
    assert result.stdout == ""
    assert result.stderr == (
        "Error: no node has the label 'Nope' in this database (labels here: Issue, Workflow)\n"
        "  hint: check the spelling in --labels, or export every label with --all\n"
    )
    assert not out.exists()
    ok = run_cli("export", "--out", str(out), "--labels", "Workflow")
    assert ok.exit_code == 0, ok.output
    assert (out / "nodes" / "Workflow.parquet").is_file()


def test_a_backup_of_an_empty_database_is_refused(
    driver: Any, run_cli: Any, tmp_path: Path
) -> None:
    root = tmp_path / "backups"
    result = run_cli("backup", "--root", str(root))
    assert result.exit_code == ExitCode.FAILURE, result.output
    assert result.stderr == (
        "Error: the database is empty: there is nothing to back up\n"
        "  hint: check NEO4J_URI and NEO4J_DATABASE (`etl db status` for the local server)\n"
    )
    assert not root.exists() or not any(root.iterdir())

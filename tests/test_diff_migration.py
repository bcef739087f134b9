"""`etl diff EXPORT TRANSFORM --migration workflow-to-workflowrun` explains the migration."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from etl import migrations
from etl.cli import cli
from etl.diff import run_diff
from etl.diff_render import migration_lines, render
from etl.errors import ConfigError, ExitCode
from etl.migrations import MigrationBase
from etl.migrations.figures import Figure, Row, Table
from etl.transform import run_transform
from tests.test_transform_stage import write_export

pytestmark = pytest.mark.unit


@pytest.fixture
def stages(tmp_path: Path) -> tuple[Path, Path]:
    """One Workflow that migrates (with an issue and an event), one rejected (no metadata)."""
    export = write_export(tmp_path / "export")
    run_transform(in_dir=export, out_dir=tmp_path / "transform")
    return export, tmp_path / "transform"


def test_every_legacy_workflow_is_accounted_for(stages: tuple[Path, Path]) -> None:
    export, transform = stages
    m = run_diff(export, transform, migration="workflow-to-workflowrun").migration
    assert m is not None
    assert (m["workflows_in"], m["migrated"], m["rejected"], m["unaccounted"]) == (2, 1, 1, 0)
    assert m["rejected_by_reason"] == {"metadata_missing": 1}
    assert m["adds_up"] and m["lineage_ok"]
    assert m["samples"]["migrated"] == [
        {"id": "w1", "workflowType": "resolveIssue", "status": "completed"}
    ]
    assert [s["id"] for s in m["samples"]["rejected:metadata_missing"]] == ["w2"]


def test_property_changes_of_migrated_runs(stages: tuple[Path, Path]) -> None:
    export, transform = stages
    m = run_diff(export, transform, migration="workflow-to-workflowrun").migration
    assert m is not None
    p = m["properties"]
    assert p["labels"] == [{"a": ["Workflow"], "b": ["WorkflowRun"], "rows": 1}]
    assert p["removed"] == {"created_at": 1, "metadata": 1}
    assert p["new"] == {
        "workflowType": 1,
        "createdAt": 1,
        "status": 1,
        "result": 0,
        "postToGithub": 1,
    }
    assert p["element_id_kept"] == 1


def test_relationship_changes(stages: tuple[Path, Path]) -> None:
    export, transform = stages
    result = run_diff(export, transform, migration="workflow-to-workflowrun")
    assert result.migration is not None
    rels = {r["type"]: r for r in result.migration["relationships"]}
    assert rels["HAS_RUNS"]["created"] == 1
    belongs = rels["BELONGS_TO_WORKFLOW"]
    assert (belongs["kept"], belongs["removed"], belongs["endpoint_relabelled"]) == (1, 0, 1)
    assert result.moved == [{"from": "Workflow", "to": "WorkflowRun", "key": ["id"], "rows": 1}]


def test_wrong_order_is_explained(stages: tuple[Path, Path]) -> None:
    export, transform = stages
    with pytest.raises(ConfigError, match="B has no nodes/WorkflowRun table"):
        run_diff(transform, export, migration="workflow-to-workflowrun")


def test_cli_summary(stages: tuple[Path, Path]) -> None:
    export, transform = stages
    res = CliRunner().invoke(
        cli, ["diff", str(export), str(transform), "--migration", "workflow-to-workflowrun"]
    )
    assert res.exit_code == ExitCode.FAILURE
    out = res.stdout
    start = out.index("Migration workflow-to-workflowrun")
    assert out[start:].splitlines()[:8] == [
        "Migration workflow-to-workflowrun",
        "  legacy Workflows (A)                     2",
        "  → WorkflowRun (B)                        1",
        "  → rejected (B rejected/Workflow)         1",
        "      metadata_missing                     1",
        "  counts add up: yes",
        "Property changes (1 migrated runs)",
        '  label    ["Workflow"] → ["WorkflowRun"]  1',
    ]
    assert "  HAS_RUNS             0  1     0        1        0           0" in out
    data = json.loads(
        CliRunner()
        .invoke(
            cli,
            [
                "--json",
                "diff",
                str(export),
                str(transform),
                "--migration",
                "workflow-to-workflowrun",
            ],
        )
        .stdout
    )
    assert data["migration"]["migrated"] == 1


def test_out_has_one_row_per_legacy_workflow(stages: tuple[Path, Path], tmp_path: Path) -> None:
    export, transform = stages
    out = tmp_path / "out"
    run_diff(export, transform, migration="workflow-to-workflowrun", out=out)
    rows = pl.read_parquet(out / "migration" / "Workflow.parquet").rows()
    assert rows == [
        ("w1", "migrated", "resolveIssue", "completed", None, None),
        (
            "w2",
            "rejected",
            None,
            None,
            "metadata_missing",
            "Workflow has no metadata, so its workflowType is unknown",
        ),
    ]
    files = json.loads((out / "diff.json").read_text())["files"]
    assert files["migration/Workflow"] == {"rows": 2}
    assert files["nodes/WorkflowRun"] == {"added": 1}


class _Quiet(MigrationBase):
    """A migration with nothing to explain and no figures (MigrationBase's defaults)."""

    name = "quiet"
    version = "9999"
    description = "test only"
    required_inputs: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()


def test_a_migration_with_nothing_to_explain_adds_no_section(
    stages: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    export, transform = stages
    monkeypatch.setitem(migrations._REGISTRY, "quiet", _Quiet)
    result = run_diff(export, transform, migration="quiet")
    assert result.migration is None
    assert "Migration " not in render(result.to_json())


def test_explanation_figures_are_printed_as_they_come() -> None:
    figure = Figure(
        title="Things",
        rows=(
            Row("in", 1_234),
            Row("why", 3, level=1),
            Row("lost", 2, note="← hm"),
            Row("ok", False),
        ),
        groups=(("kind", {"b": 2, "a": 1}),),
        parts=("a", "b"),
        table=Table(headers=("t", "n"), rows=(("x", 10), ("yy", None))),
    )
    data = {"title": "Migration m", "lineage_ok": True, "figures": [figure.to_json()]}
    assert migration_lines(data) == [
        "Migration m",
        "Things",
        "  in                                   1,234",
        "      why                                  3",
        "  lost                                     2   ← hm",
        "  ok: NO",
        "  kind                  a 1, b 2",
        "  t    n",
        "  x   10",
        "  yy   -",
    ]

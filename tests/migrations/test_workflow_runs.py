"""``workflow-to-workflowrun`` beyond the case files: dtypes, zones, contracts, API."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from etl.errors import ConfigError, StageError
from etl.migrations import (
    Migration,
    MigrationInputError,
    MigrationInternalError,
    MigrationOptions,
    UnknownMigration,
    get_migration,
    list_migrations,
    workflow_runs,
    workflow_runs_classify,
)
from tests.migrations.frames import SNAPSHOT, case_paths, frame, load_case, run

pytestmark = pytest.mark.unit

META = {"workflowType": "commentOnIssue"}


def _wf(**row: Any) -> dict[str, Any]:
    return {"_element_id": "wf1", "id": "w1", "metadata": META, **row}


# -- the registry and options -------------------------------------------------------


def test_registry_lists_and_returns_the_migration() -> None:
    migration = get_migration("workflow-to-workflowrun")
    assert isinstance(migration, Migration)
    assert migration.name == "workflow-to-workflowrun"
    assert migration.required_inputs == ("nodes/Workflow",)
    assert [m.name for m in list_migrations()] == ["workflow-to-workflowrun"]


def test_unknown_migration_names_the_known_ones() -> None:
    with pytest.raises(UnknownMigration) as info:
        get_migration("nope")
    assert isinstance(info.value, KeyError) and isinstance(info.value, ConfigError)
    assert "unknown migration 'nope'; known migrations: workflow-to-workflowrun" in str(info.value)


def test_options_refuse_a_naive_snapshot_and_a_negative_staleness() -> None:
    with pytest.raises(ConfigError, match="timezone-aware"):
        MigrationOptions(snapshot_time=datetime(2025, 5, 1))
    with pytest.raises(ConfigError, match="negative"):
        MigrationOptions(snapshot_time=SNAPSHOT, stale_after=timedelta(seconds=-1))


# -- shapes and dtypes --------------------------------------------------------------


def test_no_inputs_at_all_gives_every_table_empty_and_typed() -> None:
    result = run({})
    assert set(result.tables) == set(result.roles) == set(workflow_runs.ROLES)
    assert set(result.rejected) == {"rejected/Workflow"}
    assert all(df.height == 0 for df in result.tables.values())
    assert result.tables["nodes/WorkflowRun"].schema == pl.Schema(
        {
            "_element_id": pl.String(),
            "_labels": pl.List(pl.String()),
            "id": pl.String(),
            "workflowType": pl.String(),
            "createdAt": pl.Datetime("ns", "UTC"),
            "status": pl.String(),
            "result": pl.String(),
            "postToGithub": pl.Boolean(),
        }
    )
    assert result.tables["nodes/Issue"].schema["number"] == pl.Int64
    assert result.report["workflows_in"] == result.report["runs_out"] == 0
    json.dumps(result.report)  # serialisable


def test_created_at_zone_is_kept_and_the_event_fallback_is_expressed_in_it() -> None:
    paris = pl.Datetime("ns", "Europe/Paris")
    workflows = frame(
        "nodes/Workflow",
        [_wf(created_at="2025-04-01T08:00:00Z"), _wf(_element_id="wf2", id="w2", created_at=None)],
        output=False,
    ).with_columns(pl.col("created_at").dt.convert_time_zone("Europe/Paris"))
    events = [
        {
            "_element_id": "ev1",
            "id": "e1",
            "type": "complete",
            "data": {},
            "timestamp": "2025-04-02T10:00:00Z",
        }
    ]
    links = [{"_element_id": "b1", "_start.id": "w2", "_end.id": "e1"}]
    result = run(
        {
            "nodes/Workflow": workflows,
            "nodes/Event": events,
            "relationships/BELONGS_TO_WORKFLOW": links,
        }
    )
    runs = result.tables["nodes/WorkflowRun"]
    assert runs.schema["createdAt"] == paris
    assert runs["createdAt"].dt.convert_time_zone("UTC").to_list() == [
        datetime(2025, 4, 1, 8, tzinfo=UTC),
        datetime(2025, 4, 2, 10, tzinfo=UTC),
    ]
    assert runs["status"].to_list() == ["error", "completed"]


def test_zone_less_created_at_is_read_as_utc_for_staleness() -> None:
    workflows = frame("nodes/Workflow", [_wf(created_at="2025-05-01T11:30:00Z")], output=False)
    workflows = workflows.with_columns(pl.col("created_at").dt.replace_time_zone(None))
    runs = run({"nodes/Workflow": workflows}).tables["nodes/WorkflowRun"]
    assert runs.schema["createdAt"] == pl.Datetime("ns")
    assert runs["status"].to_list() == ["running"]


def test_integer_and_tagged_issue_numbers_are_read_like_floats() -> None:
    """An already partly migrated graph has Int64 numbers, a mixed one tagged JSON."""
    issues = pl.DataFrame(
        {
            "_element_id": ["is1", "is2", "is3"],
            "_labels": [["Issue"]] * 3,
            "repoFullName": ["o/r"] * 3,
            "number": [
                '{"t": "Integer", "v": 1}',
                '{"t": "Float", "v": 2.0}',
                '{"t": "Float", "v": 2.5}',
            ],
        }
    )
    result = run({"nodes/Issue": issues})
    assert result.tables["nodes/Issue"]["number"].to_list() == [1, 2]
    assert result.rejected["rejected/Issue"]["_element_id"].to_list() == ["is3"]
    ints = issues.with_columns(number=pl.Series([7, 8, 9]))
    assert run({"nodes/Issue": ints}).tables["nodes/Issue"]["number"].to_list() == [7, 8, 9]


def test_other_properties_are_kept_and_derived_names_replace_legacy_ones() -> None:
    legacy = {"status": "legacy", "term_status": "completed", "_prop._x": "kept"}
    result = run({"nodes/Workflow": [_wf(created_at="2025-04-01T00:00:00Z", **legacy)]})
    runs = result.tables["nodes/WorkflowRun"]
    assert runs.columns[-2:] == ["term_status", "_prop._x"]
    assert runs.row(0, named=True) | {"createdAt": None} == {
        "_element_id": "wf1",
        "_labels": ["WorkflowRun"],
        "id": "w1",
        "workflowType": "commentOnIssue",
        "createdAt": None,
        # Derived from events (none: abandoned), not from the legacy properties.
        "status": "error",
        "result": "no terminal event (abandoned run)",
        "postToGithub": None,
        "term_status": "completed",
        "_prop._x": "kept",
    }
    assert result.report["legacy_properties_replaced"] == ["status"]
    assert "metadata" not in runs.columns and "created_at" not in runs.columns


def test_extra_labels_survive_and_workflow_becomes_workflowrun() -> None:
    rows = [_wf(created_at="2025-04-01T00:00:00Z", _labels=["Workflow", "Legacy"])]
    runs = run({"nodes/Workflow": rows}).tables["nodes/WorkflowRun"]
    assert runs["_labels"].to_list() == [["Legacy", "WorkflowRun"]]


def test_post_to_github_must_be_a_json_boolean() -> None:
    meta = {**META, "postToGithub": "true"}
    result = run({"nodes/Workflow": [_wf(created_at="2025-04-01T00:00:00Z", metadata=meta)]})
    assert result.tables["nodes/WorkflowRun"]["postToGithub"].to_list() == [None]
    assert result.report["post_to_github_not_boolean"] == 1


def test_stale_after_is_configurable() -> None:
    rows = [_wf(created_at="2025-05-01T10:30:00Z")]
    assert run({"nodes/Workflow": rows}).tables["nodes/WorkflowRun"]["status"][0] == "error"
    relaxed = run({"nodes/Workflow": rows}, stale_after=timedelta(hours=2))
    assert relaxed.tables["nodes/WorkflowRun"]["status"][0] == "running"


def test_tables_it_does_not_read_pass_through() -> None:
    users = pl.DataFrame({"_element_id": ["u2", "u1"], "_labels": [["User"]] * 2, "id": ["b", "a"]})
    result = run({"nodes/User": users})
    assert result.roles["nodes/User"] == "passthrough"
    assert_frame_equal(result.tables["nodes/User"], users.sort("id"))


# -- contract violations and internal checks -------------------------------------------


def test_a_non_string_metadata_column_breaks_the_contract() -> None:
    bad = pl.DataFrame(
        {"_element_id": ["wf1"], "_labels": [["Workflow"]], "id": ["w1"], "metadata": [3]}
    )
    with pytest.raises(MigrationInputError, match="'metadata' has type Int64"):
        run({"nodes/Workflow": bad})


def test_an_already_migrated_export_is_refused() -> None:
    with pytest.raises(MigrationInputError, match="nodes/WorkflowRun"):
        run({"nodes/WorkflowRun": pl.DataFrame({"id": ["x"]})})


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda lf: lf.filter(pl.col("id") != "w2"),
            r"Workflows in \(2\) != WorkflowRuns out \(1\)",
        ),
        (
            lambda lf: lf.with_columns(__reason=pl.lit("bogus")),
            r"rejection codes outside the documented set: \['bogus'\]",
        ),
    ],
    ids=["lost-row", "unknown-code"],
)
def test_a_broken_invariant_is_an_internal_error(
    monkeypatch: pytest.MonkeyPatch,
    damage: Callable[[pl.LazyFrame], pl.LazyFrame],
    message: str,
) -> None:
    real = workflow_runs_classify.classify
    monkeypatch.setattr(workflow_runs, "classify", lambda *a, **k: damage(real(*a, **k)))
    rows = [_wf(created_at="2025-04-01T00:00:00Z"), _wf(_element_id="wf2", id="w2")]
    with pytest.raises(MigrationInternalError, match=message) as info:
        run({"nodes/Workflow": rows})
    assert isinstance(info.value, StageError)


# -- determinism ------------------------------------------------------------------------


@pytest.mark.parametrize("path", case_paths(), ids=lambda p: p.stem)
def test_row_order_of_the_inputs_does_not_matter(path: Path) -> None:
    case = load_case(path)
    options = case.get("options", {})
    forward = run(case["inputs"], infer_type=options.get("infer_type", False))
    backward = run(
        {name: list(reversed(rows)) for name, rows in case["inputs"].items()},
        infer_type=options.get("infer_type", False),
    )
    for name, df in forward.tables.items():
        assert_frame_equal(df, backward.tables[name])
    for name, df in forward.rejected.items():
        assert_frame_equal(df, backward.rejected[name])
    assert forward.report == backward.report


@pytest.mark.parametrize("path", case_paths(), ids=lambda p: p.stem)
def test_streamed_tables_equal_the_collected_ones(path: Path) -> None:
    """With the inputs' order claimed, passthrough tables stream and hold the same rows."""
    from etl.migrations import MigrationOptions, get_migration
    from etl.migrations.workflow_runs_schema import sort_keys, sorted_table

    case = load_case(path)
    infer = case.get("options", {}).get("infer_type", False)
    collected = run(case["inputs"], infer_type=infer)
    inputs = {
        name: sorted_table(frame(name, rows, output=False).lazy(), name)
        for name, rows in case["inputs"].items()
    }
    claims = {
        name: [k for k in sort_keys(lf, name) if lf.collect_schema()[k] != pl.Null]
        for name, lf in inputs.items()
    }
    options = MigrationOptions(snapshot_time=SNAPSHOT, infer_type=infer, presorted=claims)
    streamed = get_migration("workflow-to-workflowrun").run(inputs, options)
    assert set(streamed.tables) | set(streamed.streamed) == set(collected.tables)
    assert not set(streamed.tables) & set(streamed.streamed)
    for name, df in collected.tables.items():
        assert_frame_equal(streamed.table(name), df)
        if name in streamed.streamed:
            assert streamed.streamed[name].rows == df.height
            assert streamed.streamed[name].schema == df.schema
    assert streamed.report == collected.report

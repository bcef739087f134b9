"""Properties of ``workflow-to-workflowrun`` on generated legacy graphs.

The generator mixes every era's metadata shape with what goes wrong in real
data: malformed JSON, JSON of the wrong type (numbers as strings, arrays,
``null``), nested nulls, unicode, huge strings, duplicate ids, issues with
fractional or NaN numbers, events without timestamps. Whatever it draws, the
migration must not raise, every Workflow must come out exactly once (migrated
or rejected), and every output row must satisfy docs/MIGRATION.md's
invariants. Examples per test: HYPOTHESIS_PROFILE=dev (default) / ci / thorough.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from etl.migrations import MigrationResult
from etl.migrations.workflow_runs_classify import REASONS, WORKFLOW_TYPES
from tests.migrations.frames import run

pytestmark = pytest.mark.unit

EXAMPLES = {"dev": 40, "ci": 150, "thorough": 1500}.get(
    os.environ.get("HYPOTHESIS_PROFILE", "dev"), 40
)
PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_T0 = datetime(2025, 3, 1, tzinfo=UTC)
_times = st.integers(min_value=0, max_value=62 * 24 * 3600 * 1000).map(
    lambda ms: (_T0 + timedelta(milliseconds=ms)).isoformat()
)
_weird_text = st.text(max_size=20) | st.sampled_from(
    ["", " ", "é/ü", "a b/c", "\u0000", "x" * 5000, "€" * 100_000]
)
_numbers: st.SearchStrategy[Any] = st.sampled_from(
    [12, 12.0, 12.5, "12", 0, -3, 2**60, 1e300, True, None, [12], {}]
)
_repos = st.sampled_from(["octo/app", "octo/lib", "octo", "", 5, None, "é/ü", {"o": "r"}])
_parts = st.sampled_from(["octo", "app", "lib", "", 7, None, "a/b"])


@st.composite
def _issue(draw: st.DrawFn) -> Any:
    shape = draw(st.sampled_from(["shape2", "shape4", "both", "junk", "null"]))
    if shape == "null":
        return None
    if shape == "junk":
        return draw(_weird_text | st.integers() | st.lists(st.integers(), max_size=2))
    issue: dict[str, Any] = {"number": draw(_numbers)}
    if shape in ("shape2", "both"):
        issue["repoFullName"] = draw(_repos)
        issue["title"] = draw(_weird_text)
    if shape in ("shape4", "both"):
        issue["repo"], issue["owner"] = draw(_parts), draw(_parts)
    return issue


@st.composite
def _metadata(draw: st.DrawFn) -> str | None:
    kind = draw(st.sampled_from(["none", "object", "object", "object", "broken", "other"]))
    if kind == "none":
        return None
    if kind == "broken":
        return draw(
            st.sampled_from(['{"workflowType": "resolveIssue"', "{", "", "nope", "{'a': 1}"])
            | _weird_text
        )
    if kind == "other":
        return json.dumps(draw(st.sampled_from([[1], "resolveIssue", 3, None, True, []])))
    meta: dict[str, Any] = {}
    if draw(st.booleans()):
        meta["workflowType"] = draw(
            st.sampled_from([*WORKFLOW_TYPES, "resolve_issue", "ResolveIssue", "", None, 3])
        )
    if draw(st.booleans()):
        meta["issue"] = draw(_issue())
    if draw(st.booleans()):
        meta["postToGithub"] = draw(st.sampled_from([True, False, "true", None, 1]))
    if draw(st.booleans()):
        meta["note"] = draw(_weird_text)
    return json.dumps(meta, ensure_ascii=draw(st.booleans()))


_event_data = st.sampled_from(
    [
        {"status": "completed", "success": True},
        {"status": "Starting PR review"},
        {"status": "Identifying PR goal"},
        {"error": "boom"},
        {"error": {}},
        {"error": "flaky", "recoverable": True},
        {"error": "x", "recoverable": "true"},
        {"content": None},
        {"success": True},
        "not json",
        [1],
    ]
)
_event_types = st.sampled_from(
    ["workflow_start", "complete", "status", "error", "llm_response", "tool_call", None]
)


@st.composite
def legacy_graph(draw: st.DrawFn) -> dict[str, list[dict[str, Any]]]:
    n = draw(st.integers(min_value=0, max_value=8))
    workflows: list[dict[str, Any]] = [
        {
            "_element_id": f"wf{i}",
            "id": draw(st.sampled_from([f"w{i}", f"w{i}", f"w{i}", "w0", None])),
            "created_at": draw(st.none() | _times),
            "metadata": draw(_metadata()),
        }
        for i in range(n)
    ]
    events: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    for wf in workflows:
        for _ in range(draw(st.integers(min_value=0, max_value=3))):
            k = len(events)
            data = draw(_event_data)
            events.append(
                {
                    "_element_id": f"ev{k}",
                    "id": draw(st.sampled_from([f"e{k}", f"e{k}", "e0"])),
                    "type": draw(_event_types),
                    "data": data if isinstance(data, str) else json.dumps(data),
                    "timestamp": draw(_times | st.none()),
                }
            )
            links.append({"_element_id": f"b{k}", "_start.id": wf["id"], "_end.id": f"e{k}"})
    issues: list[dict[str, Any]] = [
        {
            "_element_id": f"is{j}",
            "repoFullName": draw(st.sampled_from(["octo/app", "octo/lib", None])),
            "number": draw(st.sampled_from([12.0, 3.0, 12.5, float("nan"), None, 1.0])),
        }
        for j in range(draw(st.integers(min_value=0, max_value=4)))
    ]
    based_on: list[dict[str, Any]] = []
    for j, issue in enumerate(issues):
        if len(workflows) > 0 and draw(st.booleans()):
            based_on.append(
                {
                    "_element_id": f"bo{j}",
                    "_start.id": draw(st.sampled_from([wf["id"] for wf in workflows])),
                    "_end_element_id": issue["_element_id"],
                    "_end.repoFullName": issue["repoFullName"],
                    "_end.number": issue["number"],
                }
            )
    plans = [{"_element_id": "pl0", "id": "p0", "status": "draft"}] if workflows else []
    part_of = (
        [{"_element_id": "po0", "_start.id": "p0", "_end.id": workflows[0]["id"]}] if plans else []
    )
    return {
        "nodes/Workflow": workflows,
        "nodes/Event": events,
        "nodes/Issue": issues,
        "nodes/Plan": plans,
        "relationships/BELONGS_TO_WORKFLOW": links,
        "relationships/BASED_ON_ISSUE": based_on,
        "relationships/PART_OF": part_of,
    }


def _assert_invariants(graph: dict[str, list[dict[str, Any]]], result: MigrationResult) -> None:
    report = result.report
    json.dumps(report)
    runs = result.tables["nodes/WorkflowRun"]
    rejected = result.rejected["rejected/Workflow"]
    element_ids = [wf["_element_id"] for wf in graph["nodes/Workflow"]]

    # Every Workflow comes out exactly once: migrated or rejected, never both.
    assert report["workflows_in"] == len(element_ids) == runs.height + rejected.height
    assert report["runs_out"] == runs.height and report["rejected_total"] == rejected.height
    out = runs["_element_id"].to_list() + rejected["_element_id"].to_list()
    assert sorted(out) == sorted(element_ids)
    assert result.tables["nodes/Workflow"]["_element_id"].sort().to_list() == sorted(
        rejected["_element_id"].to_list()
    )

    # Invariant 4: enums, a DateTime createdAt, no legacy properties left.
    assert "metadata" not in runs.columns and "created_at" not in runs.columns
    assert isinstance(runs.schema["createdAt"], pl.Datetime)
    assert runs["createdAt"].null_count() == 0
    assert set(runs["workflowType"]) <= set(WORKFLOW_TYPES)
    assert set(runs["status"]) <= {"running", "completed", "error"}
    assert (runs["result"].is_not_null() == (runs["status"] == "error")).all()
    assert runs["id"].null_count() == 0 and runs["id"].n_unique() == runs.height
    assert all(labels == ["WorkflowRun"] for labels in runs["_labels"].to_list())
    assert set(rejected["reason"]) <= set(REASONS) and rejected["detail"].null_count() == 0

    # Every Issue has an integer number; created ones have no element id.
    issues = result.tables["nodes/Issue"]
    assert issues.schema["number"] == pl.Int64 and issues["number"].null_count() == 0
    assert (issues["_element_id"].is_null() == issues["_created"]).all()

    # Invariant 2: at most one HAS_RUNS per run, from an Issue that exists.
    has_runs = result.tables["relationships/HAS_RUNS"]
    assert set(has_runs["_end.id"]) <= set(runs["id"])
    assert has_runs["_end.id"].n_unique() == has_runs.height == report["runs_with_issue"]
    assert report["issueless_runs"] == runs.height - has_runs.height
    keys = set(issues.select("repoFullName", "number").iter_rows())
    assert set(has_runs.select("_start.repoFullName", "_start.number").iter_rows()) <= keys

    # Invariant 3: every event link is kept, pointing at the run when it migrated.
    belongs = result.tables["relationships/BELONGS_TO_WORKFLOW"]
    assert belongs.height == len(graph["relationships/BELONGS_TO_WORKFLOW"])
    migrated = set(runs["id"])
    relabelled = belongs.filter(pl.col("_start_label") == "WorkflowRun")
    assert set(relabelled["_start.id"]) <= migrated
    assert not set(belongs.filter(pl.col("_start_label") == "Workflow")["_start.id"]) & migrated
    # BASED_ON_ISSUE stays only for Workflows that did not migrate.
    assert not set(result.tables["relationships/BASED_ON_ISSUE"]["_start.id"]) & migrated


@PROPERTY_SETTINGS
@given(graph=legacy_graph(), infer_type=st.booleans())
def test_every_workflow_comes_out_once_and_every_row_is_valid(
    graph: dict[str, list[dict[str, Any]]], infer_type: bool
) -> None:
    result = run(graph, infer_type=infer_type)
    _assert_invariants(graph, result)
    if not infer_type:
        assert result.report["inferred_types"] == {}


@PROPERTY_SETTINGS
@given(graph=legacy_graph())
def test_output_does_not_depend_on_input_row_order(graph: dict[str, list[dict[str, Any]]]) -> None:
    forward = run(graph)
    backward = run({name: rows[::-1] for name, rows in graph.items()})
    for name, df in forward.tables.items():
        assert_frame_equal(df, backward.tables[name])
    for name, df in forward.rejected.items():
        assert_frame_equal(df, backward.rejected[name])

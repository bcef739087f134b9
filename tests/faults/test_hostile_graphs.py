"""Case 5: hostile legacy graphs, through export → transform → load (hypothesis).

Random legacy graphs with malformed metadata (invalid JSON, wrong JSON types,
missing keys, unknown enum values, nested nulls), huge strings, unicode and
control characters, and property and label names with backticks, quotes,
spaces and Cypher keywords, some designed to inject ``DETACH DELETE``.
Invariants, per example:

* no traceback: every stage returns normally;
* every legacy Workflow is migrated or rejected with a known reason
  (in = out + rejected, by id);
* names and values round-trip exactly: every hostile property is on the
  loaded node under its exact name with its exact value, every extra label is
  kept, and a replay of ``export --all`` into an empty database gives the same
  graph again;
* no injection: a canary node outside the migration survives untouched.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from etl.export import run_export
from etl.graph import admin
from etl.graph.admin import quote_name
from etl.load import run_load
from etl.migrations.workflow_runs_classify import REASONS
from etl.settings import Settings
from etl.transform import run_transform
from tests.faults.conftest import Record, examples
from tests.faults.support import value_snapshot
from tests.test_load_support import cypher

CASE = "5. hostile input graphs"

CANARY = "MATCH (c:Event {id: 'canary'}) RETURN labels(c) AS ls, properties(c) AS p"

pytestmark = pytest.mark.db

INJECT = "x`}) WITH 1 AS x MATCH (n) DETACH DELETE n //"
NAMES = st.sampled_from(
    [
        "plain",
        "with space",
        "back`tick",
        "``",
        "quote'd",
        'dq"uote',
        "MATCH",
        "DETACH DELETE",
        "n.id",
        "ünïcödé",
        "tab\there",
        INJECT,
        "$param",
        "{}",
    ]
)
LABELS = st.sampled_from(["Evil Label", "Back`tick", "DELETE", "Ünï", INJECT.replace("`}", "`")])
TEXT = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=10),  # control characters
    st.sampled_from(["", "x" * 100_000, "'); MATCH (n) DETACH DELETE n; //"]),
)
SCALAR = st.one_of(
    TEXT,
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.lists(st.text(max_size=5), max_size=3),
)
JSON_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
WORKFLOW_TYPE = st.one_of(
    st.sampled_from(
        ["commentOnIssue", "resolveIssue", "resolve_issue", "identifyPRGoal", "reviewPullRequest"]
    ),
    st.sampled_from(["unknownType", "", "RESOLVEISSUE"]),
    JSON_VALUE,
)
ISSUE = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "number": st.one_of(st.integers(1, 50), st.floats(1, 50), TEXT, st.none()),
            "repoFullName": st.one_of(st.sampled_from(["o/r", "o/s"]), TEXT, st.none()),
        },
    ),
    JSON_VALUE,
)
METADATA_OBJECT = st.fixed_dictionaries(
    {},
    optional={
        "workflowType": WORKFLOW_TYPE,
        "issue": ISSUE,
        "postToGithub": st.one_of(st.booleans(), JSON_VALUE),
        "extra": JSON_VALUE,
    },
)
METADATA = st.one_of(
    st.none(),  # no metadata property
    METADATA_OBJECT.map(json.dumps),
    METADATA_OBJECT.map(lambda m: json.dumps(m)[:-1]),  # truncated JSON
    JSON_VALUE.map(json.dumps),  # any JSON, mostly not an object
    TEXT,
)
WORKFLOW = st.fixed_dictionaries(
    {
        "metadata": METADATA,
        "created_at": st.booleans(),
        "props": st.dictionaries(NAMES, SCALAR, max_size=3),
        "labels": st.lists(LABELS, max_size=2, unique=True),
        "events": st.integers(0, 2),
    }
)


def _write_graph(driver: Any, settings: Settings, workflows: list[dict[str, Any]]) -> None:
    # An Event outside every run: exported and loaded as is, so the counts still add up.
    cypher(
        driver,
        settings,
        "CREATE (:Event {id: 'canary', type: 'canary', data: '{}', "
        "timestamp: datetime('2025-03-01T00:00:00Z')})",
    )
    for i, w in enumerate(workflows):
        labels = "".join(f":{quote_name(lab)}" for lab in w["labels"])
        props = dict(w["props"])
        if w["metadata"] is not None:
            props["metadata"] = w["metadata"]
        cypher(
            driver,
            settings,
            f"CREATE (w:Workflow{labels} {{id: $id}}) SET w += $props "
            "FOREACH (_ IN CASE WHEN $created THEN [1] ELSE [] END | "
            "  SET w.created_at = datetime('2025-03-01T10:00:00Z')) "
            "FOREACH (j IN range(1, $events) | CREATE (w)-[:BELONGS_TO_WORKFLOW]->(:Event "
            "  {id: $id + '-e' + j, type: 'complete', data: '{\"success\": true}', "
            "   timestamp: datetime('2025-03-01T10:05:00Z') + duration({minutes: j})}))",
            id=f"w{i}",
            props=props,
            created=w["created_at"],
            events=w["events"],
        )


@settings(
    max_examples=int(os.environ.get("ETL_FAULTS_HOSTILE_EXAMPLES") or examples(2, 500)),
    deadline=None,
    derandomize=True,
    # Each example costs seconds of database work: report the failure as found, unshrunk.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(workflows=st.lists(WORKFLOW, min_size=1, max_size=6))
# Found by the full run: a property whose type differs between Workflows is tagged JSON
# in the export; the transform dropped the mark and the load wrote the JSON text.
@example(
    workflows=[
        {
            "metadata": json.dumps({"workflowType": "resolveIssue", "postToGithub": True}),
            "created_at": True,
            "props": {"quote'd": "text", "n": 1},
            "labels": [],
            "events": 1,
        },
        {
            "metadata": json.dumps({"workflowType": "commentOnIssue"}),
            "created_at": True,
            "props": {"quote'd": -math.inf, "n": 1.5},
            "labels": [],
            "events": 0,
        },
    ]
)
def test_hostile_graphs_migrate_or_reject_and_round_trip(
    workflows: list[dict[str, Any]],
    driver: Any,
    neo4j_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
    record: Record,
) -> None:
    """Every Workflow migrated or rejected with a reason; names, values round-trip; no injection"""
    record.examples()
    db = neo4j_settings.database
    admin.wipe_database(driver, db)
    _write_graph(driver, neo4j_settings, workflows)
    canary = cypher(driver, neo4j_settings, CANARY)
    root = Path(tmp_path_factory.mktemp("hostile"))

    export = run_export(neo4j_settings, out_dir=root / "export").out_dir
    result = run_transform(in_dir=export, out_dir=root / "transform")
    assert result.out_dir is not None
    transform = result.out_dir
    runs = _ids(transform / "nodes/WorkflowRun.parquet")
    rejected = (
        pq.read_table(transform / "rejected/Workflow.parquet").to_pylist()
        if (transform / "rejected/Workflow.parquet").exists()
        else []
    )
    assert sorted(runs + [r["id"] for r in rejected]) == sorted(
        f"w{i}" for i in range(len(workflows))
    )
    assert all(r["reason"] in REASONS and r["detail"] for r in rejected), rejected
    assert result.report["workflows_in"] == len(workflows)

    loaded = run_load(neo4j_settings, in_dir=transform, ledger_dir=root / "ledger", batch_size=3)
    assert loaded.validation is not None and loaded.validation.ok, loaded.validation
    assert cypher(driver, neo4j_settings, CANARY) == canary
    for i, w in enumerate(workflows):
        wid = f"w{i}"
        label = "WorkflowRun" if wid in runs else "Workflow"
        rows = cypher(
            driver, neo4j_settings,
            "MATCH (n {id: $id}) RETURN labels(n) AS ls, properties(n) AS p", id=wid,
        )  # fmt: skip
        assert len(rows) == 1, (wid, rows)
        assert sorted(rows[0]["ls"]) == sorted([label, *w["labels"]])
        for name, value in w["props"].items():
            assert rows[0]["p"].get(name) == value, (wid, name)

    # The whole loaded graph, hostile names included, replays exactly from `export --all`.
    before = value_snapshot(driver, neo4j_settings)
    everything = run_export(neo4j_settings, out_dir=root / "all", all_labels=True).out_dir
    admin.wipe_database(driver, db)
    replayed = run_load(neo4j_settings, in_dir=everything, ledger_dir=root / "replay")
    assert replayed.mode == "replay"
    assert value_snapshot(driver, neo4j_settings) == before


def _ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [str(x) for x in pq.read_table(path, columns=["id"]).column("id").to_pylist()]

"""`etl seed`: the legacy graph it writes, its determinism, and its promise to the transform.

The strongest check is ``test_transform_reports_exactly_what_the_seed_expects``:
the seeded graph is read back with Cypher into the export's table shapes and
run through the real migration, whose report must equal ``summary["expected"]``
(and ``expected_infer_type`` with ``--infer-type``).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import polars as pl
import pytest

from etl import seed as seeding
from etl import seed_generate as generate
from etl import seed_model as model
from etl.errors import ConfigError, ExitCode
from etl.graph import admin
from etl.migrations.workflow_runs_classify import REASONS
from etl.migrations.workflow_runs_events import INFERENCE_RULES
from etl.settings import Settings
from tests.migrations.frames import frame, run

pytestmark = pytest.mark.db


def _query(driver: Any, settings: Settings, cypher: str) -> list[dict[str, Any]]:
    records, _, _ = driver.execute_query(cypher, database_=settings.database)
    return [dict(r) for r in records]


def _one(driver: Any, settings: Settings, cypher: str) -> Any:
    return _query(driver, settings, cypher)[0]["v"]


# ------------------------------------------------------------------ pure parts


@pytest.mark.parametrize(("n", "dirty"), [(1, 0.1), (7, 1.0), (1000, 0.1), (12345, 0.37)])
def test_plant_counts_are_exact_and_pairs_stay_whole(n: int, dirty: float) -> None:
    counts = model.plant_counts(n, dirty)
    assert sum(counts.values()) == round(n * dirty)
    assert counts["duplicate_id"] % 2 == 0
    assert set(counts) == set(model.PLANT_WEIGHTS)


def test_vocabulary_agrees_with_the_transform() -> None:
    assert model.REASONS == REASONS  # same codes, same order as the report
    for wtype, texts in model.TYPED_STATUS.items():
        for text in texts:  # each typed status points to its own type and nothing else
            assert {t for t, rx in INFERENCE_RULES if re.search(rx, text)} == {wtype}, text
    for text in (*model.NEUTRAL_STATUS, "completed"):
        assert not [t for t, rx in INFERENCE_RULES if re.search(rx, text)], text


def test_generation_is_deterministic_whatever_the_batch_size() -> None:
    def stream(seed: int, size: int) -> str:
        gen = generate.Generator(seed=seed, workflows=120, dirty=0.3)
        flat: dict[str, list[Any]] = {"workflows": [], "issues": [], "late_issues": []}
        for batch in gen.batches(size):
            flat["issues"] += batch.issues
            flat["late_issues"] += batch.late_issues
            for row in batch.workflows:  # positions of events in a batch depend on the cut
                events, pairs = batch.workflow_events(row), batch.next_pairs(row)
                flat["workflows"].append({**row, "first": None, "events": events, "next": pairs})
        issues = [row for rows in gen.pool_issues(size) for row in rows]
        return json.dumps([flat, issues, vars(gen.expected), vars(gen.expected_infer)])

    assert stream(5, 7) == stream(5, 200)
    assert stream(5, 7) != stream(6, 7)


# ------------------------------------------------------------------ the graph


def test_cli_seed_writes_the_counts_it_reports(
    run_cli: Any, driver: Any, neo4j_settings: Settings
) -> None:
    result = run_cli("--json", "seed", "--workflows", "200", "--dirty", "0.2", "--seed", "3")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    counts = admin.count_entities(driver, neo4j_settings.database)
    assert counts["labels"] == summary["nodes"]
    assert counts["types"] == summary["relationships"]
    assert summary["nodes"]["Workflow"] == 200
    assert sum(summary["planted"].values()) == 40
    assert summary["planted"] == model.plant_counts(200, 0.2)
    exp = summary["expected"]
    assert exp["runs_out"] + sum(exp["rejected"].values()) == 200

    def v(cypher: str) -> Any:
        return _one(driver, neo4j_settings, cypher)

    assert (
        v("MATCH (w:Workflow) WHERE w.metadata IS NULL RETURN count(*) AS v")
        == (summary["workflows_without_metadata"])
    )
    assert exp["rejected"]["metadata_missing"] == summary["workflows_without_metadata"]
    # Issue numbers are floats, as the JavaScript driver wrote them; and integral.
    assert v("MATCH (i:Issue) RETURN collect(DISTINCT valueType(i.number)) AS v") == [
        "FLOAT NOT NULL"
    ]
    assert v("MATCH (i:Issue) WHERE i.number <> round(i.number) RETURN count(*) AS v") == 0
    created_types = v("MATCH (w:Workflow) WHERE w.created_at IS NOT NULL "
                      "RETURN collect(DISTINCT valueType(w.created_at)) AS v")  # fmt: skip
    assert created_types == ["ZONED DATETIME NOT NULL"]
    assert (
        v("MATCH (e:Event) WHERE e.timestamp.nanosecond % 1000000 <> 0 RETURN count(*) AS v") == 0
    )
    outside = ("MATCH (e:Event) WHERE e.timestamp < datetime('2025-03-01T00:00Z') "
               "OR e.timestamp > datetime('2025-06-01T00:00Z') RETURN count(*) AS v")  # fmt: skip
    assert v(outside) == 0
    # Planted oddities, visible in the graph itself.
    assert v("MATCH (w:Workflow) WITH w.id AS id, count(*) AS c WHERE c > 1 "
             "RETURN sum(c) AS v") == summary["planted"]["duplicate_id"]  # fmt: skip
    assert v("MATCH (i:Issue) WITH i.repoFullName AS r, i.number AS n, count(*) AS c "
             "WHERE c > 1 RETURN count(*) AS v") == summary["duplicate_issues"]  # fmt: skip
    assert v("MATCH (w:Workflow) WHERE w.metadata CONTAINS '\"resolve_issue\"' "
             "RETURN count(*) AS v") == exp["aliases_normalised"]  # fmt: skip
    # Same-millisecond events fork the chain: one event with two successors.
    assert v("MATCH (e:Event) WHERE COUNT { (e)-[:NEXT_EVENT]->() } = 2 RETURN count(*) AS v") > 0
    # A legacy database has no schema: the seed's temporary indexes are gone.
    assert _query(driver, neo4j_settings, "SHOW CONSTRAINTS") == []
    assert v("SHOW INDEXES YIELD type WHERE type <> 'LOOKUP' RETURN count(*) AS v") == 0

    human = run_cli("seed", "--workflows", "5", "--replace")
    assert human.exit_code == 0, human.output
    assert human.stdout.startswith("Seeded 5 workflows (seed 42, dirty 0.0): ")


_NODES = {
    "Workflow": "n.id AS id, n.created_at AS created_at, n.metadata AS metadata",
    "Event": "n.id AS id, n.type AS type, n.data AS data, n.timestamp AS timestamp",
    "Issue": "n.repoFullName AS repoFullName, n.number AS number, n.title AS title",
    "Plan": "n.id AS id, n.status AS status",
}
_KEYS = {"Workflow": ["id"], "Event": ["id"], "Plan": ["id"], "Issue": ["repoFullName", "number"]}
_RELS = {"BELONGS_TO_WORKFLOW": ("Workflow", "Event"), "NEXT_EVENT": ("Event", "Event"),
         "BASED_ON_ISSUE": ("Workflow", "Issue"), "GENERATED_FROM": ("Plan", "Event"),
         "PART_OF": ("Plan", "Workflow"), "HAS_PLAN": ("Issue", "Plan")}  # fmt: skip


def _export_like(driver: Any, settings: Settings) -> dict[str, pl.DataFrame]:
    """The graph as the export stage's tables (a stand-in for `etl export`)."""
    tables = {}
    for label, props in _NODES.items():
        rows = _query(
            driver, settings, f"MATCH (n:{label}) RETURN elementId(n) AS _element_id, {props}"
        )
        native = [{k: getattr(v, "to_native", lambda v=v: v)() for k, v in r.items()} for r in rows]
        tables[f"nodes/{label}"] = frame(f"nodes/{label}", native, output=False)
    for rel, (start, end) in _RELS.items():
        keys = [f"a.{k} AS `_start.{k}`" for k in _KEYS[start]]
        keys += [f"b.{k} AS `_end.{k}`" for k in _KEYS[end]]
        rows = _query(driver, settings,
                      f"MATCH (a:{start})-[r:{rel}]->(b:{end}) RETURN elementId(r) AS _element_id, "
                      f"elementId(a) AS _start_element_id, elementId(b) AS _end_element_id, "
                      + ", ".join(keys))  # fmt: skip
        tables[f"relationships/{rel}"] = frame(f"relationships/{rel}", rows, output=False)
    return tables


def test_transform_reports_exactly_what_the_seed_expects(
    driver: Any, neo4j_settings: Settings
) -> None:
    summary = seeding.seed_database(
        driver, database=neo4j_settings.database, workflows=300, seed=11, dirty=0.6
    )
    tables = _export_like(driver, neo4j_settings)
    for infer_type, key in ((False, "expected"), (True, "expected_infer_type")):
        report = run(tables, snapshot=seeding.NOW, infer_type=infer_type).report
        assert {k: report[k] for k in summary[key]} == summary[key], key
        assert report["duplicate_issues"] == summary["duplicate_issues"]
    # Every planted rejection shows up under its own reason.
    for reason in REASONS[1:]:
        assert summary["expected"]["rejected"][reason] >= summary["planted"][reason] > 0


def _fingerprint(driver: Any, settings: Settings) -> str:
    """A hash of every node's properties and every relationship by endpoint keys."""
    nodes = _query(driver, settings, "MATCH (n) RETURN labels(n) AS l, properties(n) AS p")
    ends = "[labels({0})[0], {0}.id, {0}.repoFullName, {0}.number] AS {0}"
    rels = _query(driver, settings, "MATCH (a)-[r]->(b) RETURN type(r) AS t, "
                  + ends.format("a") + ", " + ends.format("b"))  # fmt: skip
    text = sorted(json.dumps(x, sort_keys=True, default=str) for x in nodes + rels)
    return hashlib.sha256("\n".join(text).encode()).hexdigest()


def test_same_seed_same_graph_whatever_the_batching(driver: Any, neo4j_settings: Settings) -> None:
    db = neo4j_settings.database
    first = seeding.seed_database(driver, database=db, workflows=80, seed=5, dirty=0.3,
                                  batch_size=7, writers=3)  # fmt: skip
    print_a = _fingerprint(driver, neo4j_settings)
    again = seeding.seed_database(driver, database=db, workflows=80, seed=5, dirty=0.3,
                                  replace=True, batch_size=500, writers=1)  # fmt: skip
    assert _fingerprint(driver, neo4j_settings) == print_a
    timing = ("wipe_s", "write_s", "nodes_per_s")
    assert {k: v for k, v in first.items() if k not in timing} == {
        k: v for k, v in again.items() if k not in timing
    }
    seeding.seed_database(driver, database=db, workflows=80, seed=6, dirty=0.3, replace=True)
    assert _fingerprint(driver, neo4j_settings) != print_a


def test_refuses_a_non_empty_database_without_replace(
    run_cli: Any, driver: Any, neo4j_settings: Settings
) -> None:
    assert run_cli("seed", "--workflows", "3").exit_code == 0
    before = admin.count_entities(driver, neo4j_settings.database)
    refused = run_cli("seed", "--workflows", "3", "--seed", "9")
    assert refused.exit_code == ExitCode.FAILURE
    db = neo4j_settings.database
    assert f"Error: database '{db}' is not empty (it has nodes)" in refused.output
    assert "pass --replace to wipe it first" in refused.output
    assert admin.count_entities(driver, neo4j_settings.database) == before
    # A schema alone also makes it non-legacy (a seeded graph must have none).
    admin.wipe_database(driver, db)
    driver.execute_query("CREATE INDEX keep_me FOR (n:Thing) ON (n.x)", database_=db)
    refused = run_cli("seed", "--workflows", "3")
    assert refused.exit_code == ExitCode.FAILURE
    assert "index keep_me" in refused.output
    replaced = run_cli("seed", "--workflows", "3", "--replace")
    assert replaced.exit_code == 0, replaced.output


def test_bad_options_are_usage_errors(run_cli: Any) -> None:
    for args in (["--dirty", "1.5"], ["--batch-size", "0"], ["--workflows", "0"]):
        result = run_cli("seed", "--workflows", "10", *args)
        assert result.exit_code == ExitCode.USAGE, (args, result.output)


class _BrokenReporter:
    """A reporter whose progress display fails when it opens, as rich's once did on a TTY."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def task(self, description: str, total: int | None = None) -> Any:
        raise TypeError(f"unsupported format string ({description})")

    def info(self, message: str) -> None:
        self.messages.append(message)


def _keep_one(driver: Any, settings: Settings) -> None:
    driver.execute_query("CREATE (:Keep {name: 'precious'})", database_=settings.database)


def _kept(driver: Any, settings: Settings) -> list[str]:
    return [r["v"] for r in _query(driver, settings, "MATCH (n:Keep) RETURN n.name AS v")]


def test_replace_wipes_nothing_when_the_reporter_fails(
    driver: Any, neo4j_settings: Settings
) -> None:
    _keep_one(driver, neo4j_settings)
    reporter = _BrokenReporter()
    with pytest.raises(TypeError, match=r"unsupported format string \(seed issues\)"):
        seeding.seed_database(driver, database=neo4j_settings.database, workflows=5,
                              replace=True, reporter=reporter)  # fmt: skip
    assert _kept(driver, neo4j_settings) == ["precious"]
    assert reporter.messages == []  # not even "Wiping database …"


def test_replace_wipes_nothing_when_generation_fails(
    driver: Any, neo4j_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _keep_one(driver, neo4j_settings)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("generator bug")

    monkeypatch.setattr(generate.Generator, "_workflow", broken)
    with pytest.raises(ValueError, match="generator bug"):
        seeding.seed_database(driver, database=neo4j_settings.database, workflows=5, replace=True)
    assert _kept(driver, neo4j_settings) == ["precious"]


def test_replace_wipes_nothing_when_the_options_are_bad(
    driver: Any, neo4j_settings: Settings
) -> None:
    _keep_one(driver, neo4j_settings)
    with pytest.raises(ConfigError, match="need workflows, batch_size and writers >= 1"):
        seeding.seed_database(driver, database=neo4j_settings.database, workflows=5,
                              replace=True, writers=0)  # fmt: skip
    assert _kept(driver, neo4j_settings) == ["precious"]

"""The invariants of docs/MIGRATION.md ("Invariants checked after loading"), in Cypher.

The original migration's three checks were wrong (reversed directions, counts
that could never fail). Each query here answers with counts, so a failure
says how many nodes break the rule and names a few; the stage side
(``etl.validate``) supplies what the database is compared with: rejected ids,
each run's expected Issue and its export-time event and plan counts.

Expectation lists go in chunks of ``CHUNK`` rows, so a large graph never sends
one enormous parameter.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import neo4j

WORKFLOW_TYPES = ("commentOnIssue", "resolveIssue", "identifyPRGoal", "reviewPullRequest")
STATUSES = ("running", "completed", "error")
CHUNK = 20_000
EXAMPLES = 5


def _session(driver: neo4j.Driver, database: str) -> neo4j.Session:
    return driver.session(
        database=database,
        default_access_mode=neo4j.READ_ACCESS,
        notifications_min_severity="OFF",
    )


def _chunks(rows: Sequence[dict[str, Any]]) -> Iterator[Sequence[dict[str, Any]]]:
    for i in range(0, len(rows), CHUNK):
        yield rows[i : i + CHUNK]


def remaining_workflows(
    driver: neo4j.Driver, database: str, *, rejected: Sequence[str], migrated: Sequence[str]
) -> dict[str, Any]:
    """Invariant 1: Workflows left, those not in the rejected file, those that should be runs."""
    with _session(driver, database) as s:
        rec = s.run(
            "MATCH (w:Workflow) "
            "WITH w, w.id IN $rejected AS listed, w.id IN $migrated AS migratable "
            "RETURN count(w) AS total, "
            "count(CASE WHEN NOT coalesce(listed, false) THEN 1 END) AS unlisted, "
            "count(CASE WHEN coalesce(migratable, false) THEN 1 END) AS migratable, "
            "collect(CASE WHEN NOT coalesce(listed, false) OR coalesce(migratable, false) "
            "THEN w.id END)[..$n] AS examples",
            rejected=list(rejected),
            migrated=list(migrated),
            n=EXAMPLES,
        ).single(strict=True)
    return dict(rec)


def has_runs(
    driver: neo4j.Driver, database: str, expected: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Invariant 2: each ``{id, repo, number, eid?}`` run has exactly one HAS_RUNS, from that Issue.

    ``eid`` (in place) also pins which of several duplicate Issues it must be.
    """
    out: dict[str, Any] = {"checked": 0, "ok": 0, "examples": []}
    with _session(driver, database) as s:
        for chunk in _chunks(expected):
            rec = s.run(
                "UNWIND $rows AS e MATCH (w:WorkflowRun {id: e.id}) "
                "CALL (w) { OPTIONAL MATCH (i:Issue)-[:HAS_RUNS]->(w) "
                "RETURN collect(i) AS issues } "
                "WITH e, w, issues, size(issues) = 1 "
                "AND issues[0].repoFullName = e.repo AND issues[0].number = e.number "
                "AND valueType(issues[0].number) STARTS WITH 'INTEGER' "
                "AND (e.eid IS NULL OR elementId(issues[0]) = e.eid) AS good "
                "RETURN count(w) AS checked, count(CASE WHEN good THEN 1 END) AS ok, "
                "collect(CASE WHEN NOT good THEN e.id END)[..$n] AS examples",
                rows=list(chunk),
                n=EXAMPLES,
            ).single(strict=True)
            out["checked"] += rec["checked"]
            out["ok"] += rec["ok"]
            out["examples"] = (out["examples"] + rec["examples"])[:EXAMPLES]
        rec = s.run(
            "MATCH (w:WorkflowRun) WHERE NOT EXISTS { (:Issue)-[:HAS_RUNS]->(w) } "
            "RETURN count(w) AS c"
        ).single(strict=True)
    out["issueless"] = int(rec["c"])
    return out


def events_and_plans(
    driver: neo4j.Driver, database: str, expected: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Invariant 3: each ``{id, events, plans}`` run has exactly those counts."""
    out: dict[str, Any] = {"checked": 0, "bad": 0, "examples": []}
    with _session(driver, database) as s:
        for chunk in _chunks(expected):
            rec = s.run(
                "UNWIND $rows AS e MATCH (w:WorkflowRun {id: e.id}) "
                "WITH e, w, COUNT { (w)-[:BELONGS_TO_WORKFLOW]->(:Event) } AS events, "
                "COUNT { (:Plan)-[:PART_OF]->(w) } AS plans "
                "WITH e, w, events <> e.events OR plans <> e.plans AS bad "
                "RETURN count(w) AS checked, count(CASE WHEN bad THEN 1 END) AS bad, "
                "collect(CASE WHEN bad THEN e.id END)[..$n] AS examples",
                rows=list(chunk),
                n=EXAMPLES,
            ).single(strict=True)
            out["checked"] += rec["checked"]
            out["bad"] += rec["bad"]
            out["examples"] = (out["examples"] + rec["examples"])[:EXAMPLES]
    return out


def enums_and_types(driver: neo4j.Driver, database: str) -> dict[str, Any]:
    """Invariant 4: enums, a DateTime ``createdAt``, no legacy properties, integer Issue numbers."""
    with _session(driver, database) as s:
        runs = s.run(
            "MATCH (w:WorkflowRun) RETURN count(w) AS runs, "
            "count(CASE WHEN NOT coalesce(w.workflowType IN $types, false) THEN 1 END) "
            "AS bad_type, "
            "count(CASE WHEN NOT coalesce(w.status IN $statuses, false) THEN 1 END) "
            "AS bad_status, "
            "count(CASE WHEN NOT valueType(w.createdAt) STARTS WITH 'ZONED DATETIME' THEN 1 END) "
            "AS bad_created_at, "
            "count(CASE WHEN w.metadata IS NOT NULL OR w.created_at IS NOT NULL THEN 1 END) "
            "AS legacy_props",
            types=list(WORKFLOW_TYPES),
            statuses=list(STATUSES),
        ).single(strict=True)
        issues = s.run(
            "MATCH (i:Issue) RETURN count(i) AS issues, "
            "count(CASE WHEN NOT valueType(i.number) STARTS WITH 'INTEGER' THEN 1 END) "
            "AS non_integer"
        ).single(strict=True)
    return {**dict(runs), **dict(issues)}

"""The Cypher behind `etl seed`: batched, parameterised writes of a legacy graph.

A batch of workflows is written in two transactions:

1. ``write_workflows``: the Workflows (returning their element ids), then their
   Events, ``BELONGS_TO_WORKFLOW``, ``NEXT_EVENT`` chains and Plans with
   ``PART_OF`` and ``GENERATED_FROM``. Everything in it is new, so it locks
   nothing that another transaction holds: several run in parallel, which is
   where most of the speed comes from (one Cypher transaction keeps about one
   core busy). Events are addressed by their position in the workflow, never
   looked up.
2. ``link_issues``: ``BASED_ON_ISSUE`` and ``HAS_PLAN``, the only relationships
   to shared nodes (Issues). Callers run these one at a time, so parallel
   batches never deadlock on an Issue.

Issues and Plans are found through temporary indexes that ``drop_temp_indexes``
removes: legacy databases have no schema at all. (Workflow ids are not even
unique there, so Workflows are addressed by element id within the batch.)
Values are always parameters; times travel as epoch milliseconds and become
``DateTime`` in UTC, the millisecond precision the application wrote.
"""

from __future__ import annotations

from typing import Any

import neo4j
from neo4j.exceptions import ClientError, DriverError, Neo4jError

from etl.errors import EtlError
from etl.graph.admin import quote_name, wipe_database

Driver = neo4j.Driver
#: Temporary indexes: name → (label, properties).
TEMP_INDEXES = {
    "etl_seed_issue_key": ("Issue", ("repoFullName", "number")),
    "etl_seed_plan_id": ("Plan", ("id",)),
}

_ISSUES = """
UNWIND $rows AS r
CREATE (:Issue {repoFullName: r.repo, number: r.number, title: r.title})
"""

# $rows: [{id, created_at: epoch ms | null, metadata: string | null}]
_WORKFLOWS = """
UNWIND range(0, size($rows) - 1) AS k
WITH k, $rows[k] AS r
CREATE (w:Workflow {id: r.id})
SET w.created_at = CASE WHEN r.created_at IS NULL THEN null
                   ELSE datetime({epochMillis: r.created_at}) END,
    w.metadata = r.metadata
RETURN k, elementId(w) AS element_id
"""

# $ids[k]: element id of Workflow k; $rows[k]: {events: [{id, type, data, ts}],
# next: [[from, to] positions in events], plan: {id, status, createdAt, event} | null}.
# ORDER BY before collect() is what guarantees evs[i] is event i.
_EVENTS = """
UNWIND range(0, size($rows) - 1) AS k
WITH k, $rows[k].events AS events
WHERE size(events) > 0
MATCH (w) WHERE elementId(w) = $ids[k]
UNWIND range(0, size(events) - 1) AS i
WITH k, w, i, events[i] AS e
CREATE (w)-[:BELONGS_TO_WORKFLOW]->(ev:Event {
  id: e.id, type: e.type, data: e.data, timestamp: datetime({epochMillis: e.ts})})
WITH k, w, i, ev ORDER BY k, i
WITH k, w, collect(ev) AS evs
CALL (k, w, evs) {
  WITH $rows[k].plan AS p WHERE p IS NOT NULL
  WITH p, evs[p.event] AS source
  CREATE (pl:Plan {id: p.id, status: p.status, type: 'issue_resolution',
                   createdAt: datetime({epochMillis: p.createdAt})})
  CREATE (pl)-[:PART_OF]->(w)
  CREATE (pl)-[:GENERATED_FROM]->(source)
}
WITH k, evs
UNWIND $rows[k].next AS p
WITH evs[p[0]] AS a, evs[p[1]] AS b
CREATE (a)-[:NEXT_EVENT]->(b)
"""

# One Issue per key when these run: a duplicate Issue's second copy is created after.
_BASED_ON = """
UNWIND $rows AS r
MATCH (w) WHERE elementId(w) = r.workflow
MATCH (issue:Issue {repoFullName: r.repo, number: r.number})
CREATE (w)-[:BASED_ON_ISSUE]->(issue)
"""
_HAS_PLAN = """
UNWIND $rows AS r
MATCH (pl:Plan {id: r.plan})
MATCH (issue:Issue {repoFullName: r.repo, number: r.number})
CREATE (issue)-[:HAS_PLAN]->(pl)
"""


def contents(driver: Driver, database: str) -> list[str]:
    """What makes ``database`` non-empty: nodes, constraints, indexes (ours excepted)."""
    found: list[str] = []
    with driver.session(database=database, default_access_mode=neo4j.READ_ACCESS) as session:
        if session.run("MATCH (n) RETURN n LIMIT 1").peek() is not None:
            found.append("it has nodes")
        for rec in session.run("SHOW CONSTRAINTS YIELD name RETURN name"):
            found.append(f"constraint {rec['name']}")
        for rec in session.run(
            "SHOW INDEXES YIELD name, type, owningConstraint "
            "WHERE type <> 'LOOKUP' AND owningConstraint IS NULL RETURN name"
        ):
            if rec["name"] not in TEMP_INDEXES:
                found.append(f"index {rec['name']}")
    return found


def wipe(driver: Driver, database: str) -> None:
    """Delete every node, relationship, constraint and index."""
    wipe_database(driver, database)


def create_temp_indexes(driver: Driver, database: str) -> None:
    """Index the Issue key and Plan id, so links find their endpoints without scans."""
    for name, (label, props) in TEMP_INDEXES.items():
        on = ", ".join(f"n.{quote_name(p)}" for p in props)
        try:
            driver.execute_query(
                f"CREATE INDEX {quote_name(name)} IF NOT EXISTS "
                f"FOR (n:{quote_name(label)}) ON ({on})",
                database_=database,
            )
        except ClientError as e:
            # IF NOT EXISTS only loses this race to a concurrent `etl seed`.
            if e.code != "Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists":
                raise
            raise EtlError(
                f"another process is seeding database {database!r} at the same time",
                hint="run one `etl seed` per database at a time, then re-run with --replace",
            ) from None
    driver.execute_query("CALL db.awaitIndexes(300)", database_=database)


def drop_temp_indexes(driver: Driver, database: str, *, quiet: bool = False) -> None:
    """Drop the temporary indexes; ``quiet`` (cleanup after a failure) swallows errors."""
    for name in TEMP_INDEXES:
        try:
            driver.execute_query(f"DROP INDEX {quote_name(name)} IF EXISTS", database_=database)
        except (Neo4jError, DriverError, OSError):
            if not quiet:
                raise


def write_issues(driver: Driver, database: str, rows: list[dict[str, Any]]) -> None:
    """Create Issue nodes from ``{repo, number (float), title}`` rows."""
    driver.execute_query(_ISSUES, rows=rows, database_=database)


def write_workflows(driver: Driver, database: str, rows: list[dict[str, Any]]) -> list[str]:
    """Create Workflows and everything only they point to, in one transaction.

    ``rows`` as the generator makes them (see the query comments); returns the
    Workflows' element ids in row order, for ``link_issues``.
    """
    heads = [
        {"id": r["id"], "created_at": r["created_at"], "metadata": r["metadata"]} for r in rows
    ]
    bodies = [{"events": r["events"], "next": r["next"], "plan": r["plan"]} for r in rows]

    def work(tx: neo4j.ManagedTransaction) -> list[str]:
        ids = [""] * len(rows)
        for rec in tx.run(_WORKFLOWS, rows=heads):
            ids[rec["k"]] = rec["element_id"]
        tx.run(_EVENTS, rows=bodies, ids=ids).consume()
        return ids

    with driver.session(database=database) as session:
        return session.execute_write(work)


def link_issues(
    driver: Driver,
    database: str,
    *,
    before: list[dict[str, Any]],
    based_on: list[dict[str, Any]],
    has_plan: list[dict[str, Any]],
    after: list[dict[str, Any]],
) -> None:
    """Create Issues ``before``, then ``BASED_ON_ISSUE`` (``{workflow: element id, repo,
    number}``) and ``HAS_PLAN`` (``{plan: id, repo, number}``), then Issues ``after``."""

    def work(tx: neo4j.ManagedTransaction) -> None:
        for query, rows in ((_ISSUES, before), (_BASED_ON, based_on), (_HAS_PLAN, has_plan),
                            (_ISSUES, after)):  # fmt: skip
            if rows:
                tx.run(query, rows=rows).consume()

    with driver.session(database=database) as session:
        session.execute_write(work)

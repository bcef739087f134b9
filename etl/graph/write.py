"""Batched, replay-safe writes for `etl load` (and its rollback): the Cypher of loading.

A load is a list of *operations*, each applied to batches of rows with one
``UNWIND range(0, $n - 1) AS i …`` statement inside ``session.execute_write``
(so the driver retries transient errors, and a batch commits whole or not at
all). Parameters are columnar: one list per column, row ``i`` of column 0 is
``$c0[i]`` (see ``etl.graph.params``).

Every statement can run twice with the same rows and leave the same graph,
which is what makes ``--resume`` safe when a crash lands between a commit and
its ledger line:

* nodes are ``MERGE``d on their key, or on ``_etl_source_element_id`` when the
  stage's key cannot tell two nodes apart (duplicate or null keys), or found
  by ``elementId`` (in place) and then ``SET`` to absolute values;
* a relationship between two nodes is ``MERGE``d; where the stage holds
  several parallel relationships of one type between the same two nodes
  (``multi``), one row stands for all of them and only the missing ones are
  created (``range($lo[i] + have, $hi[i] - 1)``), so the group is created
  whole, once;
* deletions delete what is there (one already gone matches nothing).

One exception, for speed: replaying into a database that was *empty* when
the load started (``fresh``), rows are ``CREATE``d (measured 1.3× faster for
nodes; relationships can then be written by several transactions at once,
1.6× more). Exactly-once then comes from a *batch marker*: each batch's
transaction first creates ``(:EtlBatch {key})`` under a uniqueness
constraint, so a batch that already committed (crash before its ledger line)
fails on its marker before writing anything, and is known to be done.

Each statement returns how many rows found their nodes; a batch where that
differs from the rows sent is rolled back and reported, never half-applied.
Values reach Cypher only as parameters; names only through ``quote_name``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import neo4j
from neo4j.exceptions import ClientError, ConstraintError

from etl.errors import StageError
from etl.graph.admin import quote_name
from etl.graph.params import SOURCE_ID, ColumnPlan, set_clause, value_expr, zones

#: One batch for one statement: ``{"n": rows, "e": [...], "c0": [...], ...}``.
Columns = dict[str, Any]


class BatchMismatch(StageError):
    """A batch's rows did not all find their nodes; the transaction was rolled back."""


class ValueRefused(BatchMismatch):
    """The server refused to build a value of the batch (rolled back, nothing written)."""


#: Server errors about a value the statement was asked to build (not about the query).
_VALUE_ERRORS = ("Neo.ClientError.Statement.ArgumentError", "Neo.ClientError.Statement.SyntaxError",
                 "Neo.ClientError.Statement.TypeError")  # fmt: skip


class AlreadyCommitted(Exception):
    """The batch's marker exists: an earlier run committed this batch (nothing written now)."""


MARKER_LABEL = "EtlBatch"
MARKER_CONSTRAINT = "etl_batch"


@dataclass(frozen=True)
class NodeOp:
    """How one table's rows become (or change) nodes.

    ``match``: ``"key"`` (``MERGE``/``MATCH`` on the key properties), ``"src"``
    (``MERGE`` on ``_etl_source_element_id``) or ``"eid"`` (``elementId``, in
    place; the node must carry one of ``guard_labels`` and the key values).
    """

    label: str
    match: str
    key: tuple[ColumnPlan, ...]
    plans: tuple[ColumnPlan, ...]
    create: bool = True
    guard_labels: tuple[str, ...] = ()
    add_labels: tuple[str, ...] = ()
    remove_labels: tuple[str, ...] = ()
    dynamic_labels: bool = False
    remove_props: tuple[str, ...] = ()
    delete_out: tuple[str, ...] = ()
    delete_in: tuple[str, ...] = ()
    replace: bool = False
    #: delete the node when nothing else is attached (rollback of created nodes)
    delete_node: bool = False
    #: delete the node (a load's node delete; fails while it has relationships)
    remove_node: bool = False
    #: replay into a database that was empty: CREATE, exactly once by batch markers
    fresh: bool = False


@dataclass(frozen=True)
class Endpoint:
    """How a relationship row finds one endpoint: by key, by source id or by element id."""

    label: str
    match: str
    key: tuple[str, ...] = ()


@dataclass(frozen=True)
class RelOp:
    type: str
    start: Endpoint
    end: Endpoint
    plans: tuple[ColumnPlan, ...] = ()
    multi: bool = False
    #: replay into a database that was empty: CREATE, exactly once by batch markers
    fresh: bool = False
    #: delete instead of write: ``"eid"`` the relationship ``$e[i]`` (between ``$ae[i]`` and
    #: ``$be[i]``), ``"ends"`` every one of the type between the row's endpoints
    delete: str = ""


@dataclass
class Statement:
    """A query text and its constant parameters (everything but the batch's columns)."""

    text: str
    params: dict[str, Any] = field(default_factory=dict)
    expect_all: bool = True


# ------------------------------------------------------------------ node ops
#
# Parameters are columnar (see ``etl.graph.params``): ``$n`` rows, ``$e`` their
# element ids, ``$l`` extra labels, ``$c<j>`` property values; row ``i`` is
# ``UNWIND range(0, $n - 1) AS i``.

UNWIND_ROWS = "UNWIND range(0, $n - 1) AS i"


def node_match(op: NodeOp, var: str = "n", *, optional: bool = False) -> str:
    """The clause that finds (or, with ``op.create``, makes) the node of row ``i``."""
    label = quote_name(op.label)
    if op.match == "eid":
        guards = [f"elementId({var}) = $e[i]"]
        if op.guard_labels:
            guards.append(
                "(" + " OR ".join(f"{var}:{quote_name(g)}" for g in op.guard_labels) + ")"
            )
        guards += [f"{var}.{quote_name(k.prop)} = {value_expr(k)}" for k in op.key]
        return f"{'OPTIONAL ' if optional else ''}MATCH ({var}) WHERE {' AND '.join(guards)}"
    if op.match == "src":
        props = f"{quote_name(SOURCE_ID)}: $e[i]"
    else:
        props = ", ".join(f"{quote_name(k.prop)}: {value_expr(k)}" for k in op.key)
    if op.create and not optional:
        # Fresh replay: the node cannot exist yet, the batch marker guards a replay.
        verb = "CREATE" if op.fresh else "MERGE"
    else:
        verb = "OPTIONAL MATCH" if optional else "MATCH"
    return f"{verb} ({var}:{label} {{{props}}})"


def node_statement(op: NodeOp) -> Statement:
    if op.remove_node:
        # Already gone (a batch run again) matches nothing: deleting is idempotent.
        lines = [UNWIND_ROWS, node_match(op), "DELETE n", "RETURN count(*) AS matched"]
        return Statement("\n".join(lines), expect_all=False)
    lines = [UNWIND_ROWS, node_match(op)]
    if op.add_labels:
        lines.append("SET " + ", ".join(f"n:{quote_name(lab)}" for lab in op.add_labels))
    if op.remove_labels:
        lines.append("REMOVE " + ", ".join(f"n:{quote_name(lab)}" for lab in op.remove_labels))
    if op.dynamic_labels:
        lines.append("SET n:$($l[i])")
    if not op.delete_node:
        lines.append(set_clause("n", op.plans, replace=op.replace))
    if op.remove_props:
        lines.append("REMOVE " + ", ".join(f"n.{quote_name(p)}" for p in op.remove_props))
    for t in op.delete_out:
        lines.append(f"WITH n, i CALL (n) {{ MATCH (n)-[d:{quote_name(t)}]->() DELETE d }}")
    for t in op.delete_in:
        lines.append(f"WITH n, i CALL (n) {{ MATCH (n)<-[d:{quote_name(t)}]-() DELETE d }}")
    if op.delete_node:
        lines.append("WITH n WHERE NOT EXISTS { (n)--() } DELETE n")
    lines.append("RETURN count(*) AS matched")
    text = "\n".join(line for line in lines if line)
    return Statement(text, {"zones": zones(op.plans)}, expect_all=not op.delete_node)


# ------------------------------------------------------------------- rel ops
#
# Endpoint parameters: ``$a0``, ``$a1`` … (key parts of the start node, in
# ``Endpoint.key`` order) or ``$ae`` (its element id); ``$b…`` for the end.
# A ``multi`` row ``i`` stands for the relationships ``$lo[i]`` … ``$hi[i] - 1``
# of the property columns, indexed by ``j``.


def endpoint_match(ep: Endpoint, var: str, *, optional: bool = False) -> str:
    label = quote_name(ep.label) if ep.label else ""
    verb = "OPTIONAL MATCH" if optional else "MATCH"
    if ep.match == "eid":
        # No label: the node is found whatever the load has made of its labels.
        return f"{verb} ({var}{':' if label else ''}{label}) WHERE elementId({var}) = ${var}e[i]"
    if ep.match == "src":
        return f"{verb} ({var}:{label} {{{quote_name(SOURCE_ID)}: ${var}e[i]}})"
    props = ", ".join(f"{quote_name(k)}: ${var}{n}[i]" for n, k in enumerate(ep.key))
    return f"{verb} ({var}:{label} {{{props}}})"


def rel_delete_statement(op: RelOp) -> Statement:
    """Delete relationships of ``op.type``; one that is already gone matches nothing."""
    t = quote_name(op.type)
    if op.delete == "eid":
        match = (
            f"MATCH (a)-[r:{t}]->(b) WHERE elementId(r) = $e[i] "
            "AND elementId(a) = $ae[i] AND elementId(b) = $be[i]"
        )
        lines = [UNWIND_ROWS, match]
    else:
        lines = [UNWIND_ROWS, endpoint_match(op.start, "a"), endpoint_match(op.end, "b")]
        lines += ["WITH DISTINCT a, b", f"MATCH (a)-[r:{t}]->(b)"]
    lines += ["DELETE r", "RETURN count(*) AS matched"]
    return Statement("\n".join(lines), expect_all=False)


def rel_statement(op: RelOp) -> Statement:
    if op.delete:
        return rel_delete_statement(op)
    t = quote_name(op.type)
    lines = [UNWIND_ROWS, endpoint_match(op.start, "a"), endpoint_match(op.end, "b")]
    if op.multi:
        # All parallel relationships of a pair travel in one row: create the missing ones.
        lines += [
            f"OPTIONAL MATCH (a)-[x:{t}]->(b)",
            "WITH a, b, i, count(x) AS have",
            f"FOREACH (j IN range($lo[i] + have, $hi[i] - 1) | CREATE (a)-[r:{t}]->(b) "
            f"{set_clause('r', op.plans, 'j')})",
        ]
    else:
        verb = "CREATE" if op.fresh else "MERGE"
        lines += [f"{verb} (a)-[r:{t}]->(b)", set_clause("r", op.plans)]
    lines.append("RETURN count(*) AS matched")
    text = "\n".join(line for line in lines if line)
    return Statement(text, {"zones": zones(op.plans)})


# ------------------------------------------------------------------ running


@functools.lru_cache(maxsize=256)
def statement(op: NodeOp | RelOp) -> Statement:
    """The write statement of an operation (built once per distinct operation)."""
    return node_statement(op) if isinstance(op, NodeOp) else rel_statement(op)


def write_batch(
    driver: neo4j.Driver,
    database: str,
    statements: Sequence[tuple[Statement, Columns]],
    *,
    marker: str | None = None,
) -> int:
    """Run ``(statement, columns)`` pairs in one managed write transaction; rows matched.

    Raises ``BatchMismatch`` (after rolling back) when a statement that must
    match every row matched a different number, and ``AlreadyCommitted`` when
    ``marker`` names a batch an earlier transaction committed.
    """

    def work(tx: neo4j.ManagedTransaction) -> int:
        total = 0
        if marker is not None:
            tx.run(f"CREATE (:{MARKER_LABEL} {{key: $key}})", key=marker).consume()
        for stmt, columns in statements:
            n = int(columns["n"])
            if not n:
                continue
            rec = tx.run(stmt.text, {**stmt.params, **columns}).single(strict=True)
            matched = int(rec["matched"])
            if stmt.expect_all and matched != n:
                raise BatchMismatch(
                    f"{n - matched:,} of {n:,} rows did not find exactly their node(s) "
                    "(missing, duplicated, or changed since the export)"
                )
            total += matched
        return total

    with driver.session(database=database, notifications_min_severity="OFF") as session:
        try:
            return session.execute_write(work)
        except ConstraintError:
            if marker is None:
                raise
            raise AlreadyCommitted(marker) from None
        except ClientError as e:
            if e.code not in _VALUE_ERRORS:
                raise
            first = (e.message or str(e)).splitlines()[0]  # (then the text and a caret)
            raise ValueRefused(f"the server refused a value of this batch: {first}") from None


def ensure_markers(driver: neo4j.Driver, database: str) -> None:
    """The uniqueness constraint that makes batch markers exactly-once."""
    with driver.session(database=database, notifications_min_severity="OFF") as session:
        session.run(
            f"CREATE CONSTRAINT {MARKER_CONSTRAINT} IF NOT EXISTS "
            f"FOR (m:{MARKER_LABEL}) REQUIRE m.key IS UNIQUE"
        ).consume()


def clear_markers(driver: neo4j.Driver, database: str) -> None:
    """Delete every batch marker once a load finished.

    Markers only matter while their load can be resumed; the lock guarantees
    no other load is running, and a load abandoned with ``--restart`` can no
    longer be resumed, so its markers go too.
    """
    with driver.session(database=database, notifications_min_severity="OFF") as session:
        session.run(
            f"MATCH (m:{MARKER_LABEL}) CALL (m) {{ DELETE m }} IN TRANSACTIONS OF 10000 ROWS"
        ).consume()


def read_rows(
    driver: neo4j.Driver, database: str, text: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    """Run a read query and return its records as dicts."""
    with driver.session(
        database=database,
        default_access_mode=neo4j.READ_ACCESS,
        notifications_min_severity="OFF",
    ) as session:
        return [dict(r) for r in session.run(text, params)]

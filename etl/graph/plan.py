"""Dry-run Cypher: what a load's operations would change, computed without writing.

Each write operation of ``etl.graph.write`` has a read-only twin here that finds
the same nodes the same way and compares, property by property, what is there
with what the write would set. Values are compared by type *and* value
(``valueType``): Cypher says ``7.0 = 7``, but turning the Float into an
Integer is exactly a change the plan must show. (A NaN never equals itself,
so a NaN property always counts as changed.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import neo4j

from etl.graph.admin import quote_name
from etl.graph.params import want_map, zones
from etl.graph.write import UNWIND_ROWS, Columns, NodeOp, RelOp, endpoint_match, node_match

_SAME = (
    "((n[k] IS NULL AND want[k] IS NULL) OR (n[k] IS NOT NULL AND want[k] IS NOT NULL "
    "AND valueType(n[k]) = valueType(want[k]) AND n[k] = want[k]))"
)


def node_diff_query(op: NodeOp) -> str:
    """Per row: missing?, properties that would change or go, labels, relationships deleted."""
    labels = "coalesce($l[i], [])" if op.dynamic_labels else "[]"
    return "\n".join(
        [
            UNWIND_ROWS,
            node_match(op, optional=True),
            f"WITH i, n, {want_map(op.plans)} AS want",
            "RETURN n IS NULL AS missing,",
            f"  [k IN keys(want) WHERE n IS NOT NULL AND NOT {_SAME}] AS changed,",
            "  [k IN $remove WHERE n IS NOT NULL AND n[k] IS NOT NULL] AS removed,",
            f"  [l IN $add + {labels} WHERE n IS NOT NULL AND NOT l IN labels(n)] AS added,",
            "  [l IN $drop WHERE n IS NOT NULL AND l IN labels(n)] AS dropped,",
            "  [t IN $del_out | CASE WHEN n IS NULL THEN 0 "
            "ELSE COUNT { (n)-[r]->() WHERE type(r) = t } END] AS deleted",
        ]
    )


def delete_diff_query(op: NodeOp | RelOp) -> str:
    """Per row of a delete: is what it deletes there?"""
    if isinstance(op, NodeOp):
        return "\n".join(
            [UNWIND_ROWS, node_match(op, optional=True), "RETURN n IS NULL AS missing"]
        )
    t = quote_name(op.type)
    if op.delete == "eid":
        find = (
            f"OPTIONAL MATCH (a)-[r:{t}]->(b) WHERE elementId(r) = $e[i] "
            "AND elementId(a) = $ae[i] AND elementId(b) = $be[i]"
        )
        return "\n".join([UNWIND_ROWS, find, "RETURN r IS NULL AS missing"])
    return "\n".join(
        [
            UNWIND_ROWS,
            endpoint_match(op.start, "a", optional=True),
            endpoint_match(op.end, "b", optional=True),
            f"CALL (a, b) {{ OPTIONAL MATCH (a)-[x:{t}]->(b) RETURN count(x) AS have }}",
            "RETURN have = 0 AS missing",
        ]
    )


def rel_diff_query(op: RelOp) -> str:
    """Per row: endpoints found?, relationships there, relationships wanted."""
    want = "$hi[i] - $lo[i]" if op.multi else "1"
    return "\n".join(
        [
            UNWIND_ROWS,
            endpoint_match(op.start, "a", optional=True),
            endpoint_match(op.end, "b", optional=True),
            f"CALL (a, b) {{ OPTIONAL MATCH (a)-[x:{quote_name(op.type)}]->(b) "
            "RETURN count(x) AS have }",
            f"RETURN a IS NULL OR b IS NULL AS missing, have, {want} AS want",
        ]
    )


def diff(
    driver: neo4j.Driver,
    database: str,
    items: Sequence[tuple[NodeOp | RelOp, Columns]],
) -> list[tuple[NodeOp | RelOp, list[dict[str, Any]]]]:
    """Run the twin of every ``(operation, rows)``; per operation, one answer per row."""
    out: list[tuple[NodeOp | RelOp, list[dict[str, Any]]]] = []
    with driver.session(
        database=database,
        default_access_mode=neo4j.READ_ACCESS,
        notifications_min_severity="OFF",
    ) as session:
        for op, columns in items:
            if not columns["n"]:
                continue
            if (isinstance(op, NodeOp) and op.remove_node) or (isinstance(op, RelOp) and op.delete):
                params: dict[str, Any] = dict(columns)
                text = delete_diff_query(op)
            elif isinstance(op, NodeOp):
                params = {
                    **columns,
                    "zones": zones(op.plans),
                    "remove": list(op.remove_props),
                    "add": list(op.add_labels),
                    "drop": list(op.remove_labels),
                    "del_out": list(op.delete_out),
                }
                text = node_diff_query(op)
            else:
                params = {**columns, "zones": zones(op.plans)}
                text = rel_diff_query(op)
            out.append((op, [dict(r) for r in session.run(text, params)]))
    return out

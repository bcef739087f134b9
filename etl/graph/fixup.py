"""After an offline import: set the values the importer could not take, then unmark.

``etl.offline_files`` leaves such cells out of the import and marks their rows
with ``_etl_offline_fix`` (the row's index in its stage table). Here each
marked node or relationship is found through a temporary range index on the
marker, gets its residual properties set with the online load's encoders
(``etl.graph.params``), and loses the marker; the index is dropped at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import neo4j

from etl.graph.admin import quote_name
from etl.graph.params import ColumnPlan, set_clause, zones

FIX_PROP = "_etl_offline_fix"


def _index_name(kind: str, name: str) -> str:
    return f"etl_offline_fix_{kind}_{name}".replace("`", "")


def create_index(driver: neo4j.Driver, database: str, kind: str, name: str) -> str:
    """A range index on the marker of label (``kind="node"``) or type ``name``."""
    index = _index_name(kind, name)
    pattern = f"(x:{quote_name(name)})" if kind == "node" else f"()-[x:{quote_name(name)}]-()"
    with driver.session(database=database) as s:
        s.run(
            f"CREATE INDEX {quote_name(index)} IF NOT EXISTS FOR {pattern} "
            f"ON (x.{quote_name(FIX_PROP)})"
        ).consume()
        s.run("CALL db.awaitIndexes(600)").consume()
    return index


def drop_index(driver: neo4j.Driver, database: str, index: str) -> None:
    with driver.session(database=database) as s:
        s.run(f"DROP INDEX {quote_name(index)} IF EXISTS").consume()


def fix_batch(
    driver: neo4j.Driver,
    database: str,
    kind: str,
    name: str,
    plans: Sequence[ColumnPlan],
    columns: dict[str, Any],
) -> int:
    """Set ``plans`` on the rows whose markers are ``columns["f"]``; how many matched."""
    marker = quote_name(FIX_PROP)
    if kind == "node":
        find = f"MATCH (x:{quote_name(name)} {{{marker}: $f[i]}})"
    else:
        find = f"MATCH ()-[x:{quote_name(name)} {{{marker}: $f[i]}}]->()"
    text = "\n".join(
        [
            "UNWIND range(0, $n - 1) AS i",
            find,
            set_clause("x", plans),
            f"REMOVE x.{marker}",
            "RETURN count(*) AS matched",
        ]
    )
    params = {**columns, "n": len(columns["f"]), "zones": zones(plans)}

    def work(tx: neo4j.ManagedTransaction) -> int:
        return int(tx.run(text, params).single(strict=True)["matched"])

    with driver.session(database=database) as s:
        return s.execute_write(work)

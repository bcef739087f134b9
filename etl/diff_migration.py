"""Building blocks for a migration's ``etl diff --migration`` explanation.

``etl diff A B --migration NAME`` adds, to the ordinary table-by-table diff,
what the migration says about A → B: ``get_migration(NAME).explain_diff(pairs,
diffs, samples=…, compare_element_ids=…, lineage_ok=…, write_to=…)`` returns a
JSON-serialisable dict (or None: nothing to add) whose ``"figures"`` are
``etl.migrations.figures.Figure`` s in their JSON form, printed by
``etl.diff_render`` and ``etl.report_html`` whatever they hold. The helpers
here do the parts any migration needs, without knowing a label:

* ``scan``: one side of a paired table as a LazyFrame;
* ``property_changes`` / ``property_rows``: what happened to the properties of
  the rows of one node table that reappear (by key) in another;
* ``relationship_changes`` / ``relationships_figure``: per relationship type,
  kept / created / removed / re-pointed, from the per-table diffs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from etl.diff_model import PROVENANCE, TableDiff, TablePair
from etl.diff_values import common_dtype
from etl.migrations.figures import Figure, Row, Table

__all__ = [
    "RESERVED",
    "property_changes",
    "property_rows",
    "relationship_changes",
    "relationships_figure",
    "scan",
]

RESERVED = ("_element_id", "_labels")


def scan(pairs: Mapping[str, TablePair], name: str, side: str) -> pl.LazyFrame | None:
    """Side ``"a"`` or ``"b"`` of table ``name`` (``"nodes/<Label>"`` …), None if absent."""
    pair = pairs.get(name)
    table = None if pair is None else (pair.a if side == "a" else pair.b)
    return None if table is None else pl.scan_parquet([str(p) for p in table.paths])


def property_changes(
    a: pl.LazyFrame, b: pl.LazyFrame, compare_element_ids: bool, *, key: str = "id"
) -> dict[str, Any]:
    """Label moves, removed, new and changed properties over the rows of ``a`` found in ``b``.

    Rows are matched by ``key`` (the first of each copy in ``a``); provenance
    columns count as changed only with ``compare_element_ids``.
    """
    sa, sb = a.collect_schema(), b.collect_schema()
    removed = [c for c in sa.names() if c not in sb and c not in RESERVED]
    new = [c for c in sb.names() if c not in sa and c not in RESERVED]
    skip = {key, "_labels", *(() if compare_element_ids else PROVENANCE)}
    common = [c for c in sa.names() if c in sb and c not in skip]
    casts = {c: common_dtype(sa[c], sb[c]) for c in common}
    left = a.select(key, *(pl.col(c).alias(f"a::{c}") for c in sa.names() if c != key))
    right = b.select(key, *(pl.col(c).alias(f"b::{c}") for c in sb.names() if c != key))
    pairs = left.unique(key, keep="first").join(right, on=key, how="inner", nulls_equal=True)

    def same(c: str) -> pl.Expr:
        t = casts.get(c)
        if t is None:
            return pl.col(f"a::{c}").is_null() & pl.col(f"b::{c}").is_null()
        return pl.col(f"a::{c}").cast(t).eq_missing(pl.col(f"b::{c}").cast(t))

    exprs = [
        pl.len().alias("__rows"),
        *(pl.col(f"a::{c}").is_not_null().sum().alias(f"removed::{c}") for c in removed),
        *(pl.col(f"b::{c}").is_not_null().sum().alias(f"new::{c}") for c in new),
        *((~same(c)).sum().alias(f"changed::{c}") for c in common),
    ]
    if "_element_id" in sa and "_element_id" in sb:
        exprs.append(
            pl.col("a::_element_id").eq_missing(pl.col("b::_element_id")).sum().alias("__same_eid")
        )
    row = pairs.select(exprs).collect(engine="streaming").row(0, named=True)
    labels: list[dict[str, Any]] = []
    if "_labels" in sa and "_labels" in sb:
        labels = (
            pairs.group_by(pl.col("a::_labels").alias("a"), pl.col("b::_labels").alias("b"))
            .agg(pl.len().alias("rows"))
            .sort("rows", descending=True)
            .collect(engine="streaming")
            .to_dicts()
        )
    return {
        "rows_compared": int(row["__rows"]),
        "labels": labels,
        "removed": {c: int(row[f"removed::{c}"]) for c in removed},
        "new": {c: int(row[f"new::{c}"]) for c in new},
        "changed": {c: int(row[f"changed::{c}"]) for c in common if row[f"changed::{c}"]},
        "kept": [c for c in common if not row[f"changed::{c}"]],
        "element_id_kept": int(row["__same_eid"]) if "__same_eid" in row else None,
    }


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def property_rows(p: Mapping[str, Any]) -> list[Row]:
    """``property_changes``' result as rows: label moves, removed, new, changed, kept."""
    rows = [
        Row("label", f"{_value(move['a'])} → {_value(move['b'])}  {move['rows']:,}")
        for move in p["labels"]
    ]
    if p["removed"]:
        items = ", ".join(f"{c} (had a value: {n:,})" for c, n in p["removed"].items())
        rows.append(Row("removed", items))
    if p["new"]:
        rows.append(Row("new", ", ".join(f"{c} {n:,}" for c, n in p["new"].items())))
    if p["changed"]:
        rows.append(Row("changed", ", ".join(f"{c} {n:,}" for c, n in p["changed"].items())))
    if p["kept"]:
        rows.append(Row("kept", ", ".join(p["kept"])))
    if p["element_id_kept"] is not None:
        rows.append(Row("same node (element id kept)", p["element_id_kept"]))
    return rows


def relationship_changes(diffs: Mapping[str, TableDiff]) -> list[dict[str, Any]]:
    """Per relationship type: kept (matched by endpoint keys), created, removed, re-pointed."""
    rows = []
    for _, t in sorted(diffs.items()):
        if t.kind != "relationship":
            continue
        relabelled = max(
            t.changed_columns.get("_start_label", 0), t.changed_columns.get("_end_label", 0)
        )
        rows.append(
            {
                "type": t.name,
                "rows_a": t.rows_a or 0,
                "rows_b": t.rows_b or 0,
                "kept": (t.rows_a or 0) - t.removed,
                "created": t.added,
                "removed": t.removed,
                "endpoint_relabelled": relabelled,
                "properties_changed": sum(
                    n
                    for c, n in t.changed_columns.items()
                    if c not in ("_start_label", "_end_label")
                ),
            }
        )
    return rows


_REL_COLUMNS = ("rows_a", "rows_b", "kept", "created", "removed", "endpoint_relabelled")


def relationships_figure(rels: Sequence[Mapping[str, Any]]) -> Figure:
    """``relationship_changes``' result as a table figure titled "Relationships"."""
    return Figure(
        title="Relationships",
        table=Table(
            headers=("type", "A", "B", "kept", "created", "removed", "relabelled"),
            rows=tuple((r["type"], *(r[k] for k in _REL_COLUMNS)) for r in rels),
        ),
    )

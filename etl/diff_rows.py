"""Reading the differing rows back: counts, label moves, samples, and ``--out`` files.

``diff_table`` leaves the rows that differ in Parquet files (see
``etl.diff_model`` for their columns); everything here scans those files
lazily, so a table with millions of differences is summarised in a stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from etl.diff_model import CHANGED, DUP, IN_A, IN_B, PROVENANCE, A, B, TableDiff
from etl.diff_values import preview


def summarise(result: TableDiff, rows: pl.LazyFrame, *, samples: int) -> None:
    compared = result.compared
    totals = rows.select(
        (~pl.col(IN_A)).sum().alias("added"),
        (~pl.col(IN_B)).sum().alias("removed"),
        pl.col(CHANGED).sum().alias("changed"),
        *(pl.col(f"__chg::{c}").sum().alias(c) for c in compared),
    ).collect(engine="streaming")
    counts = totals.row(0, named=True)
    result.added, result.removed, result.changed = (
        int(counts["added"] or 0),
        int(counts["removed"] or 0),
        int(counts["changed"] or 0),
    )
    result.changed_columns = {c: int(counts[c]) for c in compared if counts[c]}
    if result.rows_a is not None and result.rows_b is not None:
        result.unchanged = result.rows_a - result.removed - result.changed
    if "_labels" in result.changed_columns:
        moves = (
            rows.filter(pl.col("__chg::_labels"))
            .group_by(pl.col(A + "_labels").alias("a"), pl.col(B + "_labels").alias("b"))
            .agg(pl.len().alias("rows"))
            .sort("rows", "a", "b", descending=[True, False, False])
            .collect(engine="streaming")
        )
        result.label_changes = moves.to_dicts()
    if samples > 0:
        result.samples = samples_of(result, rows, samples)


def samples_of(result: TableDiff, rows: pl.LazyFrame, n: int) -> dict[str, list[dict[str, Any]]]:
    """Up to ``n`` rows of each kind, smallest keys first, values shortened for people."""
    names = rows.collect_schema().names()
    eids = [c for c in ("__start_eid", "__end_eid") if c in names]
    order = [c for c in [*result.key, *eids, DUP] if c in names]

    def pick(cond: pl.Expr) -> pl.DataFrame:
        frame = rows.filter(cond)
        # bottom_k keeps n rows while streaming; a sort would hold every differing row.
        picked = frame.bottom_k(n, by=order) if order else frame.head(n)
        return picked.collect(engine="streaming").sort(order, nulls_last=True)

    def key_of(r: dict[str, Any]) -> dict[str, Any]:
        # An endpoint without key values is only identified by its element id: show it.
        unkeyed = {f"_{c[2:-4]}_element_id": r[c] for c in eids if r[c] is not None}
        return {**{k: preview(r[k]) for k in result.key}, **unkeyed}

    out: dict[str, list[dict[str, Any]]] = {}
    for kind, cond, prefix in (("added", ~pl.col(IN_A), B), ("removed", ~pl.col(IN_B), A)):
        shown = [c for c in names if c.startswith(prefix) and c[3:] not in PROVENANCE]
        out[kind] = [
            {**key_of(r), **{c[3:]: preview(r[c]) for c in shown}}
            for r in pick(cond).iter_rows(named=True)
        ]
    changed = []
    for r in pick(pl.col(CHANGED)).iter_rows(named=True):
        changes = {
            c: [preview(r[A + c]), preview(r[B + c])] for c in result.compared if r[f"__chg::{c}"]
        }
        changed.append({"key": key_of(r), "changes": changes})
    out["changed"] = changed
    return out


def write_rows(result: TableDiff, folder: Path) -> dict[str, int]:
    """Write the full added/removed/changed rows of one table under ``folder``.

    ``added.parquet`` holds B's rows, ``removed.parquet`` A's, both with their
    original column names; ``changed.parquet`` holds the key, ``_changed`` (the
    names of the columns that differ) and every column of both sides as
    ``a.<column>`` and ``b.<column>``. Empty files are not written.
    """
    rows = pl.scan_parquet(result.rows_files)
    names = rows.collect_schema().names()
    key = [k for k in result.key if k in names]
    written: dict[str, int] = {}
    side_cols = {
        "added": [pl.col(c).alias(c[3:]) for c in names if c.startswith(B)],
        "removed": [pl.col(c).alias(c[3:]) for c in names if c.startswith(A)],
    }
    changed_names = pl.concat_list(
        [pl.when(pl.col(f"__chg::{c}")).then(pl.lit(c)) for c in result.compared]
        or [pl.lit(None, pl.String)]
    ).list.drop_nulls()
    jobs = {
        "added": (result.added, rows.filter(~pl.col(IN_A)).select(*key, *side_cols["added"])),
        "removed": (
            result.removed,
            rows.filter(~pl.col(IN_B)).select(*key, *side_cols["removed"]),
        ),
        "changed": (
            result.changed,
            rows.filter(pl.col(CHANGED)).select(
                *key,
                changed_names.alias("_changed"),
                *(pl.col(c).alias(f"{c[:1]}.{c[3:]}") for c in names if c.startswith((A, B))),
            ),
        ),
    }
    for kind, (count, frame) in jobs.items():
        if count:
            folder.mkdir(parents=True, exist_ok=True)
            (frame.sort(key, nulls_last=True) if key else frame).sink_parquet(
                folder / f"{kind}.parquet", engine="streaming"
            )
            written[kind] = count
    return written

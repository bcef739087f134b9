"""Explain a migration as a diff: what each legacy row became, and why.

``etl diff data/export data/transform --migration workflow-to-workflowrun``
adds this to the ordinary table-by-table diff. For every legacy ``Workflow``
of A it finds the ``WorkflowRun`` of B with the same ``id`` (migrated) or its
row in B's ``rejected/Workflow`` (with the reason), and checks that these
account for every Workflow. For the migrated ones it summarises the property
changes (label, removed legacy properties, new properties, kept ones), and for
relationships it turns the per-type diff into kept / created / removed /
re-pointed counts (``HAS_RUNS`` created, ``BASED_ON_ISSUE`` removed,
``BELONGS_TO_WORKFLOW`` kept).

An explainer is registered per migration name in ``EXPLAINERS``, so the next
migration adds its own explanation here rather than a fork of ``etl diff``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from etl.diff_model import PROVENANCE, TableDiff, TablePair
from etl.diff_values import common_dtype, preview
from etl.errors import ConfigError

Explainer = Callable[..., dict[str, Any]]

RESERVED = ("_element_id", "_labels")


def _scan(pair: TablePair | None, side: str) -> pl.LazyFrame | None:
    table = None if pair is None else (pair.a if side == "a" else pair.b)
    return None if table is None else pl.scan_parquet([str(p) for p in table.paths])


def explain_workflow_runs(
    pairs: Mapping[str, TablePair],
    diffs: Mapping[str, TableDiff],
    *,
    samples: int,
    compare_element_ids: bool,
    lineage_ok: bool,
    write_to: Path | None = None,
) -> dict[str, Any]:
    """The ``workflow-to-workflowrun`` explanation (docs/MIGRATION.md), JSON-serialisable.

    With ``write_to``, also writes ``Workflow.parquet`` there: one row per legacy
    Workflow with its outcome (``migrated``/``rejected``/``unaccounted``), the
    run's workflowType and status, or the rejection's reason and detail.
    """
    legacy = _scan(pairs.get("nodes/Workflow"), "a")
    runs = _scan(pairs.get("nodes/WorkflowRun"), "b")
    if legacy is None:
        raise ConfigError(
            "A has no nodes/Workflow table: it is not a legacy export",
            hint="pass the export first and the transform second: etl diff EXPORT TRANSFORM",
        )
    if runs is None:
        raise ConfigError(
            "B has no nodes/WorkflowRun table: it is not a workflow-to-workflowrun transform",
            hint="pass the transform stage second (e.g. data/transform)",
        )
    rejected = _scan(pairs.get("rejected/Workflow"), "b")
    if rejected is None:
        rejected = pl.LazyFrame(schema={"id": pl.String, "reason": pl.String, "detail": pl.String})
    outcomes = _outcomes(legacy, runs, rejected)
    if write_to is not None:
        write_to.mkdir(parents=True, exist_ok=True)
        outcomes.sort("id", nulls_last=True).select(
            "id",
            "outcome",
            pl.col("run_type").alias("workflowType"),
            pl.col("run_status").alias("status"),
            "reason",
            "detail",
        ).sink_parquet(write_to / "Workflow.parquet", engine="streaming")
    counts = dict(
        outcomes.group_by("outcome").agg(pl.len()).collect(engine="streaming").iter_rows()
    )
    by_reason = dict(
        outcomes.filter(pl.col("outcome") == "rejected")
        .group_by("reason")
        .agg(pl.len())
        .sort("reason")
        .collect(engine="streaming")
        .iter_rows()
    )
    orphans = int(
        runs.join(legacy.select("id"), on="id", how="anti", nulls_equal=True)
        .select(pl.len())
        .collect(engine="streaming")
        .item()
    )
    workflows_in = sum(counts.values())
    migrated, n_rejected = counts.get("migrated", 0), counts.get("rejected", 0)
    return {
        "name": "workflow-to-workflowrun",
        "lineage_ok": lineage_ok,
        "workflows_in": workflows_in,
        "migrated": migrated,
        "rejected": n_rejected,
        "rejected_by_reason": by_reason,
        "unaccounted": counts.get("unaccounted", 0),
        "both_migrated_and_rejected": counts.get("both", 0),
        "runs_without_legacy_workflow": orphans,
        "adds_up": workflows_in == migrated + n_rejected and not orphans,
        "properties": _property_changes(legacy, runs, compare_element_ids),
        "status_per_type": _status_per_type(runs),
        "relationships": _relationships(diffs),
        "samples": _samples(outcomes, samples),
    }


def _outcomes(legacy: pl.LazyFrame, runs: pl.LazyFrame, rejected: pl.LazyFrame) -> pl.LazyFrame:
    """One row per legacy Workflow: id, outcome, and the run or the rejection it became."""
    made = runs.select(
        "id", pl.col("workflowType").alias("run_type"), pl.col("status").alias("run_status")
    ).unique("id", keep="first")
    # Every copy of a duplicate id is rejected with the same reason: one row per id suffices.
    refused = (
        rejected.group_by("id")
        .agg(pl.col("reason").first(), pl.col("detail").first())
        .with_columns(pl.col("id").cast(pl.String))
    )
    joined = (
        legacy.select(pl.col("id").cast(pl.String))
        .join(made.with_columns(pl.lit(True).alias("__run")), on="id", how="left", nulls_equal=True)
        .join(refused, on="id", how="left", nulls_equal=True)
    )
    ran, refused_ = pl.col("__run").fill_null(False), pl.col("reason").is_not_null()
    outcome = (
        pl.when(ran & refused_)
        .then(pl.lit("both"))
        .when(ran)
        .then(pl.lit("migrated"))
        .when(refused_)
        .then(pl.lit("rejected"))
        .otherwise(pl.lit("unaccounted"))
    )
    return joined.with_columns(outcome.alias("outcome")).drop("__run")


def _property_changes(
    legacy: pl.LazyFrame, runs: pl.LazyFrame, compare_element_ids: bool
) -> dict[str, Any]:
    """Label moves, removed, new and changed properties over the migrated Workflows."""
    sa, sb = legacy.collect_schema(), runs.collect_schema()
    removed = [c for c in sa.names() if c not in sb and c not in RESERVED]
    new = [c for c in sb.names() if c not in sa and c not in RESERVED]
    skip = {"id", "_labels", *(() if compare_element_ids else PROVENANCE)}
    common = [c for c in sa.names() if c in sb and c not in skip]
    casts = {c: common_dtype(sa[c], sb[c]) for c in common}
    a = legacy.select("id", *(pl.col(c).alias(f"a::{c}") for c in sa.names() if c != "id"))
    b = runs.select("id", *(pl.col(c).alias(f"b::{c}") for c in sb.names() if c != "id"))
    pairs = a.unique("id", keep="first").join(b, on="id", how="inner", nulls_equal=True)

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
        "runs_compared": int(row["__rows"]),
        "labels": labels,
        "removed": {c: int(row[f"removed::{c}"]) for c in removed},
        "new": {c: int(row[f"new::{c}"]) for c in new},
        "changed": {c: int(row[f"changed::{c}"]) for c in common if row[f"changed::{c}"]},
        "kept": [c for c in common if not row[f"changed::{c}"]],
        "element_id_kept": int(row["__same_eid"]) if "__same_eid" in row else None,
    }


def _status_per_type(runs: pl.LazyFrame) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    grouped = runs.group_by("workflowType", "status").agg(pl.len()).sort("workflowType", "status")
    for wtype, status, n in grouped.collect(engine="streaming").iter_rows():
        out.setdefault(str(wtype), {})[str(status)] = int(n)
    return out


def _relationships(diffs: Mapping[str, TableDiff]) -> list[dict[str, Any]]:
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


def _samples(outcomes: pl.LazyFrame, n: int) -> dict[str, list[dict[str, Any]]]:
    """Up to ``n`` migrated Workflows and up to ``n`` per rejection reason, by id."""
    if n <= 0:
        return {}
    picked = (
        outcomes.filter(pl.col("outcome") != "migrated")
        .unique("id", keep="first")
        .sort("id", nulls_last=True)
        .group_by("outcome", "reason", maintain_order=True)
        .head(n)
        .collect(engine="streaming")
    )
    migrated = (
        outcomes.filter(pl.col("outcome") == "migrated")
        .sort("id", nulls_last=True)
        .head(n)
        .collect(engine="streaming")
    )
    out: dict[str, list[dict[str, Any]]] = {
        "migrated": [
            {"id": r["id"], "workflowType": r["run_type"], "status": r["run_status"]}
            for r in migrated.iter_rows(named=True)
        ]
    }
    for r in picked.sort("outcome", "reason", "id", nulls_last=True).iter_rows(named=True):
        label = r["outcome"] if r["outcome"] != "rejected" else f"rejected:{r['reason']}"
        out.setdefault(label, []).append({"id": r["id"], "detail": preview(r["detail"], width=80)})
    return out


EXPLAINERS: dict[str, Explainer] = {"workflow-to-workflowrun": explain_workflow_runs}

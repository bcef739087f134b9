"""``etl diff EXPORT TRANSFORM --migration workflow-to-workflowrun``: what each Workflow became.

For every legacy ``Workflow`` of A it finds the ``WorkflowRun`` of B with the
same ``id`` (migrated) or its row in B's ``rejected/Workflow`` (with the
reason), and checks that these account for every Workflow. For the migrated
ones it summarises the property changes (label, removed legacy properties, new
properties, kept ones), and for relationships it turns the per-type diff into
kept / created / removed / re-pointed counts (``HAS_RUNS`` created,
``BASED_ON_ISSUE`` removed, ``BELONGS_TO_WORKFLOW`` kept).

``explain`` is what ``WorkflowToWorkflowRun.explain_diff`` returns: the counts
as JSON for machines, and ``"figures"`` (``etl.migrations.figures``) for the
engine to print. It reads the two stages' files it is given and writes only
into ``write_to``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from etl.diff_migration import (
    property_changes,
    property_rows,
    relationship_changes,
    relationships_figure,
    scan,
)
from etl.diff_model import TableDiff, TablePair
from etl.diff_values import preview
from etl.errors import ConfigError
from etl.migrations.figures import Figure, Row

NAME = "workflow-to-workflowrun"


def explain(
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
    legacy = scan(pairs, "nodes/Workflow", "a")
    runs = scan(pairs, "nodes/WorkflowRun", "b")
    if legacy is None:
        raise ConfigError(
            "A has no nodes/Workflow table: it is not a legacy export",
            hint="pass the export first and the transform second: etl diff EXPORT TRANSFORM",
        )
    if runs is None:
        raise ConfigError(
            f"B has no nodes/WorkflowRun table: it is not a {NAME} transform",
            hint="pass the transform stage second (e.g. data/transform)",
        )
    rejected = scan(pairs, "rejected/Workflow", "b")
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
    changes = property_changes(legacy, runs, compare_element_ids)
    properties = {"runs_compared": changes.pop("rows_compared"), **changes}
    m: dict[str, Any] = {
        "name": NAME,
        "title": f"Migration {NAME}",
        "lineage_ok": lineage_ok,
        "workflows_in": workflows_in,
        "migrated": migrated,
        "rejected": n_rejected,
        "rejected_by_reason": by_reason,
        "unaccounted": counts.get("unaccounted", 0),
        "both_migrated_and_rejected": counts.get("both", 0),
        "runs_without_legacy_workflow": orphans,
        "adds_up": workflows_in == migrated + n_rejected and not orphans,
        "properties": properties,
        "status_per_type": _status_per_type(runs),
        "relationships": relationship_changes(diffs),
        "samples": _samples(outcomes, samples),
    }
    m["figures"] = [f.to_json() for f in _figures(m)]
    return m


def _figures(m: Mapping[str, Any]) -> list[Figure]:
    """What ``etl diff`` prints of ``m``: outcomes, property changes, relationships."""
    outcome = [
        Row("legacy Workflows (A)", m["workflows_in"]),
        Row("→ WorkflowRun (B)", m["migrated"]),
        Row("→ rejected (B rejected/Workflow)", m["rejected"]),
        *(Row(reason, n, level=1) for reason, n in m["rejected_by_reason"].items()),
    ]
    for caption, key in (
        ("unaccounted", "unaccounted"),
        ("both migrated and rejected", "both_migrated_and_rejected"),
        ("runs with no legacy Workflow", "runs_without_legacy_workflow"),
    ):
        if m[key]:
            outcome.append(Row(caption, m[key], note="← should be 0"))
    outcome.append(Row("counts add up", m["adds_up"]))
    p = m["properties"]
    per_type = m["status_per_type"]
    return [
        Figure(title="", rows=tuple(outcome), columns=("outcome", "count")),
        Figure(
            title=f"Property changes ({p['runs_compared']:,} migrated runs)",
            rows=tuple(property_rows(p)),
            columns=("property", "change"),
            groups=tuple(per_type.items()),
            parts=tuple(sorted({s for statuses in per_type.values() for s in statuses})),
            group_by="workflowType",
        ),
        relationships_figure(m["relationships"]),
    ]


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


def _status_per_type(runs: pl.LazyFrame) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    grouped = runs.group_by("workflowType", "status").agg(pl.len()).sort("workflowType", "status")
    for wtype, status, n in grouped.collect(engine="streaming").iter_rows():
        out.setdefault(str(wtype), {})[str(status)] = int(n)
    return out


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

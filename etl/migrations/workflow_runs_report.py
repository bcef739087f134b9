"""The report of ``workflow-to-workflowrun`` and the invariants it must satisfy.

``summary`` is merged into the transform stage's report.json; ``check`` raises
``MigrationInternalError`` when the counts in it do not add up (a bug, never a
data problem); ``figures`` turns a report.json back into what people see (the
transform summary, the report's overview cards and its runs section).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from etl.migrations import MigrationInternalError
from etl.migrations.figures import CARD, REPORT, SUMMARY, Figure, Row
from etl.migrations.workflow_runs_classify import DERIVED, REASONS
from etl.migrations.workflow_runs_schema import missing_inputs

#: Cap on per-item lists in the report, so report.json stays readable.
REPORT_SAMPLE = 1000
#: A run's statuses, in the order the report draws them (and their colours).
STATUSES = ("completed", "error", "running")
STATUS_COLORS = {"completed": "#59a14f", "error": "#e15759", "running": "#4e79a7"}


def check(report: Mapping[str, Any], runs: pl.DataFrame) -> None:
    """Raise ``MigrationInternalError`` unless the counts add up and every code is known."""
    problems = []
    if report["workflows_in"] != report["runs_out"] + report["rejected_total"]:
        problems.append(
            "Workflows in ({workflows_in}) != WorkflowRuns out ({runs_out}) "
            "+ rejected ({rejected_total})".format(**report)
        )
    unknown = sorted(set(report["rejected"]) - set(REASONS))
    if unknown or report["rejected_total"] != sum(report["rejected"].values()):
        problems.append(f"rejection codes outside the documented set: {unknown}")
    if runs["id"].null_count() or runs["id"].n_unique() != runs.height:
        problems.append("WorkflowRun ids are not unique and non-null")
    if problems:
        raise MigrationInternalError(
            "internal error: " + "; ".join(problems),
            hint="this is a bug in the migration; please report it with the export",
        )


def summary(
    *,
    workflows_in: int,
    accepted: pl.DataFrame,
    tables: Mapping[str, pl.DataFrame],
    rejected: Mapping[str, pl.DataFrame],
    duplicates: pl.DataFrame,
    inputs: Mapping[str, pl.LazyFrame],
    wf_cols: list[str],
) -> dict[str, Any]:
    """The JSON-serialisable summary merged into the transform stage's report.json."""
    runs = tables["nodes/WorkflowRun"]
    rejected_wf = rejected["rejected/Workflow"]
    by_reason = dict.fromkeys(REASONS, 0)
    for reason, n in rejected_wf.group_by("reason").len().iter_rows():
        by_reason[reason] = n
    status_per_type: dict[str, dict[str, int]] = {}
    for wtype, status, n in (
        runs.group_by("workflowType", "status").len().sort("workflowType", "status").iter_rows()
    ):
        per = status_per_type.setdefault(wtype, dict.fromkeys(STATUSES, 0))
        per[status] = n
    inferred = accepted.filter(pl.col("__inferred"))
    inferences = (
        inferred.sort("id")
        .select("id", workflowType="__workflowType", evidence="__evidence_text")
        .head(REPORT_SAMPLE)
        .to_dicts()
    )
    issues = tables["nodes/Issue"]
    issues_rejected = rejected["rejected/Issue"].height if "rejected/Issue" in rejected else 0
    issueless = accepted.filter(pl.col("__ref_repo").is_null()).height
    return {
        "workflows_in": workflows_in,
        "runs_out": runs.height,
        "rejected_total": rejected_wf.height,
        "rejected": by_reason,
        "aliases_normalised": accepted.filter(pl.col("__type_source") == "alias").height,
        "status_per_type": status_per_type,
        "issues_in": issues.filter(~pl.col("_created")).height + issues_rejected,
        "issues_out": issues.height,
        "issues_created": issues.filter(pl.col("_created")).height,
        "issues_rejected": issues_rejected,
        "runs_with_issue": accepted.height - issueless,
        "issueless_runs": issueless,
        "has_runs": tables["relationships/HAS_RUNS"].height,
        "duplicate_issues": duplicates.height,
        "duplicate_issue_examples": duplicates.head(REPORT_SAMPLE)
        .select("repoFullName", "number", "copies", "element_ids", "chosen")
        .to_dicts(),
        "inferred_types": dict(sorted(inferred.group_by("__workflowType").len().iter_rows())),
        "inferences": inferences,
        "inferences_truncated": inferred.height > REPORT_SAMPLE,
        "post_to_github_not_boolean": accepted.filter(
            pl.col("__post_present") & pl.col("__postToGithub").is_null()
        ).height,
        "legacy_properties_replaced": [c for c in wf_cols if c in DERIVED],
        # Relationships whose Issue key has a number that cannot be an integer.
        "relationship_rows_rejected": {
            name: df.height
            for name, df in rejected.items()
            if name not in ("rejected/Workflow", "rejected/Issue")
        },
        "inputs_missing": missing_inputs(inputs),
    }


def figures(report: Mapping[str, Any]) -> list[Figure]:
    """Runs per workflowType and status, and the in/out counts, from ``summary``'s report.

    Rows in ``SUMMARY`` are the lines of ``etl transform``'s summary (in that
    order), ``REPORT`` rows the report's table, ``CARD`` rows its overview cards.
    """
    if "workflows_in" not in report:
        return []
    rejected = report.get("rejected") or {}
    total = sum(rejected.values()) if isinstance(rejected, Mapping) else rejected
    everywhere = (SUMMARY, REPORT, CARD)
    rows = [
        Row("Workflows in", report.get("workflows_in", 0), places=everywhere),
        Row("WorkflowRuns out", report.get("runs_out", 0), places=everywhere),
        Row("Rejected", total, places=everywhere),
    ]
    if isinstance(rejected, Mapping):
        rows += [
            Row(str(reason), n, level=1, places=(SUMMARY,))
            for reason, n in sorted(rejected.items())
            if n
        ]
    rows += [
        Row("Issues created", report.get("issues_created", 0)),
        Row("Issue-less runs", report.get("issueless_runs", 0)),
        Row("Aliases normalised", report.get("aliases_normalised", 0)),
    ]
    rows += [
        Row(caption, report[key], places=(REPORT,))
        for caption, key in (
            ("Runs with an issue", "runs_with_issue"),
            ("HAS_RUNS created", "has_runs"),
            ("Duplicate issues", "duplicate_issues"),
        )
        if key in report
    ]
    per_type: Mapping[str, Mapping[str, int]] = report.get("status_per_type") or {}
    return [
        Figure(
            title="WorkflowRuns per type and status",
            rows=tuple(rows),
            columns=("migration", "count"),
            groups=tuple((t, dict(per_type[t])) for t in sorted(per_type)),
            parts=STATUSES,
            group_by="workflowType",
            chart_title="WorkflowRuns per workflowType and status",
            colors=STATUS_COLORS,
        )
    ]

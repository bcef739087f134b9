"""``workflow-to-workflowrun``: legacy ``Workflow`` nodes become ``WorkflowRun`` nodes.

The rules are docs/MIGRATION.md's; the table contract is docs/STAGE_FORMAT.md
("Transform stage"). This module wires the pieces together:

=====================================  ==============================================
``workflow_runs_schema``               input contract, dtypes, deterministic order
``workflow_runs_json``                 column-wise JSON reading that never raises
``workflow_runs_events``               first/last event, deciding terminal event
``workflow_runs_issues``               issue references, Issue nodes, ``HAS_RUNS``
``workflow_runs_classify``             one rejection code, or the WorkflowRun values
=====================================  ==============================================

Everything is Polars expressions over whole columns: no Python loop touches
a row that migrates. The only per-row Python is quoting the JSON parser's
message for metadata already rejected as invalid JSON.

Every legacy Workflow ends up in exactly one of ``nodes/WorkflowRun`` (with the
same ``_element_id``, so a load can convert the node in place) or
``nodes/Workflow`` + ``rejected/Workflow`` (untouched, with its reason), and
``run`` raises ``MigrationInternalError`` if the counts ever disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import polars as pl

from etl.migrations import (
    MigrationInputError,
    MigrationInternalError,
    MigrationOptions,
    MigrationResult,
    StreamedTable,
)
from etl.migrations.workflow_runs_classify import REASONS, classify
from etl.migrations.workflow_runs_events import event_facts
from etl.migrations.workflow_runs_issues import (
    issue_nodes,
    issue_number_in_key,
    relationship_refs,
    resolve_issues,
)
from etl.migrations.workflow_runs_json import parser_messages
from etl.migrations.workflow_runs_schema import (
    INPUTS,
    UTC_NS,
    conform,
    missing_inputs,
    sort_keys,
    sorted_table,
)

#: Derived WorkflowRun properties; a legacy property of the same name is replaced.
DERIVED = ("workflowType", "createdAt", "status", "result", "postToGithub")
#: Legacy properties the migration removes (the export keeps them).
DROPPED = ("metadata", "created_at")
#: Cap on per-item lists in the report, so report.json stays readable.
REPORT_SAMPLE = 1000

MIGRATED, PASSTHROUGH = "migrated", "passthrough"
ROLES: dict[str, str] = {
    "nodes/WorkflowRun": MIGRATED,
    "nodes/Issue": MIGRATED,
    "nodes/Workflow": PASSTHROUGH,
    "nodes/Event": PASSTHROUGH,
    "nodes/Plan": PASSTHROUGH,
    "relationships/HAS_RUNS": MIGRATED,
    "relationships/BELONGS_TO_WORKFLOW": MIGRATED,
    "relationships/PART_OF": MIGRATED,
    "relationships/BASED_ON_ISSUE": PASSTHROUGH,
    "relationships/NEXT_EVENT": PASSTHROUGH,
    "relationships/GENERATED_FROM": PASSTHROUGH,
    "relationships/HAS_PLAN": PASSTHROUGH,
}


#: Rejected tables are ordered like the table their rows came from.
_SORTED_AS = {
    "rejected/Workflow": "nodes/Workflow",
    "rejected/Issue": "nodes/Issue",
    "rejected/BASED_ON_ISSUE": "relationships/BASED_ON_ISSUE",
    "rejected/HAS_PLAN": "relationships/HAS_PLAN",
}


class WorkflowToWorkflowRun:
    """The registered migration object (see ``etl.migrations.Migration``)."""

    name = "workflow-to-workflowrun"
    description = (
        "Convert legacy Workflow nodes (JSON metadata) into WorkflowRun nodes with "
        "workflowType, createdAt, status and HAS_RUNS from their Issue."
    )
    required_inputs: tuple[str, ...] = ("nodes/Workflow",)

    def run(self, inputs: Mapping[str, pl.LazyFrame], options: MigrationOptions) -> MigrationResult:
        """Migrate ``inputs`` (export tables; any may be absent) under ``options``."""
        return migrate(inputs, options)


def _dtype(frame: pl.LazyFrame, col: str) -> pl.DataType:
    return frame.collect_schema()[col]


def _relabel(rels: pl.LazyFrame, migrated: pl.LazyFrame, side: str) -> tuple[pl.LazyFrame, pl.Expr]:
    """``rels`` with ``_<side>_label`` Workflow → WorkflowRun where that end migrated."""
    key, label = f"_{side}.id", f"_{side}_label"
    marked = rels.join(
        migrated.select(pl.col("id").alias(key), __migrated=pl.lit(True)), on=key, how="left"
    )
    hit = pl.col("__migrated").fill_null(False) & (pl.col(label) == "Workflow")
    return marked, hit


#: Tables that come through row for row and may be streamed (see ``_streamable``).
_STREAMABLE = (
    "nodes/Event",
    "nodes/Plan",
    "relationships/BELONGS_TO_WORKFLOW",
    "relationships/NEXT_EVENT",
    "relationships/GENERATED_FROM",
)


def _streamable(
    name: str, raw: pl.LazyFrame, frame: pl.LazyFrame, options: MigrationOptions
) -> bool:
    """Whether ``raw`` is already in the order ``sorted_table`` would give ``frame``.

    ``frame`` is ``raw`` conformed: a column conform adds is all null and does
    not change the order, so only the columns ``raw`` really has must match its
    claimed order. Keys are limited to strings and integers, whose order is the
    same in the export's sort and Polars' (floats differ on -0.0 and NaN).
    """
    claimed = options.presorted.get(name)
    if claimed is None:
        return False
    schema = raw.collect_schema()
    if not schema:
        return False
    keys = [k for k in sort_keys(frame, name) if schema.get(k) not in (None, pl.Null)]
    if not all(schema[k] == pl.String or schema[k].is_integer() for k in keys):
        return False
    return keys == list(claimed)


def _stream(
    source: str, raw: pl.LazyFrame, apply: Callable[[pl.DataFrame], pl.DataFrame]
) -> StreamedTable:
    return StreamedTable(
        source=source,
        frame=raw,
        apply=apply,
        schema=apply(raw.head(0).collect()).schema,
        rows=int(raw.select(pl.len()).collect().item()),
    )


def _conformer(name: str) -> Callable[[pl.DataFrame], pl.DataFrame]:
    def apply(batch: pl.DataFrame) -> pl.DataFrame:
        return conform(name, batch.lazy()).collect()

    return apply


def _start_relabeler(name: str, ids: pl.Series) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """Like ``_relabel`` on the start side, row by row (no join): keeps the batch's order."""

    def apply(batch: pl.DataFrame) -> pl.DataFrame:
        hit = pl.col("_start.id").is_in(ids.implode()) & (pl.col("_start_label") == "Workflow")
        return (
            conform(name, batch.lazy())
            .with_columns(
                pl.when(hit)
                .then(pl.lit("WorkflowRun"))
                .otherwise(pl.col("_start_label"))
                .alias("_start_label")
            )
            .collect()
        )

    return apply


def _identity(batch: pl.DataFrame) -> pl.DataFrame:
    return batch


def _with_parser_messages(classified: pl.DataFrame) -> pl.DataFrame:
    """Replace the generic detail of invalid-JSON rejections by the parser's reason."""
    mask = classified["__reason"] == "metadata_invalid_json"
    if not mask.any():
        return classified
    texts = classified.filter(mask)["metadata"].to_list()
    messages = [f"metadata is not valid JSON: {m}" for m in parser_messages(texts)]
    detail = classified["__detail"].clone().scatter(mask.arg_true(), messages)
    return classified.with_columns(detail.alias("__detail"))


def migrate(inputs: Mapping[str, pl.LazyFrame], options: MigrationOptions) -> MigrationResult:
    """The migration as a function; see the module docstring and docs/MIGRATION.md."""
    for produced in ("nodes/WorkflowRun", "relationships/HAS_RUNS"):
        if produced in inputs:
            raise MigrationInputError(
                f"the input already has {produced}: it is not a legacy export",
                hint="transform the export of the legacy graph, not of a migrated one",
            )
    t = {name: conform(name, inputs.get(name)) for name in INPUTS}
    workflows = t["nodes/Workflow"]
    wf_cols = workflows.collect_schema().names()
    created_dtype = _dtype(workflows, "created_at")
    out_dtype = created_dtype if isinstance(created_dtype, pl.Datetime) else UTC_NS

    facts = event_facts(
        t["relationships/BELONGS_TO_WORKFLOW"],
        t["nodes/Event"],
        timestamp_dtype=_dtype(t["nodes/Event"], "timestamp"),
        with_evidence=options.infer_type,
    )
    based_on = t["relationships/BASED_ON_ISSUE"]
    rel_refs = relationship_refs(based_on, _dtype(based_on, "_end.number"))
    classified = classify(
        workflows,
        facts,
        rel_refs,
        options=options,
        created_dtype=created_dtype,
        out_dtype=out_dtype,
    ).collect()
    classified = _with_parser_messages(classified)
    accepted = classified.filter(pl.col("__reason").is_null())
    refused = classified.filter(pl.col("__reason").is_not_null())

    legacy = [c for c in wf_cols if c not in ("_element_id", "_labels", "id", *DROPPED, *DERIVED)]
    labels = pl.col("_labels").fill_null(pl.lit([], dtype=pl.List(pl.String)))
    runs = accepted.lazy().select(
        "_element_id",
        pl.concat_list(
            labels.list.eval(pl.element().filter(pl.element() != "Workflow")),
            pl.lit(["WorkflowRun"], dtype=pl.List(pl.String)),
        )
        .list.unique()
        .list.sort()
        .alias("_labels"),
        "id",
        *(pl.col(f"__{name}").alias(name) for name in DERIVED),
        *legacy,
    )
    migrated = accepted.lazy().select("id")

    belongs, hit = _relabel(t["relationships/BELONGS_TO_WORKFLOW"], migrated, "start")
    belongs = belongs.with_columns(
        pl.when(hit)
        .then(pl.lit("WorkflowRun"))
        .otherwise(pl.col("_start_label"))
        .alias("_start_label")
    ).drop("__migrated")
    part_of, hit = _relabel(t["relationships/PART_OF"], migrated, "end")
    part_of = part_of.with_columns(
        pl.when(hit).then(pl.lit("WorkflowRun")).otherwise(pl.col("_end_label")).alias("_end_label")
    ).drop("__migrated")
    # BASED_ON_ISSUE of a migrated Workflow is replaced by HAS_RUNS; the rest stay.
    based_on_marked, hit = _relabel(based_on, migrated, "start")
    based_on_kept = based_on_marked.filter(~hit).drop("__migrated")
    based_on_kept, based_on_rejected = issue_number_in_key(
        based_on_kept, "_end.number", _dtype(based_on, "_end.number")
    )
    has_plan = t["relationships/HAS_PLAN"]
    has_plan, has_plan_rejected = issue_number_in_key(
        has_plan, "_start.number", _dtype(has_plan, "_start.number")
    )
    issues_kept, issues_rejected = issue_nodes(t["nodes/Issue"], _dtype(t["nodes/Issue"], "number"))
    refs = (
        accepted.lazy()
        .filter(pl.col("__ref_repo").is_not_null())
        .select("_element_id", "id", repo="__ref_repo", number="__ref_number")
    )
    issues, has_runs, duplicates = resolve_issues(issues_kept, refs)

    lazy_tables: dict[str, pl.LazyFrame] = {
        "nodes/WorkflowRun": runs,
        "nodes/Issue": issues,
        "nodes/Workflow": refused.lazy().select(wf_cols),
        "nodes/Event": t["nodes/Event"],
        "nodes/Plan": t["nodes/Plan"],
        "relationships/HAS_RUNS": has_runs,
        "relationships/BELONGS_TO_WORKFLOW": belongs,
        "relationships/PART_OF": part_of,
        "relationships/BASED_ON_ISSUE": based_on_kept,
        "relationships/NEXT_EVENT": t["relationships/NEXT_EVENT"],
        "relationships/GENERATED_FROM": t["relationships/GENERATED_FROM"],
        "relationships/HAS_PLAN": has_plan,
    }
    roles = dict(ROLES)
    # Tables this migration does not read (other labels of a full backup) pass
    # through, so the transform stage still replays into a fresh database.
    for name, frame in inputs.items():
        if name not in lazy_tables and name.startswith(("nodes/", "relationships/")):
            lazy_tables[name] = frame
            roles[name] = PASSTHROUGH
    # Big tables already in output order are copied batch by batch by the caller.
    streamed: dict[str, StreamedTable] = {}
    for name in [*_STREAMABLE, *(n for n in roles if n not in ROLES)]:
        raw = inputs.get(name)
        if raw is None or not _streamable(name, raw, lazy_tables[name], options):
            continue
        if name == "relationships/BELONGS_TO_WORKFLOW":
            apply = _start_relabeler(name, accepted["id"])
        elif name in INPUTS:
            apply = _conformer(name)
        else:
            apply = _identity
        streamed[name] = _stream(name, raw, apply)
        del lazy_tables[name]
    lazy_rejected: dict[str, pl.LazyFrame] = {
        "rejected/Workflow": refused.lazy().select(
            pl.col("__reason").alias("reason"), pl.col("__detail").alias("detail"), *wf_cols
        ),
        "rejected/Issue": issues_rejected,
        "rejected/BASED_ON_ISSUE": based_on_rejected,
        "rejected/HAS_PLAN": has_plan_rejected,
    }
    names = list(lazy_tables)
    rejected_names = list(lazy_rejected)
    collected = pl.collect_all(
        [sorted_table(lazy_tables[n], n) for n in names]
        + [sorted_table(lazy_rejected[n], _SORTED_AS[n]) for n in rejected_names]
        + [duplicates.sort("repoFullName", "number"), workflows.select(pl.len())]
    )
    tables = dict(zip(names, collected[: len(names)], strict=True))
    rejected = {
        name: df
        for name, df in zip(rejected_names, collected[len(names) : -2], strict=True)
        # Only Workflow rejections are expected; the others appear when they happen.
        if name == "rejected/Workflow" or df.height
    }
    report = _report(
        # Counted on the input itself, so a join that lost or doubled rows shows.
        workflows_in=int(collected[-1].item()),
        classified=classified,
        tables=tables,
        rejected=rejected,
        duplicates=collected[-2],
        inputs=inputs,
        wf_cols=wf_cols,
    )
    _check(report, tables["nodes/WorkflowRun"])
    return MigrationResult(
        tables=tables, roles=roles, rejected=rejected, report=report, streamed=streamed
    )


def _check(report: Mapping[str, Any], runs: pl.DataFrame) -> None:
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


def _report(
    *,
    workflows_in: int,
    classified: pl.DataFrame,
    tables: Mapping[str, pl.DataFrame],
    rejected: Mapping[str, pl.DataFrame],
    duplicates: pl.DataFrame,
    inputs: Mapping[str, pl.LazyFrame],
    wf_cols: list[str],
) -> dict[str, Any]:
    """The JSON-serialisable summary merged into the transform stage's report.json."""
    runs = tables["nodes/WorkflowRun"]
    accepted = classified.filter(pl.col("__reason").is_null())
    rejected_wf = rejected["rejected/Workflow"]
    by_reason = dict.fromkeys(REASONS, 0)
    for reason, n in rejected_wf.group_by("reason").len().iter_rows():
        by_reason[reason] = n
    status_per_type: dict[str, dict[str, int]] = {}
    for wtype, status, n in (
        runs.group_by("workflowType", "status").len().sort("workflowType", "status").iter_rows()
    ):
        per = status_per_type.setdefault(wtype, dict.fromkeys(("completed", "error", "running"), 0))
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

"""``workflow-to-workflowrun``: legacy ``Workflow`` nodes become ``WorkflowRun`` nodes.

The rules are docs/MIGRATION.md's; the table contract is docs/STAGE_FORMAT.md
("Transform stage"). This module wires the pieces together:

=====================================  ==============================================
``workflow_runs_schema``               input contract, dtypes, deterministic order
``workflow_runs_json``                 column-wise JSON reading that never raises
``workflow_runs_events``               first/last event, deciding terminal event
``workflow_runs_issues``               issue references, Issue nodes, ``HAS_RUNS``
``workflow_runs_classify``             one rejection code, or the WorkflowRun values
``workflow_runs_report``               report.json's summary and its invariants
=====================================  ==============================================

Everything is Polars expressions over whole columns: no Python loop touches
a row that migrates. The only per-row Python is quoting the JSON parser's
message for metadata already rejected as invalid JSON.

Memory follows the number of Workflows, not of events: the events are read in
passes over ranges of ids (``workflow_runs_events``), the Workflows are
classified ``CLASSIFY_ROWS`` at a time, and tables that come through row for
row are handed back as ``StreamedTable`` s to be copied batch by batch.

Every legacy Workflow ends up in exactly one of ``nodes/WorkflowRun`` (with the
same ``_element_id``, so a load can convert the node in place) or
``nodes/Workflow`` + ``rejected/Workflow`` (untouched, with its reason), and
``run`` raises ``MigrationInternalError`` if the counts ever disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import polars as pl

from etl.migrations import (
    MigrationInputError,
    MigrationOptions,
    MigrationResult,
    StreamedTable,
)
from etl.migrations.workflow_runs_classify import DERIVED, classify, id_counts
from etl.migrations.workflow_runs_events import event_facts
from etl.migrations.workflow_runs_issues import (
    issue_nodes,
    issue_number_in_key,
    relationship_refs,
    resolve_issues,
)
from etl.migrations.workflow_runs_json import parser_messages
from etl.migrations.workflow_runs_report import check, summary
from etl.migrations.workflow_runs_schema import (
    INPUTS,
    UTC_NS,
    conform,
    sort_keys,
    sorted_table,
)

#: Legacy properties the migration removes (the export keeps them).
DROPPED = ("metadata", "created_at")
#: Workflows classified at a time (memory follows this, not the export).
CLASSIFY_ROWS = 50_000

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


#: Output tables whose rows come from another export table (``MigrationResult.sources``).
SOURCES = {"nodes/WorkflowRun": "nodes/Workflow", "rejected/Workflow": "nodes/Workflow"}

#: Tables whose rows are Workflows in the Workflow table's order (``classify`` keeps it).
_IN_WORKFLOW_ORDER = ("nodes/WorkflowRun", "nodes/Workflow", "rejected/Workflow")


class WorkflowToWorkflowRun:
    """The registered migration object (see ``etl.migrations.Migration``)."""

    name = "workflow-to-workflowrun"
    version = "0001"
    description = (
        "Convert legacy Workflow nodes (JSON metadata) into WorkflowRun nodes with "
        "workflowType, createdAt, status and HAS_RUNS from their Issue."
    )
    required_inputs: tuple[str, ...] = ("nodes/Workflow",)
    reads: tuple[str, ...] = ("Workflow", "Issue", "Event", "Plan")
    writes: tuple[str, ...] = ("WorkflowRun",)
    keys: Mapping[str, tuple[str, ...]] = {
        "Workflow": ("id",),
        "WorkflowRun": ("id",),
        "Event": ("id",),
        "Plan": ("id",),
        "Issue": ("repoFullName", "number"),
    }
    #: Legacy graphs have duplicate Issues and Workflows sharing an id: not unique.
    unique: tuple[str, ...] = ("WorkflowRun", "Event", "Plan")

    def run(self, inputs: Mapping[str, pl.LazyFrame], options: MigrationOptions) -> MigrationResult:
        """Migrate ``inputs`` (export tables; any may be absent) under ``options``."""
        return migrate(inputs, options)

    def checks(self) -> Sequence[Any]:
        """Declared checks come with generic validation; ``etl.validate`` still runs the five
        invariants of docs/MIGRATION.md itself."""
        return ()

    def explain_diff(self, pairs: Mapping[str, Any], diffs: Mapping[str, Any], **kw: Any) -> Any:
        """``etl diff --migration``: what became of every legacy Workflow."""
        from etl.migrations.workflow_runs_explain import explain

        return explain(pairs, diffs, **kw)

    def report_figures(self, report: Mapping[str, Any]) -> list[Any]:
        """Runs per type and status, and the in/out counts, for ``etl report``."""
        from etl.migrations.workflow_runs_report import figures

        return figures(report)


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
    "relationships/PART_OF",
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


def _relabeler(name: str, ids: pl.Series, side: str) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """Like ``_relabel``, row by row (no join): keeps the batch's order."""
    label = f"_{side}_label"

    def apply(batch: pl.DataFrame) -> pl.DataFrame:
        hit = pl.col(f"_{side}.id").is_in(ids.implode()) & (pl.col(label) == "Workflow")
        relabeled = pl.when(hit).then(pl.lit("WorkflowRun")).otherwise(pl.col(label))
        return conform(name, batch.lazy()).with_columns(relabeled.alias(label)).collect()

    return apply


#: Relationship tables that may point at a migrated Workflow, and at which end.
_RELABELED = {"relationships/BELONGS_TO_WORKFLOW": "start", "relationships/PART_OF": "end"}


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
        workflows,
        timestamp_dtype=_dtype(t["nodes/Event"], "timestamp"),
        with_evidence=options.infer_type,
    )
    based_on = t["relationships/BASED_ON_ISSUE"]
    rel_refs = relationship_refs(based_on, _dtype(based_on, "_end.number")).collect()
    # Counted on the input itself, so a join that lost or doubled rows shows.
    workflows_in = int(workflows.select(pl.len()).collect().item())
    shared_ids = id_counts(workflows).collect(engine="streaming").lazy()
    accepted_parts, refused_parts = [], []
    # In slices: the JSON lookups of one slice are held at a time, not of all Workflows.
    for offset in range(0, max(workflows_in, 1), CLASSIFY_ROWS):
        part = classify(
            workflows.slice(offset, CLASSIFY_ROWS),
            facts.lazy(),
            rel_refs.lazy(),
            shared_ids=shared_ids,
            options=options,
            created_dtype=created_dtype,
            out_dtype=out_dtype,
        ).collect()
        part = _with_parser_messages(part)
        accepted_parts.append(part.filter(pl.col("__reason").is_null()).drop(DROPPED))
        refused_parts.append(part.filter(pl.col("__reason").is_not_null()))
    del facts, rel_refs
    accepted, refused = pl.concat(accepted_parts), pl.concat(refused_parts)
    del accepted_parts, refused_parts

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
        if name in _RELABELED:
            apply = _relabeler(name, accepted["id"], _RELABELED[name])
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
    # Tables in the order of a sorted Workflow table need no sort (nor its copy).
    raw_workflows = inputs.get("nodes/Workflow")
    in_order = raw_workflows is not None and _streamable(
        "nodes/Workflow", raw_workflows, workflows, options
    )

    def ordered(name: str, frame: pl.LazyFrame) -> pl.LazyFrame:
        if in_order and name in _IN_WORKFLOW_ORDER:
            return frame
        return sorted_table(frame, _SORTED_AS.get(name, name))

    queries = (
        [ordered(n, lazy_tables[n]) for n in names]
        + [ordered(n, lazy_rejected[n]) for n in rejected_names]
        + [duplicates.sort("repoFullName", "number")]
    )
    collected = pl.collect_all(queries)
    tables = dict(zip(names, collected[: len(names)], strict=True))
    rejected = {
        name: df
        for name, df in zip(rejected_names, collected[len(names) : -1], strict=True)
        # Only Workflow rejections are expected; the others appear when they happen.
        if name == "rejected/Workflow" or df.height
    }
    report = summary(
        workflows_in=workflows_in,
        accepted=accepted,
        tables=tables,
        rejected=rejected,
        duplicates=collected[-1],
        inputs=inputs,
        wf_cols=wf_cols,
    )
    check(report, tables["nodes/WorkflowRun"])
    return MigrationResult(
        tables=tables,
        roles=roles,
        rejected=rejected,
        report=report,
        streamed=streamed,
        sources=dict(SOURCES),
    )

"""Decide, for every legacy Workflow, its WorkflowRun properties or its one rejection.

``classify`` is one lazy query over the Workflow table, joined to what the
events and ``BASED_ON_ISSUE`` relationships say about each Workflow id. Its
internal columns start with ``__``: the stage format reserves a leading ``_``
(a property ``_x`` is exported as ``_prop._x``), so they can never collide with
a legacy property.

Rejection precedence, when several apply (first wins)::

    id_missing, duplicate_id,
    metadata_missing, metadata_invalid_json, metadata_not_object,
    workflow_type_missing, workflow_type_unknown,
    created_at_missing, issue_ref_invalid, issue_ref_conflict

Identity comes first (a Workflow that cannot be addressed, or shares its id,
is rejected whatever else is true: "all are rejected"); the rest follows
docs/MIGRATION.md's order, which is also the order the target properties are
derived in. ``id_missing`` is our addition: the spec assumes every Workflow
has an id, and a WorkflowRun without one could not be keyed.
"""

from __future__ import annotations

from datetime import UTC

import polars as pl

from etl.migrations import MigrationOptions
from etl.migrations.workflow_runs_issues import metadata_issue
from etl.migrations.workflow_runs_json import field, is_false, is_true, root_kind
from etl.migrations.workflow_runs_schema import lit_str, short, to_datetime_dtype, to_utc

#: Derived WorkflowRun properties; a legacy property of the same name is replaced.
DERIVED = ("workflowType", "createdAt", "status", "result", "postToGithub")

WORKFLOW_TYPES = ("commentOnIssue", "identifyPRGoal", "resolveIssue", "reviewPullRequest")
#: Legacy spellings and the type they mean.
ALIASES = {"resolve_issue": "resolveIssue"}
ABANDONED = "no terminal event (abandoned run)"

REASONS = (
    "id_missing",
    "duplicate_id",
    "metadata_missing",
    "metadata_invalid_json",
    "metadata_not_object",
    "workflow_type_missing",
    "workflow_type_unknown",
    "created_at_missing",
    "issue_ref_invalid",
    "issue_ref_conflict",
)


def _infer_suffix(enabled: bool) -> pl.Expr:
    """Why ``--infer-type`` did not rescue the run (empty when it was off)."""
    if not enabled:
        return pl.lit("")
    types = pl.col("__evidence_types")
    return (
        pl.when(types.is_null() | (types.list.len() == 0))
        .then(pl.lit("; --infer-type found no status event pointing to a type"))
        .otherwise(
            pl.format("; --infer-type found conflicting evidence: {}", types.list.join(", "))
        )
    )


#: What ``classify`` adds to the Workflow columns (its other ``__`` columns are dropped).
OUTPUTS = (
    "__reason",
    "__detail",
    *(f"__{name}" for name in DERIVED),
    "__type_source",
    "__post_present",
    "__ref_repo",
    "__ref_number",
    "__inferred",
    "__evidence_text",
)


def id_counts(workflows: pl.LazyFrame) -> pl.LazyFrame:
    """``id`` and ``__dups`` (its number of Workflows) for ids held by several (null included)."""
    return workflows.group_by("id").agg(__dups=pl.len()).filter(pl.col("__dups") > 1)


def classify(
    workflows: pl.LazyFrame,
    facts: pl.LazyFrame,
    rel_refs: pl.LazyFrame,
    *,
    shared_ids: pl.LazyFrame,
    options: MigrationOptions,
    created_dtype: pl.DataType,
    out_dtype: pl.Datetime,
) -> pl.LazyFrame:
    """The Workflow table plus ``OUTPUTS``: ``__reason``/``__detail`` and the derived properties.

    ``__workflowType``, ``__createdAt`` (dtype ``out_dtype``), ``__status``,
    ``__result``, ``__postToGithub``, ``__ref_repo``/``__ref_number`` are
    meaningful where ``__reason`` is null. ``facts`` comes from
    ``event_facts`` and ``rel_refs`` from ``relationship_refs``, both keyed by
    ``wf_id``; ``shared_ids`` is ``id_counts`` of the whole Workflow table, so
    ``workflows`` may be any slice of it (each row is classified on its own).
    The rows come out in the order they went in.
    """
    meta = pl.col("metadata")
    is_obj = pl.col("__kind") == "object"
    columns = workflows.collect_schema().names()
    base = workflows.join(
        shared_ids, on="id", how="left", nulls_equal=True, maintain_order="left"
    ).with_columns(__kind=root_kind(meta), __dups=pl.col("__dups").fill_null(1))
    base = base.with_columns(
        __wt_raw=pl.when(is_obj).then(field(meta, "workflowType")),
        __postToGithub=pl.when(is_obj & is_true(meta, "postToGithub"))
        .then(pl.lit(True))
        .when(is_obj & is_false(meta, "postToGithub"))
        .then(pl.lit(False)),
        __post_present=is_obj & field(meta, "postToGithub").is_not_null(),
    )
    for stage in metadata_issue("metadata", is_obj):
        base = base.with_columns(**stage)
    # Prefixed like our own columns, so no legacy property can shadow them.
    facts, rel_refs = (
        f.rename(lambda c: c if c == "wf_id" else f"__{c}") for f in (facts, rel_refs)
    )
    # In the Workflows' order: the caller may rely on it (see ``migrate``).
    joined = base.join(
        facts, left_on="id", right_on="wf_id", how="left", maintain_order="left"
    ).join(rel_refs, left_on="id", right_on="wf_id", how="left", maintain_order="left")

    wt_raw = pl.col("__wt_raw")
    types = pl.col("__evidence_types")
    inferred = pl.when(
        pl.lit(options.infer_type)
        & wt_raw.is_null()
        & pl.col("__kind").is_in(["missing", "object"])
        & (types.list.len() == 1)
    ).then(types.list.first())
    alias = pl.lit(None, dtype=pl.String)
    for legacy, target in ALIASES.items():
        alias = pl.when(wt_raw == legacy).then(pl.lit(target)).otherwise(alias)
    workflow_type = (
        pl.when(wt_raw.is_in(WORKFLOW_TYPES)).then(wt_raw).otherwise(pl.coalesce(alias, inferred))
    )
    type_source = (
        pl.when(wt_raw.is_in(WORKFLOW_TYPES))
        .then(pl.lit("metadata"))
        .when(alias.is_not_null())
        .then(pl.lit("alias"))
        .when(inferred.is_not_null())
        .then(pl.lit("inferred"))
    )
    ev_first = to_datetime_dtype(pl.col("__ev_first"), pl.Datetime("ns", "UTC"), out_dtype)
    created_at = pl.coalesce(
        to_datetime_dtype(pl.col("created_at"), created_dtype, out_dtype), ev_first
    )
    derived = joined.with_columns(
        __workflowType=workflow_type,
        __type_source=type_source,
        __createdAt=created_at,
    )

    rel_count = pl.col("__rel_key_count").fill_null(0)
    meta_repo, meta_number = pl.col("__meta_repo"), pl.col("__meta_number")
    conflict = (rel_count > 1) | (
        (rel_count == 1)
        & meta_repo.is_not_null()
        & ((pl.col("__rel_repo") != meta_repo) | (pl.col("__rel_number") != meta_number))
    )
    issue_problem = pl.coalesce(pl.col("__rel_problem"), pl.col("__meta_issue_problem"))
    suffix = _infer_suffix(options.infer_type)
    kind_col = pl.col("__kind")
    checks: list[tuple[str, pl.Expr, pl.Expr]] = [
        ("id_missing", pl.col("id").is_null(), pl.lit("Workflow has no id property")),
        (
            "duplicate_id",
            pl.col("__dups") > 1,
            pl.format("{} Workflow nodes share id '{}'", pl.col("__dups"), short(pl.col("id"))),
        ),
        (
            "metadata_missing",
            (kind_col == "missing") & pl.col("__workflowType").is_null(),
            pl.concat_str(
                pl.lit("Workflow has no metadata, so its workflowType is unknown"), suffix
            ),
        ),
        ("metadata_invalid_json", kind_col == "invalid", pl.lit("metadata is not valid JSON")),
        (
            "metadata_not_object",
            ~kind_col.is_in(["object", "missing"]),
            pl.format("metadata is a JSON {}, not an object", kind_col),
        ),
        (
            "workflow_type_missing",
            wt_raw.is_null() & pl.col("__workflowType").is_null(),
            pl.concat_str(pl.lit("metadata has no workflowType"), suffix),
        ),
        (
            "workflow_type_unknown",
            pl.col("__workflowType").is_null(),
            pl.format(
                "workflowType '{}' is not one of {} (or the alias resolve_issue)",
                short(wt_raw),
                pl.lit(", ".join(WORKFLOW_TYPES)),
            ),
        ),
        (
            "created_at_missing",
            pl.col("__createdAt").is_null(),
            pl.when(pl.col("__ev_count").fill_null(0) == 0)
            .then(pl.lit("no created_at and no events to take the earliest timestamp from"))
            .otherwise(
                pl.format(
                    "no created_at, and its {} events have no timestamp", pl.col("__ev_count")
                )
            ),
        ),
        ("issue_ref_invalid", issue_problem.is_not_null(), issue_problem),
        (
            "issue_ref_conflict",
            conflict,
            pl.when(rel_count > 1)
            .then(
                pl.format(
                    "BASED_ON_ISSUE points to {} different issues: {}",
                    rel_count,
                    short(pl.col("__rel_keys"), 200),
                )
            )
            .otherwise(
                pl.format(
                    "BASED_ON_ISSUE points to {} but metadata.issue names {}#{}",
                    pl.col("__rel_keys"),
                    meta_repo,
                    meta_number,
                )
            ),
        ),
    ]
    assert tuple(code for code, _, _ in checks) == REASONS
    reason: pl.Expr = lit_str(None)
    detail: pl.Expr = lit_str(None)
    # Built from the last check backwards so the first matching check wins.
    for code, condition, text in reversed(checks):
        reason = pl.when(condition).then(lit_str(code)).otherwise(reason)
        detail = pl.when(condition).then(text).otherwise(detail)

    snapshot = options.snapshot_time.astimezone(UTC)
    last_sign = pl.coalesce(pl.col("__ev_last"), to_utc(pl.col("__createdAt"), out_dtype))
    fresh = last_sign >= pl.lit(snapshot - options.stale_after)
    term = pl.col("__term_status")
    return derived.with_columns(
        __reason=reason,
        __detail=detail,
        __status=pl.when(term.is_not_null())
        .then(term)
        .when(fresh)
        .then(lit_str("running"))
        .otherwise(lit_str("error")),
        __result=pl.when(term.is_not_null())
        .then(pl.col("__term_result"))
        .when(fresh)
        .then(lit_str(None))
        .otherwise(lit_str(ABANDONED)),
        __ref_repo=pl.coalesce(pl.col("__rel_repo"), meta_repo),
        __ref_number=pl.coalesce(pl.col("__rel_number"), meta_number),
        __inferred=type_source == "inferred",
    ).select(*columns, *OUTPUTS)

"""What a run's events say: first and last timestamps, the deciding terminal event,
and (for ``--infer-type``) which workflow type its status messages point to.

Everything is a group-by over the events joined to their Workflow through
``BELONGS_TO_WORKFLOW`` (Workflow → Event), one output row per Workflow id.

Status rules (docs/MIGRATION.md "The target"): events are ordered by
(``timestamp``, ``id``) and the *latest terminal* event decides:

=========================================================  ==========
event                                                      status
=========================================================  ==========
``complete``                                               completed
``status`` with ``data.status == "completed"``             completed
``error`` whose ``data.recoverable`` is not JSON ``true``  error
=========================================================  ==========

A deciding ``error`` gives ``result`` = ``data.error``: a string as is, an
object as its compact JSON; absent, null, empty, and a serialised ``{}``
(what ``JSON.stringify`` makes of an ``Error``) all become ``"unknown error"``.
Events with a null timestamp sort first, i.e. count as the oldest.
"""

from __future__ import annotations

import polars as pl

from etl.migrations.workflow_runs_json import field, is_true, root_kind
from etl.migrations.workflow_runs_schema import lit_str, to_utc

UNKNOWN_ERROR = "unknown error"

#: ``--infer-type`` evidence: a ``status`` event whose text matches one of these
#: (case-insensitive) points to that type. A run is inferred only when all its
#: matching status events point to exactly one type; anything else is
#: ambiguous and the run stays rejected. Keep the patterns narrow: a wrong
#: inference is worse than a rejection that a person can look at.
INFERENCE_RULES: tuple[tuple[str, str], ...] = (
    ("reviewPullRequest", r"(?i)\b(?:pr|pull request) review\b|\breview(?:ing)? (?:the )?pr\b"),
    ("reviewPullRequest", r"(?i)\breview(?:ing)? (?:the )?pull request\b"),
    ("identifyPRGoal", r"(?i)\b(?:pr|pull request) goal\b"),
    ("resolveIssue", r"(?i)\bresolv(?:e|ing) (?:the )?issue\b"),
    ("commentOnIssue", r"(?i)\bcomment(?:ing)? on (?:the )?issue\b"),
)


def _evidence(status_text: pl.Expr) -> pl.Expr:
    """The types a status text points to (an empty list when none)."""
    hits = [pl.when(status_text.str.contains(rx)).then(lit_str(t)) for t, rx in INFERENCE_RULES]
    return pl.concat_list(hits).list.drop_nulls()


def event_facts(
    belongs: pl.LazyFrame,
    events: pl.LazyFrame,
    *,
    timestamp_dtype: pl.DataType,
    with_evidence: bool,
) -> pl.LazyFrame:
    """One row per Workflow id that has events.

    Columns: ``wf_id``, ``ev_count``, ``ev_first``/``ev_last`` (UTC, nulls
    ignored), ``term_status`` and ``term_result`` (null when no terminal
    event), and when ``with_evidence``: ``evidence_types`` (sorted distinct
    types pointed to) and ``evidence_text`` (the first status text that did).
    """
    links = belongs.filter(
        (pl.col("_start_label") == "Workflow") & (pl.col("_end_label") == "Event")
    ).select(wf_id=pl.col("_start.id"), ev_id=pl.col("_end.id"))
    ev_type = pl.col("type")
    # Only status and error events are read: their data is parsed once per
    # lookup into columns, and every other event's data is skipped (nulled).
    data = pl.col("__data")
    parsed = events.with_columns(
        __data=pl.when(ev_type.is_in(["status", "error"])).then(pl.col("data"))
    ).with_columns(
        __obj=root_kind(data) == "object",
        __status=field(data, "status"),
        __error=field(data, "error"),
        __recoverable=is_true(data, "recoverable"),
    )
    is_obj, error_text = pl.col("__obj"), pl.col("__error")
    status_text = pl.when(is_obj & (ev_type == "status")).then(pl.col("__status"))
    term_status = (
        pl.when(ev_type == "complete")
        .then(lit_str("completed"))
        .when(status_text == "completed")
        .then(lit_str("completed"))
        .when((ev_type == "error") & ~(is_obj & pl.col("__recoverable")))
        .then(lit_str("error"))
    )
    term_result = pl.when(term_status == "error").then(
        pl.when(~is_obj | error_text.is_null() | error_text.str.strip_chars().is_in(["", "{}"]))
        .then(lit_str(UNKNOWN_ERROR))
        .otherwise(error_text)
    )
    per_event = parsed.select(
        ev_id=pl.col("id"),
        ev_ts=to_utc(pl.col("timestamp"), timestamp_dtype),
        term_status=term_status,
        term_result=term_result,
        status_text=status_text,
    )
    joined = links.join(per_event, on="ev_id", how="inner")
    order = ["ev_ts", "ev_id"]
    facts = joined.group_by("wf_id").agg(
        ev_count=pl.len(),
        ev_first=pl.col("ev_ts").min(),
        ev_last=pl.col("ev_ts").max(),
    )
    decisions = (
        joined.filter(pl.col("term_status").is_not_null())
        .group_by("wf_id")
        .agg(
            pl.col("term_status").sort_by(order).last(),
            pl.col("term_result").sort_by(order).last(),
        )
    )
    facts = facts.join(decisions, on="wf_id", how="left")
    if with_evidence:
        evidence = (
            joined.with_columns(evidence=_evidence(pl.col("status_text")))
            .filter(pl.col("evidence").list.len() > 0)
            .group_by("wf_id")
            .agg(
                evidence_types=pl.col("evidence").explode(empty_as_null=False).unique().sort(),
                evidence_text=pl.col("status_text").sort_by(order).first(),
            )
        )
        facts = facts.join(evidence, on="wf_id", how="left")
    else:
        facts = facts.with_columns(
            evidence_types=pl.lit(None, dtype=pl.List(pl.String)),
            evidence_text=lit_str(None),
        )
    return facts

"""What a run's events say: first and last timestamps, the deciding terminal event,
and (for ``--infer-type``) which workflow type its status messages point to.

Everything is a group-by over the events joined to their Workflow through
``BELONGS_TO_WORKFLOW`` (Workflow → Event), one output row per Workflow id.
It runs in passes over ranges of event ids (``event_facts``), so memory holds
one range of events and one row per Workflow, whatever the number of events.

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


def _per_event(events: pl.LazyFrame, timestamp_dtype: pl.DataType) -> pl.LazyFrame:
    """What each event says on its own: ``ev_id``, ``ev_ts``, ``term_status``,
    ``term_result`` and ``status_text`` (null unless a status event's text)."""
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
    return parsed.select(
        ev_id=pl.col("id"),
        ev_ts=to_utc(pl.col("timestamp"), timestamp_dtype),
        term_status=term_status,
        term_result=term_result,
        status_text=status_text,
    )


#: Ends the order part of a key; an id's own NULs are escaped as NUL 0x01.
_SEP = "\x00\x00"


def _order_key(ts: pl.Expr, ev_id: pl.Expr) -> pl.Expr:
    """A string that sorts like (``ts`` nulls first, ``ev_id``), ready for a payload.

    The timestamp's integer, sign bit flipped, as 20 digits (``"0"`` for null);
    then the id with every NUL escaped, then ``_SEP``. Byte order of the keys
    is the events' order, even where one id is a prefix of another, and the
    first ``_SEP`` in a key is where its payload starts.
    """
    bits = ts.to_physical().reinterpret(signed=False).xor(pl.lit(1 << 63, dtype=pl.UInt64))
    stamp = (
        pl.when(ts.is_null())
        .then(pl.lit("0"))
        .otherwise(pl.concat_str(pl.lit("1"), bits.cast(pl.String).str.zfill(20)))
    )
    escaped = ev_id.str.replace_all("\x00", "\x00\x01", literal=True)
    return pl.concat_str(stamp, escaped, pl.lit(_SEP))


def _payload(key: pl.Expr) -> pl.Expr:
    return key.str.splitn(_SEP, 2).struct.field("field_1")


#: ``--infer-type`` types in sorted order, each with the rules that point to it.
_TYPES = tuple(sorted({t for t, _ in INFERENCE_RULES}))


def _type_flag(wtype: str) -> str:
    return f"points_to_{wtype}"


def _pass_facts(pairs: pl.LazyFrame, with_evidence: bool) -> pl.LazyFrame:
    """Per Workflow (``wf``, its number), the facts of its events in ``pairs`` as
    min/max/count, which the streaming engine keeps per group without holding
    the pairs.

    ``term_key`` is the largest key (``_order_key``) of a terminal event, with
    ``status`` or ``status NUL result`` as payload; ``evi_key`` the smallest of
    an evidence event, with its status text; ``points_to_<type>`` whether any
    evidence event points to that type.
    """
    ts, status, result = pl.col("ev_ts"), pl.col("term_status"), pl.col("term_result")
    order = _order_key(ts, pl.col("ev_id"))
    outcome = pl.concat_str(
        status,
        pl.when(result.is_not_null()).then(pl.concat_str(pl.lit("\x00"), result)),
        ignore_nulls=True,
    )
    aggs = [
        pl.len().alias("ev_count"),
        ts.min().alias("ev_first"),
        ts.max().alias("ev_last"),
        pl.when(status.is_not_null()).then(pl.concat_str(order, outcome)).max().alias("term_key"),
    ]
    if with_evidence:
        text = pl.col("status_text")
        flags = {
            wtype: pl.any_horizontal(
                text.str.contains(rx) for t, rx in INFERENCE_RULES if t == wtype
            )
            for wtype in _TYPES
        }
        hit = pl.any_horizontal(flags.values())
        aggs += [
            pl.when(hit).then(pl.concat_str(order, text)).min().alias("evi_key"),
            *(flag.max().alias(_type_flag(wtype)) for wtype, flag in flags.items()),
        ]
    return pairs.group_by("wf").agg(aggs)


def _fold(parts: pl.DataFrame, with_evidence: bool) -> pl.DataFrame:
    """``_pass_facts`` of several passes (a row per ``wf`` in each) as one row per ``wf``."""
    aggs = [
        pl.col("ev_count").sum(),
        pl.col("ev_first").min(),
        pl.col("ev_last").max(),
        pl.col("term_key").max(),
    ]
    if with_evidence:
        aggs += [pl.col("evi_key").min(), *(pl.col(_type_flag(t)).max() for t in _TYPES)]
    return parts.group_by("wf").agg(aggs)


def _decoded(folded: pl.DataFrame, with_evidence: bool) -> pl.DataFrame:
    """The facts ``event_facts`` promises, out of the keys of ``_fold``."""
    outcome = _payload(pl.col("term_key")).str.splitn("\x00", 2)
    if with_evidence:
        found = pl.col("evi_key").is_not_null()
        types = pl.concat_list(
            pl.when(pl.col(_type_flag(t))).then(lit_str(t)) for t in _TYPES
        ).list.drop_nulls()
        evidence = {
            "evidence_types": pl.when(found).then(types),
            "evidence_text": _payload(pl.col("evi_key")),
        }
    else:
        evidence = {
            "evidence_types": pl.lit(None, dtype=pl.List(pl.String)),
            "evidence_text": lit_str(None),
        }
    return folded.select(
        "wf_id",
        "ev_count",
        "ev_first",
        "ev_last",
        term_status=outcome.struct.field("field_0"),
        term_result=outcome.struct.field("field_1"),
        **evidence,
    )


def _copied(col: str) -> pl.Expr:
    """``col`` with its strings copied into buffers of their own.

    A filtered string column still points into the buffers of every row group
    it was read from, so the rows a pass keeps would hold all the id text of
    the file (measured: 750 MiB for 1/32 of the links at 400k workflows).
    """
    return pl.concat_str(pl.col(col), pl.lit("")).alias(col)


#: Event rows per pass of ``event_facts``: memory follows this, not the export.
PASS_ROWS = 500_000
#: Event ids sampled per pass to cut the id ranges of the passes.
_SAMPLES_PER_PASS = 64


def _id_ranges(events: pl.LazyFrame, passes: int) -> list[pl.Expr]:
    """Filters on ``ev_id`` that split the event ids into ``passes`` ranges of
    about equal size (null ids, which join nothing, fall in none).

    Ranges, not hashes: an export's events are sorted by id, so a range is read
    from its own row groups and the others are skipped by their statistics.
    """
    if passes == 1:
        return [pl.col("ev_id").is_not_null()]
    rows = int(events.select(pl.len()).collect().item())
    step = max(1, rows // (passes * _SAMPLES_PER_PASS))
    sample = (
        events.select("id")
        .with_row_index("__row")
        .filter((pl.col("__row") % step == 0) & pl.col("id").is_not_null())
        .select(_copied("id"))
        .collect(engine="streaming")["id"]
        .sort()
    )
    cuts = sorted(
        {sample[len(sample) * i // passes] for i in range(1, passes)} if len(sample) else set()
    )
    ranges, ev_id, low = [], pl.col("ev_id"), None
    for cut in [*cuts, None]:
        mine = ev_id.is_not_null()
        if low is not None:
            mine &= ev_id >= low
        if cut is not None:
            mine &= ev_id < cut
        ranges.append(mine)
        low = cut
    return ranges


def event_facts(
    belongs: pl.LazyFrame,
    events: pl.LazyFrame,
    workflow_ids: pl.LazyFrame,
    *,
    timestamp_dtype: pl.DataType,
    with_evidence: bool,
    pass_rows: int | None = None,
) -> pl.DataFrame:
    """One row per Workflow id (in ``workflow_ids``' column ``id``) that has events.

    Columns: ``wf_id``, ``ev_count``, ``ev_first``/``ev_last`` (UTC, nulls
    ignored), ``term_status`` and ``term_result`` (null when no terminal
    event), and when ``with_evidence``: ``evidence_types`` (sorted distinct
    types pointed to) and ``evidence_text`` (the first status text that did).

    The links and events are read in passes on Polars' streaming engine, each
    pass taking one range of event ids (``_id_ranges``), and each pass's
    per-Workflow facts are folded into the running ones (``_fold``). So only
    one range of (Workflow, event) pairs is ever held, plus one row per
    Workflow, keyed by its number in ``workflow_ids`` rather than its id.
    """
    ids = (
        workflow_ids.select(wf_id=_copied("id").drop_nulls().unique())
        .collect(engine="streaming")
        .with_row_index("wf")
    )
    links = belongs.filter(
        (pl.col("_start_label") == "Workflow") & (pl.col("_end_label") == "Event")
    ).select(wf_id=pl.col("_start.id"), ev_id=pl.col("_end.id"))
    per_event = _per_event(events, timestamp_dtype)
    rows = max(int(f.select(pl.len()).collect().item()) for f in (belongs, events))
    folded: pl.DataFrame | None = None
    for mine in _id_ranges(events, max(1, -(-rows // (pass_rows or PASS_ROWS)))):
        # Joined on ids copied out of the file's buffers (``_copied``); the
        # Workflow ids only meet the small table of numbers and need no copy.
        pairs = (
            links.filter(mine)
            .with_columns(_copied("ev_id"))
            .join(ids.lazy(), on="wf_id", how="inner")
            .join(per_event.filter(mine).with_columns(_copied("ev_id")), on="ev_id", how="inner")
        )
        part = _pass_facts(pairs, with_evidence).collect(engine="streaming")
        folded = part if folded is None else _fold(pl.concat([folded, part]), with_evidence)
    assert folded is not None
    folded = folded.with_columns(wf_id=ids["wf_id"].gather(folded["wf"]))
    return _decoded(folded, with_evidence)

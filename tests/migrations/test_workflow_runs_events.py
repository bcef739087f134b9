"""``event_facts`` in passes: the order keys it folds and the passes themselves.

The facts of a run are computed a range of event ids at a time and folded
with min/max over order keys (``workflow_runs_events._order_key``). These
tests hold that machinery to the plain definition: join every link to its
event, order by (timestamp nulls first, id), take the last terminal event and
the first evidence event.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from etl.migrations import workflow_runs, workflow_runs_events
from etl.migrations.workflow_runs_events import INFERENCE_RULES, event_facts
from tests.migrations.frames import case_paths, load_case, run

pytestmark = pytest.mark.unit

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_T0 = datetime(2025, 3, 1, tzinfo=UTC)
# Ids that share prefixes, hold NULs and sort differently as bytes and as text.
_ids = st.text(alphabet=st.sampled_from(["a", "b", "\x00", "\x01", "é", "z"]), max_size=4)
_stamps = st.none() | st.integers(min_value=-(2**62), max_value=2**62)


def _key_frame(rows: list[tuple[int | None, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {"ts": [r[0] for r in rows], "id": [r[1] for r in rows]},
        schema={"ts": pl.Int64, "id": pl.String},
    ).with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))


@SETTINGS
@given(st.lists(st.tuples(_stamps, _ids), min_size=1, max_size=30, unique=True), _ids)
def test_order_keys_sort_like_timestamp_then_id(rows: list[tuple[Any, str]], payload: str) -> None:
    df = _key_frame(rows).with_columns(
        key=pl.concat_str(
            workflow_runs_events._order_key(pl.col("ts"), pl.col("id")), pl.lit(payload)
        )
    )
    by_key = df.sort("key").select("ts", "id")
    assert_frame_equal(by_key, df.sort("ts", "id", nulls_last=False).select("ts", "id"))
    payloads = df.select(workflow_runs_events._payload(pl.col("key")).alias("p"))["p"]
    assert payloads.to_list() == [payload] * len(rows)


@st.composite
def _graph(draw: st.DrawFn) -> tuple[pl.LazyFrame, pl.LazyFrame, pl.LazyFrame]:
    event_ids = draw(st.lists(_ids, min_size=0, max_size=25, unique=True))
    texts = ["completed", "reviewing the PR", "resolving the issue", "PR goal", "x", None]
    events = []
    for eid in event_ids:
        kind = draw(st.sampled_from(["complete", "status", "error", "tool_call"]))
        data: Any = None
        if kind == "status":
            data = json.dumps({"status": draw(st.sampled_from(texts))})
        elif kind == "error":
            data = draw(
                st.sampled_from(
                    ['{"error":"boom","recoverable":true}', '{"error":{}}', "nope", None]
                )
            )
        stamp = draw(st.none() | st.integers(min_value=0, max_value=40))
        events.append(
            {
                "id": eid,
                "type": kind,
                "data": data,
                "timestamp": None if stamp is None else _T0 + timedelta(minutes=stamp),
            }
        )
    workflows = ["w0", "w1", "w2", "w\x00"]
    links = [
        {"_start_label": "Workflow", "_start.id": wf, "_end_label": "Event", "_end.id": eid}
        for eid in event_ids
        for wf in draw(st.lists(st.sampled_from([*workflows, "gone"]), max_size=2, unique=True))
    ]
    ev = pl.DataFrame(
        events,
        schema={
            "id": pl.String,
            "type": pl.String,
            "data": pl.String,
            "timestamp": pl.Datetime("ns", "UTC"),
        },
    )
    belongs = pl.DataFrame(
        links,
        schema={c: pl.String for c in ("_start_label", "_start.id", "_end_label", "_end.id")},
    )
    wfs = pl.DataFrame({"id": [*workflows, None]}, schema={"id": pl.String})
    return belongs.lazy(), ev.lazy(), wfs.lazy()


def _reference(belongs: pl.LazyFrame, events: pl.LazyFrame, with_evidence: bool) -> pl.DataFrame:
    """The definition, on the whole join at once (sorts, as the code did before passes)."""
    per_event = workflow_runs_events._per_event(events, pl.Datetime("ns", "UTC"))
    joined = (
        belongs.filter(pl.col("_start.id") != "gone")
        .select(wf_id="_start.id", ev_id="_end.id")
        .join(per_event, on="ev_id")
        .collect()
    )
    order = ["ev_ts", "ev_id"]
    facts = joined.group_by("wf_id").agg(
        ev_count=pl.len(), ev_first=pl.col("ev_ts").min(), ev_last=pl.col("ev_ts").max()
    )
    decisions = (
        joined.filter(pl.col("term_status").is_not_null())
        .group_by("wf_id")
        .agg(pl.col("term_status", "term_result").sort_by(order).last())
    )
    facts = facts.join(decisions, on="wf_id", how="left")
    if not with_evidence:
        return facts.with_columns(
            evidence_types=pl.lit(None, dtype=pl.List(pl.String)),
            evidence_text=pl.lit(None, dtype=pl.String),
        )
    hits = [
        pl.when(pl.col("status_text").str.contains(rx)).then(pl.lit(t)) for t, rx in INFERENCE_RULES
    ]
    evidence = (
        joined.with_columns(evidence=pl.concat_list(hits).list.drop_nulls())
        .filter(pl.col("evidence").list.len() > 0)
        .group_by("wf_id")
        .agg(
            evidence_types=pl.col("evidence").explode(empty_as_null=False).unique().sort(),
            evidence_text=pl.col("status_text").sort_by(order).first(),
        )
    )
    return facts.join(evidence, on="wf_id", how="left")


@SETTINGS
@given(_graph(), st.booleans(), st.sampled_from([1, 2, 3, 1_000]))
def test_facts_in_passes_are_the_facts_of_the_whole_join(
    graph: tuple[pl.LazyFrame, pl.LazyFrame, pl.LazyFrame], with_evidence: bool, pass_rows: int
) -> None:
    belongs, events, workflows = graph
    facts = event_facts(
        belongs,
        events,
        workflows,
        timestamp_dtype=pl.Datetime("ns", "UTC"),
        with_evidence=with_evidence,
        pass_rows=pass_rows,
    )
    expected = _reference(belongs, events, with_evidence)
    assert facts.columns == expected.columns
    assert_frame_equal(facts.sort("wf_id"), expected.sort("wf_id"))


@pytest.mark.parametrize("path", case_paths(), ids=lambda p: p.stem)
def test_small_passes_and_slices_change_nothing(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One event per pass and one Workflow per classified slice: the same result."""
    case = load_case(path)
    infer = case.get("options", {}).get("infer_type", False)
    whole = run(case["inputs"], infer_type=infer)
    monkeypatch.setattr(workflow_runs_events, "PASS_ROWS", 1)
    monkeypatch.setattr(workflow_runs, "CLASSIFY_ROWS", 1)
    sliced = run(case["inputs"], infer_type=infer)
    assert sliced.tables.keys() == whole.tables.keys()
    for name, df in whole.tables.items():
        assert_frame_equal(sliced.tables[name], df)
    assert sliced.rejected.keys() == whole.rejected.keys()
    for name, df in whole.rejected.items():
        assert_frame_equal(sliced.rejected[name], df)
    assert sliced.report == whole.report

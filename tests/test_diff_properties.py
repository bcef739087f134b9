"""Properties of `etl diff` on random small tables, checked against a brute-force comparison.

The brute force treats each key's rows as a multiset: copies equal in every
compared value pair up as unchanged, the rest pair up as changed, and the
surplus on one side is added or removed. That definition does not depend on
row order, so it is a fair oracle for the Polars join (which numbers copies).
"""

from __future__ import annotations

import math
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl.diff import run_diff
from tests.test_diff import node_schema, write_stage

pytestmark = pytest.mark.unit

SCHEMA = node_schema(
    ("id", pa.string()),
    ("x", pa.int64()),
    ("f", pa.float64()),
    ("tags", pa.list_(pa.string())),
)
COLUMNS = ("_labels", "x", "f", "tags")

row = st.fixed_dictionaries(
    {
        "_element_id": st.sampled_from(["4:1", "4:2"]),
        "_labels": st.sampled_from([["T"], ["A", "T"]]),
        "id": st.sampled_from(["a", "b", "c", "d", None]),
        "x": st.one_of(st.none(), st.integers(-2, 2)),
        "f": st.one_of(st.none(), st.sampled_from([0.0, 1.5, math.nan, math.inf])),
        "tags": st.one_of(st.none(), st.lists(st.sampled_from(["x", "y"]), max_size=2)),
    }
)
tables = st.lists(row, max_size=8)


def _norm(value: Any) -> Any:
    """A hashable stand-in with NaN equal to NaN (as the diff defines it)."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, list):
        return tuple(_norm(v) for v in value)
    return value


def brute_force(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any]:
    def by_key(rows: list[dict[str, Any]]) -> dict[Any, Counter[tuple[Any, ...]]]:
        out: dict[Any, Counter[tuple[Any, ...]]] = {}
        for r in rows:
            out.setdefault(r["id"], Counter())[tuple(_norm(r[c]) for c in COLUMNS)] += 1
        return out

    ka, kb = by_key(a), by_key(b)
    added = removed = changed = 0
    per_column: Counter[str] = Counter()
    for key in set(ka) | set(kb):
        ca, cb = ka.get(key, Counter()), kb.get(key, Counter())
        left_a, left_b = ca - cb, cb - ca
        na, nb = sum(left_a.values()), sum(left_b.values())
        changed += min(na, nb)
        added += max(0, nb - na)
        removed += max(0, na - nb)
        if na == nb == 1:  # unique keys: which columns changed is well defined
            va, vb = next(iter(left_a)), next(iter(left_b))
            per_column.update(c for c, x, y in zip(COLUMNS, va, vb, strict=True) if x != y)
    unique = all(n == 1 for c in (*ka.values(), *kb.values()) for n in [sum(c.values())])
    return {
        "added": added,
        "removed": removed,
        "changed": changed,
        "per_column": dict(per_column) if unique else None,
    }


def _diff(
    a_rows: list[dict[str, Any]], b_rows: list[dict[str, Any]], *, bucket_rows: int = 250_000
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        a = write_stage(Path(tmp) / "a", {"nodes/T": (SCHEMA, a_rows)})
        b = write_stage(Path(tmp) / "b", {"nodes/T": (SCHEMA, b_rows)})
        result = run_diff(a, b, samples=1, bucket_rows=bucket_rows)
        data = result.to_json()
        data["identical"] = result.identical
        return data


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables)
def test_diff_of_a_stage_with_itself_is_empty(rows: list[dict[str, Any]]) -> None:
    data = _diff(rows, rows)
    assert data["identical"]
    (t,) = data["tables"]
    assert (t["added"], t["removed"], t["changed"], t["unchanged"]) == (0, 0, 0, len(rows))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables, tables, st.sampled_from([250_000, 2, 1]))
def test_counts_match_a_brute_force_comparison(
    a_rows: list[dict[str, Any]], b_rows: list[dict[str, Any]], bucket_rows: int
) -> None:
    """Also with tiny buckets, so candidate keys are split over several joins."""
    expected = brute_force(a_rows, b_rows)
    (t,) = _diff(a_rows, b_rows, bucket_rows=bucket_rows)["tables"]
    assert (t["added"], t["removed"], t["changed"]) == (
        expected["added"],
        expected["removed"],
        expected["changed"],
    )
    assert t["unchanged"] == len(a_rows) - expected["removed"] - expected["changed"]
    if expected["per_column"] is not None:
        assert t["changed_columns"] == expected["per_column"]

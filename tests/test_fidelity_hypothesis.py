"""Hypothesis: a mixed-type property of random Neo4j values survives export → online replay.

``neo4j_values`` draws any property value Neo4j stores: integers over the whole
int64 range, floats with NaN, ±inf and -0.0, strings, byte arrays, booleans,
homogeneous lists, every temporal type (years far outside Python's, named
zones, fixed offsets with seconds, nanoseconds), durations with mixed-sign
components and points of every SRID. One example puts several of them in one
property (``mixed``, hence a tagged-JSON column) on nodes and relationships,
exports, replays into the emptied database and reads every value back exactly
(``tests.fidelity_corpus.canonical``). Examples cost seconds of database work:
``ETL_FIDELITY_EXAMPLES`` sets how many (default 4).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl.export import run_export
from etl.graph import admin
from etl.load import run_load
from etl.settings import Settings
from tests.fidelity_corpus import canonical, compare, exact
from tests.test_load_support import cypher

pytestmark = pytest.mark.db

#: (Cypher expression over ``$p``, the parameter or None)
Drawn = tuple[str, Any]

ZONES = [
    "Z", "+05:45", "-12:34", "+00:17:30", "-00:44:30", "UTC", "Europe/Stockholm",
    "Africa/Monrovia", "Europe/Amsterdam", "America/Los_Angeles", "Asia/Kolkata",
]  # fmt: skip
YEARS = st.one_of(
    st.integers(1, 9999),
    st.integers(-999_999_999, 999_999_999),
    st.sampled_from([-999_999_999, 999_999_999, 1, 1678, 1969, 1970, 2262]),
)


def _map(**parts: Any) -> str:
    return "{" + ", ".join(f"{k}: {v!r}" for k, v in parts.items()) + "}"


@st.composite
def _clock(draw: Any) -> dict[str, int]:
    return {
        "hour": draw(st.integers(0, 23)),
        "minute": draw(st.integers(0, 59)),
        "second": draw(st.integers(0, 59)),
        "nanosecond": draw(st.integers(0, 999_999_999)),
    }


@st.composite
def _temporal(draw: Any) -> Drawn:
    kind = draw(st.sampled_from(["date", "localdatetime", "datetime", "localtime", "time"]))
    day = {"year": draw(YEARS), "month": draw(st.integers(1, 12)), "day": draw(st.integers(1, 28))}
    clock = draw(_clock())
    zone = draw(st.sampled_from(ZONES))
    if kind == "date":
        return f"date({_map(**day)})", None
    if kind == "localdatetime":
        return f"localdatetime({_map(**day, **clock)})", None
    if kind == "localtime":
        return f"localtime({_map(**clock)})", None
    if kind == "time":
        return f"time({_map(**clock, timezone=zone)})", None
    # Named zones before 1 or after 9999 are fine for Neo4j: its zone rules extend.
    return f"datetime({_map(**day, **clock, timezone=zone)})", None


@st.composite
def _duration(draw: Any) -> Drawn:
    parts = {
        "months": draw(st.integers(-(10**6), 10**6)),
        "days": draw(st.integers(-(10**7), 10**7)),
        "seconds": draw(st.integers(-(10**12), 10**12)),
        "nanoseconds": draw(st.integers(-999_999_999, 999_999_999)),
    }
    return f"duration({_map(**parts)})", None


@st.composite
def _point(draw: Any) -> Drawn:
    srid = draw(st.sampled_from([7203, 9157, 4326, 4979]))
    finite = st.floats(allow_nan=False, allow_infinity=False)
    if srid in (4326, 4979):
        xy = [draw(st.floats(-180, 180)), draw(st.floats(-90, 90))]
    else:
        xy = [draw(finite), draw(finite)]
    coords = xy + ([draw(finite)] if srid in (9157, 4979) else [])
    names = "xyz"[: len(coords)]
    body = ", ".join(f"{n}: $p[{i}]" for i, n in enumerate(names))
    return f"point({{srid: {srid}, {body}}})", coords


_INT = st.integers(-(2**63), 2**63 - 1)
_FLOAT = st.floats()  # NaN, ±inf, -0.0 and subnormals included
_TEXT = st.text(max_size=12)
_PLAIN = st.one_of(
    _INT, _FLOAT, _TEXT, st.booleans(), st.binary(max_size=6),
    st.lists(_INT, max_size=3), st.lists(_FLOAT, max_size=3),
    st.lists(_TEXT, max_size=3), st.lists(st.booleans(), max_size=3),
).map(lambda v: ("$p", v))  # fmt: skip
neo4j_values: st.SearchStrategy[Drawn] = st.one_of(
    _PLAIN,
    _temporal(),
    _duration(),
    _point(),
    st.lists(_temporal(), min_size=1, max_size=2).map(
        # A list of one temporal type: repeat the first value's kind.
        lambda vs: ("[" + ", ".join([vs[0][0]] * len(vs)) + "]", None)
    ),
)


def _write(driver: Any, settings: Settings, values: list[Drawn]) -> None:
    creates, params = [], {}
    for i, (expr, param) in enumerate(values):
        e = expr.replace("$p", f"$p{i}")
        params[f"p{i}"] = param
        creates.append(f"CREATE (n{i}:H {{id: {i}, mixed: {e}}})-[:HR {{mixed: {e}}}]->(root)")
    cypher(driver, settings, "CREATE (root:HRoot {id: 0}) " + " ".join(creates), **params)


def _read(driver: Any, settings: Settings) -> dict[str, Any]:
    rows = cypher(
        driver,
        settings,
        f"MATCH (n:H)-[r:HR]->() RETURN n.id AS id, {canonical('n.mixed')} AS node, "
        f"{canonical('r.mixed')} AS rel",
    )
    out = {}
    for row in rows:
        out[f"node {row['id']}"] = exact(row["node"])
        out[f"rel {row['id']}"] = exact(row["rel"])
    return out


@settings(
    max_examples=int(os.environ.get("ETL_FIDELITY_EXAMPLES") or 4),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(values=st.lists(neo4j_values, min_size=2, max_size=8))
def test_mixed_property_of_random_values_replays_exactly(
    values: list[Drawn],
    driver: Any,
    neo4j_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    db = neo4j_settings.database
    admin.wipe_database(driver, db)
    _write(driver, neo4j_settings, values)
    want = _read(driver, neo4j_settings)
    root = Path(tmp_path_factory.mktemp("fidelity-h"))
    stage = run_export(neo4j_settings, out_dir=root / "e", labels=["H", "HRoot"]).out_dir
    admin.wipe_database(driver, db)
    loaded = run_load(neo4j_settings, in_dir=stage, ledger_dir=root / "l")
    assert loaded.validation is not None and loaded.validation.ok, loaded.validation
    _, total, wrong = compare(want, _read(driver, neo4j_settings))
    assert total == 2 * len(values) and not wrong, "\n".join(wrong)


def test_the_strategy_draws_nan_and_negative_zero_exactly() -> None:
    """``exact`` tells -0.0 from 0.0 and b"" from [], and takes every NaN as one value."""
    assert exact(-0.0) != exact(0.0)
    assert exact(b"") != exact([])
    assert exact(math.nan) == exact(float("nan"))

"""A corpus of edge-case property values, and exact readers for them (no tests here).

The values come from the public test suites of the Neo4j drivers and the
Cypher manual; each entry's comment names its source:

* [py-temporal]  neo4j-python-driver ``tests/unit/common/time/`` and
  ``tests/integration/.../test_temporal_types.py`` (dates in years 1 and 9999,
  nanosecond DateTimes, zone ids, ``Duration.min``/``Duration.max``)
* [py-spatial]   neo4j-python-driver ``tests/unit/common/spatial/`` and the
  spatial integration tests (CartesianPoint, WGS84Point, 2D and 3D)
* [py-packstream] neo4j-python-driver ``tests/unit/common/codec/packstream/v1/
  test_packstream.py`` (integer size boundaries, float specials, strings,
  byte arrays, empty and homogeneous lists)
* [testkit]      neo4j-drivers/testkit ``tests/neo4j/datatypes/`` (extreme
  temporals, DST gap and overlap in ``Europe/Stockholm``, zones with historic
  offsets in seconds, unicode and NUL strings, bytes of every value)
* [cypher-temporal] / [cypher-spatial] the Cypher manual's "Temporal values"
  and "Spatial values" pages (examples and the documented ranges)
* [issue-19]     the values of the fidelity issue (LMT offsets with seconds)

``write_corpus`` writes every value twice, on nodes and on relationships:
*typed* (one property per value, on one ``FTyped`` node and one ``F_TYPED``
relationship) and *mixed* (all values in the one property ``mixed``, one
``FMixed`` node and one ``F_MIXED`` relationship per value). ``read_corpus``
reads them back exactly: a value is its ``valueType`` plus a canonical form
computed in Cypher (``toString`` of temporals, which keeps nanoseconds, offsets
to the second and zone names; duration components; point srid and
coordinates) with floats compared by their bits, so NaN, ``-0.0`` and
subnormals count, and ``b""`` differs from ``[]``.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

from etl.settings import Settings
from tests.test_load_support import cypher

MAX, MIN = 2**63 - 1, -(2**63)
_NO_PARAM = object()


@dataclass(frozen=True)
class Value:
    name: str
    cypher: str  # an expression; ``$v`` is ``param``
    param: Any = _NO_PARAM


def _v(name: str, expression: str) -> Value:
    return Value(name, expression)


def _p(name: str, param: Any) -> Value:
    return Value(name, "$v", param)


CORPUS: list[Value] = [
    # --- temporal: Date
    _v("date_epoch", "date('1970-01-01')"),  # [py-temporal] Date(1970, 1, 1)
    _v("date_year1", "date('0001-01-01')"),  # [py-temporal] Date.min
    _v("date_year9999", "date('9999-12-31')"),  # [py-temporal] Date.max
    _v("date_min", "date('-999999999-01-01')"),  # [cypher-temporal] documented range
    _v("date_max", "date('+999999999-12-31')"),  # [cypher-temporal] documented range
    _v("date_bc", "date('-0044-03-15')"),  # [testkit] negative years
    _v("date_leap", "date('2000-02-29')"),  # [cypher-temporal] calendar dates
    # --- temporal: LocalDateTime
    _v("ldt_ns", "localdatetime('2015-07-21T21:40:32.142000001')"),  # [cypher-temporal]
    _v("ldt_pre_epoch", "localdatetime('1969-12-31T23:59:59.999999999')"),  # [testkit]
    _v("ldt_min", "localdatetime('-999999999-01-01T00:00:00')"),  # [cypher-temporal] range
    _v("ldt_max", "localdatetime('+999999999-12-31T23:59:59.999999999')"),  # [cypher-temporal]
    _v("ldt_year1", "localdatetime('0001-01-01T00:00:00.000000001')"),  # [py-temporal]
    # --- temporal: DateTime, fixed offsets
    _v("dt_utc_ns", "datetime('2025-05-01T10:00:00.123456789Z')"),  # [py-temporal]
    _v("dt_pre_epoch", "datetime('1969-12-31T23:59:59.999999999Z')"),  # [testkit]
    _v("dt_ms_pre_epoch", "datetime('1960-01-01T00:00:00.5Z')"),  # [testkit] floor of millis
    _v("dt_plus18", "datetime('2022-06-14T10:02:30.000000001+18:00')"),  # [testkit] max offset
    _v("dt_minus18", "datetime('2022-06-14T10:02:30-18:00')"),  # [testkit] min offset
    _v("dt_nepal", "datetime('2015-06-24T12:50:35.556+05:45')"),  # [cypher-temporal] +05:45
    _v("dt_odd_offset", "datetime('2020-01-01T00:00:00-12:34')"),  # [issue-19] -12:34
    # An offset with seconds: only built from components (Neo4j does not parse it).
    _v("dt_offset_secs", "datetime({epochSeconds: 0, nanosecond: 7, timezone: '+00:17:30'})"),
    _v("dt_max", "datetime('+999999999-12-31T23:59:59.999999999+18:00')"),  # [cypher-temporal]
    _v("dt_min", "datetime('-999999999-01-01T00:00:00-18:00')"),  # [cypher-temporal]
    # --- temporal: DateTime, named zones
    _v("dt_berlin", "datetime('2025-05-01T10:00:00.5+02:00[Europe/Berlin]')"),  # [py-temporal]
    _v("dt_utc_named", "datetime('2020-01-01T00:00:00Z[UTC]')"),  # [testkit] zone id UTC
    # DST gap (02:30 does not exist: Neo4j moves it to 03:30+02:00) and both sides of the
    # overlap (02:30 happens twice), [testkit] test_temporal_types, Europe/Stockholm 2022.
    _v(
        "dt_dst_gap",
        "datetime({year: 2022, month: 3, day: 27, hour: 2, minute: 30, "
        "timezone: 'Europe/Stockholm'})",
    ),
    _v("dt_dst_overlap_1", "datetime('2022-10-30T02:30:00.000000001+02:00[Europe/Stockholm]')"),
    _v("dt_dst_overlap_2", "datetime('2022-10-30T02:30:00.000000001+01:00[Europe/Stockholm]')"),
    _v("dt_la", "datetime('1984-10-11T12:31:14.123456789-07:00[America/Los_Angeles]')"),
    # Historic local mean time, offsets with seconds [issue-19], [testkit]
    _v("dt_monrovia_1970", "datetime({year: 1970, month: 1, day: 1, timezone: 'Africa/Monrovia'})"),
    _v(
        "dt_amsterdam_year1",
        "datetime({year: 1, month: 1, day: 1, hour: 0, minute: 0, second: 0, nanosecond: 5, "
        "timezone: 'Europe/Amsterdam'})",
    ),
    # ... and at the far end of the range, where Neo4j's epochSeconds would wrap around
    _v(
        "dt_amsterdam_min",
        "datetime({year: -999999999, month: 1, day: 1, timezone: 'Europe/Amsterdam'})",
    ),
    _v("dt_berlin_1900", "datetime('1900-06-01T12:00:00.123456789+01:00[Europe/Berlin]')"),
    _v("dt_kolkata_far", "datetime('+12345-01-01T00:00:00+05:30[Asia/Kolkata]')"),  # [testkit]
    # --- temporal: LocalTime and Time
    _v("lt_midnight", "localtime('00:00:00')"),  # [py-temporal] Time.min
    _v("lt_max", "localtime('23:59:59.999999999')"),  # [py-temporal] Time.max
    _v("lt_ns", "localtime('12:50:35.000000556')"),  # [cypher-temporal]
    _v("t_plus18", "time('23:59:59.999999999+18:00')"),  # [testkit]
    _v("t_minus18", "time('00:00:00-18:00')"),  # [testkit]
    _v("t_utc", "time('12:00:00Z')"),  # [cypher-temporal]
    _v(
        "t_offset_secs",
        "time({hour: 12, minute: 0, second: 0, nanosecond: 1, timezone: '-00:44:30'})",
    ),  # [issue-19]
    # --- durations
    # [py-temporal] Duration.max and Duration.min: seconds at the int64 extremes
    _v("dur_max", "duration({seconds: 9223372036854775807, nanoseconds: 999999999})"),
    _v("dur_min", "duration({seconds: -9223372036854775808})"),
    _v("dur_months_max", "duration({months: 3507324295})"),  # [testkit] months near the limit
    _v("dur_days_min", "duration({days: -106751991167})"),  # [testkit] days near the limit
    _v("dur_mixed", "duration({months: 14, days: 16, seconds: 12, nanoseconds: 999999999})"),
    _v("dur_mixed_signs", "duration({months: 1, days: -2, seconds: 3, nanoseconds: -4})"),
    _v("dur_zero", "duration('PT0S')"),  # [cypher-temporal]
    _v("dur_iso", "duration('P14DT16H12M')"),  # [cypher-temporal]
    # --- points of every SRID [py-spatial], [cypher-spatial]
    _v("pt_cartesian", "point({x: 2.3, y: 4.5})"),  # srid 7203
    _v("pt_cartesian_3d", "point({x: 2.3, y: 4.5, z: 2.0})"),  # srid 9157
    _v("pt_wgs84", "point({longitude: 56.7, latitude: 12.78})"),  # srid 4326
    _v("pt_wgs84_3d", "point({longitude: 12.78, latitude: 56.7, height: 100.0})"),  # srid 4979
    _v("pt_wgs84_edges", "point({srid: 4326, x: -180.0, y: 90.0})"),  # [cypher-spatial] ranges
    _v("pt_negzero_subnormal", "point({x: -0.0, y: 5e-324, z: 1.7976931348623157e308})"),
    # --- floats [py-packstream]
    _p("f_nan", math.nan),
    _p("f_inf", math.inf),
    _p("f_neg_inf", -math.inf),
    _p("f_neg_zero", -0.0),
    _p("f_zero", 0.0),
    _p("f_subnormal_min", 5e-324),
    _p("f_normal_min", 2.2250738585072014e-308),
    _p("f_max", 1.7976931348623157e308),
    _p("f_third", 1 / 3),
    _p("f_pi", math.pi),
    # --- integers: packstream size boundaries and the int64 extremes [py-packstream]
    _p("i_max", MAX),
    _p("i_min", MIN),
    _p("i_zero", 0),
    _p("i_tiny_min", -16),
    _p("i_int8_min", -17),
    _p("i_int8_max", 127),
    _p("i_int16", 128),
    _p("i_int32", 2**31),
    _p("i_int32_neg", -(2**31) - 1),
    # --- booleans
    _p("b_true", True),
    _p("b_false", False),
    # --- strings [py-packstream], [testkit]
    _p("s_empty", ""),
    _p("s_ascii", "hello, world"),
    _p("s_unicode", "Größenmaßstäbe Ελληνικά 日本語 עברית"),
    _p("s_emoji", "😀🇸🇪👩‍👩‍👧"),
    _p("s_nul", "a\x00b"),
    _p("s_control", "\t\n\r\x1f\x7f"),
    _p("s_combining", "e\u0301"),
    _p("s_json_like", '{"t": "DateTime", "v": "x"}'),  # a string that looks like a tag
    _p("s_long", "x" * 70_000),  # [py-packstream] STRING_32
    # --- byte arrays [py-packstream], [testkit]
    _p("bytes_empty", b""),
    _p("bytes_nul", b"\x00"),
    _p("bytes_all", bytes(range(256))),
    # --- lists of each homogeneous type, and empty lists
    _p("l_empty", []),
    _p("l_int", [1, MIN, MAX]),
    _p("l_float", [math.nan, -0.0, math.inf, 5e-324]),
    _p("l_string", ["", "a", "日本"]),
    _p("l_bool", [True, False]),
    _v("l_date", "[date('0001-01-01'), date('+999999999-12-31')]"),
    _v("l_ldt", "[localdatetime('2015-07-21T21:40:32.142000001')]"),
    _v(
        "l_datetime",
        "[datetime('2022-10-30T02:30:00+01:00[Europe/Stockholm]'), "
        "datetime({year: 1970, month: 1, day: 1, timezone: 'Africa/Monrovia'})]",
    ),
    _v("l_lt", "[localtime('23:59:59.999999999')]"),
    _v("l_time", "[time('12:00:00+05:30'), time({hour: 1, timezone: '+00:17:30'})]"),
    _v("l_duration", "[duration({seconds: 9223372036854775807}), duration('P1M')]"),
    _v("l_point", "[point({x: 1.0, y: 2.0}), point({x: 1.0, y: 2.0})]"),
    _v("l_point_3d", "[point({longitude: 1.0, latitude: 2.0, height: 3.0})]"),
]

#: Canonical form, computed by the server (so no driver-side temporal range applies).
_TEMPORAL = "DATE | LOCAL DATETIME | ZONED DATETIME | LOCAL TIME | ZONED TIME"
_DUR = "[@.months, @.days, @.seconds, @.nanosecondsOfSecond]"
_PT = "[@.srid, @.x, @.y, CASE WHEN @.srid IN [4979, 9157] THEN @.z END]"


def canonical(x: str) -> str:
    """A Cypher expression giving ``[valueType(x), form]`` (see the module docstring)."""
    form = (
        f"CASE WHEN @ IS :: {_TEMPORAL} THEN toString(@) "
        f"WHEN @ IS :: DURATION THEN {_DUR} WHEN @ IS :: POINT THEN {_PT} "
        # (one LIST<T> each: 5.26 answers false for a stored list and LIST<A | B>)
        f"WHEN {' OR '.join(f'@ IS :: LIST<{t}>' for t in _TEMPORAL.split(' | '))} "
        "THEN [e IN @ | toString(e)] "
        f"WHEN @ IS :: LIST<DURATION> THEN [e IN @ | {_DUR.replace('@', 'e')}] "
        f"WHEN @ IS :: LIST<POINT> THEN [e IN @ | {_PT.replace('@', 'e')}] ELSE @ END"
    )
    return f"[valueType(@), {form}]".replace("@", x)


def exact(v: Any) -> Any:
    """A hashable, exact form of a driver value: floats by their bits, bytes apart from lists."""
    if isinstance(v, float):  # (Cypher cannot tell NaN payloads apart: one NaN)
        return ("float", "nan" if math.isnan(v) else struct.pack(">d", v).hex())
    if isinstance(v, bytes | bytearray):
        return ("bytes", bytes(v).hex())
    if isinstance(v, list):
        return ("list", tuple(exact(x) for x in v))
    return (type(v).__name__, v)


def write_corpus(driver: Any, settings: Settings, values: list[Value] = CORPUS) -> None:
    """The corpus, typed and mixed, on nodes and relationships (see the module docstring)."""
    params = {f"v{i}": v.param for i, v in enumerate(values) if v.param is not _NO_PARAM}

    def expr(i: int, v: Value) -> str:
        return v.cypher.replace("$v", f"$v{i}")

    typed = ", ".join(f"`{v.name}`: {expr(i, v)}" for i, v in enumerate(values))
    cypher(
        driver,
        settings,
        f"CREATE (t:FTyped {{id: 0, {typed}}})-[:F_TYPED {{{typed}}}]->(:FAnchor {{id: 0}})",
        **params,
    )
    for i, v in enumerate(values):
        cypher(
            driver,
            settings,
            "MATCH (t:FTyped {id: 0}) "
            f"CREATE (m:FMixed {{id: $i, name: $name, mixed: {expr(i, v)}}})"
            f"-[:F_MIXED {{name: $name, mixed: {expr(i, v)}}}]->(t)",
            i=i,
            name=v.name,
            **{k: p for k, p in params.items() if k == f"v{i}"},
        )


def read_corpus(driver: Any, settings: Settings, values: list[Value] = CORPUS) -> dict[str, Any]:
    """``{"<where> <name>": exact value}`` for the four places each value was written."""
    out: dict[str, Any] = {}
    names = [v.name for v in values]
    typed = cypher(
        driver,
        settings,
        "MATCH (t:FTyped {id: 0})-[r:F_TYPED]->() "
        "RETURN [k IN $names | [" + canonical("t[k]") + ", " + canonical("r[k]") + "]] AS v",
        names=names,
    )
    if typed:
        for name, (node, rel) in zip(names, typed[0]["v"], strict=True):
            out[f"node typed {name}"] = exact(node)
            out[f"rel typed {name}"] = exact(rel)
    mixed = cypher(
        driver,
        settings,
        "MATCH (m:FMixed)-[r:F_MIXED]->() RETURN m.name AS name, "
        f"{canonical('m.mixed')} AS node, {canonical('r.mixed')} AS rel",
    )
    for row in mixed:
        out[f"node mixed {row['name']}"] = exact(row["node"])
        out[f"rel mixed {row['name']}"] = exact(row["rel"])
    return out


def compare(want: dict[str, Any], got: dict[str, Any]) -> tuple[int, int, list[str]]:
    """(exact, total, what differs) of ``got`` against ``want``."""
    wrong = [
        f"{k}: want {want[k]!r:.200}, got {got.get(k, '<missing>')!r:.200}"
        for k in want
        if got.get(k) != want[k]
    ]
    return len(want) - len(wrong), len(want), wrong

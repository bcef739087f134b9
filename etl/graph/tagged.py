"""Tagged JSON values (``{"t": "DateTime", "v": "…"}``) → what the replay's Cypher rebuilds.

The export writes a mixed-type property as tagged JSON (``etl.graph.arrow``,
docs/STAGE_FORMAT.md). Scalars become driver values here (floats keep
NaN/±Inf, byte arrays become ``bytes``); temporals stay in Neo4j's text form,
which Cypher's ``date()``/``datetime()``/… parse back with nanoseconds and
named zones that Python's ``datetime`` cannot hold, except where Neo4j prints
what it does not parse (offsets with seconds: ``datetime_arg``, ``time_arg``),
which goes as a map those functions take instead. Durations and points are
maps already.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Mapping
from typing import Any

#: Tags of values Cypher rebuilds, and the function that does (``etl.graph.params``).
TEMPORAL_TAGS = {
    "Date": "date",
    "LocalDateTime": "localdatetime",
    "DateTime": "datetime",
    "LocalTime": "localtime",
    "Time": "time",
    "Duration": "duration",
    "Point": "point",
}


def point_arg(v: Mapping[str, Any]) -> dict[str, Any]:
    # point() refuses z: null, so a 2D point simply has no z.
    return {k: v[k] for k in ("srid", "x", "y", "z") if v.get(k) is not None}


def _float(v: Any) -> Any:
    if isinstance(v, str):  # the export writes non-finite floats as strings
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[v]
    return float(v)


_DATETIME = re.compile(
    r"(?P<year>[+-]?\d{4,9})-(?P<month>\d\d)-(?P<day>\d\d)T"
    r"(?P<hour>\d\d):(?P<minute>\d\d)(?::(?P<second>\d\d)(?:\.(?P<frac>\d{1,9}))?)?"
    r"(?P<offset>Z|[+-]\d\d:\d\d(?::\d\d)?)(?:\[(?P<zone>[^\]]+)\])?"
)
_TIME = re.compile(
    r"(?P<hour>\d\d):(?P<minute>\d\d)(?::(?P<second>\d\d)(?:\.(?P<frac>\d{1,9}))?)?"
    r"(?P<offset>Z|[+-]\d\d:\d\d(?::\d\d)?)"
)


def _offset_seconds(text: str) -> int:
    if text == "Z":
        return 0
    parts = [int(x) for x in text[1:].split(":")] + [0]
    total = parts[0] * 3600 + parts[1] * 60 + parts[2]
    return -total if text[0] == "-" else total


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (any year; H. Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _clock(m: re.Match[str]) -> dict[str, int]:
    return {
        "hour": int(m["hour"]),
        "minute": int(m["minute"]),
        "second": int(m["second"] or 0),
        "nanosecond": int((m["frac"] or "").ljust(9, "0")),
    }


def datetime_arg(text: str) -> str | dict[str, Any]:
    """A DateTime's ``toString()`` → what Cypher's ``datetime()`` rebuilds it from, exactly.

    Neo4j prints offsets with seconds (historic local mean time: ``Africa/Monrovia`` in
    1970 is ``-00:44:30``, ``Europe/Amsterdam`` in year 1 ``+00:17:30``) but does not parse
    them back. Those values go as a map: a fixed offset by its fields (unambiguous), a
    named zone by its instant (the local time may fall in an overlap). Every other text
    parses back as it is, at every year Neo4j holds.
    """
    m = _DATETIME.fullmatch(text)
    if m is None:
        raise ValueError(f"not a Neo4j DateTime: {text!r}")
    offset = m["offset"]
    if offset.count(":") < 2:
        return text
    clock = _clock(m)
    date = {"year": int(m["year"]), "month": int(m["month"]), "day": int(m["day"])}
    days = _days_from_civil(date["year"], date["month"], date["day"])
    local = days * 86400 + clock["hour"] * 3600 + clock["minute"] * 60 + clock["second"]
    instant = local - _offset_seconds(offset)
    if m["zone"] is None or abs(instant) >= _EPOCH_SECONDS_LIMIT:
        # A fixed offset, or a year where zone rules have no transitions left (local mean
        # time before 1900, the last rule after it): the fields say it exactly.
        return {**date, **clock, "timezone": m["zone"] or offset}
    return {"epochSeconds": instant, "nanosecond": clock["nanosecond"], "timezone": m["zone"]}


#: Neo4j computes through epoch milliseconds: beyond ±2^63 ms it wraps around silently
#: (measured: epochSeconds -3.16e16 gave year +169108099).
_EPOCH_SECONDS_LIMIT = 9_000_000_000_000_000


def time_arg(text: str) -> str | dict[str, Any]:
    """A Time's ``toString()`` → ``time()``'s argument (a map where the offset has seconds)."""
    m = _TIME.fullmatch(text)
    if m is None:
        raise ValueError(f"not a Neo4j Time: {text!r}")
    if m["offset"].count(":") < 2:
        return text
    return {**_clock(m), "timezone": m["offset"]}


def _text_list(v: Any, fn: Any) -> list[Any]:
    if not isinstance(v, list):
        raise ValueError(f"expected a list, got {type(v).__name__}")
    return [fn(x) for x in v]


#: How each tag's JSON value becomes the parameter Cypher finishes (absent: as it is).
_DECODERS: dict[str, Any] = {
    "Float": lambda v: _float(v),
    "List<Float>": lambda v: _text_list(v, _float),
    "ByteArray": lambda v: base64.b64decode(v, validate=True),
    "Point": lambda v: point_arg(v),
    "List<Point>": lambda v: _text_list(v, point_arg),
    "DateTime": lambda v: datetime_arg(v),
    "List<DateTime>": lambda v: _text_list(v, datetime_arg),
    "Time": lambda v: time_arg(v),
    "List<Time>": lambda v: _text_list(v, time_arg),
}
#: Every tag the export writes (``etl.graph.arrow``) and the replay rebuilds.
KNOWN_TAGS = frozenset(
    ["String", "Integer", "Float", "Boolean", "ByteArray", "List<Nothing>"]
    + [f"{list_}{t}{end}" for t in ("String", "Integer", "Float", "Boolean", *TEMPORAL_TAGS)
       for list_, end in (("", ""), ("List<", ">"))]
)  # fmt: skip


def decode_tagged(text: str | None) -> dict[str, Any] | None:
    """Tagged JSON (``{"t": "Float", "v": 42.0}``) → ``{t, v}`` the Cypher ``CASE`` finishes.

    Scalars become driver values here (floats keep NaN/±Inf, byte arrays
    become ``bytes``); temporals, durations and points stay in their text or
    map form and are rebuilt by Cypher, which parses nanoseconds and named
    zones that Python's ``datetime`` cannot hold. Raises ``ValueError`` for
    anything the replay could not rebuild exactly (``etl.replay_check`` turns
    that into an error naming the row before anything is written).
    """
    if text is None:
        return None
    tagged = json.loads(text)
    if not isinstance(tagged, dict) or set(tagged) != {"t", "v"}:
        raise ValueError(f"not a tagged value: {text[:80]!r}")
    t, v = tagged["t"], tagged["v"]
    if t not in KNOWN_TAGS:
        raise ValueError(f"unknown type tag {t!r}")
    decode = _DECODERS.get(t)
    return {"t": t, "v": decode(v) if decode else v}

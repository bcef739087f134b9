"""Neo4j property values → Arrow columns, losslessly (docs/STAGE_FORMAT.md "Types").

Each exported column gets a ``ColumnSpec`` from the label's (or type's) profile:
the set of Neo4j ``valueType()``s the property holds. The spec says which
Cypher expressions fetch the column and how the fetched Python lists become
one Arrow array. The split exists for speed: the driver builds Python objects
for temporal values slowly (≈40 µs each), so temporals are taken apart *in
Cypher* into integers (epoch seconds, nanoseconds, offsets) and reassembled
with vectorised Arrow arithmetic; strings, numbers and lists travel as they are.

A property whose values have more than one type, or that cannot be held natively
without loss (a DateTime column with several zones, a date outside the
nanosecond timestamp range, lists of temporals …) becomes a *tagged JSON*
string column, ``{"t": "<Neo4j type>", "v": <value>}``, built by a Cypher
``CASE`` so that every value keeps its exact type.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from etl.errors import StageError

NS = 1_000_000_000
#: Years whose every instant fits timestamp[ns] (1677-09-21 … 2262-04-11), kept conservative.
NS_YEARS = (1678, 2261)
DATE32_YEARS = (-5_000_000, 5_000_000)

_SCALARS: dict[str, tuple[pa.DataType, tuple[type, ...]]] = {
    "STRING": (pa.string(), (str,)),
    "INTEGER": (pa.int64(), (int,)),
    "FLOAT": (pa.float64(), (float,)),
    "BOOLEAN": (pa.bool_(), (bool,)),
}
_TEMPORALS = {"DATE", "LOCAL DATETIME", "ZONED DATETIME", "LOCAL TIME", "ZONED TIME"}

TIME_TYPE = pa.struct([("time", pa.time64("ns")), ("offset_seconds", pa.int32())])
DURATION_TYPE = pa.struct(
    [
        ("months", pa.int64()),
        ("days", pa.int64()),
        ("seconds", pa.int64()),
        ("nanoseconds", pa.int32()),
    ]
)
POINT_TYPE = pa.struct(
    [("srid", pa.int32()), ("x", pa.float64()), ("y", pa.float64()), ("z", pa.float64())]
)

# Tag names follow the driver manual's type names; the transform reads "Integer"/"Float".
_TAG_CASES = (
    ("STRING", "String", "@"),
    ("BOOLEAN", "Boolean", "@"),
    ("INTEGER", "Integer", "@"),
    ("FLOAT", "Float", "@"),
    ("DATE", "Date", "toString(@)"),
    ("LOCAL DATETIME", "LocalDateTime", "toString(@)"),
    ("ZONED DATETIME", "DateTime", "toString(@)"),
    ("LOCAL TIME", "LocalTime", "toString(@)"),
    ("ZONED TIME", "Time", "toString(@)"),
    (
        "DURATION",
        "Duration",
        "{months: @.months, days: @.days, seconds: @.seconds, nanoseconds: @.nanosecondsOfSecond}",
    ),
    (
        "POINT",
        "Point",
        "{srid: @.srid, x: @.x, y: @.y, z: CASE WHEN @.srid IN [4979, 9157] THEN @.z END}",
    ),
)


def base_type(value_type: str) -> str:
    """``"LIST<STRING NOT NULL> NOT NULL"`` → ``"LIST<STRING>"`` (nullability is not a type)."""
    return value_type.replace(" NOT NULL", "").strip()


def tag_expression(x: str = "@", types: Sequence[str] = ()) -> str:
    """A Cypher expression turning value ``x`` into ``{t, v}`` (or null).

    Lists are homogeneous in Neo4j properties, so one tag covers the list
    (``List<Date>``) and elements are encoded like scalars of that type.
    Byte arrays answer ``IS :: LIST<INTEGER>`` (an empty one ``LIST<NOTHING>``);
    the driver still hands them over as ``bytes``, which ``finish_tagged``
    recognises. Templates use ``@`` for the value (Cypher never uses that
    character).

    ``types`` (the profile's ``valueType``s) keeps only the cases the column
    needs: the server plans every case of every tagged column, about 0.1 s per
    column with all of them (measured, 5.26). Any other value meets ``ELSE``
    and stops the export (``to_arrow``: the graph changed under it).
    """
    wanted = {base_type(t) for t in types}

    def keep(t: str) -> bool:
        return not wanted or t in wanted

    # An empty list or byte array is LIST<NOTHING> in any column that holds lists.
    cases = ["WHEN @ IS :: LIST<NOTHING> THEN {t: 'List<Nothing>', v: @}"]
    cases += [
        f"WHEN @ IS :: {t} THEN {{t: '{tag}', v: {v}}}" for t, tag, v in _TAG_CASES if keep(t)
    ]
    for t, tag, v in _TAG_CASES:
        body = "@" if v == "@" else f"[e IN @ | {v.replace('@', 'e')}]"
        if keep(f"LIST<{t}>"):
            cases.append(f"WHEN @ IS :: LIST<{t}> THEN {{t: 'List<{tag}>', v: {body}}}")
    unexpected = f" ELSE {{t: '{UNEXPECTED}', v: valueType(@)}}" if wanted else ""
    return f"CASE WHEN @ IS NULL THEN null {' '.join(cases)}{unexpected} END".replace("@", x)


#: The tag of a value whose type the profile did not see (the graph changed).
UNEXPECTED = "?"


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value


def finish_tagged(value: dict[str, Any] | None) -> str | None:
    """The tagged map from Cypher → compact JSON text (non-finite floats as strings)."""
    if value is None:
        return None
    t, v = value["t"], value["v"]
    if isinstance(v, bytes | bytearray):
        t, v = "ByteArray", base64.b64encode(bytes(v)).decode("ascii")
    return json.dumps(
        {"t": t, "v": _json_value(v)}, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )


@dataclass
class ColumnSpec:
    """How one property becomes one column.

    ``kind`` is a Neo4j base type (``"STRING"``, ``"ZONED DATETIME"``,
    ``"LIST<FLOAT>"``, ``"BYTES"`` …) or ``"TAGGED"``; ``parts`` are Cypher
    expressions over the placeholder ``@`` (the property value).
    """

    name: str
    prop: str
    kind: str
    arrow_type: pa.DataType
    neo4j_types: list[str]
    zone: str | None = None
    parts: list[str] = field(default_factory=list)

    @property
    def tagged(self) -> bool:
        return self.kind == "TAGGED"

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"property": self.prop, "neo4j_types": self.neo4j_types}
        if self.zone is not None:
            out["zone"] = self.zone
        if self.tagged:
            out["tagged"] = True
        return out


def column_name(prop: str) -> str:
    """Columns starting with ``_`` are the pipeline's; such properties move to ``_prop.<name>``."""
    return f"_prop.{prop}" if prop.startswith("_") else prop


def plan_column(
    prop: str,
    types: Sequence[str],
    *,
    zones: Sequence[str] = (),
    years: tuple[int, int] | None = None,
    bytes_sample: bool = False,
    name: str | None = None,
) -> ColumnSpec:
    """Choose the Arrow representation of a property from its profile.

    ``types``: the distinct base ``valueType``s seen; ``zones``: distinct zone
    ids of a DateTime column; ``years``: (min, max) year of a temporal column;
    ``bytes_sample``: a LIST<INTEGER> property whose values are byte arrays.
    """
    col = name or column_name(prop)
    kinds = sorted(set(types))
    # An empty list is LIST<NOTHING>; it joins any other list type losslessly.
    if len(kinds) > 1 and "LIST<NOTHING>" in kinds and all(k.startswith("LIST<") for k in kinds):
        kinds.remove("LIST<NOTHING>")
    spec = tagged_column(prop, kinds, col)
    if len(kinds) != 1:
        return spec
    kind = kinds[0]

    def native(arrow_type: pa.DataType, *parts: str, zone: str | None = None) -> ColumnSpec:
        return ColumnSpec(col, prop, kind, arrow_type, list(kinds), zone, list(parts) or ["@"])

    in_ns = years is None or (NS_YEARS[0] <= years[0] and years[1] <= NS_YEARS[1])
    if kind in _SCALARS:
        return native(_SCALARS[kind][0])
    if kind == "LIST<INTEGER>" and bytes_sample:
        spec = native(pa.large_binary())
        spec.kind = "BYTES"
        return spec
    if kind.startswith("LIST<") and kind[5:-1] in _SCALARS:
        return native(pa.list_(_SCALARS[kind[5:-1]][0]))
    if kind == "LIST<NOTHING>":
        # Only empty lists, or empty byte arrays (the same valueType): tagged keeps each.
        return spec
    if kind == "ZONED DATETIME" and len(set(zones)) == 1 and in_ns:
        zone = zones[0]
        return native(
            pa.timestamp("ns", tz=arrow_zone(zone)), _FLOOR_SECONDS, "@.nanosecond", zone=zone
        )
    if kind == "LOCAL DATETIME" and in_ns:
        return native(
            pa.timestamp("ns"),
            # Cypher's datetime({datetime: null}) fails rather than giving null.
            "CASE WHEN @ IS NOT NULL THEN "
            + _FLOOR_SECONDS.replace("@.epoch", "datetime({datetime: @, timezone: 'UTC'}).epoch")
            + " END",
            "@.nanosecond",
        )
    if kind == "DATE" and (
        years is None or (DATE32_YEARS[0] <= years[0] and years[1] <= DATE32_YEARS[1])
    ):
        return native(
            pa.date32(),
            "CASE WHEN @ IS NOT NULL THEN duration.inDays(date({year: 1970}), @).days END",
        )
    if kind == "LOCAL TIME":
        return native(pa.time64("ns"), "@.hour * 3600 + @.minute * 60 + @.second", "@.nanosecond")
    if kind == "ZONED TIME":
        return native(
            TIME_TYPE, "@.hour * 3600 + @.minute * 60 + @.second", "@.nanosecond", "@.offsetSeconds"
        )
    if kind == "DURATION":
        return native(DURATION_TYPE, "@.months", "@.days", "@.seconds", "@.nanosecondsOfSecond")
    if kind == "POINT":
        return native(
            POINT_TYPE, "@.srid", "@.x", "@.y", "CASE WHEN @.srid IN [4979, 9157] THEN @.z END"
        )
    return spec


#: Whole epoch seconds, *floored*. Neo4j 5.26 computes ``epochSeconds`` as its floored
#: ``epochMillis`` divided by 1000 with truncation, so an instant before 1970 with a
#: millisecond fraction would come out one second late (measured: 1960-01-01T00:00:00.5Z
#: gives epochSeconds -315619199, epochMillis -315619199500). ``@.nanosecond`` is the
#: fraction, always in [0, 1e9).
_FLOOR_SECONDS = (
    "@.epochSeconds - CASE WHEN @.epochMillis < 0 AND @.epochMillis % 1000 <> 0 THEN 1 ELSE 0 END"
)


def arrow_zone(zone: str) -> str:
    """Neo4j zone → Arrow tz. ``Z`` is UTC (Polars rejects ``Z``); the manifest keeps ``Z``."""
    return "UTC" if zone == "Z" else zone


def is_temporal(kind: str) -> bool:
    """Temporal base types need a zone/range profile before their column is chosen."""
    return kind in _TEMPORALS


def tagged_column(prop: str, types: Sequence[str], name: str | None = None) -> ColumnSpec:
    """A tagged-JSON column: every value keeps its own type."""
    return ColumnSpec(
        name or column_name(prop),
        prop,
        "TAGGED",
        pa.string(),
        list(types),
        parts=[tag_expression(types=types)],
    )


Locate = Callable[[int], str]


def to_arrow(spec: ColumnSpec, parts: Sequence[list[Any]], locate: Locate) -> pa.Array:
    """Fetched part lists (one per ``spec.parts``) → one Arrow array of ``spec.arrow_type``.

    ``locate(i)`` names row ``i`` (e.g. the node's element id) for error messages.
    """
    kind = spec.kind
    if spec.tagged:
        odd = [i for i, v in enumerate(parts[0]) if v is not None and v["t"] == UNEXPECTED]
        if odd:
            raise StageError(
                f"{locate(odd[0])}: property {spec.prop!r} holds a {parts[0][odd[0]]['v']}, "
                f"but the profile of this label found only {spec.neo4j_types}",
                hint="the graph changed during the export; run it again on a quiet database",
            )
        return pa.array([finish_tagged(v) for v in parts[0]], type=pa.string())
    if kind in _SCALARS or kind == "BYTES" or kind.startswith("LIST<"):
        values = parts[0]
        expected: tuple[type, ...] = (
            (bytes, bytearray)
            if kind == "BYTES"
            else _SCALARS[kind][1]
            if kind in _SCALARS
            else (list,)
        )
        # The profile said one type; check cheaply (C-speed map) that the data agrees.
        found = set(map(type, values)) - {type(None)}
        if not found.issubset(expected):
            bad = next(i for i, v in enumerate(values) if v is not None and type(v) not in expected)
            if {bytes, list} & {type(values[bad])} and {bytes, list} & set(expected):
                raise StageError(
                    f"{locate(bad)}: property {spec.prop!r} holds byte arrays and lists "
                    f"(value {values[bad]!r}), which Neo4j reports as one type "
                    f"({spec.neo4j_types}); the export cannot keep both exactly",
                    hint="store the byte arrays in a property of their own",
                )
            raise StageError(
                f"{locate(bad)}: property {spec.prop!r} holds a {type(values[bad]).__name__}, "
                f"but the profile of this label found only {spec.neo4j_types}",
                hint="the graph changed during the export; run it again on a quiet database",
            )
        if kind == "BYTES":
            return pa.array([None if v is None else bytes(v) for v in values], type=spec.arrow_type)
        return pa.array(values, type=spec.arrow_type)
    # Coordinates are floats: never through int64 (pyarrow truncates 2.3, fails on 1e308).
    if kind == "POINT":
        arrays = [pa.array(parts[0], type=pa.int32())] + [
            pa.array(p, type=pa.float64()) for p in parts[1:]
        ]
        return pa.StructArray.from_arrays(
            arrays, fields=list(POINT_TYPE), mask=pc.is_null(arrays[0])
        )
    ints = [pa.array(p, type=pa.int64()) for p in parts]
    if kind in ("ZONED DATETIME", "LOCAL DATETIME"):
        total = pc.add_checked(pc.multiply_checked(ints[0], NS), ints[1])
        return total.cast(spec.arrow_type)
    if kind == "DATE":
        return ints[0].cast(pa.int32()).cast(pa.date32())
    if kind in ("LOCAL TIME", "ZONED TIME"):
        time = pc.add(pc.multiply(ints[0], NS), ints[1]).cast(pa.time64("ns"))
        if kind == "LOCAL TIME":
            return time
        return pa.StructArray.from_arrays(
            [time, ints[2].cast(pa.int32())], fields=list(TIME_TYPE), mask=pc.is_null(ints[0])
        )
    if kind == "DURATION":
        arrays = [ints[0], ints[1], ints[2], ints[3].cast(pa.int32())]
        return pa.StructArray.from_arrays(
            arrays, fields=list(DURATION_TYPE), mask=pc.is_null(ints[0])
        )
    raise StageError(f"{locate(0)}: property {spec.prop!r} has unsupported type {kind}")

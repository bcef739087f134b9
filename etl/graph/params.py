"""Arrow columns → Bolt parameters and the Cypher that rebuilds each Neo4j value.

This is the inverse of ``etl.graph.arrow`` (which takes values apart for the
export). A stage column becomes one property again, losslessly:

=====================  ==================================  =============================
Arrow (stage)          sent as (one list per column)       rebuilt in Cypher as
=====================  ==================================  =============================
string, int, float,    the values themselves               ``SET n.p = $c0[i]``
bool, binary, lists
timestamp[ns, tz]      epoch seconds (floor) and            ``datetime({epochSeconds, nanosecond,
                       nanosecond of second: two lists      timezone})``
timestamp[ns]          the same two lists                   ``localdatetime({datetime: …})``
date32                 days since 1970-01-01                ``date(…) + duration({days})``
time64                 nanosecond of day                    ``localtime(…) + duration(…)``
struct time/duration/  their fields                         ``time`` / ``duration`` / ``point``
point (export types)
tagged JSON string     ``{t, v}`` decoded in Python         a ``CASE`` on ``t``
=====================  ==================================  =============================

Why columns, not one map per row: a batch is sent as one list per column and
unwound with ``UNWIND range(0, $n - 1) AS i``. Lists of plain values pack and
unpack several times faster than lists of nested maps (measured: 2-3× more
rows per second through the whole load), because neither the driver nor the
server builds a map per row.

Why not Python ``datetime`` objects: they hold microseconds, Neo4j holds
nanoseconds, and the driver builds temporal objects slowly. Epoch seconds and
nanoseconds are computed for a whole column at once with Arrow kernels, with
*floor* division so instants before 1970 keep a nanosecond in [0, 1e9).

Which zone a DateTime gets back: the export records Neo4j's zone per column
(``"Z"``, ``"UTC"``, ``"Europe/Berlin"``, ``"+02:00"``) in the manifest, while
Arrow spells ``"Z"`` as ``"UTC"``. ``zone_hints`` carries the manifest's
spelling; without a hint an Arrow ``UTC`` becomes Neo4j's ``Z`` (what
``datetime()`` and every legacy writer produced).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from etl.errors import StageError
from etl.graph.admin import quote_name
from etl.graph.arrow import DURATION_TYPE, NS, POINT_TYPE, TIME_TYPE
from etl.graph.tagged import TEMPORAL_TAGS, decode_tagged, point_arg

#: Prefix the stage format gives to properties whose own name starts with ``_``.
PROP_PREFIX = "_prop."
#: Property that identifies a replayed node whose key cannot (duplicate or null key).
SOURCE_ID = "_etl_source_element_id"


@dataclass(frozen=True)
class ColumnPlan:
    """How one stage column travels: ``kind`` picks the encoding, ``slot`` the parameter.

    Parameters are columnar: ``$c3`` is the list of column 3's values for the
    batch (temporals use ``$c3s``/``$c3n``), and Cypher reads ``$c3[i]``.
    ``nullable`` is false when the whole file has no null in the column, which
    lets the Cypher skip a ``CASE``; ``zone`` is a DateTime column's zone.
    """

    column: str
    prop: str
    kind: str
    slot: str
    zone: str | None = None
    nullable: bool = True


def prop_name(column: str) -> str:
    """``_prop._x`` → ``_x``; every other column name is the property name."""
    return column.removeprefix(PROP_PREFIX)


def _kind(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "datetime" if t.tz is not None else "localdatetime"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_time(t):
        return "localtime"
    if t == TIME_TYPE:
        return "time"
    if t == DURATION_TYPE:
        return "duration"
    if t == POINT_TYPE:
        return "point"
    plain = (
        pa.types.is_string,
        pa.types.is_large_string,
        pa.types.is_integer,
        pa.types.is_floating,
        pa.types.is_boolean,
        pa.types.is_binary,
        pa.types.is_large_binary,
        pa.types.is_null,
    )
    if any(test(t) for test in plain):
        return "plain"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = t.value_type
        if any(test(inner) for test in plain):
            return "plain"
    raise StageError(f"column type {t} has no Neo4j property equivalent the loader knows")


def plan_columns(
    schema: pa.Schema,
    columns: Sequence[str],
    *,
    tagged: Sequence[str] = (),
    zone_hints: Mapping[str, str] | None = None,
    null_counts: Mapping[str, int] | None = None,
) -> list[ColumnPlan]:
    """One ``ColumnPlan`` per property column in ``columns`` (order kept)."""
    hints = zone_hints or {}
    plans: list[ColumnPlan] = []
    for j, name in enumerate(columns):
        t = schema.field(name).type
        kind = "tagged" if name in tagged else _kind(t)
        zone = None
        if kind == "datetime":
            zone = hints.get(name) or ("Z" if t.tz in ("UTC", "Z") else str(t.tz))
        nullable = null_counts is None or null_counts.get(name, 1) > 0
        plans.append(ColumnPlan(name, prop_name(name), kind, f"c{j}", zone, nullable))
    return plans


def null_counts(path: Any) -> dict[str, int]:
    """Nulls per top-level column of a Parquet file, from its statistics (-1: unknown)."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    out: dict[str, int] = {}
    for rg in range(meta.num_row_groups):
        group = meta.row_group(rg)
        for c in range(group.num_columns):
            col = group.column(c)
            name = col.path_in_schema.split(".")[0]
            stats = col.statistics
            known = stats is not None and stats.has_null_count
            n = stats.null_count if known else 1
            out[name] = out.get(name, 0) + n
    return out


# ---------------------------------------------------------------- Arrow side


def _split_ns(values: pa.Array) -> tuple[list[Any], list[Any]]:
    """int64 nanoseconds → (epoch seconds, nanosecond) with floor division (n in [0, 1e9))."""
    q = pc.divide(values, NS)  # truncates toward zero
    r = pc.subtract(values, pc.multiply(q, NS))
    neg = pc.fill_null(pc.less(r, 0), False)
    s = pc.if_else(neg, pc.subtract(q, 1), q)
    n = pc.if_else(neg, pc.add(r, NS), r)
    return s.to_pylist(), n.to_pylist()


def encode_column(plan: ColumnPlan, col: pa.Array) -> dict[str, list[Any]]:
    """One column as parameter lists (``{slot: [...]}``, temporals as two lists)."""
    t, slot = col.type, plan.slot
    if plan.kind == "plain":
        return {slot: col.to_pylist()}
    if plan.kind in ("datetime", "localdatetime"):
        ns = col.cast(pa.timestamp("ns", tz=t.tz)).cast(pa.int64())
        secs, nanos = _split_ns(ns)
        return {f"{slot}s": secs, f"{slot}n": nanos}
    if plan.kind == "date":
        return {slot: col.cast(pa.date32()).cast(pa.int32()).to_pylist()}
    if plan.kind == "localtime":
        return {slot: col.cast(pa.time64("ns")).cast(pa.int64()).to_pylist()}
    if plan.kind == "time":
        valid = col.is_valid().to_pylist()
        ns = col.field("time").cast(pa.int64()).to_pylist()
        offsets = col.field("offset_seconds").to_pylist()
        return {
            f"{slot}s": [n if ok else None for n, ok in zip(ns, valid, strict=True)],
            f"{slot}n": [_offset(o) if ok else None for o, ok in zip(offsets, valid, strict=True)],
        }
    if plan.kind == "duration":
        return {slot: col.to_pylist()}
    if plan.kind == "point":
        return {slot: [None if v is None else point_arg(v) for v in col.to_pylist()]}
    if plan.kind == "tagged":
        return {slot: [_decoded(plan, v) for v in col.to_pylist()]}
    raise AssertionError(plan.kind)


def _decoded(plan: ColumnPlan, text: str | None) -> dict[str, Any] | None:
    try:
        return decode_tagged(text)
    except (ValueError, KeyError, TypeError) as e:  # (JSON and base64 errors are ValueErrors)
        raise StageError(
            f"property {plan.prop!r} = {str(text)[:160]!r} cannot be rebuilt exactly: {e}",
            hint="the stage holds a value the export does not write; run `etl verify` on it",
        ) from None


def encode_columns(table: pa.Table, plans: Sequence[ColumnPlan]) -> dict[str, list[Any]]:
    """Every planned column of ``table`` as parameter lists."""
    out: dict[str, list[Any]] = {}
    for plan in plans:
        out.update(encode_column(plan, table.column(plan.column).combine_chunks()))
    return out


def _offset(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    h, rest = divmod(abs(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{h:02d}:{m:02d}" + (f":{s:02d}" if s else "")


# ---------------------------------------------------------------- Cypher side


def _tagged_expr(v: str) -> str:
    cases = []
    for tag, fn in TEMPORAL_TAGS.items():
        cases.append(f"WHEN '{tag}' THEN {fn}({v}.v)")
        cases.append(f"WHEN 'List<{tag}>' THEN [e IN {v}.v | {fn}(e)]")
    return f"CASE {v}.t {' '.join(cases)} ELSE {v}.v END"


def value_expr(plan: ColumnPlan, i: str = "i") -> str:
    """Cypher rebuilding row ``i``'s value of ``plan`` from its parameter lists.

    A DateTime's zone comes from the parameter ``$zones`` (slot → zone), never
    from the query text. Null stays null (a ``CASE`` only where nulls occur).
    """
    v = f"${plan.slot}[{i}]"
    s, n = f"${plan.slot}s[{i}]", f"${plan.slot}n[{i}]"
    if plan.kind == "plain":
        return v
    if plan.kind == "datetime":
        body = f"datetime({{epochSeconds: {s}, nanosecond: {n}, timezone: $zones.{plan.slot}}})"
        v = s
    elif plan.kind == "localdatetime":
        body = (
            f"localdatetime({{datetime: datetime({{epochSeconds: {s}, nanosecond: {n}, "
            "timezone: 'Z'})})"
        )
        v = s
    elif plan.kind == "date":
        body = f"date({{year: 1970, month: 1, day: 1}}) + duration({{days: {v}}})"
    elif plan.kind == "localtime":
        body = f"localtime({{hour: 0}}) + duration({{nanoseconds: {v}}})"
    elif plan.kind == "time":
        body = f"time({{hour: 0, timezone: {n}}}) + duration({{nanoseconds: {s}}})"
        v = s
    elif plan.kind == "duration":
        body = f"duration({v})"
    elif plan.kind == "point":
        body = f"point({v})"
    else:
        body = _tagged_expr(v)
    if not plan.nullable:
        return body
    return f"CASE WHEN {v} IS NULL THEN null ELSE {body} END"


def set_clause(
    var: str, plans: Sequence[ColumnPlan], i: str = "i", *, replace: bool = False
) -> str:
    """``SET n.`a` = $c0[i], …`` (null removes); ``replace``: ``SET n = {…}`` drops the rest."""
    if replace:
        return f"SET {var} = {want_map(plans, i)}"
    if not plans:
        return ""
    return "SET " + ", ".join(f"{var}.{quote_name(p.prop)} = {value_expr(p, i)}" for p in plans)


def want_map(plans: Sequence[ColumnPlan], i: str = "i") -> str:
    """A map literal of every property's target value (nulls are simply not set)."""
    return "{" + ", ".join(f"{quote_name(p.prop)}: {value_expr(p, i)}" for p in plans) + "}"


def zones(plans: Sequence[ColumnPlan]) -> dict[str, str]:
    """The ``$zones`` parameter for ``plans``."""
    return {p.slot: p.zone for p in plans if p.zone is not None}


def rebuild_error(
    driver: Any,
    database: str,
    plans: Sequence[ColumnPlan],
    params: dict[str, Any],
    lo: int,
    hi: int,
) -> str | None:
    """Rebuild rows ``lo``…``hi - 1`` of ``plans`` on the server in a *read* transaction
    (nothing is written); the server's error message, or None when every value builds."""
    from neo4j.exceptions import Neo4jError

    values = ", ".join(value_expr(p) for p in plans)
    text = f"UNWIND range($lo, $hi - 1) AS i WITH [{values}] AS v RETURN count(v) AS n"
    args = {**params, "zones": zones(plans), "lo": lo, "hi": hi}
    try:
        with driver.session(database=database, notifications_min_severity="OFF") as session:
            session.execute_read(lambda tx: tx.run(text, args).consume())
    except Neo4jError as e:
        return str(e.message or e)
    return None

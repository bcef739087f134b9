"""Input contract, type helpers and deterministic ordering for ``workflow-to-workflowrun``.

The export stage writes one column per property that *some* node has, so a
legacy graph where no Workflow ever got ``metadata`` yields a Workflow table
without a ``metadata`` column, and a label with no nodes yields no table at all.
``conform`` turns every input into a frame with the columns the migration reads
(absent ones become typed nulls) and refuses, with ``MigrationInputError``,
only a real breach of the stage contract (e.g. ``metadata`` that is not a string
column). Data problems are never errors here: they become rejected rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from etl.migrations import MigrationInputError

STR = pl.String()
LABELS = pl.List(pl.String())
UTC_NS = pl.Datetime("ns", "UTC")

#: Issue numbers up to 2**53 are exactly representable as the float the
#: JavaScript driver wrote; beyond that a "12345678901234567890.0" is no longer
#: one particular integer, so it cannot be converted without guessing.
MAX_EXACT_INT = 2**53


@dataclass(frozen=True)
class Spec:
    """The columns the migration reads from one input table, by *kind*.

    Kinds: ``"string"``, ``"labels"``, ``"datetime"`` (any unit and zone) and
    ``"number"`` (any integer or float dtype, or a tagged-JSON string column,
    see docs/STAGE_FORMAT.md "Types"). A column of dtype Null (every value
    null) is accepted for every kind and cast to the kind's default dtype.
    """

    columns: tuple[tuple[str, str], ...]


def _node(*extra: tuple[str, str]) -> Spec:
    return Spec((("_element_id", "string"), ("_labels", "labels"), *extra))


def _rel(start: Sequence[tuple[str, str]], end: Sequence[tuple[str, str]]) -> Spec:
    return Spec(
        (
            ("_element_id", "string"),
            ("_start_label", "string"),
            ("_start_element_id", "string"),
            *((f"_start.{name}", kind) for name, kind in start),
            ("_end_label", "string"),
            ("_end_element_id", "string"),
            *((f"_end.{name}", kind) for name, kind in end),
        )
    )


_ID = (("id", "string"),)
_ISSUE_KEY = (("repoFullName", "string"), ("number", "number"))

#: Every table this migration reads, and the columns it relies on.
INPUTS: dict[str, Spec] = {
    "nodes/Workflow": _node(("id", "string"), ("created_at", "datetime"), ("metadata", "string")),
    "nodes/Event": _node(
        ("id", "string"), ("type", "string"), ("data", "string"), ("timestamp", "datetime")
    ),
    "nodes/Issue": _node(*_ISSUE_KEY),
    "nodes/Plan": _node(("id", "string")),
    "relationships/BELONGS_TO_WORKFLOW": _rel(_ID, _ID),
    "relationships/NEXT_EVENT": _rel(_ID, _ID),
    "relationships/BASED_ON_ISSUE": _rel(_ID, _ISSUE_KEY),
    "relationships/GENERATED_FROM": _rel(_ID, _ID),
    "relationships/PART_OF": _rel(_ID, _ID),
    "relationships/HAS_PLAN": _rel(_ISSUE_KEY, _ID),
}

_DEFAULT_DTYPE: dict[str, pl.DataType] = {
    "string": STR,
    "labels": LABELS,
    "datetime": UTC_NS,
    "number": pl.Float64(),
}


def _accepts(kind: str, dtype: pl.DataType) -> bool:
    if kind == "string":
        return dtype == pl.String
    if kind == "labels":
        return isinstance(dtype, pl.List) and dtype.inner == pl.String
    if kind == "datetime":
        return isinstance(dtype, pl.Datetime)
    # "number": numeric, or tagged JSON when one property mixes Integer and Float.
    return dtype.is_numeric() or dtype == pl.String


def conform(name: str, frame: pl.LazyFrame | None) -> pl.LazyFrame:
    """``frame`` with every column of ``INPUTS[name]`` present (typed nulls if absent).

    Column order is kept; added columns go last. ``frame=None`` (the export had
    no such table) gives an empty frame of the default dtypes.
    """
    spec = INPUTS[name]
    schema = None if frame is None else frame.collect_schema()
    # A table without columns has no rows to speak of; and adding a literal
    # column to it would make one row out of nothing.
    if frame is None or schema is None or not schema:
        return pl.LazyFrame(schema={col: _DEFAULT_DTYPE[kind] for col, kind in spec.columns})
    fixes: list[pl.Expr] = []
    for col, kind in spec.columns:
        dtype = schema.get(col)
        if dtype is None or dtype == pl.Null:
            fixes.append(pl.lit(None, dtype=_DEFAULT_DTYPE[kind]).alias(col))
        elif not _accepts(kind, dtype):
            raise MigrationInputError(
                f"{name}: column {col!r} has type {dtype}, expected a {kind} column",
                hint="re-export the legacy graph with `etl export`; see docs/STAGE_FORMAT.md",
            )
    return frame.with_columns(fixes) if fixes else frame


def to_utc(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A datetime column as UTC; a zone-less column is taken to be UTC already."""
    assert isinstance(dtype, pl.Datetime)
    if dtype.time_zone is None:
        return expr.dt.replace_time_zone("UTC")
    return expr.dt.convert_time_zone("UTC")


def to_datetime_dtype(expr: pl.Expr, src: pl.DataType, dst: pl.DataType) -> pl.Expr:
    """Express datetimes of dtype ``src`` in dtype ``dst`` (same instant, ``dst``'s zone)."""
    assert isinstance(dst, pl.Datetime)
    utc = to_utc(expr, src)
    local = (
        utc.dt.replace_time_zone(None)
        if dst.time_zone is None
        else utc.dt.convert_time_zone(dst.time_zone)
    )
    return local.dt.cast_time_unit(dst.time_unit or "ns")


def number_parts(col: str, dtype: pl.DataType) -> tuple[pl.Expr, pl.Expr]:
    """``(as_float, as_int)`` for a number column of any accepted dtype.

    ``as_int`` is the exact Int64 when the value is integral and exactly
    representable (``42.0`` → 42), else null: ``12.5``, NaN, ±inf and floats
    beyond 2**53 have no single integer to become. A String column is tagged
    JSON (``{"t": "Float", "v": 42.0}``); other tags count as not a number.
    """
    c = pl.col(col)
    if dtype.is_integer():
        as_int = c.cast(pl.Int64, strict=False)
        return c.cast(pl.Float64), as_int
    if dtype == pl.String:
        tag = c.str.json_path_match("$.t")
        value = c.str.json_path_match("$.v")
        tagged: pl.Expr = pl.when(tag.is_in(["Integer", "Float"])).then(
            value.cast(pl.Float64, strict=False)
        )
        exact = pl.when(tag == "Integer").then(value.cast(pl.Int64, strict=False))
        return tagged, pl.coalesce(exact, _exact_int(tagged))
    as_float = c.cast(pl.Float64)
    return as_float, _exact_int(as_float)


def _exact_int(value: pl.Expr) -> pl.Expr:
    ok = value.is_finite() & (value == value.floor()) & (value.abs() <= MAX_EXACT_INT)
    return pl.when(ok).then(value.cast(pl.Int64, strict=False))


def node_sort_keys(frame: pl.LazyFrame, name: str) -> list[str]:
    """Sort columns of a node table: its key columns, then ``_element_id``."""
    cols = frame.collect_schema().names()
    if name == "nodes/Issue":
        key = ["repoFullName", "number"]
    elif "id" in cols:
        key = ["id"]
    else:
        key = []
    return [*key, "_element_id"]


def rel_sort_keys(frame: pl.LazyFrame) -> list[str]:
    """Sort columns of a relationship table: start key, end key, then ``_element_id``."""
    cols = frame.collect_schema().names()
    start = [c for c in cols if c.startswith("_start.")]
    end = [c for c in cols if c.startswith("_end.")]
    return [*start, *end, "_element_id"]


def sort_keys(frame: pl.LazyFrame, name: str) -> list[str]:
    """The columns ``sorted_table`` sorts ``frame`` by (those it has)."""
    keys = (
        rel_sort_keys(frame) if name.startswith("relationships/") else node_sort_keys(frame, name)
    )
    present = set(frame.collect_schema().names())
    return [k for k in keys if k in present]


def sorted_table(frame: pl.LazyFrame, name: str) -> pl.LazyFrame:
    """``frame`` in the stage format's deterministic row order (nulls last)."""
    keys = sort_keys(frame, name)
    if not keys:
        return frame
    return frame.sort(keys, nulls_last=True, maintain_order=True)


def lit_str(value: str | None) -> pl.Expr:
    """A String literal (typed even when ``None``)."""
    return pl.lit(value, dtype=pl.String)


def short(expr: pl.Expr, limit: int = 80) -> pl.Expr:
    """At most ``limit`` characters of ``expr``, with an ellipsis when cut (for details)."""
    return (
        pl.when(expr.str.len_chars() > limit)
        .then(pl.concat_str(expr.str.slice(0, limit), pl.lit("…")))
        .otherwise(expr)
    )


def missing_inputs(inputs: Mapping[str, object]) -> list[str]:
    """Names of the tables this migration reads that ``inputs`` lacks (for the report)."""
    return [name for name in INPUTS if name not in inputs]

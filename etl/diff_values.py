"""How ``etl diff`` compares values across two stages and shows them to people.

Comparison happens in Polars (``eq_missing``: null equals null, NaN equals
NaN, lists and structs by value); this module only decides the type both
sides are compared in when A and B disagree on a column's type, and how a
cell is shortened for the samples printed and put in ``--json``.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import polars as pl


def common_dtype(a: pl.DataType, b: pl.DataType) -> pl.DataType | None:
    """The type both sides' values compare in, or None when there is none."""
    if a == b:
        return a
    if a.is_numeric() and b.is_numeric():
        return pl.Float64()
    if isinstance(a, pl.Datetime) and isinstance(b, pl.Datetime):
        # Naive and zoned timestamps name different things: no common type.
        if (a.time_zone is None) != (b.time_zone is None):
            return None
        return pl.Datetime("ns", "UTC" if a.time_zone else None)
    textual = (pl.String, pl.Categorical, pl.Enum)
    if isinstance(a, textual) and isinstance(b, textual):
        return pl.String()
    if isinstance(a, pl.List) and isinstance(b, pl.List):
        inner = common_dtype(_instance(a.inner), _instance(b.inner))
        return pl.List(inner) if inner is not None else None
    return None


def _instance(dtype: Any) -> pl.DataType:
    """``pl.Int64`` and ``pl.Int64()`` both occur as inner types; compare instances."""
    return dtype() if isinstance(dtype, type) else dtype  # type: ignore[no-any-return]


def preview(value: Any, *, width: int = 48, items: int = 5) -> Any:
    """A JSON-friendly, shortened copy of a cell for samples (the --out files keep it all)."""
    if isinstance(value, str):
        return value if len(value) <= width else value[: width - 1] + "…"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # NaN and ±inf are not JSON
    if isinstance(value, list | tuple):
        shown = [preview(v, width=width, items=items) for v in value[:items]]
        return [*shown, f"…(+{len(value) - items})"] if len(value) > items else shown
    if isinstance(value, dict):
        return {k: preview(v, width=width, items=items) for k, v in value.items()}
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta | Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value[: width // 2].hex() + ("…" if len(value) > width // 2 else "")
    return value

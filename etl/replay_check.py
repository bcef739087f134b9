"""Before anything is written: can every value of a stage be written back exactly?

``etl restore --replace`` wipes a database and then replays a backup into it;
a value the replay cannot rebuild, met halfway, would leave the database
wiped and half restored. ``check_replay`` therefore walks the whole stage
first, with the very encoders the replay uses (``etl.graph.params``):

1. every table's columns must have a plan (a Neo4j type the loader rebuilds);
2. every value of the columns that are more than plain values (tagged JSON,
   DateTimes, Times) is encoded as the load would encode it;
3. with a server at hand, the Cypher that rebuilds those values runs on it
   in a *read* transaction (nothing is written): every tagged value, and the
   first batch of each DateTime column (its zone). A value the server refuses
   is found by bisection and named.

The offline import sends these same columns through the same encoders (its
residual fix-up), so one check covers both paths. The first problem stops
the check with a ``StageError`` naming the table, the row (key values or
element id), the property and the value.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from etl.errors import EtlError, StageError
from etl.graph.params import ColumnPlan, encode_column, plan_columns, rebuild_error
from etl.load_input import StageInput, TableInfo, batches
from etl.load_steps import property_columns

CHECK_BATCH = 5_000
#: Column kinds whose values can fail to be rebuilt (the others are plain Arrow values).
_CHECKED = ("tagged", "datetime", "time")


@dataclass
class CheckSummary:
    tables: int = 0
    columns: int = 0
    values: int = 0
    on_server: int = 0

    def describe(self) -> str:
        server = (
            f", {self.on_server:,} of them rebuilt by the server in read-only queries"
            if self.on_server
            else ""
        )
        return (
            f"checked {self.tables:,} tables: {self.values:,} values in {self.columns:,} "
            f"typed or mixed-type columns encode as the replay writes them{server}"
        )


def _identity(table: TableInfo, batch: pa.Table, offset: int, row: int) -> str:
    cols = [c for c in table.key if c in batch.column_names] or ["_element_id"]
    parts = [f"{c} {batch.column(c)[row].as_py()!r}" for c in cols if c in batch.column_names]
    return f"{table.stem} row {offset + row:,}" + (f" ({', '.join(parts)})" if parts else "")


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 160 else text[:159] + "…"


def _refuse(table: TableInfo, batch: pa.Table, offset: int, row: int, plan: ColumnPlan,
            why: str) -> StageError:  # fmt: skip
    value = batch.column(plan.column)[row].as_py()
    where = _identity(table, batch, offset, row)
    return StageError(
        f"{where}: property {plan.prop!r} = {_shown(value)} cannot be written back exactly: {why}",
        hint="nothing was written or wiped; report this value (the export should not produce it)",
    )


def _encode(
    table: TableInfo, batch: pa.Table, offset: int, plans: Sequence[ColumnPlan]
) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for plan in plans:
        column = batch.column(plan.column).combine_chunks()
        try:
            out.update(encode_column(plan, column))
        except (EtlError, ValueError, KeyError, TypeError, json.JSONDecodeError):
            for row in range(batch.num_rows):  # find the value
                try:
                    encode_column(plan, column.slice(row, 1))
                except (EtlError, ValueError, KeyError, TypeError, json.JSONDecodeError) as e:
                    raise _refuse(table, batch, offset, row, plan, str(e)) from None
            raise
    return out


def _server_check(
    driver: Any,
    database: str,
    table: TableInfo,
    batch: pa.Table,
    offset: int,
    plans: Sequence[ColumnPlan],
    params: dict[str, Any],
) -> None:
    n = batch.num_rows
    for plan in plans:
        one = [plan]
        error = rebuild_error(driver, database, one, params, 0, n)
        if error is None:
            continue
        lo, hi = 0, n
        while hi - lo > 1:  # bisect to the first row the server refuses
            mid = (lo + hi) // 2
            if rebuild_error(driver, database, one, params, lo, mid) is not None:
                hi = mid
            else:
                lo = mid
        raise _refuse(table, batch, offset, lo, plan, f"the server refused it ({error})")


def check_table(
    stage: StageInput,
    table: TableInfo,
    summary: CheckSummary,
    *,
    driver: Any = None,
    database: str = "neo4j",
) -> None:
    path = stage.path / table.path
    schema = pq.read_schema(path)
    try:
        plans = plan_columns(
            schema, property_columns(schema), tagged=table.tagged, zone_hints=table.zone_hints
        )
    except StageError as e:
        raise StageError(f"{table.stem}: {e.message}", hint="nothing was written or wiped") from e
    summary.tables += 1
    checked = [p for p in plans if p.kind in _CHECKED]
    if not checked:
        return
    summary.columns += len(checked)
    ident = [c for c in (*table.key, "_element_id") if c in schema.names]
    columns = list(dict.fromkeys(ident + [p.column for p in checked]))
    offset = 0
    for batch in batches(path, CHECK_BATCH, columns=columns):
        params = _encode(table, batch, offset, checked)
        params["n"] = batch.num_rows
        summary.values += sum(batch.num_rows - batch.column(p.column).null_count for p in checked)
        if driver is not None:
            # Every tagged value; a DateTime column's zone is the same in every batch.
            on_server = [p for p in checked if p.kind == "tagged" or offset == 0]
            _server_check(driver, database, table, batch, offset, on_server, params)
            summary.on_server += sum(
                batch.num_rows - batch.column(p.column).null_count for p in on_server
            )
        offset += batch.num_rows


def check_replay(stage: StageInput, *, driver: Any = None, database: str = "neo4j") -> CheckSummary:
    """Check every node and relationship table of ``stage``; raises on the first problem."""
    summary = CheckSummary()
    for table in stage.tables("node") + stage.tables("relationship"):
        check_table(stage, table, summary, driver=driver, database=database)
    return summary

"""Stage tables as Polars can read them: DateTime columns at a fixed offset, made UTC.

A DateTime column whose every value has one fixed offset is written as
``timestamp[ns, tz=-12:34]`` (docs/STAGE_FORMAT.md "Types"). Polars 1.x knows
whole-hour offsets only (``+01:00`` becomes ``Etc/GMT-1``) and *panics* on any
other (``unable to parse time zone``), before a single row is read. The diff
compares instants, and a column's zone is a property of its schema, so such
a table is read from a copy in the diff's work directory whose offset columns
are relabelled UTC (the same instants; a metadata-only cast, streamed row
group by row group), and the original zones travel in ``TableSide.zones`` so
that a zone that differs between A and B is still reported as a type change.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from etl.diff_model import TablePair, TableSide


def fixed_offsets(schema: pa.Schema) -> dict[str, str]:
    """Columns whose zone is a fixed offset (``+05:30``, ``-12:34``, ``+00:17:30``)."""
    return {
        f.name: str(f.type.tz)
        for f in schema
        if pa.types.is_timestamp(f.type) and f.type.tz and str(f.type.tz)[:1] in "+-"
    }


def _readable(path: Path, work: Path) -> tuple[Path, dict[str, str]]:
    schema = pq.read_schema(path)
    offsets = fixed_offsets(schema)
    if not offsets:
        return path, {}
    work.mkdir(parents=True, exist_ok=True)
    copy = work / (hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16] + ".parquet")
    if not copy.exists():
        target = pa.schema(
            [
                f.with_type(pa.timestamp(f.type.unit, tz="UTC")) if f.name in offsets else f
                for f in schema
            ]
        )
        source = pq.ParquetFile(path, pre_buffer=False)
        with pq.ParquetWriter(copy, target, compression="zstd") as writer:
            for group in range(source.num_row_groups):
                writer.write_table(source.read_row_group(group).cast(target))
    return copy, offsets


def readable_side(side: TableSide | None, work: Path) -> TableSide | None:
    if side is None:
        return None
    paths, zones = [], {}
    for p in side.paths:
        path, offsets = _readable(p, work)
        paths.append(path)
        zones.update(offsets)
    return replace(side, paths=paths, zones=zones) if zones else side


def readable_pairs(pairs: list[TablePair], work: Path) -> list[TablePair]:
    """``pairs`` with every side that Polars cannot open replaced by a readable copy."""
    return [
        replace(p, a=readable_side(p.a, work / "a"), b=readable_side(p.b, work / "b"))
        for p in pairs
    ]

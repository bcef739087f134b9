"""Reading a stage file batch by batch holds about one row group, whatever the file size."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from etl.stage import open_parquet

pytestmark = pytest.mark.unit

GROUPS, ROWS = 40, 2_000


def _file(tmp_path: Path) -> tuple[Path, int]:
    """40 row groups of incompressible strings (~0.25 MiB each on disk)."""
    path = tmp_path / "big.parquet"
    values = [os.urandom(64).hex() for _ in range(GROUPS * ROWS)]
    pq.write_table(pa.table({"v": values}), path, row_group_size=ROWS, compression="zstd")
    return path, path.stat().st_size


def _held_at_end(pf: pq.ParquetFile) -> int:
    """Arrow memory in use when the last batch arrives (earlier batches already dropped)."""
    held = 0
    for batch in pf.iter_batches(batch_size=ROWS):
        held = pa.total_allocated_bytes() - batch.nbytes
        del batch
    return held


def test_open_parquet_does_not_keep_what_it_read(tmp_path: Path) -> None:
    path, size = _file(tmp_path)
    base = pa.total_allocated_bytes()
    held = _held_at_end(open_parquet(path)) - base
    assert held < size / 4, f"{held:,} bytes held reading a {size:,}-byte file"


def test_pyarrow_default_keeps_what_it_read(tmp_path: Path) -> None:
    """Why ``open_parquet`` exists: with ``pre_buffer`` (pyarrow's default) the reader
    holds every row group read so far. If a pyarrow release stops doing that, this
    test fails and the note in ``open_parquet`` can go."""
    path, size = _file(tmp_path)
    base = pa.total_allocated_bytes()
    held = _held_at_end(pq.ParquetFile(path)) - base
    assert held > size / 2, f"{held:,} bytes held reading a {size:,}-byte file"

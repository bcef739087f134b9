"""External merge sort of Arrow record batches, in memory bounded by a constant.

Stage tables are sorted by key (docs/STAGE_FORMAT.md "Determinism"), and a
table may be larger than memory, so neither Python nor the server may hold it
whole (Polars' streaming ``sort`` keeps it all in RAM: 2.3× the data, measured).
``SortedRuns`` buffers incoming batches up to ``run_bytes``, sorts each full
buffer with Arrow and spills it as an Arrow IPC *run*; ``merge`` then streams
the runs back in order, reading each in small chunks. When everything fits in
one buffer no file is written at all.

The merge is vectorised: each step finds the *frontier*, the smallest last row
among the chunks of runs that still have data on disk. Every remaining row
≤ frontier is already in memory (runs are sorted), so those rows are gathered
with one boolean mask per chunk, sorted together and emitted. The order is
Arrow's ``sort_indices`` order (ascending, nulls last, NaN after numbers);
``_le`` mirrors it exactly. Keys end with ``_element_id``, so no two rows tie
and the output does not depend on batch or run boundaries.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

RUN_BYTES = 48 << 20
CHUNK_BYTES = 2 << 20
CHUNK_ROWS = 16_384
FAN_IN = 16


def sort_table(table: pa.Table, keys: Sequence[str]) -> pa.Table:
    """``table`` in stage order: ascending by ``keys``, nulls last."""
    if table.num_rows <= 1:
        return table
    order = pc.sort_indices(table, sort_keys=[(k, "ascending", "at_end") for k in keys])
    return table.take(order)


class SortedRuns:
    """Collects batches; ``merge()`` yields all rows sorted by ``keys`` in bounded memory."""

    def __init__(
        self, schema: pa.Schema, keys: Sequence[str], *, spill_dir: Path, run_bytes: int = RUN_BYTES
    ) -> None:
        self.schema = schema
        self.keys = list(keys)
        self.run_bytes = run_bytes
        self._dir = Path(tempfile.mkdtemp(prefix="sort-", dir=spill_dir))
        self._buffer: list[pa.RecordBatch] = []
        self._buffered = 0
        self._runs: list[Path] = []
        self.rows = 0
        self.spilled_bytes = 0

    def add(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        self._buffer.append(batch)
        self._buffered += batch.nbytes
        self.rows += batch.num_rows
        if self._buffered >= self.run_bytes:
            self._spill()

    def _spill(self) -> None:
        table = sort_table(pa.Table.from_batches(self._buffer, self.schema), self.keys)
        self._buffer, self._buffered = [], 0
        self._runs.append(self._write_run(iter([table])))

    def _write_run(self, tables: Iterator[pa.Table]) -> Path:
        path = self._dir / f"run-{len(list(self._dir.iterdir())):06d}.arrow"
        with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, self.schema) as writer:
            for table in tables:
                for chunk in _chunks(table):
                    writer.write_table(chunk)
        self.spilled_bytes += path.stat().st_size
        return path

    def merge(self) -> Iterator[pa.Table]:
        """All rows in order, as tables of varying size; spill files are removed after."""
        try:
            if not self._runs:
                if self._buffer:
                    table = sort_table(pa.Table.from_batches(self._buffer, self.schema), self.keys)
                    self._buffer = []
                    yield from _chunks(table, rows=8 * CHUNK_ROWS, nbytes=8 * CHUNK_BYTES)
                return
            if self._buffer:
                self._spill()
            runs = self._runs
            # Merge in passes of at most FAN_IN runs so memory stays FAN_IN × CHUNK_BYTES.
            while len(runs) > FAN_IN:
                runs = [
                    self._write_run(_merge_runs(runs[i : i + FAN_IN], self.keys))
                    for i in range(0, len(runs), FAN_IN)
                ]
            yield from _merge_runs(runs, self.keys)
        finally:
            self.close()

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


def _chunks(
    table: pa.Table, *, rows: int = CHUNK_ROWS, nbytes: int = CHUNK_BYTES
) -> Iterator[pa.Table]:
    """Slices of at most ``rows`` rows and about ``nbytes`` bytes (at least one row)."""
    if table.num_rows == 0:
        return
    per_row = max(table.nbytes // table.num_rows, 1)
    step = max(1, min(rows, nbytes // per_row))
    for start in range(0, table.num_rows, step):
        yield table.slice(start, step)


class _Run:
    def __init__(self, path: Path) -> None:
        # Plain reads, not a memory map: mapped pages stay resident and count as RSS
        # until the map closes, which would make memory grow with the table.
        self.reader = ipc.open_file(pa.OSFile(str(path), "rb"))
        self.next_batch = 0
        self.buffer: pa.Table = self.reader.schema.empty_table()

    @property
    def on_disk(self) -> bool:
        return bool(self.next_batch < self.reader.num_record_batches)

    def refill(self) -> None:
        if self.buffer.num_rows == 0 and self.on_disk:
            batch = self.reader.get_batch(self.next_batch)
            self.next_batch += 1
            self.buffer = pa.Table.from_batches([batch]).combine_chunks()


def _merge_runs(paths: Sequence[Path], keys: list[str]) -> Iterator[pa.Table]:
    runs = [_Run(p) for p in paths]
    while True:
        for r in runs:
            r.refill()
        live = [r for r in runs if r.buffer.num_rows]
        if not live:
            return
        bounded = [r for r in live if r.on_disk]
        if not bounded:
            yield sort_table(pa.concat_tables([r.buffer for r in live]), keys)
            for r in live:
                r.buffer = r.buffer.slice(r.buffer.num_rows)
            continue
        lasts = pa.concat_tables([r.buffer.slice(r.buffer.num_rows - 1) for r in bounded])
        first = pc.sort_indices(lasts, sort_keys=[(k, "ascending", "at_end") for k in keys])[
            0
        ].as_py()
        frontier = lasts.slice(first, 1)
        parts = []
        for r in live:
            n = pc.sum(_le(r.buffer, keys, frontier)).as_py() or 0
            if n:
                parts.append(r.buffer.slice(0, n))
                r.buffer = r.buffer.slice(n)
        yield sort_table(pa.concat_tables(parts), keys)


def _le(table: pa.Table, keys: list[str], frontier: pa.Table) -> pa.Array:
    """Row-wise ``row <= frontier`` in stage order (lexicographic, nulls last, NaN before null)."""
    result: pa.Array | None = None
    for key in reversed(keys):
        col = table.column(key).combine_chunks()
        f = frontier.column(key)[0]
        lt, eq = _cmp(col, f)
        # le(keys[i:]) = lt_i or (eq_i and le(keys[i+1:])); the last key decides ties with "<=".
        result = pc.or_(lt, eq) if result is None else pc.or_(lt, pc.and_(eq, result))
    assert result is not None
    return result


def _cmp(col: pa.Array, f: pa.Scalar) -> tuple[pa.Array, pa.Array]:
    valid = pc.is_valid(col)
    if not f.is_valid:
        return valid, pc.invert(valid)
    is_float = pa.types.is_floating(col.type)
    if is_float and f.as_py() != f.as_py():  # frontier is NaN
        nan = pc.fill_null(pc.is_nan(col), False)
        return pc.and_(valid, pc.invert(nan)), nan
    lt = pc.fill_null(pc.less(col, f), False)
    eq = pc.fill_null(pc.equal(col, f), False)
    return lt, eq

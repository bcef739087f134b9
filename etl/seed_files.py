"""CSV input files for ``neo4j-admin database import full`` streamed from the seed generator.

One file per label and per relationship type, written batch by batch (memory:
one batch). Each label is its own integer ID group: a Workflow's ID is its
index in the stream, an Event's its index among all events, a Plan's its
index among plans, an Issue's its creation index (pool Issue ``j`` is ``j``).
So every relationship endpoint is computed, never looked up, and relationships
to Issues attach to the first Issue with the key, as the online seed's links do
(a duplicate Issue's second copy is created after them).

CSV, not Parquet: the importer keeps an empty string ``""`` from CSV but drops it
from Parquet, and a planted invalid ``metadata`` is ``""``. No generated value
holds a line break (JSON escapes them; the corpus has none), so no multi-line
parsing is needed. Times are ISO-8601 in UTC with milliseconds (``2025-03-01T00:00:00.000Z``),
which the importer stores as the same ``DateTime`` that Cypher's
``datetime({epochMillis: …})`` gives the online seed.
"""

from __future__ import annotations

import pickle
import sys
from array import array
from dataclasses import dataclass
from itertools import accumulate, repeat
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl
import pyarrow as pa
import pyarrow.csv as pcsv

from etl.seed_model import Batch, PoolKeys

_ID, _STR, _DOUBLE, _TIME = pa.int64(), pa.string(), pa.float64(), "time"
#: Import file → (label or type, columns as (header, type)); ``:ID(g)``/``:START_ID(g)``… name
#: the label's ID group.
LAYOUT: dict[str, tuple[str, tuple[tuple[str, Any], ...]]] = {
    "nodes-issue": ("Issue", ((":ID(Issue)", _ID), ("repoFullName", _STR),
                              ("number:double", _DOUBLE), ("title", _STR))),
    "nodes-workflow": ("Workflow", ((":ID(Workflow)", _ID), ("id", _STR),
                                    ("created_at:datetime", _TIME), ("metadata", _STR))),
    "nodes-event": ("Event", ((":ID(Event)", _ID), ("id", _STR), ("type", _STR),
                              ("data", _STR), ("timestamp:datetime", _TIME))),
    "nodes-plan": ("Plan", ((":ID(Plan)", _ID), ("id", _STR), ("status", _STR),
                            ("type", _STR), ("createdAt:datetime", _TIME))),
    "rels-belongs": ("BELONGS_TO_WORKFLOW", ((":START_ID(Workflow)", _ID),
                                             (":END_ID(Event)", _ID))),
    "rels-next": ("NEXT_EVENT", ((":START_ID(Event)", _ID), (":END_ID(Event)", _ID))),
    "rels-based": ("BASED_ON_ISSUE", ((":START_ID(Workflow)", _ID), (":END_ID(Issue)", _ID))),
    "rels-part": ("PART_OF", ((":START_ID(Plan)", _ID), (":END_ID(Workflow)", _ID))),
    "rels-generated": ("GENERATED_FROM", ((":START_ID(Plan)", _ID), (":END_ID(Event)", _ID))),
    "rels-has-plan": ("HAS_PLAN", ((":START_ID(Issue)", _ID), (":END_ID(Plan)", _ID))),
}  # fmt: skip
PLAN_TYPE = "issue_resolution"


def _times(ms: pa.Array) -> pa.Array:
    # Polars formats three times faster than pyarrow.compute.strftime (measured).
    stamps = pl.Series(ms).cast(pl.Datetime("ms"))
    return stamps.dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_arrow()


def _ints(values: array[int]) -> pa.Array:
    """An int64 column over the array's own buffer (no copy)."""
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def _strings(values: list[str]) -> tuple[bytes, bytes]:
    """UTF-8 bytes of ``values`` joined, and their int32 Arrow offsets."""
    joined = "".join(values)
    if joined.isascii():  # always, for generated values: a character is a byte
        ends = accumulate(map(len, values), initial=0)
        return joined.encode(), array("i", ends).tobytes()
    encoded = [v.encode() for v in values]
    return b"".join(encoded), array("i", accumulate(map(len, encoded), initial=0)).tobytes()


def _string_array(n: int, data: bytes, offsets: bytes) -> pa.Array:
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _column(values: Any, kind: Any) -> pa.Array:
    if kind == _TIME:
        return _times(values if isinstance(values, pa.Array) else pa.array(values, pa.int64()))
    if isinstance(values, pa.Array):
        return values
    if isinstance(values, array):
        return _ints(values)
    return pa.array(values, kind)


@dataclass
class Packed:
    """A ``Batch`` as the worker process gets it: the event columns are single buffers,
    so that neither side handles two million small strings one by one."""

    workflows: list[dict[str, Any]]
    issues: list[dict[str, Any]]
    late_issues: list[dict[str, Any]]
    events: int
    ids: tuple[bytes, bytes]
    types: list[str]
    data: tuple[bytes, bytes]
    ts: bytes

    @classmethod
    def of(cls, batch: Batch) -> Packed:
        ev = batch.events
        return cls(batch.workflows, batch.issues, batch.late_issues, len(ev.ids),
                   _strings(ev.ids), ev.types, _strings(ev.data),
                   array("q", ev.ts).tobytes())  # fmt: skip

    def event_columns(self, first_id: int) -> list[Any]:
        ts = array("q")
        ts.frombytes(self.ts)
        return [array("q", range(first_id, first_id + self.events)),
                _string_array(self.events, *self.ids), pa.array(self.types, pa.string()),
                _string_array(self.events, *self.data), _ints(ts)]  # fmt: skip


@dataclass
class _File:
    path: Path
    name: str
    columns: tuple[tuple[str, Any], ...]
    writer: pcsv.CSVWriter | None = None
    rows: int = 0

    def write(self, columns: list[Any]) -> None:
        """One value list (or ``array``, or Arrow array) per column of the layout."""
        if not len(columns[0]):
            return
        arrays = [
            _column(values, kind) for (_, kind), values in zip(self.columns, columns, strict=True)
        ]
        table = pa.Table.from_arrays(arrays, names=[header for header, _ in self.columns])
        if self.writer is None:
            self.writer = pcsv.CSVWriter(self.path, table.schema)
        self.writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class ImportWriter:
    """Writes what ``Generator`` streams as import files in ``directory``.

    Call ``pool_issues`` with every list of the pool first, then ``batch`` with
    every batch (``Packed.of(batch)``), then ``close``; ``args()`` names the
    non-empty files for the importer.
    """

    def __init__(self, keys: PoolKeys, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.keys = keys
        self.files = {
            stem: _File(directory / f"{stem}.csv", name, columns)
            for stem, (name, columns) in LAYOUT.items()
        }
        self._issues = self._workflows = self._events = self._plans = 0
        #: Issue ID of each key outside the pool (the first Issue created with it).
        self._fresh: dict[tuple[str, float], int] = {}

    def _issue_id(self, key: list[Any] | tuple[str, float]) -> int:
        repo, number = key
        found = self._fresh.get((repo, number))
        if found is None:
            found = self.keys.index((repo, number))
        if found is None:  # the online seed would leave the link out; the counts would lie
            raise AssertionError(f"no Issue {repo}#{number} for a link")
        return found

    def _write_issues(self, rows: list[dict[str, Any]], *, pool: bool) -> None:
        first = self._issues
        for k, row in enumerate(rows):
            if not pool:
                self._fresh.setdefault((row["repo"], row["number"]), first + k)
        self._issues += len(rows)
        self.files["nodes-issue"].write([
            array("q", range(first, self._issues)),
            [r["repo"] for r in rows],
            [r["number"] for r in rows],
            [r["title"] for r in rows],
        ])  # fmt: skip

    def pool_issues(self, rows: list[dict[str, Any]]) -> None:
        """The next list of pool Issues (their IDs are their pool indexes)."""
        if self._issues + len(rows) > self.keys.pool or self._workflows:
            raise AssertionError("pool Issues come first, all of them")
        self._write_issues(rows, pool=True)

    def batch(self, batch: Packed) -> None:
        """Workflows, events, plans and their relationships; Issues before and after."""
        self._write_issues(batch.issues, pool=False)
        w0, e0, rows = self._workflows, self._events, batch.workflows
        files = self.files
        files["nodes-workflow"].write([
            array("q", range(w0, w0 + len(rows))),
            [r["id"] for r in rows],
            [r["created_at"] for r in rows],
            [r["metadata"] for r in rows],
        ])  # fmt: skip
        files["nodes-event"].write(batch.event_columns(e0))
        belongs, next_from, next_to = array("q"), array("q"), array("q")
        based: tuple[list[int], list[int]] = ([], [])
        plans: list[dict[str, Any]] = []
        plan_links: tuple[list[int], list[int], list[int]] = ([], [], [])  # workflow, event, issue
        for w, row in enumerate(rows, start=w0):
            base = e0 + row["first"]
            belongs.extend(repeat(w, row["count"]))
            if row["count"] > 1:  # a chain, maybe with a fork (see Batch)
                if row["fork"] is not None:
                    next_from.extend(range(base, base + row["fork"]))
                    next_from.append(base + row["fork"] - 1)
                    next_from.extend(range(base + row["fork"] + 1, base + row["count"] - 1))
                else:
                    next_from.extend(range(base, base + row["count"] - 1))
                next_to.extend(range(base + 1, base + row["count"]))
            for key in row["based_on"]:
                based[0].append(w)
                based[1].append(self._issue_id(key))
            if plan := row["plan"]:
                plans.append(plan)
                plan_links[0].append(w)
                plan_links[1].append(base + plan["event"])
                plan_links[2].append(self._issue_id(plan["issue"]))
        p0 = self._plans
        plan_ids = list(range(p0, p0 + len(plans)))
        files["rels-belongs"].write([belongs, array("q", range(e0, e0 + batch.events))])
        files["rels-next"].write([next_from, next_to])
        files["rels-based"].write(list(based))
        files["nodes-plan"].write([
            plan_ids,
            [p["id"] for p in plans],
            [p["status"] for p in plans],
            [PLAN_TYPE] * len(plans),
            [p["createdAt"] for p in plans],
        ])  # fmt: skip
        files["rels-part"].write([plan_ids, plan_links[0]])
        files["rels-generated"].write([plan_ids, plan_links[1]])
        files["rels-has-plan"].write([plan_links[2], plan_ids])
        self._workflows += len(rows)
        self._events += batch.events
        self._plans += len(plans)
        self._write_issues(batch.late_issues, pool=False)

    def close(self) -> None:
        for f in self.files.values():
            f.close()

    def args(self) -> list[str]:
        """The importer's ``--nodes``/``--relationships`` arguments (empty files left out)."""
        return [
            f"--{'nodes' if stem.startswith('nodes') else 'relationships'}={f.name}={f.path}"
            for stem, f in self.files.items()
            if f.rows
        ]

    def counts(self) -> dict[str, int]:
        """Rows written per label and type."""
        return {f.name: f.rows for f in self.files.values() if f.rows}


# ------------------------------------------------- in a worker process
# The generator is single-threaded Python; turning its batches into CSV takes
# about as long again. ``etl.seed_offline`` runs this module as a worker process
# (``python -m etl.seed_files DIR``) so that work happens on another core. The
# protocol, pickles on stdin: ``PoolKeys``, then ``("pool", rows)`` and
# ``("batch", Packed)`` messages, then ``None``; the worker answers with one pickle
# on stdout, ``(importer arguments, rows per label and type)``.


def serve(directory: Path, stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Run the worker's side of the protocol above."""
    writer = ImportWriter(pickle.load(stdin), directory)
    try:
        while (message := pickle.load(stdin)) is not None:
            kind, item = message
            if kind == "pool":
                writer.pool_issues(item)
            else:
                writer.batch(item)
    finally:
        writer.close()
    pickle.dump((writer.args(), writer.counts()), stdout)
    stdout.flush()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), sys.stdin.buffer, sys.stdout.buffer)

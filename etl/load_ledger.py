"""The load ledger: ``<ledger-dir>/ledger.jsonl``, one JSON object per line, append-only.

::

    {"t": "header", "input_manifest_sha256": …, "input": …, "target": …, "database": …,
     "mode": "in-place" | "replay", "batch_size": 5000, "started_at": …}
    {"t": "schema", "items": [...], "created": ["etl_<Label>_id_unique", …]}
    {"t": "batch", "step": "nodes/<Label>", "batch": 0, "first": 0, "rows": 5000,
     "sha256": …, "committed_at": …}
    …
    {"t": "done", "finished_at": …, "counts": {…}}
    {"t": "rolled_back", "at": …}                        (after `etl load --rollback`)

A batch line is appended and fsynced only *after* its transaction committed.
A crash between the two leaves a committed batch without its line; ``--resume``
then writes that batch again, which changes nothing because every write is
idempotent. The opposite (a line for a batch that did not commit) cannot
happen. A torn last line (crash mid-write) is ignored when reading.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from etl.errors import ConfigError, StageError
from etl.stage import now_utc

LEDGER = "ledger.jsonl"


@dataclass
class LedgerState:
    """What a ledger file says: its header, committed batches, how it ended."""

    header: dict[str, Any] | None = None
    batches: dict[tuple[str, int], str] = field(default_factory=dict)
    schema_created: list[str] = field(default_factory=list)
    done: bool = False
    rolled_back: bool = False
    #: the counts per label and type that the finished load left
    done_counts: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        return self.done or self.rolled_back


def read_state(path: Path) -> LedgerState:
    state = LedgerState()
    if not path.is_file():
        return state
    for line in path.read_text("utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line: that batch never counted as committed
        kind = entry.get("t")
        if kind == "header":
            state.header = entry
        elif kind == "batch":
            state.batches[(entry["step"], int(entry["batch"]))] = entry["sha256"]
        elif kind == "schema":
            state.schema_created += list(entry.get("created", []))
        elif kind == "done":
            state.done = True
            state.done_counts = entry.get("counts")
        elif kind == "rolled_back":
            state.rolled_back = True
    return state


class Ledger:
    """An open ledger file; every ``record`` is one fsynced line."""

    def __init__(self, path: Path, state: LedgerState) -> None:
        self.path = path
        self.state = state
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO = path.open("a", encoding="utf-8")

    def record(self, kind: str, **fields: Any) -> None:
        line = json.dumps({"t": kind, **fields}, sort_keys=True, default=str)
        self._file.write(line + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        if kind == "batch":
            self.state.batches[(fields["step"], int(fields["batch"]))] = fields["sha256"]

    def committed(self, step: str, batch: int) -> str | None:
        """The sha256 of a committed batch, or None if it never committed."""
        return self.state.batches.get((step, batch))

    def batch(self, step: str, batch: int, first: int, rows: int, sha256: str) -> None:
        self.record(
            "batch",
            step=step,
            batch=batch,
            first=first,
            rows=rows,
            sha256=sha256,
            committed_at=now_utc(),
        )

    def close(self) -> None:
        self._file.close()


def archive(path: Path) -> Path:
    """Move a finished or discarded ledger aside: ``ledger.<UTC stamp>.jsonl``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"ledger.{stamp}.jsonl")
    os.replace(path, target)
    return target


@dataclass(frozen=True)
class LedgerPlan:
    """What a load will do with the ledger directory (decided before connecting)."""

    state: LedgerState
    resuming: bool
    archive_old: bool
    note: str


def plan_ledger(ledger_dir: Path, *, input_sha: str, resume: bool, restart: bool) -> LedgerPlan:
    """Decide between a fresh ledger, resuming, or refusing; raise with the fix."""
    if resume and restart:
        raise ConfigError("--resume and --restart exclude each other", hint="pass one of them")
    path = ledger_dir / LEDGER
    state = read_state(path)
    if state.header is None:
        note = "nothing to resume; starting a new load" if resume else ""
        return LedgerPlan(LedgerState(), False, path.exists(), note)
    started = state.header.get("started_at", "?")
    if state.finished:
        how = "rolled back" if state.rolled_back else "finished"
        return LedgerPlan(LedgerState(), False, True, f"previous load ({how}) archived")
    if restart:
        return LedgerPlan(LedgerState(), False, True, "unfinished ledger discarded (--restart)")
    if state.header.get("input_manifest_sha256") != input_sha:
        raise StageError(
            f"{path} records an unfinished load of another input "
            f"({state.header.get('input')}, started {started})",
            hint="finish that load (`etl load --in <that stage> --resume`), discard it with "
            "--restart, or use another --ledger-dir",
        )
    if not resume:
        raise StageError(
            f"{path} records an unfinished load of this input (started {started}, "
            f"{len(state.batches):,} batches committed)",
            hint="continue it with `etl load --resume`, or start over with `etl load --restart`",
        )
    return LedgerPlan(state, True, False, f"resuming: {len(state.batches):,} batches committed")


def open_ledger(ledger_dir: Path, plan: LedgerPlan, header: dict[str, Any]) -> Ledger:
    """Archive the old ledger if planned, open the file, write the header if new."""
    path = ledger_dir / LEDGER
    ledger_dir.mkdir(parents=True, exist_ok=True)
    if plan.archive_old and path.exists():
        archive(path)
    ledger = Ledger(path, plan.state)
    if not plan.resuming:
        ledger.record("header", **header)
        ledger.state.header = {"t": "header", **header}
    return ledger


def write_report(ledger_dir: Path, report: dict[str, Any]) -> Path:
    """``report.json`` next to the ledger, written atomically."""
    path = ledger_dir / "report.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n", "utf-8")
    os.replace(tmp, path)
    return path

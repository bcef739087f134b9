"""What `etl load` reads: a verified stage, its lineage, its tables, in batches.

``open_input`` refuses anything that does not verify, before a connection is
even opened: the stage itself (every file's sha256 and row count), and for a
transform stage its lineage, the export named in ``inputs[0]`` (it must exist,
verify, and be byte for byte the export the transform read). That export is
the backup of an in-place load: loading removes legacy properties that only
the export still holds, and ``--rollback`` restores them from it.

Row order is the stage's (sorted by key), so batches are deterministic: the
same stage and batch size always cut the same batches, which is what lets the
ledger name a batch by its index and check it by its sha256.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from etl.errors import StageError, ValidationFailed
from etl.migrations import known_keys
from etl.stage import manifest_sha256, open_parquet, verify_stage

LOADABLE_STAGES = ("transform", "export", "backup")


@dataclass(frozen=True)
class TableInfo:
    """One node or relationship table of the stage, with what loading it needs."""

    path: str
    kind: str
    name: str
    role: str
    rows: int
    key: tuple[str, ...]
    tagged: tuple[str, ...]
    zone_hints: dict[str, str] = field(default_factory=dict)

    @property
    def stem(self) -> str:
        return self.path.removesuffix(".parquet")


@dataclass
class StageInput:
    """A verified stage directory (and, for a transform stage, its verified export)."""

    path: Path
    manifest: dict[str, Any]
    sha256: str
    export_path: Path | None = None
    export_manifest: dict[str, Any] | None = None

    @property
    def stage(self) -> str:
        return str(self.manifest.get("stage"))

    def tables(self, kind: str | None = None) -> list[TableInfo]:
        export_hints = _zone_hints(self.export_manifest)
        out = []
        for t in self.manifest.get("tables", []):
            if kind is not None and t["kind"] != kind:
                continue
            out.append(_table_info(t, export_hints.get(t["path"], {})))
        return out

    def table(self, stem: str) -> TableInfo | None:
        return next((t for t in self.tables() if t.stem == stem), None)

    def export_tables(self) -> list[TableInfo]:
        if self.export_manifest is None:
            return []
        return [_table_info(t, {}) for t in self.export_manifest.get("tables", [])]

    def export_table(self, stem: str) -> TableInfo | None:
        return next((t for t in self.export_tables() if t.stem == stem), None)

    def report(self) -> dict[str, Any]:
        import json

        data: dict[str, Any] = json.loads((self.path / "report.json").read_text("utf-8"))
        return data


def _zone_hints(manifest: dict[str, Any] | None) -> dict[str, dict[str, str]]:
    hints: dict[str, dict[str, str]] = {}
    for t in (manifest or {}).get("tables", []):
        cols = t.get("columns") or {}
        hints[t["path"]] = {c: d["zone"] for c, d in cols.items() if d.get("zone")}
    return hints


def _table_info(t: dict[str, Any], fallback_hints: dict[str, str]) -> TableInfo:
    names = [f["name"] for f in t.get("schema", [])]
    if t["kind"] == "node":
        key = tuple(known_keys().get(t["name"], ())) or tuple(
            k for k in t.get("key") or [] if k in names
        )
        if key == ("_element_id",) or not all(k in names for k in key):
            key = ()
    else:
        key = ()
    own = {c: d["zone"] for c, d in (t.get("columns") or {}).items() if d.get("zone")}
    return TableInfo(
        path=t["path"],
        kind=t["kind"],
        name=t["name"],
        role=t.get("role", "data"),
        rows=int(t["rows"]),
        key=tuple(key),
        tagged=tuple(t.get("tagged_columns") or []),
        zone_hints={**fallback_hints, **own},
    )


def open_input(in_dir: Path, *, export_dir: Path | None = None) -> StageInput:
    """Verify ``in_dir`` (and a transform stage's export); raise ``ValidationFailed`` if not."""
    manifest = verify_stage(in_dir)
    if manifest.get("stage") not in LOADABLE_STAGES:
        raise ValidationFailed(
            f"{in_dir} is a {manifest.get('stage')!r} stage; load reads a transform stage "
            "(or an export/backup to replay into an empty database)",
            hint="pass the transform stage with --in (e.g. data/transform)",
        )
    stage = StageInput(in_dir, manifest, manifest_sha256(in_dir))
    if manifest["stage"] != "transform":
        return stage
    inputs = manifest.get("inputs") or []
    if not inputs:
        raise ValidationFailed(f"{in_dir}: the transform manifest names no input export")
    recorded = inputs[0]
    want = recorded.get("manifest_sha256")
    candidates = _kept([export_dir]) if export_dir else _candidates(in_dir, Path(recorded["path"]))
    present = [p for p in candidates if p.is_dir()]
    if not present:
        raise ValidationFailed(
            f"the export this transform was made from is missing: {recorded['path']}",
            hint="it is the backup of the load; restore it, or pass its location with --export",
        )
    # A later `etl export` keeps an export that an in-place load depends on under a
    # timestamped name (see etl.export): it is found by its identity, not its name.
    found = next((p for p in present if _sha_or_none(p) == want), present[0])
    export_manifest = verify_stage(found)
    actual = manifest_sha256(found)
    if actual != want:
        raise ValidationFailed(
            f"{found} is not the export {in_dir} was transformed from "
            f"(manifest sha256 {actual[:12]}…, lineage says "
            f"{str(want)[:12]}…)",
            hint="load the transform of this export (run `etl transform` again), "
            "or pass the right export with --export",
        )
    stage.export_path, stage.export_manifest = found, export_manifest
    return stage


def _sha_or_none(path: Path) -> str | None:
    try:
        return manifest_sha256(path)
    except (OSError, ValueError):
        return None


def _candidates(in_dir: Path, recorded: Path) -> list[Path]:
    """Where the recorded export may be: as recorded, beside the stage, or kept aside."""
    if recorded.is_absolute():
        return _kept([recorded])
    return _kept([recorded, in_dir.parent / recorded, in_dir.parent / recorded.name])


def _kept(places: list[Path]) -> list[Path]:
    """``places``, then their ``<name>.kept-<stamp>`` siblings, newest first."""
    kept: list[Path] = []
    for place in places:
        if place.parent.is_dir():
            kept += sorted(place.parent.glob(f"{place.name}.kept-*"), reverse=True)
    return places + [k for k in kept if k.is_dir()]


# ------------------------------------------------------------------ reading


def read_columns(stage_dir: Path, table: TableInfo, columns: list[str]) -> pl.DataFrame:
    """Some columns of a whole table (for the small pre-passes: keys, flags)."""
    schema = pq.read_schema(stage_dir / table.path)
    present = [c for c in columns if c in schema.names]
    frame = pl.from_arrow(pq.read_table(stage_dir / table.path, columns=present))
    assert isinstance(frame, pl.DataFrame)
    return frame


def batches(
    path: Path,
    batch_size: int,
    *,
    columns: list[str] | None = None,
    keep: pa.Array | None = None,
) -> Iterator[pa.Table]:
    """Consecutive slices of ``batch_size`` rows (the last may be shorter).

    ``keep`` (a boolean mask over the whole table) drops rows first; slices
    are cut from the rows kept, so the cut depends only on data and mask.
    """
    pf = open_parquet(path)
    pending: list[pa.Table] = []
    pending_rows = 0
    offset = 0
    for rb in pf.iter_batches(batch_size=max(batch_size, 1024), columns=columns):
        chunk = pa.Table.from_batches([rb])
        if keep is not None:
            chunk = chunk.filter(keep.slice(offset, rb.num_rows))
        offset += rb.num_rows
        if chunk.num_rows:
            pending.append(chunk)
            pending_rows += chunk.num_rows
        while pending_rows >= batch_size:
            table = pa.concat_tables(pending)
            yield table.slice(0, batch_size)
            rest = table.slice(batch_size)
            pending, pending_rows = ([rest], rest.num_rows) if rest.num_rows else ([], 0)
    if pending_rows:
        yield pa.concat_tables(pending)


def duplicated(
    path: Path,
    columns: list[str],
    identity: Callable[[pl.DataFrame], pl.DataFrame],
    *,
    also: Callable[[pl.DataFrame], pl.Series] | None = None,
    chunk: int = 65_536,
) -> pl.Series:
    """Boolean per row of the file: does another row have the same ``identity``? (or ``also``)

    Memory stays flat whatever the table size: each chunk is reduced to one
    64-bit hash per row (8 bytes), and only the hashes are compared. Two
    different identities sharing a hash (odds about n²/2⁶⁴) make both rows
    look duplicated; callers treat a duplicate in a way that stays correct
    for a unique row, only slower.
    """
    hashes, extra = [], []
    for rb in open_parquet(path).iter_batches(batch_size=chunk, columns=columns):
        frame = pl.from_arrow(rb)
        assert isinstance(frame, pl.DataFrame)
        hashes.append(identity(frame).hash_rows(seed=0, seed_1=1, seed_2=2, seed_3=3))
        if also is not None:
            extra.append(also(frame))
    if not hashes:
        return pl.Series([], dtype=pl.Boolean)
    mask = pl.concat(hashes).is_duplicated()
    return mask | pl.concat(extra) if extra else mask


def batch_digest(table: pa.Table) -> str:
    """sha256 of a batch's rows (Arrow IPC of its columns): the ledger's check on resume."""
    sink = pa.BufferOutputStream()
    combined = table.combine_chunks()
    with pa.ipc.new_stream(sink, combined.schema) as writer:
        writer.write_table(combined)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def count_true(mask: pa.Array | None) -> int:
    return 0 if mask is None else int(pc.sum(mask).as_py() or 0)


def stage_error_for(step: str, batch: int, error: Exception) -> StageError:
    """A failed batch as the error a person reads: which step, which batch, what to do."""
    return StageError(
        f"{step}, batch {batch}: {error}",
        hint="nothing of this batch was written; fix the cause and run `etl load --resume`",
    )

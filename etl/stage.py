"""Stage directories: atomic writes, deterministic Parquet, manifests and verification.

A stage directory is complete when, and only when, its ``manifest.json``
exists; it is built under a temporary sibling name and renamed into place.
See docs/STAGE_FORMAT.md for the contract.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from etl import __version__
from etl.errors import StageError, ValidationFailed
from etl.pids import pid_alive

FORMAT = "neo4j-etl-stage"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
REPORT = "report.json"
ROW_GROUP_SIZE = 65_536

ROW_GROUP_BYTES = 64 << 20

# Fixed writer settings: together with sorted rows they make output byte-identical.
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "write_statistics": True,
    "use_dictionary": True,
    "data_page_version": "2.0",
    "store_schema": True,
}


def sha256_file(path: Path, *, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def open_parquet(path: Path) -> pq.ParquetFile:
    """A Parquet file to read batch by batch, with memory that stays one row group.

    pyarrow's default ``pre_buffer=True`` keeps what it read for every row group
    until the file is closed: iterating the 658 MiB Event file of a 400k-workflow
    export ended holding 688 MiB of Arrow memory (RSS 921 MiB), against 36 MiB
    (RSS 297 MiB, and faster) without it.
    """
    return pq.ParquetFile(path, pre_buffer=False)


def manifest_sha256(stage_dir: Path) -> str:
    """Identity of a stage: the hash of its manifest (which hashes every file)."""
    return sha256_file(stage_dir / MANIFEST)


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


#: Headroom over a size estimate: a quarter of it, at least 1 MiB and at most 64 MiB.
HEADROOM_SHARE, HEADROOM_MIN, HEADROOM_MAX = 0.25, 1 << 20, 64 << 20


def with_headroom(estimate: int) -> int:
    """``estimate`` bytes plus room for what estimates miss (manifest, footers, temporary files).

    Proportional, so a small stage needs little more than itself: a fixed 64 MiB floor
    once refused a 6 MiB export on a disk with 30 MiB free.
    """
    share = int(max(estimate, 0) * HEADROOM_SHARE)
    return max(estimate, 0) + min(max(share, HEADROOM_MIN), HEADROOM_MAX)


def ensure_free_space(path: Path, needed_bytes: int, *, what: str) -> None:
    """Refuse early, with a clear message, when the disk cannot hold a stage.

    ``needed_bytes`` is what the stage needs, headroom included (``with_headroom``).
    """
    probe = path
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed_bytes:
        raise StageError(
            f"not enough disk space for {what}: about {needed_bytes / 2**20:,.0f} MiB needed, "
            f"{free / 2**20:,.0f} MiB free on the filesystem of {probe}",
            hint="free some space, or write elsewhere with --out",
        )


@dataclass
class TableEntry:
    path: str
    kind: str
    name: str
    role: str = "data"
    key: list[str] = field(default_factory=list)
    tagged_columns: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


class TableWriter:
    """Appends rows to one Parquet file in row groups that depend only on the rows.

    Row-group boundaries are part of the bytes, so they must not follow the
    caller's batch sizes: rows are buffered and cut every ``ROW_GROUP_SIZE``
    rows, or earlier where the rows so far in the group reach
    ``ROW_GROUP_BYTES`` by a deterministic per-row size (lengths of strings,
    binaries and lists, plus 8 bytes per other column). The cut keeps memory
    bounded when values are large (megabyte strings) without making the file
    depend on how the rows arrived.
    """

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.schema = schema
        self.rows = 0
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._pending_weight = 0
        self._writer = pq.ParquetWriter(path, schema, **PARQUET_OPTIONS)

    def write(self, data: pa.RecordBatch | pa.Table) -> None:
        if data.num_rows == 0:
            return
        table = data if isinstance(data, pa.Table) else pa.Table.from_batches([data])
        table = table.cast(self.schema)
        weights = row_weights(table)
        start = 0
        cumulative = pc.cumulative_sum(weights) if len(weights) else weights
        while start < table.num_rows:
            room_rows = ROW_GROUP_SIZE - self._pending_rows
            base = 0 if start == 0 else cumulative[start - 1].as_py()
            # Rows fit while the group's weight stays under the cap (one row always fits).
            limit = ROW_GROUP_BYTES - self._pending_weight + base
            fit = int(pc.sum(pc.less_equal(cumulative.slice(start), limit)).as_py() or 0)
            take = max(1 if self._pending_rows == 0 else 0, min(room_rows, fit))
            if take:
                self._pending.append(table.slice(start, take))
                self._pending_rows += take
                self._pending_weight += cumulative[start + take - 1].as_py() - base
                start += take
            group_full = self._pending_rows >= ROW_GROUP_SIZE
            if group_full or (take < room_rows and start < table.num_rows):
                self._flush()

    def _flush(self) -> None:
        if not self._pending_rows:
            return
        group = pa.concat_tables(self._pending).combine_chunks()
        self._writer.write_table(group, row_group_size=group.num_rows)
        self.rows += group.num_rows
        self._pending, self._pending_rows, self._pending_weight = [], 0, 0

    def close(self) -> None:
        self._flush()
        self._writer.close()


def row_weights(table: pa.Table) -> pa.Array:
    """A deterministic size per row: byte lengths of variable-width values, 8 per other cell."""
    total = pa.array([8 * table.num_columns] * table.num_rows, pa.int64())
    for col in table.columns:
        t = col.type
        if (
            pa.types.is_string(t)
            or pa.types.is_large_string(t)
            or pa.types.is_binary(t)
            or (pa.types.is_large_binary(t))
        ):
            size = pc.binary_length(col)
        elif pa.types.is_list(t) or pa.types.is_large_list(t):
            size = pc.multiply(pc.list_value_length(col), 8)
        else:
            continue
        total = pc.add(total, pc.fill_null(size.cast(pa.int64()), 0))
    return total.combine_chunks() if isinstance(total, pa.ChunkedArray) else total


class StageWriter:
    """Builds a stage directory under a temporary name; ``commit()`` renames it into place.

    Use as a context manager: leaving the block with an exception removes the
    temporary directory, so an interrupted stage leaves nothing that looks valid.
    """

    def __init__(self, target: Path, *, stage: str) -> None:
        self.target = target.resolve()
        self.stage = stage
        self.target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_leftovers(self.target)
        self.tmp = Path(
            tempfile.mkdtemp(prefix=temp_prefix(self.target, "tmp"), dir=self.target.parent)
        )
        self.tables: list[TableEntry] = []
        self.source: dict[str, Any] = {}
        self.inputs: list[dict[str, Any]] = []
        self.migration: dict[str, Any] | None = None
        self.report: dict[str, Any] = {}
        self.notes: list[str] = []
        self._committed = False

    def __enter__(self) -> StageWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._committed:
            shutil.rmtree(self.tmp, ignore_errors=True)

    @contextmanager
    def open_table(self, entry: TableEntry, schema: pa.Schema) -> Iterator[TableWriter]:
        writer = TableWriter(self.tmp / entry.path, schema)
        try:
            yield writer
        finally:
            writer.close()
        self.tables.append(entry)

    def write_table(self, entry: TableEntry, table: pa.Table) -> None:
        with self.open_table(entry, table.schema) as w:
            w.write(table)

    def add_input(self, stage_dir: Path) -> None:
        manifest = read_manifest(stage_dir)
        self.inputs.append(
            {
                "stage": manifest["stage"],
                "path": str(stage_dir),
                "manifest_sha256": manifest_sha256(stage_dir),
            }
        )

    def commit(self) -> Path:
        """Hash every file, write report and manifest, then rename into place."""
        files = []
        for entry in sorted(self.tables, key=lambda e: e.path):
            path = self.tmp / entry.path
            meta = pq.read_metadata(path)
            files.append(
                {
                    "path": entry.path,
                    "kind": entry.kind,
                    "name": entry.name,
                    "role": entry.role,
                    "key": entry.key,
                    "rows": meta.num_rows,
                    "bytes": path.stat().st_size,
                    "sha256": sha256_file(path),
                    "schema": schema_to_json(meta.schema.to_arrow_schema()),
                    "tagged_columns": entry.tagged_columns,
                    **entry.extra,
                }
            )
        _write_json(self.tmp / REPORT, self.report)
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "stage": self.stage,
            "created_at": now_utc(),
            "tool_version": __version__,
            "source": self.source,
            "inputs": self.inputs,
            "tables": files,
            "report_sha256": sha256_file(self.tmp / REPORT),
            "notes": self.notes,
        }
        if self.migration is not None:
            manifest["migration"] = self.migration
        manifest["manifest_sha256"] = manifest_digest(manifest)
        _write_json(self.tmp / MANIFEST, manifest)
        _fsync_dir(self.tmp)
        old: Path | None = None
        if self.target.exists():
            old = self.target.with_name(
                f"{self.target.name}.old-{datetime.now(UTC):%Y%m%d%H%M%S%f}"
            )
            os.replace(self.target, old)
        os.replace(self.tmp, self.target)
        _fsync_dir(self.target.parent)
        self._committed = True
        # Every older copy is superseded now, also one a crash between the two renames left.
        for superseded in self.target.parent.glob(f"{glob.escape(self.target.name)}.old-*"):
            shutil.rmtree(superseded, ignore_errors=True)
        return self.target


def table_file_name(name: str) -> str:
    """A label or type as one safe file name: ``/``, ``\\``, ``%``, NUL and a leading ``.``
    are %-escaped, so no name can reach outside its folder (the manifest keeps the name)."""
    out = "".join(f"%{ord(c):02X}" if c in "/\\%\x00" else c for c in name)
    return "%2E" + out[1:] if out.startswith(".") else out


def temp_prefix(target: Path, kind: str) -> str:
    """``<stage>.<kind>-<pid>-``: a sibling's owner can be told alive or gone."""
    return f"{target.name}.{kind}-{os.getpid()}-"


def remove_stale_leftovers(target: Path) -> list[Path]:
    """Remove ``<stage>.tmp-<pid>-*`` and ``.spill-<pid>-*`` siblings of dead processes.

    A killed stage (SIGKILL, power cut) cannot clean up after itself; the next
    run for the same target does. Directories of a live process are left alone.
    """
    removed = []
    name = glob.escape(target.name)
    for kind in ("tmp", "spill"):
        for path in target.parent.glob(f"{name}.{kind}-*"):
            pid = path.name[len(target.name) + len(kind) + 2 :].split("-", 1)[0]
            if pid.isdigit() and not pid_alive(int(pid)) and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


def manifest_digest(manifest: Mapping[str, Any]) -> str:
    """sha256 of the manifest's canonical JSON without this field: catches hand edits."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def schema_to_json(schema: pa.Schema) -> list[dict[str, Any]]:
    return [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]


def _write_json(path: Path, data: Mapping[str, Any] | list[Any]) -> None:
    with path.open("w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True, ensure_ascii=False, default=str)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class StageMissing(ValidationFailed):
    """A stage directory that does not exist (exit 3, like any stage that does not verify).

    ``previous`` is the copy an interrupted replacement left, if any. The library
    cannot know which command the user should run; the CLI names it (``etl.cli``).
    """

    def __init__(self, path: Path, *, previous: Path | None = None) -> None:
        hint = (
            f"a stage was interrupted while replacing it; the previous copy is {previous} "
            "(rename it back, or run the stage again)"
            if previous
            else "run the stage that writes it first (`etl export`, `etl transform` or "
            "`etl backup`)"
        )
        super().__init__(f"{path} is not a stage directory (it does not exist)", hint=hint)
        self.path, self.previous = path, previous


def read_manifest(stage_dir: Path) -> dict[str, Any]:
    path = stage_dir / MANIFEST
    if not stage_dir.is_dir():
        olds = sorted(stage_dir.parent.glob(f"{glob.escape(stage_dir.name)}.old-*"))
        raise StageMissing(stage_dir, previous=olds[-1] if olds else None)
    if not path.is_file():
        raise ValidationFailed(
            f"{stage_dir} has no {MANIFEST}: it is not a complete stage directory",
            hint="an interrupted stage leaves no manifest; run that stage again",
        )
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValidationFailed(f"{path}: unreadable manifest ({e})") from None
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise ValidationFailed(
            f"{path}: not a {FORMAT} v{FORMAT_VERSION} manifest "
            f"(format={manifest.get('format')!r}, version={manifest.get('format_version')!r})"
        )
    return manifest


def verify_stage(stage_dir: Path, *, expect_stage: str | None = None) -> dict[str, Any]:
    """Check every file against the manifest; raise ``ValidationFailed`` listing each problem.

    Checks: manifest readable and unedited (its own sha256); stage kind; no
    missing, extra, resized, altered (sha256) or unreadable file; row counts
    and schemas as recorded; report hash.
    """
    manifest = read_manifest(stage_dir)
    problems: list[str] = []
    if expect_stage is not None and manifest.get("stage") != expect_stage:
        problems.append(
            f"{MANIFEST}: stage is {manifest.get('stage')!r}, expected {expect_stage!r}"
        )
    recorded = manifest.get("manifest_sha256")
    if recorded is None:
        # Every manifest this tool writes carries it: its absence hides an edit.
        problems.append(f"{MANIFEST}: has no manifest_sha256 (edited, or not written by etl)")
    elif recorded != manifest_digest(manifest):
        problems.append(f"{MANIFEST}: edited after it was written (its own sha256 differs)")
    listed = {t["path"] for t in manifest.get("tables", [])}
    for t in manifest.get("tables", []):
        path = stage_dir / t["path"]
        if not path.is_file():
            problems.append(f"{t['path']}: missing")
            continue
        size = path.stat().st_size
        if size != t["bytes"]:
            problems.append(f"{t['path']}: size {size} bytes, manifest says {t['bytes']}")
            continue
        if sha256_file(path) != t["sha256"]:
            problems.append(f"{t['path']}: sha256 differs from the manifest (file altered)")
            continue
        try:
            meta = pq.read_metadata(path)
        except Exception as e:  # pyarrow raises several types for corrupt files
            problems.append(f"{t['path']}: unreadable Parquet ({e})")
            continue
        if meta.num_rows != t["rows"]:
            problems.append(f"{t['path']}: {meta.num_rows} rows, manifest says {t['rows']}")
        if schema_to_json(meta.schema.to_arrow_schema()) != t["schema"]:
            problems.append(f"{t['path']}: Arrow schema differs from the manifest")
    for path in sorted(stage_dir.rglob("*")):
        rel = path.relative_to(stage_dir).as_posix()
        if path.is_file() and rel not in listed and rel not in (MANIFEST, REPORT):
            problems.append(f"{rel}: extra file not listed in the manifest")
    report = stage_dir / REPORT
    if not report.is_file():
        problems.append(f"{REPORT}: missing")
    elif manifest.get("report_sha256") and sha256_file(report) != manifest["report_sha256"]:
        problems.append(f"{REPORT}: sha256 differs from the manifest (file altered)")
    if problems:
        raise ValidationFailed(
            f"stage directory {stage_dir} failed verification",
            problems=problems,
            hint="re-create it by running its stage again, or restore it from a backup",
        )
    return manifest


def table_entry(manifest: Mapping[str, Any], path: str) -> dict[str, Any] | None:
    for t in manifest.get("tables", []):
        if t["path"] == path:
            return dict(t)
    return None


def read_report(stage_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((stage_dir / REPORT).read_text(encoding="utf-8"))
    return data

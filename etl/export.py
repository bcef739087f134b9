"""The export stage: stream a Neo4j graph into a checksummed Parquet stage directory.

``run_export`` reads every exported label and relationship type through
``etl.graph.read.GraphReader`` (the only place that speaks Bolt), sorts each
table by key with ``etl.extsort`` in bounded memory, and writes it through
``etl.stage.StageWriter``, which renames the directory into place only when
every file and the manifest are complete. ``run_backup`` is an ``--all``
export into ``backups/<YYYYMMDD_HHMMSS>/``; ``list_backups`` verifies them.

Memory is bounded by the batch size and the sort's run size, never by the
graph: see docs/STAGE_FORMAT.md "How the export reads".
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from etl.errors import ConfigError, StageError, ValidationFailed
from etl.export_labels import history_entry, keep_what_a_load_needs, wanted_labels
from etl.extsort import SortedRuns
from etl.graph.connection import open_driver
from etl.graph.fetch import IdPrefixes
from etl.graph.read import GraphReader, TablePlan, label_priority
from etl.migrations import known_keys
from etl.progress import NullReporter, Reporter
from etl.settings import Settings
from etl.stage import (
    StageWriter,
    TableEntry,
    ensure_free_space,
    read_manifest,
    table_file_name,
    temp_prefix,
    verify_stage,
    with_headroom,
)

DEFAULT_BATCH_SIZE = 20_000
#: Up-front space estimate per entity before anything is measured (Parquet + sort spill).
BYTES_PER_ENTITY_GUESS = 160
_SORTABLE_TYPES = (
    pa.types.is_string,
    pa.types.is_integer,
    pa.types.is_floating,
    pa.types.is_boolean,
    pa.types.is_date,
    pa.types.is_timestamp,
    pa.types.is_time,
    pa.types.is_large_string,
)


@dataclass(frozen=True)
class ExportResult:
    out_dir: Path
    report: dict[str, Any]


def run_export(
    settings: Settings,
    *,
    out_dir: Path,
    labels: list[str] | None = None,
    all_labels: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    allow_concurrent_writes: bool = False,
    reporter: Reporter | None = None,
    stage: str = "export",
) -> ExportResult:
    """Export ``labels`` (default: the migration's) or every label, atomically, into ``out_dir``.

    Relationship types are those with both endpoints exported. Raises
    ``StageError`` when the counts per label/type differ at the end from the
    start ("graph changed under the export"), unless ``allow_concurrent_writes``.
    """
    if labels and all_labels:
        raise ConfigError("--labels and --all exclude each other", hint="pass one of them")
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be positive, got {batch_size}")
    reporter = reporter or NullReporter()
    started = time.perf_counter()
    with open_driver(settings) as driver:
        reader = GraphReader(driver, settings)
        source = reader.source()
        before = reader.counts()
        prefixes = reader.id_prefixes()
        history = reader.history()
        wanted = wanted_labels(before, labels, all_labels=all_labels, stage=stage)
        priority = label_priority(wanted)
        types = _relationship_types(reader, before, priority, all_labels=all_labels)
        entities = sum(before["labels"].get(lab, 0) for lab in wanted) + sum(
            before["types"].get(t, 0) for t in types
        )
        ensure_free_space(
            out_dir.parent,
            with_headroom(entities * BYTES_PER_ENTITY_GUESS),
            what=f"the {stage} of {entities:,} nodes and relationships",
        )
        report: dict[str, Any] = {"tables": {}, "batch_size": batch_size}
        with StageWriter(out_dir, stage=stage) as writer:
            spill = Path(
                tempfile.mkdtemp(
                    prefix=temp_prefix(writer.target, "spill"), dir=writer.target.parent
                )
            )
            try:
                node_plans: dict[str, TablePlan] = {}
                for label in priority:
                    plan = reader.plan_nodes(label, priority)
                    node_plans[label] = plan
                    _export_table(
                        reader, prefixes, writer, plan, spill, batch_size, reporter, report
                    )
                for rel_type in types:
                    plan = reader.plan_relationships(rel_type, priority, node_plans)
                    _export_table(
                        reader, prefixes, writer, plan, spill, batch_size, reporter, report
                    )
            finally:
                shutil.rmtree(spill, ignore_errors=True)
            after = reader.counts()
            changed = _count_changes(before, after, priority, types)
            if changed and not allow_concurrent_writes:
                raise StageError(
                    "graph changed under the export: " + "; ".join(changed),
                    hint="export a quiet database, or pass --allow-concurrent-writes to keep "
                    "a stage that is not a consistent snapshot",
                )
            writer.source = {
                **source,
                "counts_before": before,
                "counts_after": after,
                "labels": priority,
                "relationship_types": types,
                "all": all_labels,
                "concurrent_changes": changed,
                "history": [history_entry(h) for h in history],
            }
            elapsed = time.perf_counter() - started
            rows = sum(t["rows"] for t in report["tables"].values())
            report.update(
                stage=stage,
                rows=rows,
                seconds=round(elapsed, 3),
                rows_per_s=round(rows / elapsed) if elapsed > 0 else None,
                source=writer.source,
            )
            writer.report = report
            # Read again: a load that started during the export must be seen.
            kept = keep_what_a_load_needs(out_dir, reader.history(), source, priority)
            if kept is not None:
                report["kept_previous"] = str(kept)
                reporter.info(
                    f"kept the previous {out_dir} as {kept}: it may be a load's backup "
                    "(`etl load --resume` and `--rollback` find it there by its hash)"
                )
            target = writer.commit()
    report["bytes"] = sum(int(t["bytes"]) for t in read_manifest(target)["tables"])
    report["out_dir"] = str(target)
    return ExportResult(out_dir=target, report=report)


def _relationship_types(
    reader: GraphReader, counts: dict[str, dict[str, int]], priority: list[str], *, all_labels: bool
) -> list[str]:
    """Every type with rows (``--all``), else those with an exported label on both sides."""
    types = sorted(counts["types"])
    if all_labels:
        return types
    keep = []
    for t in types:
        sides = reader.type_label_counts(t, priority)
        if any(s for s, _ in sides.values()) and any(e for _, e in sides.values()):
            keep.append(t)
    return keep


def _count_changes(
    before: dict[str, dict[str, int]],
    after: dict[str, dict[str, int]],
    labels: list[str],
    types: list[str],
) -> list[str]:
    changes = []
    for group, names in (("labels", labels), ("types", types)):
        for name in names:
            a, b = before[group].get(name, 0), after[group].get(name, 0)
            if a != b:
                changes.append(f"{name}: {a:,} → {b:,}")
    return changes


def _export_table(
    reader: GraphReader,
    prefixes: IdPrefixes,
    writer: StageWriter,
    plan: TablePlan,
    spill: Path,
    batch_size: int,
    reporter: Reporter,
    report: dict[str, Any],
) -> None:
    folder = "nodes" if plan.kind == "node" else "relationships"
    path = f"{folder}/{table_file_name(plan.name)}.parquet"
    schema = plan.schema()
    keys = [
        k for k in plan.sort_keys() if any(test(schema.field(k).type) for test in _SORTABLE_TYPES)
    ]
    started = time.perf_counter()
    runs = SortedRuns(schema, keys, spill_dir=spill)
    try:
        with reporter.task(path, total=plan.count) as task:
            for batch in reader.batches(plan, prefixes, batch_size=batch_size):
                if runs.rows == 0 and batch.num_rows:
                    # The first batch tells the row width: check the disk before going on.
                    per_row = batch.nbytes / batch.num_rows
                    ensure_free_space(
                        spill,
                        with_headroom(int(plan.count * per_row * 1.5)),
                        what=f"{path} (~{plan.count:,} rows)",
                    )
                runs.add(batch)
                task.advance(batch.num_rows)
        key_cols = [k for k in keys if k != "_element_id"]
        stats = _KeyStats(key_cols if plan.kind == "node" else [])
        entry = TableEntry(
            path=path,
            kind=plan.kind,
            name=plan.name,
            key=list(plan.key),
            tagged_columns=[c.name for c in plan.columns if c.tagged],
        )
        with writer.open_table(entry, schema) as table_writer:
            for table in runs.merge():
                stats.add(table)
                table_writer.write(table)
    finally:
        runs.close()
    entry.extra = _manifest_extra(plan, stats)
    if plan.kind == "node" and plan.name not in known_keys() and stats.duplicates:
        entry.key, entry.extra["key_kind"] = ["_element_id"], "element_id"
    elapsed = time.perf_counter() - started
    report["tables"][path] = {
        "rows": table_writer.rows,
        "seconds": round(elapsed, 3),
        "rows_per_s": round(table_writer.rows / elapsed) if elapsed > 0 else None,
        "bytes": table_writer.path.stat().st_size,
        "spilled_bytes": runs.spilled_bytes,
        **({"source_count": plan.count} if plan.count != table_writer.rows else {}),
    }


def _manifest_extra(plan: TablePlan, stats: _KeyStats) -> dict[str, Any]:
    columns = {c.name: c.describe() for c in plan.columns}
    for side, keys in (("_start", plan.start_keys), ("_end", plan.end_keys)):
        for spec, labels in keys:
            columns[f"{side}.{spec.name}"] = {**spec.describe(), "labels": labels}
    extra: dict[str, Any] = {
        "columns": columns,
        "key_kind": "property" if plan.key else "element_id",
        "sort": plan.sort_keys(),
    }
    if plan.kind == "node":
        extra.update(duplicate_keys=stats.duplicates, null_keys=stats.nulls)
        if plan.exclude:
            extra["nodes_with_higher_labels_elsewhere"] = plan.exclude
    return extra


class _KeyStats:
    """Counts rows whose key repeats the previous row's, and rows with a null key part."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self.duplicates = 0
        self.nulls = 0
        self._last: pa.Table | None = None

    def add(self, table: pa.Table) -> None:
        if not self.keys or table.num_rows == 0:
            return
        part = table.select(self.keys)
        for k in self.keys:
            self.nulls += part.column(k).null_count
        both = part if self._last is None else pa.concat_tables([self._last, part])
        if both.num_rows > 1:
            same: Any = None
            for k in self.keys:
                col = both.column(k).combine_chunks()
                eq = pc.fill_null(pc.equal(col.slice(1), col.slice(0, len(col) - 1)), False)
                same = eq if same is None else pc.and_(same, eq)
            self.duplicates += int(pc.sum(same).as_py() or 0)
        self._last = part.slice(part.num_rows - 1)


# ---------------------------------------------------------------------- backups


def run_backup(
    settings: Settings,
    *,
    root: Path,
    batch_size: int = DEFAULT_BATCH_SIZE,
    allow_concurrent_writes: bool = False,
    reporter: Reporter | None = None,
) -> ExportResult:
    """``export --all`` into ``root/<YYYYMMDD_HHMMSS>/`` (never over an existing backup)."""
    out = root / datetime.now().strftime("%Y%m%d_%H%M%S")
    if out.exists():
        raise StageError(f"{out} already exists", hint="wait a second and run the backup again")
    return run_export(
        settings,
        out_dir=out,
        all_labels=True,
        batch_size=batch_size,
        allow_concurrent_writes=allow_concurrent_writes,
        reporter=reporter,
        stage="backup",
    )


def list_backups(root: Path) -> list[dict[str, Any]]:
    """Every backup under ``root``: size, counts, and whether its checksums verify."""
    out = []
    # Temporary (".tmp-…") and displaced (".old-…") directories are not backups.
    candidates = sorted(p for p in root.glob("*") if p.is_dir() and "." not in p.name)
    for path in candidates:
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        row: dict[str, Any] = {"path": str(path), "bytes": size, "ok": True, "problems": []}
        try:
            manifest = verify_stage(path)
        except ValidationFailed as e:
            row.update(ok=False, problems=e.problems or [e.message])
            try:
                manifest = read_manifest(path)
            except ValidationFailed:
                manifest = {}
        tables = manifest.get("tables", [])
        row["created_at"] = manifest.get("created_at")
        row["nodes"] = sum(t["rows"] for t in tables if t.get("kind") == "node")
        row["relationships"] = sum(t["rows"] for t in tables if t.get("kind") == "relationship")
        out.append(row)
    return out


def summarize(report: dict[str, Any]) -> str:
    """Tables, rows, bytes and rate, for a person."""
    lines = [f"{'table':<40}{'rows':>12}{'MiB':>9}{'rows/s':>11}"]
    for path, t in sorted(report["tables"].items()):
        rate = f"{t['rows_per_s']:,}" if t.get("rows_per_s") else "-"
        lines.append(f"{path:<40}{t['rows']:>12,}{t['bytes'] / 2**20:>9.1f}{rate:>11}")
    total = report.get("bytes", 0) / 2**20
    lines.append(
        f"{'total':<40}{report['rows']:>12,}{total:>9.1f}{report.get('rows_per_s') or 0:>11,}"
    )
    lines.append(f"→ {report.get('out_dir')} in {report['seconds']:.1f}s")
    return "\n".join(lines)


def describe_backups(rows: list[dict[str, Any]]) -> str:
    """One line per backup: path, size, counts, verified or not."""
    if not rows:
        return "No backups."
    lines = [f"{'backup':<36}{'MiB':>9}{'nodes':>12}{'rels':>12}  checksums"]
    for r in rows:
        state = "ok" if r["ok"] else "FAILED: " + "; ".join(r["problems"][:3])
        lines.append(
            f"{r['path']:<36}{r['bytes'] / 2**20:>9.1f}{r['nodes']:>12,}"
            f"{r['relationships']:>12,}  {state}"
        )
    return "\n".join(lines)

"""The transform stage: verify an export, run a migration, write a transform stage directory.

The migration itself is a pure Polars function (``etl.migrations``); this module
only reads and writes stage directories around it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from etl.errors import StageError, ValidationFailed
from etl.migrations import (
    DEFAULT_MIGRATION,
    MigrationOptions,
    StreamedTable,
    UnknownMigration,
    get_migration,
    known_keys,
    source_checksum,
)
from etl.migrations.figures import SUMMARY, Figure, Row, as_figures
from etl.progress import NullReporter, Reporter
from etl.stage import (
    StageWriter,
    TableEntry,
    ensure_free_space,
    manifest_sha256,
    open_parquet,
    verify_stage,
    with_headroom,
)

#: Stages a transform may read: a migration-scoped export, or a full backup.
INPUT_STAGES = ("export", "backup")
#: Rows per batch when a table is copied from the export (memory, not bytes, depends on it).
STREAM_BATCH_ROWS = 65_536


@dataclass(frozen=True)
class TransformResult:
    out_dir: Path | None
    report: dict[str, Any]


def snapshot_time(manifest: dict[str, Any]) -> datetime:
    """The export's "now": the server time when it started (falls back to manifest time)."""
    raw = (manifest.get("source") or {}).get("snapshot_time") or manifest.get("created_at")
    if not raw:
        raise ValidationFailed("the export manifest has no snapshot time")
    value = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _scan_inputs(in_dir: Path, manifest: dict[str, Any]) -> dict[str, pl.LazyFrame]:
    tables: dict[str, pl.LazyFrame] = {}
    for t in manifest.get("tables", []):
        if t.get("kind") in ("node", "relationship"):
            key = t["path"].removesuffix(".parquet")
            tables[key] = pl.scan_parquet(in_dir / t["path"])
    return tables


def _presorted(manifest: dict[str, Any]) -> dict[str, list[str]]:
    """Each input table's row order as its manifest records it (``sort``)."""
    return {
        t["path"].removesuffix(".parquet"): list(t["sort"])
        for t in manifest.get("tables", [])
        if t.get("kind") in ("node", "relationship") and isinstance(t.get("sort"), list)
    }


def run_transform(
    *,
    in_dir: Path,
    out_dir: Path,
    migration: str = DEFAULT_MIGRATION,
    stale_after: timedelta = timedelta(hours=1),
    infer_type: bool = False,
    dry_run: bool = False,
    reporter: Reporter | None = None,
) -> TransformResult:
    """Verify ``in_dir``, migrate it, and (unless ``dry_run``) write ``out_dir`` atomically."""
    reporter = reporter or NullReporter()
    mig = get_migration(migration)
    manifest = verify_stage(in_dir)
    if manifest.get("stage") not in INPUT_STAGES:
        raise ValidationFailed(
            f"{in_dir} is a {manifest.get('stage')!r} stage; transform reads an export",
            hint="pass the export directory with --in (e.g. data/export)",
        )
    applied = _applied_here(manifest, mig.name)
    if applied is not None:
        return _nothing_to_migrate(in_dir, out_dir, mig.name, applied)
    inputs = _scan_inputs(in_dir, manifest)
    missing = [name for name in mig.required_inputs if name not in inputs]
    if missing:
        raise StageError(
            f"{in_dir} lacks tables the {mig.name!r} migration needs: {', '.join(missing)}",
            hint="re-run `etl export` with the default labels (or --all)",
        )
    options = MigrationOptions(
        snapshot_time=snapshot_time(manifest),
        stale_after=stale_after,
        infer_type=infer_type,
        presorted=_presorted(manifest),
    )
    started = time.perf_counter()
    with reporter.task(f"migrate {mig.name}", total=None):
        result = mig.run(inputs, options)
    migrate_s = time.perf_counter() - started
    rows_in = sum(int(t["rows"]) for t in manifest["tables"])
    report: dict[str, Any] = {
        "migration": mig.name,
        "options": {
            "snapshot_time": options.snapshot_time.isoformat(),
            "stale_after_s": stale_after.total_seconds(),
            "infer_type": infer_type,
        },
        **result.report,
        "tables": {
            **dict(
                sorted(
                    [(k, df.height) for k, df in result.tables.items()]
                    + [(k, s.rows) for k, s in result.streamed.items()]
                )
            ),
            **{k: df.height for k, df in sorted(result.rejected.items())},
        },
        "timings_s": {"migrate": round(migrate_s, 3)},
        "rows_in": rows_in,
        "rows_per_s": round(rows_in / migrate_s) if migrate_s > 0 else None,
    }
    if dry_run:
        return TransformResult(out_dir=None, report=report)
    input_bytes = sum(int(t["bytes"]) for t in manifest["tables"])
    ensure_free_space(out_dir.parent, with_headroom(2 * input_bytes), what="the transform stage")
    write_started = time.perf_counter()
    with StageWriter(out_dir, stage="transform") as writer:
        writer.add_input(in_dir)
        writer.source = dict(manifest.get("source") or {})
        writer.migration = {
            "name": mig.name,
            "version": mig.version,
            "checksum": source_checksum(mig),
            "options": report["options"],
        }
        # Tables held in memory go first, each dropped once written, so the
        # batch-by-batch copies of the big ones run without them.
        held = [(name, result.tables) for name in sorted(result.tables)]
        held += [(name, result.rejected) for name in sorted(result.rejected)]
        for name, frames in held:
            df = frames.pop(name)
            entry = _entry(name, result.roles)
            source = _source_entry(manifest, result.sources.get(name, name))
            _set_inherited(
                entry, source, df.schema, _tagged_ok([df], _tag_candidates(source, df.schema))
            )
            _write_frame(writer, entry, df, reporter)
            del df
        for name in sorted(result.streamed):
            entry = _entry(name, result.roles)
            source = _source_entry(manifest, result.sources.get(name, name))
            _write_streamed(writer, entry, source, in_dir, result.streamed[name], reporter)
        report["timings_s"]["write"] = round(time.perf_counter() - write_started, 3)
        writer.report = report
        target = writer.commit()
    report["input_manifest_sha256"] = manifest_sha256(in_dir)
    return TransformResult(out_dir=target, report=report)


def _applied_here(manifest: dict[str, Any], migration: str) -> dict[str, Any] | None:
    """The export's record that ``migration`` is applied to the database it came from.

    A load or rollback of it that is unfinished there is an error: migrating a
    half-migrated graph would build a stage on top of it, and replace the stage
    that ``--resume`` and ``--rollback`` need.
    """
    history = [
        h
        for h in (manifest.get("source") or {}).get("history") or []
        if h.get("migration") == migration
    ]
    for h in history:
        if h.get("state") in ("loading", "rolling_back"):
            what = "load" if h["state"] == "loading" else "rollback"
            fix = "--resume" if what == "load" else "--rollback"
            raise StageError(
                f"the database this export came from has an unfinished {what} of {migration} "
                f"(stage {h.get('stage_path')}, sha256 {str(h.get('stage_sha256'))[:12]}…, "
                f"started {h.get('at')})",
                hint=f"finish it first (`etl load --in {h.get('stage_path')} {fix}`), then "
                "export again",
            )
    hits = [h for h in history if h.get("state") == "applied"]
    return hits[-1] if hits else None


def _nothing_to_migrate(
    in_dir: Path, out_dir: Path, migration: str, applied: dict[str, Any]
) -> TransformResult:
    """The export's database already had ``migration``: write nothing, say so.

    The stage that was applied stays where it is (a rollback reads it); a
    transform of the migrated graph would only reject the rows that were
    rejected the first time.
    """
    try:
        kept = (out_dir / "manifest.json").is_file() and (
            manifest_sha256(out_dir) == applied.get("stage_sha256")
        )
    except OSError:
        kept = False
    report: dict[str, Any] = {
        "migration": migration,
        "nothing_to_migrate": True,
        "already_applied": applied,
        "input_manifest_sha256": manifest_sha256(in_dir),
        "out_dir_is_applied_stage": kept,
    }
    return TransformResult(out_dir=out_dir if kept else None, report=report)


def _entry(name: str, roles: dict[str, str]) -> TableEntry:
    """The manifest entry of output table ``name`` (``"nodes/X"``, ``"rejected/X"`` …)."""
    folder, label = name.split("/", 1)
    if folder == "rejected":
        return TableEntry(path=f"{name}.parquet", kind="rejected", name=label, role="rejected")
    kind = "node" if folder == "nodes" else "relationship"
    return TableEntry(
        path=f"{name}.parquet",
        kind=kind,
        name=label,
        role=roles.get(name, "migrated"),
        key=list(known_keys().get(label, [])) if kind == "node" else [],
    )


def _write_frame(
    writer: StageWriter, entry: TableEntry, df: pl.DataFrame, reporter: Reporter
) -> None:
    """Write ``df`` a slice at a time: its Arrow copies are one slice, not the table.

    Row groups depend only on the rows (``TableWriter``), so the bytes are
    those of writing it at once.
    """
    compat = pl.CompatLevel.oldest()
    schema = df.head(0).to_arrow(compat_level=compat).schema
    with (
        reporter.task(f"write {entry.path.removesuffix('.parquet')}", total=df.height) as task,
        writer.open_table(entry, schema) as out,
    ):
        for part in df.iter_slices(STREAM_BATCH_ROWS):
            out.write(part.to_arrow(compat_level=compat))
            task.advance(part.height)


def _write_streamed(
    writer: StageWriter,
    entry: TableEntry,
    source_entry: dict[str, Any] | None,
    in_dir: Path,
    table: StreamedTable,
    reporter: Reporter,
) -> None:
    """Copy ``table`` from its export file batch by batch: memory stays one batch.

    The rows are written in the file's order (the migration checked it is the
    output order) through the same ``TableWriter``, whose row groups depend only
    on the rows, so the bytes are those of writing the whole table at once.
    """
    compat = pl.CompatLevel.oldest()
    schema = pl.DataFrame(schema=table.schema).to_arrow(compat_level=compat).schema
    candidates = _tag_candidates(source_entry, table.schema)
    ok = dict.fromkeys(candidates, True)
    source = open_parquet(in_dir / f"{table.source}.parquet")
    with (
        reporter.task(f"write {entry.path.removesuffix('.parquet')}", total=table.rows) as task,
        writer.open_table(entry, schema) as out,
    ):
        for batch in source.iter_batches(batch_size=STREAM_BATCH_ROWS):
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            df = table.apply(frame)
            for c, still in _tagged_ok([df], [c for c in ok if ok[c]]).items():
                ok[c] = ok[c] and still
            out.write(df.to_arrow(compat_level=compat))
            task.advance(df.height)
        _set_inherited(entry, source_entry, table.schema, ok)


def _source_entry(manifest: dict[str, Any], source: str) -> dict[str, Any] | None:
    """The export's manifest entry of input table ``source`` (an output table's rows come
    from the input table ``MigrationResult.sources`` names, else from the same path)."""
    path = source + ".parquet"
    return next((t for t in manifest.get("tables", []) if t["path"] == path), None)


def _tag_candidates(table: dict[str, Any] | None, schema: pl.Schema) -> list[str]:
    """The tagged-JSON columns of the source table ``table`` that are still strings."""
    if table is None:
        return []
    return [c for c in table.get("tagged_columns") or [] if c in schema and schema[c] == pl.String]


def _tagged_ok(frames: list[pl.DataFrame], candidates: list[str]) -> dict[str, bool]:
    """Per candidate: do all its non-null values in ``frames`` still carry the tag?"""
    return {
        c: all(bool(df[c].drop_nulls().str.starts_with('{"t":').all()) for df in frames)
        for c in candidates
    }


def _set_inherited(
    entry: TableEntry,
    table: dict[str, Any] | None,
    schema: pl.Schema,
    tagged_ok: dict[str, bool],
) -> None:
    """What the export's manifest says of the columns the transform passed through.

    A column the export wrote as tagged JSON (mixed types) is still tagged JSON
    here unless the migration replaced it: only String columns whose values all
    still carry the tag keep the mark (``tagged_ok``), so the load rebuilds the
    typed values instead of writing the JSON text. The zones of DateTime
    columns travel too (``columns``).
    """
    if table is None:
        return
    tagged = [c for c in _tag_candidates(table, schema) if tagged_ok.get(c, False)]
    columns = {
        c: meta
        for c, meta in (table.get("columns") or {}).items()
        if c in tagged or (c in schema and isinstance(schema[c], pl.Datetime))
    }
    entry.tagged_columns = tagged
    if columns:
        entry.extra = {"columns": columns}


def summarize(report: dict[str, Any]) -> str:
    """A summary a person reads at a glance: the migration's own figures (``SUMMARY`` rows).

    A migration without figures (or one no longer registered) gets the rows
    written and refused per table instead.
    """
    if report.get("nothing_to_migrate"):
        applied = report.get("already_applied") or {}
        return (
            f"Nothing to migrate: {report.get('migration')} is already applied to the database "
            f"this export came from ({applied.get('mode')} load of stage sha256 "
            f"{str(applied.get('stage_sha256'))[:12]}…, {applied.get('at')})."
        )
    lines: list[str] = []
    for figure in _figures(report):
        lines += figure_summary(figure)
    if not lines:
        tables = report.get("tables") or {}
        lines = [_summary_row(Row(f"{name} rows", n)) for name, n in tables.items()]
    return "\n".join(lines)


def _figures(report: dict[str, Any]) -> list[Figure]:
    try:
        migration = get_migration(str(report.get("migration") or DEFAULT_MIGRATION))
    except UnknownMigration:
        return []
    return as_figures(migration.report_figures(report))


def figure_summary(figure: Figure) -> list[str]:
    """A figure's ``SUMMARY`` rows, aligned, then one line per bar group."""
    lines = [_summary_row(row) for row in figure.rows_in(SUMMARY)]
    order = figure.part_order()
    for name, counts in figure.groups:
        parts = ", ".join(f"{p} {counts[p]:,}" for p in order if p in counts)
        lines.append(f"  {name:<22}{parts}")
    return lines


def _summary_row(row: Row) -> str:
    value = row.value
    if isinstance(value, bool):
        shown = "yes" if value else "no"
    elif isinstance(value, int | float):
        shown = f"{value:,}"
    else:
        shown = "-" if value is None else str(value)
    line = (
        f"{row.caption + ':':<21}{shown:>10}"
        if not row.level
        else f"  {row.caption:<24}{shown:>10}"
    )
    return f"{line}   {row.note}" if row.note else line

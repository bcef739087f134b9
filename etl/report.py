"""The report stage: one self-contained HTML page about a migration, after the fact.

``etl report`` reads what the other stages left on disk and nothing else (no
database, no network), so it can be run any time later, on another machine::

    data/export/     manifest.json, report.json        rows per table before
    data/transform/  manifest.json, report.json,       rows after, the migration's figures,
                     rejected/*.parquet                rejections by reason, with examples
    data/load/       report.json, ledger.jsonl         rows written, rates over time, validation

Any of the three may be missing (a report before the load, or of an export
alone); its sections then say so instead of failing. A stage that fails
verification is still reported from its manifest, with the problems listed at
the top. With both export and transform present, the report includes the
export → transform diff (``etl.diff``) and the migration's explanation. The
migration is the one the transform's manifest names; its figures
(``Migration.report_figures``) come from the transform's report.json.

``collect`` gathers the numbers into a ``ReportData``; ``etl.report_html``
renders it; ``write_report`` does both and writes the file atomically.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from etl.errors import EtlError, ValidationFailed
from etl.migrations import Migration, UnknownMigration, get_migration
from etl.migrations.figures import as_figures
from etl.progress import NullReporter, Reporter
from etl.report_model import LoadView, ReportData, StageView, load_outcome, warnings, when
from etl.stage import MANIFEST, REPORT, now_utc, read_manifest, verify_stage

__all__ = ["LoadView", "ReportData", "StageView", "collect", "load_outcome", "write_report"]

#: Examples shown per rejection reason.
EXAMPLES = 3
#: Columns that identify a rejected row for a person, in order of preference.
_ID_COLUMNS = ("id", "repoFullName", "number", "_start.id", "_start.repoFullName", "_end.id")


@dataclass(frozen=True)
class ReportResult:
    path: Path
    bytes: int
    warnings: list[str]


def read_stage(role: str, path: Path | None) -> StageView | None:
    """The stage at ``path`` (None if not given or absent); verification problems kept."""
    if path is None or not (path / MANIFEST).is_file():
        return None
    view = StageView(role=role, path=path)
    try:
        view.manifest = verify_stage(path)
    except ValidationFailed as e:
        view.problems = e.problems or [e.message]
        try:
            view.manifest = read_manifest(path)
        except ValidationFailed as unreadable:
            view.problems.append(unreadable.message)
    try:
        view.report = json.loads((path / REPORT).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        view.problems.append(f"{REPORT}: unreadable ({e})")
    return view


def read_load(path: Path | None) -> LoadView | None:
    """The load directory (None when it has neither report.json nor ledger.jsonl)."""
    if path is None:
        return None
    report, ledger = path / "report.json", path / "ledger.jsonl"
    if not report.is_file() and not ledger.is_file():
        return None
    view = LoadView(path=path)
    if report.is_file():
        try:
            view.report = json.loads(report.read_text(encoding="utf-8"))
        except ValueError as e:
            view.problems.append(f"report.json: unreadable ({e})")
    if ledger.is_file():
        for line in ledger.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a torn last line after a crash: the ledger's own rule
            if entry.get("t") == "header":
                view.started_at, view.batches = when(entry.get("started_at")), []
            elif entry.get("t") == "batch":
                view.batches.append(entry)
    return view


def rejected_examples(stage: StageView, *, examples: int = EXAMPLES) -> list[dict[str, Any]]:
    """Per rejected table and reason: the count and the first rows by id (for people)."""
    out: list[dict[str, Any]] = []
    names = sorted(
        {t["name"] for t in (stage.manifest or {}).get("tables", []) if t["kind"] == "rejected"}
    )
    for name in names:
        frame = pl.scan_parquet([str(p) for p in stage.paths("rejected", name)])
        cols = frame.collect_schema().names()
        if "reason" not in cols:
            continue
        shown = [c for c in _ID_COLUMNS if c in cols][:2] + [c for c in ("detail",) if c in cols]
        counts = frame.group_by("reason").agg(pl.len()).sort("reason").collect()
        for reason, n in counts.iter_rows():
            rows = (
                frame.filter(pl.col("reason") == reason)
                .select(shown)
                .sort(shown[:1] or "reason", nulls_last=True)
                .head(examples)
                .collect()
            )
            out.append(
                {
                    "table": name,
                    "reason": reason,
                    "rows": int(n),
                    "columns": shown,
                    "examples": rows.rows(),
                }
            )
    return out


def collect(
    *,
    export: Path | None,
    transform: Path | None,
    load: Path | None,
    with_diff: bool = True,
) -> ReportData:
    """Read every stage that exists; compute rejected examples and the export→transform diff."""
    data = ReportData(
        generated=now_utc(),
        export=read_stage("export", export),
        transform=read_stage("transform", transform),
        load=read_load(load),
    )
    if data.transform is not None and data.transform.manifest is not None:
        data.rejected = rejected_examples(data.transform)
        data.migration = migration_name(data.transform)
        migration = _migration(data.migration)
        if migration is not None:
            data.figures = as_figures(migration.report_figures(data.transform.report))
    if with_diff and data.export and data.transform:
        if not (data.export.verified and data.transform.verified):
            data.diff_error = "skipped: a stage failed verification (see the problems above)"
        else:
            data.diff = _diff(data.export.path, data.transform)
    return data


def migration_name(stage: StageView) -> str | None:
    """The migration that made ``stage``, as its manifest records it."""
    name = ((stage.manifest or {}).get("migration") or {}).get("name")
    return str(name) if name else None


def _migration(name: str | None) -> Migration | None:
    """The registered migration ``name`` (None: none named, or no longer registered)."""
    if not name:
        return None
    try:
        return get_migration(name)
    except UnknownMigration:
        return None


def _diff(export: Path, transform: StageView) -> dict[str, Any]:
    from etl.diff import run_diff

    name = migration_name(transform)
    try:
        result = run_diff(
            export,
            transform.path,
            samples=0,
            migration=name if _migration(name) is not None else None,
        )
    except EtlError as e:
        return {"error": str(e)}
    return result.to_json()


#: Where ``write_report`` looks for what it was not given; absent there, a section says so.
DEFAULT_DIRS = {
    "export": Path("data/export"),
    "transform": Path("data/transform"),
    "load": Path("data/load"),
}


def write_report(
    *,
    export: Path | None = None,
    transform: Path | None = None,
    load: Path | None = None,
    out: Path,
    reporter: Reporter | None = None,
) -> ReportResult:
    """Collect, render and write ``out`` (via a temporary file, renamed into place).

    An ``export`` or ``transform`` given must be a stage directory (``ValidationFailed``,
    exit 3, before anything is written); one left out is read from ``DEFAULT_DIRS``
    when it is there. A load directory may be absent: a report before the load is normal.
    """
    from etl.report_html import render

    for given in (export, transform):
        if given is not None and not (given / MANIFEST).is_file():
            read_manifest(given)  # raises: the directory is missing, or is no complete stage
    reporter = reporter or NullReporter()
    reporter.info("reading the stages (and diffing export → transform)…")
    data = collect(
        export=export or DEFAULT_DIRS["export"],
        transform=transform or DEFAULT_DIRS["transform"],
        load=load or DEFAULT_DIRS["load"],
    )
    html = render(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    # A plain open() (not mkstemp) so the file gets the usual umask permissions.
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return ReportResult(path=out, bytes=out.stat().st_size, warnings=warnings(data))

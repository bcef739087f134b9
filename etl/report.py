"""The report stage: one self-contained HTML page about a migration, after the fact.

``etl report`` reads what the other stages left on disk and nothing else (no
database, no network), so it can be run any time later, on another machine::

    data/export/     manifest.json, report.json        rows per table before
    data/transform/  manifest.json, report.json,       rows after, runs per type and status,
                     rejected/*.parquet                rejections by reason, with examples
    data/load/       report.json, ledger.jsonl         rows written, rates over time, validation

Any of the three may be missing (a report before the load, or of an export
alone); its sections then say so instead of failing. A stage that fails
verification is still reported from its manifest, with the problems listed at
the top. With both export and transform present, the report includes the
export → transform diff (``etl.diff``) and the migration's explanation.

``collect`` gathers the numbers into a ``ReportData``; ``etl.report_html``
renders it; ``write_report`` does both and writes the file atomically.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from etl.errors import EtlError, ValidationFailed
from etl.progress import NullReporter, Reporter
from etl.stage import MANIFEST, REPORT, now_utc, read_manifest, verify_stage

#: Examples shown per rejection reason.
EXAMPLES = 3
#: Columns that identify a rejected row for a person, in order of preference.
_ID_COLUMNS = ("id", "repoFullName", "number", "_start.id", "_start.repoFullName", "_end.id")


@dataclass
class StageView:
    """A stage directory as the report sees it: manifest, report.json, problems."""

    role: str
    path: Path
    manifest: dict[str, Any] | None = None
    report: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return self.manifest is not None and not self.problems

    def rows(self) -> dict[str, int]:
        """Rows per table (``nodes/Label``, ``relationships/TYPE``, ``rejected/Label``)."""
        out: dict[str, int] = {}
        for t in (self.manifest or {}).get("tables", []):
            folder = {"node": "nodes", "relationship": "relationships"}.get(t["kind"], t["kind"])
            name = f"{folder}/{t.get('name') or Path(t['path']).stem}"
            out[name] = out.get(name, 0) + int(t["rows"])
        return out

    def paths(self, kind: str, name: str) -> list[Path]:
        return [
            self.path / t["path"]
            for t in (self.manifest or {}).get("tables", [])
            if t["kind"] == kind and t.get("name") == name
        ]


@dataclass
class LoadView:
    """The load directory: its report.json and the committed batches of its ledger."""

    path: Path
    report: dict[str, Any] | None = None
    batches: list[dict[str, Any]] = field(default_factory=list)
    started_at: datetime | None = None
    problems: list[str] = field(default_factory=list)

    def rate_series(self, bins: int = 40) -> list[tuple[float, float]]:
        """(seconds since the load started, rows/s) over equal time slices of the ledger."""
        times = [(_when(b["committed_at"]), int(b.get("rows", 0))) for b in self.batches]
        times = sorted((t, n) for t, n in times if t is not None)
        if not times:
            return []
        start = self.started_at or times[0][0]
        offsets = [((t - start).total_seconds(), n) for t, n in times]  # type: ignore[operator]
        end = max(offsets[-1][0], 1e-3)
        n_bins = max(1, min(bins, len(offsets)))
        width = end / n_bins
        sums = [0] * n_bins
        for t, n in offsets:
            # A batch's rows were written up to its commit: a commit at a slice's end is in it.
            sums[min(max(math.ceil(t / width) - 1, 0), n_bins - 1)] += n
        return [((i + 0.5) * width, s / width) for i, s in enumerate(sums)]


def load_outcome(report: dict[str, Any]) -> str:
    """What a load changed, in words: rows it wrote, or that it changed nothing."""
    if report.get("nothing_to_do"):
        return f"nothing: {report.get('mode_reason') or 'the stage was already applied'}"
    nodes, rels = (
        int(report.get("nodes_written") or 0),
        int(report.get("relationships_written") or 0),
    )
    skipped = int(report.get("rows_skipped") or 0)
    if not nodes and not rels:
        earlier = f"; {skipped:,} rows were committed by an earlier run of it" if skipped else ""
        return f"nothing: no row needed writing{earlier}"
    resumed = f" ({skipped:,} more committed by an earlier run of it)" if skipped else ""
    return f"{nodes:,} node rows and {rels:,} relationship rows written{resumed}"


@dataclass
class ReportData:
    generated: str
    export: StageView | None
    transform: StageView | None
    load: LoadView | None
    rejected: list[dict[str, Any]] = field(default_factory=list)
    diff: dict[str, Any] | None = None
    diff_error: str | None = None


@dataclass(frozen=True)
class ReportResult:
    path: Path
    bytes: int
    warnings: list[str]


def _when(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


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
                view.started_at, view.batches = _when(entry.get("started_at")), []
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
    if with_diff and data.export and data.transform:
        if not (data.export.verified and data.transform.verified):
            data.diff_error = "skipped: a stage failed verification (see the problems above)"
        else:
            data.diff = _diff(data.export.path, data.transform)
    return data


def _diff(export: Path, transform: StageView) -> dict[str, Any]:
    from etl.diff import run_diff
    from etl.diff_migration import EXPLAINERS

    name = ((transform.manifest or {}).get("migration") or {}).get("name")
    try:
        result = run_diff(
            export, transform.path, samples=0, migration=name if name in EXPLAINERS else None
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


def warnings(data: ReportData) -> list[str]:
    """What a person should know before trusting the page (also shown at its top)."""
    out = []
    for role, stage in (("export", data.export), ("transform", data.transform)):
        if stage is None:
            out.append(f"no {role} stage found")
        elif stage.problems:
            out.append(f"{role} {stage.path} failed verification ({len(stage.problems)} problems)")
    if data.load is None:
        out.append("no load directory found (report.json/ledger.jsonl): load sections are empty")
    elif data.load.problems:
        out.extend(data.load.problems)
    if isinstance(data.diff, dict) and "error" in data.diff:
        out.append(f"diff failed: {data.diff['error']}")
    return out

"""What the report shows, as data: the stage and load views, and what to warn about.

``etl.report`` fills these from the files the stages left; ``etl.report_html``
renders them. Both import this module, and neither imports the other's
internals, so the report has no import cycle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from etl.migrations.figures import Figure


def when(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


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
        times = [(when(b["committed_at"]), int(b.get("rows", 0))) for b in self.batches]
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
    #: The transform's migration (its manifest's ``migration.name``), and the figures it
    #: makes of the transform's report.json (``etl.migrations.figures.Figure``).
    migration: str | None = None
    figures: list[Figure] = field(default_factory=list)


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

"""Ratios, targets and the BENCHMARKS.md section of ``bench_all.py``.

End to end (ours) = ``etl export`` + ``etl transform`` + ``etl load`` (online, in
place; the load runs the five invariants at its end, so validation is included);
the in-place APOC migration's wall time includes its own validation queries.
A ratio ours/theirs below 1 means ours is faster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from bench.common import Measurement, save

TARGETS = {
    "export": 200_000,  # entities/s
    "transform": 5_000_000,  # rows/s
    "replay_nodes": 60_000,
    "replay_rels": 100_000,
    "offline": 200_000,
    "rss_mib": 1024,
    "rss_growth": 0.20,
}
OURS = (
    "export",
    "transform",
    "load (online, in place",
    "validate",
    "load (online, replay",
    "offline import",
)


class SizeLike(Protocol):
    n: int
    size: str
    results: list[Measurement]
    info: dict[str, Any]


def _find(run: SizeLike, prefix: str) -> Measurement | None:
    return next((m for m in run.results if m.step.startswith(prefix)), None)


def _wall(run: SizeLike, prefix: str) -> float | None:
    m = _find(run, prefix)
    return m.wall_s if m else None


def ratios(run: SizeLike) -> list[tuple[str, str, str, str]]:
    """(comparison, ours, theirs, ours/theirs) rows for one size."""
    rows = []
    parts = [_wall(run, p) for p in ("export", "transform", "load (online, in place")]
    apoc = _wall(run, "in-place APOC")
    if None not in parts and apoc:
        e2e = sum(p for p in parts if p is not None)
        run.info["e2e_s"] = round(e2e, 2)
        rows.append(
            (
                "end to end vs in-place APOC (wall)",
                f"{e2e:.1f}s",
                f"{apoc:.1f}s",
                f"{e2e / apoc:.2f}",
            )
        )
    exp, naive = _find(run, "export"), _find(run, "naive export")
    if exp and naive:
        rows.append(
            (
                "export vs naive export (wall)",
                f"{exp.wall_s:.1f}s",
                f"{naive.wall_s:.1f}s",
                f"{exp.wall_s / naive.wall_s:.2f}",
            )
        )
        rows.append(
            (
                "export peak RSS vs naive",
                f"{exp.rss_mib or 0:.0f} MiB",
                f"{naive.rss_mib or 0:.0f} MiB",
                f"{(exp.rss_mib or 0) / (naive.rss_mib or 1):.2f}",
            )
        )
    replay, row = _find(run, "load (online, replay"), _find(run, "naive load")
    if replay and row:
        for kind in ("nodes_per_s", "relationships_per_s"):
            ours, theirs = replay.extra.get(kind) or 0, row.extra.get(kind) or 0
            rows.append(
                (
                    f"load {kind.replace('_per_s', '')}/s vs one row per transaction",
                    f"{ours:,.0f}/s",
                    f"{theirs:,.0f}/s",
                    f"{ours / theirs:.1f}" if theirs else "-",
                )
            )
    return rows


def targets(runs: Sequence[SizeLike]) -> list[tuple[str, str, str, bool]]:
    """(target, size, measured, met) rows."""
    out = []
    for run in runs:
        checks = [
            ("export ≥ 200k entities/s", "export", TARGETS["export"]),
            ("transform ≥ 5M rows/s", "transform", TARGETS["transform"]),
            ("offline import ≥ 200k entities/s", "offline import", TARGETS["offline"]),
        ]
        for label, prefix, goal in checks:
            m = _find(run, prefix)
            if m:
                out.append((label, run.size, f"{m.rate:,.0f}/s", m.rate >= goal))
        replay = _find(run, "load (online, replay")
        if replay:
            for label, kind, goal in (
                ("online load ≥ 60k nodes/s", "nodes_per_s", 60_000),
                ("online load ≥ 100k rels/s", "relationships_per_s", 100_000),
            ):
                v = replay.extra.get(kind) or 0
                out.append((label, run.size, f"{v:,.0f}/s", v >= goal))
        apoc = _wall(run, "in-place APOC")
        if "e2e_s" in run.info and apoc:
            e2e = run.info["e2e_s"]
            out.append(
                ("end to end ≤ in-place APOC", run.size, f"{e2e:.1f}s vs {apoc:.1f}s", e2e <= apoc)
            )
        for m in run.results:
            if m.step.startswith(OURS) and m.rss_mib:
                out.append(
                    (
                        f"peak RSS ≤ 1 GiB: {m.step}",
                        run.size,
                        f"{m.rss_mib:.0f} MiB",
                        m.rss_mib <= TARGETS["rss_mib"],
                    )
                )
    if len(runs) >= 2:
        small, large = runs[0], runs[-1]
        for m in small.results:
            if not m.step.startswith(OURS) or not m.rss_mib:
                continue
            big = _find(large, m.step)
            if big and big.rss_mib:
                growth = big.rss_mib / m.rss_mib - 1
                out.append(
                    (
                        f"RSS growth < 20%: {m.step}",
                        f"{small.n:,} → {large.n:,}",
                        f"{growth:+.0%}",
                        growth < TARGETS["rss_growth"],
                    )
                )
    return out


def _table(head: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return lines


def finish(
    runs: Sequence[SizeLike], *, command: str, total_s: float, name: str = "pipeline"
) -> bool:
    """Print the ratio and target tables, save results; True if every graph matched."""
    lines: list[str] = []
    for run in runs:
        rows = ratios(run)
        info = run.info
        graph = info.get("graph", {})
        lines += [
            f"**{run.size}** — {graph.get('nodes', 0):,} nodes, "
            f"{graph.get('relationships', 0):,} relationships "
            f"({info.get('entities', 0):,} exported rows), store "
            f"{info.get('store_mib', 0):,} MiB, seeded in {info.get('seed_s', 0)}s; "
            f"`etl diff` ours vs APOC: "
            f"{'identical' if info.get('diff_exit') == 0 else 'DIFFERENT'}",
            "",
        ]
        if info.get("offline"):
            lines += [f"Offline import: {info['offline']}.", ""]
        if info.get("replay"):
            lines += [f"Online replay: {info['replay']}.", ""]
        lines += [*_table(("ours vs theirs", "ours", "theirs", "ours/theirs"), rows), ""]
    tgt = targets(runs)
    lines += ["Targets:", ""]
    lines += _table(
        ("target", "size", "measured", "met"),
        [(a, b, c, "yes" if ok else "**no**") for a, b, c, ok in tgt],
    )
    lines += ["", f"Total benchmark wall time: {total_s / 60:.1f} min."]
    text = "\n".join(lines)
    print("\n" + text, flush=True)
    results = [m for run in runs for m in run.results]
    path = save(
        results,
        name=name,
        command=command,
        extra_md=text,
        sizes={run.size: run.info for run in runs},
    )
    print(f"results → {path}")
    return all(run.info.get("diff_exit") == 0 for run in runs)

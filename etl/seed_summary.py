"""What a seed reports: the checks of its options, its summary, and the lines a person reads.

Shared by the online seed (``etl.seed``) and the offline one (``etl.seed_offline``),
so neither imports the other.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from etl.errors import ConfigError
from etl.seed_generate import Generator
from etl.seed_model import NOW


def check_options(*, workflows: int, dirty: float, batch_size: int = 1, writers: int = 1) -> None:
    """Refuse option values the generator or the writers cannot take."""
    if workflows < 1 or batch_size < 1 or writers < 1 or not 0.0 <= dirty <= 1.0:
        raise ConfigError(
            "need workflows, batch_size and writers >= 1 and 0 <= dirty <= 1; got "
            f"{workflows}, {batch_size}, {writers}, {dirty}"
        )


def summarize(
    gen: Generator, seed: int, dirty: float, *, write_s: float, wipe_s: float
) -> dict[str, Any]:
    """The summary of a finished seed (``gen`` exhausted): counts, plants, expectations."""
    nodes, rels = dict(sorted(gen.nodes.items())), dict(sorted(gen.rels.items()))
    total = sum(nodes.values())
    return {
        "seed": seed,
        "workflows": gen.workflows,
        "dirty": dirty,
        "now": NOW.isoformat().replace("+00:00", "Z"),
        "nodes": nodes,
        "relationships": rels,
        "total_nodes": total,
        "total_relationships": sum(rels.values()),
        "workflows_without_metadata": gen.without_metadata,
        "planted": gen.planted,
        "duplicate_issues": gen.planted["duplicate_issue"],
        "expected": asdict(gen.expected),
        "expected_infer_type": asdict(gen.expected_infer),
        "wipe_s": round(wipe_s, 3),
        "write_s": round(write_s, 3),
        "nodes_per_s": round(total / write_s) if write_s > 0 else 0,
        "mode": "online",
    }


def describe(summary: dict[str, Any]) -> str:
    """The human summary printed by ``etl seed``."""
    exp = summary["expected"]

    def counts(d: dict[str, int]) -> str:
        return ", ".join(f"{k} {v:,}" for k, v in d.items() if v) or "none"

    return "\n".join([
        f"Seeded {summary['workflows']:,} workflows (seed {summary['seed']}, "
        f"dirty {summary['dirty']}): {summary['total_nodes']:,} nodes, "
        f"{summary['total_relationships']:,} relationships in {summary['write_s']:.1f}s "
        f"({summary['nodes_per_s']:,} nodes/s)",
        f"  nodes          {counts(summary['nodes'])}",
        f"  relationships  {counts(summary['relationships'])}",
        f"  planted        {counts(summary['planted'])}",
        f"  expected       {exp['runs_out']:,} runs out; {exp['issues_created']:,} issues created; "
        f"{exp['issueless_runs']:,} issue-less; {exp['aliases_normalised']:,} aliases normalised",
        f"  rejected       {counts(exp['rejected'])}",
    ])  # fmt: skip

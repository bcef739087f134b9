"""`etl plan` / `etl load --dry-run`: what a load would change, written nowhere.

The plan runs the load's own steps and batches, but sends each batch to the
read-only twin of its write (``etl.graph.plan``), so it counts exactly what
the load would do, per label and relationship type:

* **create** — nodes or relationships that do not exist yet;
* **update** — existing nodes whose properties or labels would change, with
  how many times each property would be set to a new value, and removed;
* **unchanged** — rows the load would find already as they should be;
* **delete** — relationships and nodes the load deletes (exported ones the
  stage no longer has), and for a label, the nodes that would lose it.

No lock is taken and no ledger is touched. Exit code (CLI): 0 when nothing
would change (the stage is already loaded), 1 when something would.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etl.graph.connection import open_driver, server_info
from etl.graph.plan import diff
from etl.graph.write import NodeOp, RelOp
from etl.load_input import open_input
from etl.load_steps import build_steps, find_keys
from etl.load_target import detect_mode
from etl.progress import NullReporter, Reporter
from etl.settings import Settings


@dataclass
class Change:
    """What would happen to one label or relationship type."""

    kind: str
    name: str
    create: int = 0
    update: int = 0
    unchanged: int = 0
    delete: int = 0
    props: Counter[str] = field(default_factory=Counter)
    removed: Counter[str] = field(default_factory=Counter)
    missing: int = 0

    @property
    def changes(self) -> int:
        return self.create + self.update + self.delete

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "create": self.create,
            "update": self.update,
            "unchanged": self.unchanged,
            "delete": self.delete,
            "properties_set": dict(sorted(self.props.items())),
            "properties_removed": dict(sorted(self.removed.items())),
            "missing": self.missing,
        }


@dataclass
class Plan:
    target: str
    mode: str
    reason: str
    changes: dict[tuple[str, str], Change] = field(default_factory=dict)

    def change(self, kind: str, name: str) -> Change:
        return self.changes.setdefault((kind, name), Change(kind, name))

    @property
    def changed(self) -> bool:
        return any(c.changes for c in self.changes.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "mode": self.mode,
            "reason": self.reason,
            "changed": self.changed,
            "changes": [c.to_json() for _, c in sorted(self.changes.items())],
        }


def run_plan(
    settings: Settings,
    *,
    in_dir: Path,
    export_dir: Path | None = None,
    batch_size: int = 5_000,
    into_nonempty: bool = False,
    reporter: Reporter | None = None,
) -> Plan:
    """Count what ``etl load`` would create, update, leave and delete; write nothing."""
    reporter = reporter or NullReporter()
    stage = open_input(in_dir, export_dir=export_dir)
    with open_driver(settings) as driver:
        info = server_info(driver, settings)
        target = detect_mode(driver, settings.database, stage, into_nonempty=into_nonempty)
        plan = Plan(info.describe(), target.mode, target.reason)
        if target.done is not None:
            return plan  # the history proves this stage is applied: nothing would change
        keys = find_keys(stage, target.mode)
        for step in build_steps(stage, target.mode, keys):
            with reporter.task(f"plan {step.name}", total=step.rows) as task:
                for batch in step.source(batch_size):
                    for op, answers in diff(driver, settings.database, step.encode(batch)):
                        _count(plan, op, answers)
                    task.advance(batch.num_rows)
    return plan


def _count(plan: Plan, op: NodeOp | RelOp, answers: list[dict[str, Any]]) -> None:
    if (isinstance(op, NodeOp) and op.remove_node) or (isinstance(op, RelOp) and op.delete):
        kind, name = ("label", op.label) if isinstance(op, NodeOp) else ("type", op.type)
        plan.change(kind, name).delete += sum(not a["missing"] for a in answers)
        return
    if isinstance(op, RelOp):
        c = plan.change("type", op.type)
        for a in answers:
            if a["missing"]:
                # An endpoint the load creates first (a new Issue, a replayed node).
                c.create += int(a["want"])
            else:
                c.create += max(0, int(a["want"]) - int(a["have"]))
                c.unchanged += min(int(a["have"]), int(a["want"]))
        return
    c = plan.change("label", op.label)
    for a in answers:
        if a["missing"]:
            if op.create:
                c.create += 1
            else:
                c.missing += 1
            continue
        for t, n in zip(op.delete_out, a["deleted"], strict=True):
            plan.change("type", t).delete += int(n)
        for label in a["dropped"]:
            plan.change("label", label).delete += 1
        if a["changed"] or a["removed"] or a["added"] or a["dropped"]:
            c.update += 1
            c.props.update(a["changed"])
            c.removed.update(a["removed"])
        else:
            c.unchanged += 1


def describe(plan: Plan) -> str:
    """A table per label and type; properties that would change under each label."""
    lines = [
        f"Plan for {plan.target} ({plan.mode}: {plan.reason}); nothing written.",
        f"  {'':<6}{'name':<24}{'create':>10}{'update':>10}{'unchanged':>11}{'delete':>10}",
    ]
    for (kind, name), c in sorted(plan.changes.items()):
        lines.append(
            f"  {kind:<6}{name:<24}{c.create:>10,}{c.update:>10,}{c.unchanged:>11,}{c.delete:>10,}"
        )
        if c.props:
            sets = ", ".join(f"{p} {n:,}" for p, n in sorted(c.props.items()))
            lines.append(f"{'':>10}sets: {sets}")
        if c.removed:
            gone = ", ".join(f"{p} {n:,}" for p, n in sorted(c.removed.items()))
            lines.append(f"{'':>10}removes: {gone}")
        if c.missing:
            lines.append(f"{'':>10}{c.missing:,} source nodes are missing: the load would fail")
    lines.append(
        "Changes pending (exit code 1)." if plan.changed else "Nothing to change (exit code 0)."
    )
    return "\n".join(lines)

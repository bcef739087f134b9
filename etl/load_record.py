"""What a load checks and records around its writes: the preflight, and its history entry.

``preflight`` runs before the first write; ``history_entry`` is what the
database records of the load (``etl.graph.history``); ``nothing_report`` is
the report of a load whose stage the history says is already applied.
"""

from __future__ import annotations

from typing import Any

from etl.load_input import StageInput
from etl.load_model import Step
from etl.load_target import Target


def preflight(steps: list[Step], batch_size: int) -> None:
    """Encode the first batch of every step before anything is written.

    What makes a table unloadable (an endpoint label without a node table, a key
    column missing, a column that cannot be encoded) then fails before the first
    write instead of after earlier steps committed: a half-applied load must
    never be possible. One batch per step is read twice; nothing is sent.
    """
    for step in steps:
        first = next(iter(step.source(batch_size)), None)
        if first is not None:
            step.encode(first)


def history_entry(stage: StageInput, header: dict[str, Any]) -> dict[str, Any]:
    """What the database records of this load (``etl.graph.history``)."""
    from etl import __version__

    lineage = (stage.manifest.get("inputs") or [{}])[0]
    migration = stage.manifest.get("migration") or {}
    return {
        "stage_sha256": stage.sha256,
        "stage": stage.stage,
        "stage_path": str(stage.path),
        "migration": migration.get("name"),
        "migration_version": migration.get("version"),
        "migration_checksum": migration.get("checksum"),
        "input_sha256": lineage.get("manifest_sha256") if stage.stage == "transform" else None,
        "export_path": header.get("export"),
        "mode": header["mode"],
        "fresh": header["fresh"],
        "started_at": header["started_at"],
        "tool_version": __version__,
        "load_id": header["load_id"],
    }


def nothing_report(stage: StageInput, target: Target, restart: bool) -> dict[str, Any]:
    note = (
        "--restart does not load an applied stage again: roll it back first (`etl load --rollback`)"
        if restart
        else "`etl validate` checks the database against it again"
    )
    return {
        "note": note,
        "input": str(stage.path),
        "input_manifest_sha256": stage.sha256,
        "stage": stage.stage,
        "mode": target.mode,
        "mode_reason": target.reason,
        "nothing_to_do": True,
        "applied": target.done,
        "steps": [],
        "nodes_written": 0,
        "relationships_written": 0,
        "validation": None,
    }

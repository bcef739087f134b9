"""What an export decides before it writes: which labels, and what it must not replace.

The labels default to what the migration reads plus what it wrote where the
database has it, so a migrated database exports as migrated. The previous
export in the target directory is kept aside when a load may depend on it
(``keep_what_a_load_needs``): the load and ``--rollback`` find it by its hash.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from etl.errors import ConfigError, StageError
from etl.stage import manifest_sha256, read_manifest


def wanted_labels(
    before: dict[str, dict[str, int]],
    labels: list[str] | None,
    *,
    all_labels: bool,
    stage: str,
) -> list[str]:
    """The labels to export: every one (``--all``), those named, or the migration's."""
    present = before["labels"]
    if all_labels:
        if not present and stage == "backup":
            raise StageError(
                "the database is empty: there is nothing to back up",
                hint="check NEO4J_URI and NEO4J_DATABASE (`etl db status` for the local server)",
            )
        return sorted(present)
    if labels:
        unknown = [lab for lab in labels if lab not in present]
        if unknown:
            known = ", ".join(sorted(present)) or "none"
            raise ConfigError(
                f"no node has the label {', '.join(map(repr, unknown))} in this database "
                f"(labels here: {known})",
                hint="check the spelling in --labels, or export every label with --all",
            )
        return list(labels)
    from etl.migrations import export_labels

    return export_labels(present)


def history_entry(h: dict[str, Any]) -> dict[str, Any]:
    keep = ("migration", "stage", "stage_path", "stage_sha256", "input_sha256", "mode", "state")
    return {k: h.get(k) for k in keep} | {"at": h.get("finished_at") or h.get("started_at")}


def keep_what_a_load_needs(
    out_dir: Path, history: list[dict[str, Any]], source: dict[str, Any], labels: list[str]
) -> Path | None:
    """Move ``out_dir`` aside (timestamped) when replacing it could lose a load's backup.

    The export a transform was made from is the backup of its load: ``--resume``
    and ``--rollback`` (and any load of that transform) read it. A new export into
    the same directory keeps the previous one as ``<out_dir>.kept-<UTC stamp>``,
    where a load finds it again by its manifest hash, when a load recorded in this
    database's history was made from it, when it is the export of another
    database, or when it predates a migration whose labels the database now has
    (a database loaded by an older etl, or by hand, has no history to say so).
    """
    if not (out_dir / "manifest.json").is_file():
        return None
    try:
        sha = manifest_sha256(out_dir)
        previous = read_manifest(out_dir)
    except (OSError, ValueError):
        return None
    old_source = previous.get("source") or {}
    depended = any(
        h.get("input_sha256") == sha and h.get("state") in ("loading", "applied", "rolling_back")
        for h in history
    )
    other_database = (old_source.get("uri"), old_source.get("database")) != (
        source.get("uri"),
        source.get("database"),
    )
    from etl.migrations import DEFAULT_MIGRATION, get_migration

    written = set(get_migration(DEFAULT_MIGRATION).writes)
    migrated_since = bool(written & set(labels) - set(old_source.get("labels") or []))
    if not (depended or other_database or migrated_since):
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    kept = out_dir.with_name(f"{out_dir.name}.kept-{stamp}")
    os.replace(out_dir, kept)
    return kept

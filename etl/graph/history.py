"""The database's own record of what was loaded into it: ``(:EtlHistory)`` nodes.

One node per loaded stage, keyed by the stage manifest's sha256 (the stage's
identity), written by the loader before its first data write and updated as
the load ends or is rolled back::

    (:EtlHistory {stage_sha256, stage, stage_path, migration, migration_version,
                  migration_checksum, input_sha256,
                  export_path, mode, fresh, state, started_at, finished_at,
                  rolled_back_at, tool_version, load_id, counts})

``state`` is ``loading`` (started, not finished: a crash or an interrupt),
``applied``, ``rolling_back`` (a rollback started, not finished) or
``rolled_back``. This is how a load *knows* rather than
guesses: a stage whose record says ``applied`` has nothing left to do, a
database whose history holds a migration applied from another stage is not
loaded again, and an export records the history it saw so a transform can
tell that its migration already ran. Like the lock node, these nodes are
bookkeeping: never counted, exported, compared or validated.
"""

from __future__ import annotations

import json
from typing import Any

import neo4j

HISTORY_LABEL = "EtlHistory"
HISTORY_CONSTRAINT = "etl_history"
#: The states a record moves through.
LOADING, APPLIED = "loading", "applied"
ROLLING_BACK, ROLLED_BACK = "rolling_back", "rolled_back"
_FIELDS = (
    "stage_sha256",
    "stage",
    "stage_path",
    "migration",
    "migration_version",
    "migration_checksum",
    "input_sha256",
    "export_path",
    "mode",
    "fresh",
    "state",
    "started_at",
    "finished_at",
    "rollback_started_at",
    "rolled_back_at",
    "tool_version",
    "load_id",
    "counts",
)


def _session(driver: neo4j.Driver, database: str, *, read: bool = False) -> neo4j.Session:
    return driver.session(
        database=database,
        default_access_mode=neo4j.READ_ACCESS if read else neo4j.WRITE_ACCESS,
        notifications_min_severity="OFF",
    )


def read_history(driver: neo4j.Driver, database: str) -> list[dict[str, Any]]:
    """Every record, oldest first; ``counts`` decoded from its JSON text."""
    props = ", ".join(f".{f}" for f in _FIELDS)
    with _session(driver, database, read=True) as s:
        rows = [
            dict(rec["h"])
            for rec in s.run(
                f"MATCH (h:{HISTORY_LABEL}) RETURN h {{{props}}} AS h ORDER BY h.started_at, "
                "h.stage_sha256"
            )
        ]
    for row in rows:
        if isinstance(row.get("counts"), str):
            row["counts"] = json.loads(row["counts"])
    return rows


def find(history: list[dict[str, Any]], stage_sha256: str) -> dict[str, Any] | None:
    """The record of the stage with this manifest sha256, if it was ever loaded here."""
    return next((h for h in history if h.get("stage_sha256") == stage_sha256), None)


def applied_migration(history: list[dict[str, Any]], migration: str) -> dict[str, Any] | None:
    """The newest record of ``migration`` that is applied (not rolled back), if any."""
    hits = [h for h in history if h.get("migration") == migration and h.get("state") == APPLIED]
    return hits[-1] if hits else None


def record_start(driver: neo4j.Driver, database: str, entry: dict[str, Any]) -> None:
    """Create (or reopen) the record of ``entry['stage_sha256']`` in state ``loading``."""
    values = {k: v for k, v in entry.items() if k in _FIELDS and k != "counts"}
    with _session(driver, database) as s:
        s.run(
            f"CREATE CONSTRAINT {HISTORY_CONSTRAINT} IF NOT EXISTS "
            f"FOR (h:{HISTORY_LABEL}) REQUIRE h.stage_sha256 IS UNIQUE"
        ).consume()
        s.run(
            f"MERGE (h:{HISTORY_LABEL} {{stage_sha256: $sha}}) "
            "SET h += $values, h.state = $state, h.finished_at = null, h.rolled_back_at = null",
            sha=entry["stage_sha256"],
            values=values,
            state=LOADING,
        ).consume()


def record_state(
    driver: neo4j.Driver,
    database: str,
    stage_sha256: str,
    state: str,
    *,
    at: str,
    counts: dict[str, Any] | None = None,
) -> None:
    """Move the record of ``stage_sha256`` to ``applied``, ``rolling_back`` or ``rolled_back``."""
    stamp = {APPLIED: "finished_at", ROLLING_BACK: "rollback_started_at"}.get(
        state, "rolled_back_at"
    )
    with _session(driver, database) as s:
        s.run(
            f"MATCH (h:{HISTORY_LABEL} {{stage_sha256: $sha}}) "
            f"SET h.state = $state, h.{stamp} = $at"
            + (", h.counts = $counts" if counts is not None else ""),
            sha=stage_sha256,
            state=state,
            at=at,
            counts=json.dumps(counts, sort_keys=True) if counts is not None else None,
        ).consume()


def describe(entry: dict[str, Any]) -> str:
    """One line for a person: what was loaded, how, when, and where it stands."""
    what = entry.get("migration") or f"the {entry.get('stage')} stage"
    when = entry.get("finished_at") or entry.get("started_at") or "?"
    return (
        f"{what} ({entry.get('mode')}, {entry.get('state')}, {when}, from "
        f"{entry.get('stage_path')}, stage sha256 {str(entry.get('stage_sha256'))[:12]}…)"
    )

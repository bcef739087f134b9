"""What the target database is to a stage: its source (in place), empty, or neither.

``detect_mode`` decides from what it can prove, never from a flag or a guess:

* the database's history (``etl.graph.history``) records this very stage
  (its manifest sha256): ``applied`` → **nothing to do**; ``loading`` (an
  unfinished load) → the same mode again, merging (every write is idempotent);
* the history records the stage's migration as applied from *another*
  stage → refuse: a second application of one migration is never right;
* empty (the loader's bookkeeping aside) → **replay**;
* a sample of the nodes the stage updates exist *as the same nodes* (same
  element id, same key, the exported label or already the new one) → the
  database is the one exported → **in place** (a stage that relabels them,
  with every sampled node already relabelled and no history → refuse);
* the sampled keys are nodes of the exported label here, but with other
  element ids (another copy of the exported database) → refuse: writing a
  replay into it would add a second node per row;
* otherwise the database holds something else: refuse, unless the caller
  passed ``--into-nonempty``. Keys that happen to exist prove nothing.

Element ids are only meaningful in the database that issued them, and Neo4j
reuses the ids of deleted nodes; that is why a match must also agree on the
key properties and the label.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import polars as pl
import pyarrow as pa

from etl.errors import StageError
from etl.graph import history, schema
from etl.graph.params import SOURCE_ID, prop_name
from etl.graph.schema import Driver, SchemaItem
from etl.load_change import stage_change
from etl.load_input import StageInput, TableInfo, read_columns
from etl.load_model import IN_PLACE, REPLAY, Keys

SAMPLE = 25


@dataclass(frozen=True)
class Target:
    mode: str
    reason: str
    #: the database was empty: a replay may create instead of merge
    fresh: bool = False
    #: the history record saying this stage is already applied here: nothing to do
    done: dict[str, Any] | None = None


def _props(table: TableInfo) -> list[str]:
    return [prop_name(k) for k in table.key]


def _sample(
    stage: StageInput, table: TableInfo, ops: pa.Array | None = None, op: int = 0
) -> list[dict[str, Any]]:
    """Up to ``SAMPLE`` rows spread over the table (those of ``op`` in ``ops``): element id, key."""
    frame = read_columns(stage.path, table, ["_element_id", *table.key])
    if ops is not None:
        frame = frame.filter(pl.Series(ops) == op)
    if frame.height == 0 or not all(k in frame.columns for k in table.key):
        return []
    step = max(frame.height // SAMPLE, 1)
    picked = frame.gather_every(step).head(SAMPLE).drop_nulls()
    return [
        {"e": row[0], "k": list(row[1:])}
        for row in picked.select("_element_id", *table.key).iter_rows()
    ]


def _in_place_proof(driver: Driver, database: str, stage: StageInput) -> str | None:
    """Why the database is the one exported, from nodes the stage updates; raise if it is
    another graph that merely looks like it. None: no updated node to prove it by."""
    updates = stage_change(stage).updates()
    if not updates:
        return None
    # A relabelled node is the strongest evidence: it cannot be there by chance.
    change, k, source = sorted(updates, key=lambda u: u[2].name == u[0].table.name)[0]
    table = change.table
    rows = _sample(stage, table, change.ops, k)
    if not rows:
        return None
    props = _props(table)
    labels = list(dict.fromkeys([source.name, table.name]))
    found = schema.found_by_element_id(driver, database, rows, labels, props)
    relabel = source.name != table.name
    what = f"sampled rows of {table.stem}"
    if rows and found == len(rows):
        if relabel and schema.found_by_element_id(driver, database, rows, [table.name], props) == (
            found
        ):
            raise StageError(
                f"every sampled {table.name} of {stage.path} is already converted here, but the "
                "database's history has no record of a load of this stage (an older etl, or a "
                "migration by hand): loading it again would overwrite what changed since",
                hint="if this stage was applied, there is nothing to load; to apply it "
                "again, roll it back first (`etl load --rollback`)",
            )
        return f"{found}/{len(rows)} {what} are the exported {source.name} nodes"
    if found:
        raise StageError(
            f"only {found} of {len(rows)} {what} are the exported nodes: "
            "the database changed since the export, or is another copy",
            hint="export and transform this database again, then load",
        )
    values = [r["k"] for r in rows]
    legacy = schema.found_by_key(driver, database, source.name, props, values) if props else 0
    if legacy and not (
        relabel and schema.found_by_key(driver, database, table.name, props, values)
    ):
        raise StageError(
            f"{legacy} of {len(rows)} sampled {table.name}s are legacy {source.name}s in this "
            f"database (and none is a {table.name}), but not "
            "the nodes that were exported (other element ids): this is another copy of the "
            "exported database, e.g. restored from a dump or a file copy that got a new "
            "database id, and an in-place load finds its nodes by element id",
            hint="export and transform this database again, then load",
        )
    return None


def detect_mode(
    driver: Driver, database: str, stage: StageInput, *, into_nonempty: bool = False
) -> Target:
    """Decide in place / replay / nothing to do for ``stage``, or raise ``StageError``."""
    past = history.read_history(driver, database)
    own = history.find(past, stage.sha256)
    if own is not None and own.get("state") == history.APPLIED:
        return Target(
            str(own.get("mode")), f"already loaded here: {history.describe(own)}", done=own
        )
    _refuse_unfinished_rollback(own)
    if own is not None and own.get("state") == history.LOADING:
        return Target(
            str(own.get("mode")),
            f"continuing an unfinished load of this stage ({history.describe(own)})",
        )
    _refuse_second_application(stage, past)
    total = schema.node_total(driver, database)
    if total == 0:
        return Target(REPLAY, "the database is empty", fresh=True)
    if stage.stage == "transform":
        proof = _in_place_proof(driver, database, stage)
        if proof is not None:
            return Target(IN_PLACE, proof)
    keyed = [t for t in stage.tables("node") if t.key and t.rows]
    if keyed:
        rows = _sample(stage, keyed[0])
        same = schema.found_by_element_id(driver, database, rows, [keyed[0].name], _props(keyed[0]))
        if rows and same == len(rows) and stage.stage == "transform":
            # Nothing updated (every row rejected, say): the other nodes prove the source.
            return Target(
                IN_PLACE,
                f"{same}/{len(rows)} sampled {keyed[0].name} nodes are the exported nodes",
            )
        if rows and same == len(rows):
            raise StageError(
                f"this database is the source of the {stage.stage} stage {stage.path}: "
                "there is nothing to load",
                hint="replay an export or backup into an empty database",
            )
    if into_nonempty:
        return Target(REPLAY, f"the database holds {total:,} other nodes (--into-nonempty)")
    raise StageError(
        f"the database holds {total:,} nodes but is neither the source of {stage.path} nor "
        "empty, and its history records no load of this stage",
        hint="load into an empty database, load in place into the exported database, or "
        "pass --into-nonempty to merge the stage into this one",
    )


def resume_target(
    driver: Driver, database: str, stage: StageInput, header: dict[str, Any]
) -> Target:
    """The target of ``--resume``: what the ledger started, if the database still has it.

    The ledger alone is not proof: the database may have been wiped and seeded
    again since, or the load finished through another ledger. Its history
    decides (the record is written before the ledger's header).
    """
    own = history.find(history.read_history(driver, database), stage.sha256)
    if own is not None and own.get("state") == history.APPLIED:
        return Target(
            str(own.get("mode")), f"already loaded here: {history.describe(own)}", done=own
        )
    _refuse_unfinished_rollback(own)
    if own is None or own.get("state") != history.LOADING:
        raise StageError(
            "the ledger records an unfinished load of this stage, but the database has no "
            "record of it: it was wiped or replaced since"
            + ("" if own is None else f" (its record: {history.describe(own)})"),
            hint="start over with `etl load --restart` (the database decides in place or replay "
            "again)",
        )
    same = own.get("load_id") == header.get("load_id")
    return Target(
        str(header["mode"]),
        "as recorded in the ledger (--resume)",
        # Batch markers are per load id: a load continued under another ledger merges.
        bool(header.get("fresh")) and same,
    )


def _refuse_unfinished_rollback(own: dict[str, Any] | None) -> None:
    if own is not None and own.get("state") == history.ROLLING_BACK:
        raise StageError(
            f"a rollback of this stage is unfinished: {history.describe(own)}",
            hint=f"finish it first: `etl load --rollback --in {own.get('stage_path')}`",
        )


def _refuse_second_application(stage: StageInput, past: list[dict[str, Any]]) -> None:
    """A migration already applied here from another stage is not applied again."""
    migration = (stage.manifest.get("migration") or {}).get("name")
    if stage.stage != "transform" or not migration:
        return
    for h in past:
        if h.get("migration") == migration and h.get("state") == history.ROLLING_BACK:
            _refuse_unfinished_rollback(h)
    busy = [
        h for h in past if h.get("migration") == migration and h.get("state") == history.LOADING
    ]
    if busy:
        raise StageError(
            f"{migration} is half loaded into this database from another stage: "
            f"{history.describe(busy[-1])}",
            hint=f"finish that load (`etl load --in {busy[-1].get('stage_path')} --resume`) or "
            "undo it (`--rollback`) first",
        )
    other = history.applied_migration(past, str(migration))
    if other is None:
        return
    raise StageError(
        f"{migration} is already applied to this database: {history.describe(other)}; "
        f"{stage.path} is another transform of it, and applying a migration twice is never "
        "right",
        hint="a fresh `etl export` + `etl transform` of this database has nothing to migrate; "
        f"to apply this stage instead, first roll the applied one back (`etl load --rollback "
        f"--in {other.get('stage_path')}`)",
    )


def declared_unique(stage: StageInput) -> tuple[str, ...]:
    """Labels the stage's migration makes unique (any registered one's, for an export)."""
    from etl.migrations import get_migration, list_migrations

    name = (stage.manifest.get("migration") or {}).get("name")
    if name:
        return tuple(get_migration(str(name)).unique)
    return tuple(dict.fromkeys(lab for m in list_migrations() for lab in m.unique))


def in_place_labels(stage: StageInput) -> set[str]:
    """Labels an in-place load writes: the schema of their lookups is built first."""
    return stage_change(stage).written_labels


def wanted_schema(stage: StageInput, keys: Keys, mode: str) -> list[SchemaItem]:
    """Constraints and indexes a load creates before writing (see ``etl.graph.schema``).

    In place, only for the labels the load writes and those the migration's
    model declares unique; a replay, for every label.
    """
    unique_labels = declared_unique(stage)
    written = in_place_labels(stage) if mode == IN_PLACE else set()
    wanted: list[SchemaItem] = []
    for table in sorted(stage.tables("node"), key=lambda t: t.name):
        label = table.name
        if mode == IN_PLACE and label not in written and label not in unique_labels:
            continue
        ambiguous = len(keys.ambiguous.get(label, ())) > 0
        if table.key:
            unique = label in unique_labels and not ambiguous
            wanted.append(SchemaItem(label, tuple(prop_name(k) for k in table.key), unique))
        if mode == REPLAY and (not table.key or ambiguous):
            wanted.append(SchemaItem(label, (SOURCE_ID,), False))
    return wanted


def deferred_schema(
    wanted: list[SchemaItem], mode: str, written: Collection[str] = ()
) -> list[SchemaItem]:
    """The part of ``wanted`` that may be built while the batches are written.

    In place, the load writes only the labels in ``written``; the target
    model's constraints on the others serve no lookup of the load, so they are
    built alongside it: one on 1.9M nodes took 13.8 s of a 75 s in-place load
    at 100k workflows. A replay looks every label up by key: nothing is deferred.
    """
    if mode != IN_PLACE:
        return []
    return [item for item in wanted if item.label not in written]

"""What the target database is to a stage: its source (in place), empty, or neither.

``detect_mode`` decides from what it can prove, never from a flag or a guess:

* the database's history (``etl.graph.history``) records this very stage
  (its manifest sha256): ``applied`` → **nothing to do**; ``loading`` (an
  unfinished load) → the same mode again, merging (every write is idempotent);
* the history records the stage's migration as applied from *another*
  stage → refuse: a second application of one migration is never right;
* empty (the loader's bookkeeping aside) → **replay**;
* a sample of the stage's WorkflowRuns exist *as the same nodes* (same
  element id, same ``id``, labelled Workflow or already WorkflowRun) → the
  database is the one exported → **in place**;
* no run migrated, but a sample of another keyed table's nodes are the
  exported nodes (same element id and ``id``) → **in place**;
* the sampled WorkflowRuns' ids are legacy Workflows here, none a
  WorkflowRun, but other nodes (another copy of the exported database) →
  refuse: writing a replay into a legacy graph would add a second node per run;
* otherwise the database holds something else: refuse, unless the caller
  passed ``--into-nonempty``. Keys that happen to exist prove nothing.

Element ids are only meaningful in the database that issued them, and Neo4j
reuses the ids of deleted nodes; that is why a match must also agree on the
``id`` property and the label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from etl.errors import StageError
from etl.graph import history, schema
from etl.graph.params import SOURCE_ID, prop_name
from etl.graph.schema import Driver, SchemaItem
from etl.load_input import StageInput, TableInfo, read_columns
from etl.load_steps import IN_PLACE, REPLAY, SOURCE_LABEL, TARGET_LABEL, Keys

SAMPLE = 25
#: Labels whose key the target schema makes unique (when the data allows it).
UNIQUE_LABELS = ("WorkflowRun", "Event", "Plan")


@dataclass(frozen=True)
class Target:
    mode: str
    reason: str
    #: the database was empty: a replay may create instead of merge
    fresh: bool = False
    #: the history record saying this stage is already applied here: nothing to do
    done: dict[str, Any] | None = None


def _sample(stage: StageInput, table: TableInfo) -> list[dict[str, object]]:
    frame = read_columns(stage.path, table, ["_element_id", "id"])
    if "id" not in frame.columns or frame.height == 0:
        return []
    step = max(frame.height // SAMPLE, 1)
    picked = frame.gather_every(step).head(SAMPLE).drop_nulls()
    return [{"e": e, "id": i} for e, i in picked.select("_element_id", "id").iter_rows()]


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
    runs = stage.table(f"nodes/{TARGET_LABEL}")
    if stage.stage == "transform" and runs is not None and runs.rows:
        rows = _sample(stage, runs)
        found = schema.found_by_element_id(driver, database, rows, [SOURCE_LABEL, TARGET_LABEL])
        if rows and found == len(rows):
            if schema.found_by_element_id(driver, database, rows, [TARGET_LABEL]) == found:
                raise StageError(
                    f"every sampled WorkflowRun of {stage.path} is already converted here, but "
                    "the database's history has no record of a load of this stage (an older "
                    "etl, or a migration by hand): loading it again would overwrite what "
                    "changed since",
                    hint="if this stage was applied, there is nothing to load; to apply it "
                    "again, roll it back first (`etl load --rollback`)",
                )
            return Target(
                IN_PLACE,
                f"{found}/{len(rows)} sampled WorkflowRuns are the exported Workflow nodes",
            )
        if found:
            raise StageError(
                f"only {found} of {len(rows)} sampled WorkflowRuns are the exported nodes: "
                "the database changed since the export, or is another copy",
                hint="export and transform this database again, then load",
            )
        ids = [r["id"] for r in rows]
        legacy = schema.found_by_id(driver, database, SOURCE_LABEL, ids) if ids else 0
        if legacy and not schema.found_by_id(driver, database, TARGET_LABEL, ids):
            raise StageError(
                f"{legacy} of {len(ids)} sampled WorkflowRuns are legacy Workflows in this "
                "database (and none is a WorkflowRun), but not the nodes that were exported "
                "(other element ids): this is "
                "another copy of the exported database, e.g. restored from a dump or a file "
                "copy that got a new database id, and an in-place load finds its nodes by "
                "element id",
                hint="export and transform this database again, then load",
            )
    keyed = [t for t in stage.tables("node") if t.key == ("id",) and t.rows]
    if keyed:
        rows = _sample(stage, keyed[0])
        same = schema.found_by_element_id(driver, database, rows, [keyed[0].name])
        no_runs = runs is None or not runs.rows
        if rows and same == len(rows) and stage.stage == "transform" and no_runs:
            # Nothing migrated (every run rejected, say): the other nodes prove the source.
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


def wanted_schema(stage: StageInput, keys: Keys, mode: str) -> list[SchemaItem]:
    """Constraints and indexes a load creates before writing (see ``etl.graph.schema``)."""
    wanted: list[SchemaItem] = []
    for table in sorted(stage.tables("node"), key=lambda t: t.name):
        label = table.name
        if mode == IN_PLACE and label not in (TARGET_LABEL, "Issue", "Event", "Plan"):
            continue
        ambiguous = len(keys.ambiguous.get(label, ())) > 0
        if table.key:
            unique = label in UNIQUE_LABELS and not ambiguous
            wanted.append(SchemaItem(label, tuple(prop_name(k) for k in table.key), unique))
        if mode == REPLAY and (not table.key or ambiguous):
            wanted.append(SchemaItem(label, (SOURCE_ID,), False))
    return wanted


def deferred_schema(wanted: list[SchemaItem], mode: str) -> list[SchemaItem]:
    """The part of ``wanted`` that may be built while the batches are written.

    In place, the load writes only Issues and the converted runs; the target
    model's constraints on the labels it does not write (``Event {id}``,
    ``Plan {id}``) serve no lookup of the load, so they are built alongside
    it: ``Event {id}`` over 1.9M events took 13.8 s of a 75 s in-place load at
    100k workflows. A replay looks every label up by key: nothing is deferred.
    """
    if mode != IN_PLACE:
        return []
    return [item for item in wanted if item.label not in (TARGET_LABEL, "Issue")]

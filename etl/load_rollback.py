"""`etl load --rollback`: put an in-place load back to the legacy graph, from the export.

The export the transform read is the backup. Rolling back an in-place load
restores, in this order and all idempotently (a crashed rollback is simply
run again):

1. every node the load converted (the stage's WorkflowRun element ids) gets
   back its legacy labels and *exactly* its exported properties
   (``SET n = …``: ``metadata`` and ``created_at`` return with their original
   values, zone and nanoseconds; derived properties go), and loses its
   incoming ``HAS_RUNS``;
2. every exported ``BASED_ON_ISSUE`` exists again between the same two nodes
   (merged by element id, so the ones the load never removed stay single);
3. every exported Issue gets back exactly its properties (``number`` a Float);
4. Issues the migration created are deleted (with their ``HAS_RUNS``), unless
   something else got attached to them meanwhile, which is reported;
5. the loader's own constraints and indexes (``etl_*``) are dropped.

Only relationship *identity* cannot come back: Neo4j gives a re-created
``BASED_ON_ISSUE`` a new element id. A replayed load created a new graph; it
has no legacy state to return to, so its rollback is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from etl.errors import StageError, ValidationFailed
from etl.graph.connection import open_driver, server_info
from etl.graph.history import ROLLED_BACK, ROLLING_BACK, find, read_history, record_state
from etl.graph.params import ColumnPlan
from etl.graph.schema import counts, drop_schema, release_lock, schema_names, take_lock
from etl.graph.write import BatchMismatch, Columns, NodeOp, RelOp, statement, write_batch
from etl.load_input import StageInput, batches, stage_error_for
from etl.load_ledger import LEDGER, Ledger, read_state
from etl.load_rels import rel_steps
from etl.load_steps import (
    IN_PLACE,
    REPLACED_TYPES,
    SOURCE_LABEL,
    TARGET_LABEL,
    Keys,
    node_op,
    node_rows,
    table_plans,
)
from etl.progress import NullReporter, Reporter
from etl.settings import Settings
from etl.stage import now_utc

Items = list[tuple[NodeOp | RelOp, Columns]]
RollbackStep = tuple[str, Iterator[pa.Table], Callable[[pa.Table], Items]]


def run_rollback(
    settings: Settings,
    *,
    in_dir: Path,
    ledger_dir: Path,
    export_dir: Path | None = None,
    batch_size: int = 5_000,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Restore the legacy graph of an in-place load of ``in_dir``; see the module docstring."""
    from etl.load_input import open_input

    reporter = reporter or NullReporter()
    stage = open_input(in_dir, export_dir=export_dir)
    state = read_state(ledger_dir / LEDGER)
    header = state.header
    if header is None or header.get("input_manifest_sha256") != stage.sha256:
        raise StageError(
            f"{ledger_dir / LEDGER} records no load of {in_dir}",
            hint="pass the --ledger-dir of that load (rollback needs its ledger)",
        )
    if header.get("mode") != IN_PLACE:
        raise _replay_has_no_rollback(settings, header, state.done_counts)
    if (header.get("target"), header.get("database")) != (
        settings.redacted_uri(),
        settings.database,
    ):
        raise StageError(
            f"the ledger records a load into {header.get('target')} "
            f"(database {header.get('database')!r}), not this one"
        )
    assert stage.export_path is not None and stage.export_manifest is not None
    export = StageInput(stage.export_path, stage.export_manifest, "")
    with open_driver(settings) as driver:
        info = server_info(driver, settings)
        reporter.info(f"Rolling back {in_dir} on {info.describe()} from {stage.export_path}")
        lock, _ = take_lock(driver, settings.database, purpose="rollback", input_sha=stage.sha256)
        try:
            _check_history(driver, settings.database, stage)
            record_state(driver, settings.database, stage.sha256, ROLLING_BACK, at=now_utc())
            done: dict[str, int] = {}
            for name, source, encode in _steps(stage, export, batch_size):
                with reporter.task(f"rollback {name}") as task:
                    for index, batch in enumerate(source):
                        work = [(statement(op), rows) for op, rows in encode(batch)]
                        try:
                            matched = write_batch(driver, settings.database, work)
                        except BatchMismatch as e:
                            raise stage_error_for(name, index, e) from None
                        done[name] = done.get(name, 0) + matched
                        task.advance(batch.num_rows)
            dropped = schema_names(
                driver, settings.database, prefix="etl_", keep=("etl_lock", "etl_history")
            )
            drop_schema(driver, settings.database, dropped)
            after = counts(driver, settings.database)
            # Before the lock goes: a load must never see "applied" for a rolled-back graph.
            record_state(driver, settings.database, stage.sha256, ROLLED_BACK, at=now_utc())
        finally:
            release_lock(driver, settings.database, lock)
    ledger = Ledger(ledger_dir / LEDGER, state)
    try:
        ledger.record("rolled_back", at=now_utc(), restored=done, dropped_schema=dropped)
    finally:
        ledger.close()
    expected = (stage.export_manifest.get("source") or {}).get("counts_before")
    report = {"restored": done, "dropped_schema": dropped, "counts_after": after}
    if expected is not None and expected != after:
        raise ValidationFailed(
            "rollback finished, but the counts differ from the export's",
            problems=[
                f"{g}: now {after[g]}, export {expected.get(g)}" for g in ("labels", "types")
            ],
            hint="the database changed after the export; compare with `etl export` and a diff",
        )
    return report


def _check_history(driver: Any, database: str, stage: StageInput) -> None:
    """Roll back only a load this database records (else it is another graph now)."""
    own = find(read_history(driver, database), stage.sha256)
    if own is None:
        raise StageError(
            f"the database has no record of a load of {stage.path}: it was wiped or replaced "
            "since the load (or loaded by an older etl), and a rollback writes by element id",
            hint="check NEO4J_URI / NEO4J_DATABASE; to put the legacy graph back into an empty "
            "database, replay the export (`etl load --in <export>`)",
        )


def _replay_has_no_rollback(
    settings: Settings, header: dict[str, Any], done_counts: dict[str, Any] | None
) -> StageError:
    """Why a replay cannot be rolled back, and advice that never wipes other data.

    Emptying the database undoes a replay only when the database holds
    nothing but the replay: it was empty when the replay started (``fresh``)
    and it still has exactly the counts the replay left.
    """
    message = (
        "that load replayed the stage into a new database; there is no legacy state to roll back to"
    )
    only_replay = False
    if header.get("fresh") and done_counts is not None:
        with open_driver(settings) as driver:
            only_replay = counts(driver, settings.database) == done_counts
    if only_replay:
        return StageError(
            message + ", and the database holds nothing but that replay",
            hint="to undo it, empty that database (for the bundled local server: "
            "`etl db reset --yes`)",
        )
    return StageError(
        message + ", and the database holds more than that replay (it was not empty, or it "
        "changed since): emptying it would lose that data",
        hint="restore a backup taken before the load (`etl restore backups/<stamp> --replace`), "
        "or remove the replayed nodes by hand",
    )


def _node_step(
    name: str, source: Iterator[pa.Table], op: NodeOp, plans: list[ColumnPlan], label: str | None
) -> RollbackStep:
    def encode(batch: pa.Table) -> Items:
        return [(op, node_rows(batch, plans, label))]

    return name, source, encode


def _steps(stage: StageInput, export: StageInput, batch_size: int) -> list[RollbackStep]:
    steps: list[RollbackStep] = []
    runs = stage.table(f"nodes/{TARGET_LABEL}")
    legacy = export.table(f"nodes/{SOURCE_LABEL}")
    if runs is not None and legacy is not None:
        converted = pl.read_parquet(stage.path / runs.path, columns=["_element_id"])["_element_id"]
        eids = pl.read_parquet(export.path / legacy.path, columns=["_element_id"])["_element_id"]
        keep = eids.is_in(converted.implode()).to_arrow()
        _, plans = table_plans(export.path, legacy)
        restore = node_op(
            legacy,
            plans,
            "eid",
            create=False,
            guard_labels=(SOURCE_LABEL, TARGET_LABEL),
            add_labels=(SOURCE_LABEL,),
            remove_labels=(TARGET_LABEL,),
            dynamic_labels=True,
            replace=True,
            delete_in=("HAS_RUNS",),
        )
        source = batches(export.path / legacy.path, batch_size, keep=keep)
        steps.append(_node_step(legacy.stem, source, restore, plans, SOURCE_LABEL))
    keys = Keys(columns={t.name: t.key for t in export.tables("node")})
    for rel in REPLACED_TYPES:
        table = export.table(f"relationships/{rel}")
        if table is not None:
            for step in rel_steps(export, table, keys, IN_PLACE):
                steps.append((step.name, step.source(batch_size), step.encode))
    issues = export.table("nodes/Issue")
    if issues is not None:
        _, plans = table_plans(export.path, issues)
        restore_issue = node_op(
            issues, plans, "eid", create=False, guard_labels=("Issue",), replace=True
        )
        source = batches(export.path / issues.path, batch_size)
        steps.append(_node_step(issues.stem, source, restore_issue, plans, None))
    created = stage.table("nodes/Issue")
    if created is not None and "_created" in pq.read_schema(stage.path / created.path).names:
        flags = pl.read_parquet(stage.path / created.path, columns=["_created"])["_created"]
        _, plans = table_plans(stage.path, created)
        delete = node_op(
            created, plans, "key", create=False, delete_out=("HAS_RUNS",), delete_node=True
        )
        keep = flags.fill_null(False).to_arrow()
        source = batches(stage.path / created.path, batch_size, keep=keep)
        steps.append(_node_step(f"{created.stem} (created)", source, delete, plans, None))
    return steps

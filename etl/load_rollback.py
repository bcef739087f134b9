"""`etl load --rollback`: put an in-place load back to the exported graph, from the export.

The export the transform read is the backup, and the load's change
(``etl.load_change``, derived from the stage and that export) says what to
undo. Rolling back restores, last phase first and all idempotently (a
crashed rollback is simply run again):

1. relationships the load created are deleted, between the stage's endpoints;
2. nodes the load created are deleted, unless something else got attached to
   them meanwhile (they are then left, and counted);
3. every node the load updated gets back its exported labels and *exactly*
   its exported properties (``SET n = …``: removed properties return with
   their original values, zone and nanoseconds; derived ones go);
4. nodes the load deleted are created again from their exported rows;
5. relationships the load deleted exist again between the same two nodes
   (merged, so a rollback run twice leaves them single);
6. the loader's own constraints and indexes (``etl_*``) are dropped.

Only *identity* of what was deleted cannot come back: Neo4j gives a re-created
node or relationship a new element id. A replayed load created a new graph;
it has no earlier state to return to, so its rollback is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from etl.errors import StageError, ValidationFailed
from etl.graph.connection import open_driver, server_info
from etl.graph.history import ROLLED_BACK, ROLLING_BACK, find, read_history, record_state
from etl.graph.params import SOURCE_ID, ColumnPlan
from etl.graph.schema import counts, drop_schema, release_lock, schema_names, take_lock
from etl.graph.write import BatchMismatch, Columns, NodeOp, RelOp, statement, write_batch
from etl.load_change import CREATE, stage_change
from etl.load_input import StageInput, batches, stage_error_for
from etl.load_ledger import LEDGER, Ledger, read_state
from etl.load_model import Step
from etl.load_rels import rel_steps
from etl.load_steps import IN_PLACE, Keys, node_op, node_rows, table_plans
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


def _as_deletes(step: Step, batch_size: int) -> RollbackStep:
    """A load's relationship step turned into deleting what it created, pair by pair."""

    def encode(batch: pa.Table) -> Items:
        return [
            (replace(op, delete="ends", multi=False, plans=()), cols)
            for op, cols in step.encode(batch)
            if isinstance(op, RelOp)
        ]

    return f"{step.name} (created)", step.source(batch_size), encode


def _eids(path: Path) -> pl.Series:
    return pl.read_parquet(path, columns=["_element_id"])["_element_id"].cast(pl.String)


def _steps(stage: StageInput, export: StageInput, batch_size: int) -> list[RollbackStep]:
    """The inverse of the load's change (``etl.load_change``), last phase first."""
    change = stage_change(stage)
    steps: list[RollbackStep] = []
    # 1. Relationships the load created go, found between the stage's endpoints.
    stage_keys = Keys(columns={t.name: t.key for t in stage.tables("node")})
    for created in change.rel_creates:
        for step in rel_steps(stage, created.table, stage_keys, IN_PLACE, keep=created.mask):
            steps.append(_as_deletes(step, batch_size))
    # 2. Nodes the load created go, unless something else got attached meanwhile.
    for node in change.nodes:
        if node.count(CREATE):
            table = node.table
            _, plans = table_plans(stage.path, table)
            delete = node_op(table, plans, "key", create=False, delete_node=True)
            keep = pc.equal(node.ops, CREATE)
            source = batches(stage.path / table.path, batch_size, keep=keep)
            steps.append(_node_step(f"{table.stem} (created)", source, delete, plans, None))
    # 3. Updated nodes get back their exported labels and exactly their exported properties.
    for node, k, exported in change.updates():
        table = node.table
        updated = _eids(stage.path / table.path).filter(pl.Series(node.ops) == k)
        keep = _eids(export.path / exported.path).is_in(updated.implode()).to_arrow()
        _, plans = table_plans(export.path, exported)
        relabel = exported.name != table.name
        restore = node_op(
            exported,
            plans,
            "eid",
            create=False,
            guard_labels=tuple(dict.fromkeys((exported.name, table.name))),
            add_labels=(exported.name,) if relabel else (),
            remove_labels=(table.name,) if relabel else (),
            dynamic_labels=True,
            replace=True,
        )
        source = batches(export.path / exported.path, batch_size, keep=keep)
        steps.append(_node_step(exported.stem, source, restore, plans, exported.name))
    # 4. Deleted nodes come back (new element ids: found by the old one until step 6).
    recreated: dict[str, pl.Series] = {}
    for gone in change.node_deletes:
        table = gone.table
        _, plans = table_plans(export.path, table)
        again = NodeOp(
            label=table.name, match="src", key=(), plans=tuple(plans), dynamic_labels=True
        )
        source = batches(export.path / table.path, batch_size, keep=gone.mask)
        steps.append(_node_step(f"{table.stem} (deleted)", source, again, plans, table.name))
        old = _eids(export.path / table.path).filter(pl.Series(gone.mask))
        recreated[table.name] = (table.name + "\x00" + old).alias("tagged")
    # 5. Deleted relationships come back between the exported endpoints.
    export_keys = Keys(columns={t.name: t.key for t in export.tables("node")}, ambiguous=recreated)
    for gone in change.rel_deletes:
        for step in rel_steps(export, gone.table, export_keys, IN_PLACE, keep=gone.mask):
            steps.append((f"{step.name} (deleted)", step.source(batch_size), step.encode))
    # 6. The re-created nodes lose the loader's bookkeeping property.
    for gone in change.node_deletes:
        table = gone.table
        tidy = NodeOp(
            label=table.name, match="src", key=(), plans=(), create=False, remove_props=(SOURCE_ID,)
        )
        source = batches(export.path / table.path, batch_size, keep=gone.mask)
        steps.append(_node_step(f"{table.stem} (source ids)", source, tidy, [], None))
    return steps

"""The load stage: apply a verified stage to a live Neo4j, resumably, then validate.

``run_load`` in order:

1. verify the stage and its lineage (``etl.load_input.open_input``): nothing
   is read from or written to the database for a stage that does not verify;
2. decide what to do with the ledger (``etl.load_ledger.plan_ledger``):
   resume, start over, or refuse with the flag that fixes it;
3. connect, print the target, take the lock (``etl.graph.schema``);
4. decide *in place* or *replay* by looking at the database
   (``etl.load_target.detect_mode``), or take the mode a resumed ledger recorded;
5. encode the first batch of every step (``preflight``: a table the load
   cannot write fails here, before any write), print the plan (steps, rows,
   batches), record the load in the database's history, create constraints
   and indexes;
6. run every step batch by batch: one managed write transaction per batch,
   then one fsynced ledger line; batches the ledger holds are skipped;
7. mark the ledger done, release the lock, validate (``etl.validate``), and
   write ``report.json`` next to the ledger.

``--dry-run`` (``etl.load_plan``) and ``--rollback`` (``etl.load_rollback``)
live in their own modules. Everything here is orchestration: the Cypher is in
``etl.graph``.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etl.errors import ConfigError, LockHeld, StageError
from etl.graph import history
from etl.graph.connection import open_driver, server_info
from etl.graph.schema import (
    Driver,
    break_lock,
    counts,
    ensure_schema,
    lock_is_live_here,
    read_lock,
    release_lock,
    take_lock,
)
from etl.graph.write import (
    AlreadyCommitted,
    BatchMismatch,
    clear_markers,
    ensure_markers,
    statement,
    write_batch,
)
from etl.load_input import StageInput, batch_digest, open_input, stage_error_for
from etl.load_ledger import LEDGER, Ledger, archive, open_ledger, plan_ledger, write_report
from etl.load_record import history_entry, nothing_report, preflight
from etl.load_steps import IN_PLACE, REPLAY, Step, build_steps, find_keys
from etl.load_target import (
    Target,
    deferred_schema,
    detect_mode,
    in_place_labels,
    resume_target,
    wanted_schema,
)
from etl.progress import NullReporter, Reporter
from etl.settings import Settings
from etl.stage import now_utc
from etl.validate import Validation, check_loaded

DEFAULT_BATCH_SIZE = 5_000
DEFAULT_LEDGER_DIR = Path("data/load")
#: Concurrent write transactions per step. Measured on a 2-core box against a
#: local server: 1 → 23k, 2 → 34k, 3 → 43k merged nodes/s (the server overlaps
#: one transaction's commit with another's work).
DEFAULT_WORKERS = 3


@dataclass
class LoadResult:
    mode: str
    report: dict[str, Any]
    validation: Validation | None


def run_load(
    settings: Settings,
    *,
    in_dir: Path,
    ledger_dir: Path = DEFAULT_LEDGER_DIR,
    batch_size: int = DEFAULT_BATCH_SIZE,
    resume: bool = False,
    restart: bool = False,
    into_nonempty: bool = False,
    export_dir: Path | None = None,
    workers: int = DEFAULT_WORKERS,
    validate: bool = True,
    values_checked: bool = False,
    reporter: Reporter | None = None,
) -> LoadResult:
    """Load ``in_dir`` into the configured database; see the module docstring."""
    reporter = reporter or NullReporter()
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be positive, got {batch_size}")
    stage = open_input(in_dir, export_dir=export_dir)
    plan = plan_ledger(ledger_dir, input_sha=stage.sha256, resume=resume, restart=restart)
    if plan.resuming and plan.state.header is not None:
        recorded = int(plan.state.header.get("batch_size", batch_size))
        if recorded != batch_size:
            reporter.info(f"using the ledger's batch size {recorded:,} (batches must line up)")
        batch_size = recorded
    started = time.perf_counter()
    database = settings.database
    with open_driver(settings) as driver:
        info = server_info(driver, settings)
        reporter.info(f"Target: {info.describe()}")
        lock, stale = take_lock(driver, database, purpose="load", input_sha=stage.sha256)
        if stale is not None:
            reporter.info(
                f"took over the lock of {stale.get('holder')} (started {stale.get('started_at')}): "
                "that process is gone"
            )
        try:
            target = _target(driver, settings, stage, plan.state.header, into_nonempty)
        except BaseException:
            release_lock(driver, database, lock)
            raise
        if target.done is not None:
            # Nothing to write; the ledger and report of the load that did it stay as they are.
            # Not validated again: a live database may have changed since (`etl validate` checks).
            release_lock(driver, database, lock)
            if plan.state.header is not None and plan.resuming:
                archive(ledger_dir / LEDGER)  # that load finished through another ledger
            return LoadResult(target.mode, nothing_report(stage, target, restart), None)
        if plan.note:
            reporter.info(plan.note)
        try:
            keys = find_keys(stage, target.mode)
            steps = build_steps(stage, target.mode, keys, fresh=target.fresh)
            preflight(steps, batch_size)
            if target.mode == REPLAY and not values_checked:
                # A replay writes every table: every value that can fail is rebuilt first.
                from etl.replay_check import check_replay

                check_replay(stage, driver=driver, database=database)
            reporter.info(describe_plan(stage, target, steps, batch_size))
            load_id = (plan.state.header or {}).get("load_id") or uuid.uuid4().hex
            markers = f"{load_id}/" if target.fresh else None
            header = {
                "input": str(stage.path),
                "input_manifest_sha256": stage.sha256,
                "export": str(stage.export_path) if stage.export_path else None,
                "target": info.uri,
                "database": database,
                "server_version": f"{info.version} {info.edition}",
                "mode": target.mode,
                "fresh": target.fresh,
                "load_id": load_id,
                "batch_size": batch_size,
                "started_at": now_utc(),
            }
            # The record first: a ledger header never exists without it (see resume_target).
            history.record_start(driver, database, history_entry(stage, header))
            ledger = open_ledger(ledger_dir, plan, header)
            try:
                wanted = wanted_schema(stage, keys, target.mode)
                written = in_place_labels(stage) if target.mode == IN_PLACE else ()
                later = deferred_schema(wanted, target.mode, written)
                schema_items = ensure_schema(
                    driver, database, [i for i in wanted if i not in later]
                )
                _record_schema(ledger, reporter, schema_items)
                if markers is not None:
                    ensure_markers(driver, database)
                with ThreadPoolExecutor(max_workers=1, thread_name_prefix="etl-schema") as bg:
                    building = bg.submit(ensure_schema, driver, database, later)
                    stats = [
                        _run_step(
                            driver, database, s, ledger, batch_size, workers, markers, reporter
                        )
                        for s in steps
                    ]
                    built = building.result()
                _record_schema(ledger, reporter, built)
                schema_items += built
                clear_markers(driver, database)  # also those of a load abandoned by --restart
                after = counts(driver, database)
                finished = now_utc()
                ledger.record("done", finished_at=finished, counts=after)
                history.record_state(
                    driver, database, stage.sha256, history.APPLIED, at=finished, counts=after
                )
            finally:
                ledger.close()
        finally:
            release_lock(driver, database, lock)
        validation = (
            check_loaded(driver, database, stage, target.mode, info.describe())
            if validate
            else None
        )
    seconds = time.perf_counter() - started
    report = _report(stage, target, header, stats, schema_items, after, seconds, validation)
    write_report(ledger_dir, report)
    return LoadResult(target.mode, report, validation)


def _record_schema(ledger: Ledger, reporter: Reporter, items: list[Any]) -> None:
    if not items:
        return
    created = [i.name for i in items if i.outcome in ("created", "index-instead")]
    ledger.record("schema", items=[i.describe() for i in items], created=created)
    for item in items:
        if item.note:
            reporter.info(f"schema: {item.describe()}")


def _target(
    driver: Driver,
    settings: Settings,
    stage: StageInput,
    header: dict[str, Any] | None,
    into_nonempty: bool,
) -> Target:
    if header is None:
        target = detect_mode(driver, settings.database, stage, into_nonempty=into_nonempty)
    else:
        # A half-done replay no longer looks empty; the ledger knows what was started.
        if (header.get("target"), header.get("database")) != (
            settings.redacted_uri(),
            settings.database,
        ):
            raise StageError(
                f"the ledger records a load into {header.get('target')} "
                f"(database {header.get('database')!r}), not this one",
                hint="resume against that database, or start over with --restart",
            )
        target = resume_target(driver, settings.database, stage, header)
    if target.mode == IN_PLACE and stage.export_path is None:
        raise StageError(
            "an in-place load needs the export it was transformed from (it is the backup)",
            hint="pass it with --export",
        )
    return target


def _run_step(
    driver: Driver,
    database: str,
    step: Step,
    ledger: Ledger,
    batch_size: int,
    workers: int,
    markers: str | None,
    reporter: Reporter,
) -> dict[str, Any]:
    """One step, batch by batch, up to ``workers`` transactions at once.

    Node batches of one step touch disjoint nodes (distinct keys), so their
    order does not matter and concurrent transactions do not wait on each
    other. Relationship writes lock both endpoints, and concurrent batches
    that share nodes deadlock (measured: three writers merging the
    relationships of one chain were slower than one, retrying deadlocks), so
    those steps write one batch at a time while the next batch is encoded.
    Only this thread writes the ledger, each line after its batch committed.

    With ``markers`` (a fresh replay), each batch also creates its marker
    ``<markers><step>/<index>``; a batch whose marker exists committed in an
    earlier run (it crashed before the ledger line) and is ledgered as skipped.
    """
    started = time.perf_counter()
    written = skipped = batches = first = 0
    width = max(workers, 1) if step.concurrent else 1
    pending: dict[Future[int], tuple[int, int, int, str]] = {}
    failure: BaseException | None = None

    def settle(done: set[Future[int]], task: Any) -> None:
        nonlocal written, skipped, batches, failure
        for future in sorted(done, key=lambda f: pending[f][0]):
            index, start, rows, digest = pending.pop(future)
            error = future.exception()
            if isinstance(error, AlreadyCommitted):
                ledger.batch(step.name, index, start, rows, digest)
                skipped += rows
                task.advance(rows)
                continue
            if error is not None:
                failure = failure or (
                    stage_error_for(step.name, index, error)
                    if isinstance(error, BatchMismatch)
                    else error
                )
                continue
            # Only after the commit: a crash before this line replays a harmless batch.
            ledger.batch(step.name, index, start, rows, digest)
            written += rows
            batches += 1
            task.advance(rows)

    with (
        reporter.task(step.name, total=step.rows) as task,
        ThreadPoolExecutor(max_workers=width, thread_name_prefix="etl-load") as pool,
    ):
        try:
            for index, batch in enumerate(step.source(batch_size)):
                digest = batch_digest(batch)
                committed = ledger.committed(step.name, index)
                if committed is not None:
                    if committed != digest:
                        raise StageError(
                            f"{step.name}, batch {index}: the ledger recorded other rows "
                            "(the stage or the batch size changed)",
                            hint="start over with `etl load --restart`",
                        )
                    skipped += batch.num_rows
                    task.advance(batch.num_rows)
                else:
                    work = [(statement(op), cols) for op, cols in step.encode(batch)]
                    marker = f"{markers}{step.name}/{index}" if markers else None
                    future = pool.submit(write_batch, driver, database, work, marker=marker)
                    pending[future] = (index, first, batch.num_rows, digest)
                first += batch.num_rows
                # One batch more than writers is in flight: it is encoded while they write.
                if len(pending) > width:
                    settle(wait(pending, return_when=FIRST_COMPLETED).done, task)
                if failure is not None:
                    break
        finally:
            # Whatever happens, batches already sent finish and get their ledger lines.
            settle(wait(pending).done, task)
    if failure is not None:
        raise failure
    seconds = time.perf_counter() - started
    return {
        "step": step.name,
        "kind": step.table.kind,
        "rows": first,
        "written": written,
        "skipped": skipped,
        "batches": batches,
        "seconds": round(seconds, 3),
        "rows_per_s": round(written / seconds) if seconds > 0 and written else None,
    }


def _report(
    stage: StageInput,
    target: Target,
    header: dict[str, Any],
    stats: list[dict[str, Any]],
    schema_items: list[Any],
    after: dict[str, Any],
    seconds: float,
    validation: Validation | None,
) -> dict[str, Any]:
    def total(kind: str, key: str) -> float:
        return sum(float(s[key]) for s in stats if s["kind"] == kind)

    nodes, rels = total("node", "written"), total("relationship", "written")
    node_s, rel_s = total("node", "seconds"), total("relationship", "seconds")
    return {
        **{k: header[k] for k in ("input", "input_manifest_sha256", "target", "database")},
        "mode": target.mode,
        "mode_reason": target.reason,
        "batch_size": header["batch_size"],
        "steps": stats,
        "schema": [i.describe() for i in schema_items],
        "nodes_written": int(nodes),
        "relationships_written": int(rels),
        "rows_skipped": int(sum(s["skipped"] for s in stats)),
        "nodes_per_s": round(nodes / node_s) if node_s else None,
        "relationships_per_s": round(rels / rel_s) if rel_s else None,
        "seconds": round(seconds, 3),
        "counts_after": after,
        "validation": validation.to_json() if validation else None,
        "finished_at": now_utc(),
        "stage": stage.stage,
    }


def describe_plan(stage: StageInput, target: Target, steps: list[Step], batch_size: int) -> str:
    """What the load will do, printed before anything is written."""
    lines = [f"Loading {stage.path} ({stage.stage}) {target.mode}: {target.reason}"]
    for s in steps:
        n = -(-s.rows // batch_size) if s.rows else 0
        lines.append(f"  {s.name:<44}{s.rows:>12,} rows in {n:,} batches")
    return "\n".join(lines)


def summarize(report: dict[str, Any]) -> str:
    """Steps, rows, rates and where the report is, for a person."""
    if report.get("nothing_to_do"):
        return f"Nothing to load: {report['mode_reason']}. Nothing was written; {report['note']}."
    lines = [f"{'step':<44}{'rows':>12}{'written':>12}{'rows/s':>11}"]
    for s in report["steps"]:
        rate = f"{s['rows_per_s']:,}" if s.get("rows_per_s") else "-"
        lines.append(f"{s['step']:<44}{s['rows']:>12,}{s['written']:>12,}{rate:>11}")
    lines.append(
        f"{report['mode']} load: {report['nodes_written']:,} node rows and "
        f"{report['relationships_written']:,} relationship rows written "
        f"({report['rows_skipped']:,} skipped as already committed) in {report['seconds']:.1f}s"
    )
    return "\n".join(lines)


def run_break_lock(settings: Settings) -> dict[str, Any] | None:
    """Remove the load lock; return what was removed (None: no lock).

    A lock whose holder is a live process on this host is not stale: removing it
    would let a second load interleave with the first, so that is refused.
    Holders on other hosts cannot be checked from here; the user vouches for them.
    """
    with open_driver(settings) as driver:
        held = read_lock(driver, settings.database)
        if held is not None and lock_is_live_here(held):
            raise LockHeld(
                f"the load lock is held by {held.get('holder')} ({held.get('purpose')}, started "
                f"{held.get('started_at')}), which is still running on this host",
                hint=f"wait for it, or stop it (kill {held.get('pid')}) and run "
                "`etl load --resume`; a killed holder's lock is taken over automatically",
            )
        return break_lock(driver, settings.database)

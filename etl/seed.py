"""`etl seed`: a realistic, deterministic *legacy* graph (docs/MIGRATION.md), online.

The graph itself comes from ``etl.seed_generate`` (what it looks like, what
``--dirty`` plants, why it is deterministic); this module writes it through
Bolt (``etl.graph.seed_write``) and reports what it wrote: the summary's
``expected`` block says what a correct ``etl transform`` must report.
``etl seed --offline`` (``etl.seed_offline``) writes the same graph with the
importer instead, several times faster, into the local home only.

Memory is flat: each batch is generated while the previous one is being written.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from etl.errors import EtlError
from etl.graph import seed_write
from etl.progress import NullReporter, Reporter, Task
from etl.seed_generate import Generator
from etl.seed_model import NOW, Batch
from etl.seed_summary import check_options, describe, summarize
from etl.settings import Settings

__all__ = ["NOW", "check_options", "describe", "run_seed", "seed_database", "summarize"]

#: Small transactions, two at a time: the fastest measured on a 2-core machine.
DEFAULT_BATCH_SIZE, DEFAULT_WRITERS = 200, 2

T = TypeVar("T")


def run_seed(
    settings: Settings,
    *,
    workflows: int,
    seed: int = 42,
    dirty: float = 0.0,
    replace: bool = False,
    batch_size: int | None = None,
    offline: bool = False,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """`etl seed`: online into the configured database, or ``offline`` with the importer
    into the local home (``etl.seed_offline``); returns the summary."""
    if offline:
        from etl.seed_offline import seed_offline

        return seed_offline(settings, workflows=workflows, seed=seed, dirty=dirty,
                            replace=replace, reporter=reporter)  # fmt: skip
    from etl.graph.connection import open_driver

    with open_driver(settings) as driver:
        return seed_database(driver, database=settings.database, workflows=workflows, seed=seed,
                             dirty=dirty, replace=replace, reporter=reporter,
                             batch_size=batch_size or DEFAULT_BATCH_SIZE)  # fmt: skip


def seed_database(
    driver: seed_write.Driver,
    *,
    database: str,
    workflows: int,
    seed: int = 42,
    dirty: float = 0.0,
    replace: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    writers: int = DEFAULT_WRITERS,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Write the legacy graph for ``(seed, workflows, dirty)`` into ``database``.

    Refuses a database that holds anything unless ``replace`` (which wipes it
    first). Returns the summary: what was written, what was planted, what a
    correct transform must report (``expected``) and how fast it went.
    """
    check_options(workflows=workflows, dirty=dirty, batch_size=batch_size, writers=writers)
    reporter = reporter or NullReporter()
    if not replace:
        found = seed_write.contents(driver, database)
        if found:
            raise EtlError(
                f"database {database!r} is not empty ({', '.join(found)}); "
                "refusing to seed over existing data",
                hint="pass --replace to wipe it first (this deletes everything in it)",
            )
    gen = Generator(seed=seed, workflows=workflows, dirty=dirty)
    # Nothing is wiped before the code that can fail has run once: the first batches
    # are generated and the progress display is up (a terminal-only crash in it once
    # left a --replace'd database empty).
    issues = _first_generated(gen.pool_issues(10 * batch_size))
    batches = _first_generated(gen.batches(batch_size))
    with reporter.task("seed issues", total=gen.pool) as task:
        started = time.perf_counter()
        if replace:
            reporter.info(f"Wiping database {database!r} (--replace)…")
            seed_write.wipe(driver, database)
        wiped = time.perf_counter()
        seed_write.create_temp_indexes(driver, database)
        with _dropping_temp_indexes_on_error(driver, database):
            for rows in issues:
                seed_write.write_issues(driver, database, rows)
                task.advance(len(rows))
    with (
        _dropping_temp_indexes_on_error(driver, database),
        reporter.task("seed workflows", total=workflows) as task,
    ):
        _write_stream(driver, database, batches, task, writers)
    # Legacy databases have no schema: leave none behind.
    seed_write.drop_temp_indexes(driver, database)
    done = time.perf_counter()
    summary = summarize(gen, seed, dirty, write_s=done - wiped, wipe_s=wiped - started)
    reporter.info(
        f"Wrote {summary['total_nodes']:,} nodes and {summary['total_relationships']:,} "
        f"relationships in {summary['write_s']:.1f}s ({summary['nodes_per_s']:,} nodes/s)"
    )
    return summary


def _first_generated(items: Iterator[T]) -> Iterator[T]:
    """``items`` with its first element generated now (so a failure in it happens now)."""
    try:
        first = next(items)
    except StopIteration:
        return iter(())
    return itertools.chain([first], items)


@contextmanager
def _dropping_temp_indexes_on_error(driver: seed_write.Driver, database: str) -> Iterator[None]:
    try:
        yield
    except BaseException:
        seed_write.drop_temp_indexes(driver, database, quiet=True)
        raise


def _write_stream(
    driver: seed_write.Driver, database: str, batches: Iterator[Batch], task: Task, writers: int
) -> None:
    """Write ``batches`` with ``writers`` parallel transactions while the next is generated.

    At most ``writers`` batches are in flight, so memory does not grow with the
    graph. Issue links take a lock: they are the only writes that touch shared
    nodes, and serialising them rules out deadlocks between writers.
    """
    link_lock = threading.Lock()

    def write(batch: Batch) -> int:
        rows = [{**row, "events": batch.workflow_events(row), "next": batch.next_pairs(row)}
                for row in batch.workflows]  # fmt: skip
        ids = seed_write.write_workflows(driver, database, rows)
        based = [{"workflow": ids[k], "repo": key[0], "number": key[1]}
                 for k, row in enumerate(batch.workflows) for key in row["based_on"]]  # fmt: skip
        plans = [{"plan": p["id"], "repo": p["issue"][0], "number": p["issue"][1]}
                 for row in batch.workflows if (p := row["plan"])]  # fmt: skip
        with link_lock:
            seed_write.link_issues(driver, database, before=batch.issues, based_on=based,
                                   has_plan=plans, after=batch.late_issues)  # fmt: skip
        return len(batch.workflows)

    with ThreadPoolExecutor(writers, thread_name_prefix="seed-write") as pool:
        in_flight: deque[Future[int]] = deque()
        for n, batch in enumerate(batches):
            # The first batch goes alone: a cold server plans the queries once, not per writer.
            while in_flight and len(in_flight) >= (writers if n > 1 else 1):
                task.advance(in_flight.popleft().result())
            in_flight.append(pool.submit(write, batch))
        while in_flight:
            task.advance(in_flight.popleft().result())

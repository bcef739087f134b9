"""`etl seed --offline`: the same legacy graph, written by ``neo4j-admin database import``.

The online seed is bound by the server: committing ~6M new entities through
Cypher transactions keeps the JVM busy for minutes (measured: three quarters
of its CPU in the kernel's commit path, not in Cypher). The importer writes
the store files directly. The steps:

1. refuse a NEO4J_URI that is not the local home's server, and a non-empty
   database without ``--replace`` (the check starts the server if a store exists);
2. stream the generator into CSV import files (``etl.seed_files``, written by a
   worker process on another core) in ``<home>/seed-import/``;
3. run ``neo4j-admin database import full`` over the database
   (``--overwrite-destination``: that is the wipe) with the server stopped (a
   running one is stopped while the files are written); on failure remove the
   half-written store (it could not start) and show the importer's errors;
4. start the server again if it was running, and delete the input files.

The graph is the one ``etl seed`` writes online for the same options (same
generator, same values; tests/test_seed_offline.py compares them), and the
summary the same, with ``mode: offline`` and the step timings added.
"""

from __future__ import annotations

import os
import pickle
import queue
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NoReturn

from etl import localdb, seed_files
from etl.errors import ConfigError, EtlError
from etl.graph import seed_write
from etl.graph.connection import open_driver
from etl.offline import IMPORT_HEAP, IMPORT_OFF_HEAP, error_lines, with_server
from etl.progress import NullReporter, Reporter
from etl.seed_generate import Generator
from etl.seed_model import PoolKeys
from etl.settings import Settings

#: Workflows per batch handed to the file writer (about 20 events each), and batches
#: that may wait for it (about 15 MB each).
BATCH, QUEUED = 2_000, 3
Counts = dict[str, int]


def _guard(settings: Settings, replace: bool) -> None:
    if not settings.uri_is_local:
        raise ConfigError(
            "--offline writes the store files of the local Neo4j home, but NEO4J_URI "
            f"points at {settings.redacted_uri()}",
            hint="unset NEO4J_URI to seed the bundled server (ETL_NEO4J_HOME picks the home), "
            "or seed online (without --offline)",
        )
    running = localdb.status(settings).running
    if replace or not (running or localdb.has_store(settings)):
        return
    try:
        settings = with_server(settings)
        with open_driver(settings) as driver:
            found = seed_write.contents(driver, settings.database)
    finally:
        if not running:  # started only to look: leave it as it was
            localdb.stop(settings)
    if found:
        raise EtlError(
            f"database {settings.database!r} is not empty ({', '.join(found)}); "
            "refusing to seed over existing data",
            hint="pass --replace to wipe it first (this deletes everything in it)",
        )


class _FileWorker:
    """``python -m etl.seed_files``: writes the import files from pickled batches.

    A thread feeds the pipe from a small queue, so the generator goes on while
    the worker is busy with earlier batches; the queue's bound (``QUEUED``
    batches) is the backpressure, and all the memory it holds.
    """

    def __init__(self, keys: PoolKeys, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.log = directory.parent / "writer.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "etl.seed_files", str(directory)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=QUEUED)
        self.broken = False
        self.thread = threading.Thread(target=self._feed, name="seed-files", daemon=True)
        self.thread.start()
        self.send(keys)

    def _feed(self) -> None:
        assert self.proc.stdin is not None
        try:
            while (message := self.queue.get()) is not None:
                pickle.dump(message, self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.dump(None, self.proc.stdin)
            self.proc.stdin.close()
        except OSError:  # the worker is gone; finish() says why
            self.broken = True
            while self.queue.get() is not None:  # keep send() from blocking
                pass

    def send(self, message: Any) -> None:
        if self.broken:
            self._failed()
        self.queue.put(message)

    def finish(self) -> tuple[list[str], Counts]:
        """Everything sent: the importer's file arguments and the rows per label and type."""
        self.send(None)
        self.thread.join()
        assert self.proc.stdout is not None
        out = self.proc.stdout.read()
        if self.proc.wait() != 0 or self.broken:
            self._failed()
        result: tuple[list[str], Counts] = pickle.loads(out)
        return result

    def _failed(self) -> NoReturn:
        self.close()
        tail = self.log.read_text(errors="replace")[-3000:]
        raise EtlError(f"the process writing the import files failed:\n{tail}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.thread.is_alive():  # now broken, it drains the queue up to this
            self.queue.put(None)
            self.thread.join()


def _write_files(gen: Generator, directory: Path, reporter: Reporter) -> tuple[list[str], Counts]:
    """Generate here, write the CSV files in a worker process (another core): returns the
    importer's file arguments and the rows written per label and type."""
    worker = _FileWorker(gen.pool_keys(), directory)
    try:
        with reporter.task("seed issues (files)", total=gen.pool) as task:
            for rows in gen.pool_issues(10 * BATCH):
                worker.send(("pool", rows))
                task.advance(len(rows))
        with reporter.task("seed workflows (files)", total=gen.workflows) as task:
            for batch in gen.batches(BATCH):
                worker.send(("batch", seed_files.Packed.of(batch)))
                task.advance(len(batch.workflows))
        return worker.finish()
    finally:
        worker.close()


def _import(settings: Settings, files: list[str], work: Path) -> float:
    report = work / "import.report"
    log = settings.local_home / "logs" / "seed-import.log"
    args = [
        "database", "import", "full", settings.database,
        "--input-type=csv", "--id-type=integer", "--overwrite-destination=true",
        f"--threads={max(os.cpu_count() or 1, 1)}", f"--max-off-heap-memory={IMPORT_OFF_HEAP}",
        f"--report-file={report}", *files,
    ]  # fmt: skip
    started = time.perf_counter()
    proc = localdb.admin_command(settings, args, heap=IMPORT_HEAP)
    seconds = time.perf_counter() - started
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(proc.stdout + proc.stderr)
    bad = report.read_text(errors="replace").strip() if report.is_file() else ""
    if proc.returncode != 0 or "IMPORT DONE" not in proc.stdout + proc.stderr or bad:
        localdb.drop_store(settings)
        detail = bad[:2000] or error_lines(proc.stdout + proc.stderr)
        raise EtlError(
            f"neo4j-admin import of the seed failed (exit {proc.returncode}); the "
            f"half-written database was removed, so the server starts empty:\n{detail}",
            hint=f"the importer's output is in {log}; `etl seed` without --offline writes "
            "the same graph online",
        )
    return seconds


def seed_offline(
    settings: Settings,
    *,
    workflows: int,
    seed: int = 42,
    dirty: float = 0.0,
    replace: bool = False,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Write the legacy graph for ``(seed, workflows, dirty)`` into the local home with
    the importer; returns the same summary as ``etl.seed.seed_database``."""
    from etl.seed_summary import check_options, summarize

    check_options(workflows=workflows, dirty=dirty)
    reporter = reporter or NullReporter()
    started = time.perf_counter()
    was_running = localdb.status(settings).running
    _guard(settings, replace)
    work = settings.local_home / "seed-import"
    shutil.rmtree(work, ignore_errors=True)
    gen = Generator(seed=seed, workflows=workflows, dirty=dirty)
    restart_s = 0.0
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="seed-stop") as pool:
            # The server is not needed from here on, and a clean shutdown takes seconds.
            stopping = pool.submit(localdb.stop, settings) if was_running else None
            if stopping:
                reporter.info(f"Stopping the server of {settings.local_home} for the import")
            reporter.info(f"Writing the importer's input files into {work}")
            t0 = time.perf_counter()
            files, written = _write_files(gen, work / "input", reporter)
            generate_s = time.perf_counter() - t0
            if stopping:
                stopping.result()
        if written != {k: v for k, v in {**gen.nodes, **gen.rels}.items() if v}:
            raise AssertionError(f"import files {written} disagree with the generator")
        if replace:
            reporter.info(f"--replace: the import replaces database {settings.database!r}")
        reporter.info(f"Importing into database {settings.database!r} (neo4j-admin)")
        import_s = _import(settings, files, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if was_running:  # as we found it; empty if the import failed
            reporter.info("Starting the server again")
            t0 = time.perf_counter()
            localdb.start(settings)
            restart_s = time.perf_counter() - t0
    summary = summarize(gen, seed, dirty, write_s=time.perf_counter() - started, wipe_s=0.0)
    summary["mode"] = "offline"
    summary["offline"] = {
        "files_s": round(generate_s, 3),
        "import_s": round(import_s, 3),
        "restart_s": round(restart_s, 3),
        "server_restarted": was_running,
    }
    reporter.info(
        f"Imported {summary['total_nodes']:,} nodes and {summary['total_relationships']:,} "
        f"relationships in {summary['write_s']:.1f}s (files {generate_s:.1f}s, "
        f"import {import_s:.1f}s, restart {restart_s:.1f}s)"
    )
    return summary

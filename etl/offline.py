"""`etl load --mode offline`: replay a stage into a fresh database with neo4j-admin import.

The steps, each of which fails loudly:

1. verify the stage (and its lineage), refuse unless the home's database is
   empty or ``--replace`` was given (which names what it wipes);
2. write the importer's input files (``etl.offline_files``) into
   ``<ledger-dir>/offline/input``;
3. stop the home's server, run ``neo4j-admin database import full`` with
   capped memory and a report file; on failure, remove the half-written
   store (the importer leaves one that will not start) and say why;
4. ``neo4j-admin database check``; any inconsistency fails the load;
5. start the server, set the residual values online (``etl.graph.fixup``),
   create the constraints and indexes an online load would, then compare
   counts per label and type with the stage and run the migration's
   invariants (``etl.validate.check_loaded``): any mismatch is a failure.

Only the local bundled server (or another home given with ``--home``) can be
imported into: the importer writes the store files directly.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from etl import localdb
from etl.errors import ConfigError, StageError
from etl.graph import fixup
from etl.graph.connection import open_driver, server_info
from etl.graph.params import encode_columns, null_counts, plan_columns
from etl.graph.schema import counts, ensure_schema, node_total
from etl.load_input import StageInput, open_input
from etl.load_ledger import write_report
from etl.load_steps import REPLAY, find_keys
from etl.load_target import wanted_schema
from etl.offline_files import (
    ARRAY_DELIMITER,
    ImportFiles,
    residual_batches,
    residual_tables,
    summary,
    write_import_files,
)
from etl.progress import NullReporter, Reporter
from etl.settings import Settings
from etl.stage import now_utc
from etl.validate import Validation, check_loaded

FIX_BATCH = 5_000
#: neo4j-admin's JVM heap and the off-heap cap of the importer and the check (default:
#: 90 % of free RAM).
IMPORT_HEAP = "1g"
IMPORT_OFF_HEAP = "2g"


def with_server(settings: Settings) -> Settings:
    """Start the home's server; settings with its password (a new home generates one)."""
    localdb.start(settings)
    if settings.password is None and settings.password_file.is_file():
        return settings.with_password(settings.password_file.read_text().strip())
    return settings


def _current_nodes(settings: Settings) -> tuple[Settings, int]:
    """Nodes in the home's database now (0 without a store); starts the server to count."""
    if not localdb.has_store(settings) and not localdb.status(settings).running:
        return settings, 0
    settings = with_server(settings)
    with open_driver(settings) as driver:
        return settings, node_total(driver, settings.database)


def _guard(
    settings: Settings, replace: bool, reporter: Reporter
) -> tuple[Settings, dict[str, Any]]:
    if not settings.uri_is_local:
        raise ConfigError(
            "--mode offline writes the store files of a local Neo4j home, but NEO4J_URI "
            f"points at {settings.redacted_uri()}",
            hint="unset NEO4J_URI to use the bundled server (or give its home with --home), "
            "or load online (--mode online)",
        )
    settings, nodes = _current_nodes(settings)
    before: dict[str, Any] = {"nodes": nodes}
    if nodes and localdb.status(settings).running:
        with open_driver(settings) as driver:
            before = {"nodes": nodes, **counts(driver, settings.database)}
    if nodes and not replace:
        raise StageError(
            f"the database {settings.database!r} in {settings.local_home} holds {nodes:,} nodes; "
            "an offline import replaces the whole database",
            hint="back it up first (`etl backup`), then pass --replace, or load online",
        )
    if nodes:
        labels = ", ".join(f"{k} {v:,}" for k, v in sorted(before.get("labels", {}).items()))
        reporter.info(f"--replace: wiping {nodes:,} nodes ({labels or 'no labels'})")
    return settings, before


def _check(settings: Settings, stage: StageInput, reporter: Reporter) -> None:
    """Every value the fix-up will set can be set (``etl.replay_check``), before the import
    overwrites the database: on the home's server when it runs, else client-side."""
    from etl.replay_check import check_replay

    if localdb.status(settings).running:
        with open_driver(settings) as driver:
            summary = check_replay(stage, driver=driver, database=settings.database)
    else:
        summary = check_replay(stage)
    reporter.info(f"Before the import: {summary.describe()}")


def error_lines(text: str) -> str:
    """The lines of the importer's output that say what went wrong."""
    keep = [
        line
        for line in text.splitlines()
        if re.search(r"Caused by|Exception|ERROR|Error|FAILED|error", line)
        and not line.lstrip().startswith("at ")
    ]
    return "\n".join(dict.fromkeys(keep))[-3000:] or text[-3000:]


def _run_import(settings: Settings, files: ImportFiles, work: Path, threads: int) -> dict[str, Any]:
    report_file = work / "import.report"
    args = [
        "database",
        "import",
        "full",
        settings.database,
        "--input-type=parquet",
        f"--array-delimiter={ARRAY_DELIMITER}",
        "--overwrite-destination=true",
        f"--threads={threads}",
        f"--max-off-heap-memory={IMPORT_OFF_HEAP}",
        f"--report-file={report_file}",
        "--verbose",
        *files.args(),
    ]
    started = time.perf_counter()
    proc = localdb.admin_command(settings, args, heap=IMPORT_HEAP)
    seconds = time.perf_counter() - started
    (work / "import.log").write_text(proc.stdout + proc.stderr)
    problems = report_file.read_text(errors="replace") if report_file.is_file() else ""
    if proc.returncode != 0 or "IMPORT DONE" not in proc.stdout + proc.stderr:
        localdb.drop_store(settings)
        raise StageError(
            f"neo4j-admin import failed (exit {proc.returncode}); the half-written database "
            f"was removed, so the server starts empty:\n{error_lines(proc.stdout + proc.stderr)}",
            hint=f"the full output is in {work / 'import.log'}; load online (--mode online) "
            "if the importer cannot take this stage",
        )
    if problems.strip():
        localdb.drop_store(settings)
        raise StageError(
            f"neo4j-admin import reported bad input rows ({report_file}):\n{problems[:2000]}",
            hint="the stage should import cleanly: run `etl verify` on it and report this",
        )
    return {"seconds": round(seconds, 3), "log": str(work / "import.log")}


def _run_check(settings: Settings, work: Path) -> dict[str, Any]:
    report_dir = work / "check"
    report_dir.mkdir(exist_ok=True)
    started = time.perf_counter()
    proc = localdb.admin_command(
        settings,
        [
            "database",
            "check",
            settings.database,
            f"--report-path={report_dir}",
            # Its default is 90 % of free memory: 5.8 GiB for a 4.5 GiB store at 400k.
            f"--max-off-heap-memory={IMPORT_OFF_HEAP}",
        ],
        heap=IMPORT_HEAP,
    )
    (work / "check.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise StageError(
            f"neo4j-admin database check found problems in the imported database "
            f"(exit {proc.returncode}):\n{error_lines(proc.stdout + proc.stderr)}",
            hint=f"see {work / 'check.log'} and the report in {report_dir}",
        )
    return {"seconds": round(time.perf_counter() - started, 3), "ok": True}


def _fix_residuals(
    settings: Settings, stage: StageInput, files: ImportFiles, reporter: Reporter
) -> dict[str, int]:
    """Set the values the importer could not take; every marked row must be found."""
    fixed: dict[str, int] = {}
    tables = residual_tables(files)
    if not tables:
        return fixed
    import pyarrow.parquet as pq

    with open_driver(settings) as driver:
        db = settings.database
        for table, items in tables:
            kind = "node" if table.kind == "node" else "relationship"
            path = stage.path / table.path
            columns = sorted({c for i in items for c in i.residual_columns})
            plans = plan_columns(
                pq.read_schema(path),
                columns,
                tagged=table.tagged,
                zone_hints=table.zone_hints,
                null_counts=null_counts(path),
            )
            want = sum(i.residual_rows for i in items)
            index = fixup.create_index(driver, db, kind, table.name)
            done = 0
            with reporter.task(f"{table.stem} (residual values)", total=want) as task:
                for batch, markers in residual_batches(stage, table, items):
                    for lo in range(0, len(markers), FIX_BATCH):
                        part = batch.slice(lo, FIX_BATCH)
                        cols: dict[str, Any] = encode_columns(part, plans)
                        cols["f"] = markers[lo : lo + FIX_BATCH]
                        matched = fixup.fix_batch(driver, db, kind, table.name, plans, cols)
                        if matched != len(cols["f"]):
                            raise StageError(
                                f"{table.stem}: {matched} of {len(cols['f'])} marked rows "
                                "found after the import",
                                hint="the import is incomplete; run the offline load again",
                            )
                        done += matched
                        task.advance(matched)
            fixup.drop_index(driver, db, index)
            if done != want:
                raise StageError(f"{table.stem}: fixed {done:,} of {want:,} residual rows")
            fixed[table.stem] = done
    return fixed


def run_offline(
    settings: Settings,
    *,
    in_dir: Path,
    ledger_dir: Path,
    export_dir: Path | None = None,
    replace: bool = False,
    threads: int | None = None,
    keep_files: bool = False,
    checked: bool = False,
    reporter: Reporter | None = None,
) -> tuple[dict[str, Any], Validation]:
    """Import ``in_dir`` into the home of ``settings``; returns (report, validation).

    ``checked``: the caller ran ``etl.replay_check`` on this stage already (restore).
    """
    reporter = reporter or NullReporter()
    started = time.perf_counter()
    stage = open_input(in_dir, export_dir=export_dir)
    settings, before = _guard(settings, replace, reporter)
    if not checked:
        _check(settings, stage, reporter)
    keys = find_keys(stage, REPLAY)
    work = ledger_dir / "offline"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    reporter.info(f"Writing the importer's input files into {work / 'input'}")
    t0 = time.perf_counter()
    files = write_import_files(stage, keys, work / "input", version=settings.neo4j_version)
    prepare_s = time.perf_counter() - t0
    for item in files.residual():
        reporter.info(
            f"{item.table.stem}: {item.residual_rows:,} rows hold values the importer cannot "
            f"take ({', '.join(item.residual_columns)}); they are set online after the import"
        )
    reporter.info(f"Stopping the server of {settings.local_home} for the import")
    localdb.stop(settings)
    threads = threads or max(os.cpu_count() or 1, 1)
    imported = _run_import(settings, files, work, threads)
    consistent = _run_check(settings, work)
    settings = with_server(settings)
    t0 = time.perf_counter()
    fixed = _fix_residuals(settings, stage, files, reporter)
    fix_s = time.perf_counter() - t0
    with open_driver(settings) as driver:
        info = server_info(driver, settings)
        items = ensure_schema(driver, settings.database, wanted_schema(stage, keys, REPLAY))
        validation = check_loaded(driver, settings.database, stage, REPLAY, info.describe())
        after = counts(driver, settings.database)
    if not keep_files:
        shutil.rmtree(work / "input", ignore_errors=True)
    entities = sum(after["labels"].values()) + sum(after["types"].values())
    seconds = time.perf_counter() - started
    report = {
        "mode": "offline",
        "input": str(stage.path),
        "input_manifest_sha256": stage.sha256,
        "home": str(settings.local_home),
        "database": settings.database,
        "target": info.describe(),
        "finished_at": now_utc(),
        "replaced": before,
        "files": summary(files),
        "seconds": {
            "prepare": round(prepare_s, 3),
            "import": imported["seconds"],
            "check": consistent["seconds"],
            "residual": round(fix_s, 3),
            "total": round(seconds, 3),
        },
        "import_entities_per_s": round(entities / imported["seconds"]) if entities else 0,
        "residual_rows": fixed,
        "schema": [i.describe() for i in items],
        "counts": after,
        "validation": validation.to_json(),
    }
    write_report(ledger_dir, report)
    return report, validation


def summarize(report: dict[str, Any]) -> str:
    s = report["seconds"]
    c = report["counts"]
    nodes, rels = sum(c["labels"].values()), sum(c["types"].values())
    fixed = sum(report["residual_rows"].values())
    return (
        f"offline import into {report['home']}: {nodes:,} nodes and {rels:,} relationships "
        f"in {s['total']:.1f}s (import {s['import']:.1f}s = "
        f"{report['import_entities_per_s']:,} entities/s, check {s['check']:.1f}s, "
        f"{fixed:,} rows with residual values set online in {s['residual']:.1f}s)"
    )

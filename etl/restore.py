"""`etl restore backups/<stamp>`: replay a full backup into a fresh database, then prove it.

1. Verify the backup (``etl verify``: checksums, manifest, every table).
2. Check, before anything is wiped or written, that every table and value of
   the backup can be written back exactly by the replay (``etl.replay_check``:
   the replay's own encoders, and the server rebuilding the mixed-type and
   DateTime values in read-only queries). A value that cannot is named and the
   restore stops with the database untouched.
3. Look at the target: an empty database is restored into; a non-empty one
   only with ``--replace``, which first says what it wipes (nodes per label).
4. Replay: online (wipe, then ``etl load`` as a replay into the now empty
   database: ledgered, resumable) or offline (``etl load --mode offline``:
   neo4j-admin import, database check).
5. Prove: export the restored database again (every label and type, as a
   backup does) and ``etl diff`` it against the backup. Anything but
   "identical" fails the restore (exit 3) with the diff's summary. Provenance
   (element ids, which a replay renumbers) is not compared.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from etl.errors import StageError, ValidationFailed
from etl.graph import admin
from etl.graph.connection import open_driver
from etl.graph.schema import counts
from etl.load_input import StageInput, open_input
from etl.progress import NullReporter, Reporter
from etl.settings import Settings
from etl.stage import now_utc
from etl.validate import Validation


def _describe(c: dict[str, dict[str, int]]) -> str:
    labels = ", ".join(f"{k} {v:,}" for k, v in sorted(c["labels"].items()))
    nodes = sum(c["labels"].values())
    rels = sum(c["types"].values())
    return f"{nodes:,} nodes ({labels or 'none'}) and {rels:,} relationships"


def _online_target(settings: Settings, replace: bool, reporter: Reporter) -> dict[str, Any]:
    with open_driver(settings) as driver:
        before = counts(driver, settings.database)
        if not sum(before["labels"].values()) and not sum(before["types"].values()):
            return before
        if not replace:
            raise StageError(
                f"the target database is not empty: it holds {_describe(before)}",
                hint="restore into an empty database, or pass --replace to wipe this one "
                "first (back it up with `etl backup` if it matters)",
            )
        reporter.info(f"--replace: wiping {_describe(before)} (and their constraints/indexes)")
        admin.wipe_database(driver, settings.database)
    return before


def _check(settings: Settings, stage: StageInput, mode: str, reporter: Reporter) -> dict[str, Any]:
    """``etl.replay_check`` on the target's server (an offline home's only if it has a store:
    a home without one has nothing to lose, and its values are checked client-side)."""
    from etl.replay_check import check_replay

    reporter.info("Checking every value of the backup against what the replay can write")
    if mode == "offline":
        from etl import localdb
        from etl.offline import with_server

        if not (localdb.has_store(settings) or localdb.status(settings).running):
            summary = check_replay(stage)
            reporter.info(f"Check passed before anything was written: {summary.describe()}")
            return asdict(summary)
        settings = with_server(settings)
    with open_driver(settings) as driver:
        summary = check_replay(stage, driver=driver, database=settings.database)
    reporter.info(f"Check passed before anything was written: {summary.describe()}")
    return asdict(summary)


def run_restore(
    settings: Settings,
    *,
    backup: Path,
    work_dir: Path,
    mode: str = "online",
    replace: bool = False,
    batch_size: int = 5000,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Restore ``backup``; returns the report (also ``<work_dir>/restore.json``)."""
    from etl.diff import run_diff
    from etl.export import run_export

    reporter = reporter or NullReporter()
    started = time.perf_counter()
    stage = open_input(backup)
    if stage.stage != "backup":
        raise StageError(
            f"{backup} is a {stage.stage} stage, not a backup",
            hint="restore a directory written by `etl backup` (list them: `etl backup --list`); "
            "a transform stage is loaded with `etl load`",
        )
    work_dir.mkdir(parents=True, exist_ok=True)
    validation: Validation | None
    checked = _check(settings, stage, mode, reporter)
    if mode == "offline":
        from etl.offline import run_offline, with_server

        load_report, validation = run_offline(
            settings, in_dir=backup, ledger_dir=work_dir / "load", replace=replace,
            checked=True, reporter=reporter,
        )  # fmt: skip
        before = load_report.get("replaced", {})
        settings = with_server(settings)
    else:
        from etl.load import run_load

        before = _online_target(settings, replace, reporter)
        result = run_load(
            settings,
            in_dir=backup,
            ledger_dir=work_dir / "load",
            batch_size=batch_size,
            restart=True,
            values_checked=True,  # check_replay ran above, before the wipe
            reporter=reporter,
        )
        load_report, validation = result.report, result.validation
    if validation is not None and not validation.ok:
        raise ValidationFailed(
            "the restored database does not hold what the backup lists",
            problems=[f"{c.title}: {c.detail}" for c in validation.checks if not c.ok],
        )
    reporter.info("Proving the restore: export the database again and diff it with the backup")
    reexport = work_dir / "reexport"
    shutil.rmtree(reexport, ignore_errors=True)
    run_export(settings, out_dir=reexport, all_labels=True, stage="backup", reporter=reporter)
    diff = run_diff(backup, reexport, reporter=reporter)
    summary = diff.to_json()
    report = {
        "backup": str(backup),
        "backup_manifest_sha256": stage.sha256,
        "mode": mode,
        "replaced": before,
        "checked": checked,
        "finished_at": now_utc(),
        "seconds": round(time.perf_counter() - started, 3),
        "load": {k: load_report.get(k) for k in ("mode", "seconds", "counts") if k in load_report},
        "diff": {"identical": diff.identical, "tables": len(diff.tables)},
    }
    (work_dir / "restore.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    if not diff.identical:
        problems = [
            f"{t['kind']} {t['name']}: {t['status']} (added {t['added']:,}, removed "
            f"{t['removed']:,}, changed {t['changed']:,}; columns {t['schema']})"
            for t in summary["tables"]
            if t["status"] != "identical"
        ]
        raise ValidationFailed(
            "the restored database differs from the backup (re-export vs backup)",
            problems=problems,
            hint=f"see what differs: etl diff {backup} {reexport}",
        )
    shutil.rmtree(reexport, ignore_errors=True)
    return report


def summarize(report: dict[str, Any]) -> str:
    return (
        f"Restored {report['backup']} ({report['mode']}) in {report['seconds']:.1f}s; "
        "re-export and diff against the backup: identical."
    )

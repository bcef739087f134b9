"""What `etl load`, `etl plan` and `etl validate` do, as library calls the CLI reports.

Each function takes the command's options, checks the flags that go together
(naming both flags when they clash), calls one stage function and returns an
``Outcome``: the JSON summary (``--json``), the text for a person, and the
exit code. The CLI only prints an outcome and exits with its code:

=====================  =====================================================
``etl load``           0 loaded and validated; 3 loaded, validation failed
``etl load --dry-run``
``etl plan``           0 nothing would change; 1 something would
``etl load --rollback`` 0 restored; 3 restored but counts differ from the export
``etl validate``       0 every invariant holds; 3 one fails
=====================  =====================================================

Errors (bad flags 2, unverifiable stage 3, unreachable server 4, lock held or
load failure 1) are raised as ``EtlError`` and mapped by the CLI as usual.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etl.errors import ConfigError, ExitCode
from etl.progress import Reporter
from etl.settings import Settings


@dataclass(frozen=True)
class Outcome:
    data: Any
    text: str
    exit_code: int = int(ExitCode.OK)


def load_command(
    settings: Settings,
    *,
    in_dir: Path,
    ledger_dir: Path,
    export_dir: Path | None,
    batch_size: int,
    resume: bool,
    restart: bool,
    rollback: bool,
    dry_run: bool,
    break_lock: bool,
    into_nonempty: bool,
    mode: str,
    reporter: Reporter,
    workers: int = 3,
    replace: bool = False,
) -> Outcome:
    """``etl load`` with all its flags."""
    actions = [f for f, on in (("--rollback", rollback), ("--dry-run", dry_run)) if on]
    actions += ["--break-lock"] if break_lock else []
    if len(actions) > 1:
        raise ConfigError(f"{actions[0]} and {actions[1]} exclude each other")
    if actions and (resume or restart):
        raise ConfigError(
            f"{actions[0]} and {'--resume' if resume else '--restart'} exclude each other"
        )
    if mode == "offline":
        return _offline(settings, in_dir, ledger_dir, export_dir, replace, reporter, locals())
    if replace:
        raise ConfigError("--replace belongs to --mode offline (and `etl restore`)")
    if break_lock:
        from etl.load import run_break_lock

        held = run_break_lock(settings)
        text = (
            "No load lock was held."
            if held is None
            else f"Removed the load lock of {held.get('holder')} "
            f"({held.get('purpose')}, started {held.get('started_at')}, input {held.get('input')})."
        )
        return Outcome({"removed": held}, text)
    if dry_run:
        return plan_command(
            settings,
            in_dir=in_dir,
            export_dir=export_dir,
            batch_size=batch_size,
            into_nonempty=into_nonempty,
            reporter=reporter,
        )
    if rollback:
        from etl.load_rollback import run_rollback

        report = run_rollback(
            settings,
            in_dir=in_dir,
            ledger_dir=ledger_dir,
            export_dir=export_dir,
            batch_size=batch_size,
            reporter=reporter,
        )
        restored = ", ".join(f"{k} {v:,}" for k, v in report["restored"].items())
        return Outcome(report, f"Rolled back to the export: {restored}.")
    from etl.load import run_load, summarize
    from etl.validate import describe

    result = run_load(
        settings,
        in_dir=in_dir,
        ledger_dir=ledger_dir,
        batch_size=batch_size,
        resume=resume,
        restart=restart,
        into_nonempty=into_nonempty,
        export_dir=export_dir,
        workers=workers,
        reporter=reporter,
    )
    text = summarize(result.report)
    code = ExitCode.OK
    if result.validation is not None:
        text += "\n" + describe(result.validation)
        code = ExitCode.OK if result.validation.ok else ExitCode.VALIDATION
    return Outcome(result.report, text, int(code))


def _offline(
    settings: Settings,
    in_dir: Path,
    ledger_dir: Path,
    export_dir: Path | None,
    replace: bool,
    reporter: Reporter,
    flags: dict[str, Any],
) -> Outcome:
    online_only = ["resume", "restart", "rollback", "dry_run", "break_lock", "into_nonempty"]
    clash = [f"--{f.replace('_', '-')}" for f in online_only if flags.get(f)]
    if clash:
        raise ConfigError(
            f"{clash[0]} belongs to online loads; --mode offline imports a fresh database",
            hint="run the offline import again to repeat it (it starts from scratch)",
        )
    from etl.offline import run_offline, summarize
    from etl.validate import describe

    report, validation = run_offline(
        settings,
        in_dir=in_dir,
        ledger_dir=ledger_dir,
        export_dir=export_dir,
        replace=replace,
        reporter=reporter,
    )
    text = summarize(report) + "\n" + describe(validation)
    code = ExitCode.OK if validation.ok else ExitCode.VALIDATION
    return Outcome(report, text, int(code))


def plan_command(
    settings: Settings,
    *,
    in_dir: Path,
    export_dir: Path | None,
    batch_size: int,
    into_nonempty: bool,
    reporter: Reporter,
) -> Outcome:
    """``etl plan`` (= ``etl load --dry-run``): exit 1 when the load would change anything."""
    from etl.load_plan import describe, run_plan

    plan = run_plan(
        settings,
        in_dir=in_dir,
        export_dir=export_dir,
        batch_size=batch_size,
        into_nonempty=into_nonempty,
        reporter=reporter,
    )
    code = ExitCode.FAILURE if plan.changed else ExitCode.OK
    return Outcome(plan.to_json(), describe(plan), int(code))


def validate_command(settings: Settings, *, in_dir: Path, export_dir: Path | None) -> Outcome:
    """``etl validate``: exit 3 when any invariant fails."""
    from etl.validate import describe, run_validate

    v = run_validate(settings, in_dir=in_dir, export_dir=export_dir)
    return Outcome(v.to_json(), describe(v), int(ExitCode.OK if v.ok else ExitCode.VALIDATION))

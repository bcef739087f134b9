"""The `etl` command line: a thin skin over the library.

Each command resolves settings, calls one library function and reports. Errors
are translated once, by ``handle_errors``: an ``EtlError`` becomes ``Error: …``
on stderr and its documented exit code (see ``etl.errors.ExitCode``).
"""

from __future__ import annotations

import functools
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from etl.errors import EtlError, ExitCode

F = TypeVar("F", bound=Callable[..., Any])


class Context:
    """Per-invocation state: global flags, lazily resolved settings."""

    def __init__(self, *, quiet: bool, debug: bool, json_output: bool) -> None:
        self.quiet = quiet
        self.debug = debug
        self.json_output = json_output

    def settings(self, **overrides: Any) -> Any:
        from etl.settings import load_settings

        return load_settings({"quiet": self.quiet, "debug": self.debug, **overrides})

    def reporter(self) -> Any:
        from etl.progress import make_reporter

        return make_reporter(quiet=self.quiet or self.json_output)

    def emit(self, data: Any, human: str) -> None:
        """Summaries go to stdout: JSON with --json, text otherwise."""
        if self.json_output:
            click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
        elif human:
            click.echo(human)


pass_ctx = click.make_pass_decorator(Context)


def handle_errors(fn: F) -> F:
    """Translate expected failures into `Error: …` and an exit code; --debug shows tracebacks."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        debug = bool(ctx.find_object(Context) and ctx.find_object(Context).debug)  # type: ignore[union-attr]
        try:
            return fn(*args, **kwargs)
        except EtlError as e:
            if debug:  # the traceback, then the same exit code as without --debug
                click.echo(traceback.format_exc(), err=True, nl=False)
            _name_missing_stage_writer(ctx, e)
            click.echo(f"Error: {e}", err=True)
            ctx.exit(int(e.exit_code))
        except KeyboardInterrupt:
            click.echo(_interrupted(ctx), err=True)
            ctx.exit(int(ExitCode.INTERRUPTED))

    return wrapper  # type: ignore[return-value]


#: (command, parameter) → the hint for a stage it names that is missing: what writes it.
_MISSING_STAGE_HINTS = {
    ("transform", "in_dir"): "run `etl export` first, or pass an export with --in",
    ("load", "in_dir"): "run `etl transform` first, or pass a transform stage with --in",
    ("plan", "in_dir"): "run `etl transform` first, or pass a transform stage with --in",
    ("validate", "in_dir"): "run `etl transform` first, or pass a transform stage with --in",
    ("diff", "a"): "run `etl export` first, or pass two stage directories that exist",
    ("diff", "b"): "run `etl export` first, or pass two stage directories that exist",
    ("restore", "backup_dir"): "make one with `etl backup` (`etl backup --list` shows them)",
    ("report", "export_dir"): "run `etl export` first, or pass an export with --export",
    ("report", "transform_dir"): "run `etl transform` first, or pass one with --transform",
}


def _name_missing_stage_writer(ctx: click.Context, error: EtlError) -> None:
    """A missing stage's hint names the command that writes it, for the command at hand."""
    stage = sys.modules.get("etl.stage")  # loaded: only etl.stage raises StageMissing
    if stage is None or not isinstance(error, stage.StageMissing) or error.previous:
        return
    for (command, param), hint in _MISSING_STAGE_HINTS.items():
        value = ctx.params.get(param)
        if command == ctx.command.name and value is not None and Path(value) == error.path:
            error.hint = hint
            return


def _interrupted(ctx: click.Context) -> str:
    """What Ctrl-C leaves: an online load keeps its ledger, and --resume continues it."""
    params = ctx.params
    if (
        ctx.command.name == "load"
        and params.get("mode") == "online"
        and not (params.get("dry_run") or params.get("rollback"))
    ):
        return (
            "Interrupted: the batches committed so far are in the ledger; run the same "
            "`etl load` with --resume to continue it (or --restart to start over)."
        )
    return "Interrupted."


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="neo4j-etl", prog_name="etl")
@click.option(
    "-q", "--quiet", is_flag=True, help="No progress or status lines (errors still shown)."
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("--json", "json_output", is_flag=True, help="Print machine-readable summaries.")
@click.pass_context
def cli(ctx: click.Context, quiet: bool, debug: bool, json_output: bool) -> None:
    """Offline export → transform → load pipeline for Neo4j.

    \b
    Typical run (see README.md):
      etl db start                 # bundled local Neo4j (or set NEO4J_URI)
      etl seed --workflows 1000    # a sample legacy graph
      etl export                   # → data/export
      etl transform                # → data/transform
      etl load                     # → the database, then validated

    Connection settings come from NEO4J_URI, NEO4J_USERNAME, NEO4J_PASSWORD and
    NEO4J_DATABASE (or a .env file); there is deliberately no password flag.
    """
    ctx.obj = Context(quiet=quiet, debug=debug, json_output=json_output)


# --------------------------------------------------------------------------- db


@cli.group()
def db() -> None:
    """Manage the bundled local Neo4j server (127.0.0.1, data under .neo4j/)."""


@db.command("start")
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for Bolt.")
@click.option(
    "--tls/--no-tls",
    default=None,
    help="Serve Bolt over TLS only, with a self-signed certificate (bolt+ssc://); "
    "the home remembers it (ETL_NEO4J_TLS).",
)
@pass_ctx
@handle_errors
def db_start(obj: Context, timeout: float, tls: bool | None) -> None:
    """Fetch the Neo4j jars (first time) and start the server; no-op if it runs.

    Examples: etl db start
              ETL_NEO4J_VERSION=5.26.3 etl db start --tls
    """
    from etl import localdb

    st = localdb.start(obj.settings(tls=tls), timeout=timeout)
    obj.emit(
        {"running": st.running, "pid": st.pid, "uri": st.uri},
        f"Neo4j {st.version} running at {st.uri} (pid {st.pid})",
    )


@db.command("stop")
@pass_ctx
@handle_errors
def db_stop(obj: Context) -> None:
    """Stop the local server cleanly (SIGTERM, then SIGKILL after 60 s).

    Example: etl db stop
    """
    from etl import localdb

    was_running = localdb.stop(obj.settings())
    obj.emit(
        {"stopped": was_running}, "Neo4j stopped." if was_running else "Neo4j was not running."
    )


@db.command("status")
@pass_ctx
@handle_errors
def db_status(obj: Context) -> None:
    """Show the local server's state, real version, URI, PID, data path and password.

    Example: etl db status
    """
    from etl import localdb
    from etl.graph.connection import open_driver, server_info

    settings = obj.settings()
    st = localdb.status(settings)
    settings = localdb.server_settings(settings)  # the home's server, whatever NEO4J_URI says
    data: dict[str, Any] = {
        "running": st.running,
        "pid": st.pid,
        "uri": st.uri,
        "home": str(st.home),
        "data": str(st.home / "data"),
    }
    if st.running:
        with open_driver(settings) as driver:
            info = server_info(driver, settings)
        data["version"] = f"{info.version} {info.edition}"
    if settings.password is not None:
        data["password"] = settings.password.reveal()
    lines = [f"{k:>9}: {v}" for k, v in data.items()]
    if st.note:
        lines.append(f"note: {st.note}")
    if st.port_in_use_by_other:
        lines.append(f"note: port {settings.bolt_port} is used by another process")
    obj.emit(data, "\n".join(lines))
    if not st.running:
        sys.exit(int(ExitCode.FAILURE))


@db.command("reset")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
@handle_errors
def db_reset(obj: Context, yes: bool) -> None:
    """Stop the local server and delete its databases (jars and password kept).

    Example: etl db reset --yes
    """
    from etl import localdb

    settings = obj.settings()
    if not yes:
        click.confirm(f"Delete every database under {settings.local_home / 'data'}?", abort=True)
    localdb.reset(settings)
    obj.emit({"reset": True}, "Local databases deleted; `etl db start` creates a fresh one.")


@db.command("admin", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_ctx
@handle_errors
def db_admin(obj: Context, args: tuple[str, ...]) -> None:
    """Run neo4j-admin from the same jars against the local home.

    Example: etl db admin -- database import full --help
    """
    from etl import localdb

    proc = localdb.admin_command(obj.settings(), list(args))
    click.echo(proc.stdout, nl=False)
    click.echo(proc.stderr, nl=False, err=True)
    sys.exit(proc.returncode)


# -------------------------------------------------------------------- transform


def _parse_duration(value: str) -> Any:
    """'90m', '1h', '2d', '3600s' or plain seconds → timedelta."""
    from datetime import timedelta

    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = value.strip().lower()
    try:
        if text and text[-1] in units:
            return timedelta(seconds=float(text[:-1]) * units[text[-1]])
        return timedelta(seconds=float(text))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a duration like 90m, 1h or 2d") from None


@cli.command()
@click.option(
    "--in",
    "in_dir",
    default="data/export",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Export stage to read.",
)
@click.option(
    "--out",
    "out_dir",
    default="data/transform",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Stage directory to write.",
)
@click.option(
    "--migration",
    default="workflow-to-workflowrun",
    show_default=True,
    help="Registered migration to run (see --list).",
)
@click.option(
    "--stale-after",
    default="1h",
    show_default=True,
    help="Unfinished runs older than this (vs the export's snapshot) become errors.",
)
@click.option(
    "--infer-type",
    is_flag=True,
    help="Derive workflowType of metadata-less runs from unambiguous events.",
)
@click.option("--dry-run", is_flag=True, help="Print the report; write nothing.")
@click.option(
    "--strict", is_flag=True, help="Exit with code 3 when any row was rejected (quarantined)."
)
@click.option("--list", "list_only", is_flag=True, help="List the registered migrations.")
@pass_ctx
@handle_errors
def transform(
    obj: Context,
    in_dir: Path,
    out_dir: Path,
    migration: str,
    stale_after: str,
    infer_type: bool,
    dry_run: bool,
    strict: bool,
    list_only: bool,
) -> None:
    """Migrate an export stage into a transform stage (rejected rows explained).

    Example: etl transform --in data/export --out data/transform --stale-after 2h
    """
    from etl import transform as stage
    from etl.migrations import list_migrations

    if list_only:
        migs = list_migrations()
        obj.emit(
            [{"name": m.name, "description": m.description} for m in migs],
            "\n".join(f"{m.name:<28}{m.description}" for m in migs),
        )
        return
    result = stage.run_transform(
        in_dir=in_dir,
        out_dir=out_dir,
        migration=migration,
        stale_after=_parse_duration(stale_after),
        infer_type=infer_type,
        dry_run=dry_run,
        reporter=obj.reporter(),
    )
    where = "(dry run: nothing written)" if dry_run else f"→ {result.out_dir}"
    if result.report.get("nothing_to_migrate"):
        where = (
            f"{out_dir} holds the stage that was applied; left as it is (`etl load` has "
            "nothing to do)"
            if result.out_dir is not None
            else f"nothing written to {out_dir}"
        )
    obj.emit(result.report, f"{stage.summarize(result.report)}\n{where}")
    if strict and sum((result.report.get("rejected") or {}).values()):
        sys.exit(int(ExitCode.VALIDATION))


# ------------------------------------------------------------------------- seed


@cli.command()
@click.option(
    "--workflows",
    type=click.IntRange(min=1),
    required=True,
    help="Workflows to write (about 20 events each).",
)
@click.option(
    "--seed",
    "seed_value",
    type=int,
    default=42,
    show_default=True,
    help="Random seed: the same seed writes the same graph.",
)
@click.option(
    "--dirty",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Fraction of workflows planted with one known problem each.",
)
@click.option("--replace", is_flag=True, help="Wipe the database first (everything in it).")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Workflows per write transaction (online only).  [default: 200]",
)
@click.option(
    "--offline",
    is_flag=True,
    help="Write the same graph with neo4j-admin import into the local home (several times "
    "faster; stops its server for the import and starts it again if it was running).",
)
@pass_ctx
@handle_errors
def seed(
    obj: Context,
    workflows: int,
    seed_value: int,
    dirty: float,
    replace: bool,
    batch_size: int | None,
    offline: bool,
) -> None:
    """Write a sample legacy graph (Workflow/Event/Issue/Plan) into the configured database.

    The summary (--json) holds what a correct `etl transform` must report under "expected".

    \b
    Examples:
      etl seed --workflows 2000 --dirty 0.1 --replace
      etl seed --workflows 100000 --dirty 0.01 --replace --offline
    """
    from etl import seed as seeding

    if offline and batch_size is not None:
        raise click.UsageError("--batch-size and --offline exclude each other")
    summary = seeding.run_seed(
        obj.settings(),
        workflows=workflows,
        seed=seed_value,
        dirty=dirty,
        replace=replace,
        batch_size=batch_size,
        offline=offline,
        reporter=obj.reporter(),
    )
    obj.emit(summary, seeding.describe(summary))


# ----------------------------------------------------------------------- export


def _label_list(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    labels = [part.strip() for part in (value or "").split(",") if part.strip()]
    return labels or None


@cli.command()
@click.option(
    "--out",
    "out_dir",
    default="data/export",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Stage directory to write.",
)
@click.option(
    "--labels",
    callback=_label_list,
    help="Comma-separated labels (default: Workflow,Issue,Event,Plan).",
)
@click.option("--all", "all_labels", is_flag=True, help="Every label and relationship type.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=20_000,
    show_default=True,
    help="Rows per read query (memory grows with it).",
)
@click.option(
    "--allow-concurrent-writes",
    is_flag=True,
    help="Keep the stage even if counts changed while exporting.",
)
@pass_ctx
@handle_errors
def export(
    obj: Context,
    out_dir: Path,
    labels: list[str] | None,
    all_labels: bool,
    batch_size: int,
    allow_concurrent_writes: bool,
) -> None:
    """Stream the graph into a checksummed Parquet stage directory (atomic).

    Example: etl export --out data/export --labels Workflow,Issue,Event,Plan
    """
    from etl import export as stage

    if labels and all_labels:
        raise click.UsageError("--labels and --all exclude each other")
    result = stage.run_export(
        obj.settings(),
        out_dir=out_dir,
        labels=labels,
        all_labels=all_labels,
        batch_size=batch_size,
        allow_concurrent_writes=allow_concurrent_writes,
        reporter=obj.reporter(),
    )
    obj.emit(result.report, stage.summarize(result.report))


@cli.command()
@click.option(
    "--root",
    default="backups",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of backups.",
)
@click.option("--list", "list_only", is_flag=True, help="List backups and verify them.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=20_000,
    show_default=True,
    help="Rows per read query.",
)
@pass_ctx
@handle_errors
def backup(obj: Context, root: Path, list_only: bool, batch_size: int) -> None:
    """Export every label and type into backups/<YYYYMMDD_HHMMSS>/; --list verifies them.

    Example: etl backup && etl backup --list
    """
    from etl import export as stage

    if list_only:
        rows = stage.list_backups(root)
        obj.emit(rows, stage.describe_backups(rows))
        return
    result = stage.run_backup(
        obj.settings(), root=root, batch_size=batch_size, reporter=obj.reporter()
    )
    obj.emit(result.report, stage.summarize(result.report))


@cli.command()
@click.argument("backup_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--mode",
    type=click.Choice(["online", "offline"]),
    default="online",
    show_default=True,
    help="online: replay through Bolt (ledgered, resumable). offline: neo4j-admin import "
    "into the local home (stops its server meanwhile; fastest).",
)
@click.option(
    "--replace",
    is_flag=True,
    help="Wipe a database that is not empty first (it says what it wipes).",
)
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="--mode offline: the Neo4j home to import into (default: ETL_NEO4J_HOME).",
)
@click.option(
    "--work-dir",
    default="data/restore",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Ledger, load report, re-export and restore.json.",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=5000, show_default=True,
              help="Rows per write transaction (online).")  # fmt: skip
@pass_ctx
@handle_errors
def restore(
    obj: Context,
    backup_dir: Path,
    mode: str,
    replace: bool,
    home: Path | None,
    work_dir: Path,
    batch_size: int,
) -> None:
    """Replay a backup (from `etl backup`) into a fresh database, then prove it.

    Refuses a non-empty database unless --replace. Before anything is wiped or
    written, every value of the backup is checked against what the replay can write
    (a value it cannot is named, and nothing is touched). After the replay the
    database is exported again and diffed against the backup: anything but
    identical exits 3.

    Examples: etl restore backups/20261124_160000
              etl restore backups/20261124_160000 --mode offline --replace
    """
    from etl.restore import run_restore, summarize

    settings = obj.settings(local_home=home.resolve() if home else None)
    report = run_restore(
        settings,
        backup=backup_dir,
        work_dir=work_dir,
        mode=mode,
        replace=replace,
        batch_size=batch_size,
        reporter=obj.reporter(),
    )
    obj.emit(report, summarize(report))


@cli.command()
@click.argument("stage_dir", type=click.Path(path_type=Path))
@pass_ctx
@handle_errors
def verify(obj: Context, stage_dir: Path) -> None:
    """Check a stage directory against its manifest (exit 3 listing every problem).

    Example: etl verify data/export
    """
    from etl.stage import verify_stage

    manifest = verify_stage(stage_dir)
    rows = sum(int(t["rows"]) for t in manifest["tables"])
    obj.emit(
        {"ok": True, "stage": manifest["stage"], "tables": len(manifest["tables"]), "rows": rows},
        f"OK: {stage_dir} ({manifest['stage']}, {len(manifest['tables'])} tables, "
        f"{rows:,} rows) matches its manifest",
    )


# ------------------------------------------------------------------------- diff


@cli.command()
@click.argument("a", type=click.Path(path_type=Path))
@click.argument("b", type=click.Path(path_type=Path))
@click.option(
    "--samples",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Rows shown per kind of difference and table.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write every added/removed/changed row as Parquet per table here.",
)
@click.option("--migration", help="Also explain this migration (A: export, B: its transform).")
@click.option(
    "--compare-element-ids",
    is_flag=True,
    help="Compare _element_id provenance too (it changes on a replay).",
)
@click.option("--json", "json_here", is_flag=True, help="Same as the global --json.")
@pass_ctx
@handle_errors
def diff(
    obj: Context,
    a: Path,
    b: Path,
    samples: int,
    out_dir: Path | None,
    migration: str | None,
    compare_element_ids: bool,
    json_here: bool,
) -> None:
    """Compare two stage directories table by table (added, removed, changed, schema drift).

    Exit codes: 0 identical, 1 differences found, 2 usage error, 3 an input
    that is missing or fails verification (as for every command).

    \b
    Example:
      etl diff data/export data/transform --migration workflow-to-workflowrun
    """
    from etl.diff import run_diff
    from etl.diff_render import render

    obj.json_output = obj.json_output or json_here
    try:
        result = run_diff(
            a,
            b,
            samples=samples,
            out=out_dir,
            migration=migration,
            compare_element_ids=compare_element_ids,
            reporter=obj.reporter(),
        )
    except EtlError as e:  # exit 1 means "differences" here: a failure that would be 1 is 2
        if e.exit_code == ExitCode.FAILURE:
            e.exit_code = ExitCode.USAGE
        raise
    data = result.to_json()
    obj.emit(data, render(data, rich=sys.stdout.isatty()))
    sys.exit(int(ExitCode.OK if result.identical else ExitCode.FAILURE))


# ---------------------------------------------------------- load, plan, validate

_STAGE_IN = click.option(
    "--in",
    "in_dir",
    default="data/transform",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Stage to load (transform stage).",
)
_EXPORT = click.option(
    "--export",
    "export_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The export the transform read (default: the path in its manifest).",
)


@cli.command()
@_STAGE_IN
@_EXPORT
@click.option(
    "--ledger-dir",
    default="data/load",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Ledger of committed batches and report.json.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=5000,
    show_default=True,
    help="Rows per write transaction.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Concurrent write transactions where batches share no node.",
)
@click.option("--resume", is_flag=True, help="Continue an unfinished load (skip ledgered batches).")
@click.option("--restart", is_flag=True, help="Discard an unfinished ledger; load from the start.")
@click.option("--rollback", is_flag=True, help="Undo an in-place load from the export.")
@click.option(
    "--dry-run", is_flag=True, help="Show what would change; write nothing (exit 1 if so)."
)
@click.option("--break-lock", is_flag=True, help="Remove a stale load lock and say whose it was.")
@click.option("--into-nonempty", is_flag=True, help="Replay into a database holding other data.")
@click.option(
    "--mode",
    type=click.Choice(["online", "offline"]),
    default="online",
    show_default=True,
    help="online: write through Bolt (in place, or replay). offline: neo4j-admin "
    "import into a fresh database of a local home (the server is stopped meanwhile).",
)
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="--mode offline: the Neo4j home to import into (default: the bundled "
    "server's, ETL_NEO4J_HOME); its server listens on ETL_NEO4J_BOLT_PORT.",
)
@click.option(
    "--replace",
    is_flag=True,
    help="--mode offline: overwrite a database that is not empty (says what it wipes).",
)
@pass_ctx
@handle_errors
def load(obj: Context, /, home: Path | None, **options: Any) -> None:
    """Load a transform stage in place (or replay it into an empty database), then validate.

    --mode offline replays any stage (transform, export, backup) into a fresh database
    with neo4j-admin import, runs `neo4j-admin database check`, then reconciles counts
    per label and type and the migration's invariants.

    Exit codes: 0 loaded and valid, 3 invariants failed, 1 load failed or lock held;
    with --dry-run 0 nothing to change, 1 changes pending.

    Examples: etl load --in data/transform --ledger-dir data/load --resume
              etl load --mode offline --in data/transform --replace
    """
    from etl.load_command import load_command

    settings = obj.settings(local_home=home.resolve() if home else None)
    out = load_command(settings, reporter=obj.reporter(), **options)
    obj.emit(out.data, out.text)
    sys.exit(out.exit_code)


@cli.command()
@_STAGE_IN
@_EXPORT
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=5000,
    show_default=True,
    help="Rows per read query.",
)
@click.option("--into-nonempty", is_flag=True, help="Plan a replay into a non-empty database.")
@pass_ctx
@handle_errors
def plan(obj: Context, /, **options: Any) -> None:
    """Show per label and type what `etl load` would create, update and delete (exit 1 if any).

    Example: etl plan --in data/transform
    """
    from etl.load_command import plan_command

    out = plan_command(obj.settings(), reporter=obj.reporter(), **options)
    obj.emit(out.data, out.text)
    sys.exit(out.exit_code)


@cli.command()
@_STAGE_IN
@_EXPORT
@pass_ctx
@handle_errors
def validate(obj: Context, /, **options: Any) -> None:
    """Check the migration's five invariants in the database (exit 3 when one fails).

    Example: etl validate --in data/transform
    """
    from etl.load_command import validate_command

    out = validate_command(obj.settings(), **options)
    obj.emit(out.data, out.text)
    sys.exit(out.exit_code)


# ----------------------------------------------------------------------- report


@cli.command()
@click.option(
    "--export",
    "export_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Export stage (must exist).  [default: data/export, when there is one]",
)
@click.option(
    "--transform",
    "transform_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Transform stage (must exist).  [default: data/transform, when there is one]",
)
@click.option(
    "--load",
    "load_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Load ledger directory (may not exist yet).  [default: data/load]",
)
@click.option(
    "--out",
    default="report.html",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="HTML file to write.",
)
@click.option(
    "--screenshot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also render it in headless Chromium to this PNG; exit 1 on console errors.",
)
@pass_ctx
@handle_errors
def report(
    obj: Context,
    export_dir: Path | None,
    transform_dir: Path | None,
    load_dir: Path | None,
    out: Path,
    screenshot: Path | None,
) -> None:
    """Write one self-contained HTML report (counts, runs, rejections, load rates, diff).

    Example: etl report --out report.html --screenshot report.png
    """
    from etl.report import write_report

    result = write_report(
        export=export_dir, transform=transform_dir, load=load_dir, out=out, reporter=obj.reporter()
    )
    data: dict[str, Any] = {
        "out": str(result.path),
        "bytes": result.bytes,
        "warnings": result.warnings,
    }
    lines = [*(f"note: {w}" for w in result.warnings), f"Report written to {result.path}"]
    if screenshot is not None:
        from etl.report_browser import check_in_browser

        check = check_in_browser(result.path, screenshot)
        data["browser"] = {"png": str(check.png), "svgs": check.svgs, "problems": check.problems}
        lines += [f"browser: {p}" for p in check.problems]
        lines.append(
            f"Screenshot {check.png}: {check.svgs} charts, "
            f"{'no console errors' if check.ok else 'PROBLEMS above'}"
        )
    obj.emit(data, "\n".join(lines))
    if screenshot is not None and not check.ok:
        sys.exit(int(ExitCode.FAILURE))


def main() -> None:
    cli(prog_name="etl")


if __name__ == "__main__":
    main()

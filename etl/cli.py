"""The `etl` command line: a thin skin over the library.

Each command resolves settings, calls one library function and reports. Errors
are translated once, by ``handle_errors``: an ``EtlError`` becomes ``Error: …``
on stderr and its documented exit code (see ``etl.errors.ExitCode``).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
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
            if debug:
                raise
            click.echo(f"Error: {e}", err=True)
            ctx.exit(int(e.exit_code))
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(int(ExitCode.INTERRUPTED))

    return wrapper  # type: ignore[return-value]


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
@pass_ctx
@handle_errors
def db_start(obj: Context, timeout: float) -> None:
    """Fetch the Neo4j jars (first time) and start the server; no-op if it runs.

    Example: etl db start
    """
    from etl import localdb

    st = localdb.start(obj.settings(), timeout=timeout)
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


def main() -> None:
    cli(prog_name="etl")


if __name__ == "__main__":
    main()

"""Shared fixtures: one real Neo4j server per test session, wiped between tests.

Without NEO4J_URI, the session starts its own local server (same jars as `etl db`)
in a temporary home on a free port, so parallel test runs never share a database.
With NEO4J_URI set, tests use that server, and WIPE IT between tests.
"""

from __future__ import annotations

import getpass
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from etl import localdb
from etl.graph import admin
from etl.graph.connection import open_driver
from etl.pids import pid_alive
from etl.settings import Settings, load_settings

_CONN_VARS = ("NEO4J_URI", "NEO4J_USERNAME", "NEO4J_PASSWORD", "NEO4J_DATABASE")
#: Written into each session's base temp dir: the pytest process that owns its servers.
_OWNER = "etl-owner.pid"


def _orphan_servers(root: Path) -> list[Path]:
    """Homes of servers still running for a pytest session whose process is gone.

    A session killed from outside (SIGKILL, a closed terminal) cannot stop the
    servers it started; they would run, and hold memory, until the machine
    reboots. Sessions still running are left alone (their owner pid is alive).
    """
    homes = []
    for session_dir in root.glob("pytest-*"):
        try:
            owner = int((session_dir / _OWNER).read_text())
        except (OSError, ValueError):
            continue
        if pid_alive(owner):
            continue
        homes += [p.parent.parent for p in session_dir.glob("**/run/etl-neo4j.pid")]
    return homes


def stop_orphan_servers(root: Path) -> list[Path]:
    """Stop the servers ``_orphan_servers`` finds under ``root``; the homes stopped."""
    stopped = []
    for home in _orphan_servers(root):
        settings = load_settings(
            {"local_home": str(home)}, environ={}, env_file=Path("/nonexistent")
        )
        if localdb.stop(settings):
            stopped.append(home)
    return stopped


def pytest_configure(config: pytest.Config) -> None:
    """Stop the servers of earlier sessions that died (before pytest rotates their dirs)."""
    if config.option.basetemp:
        return
    temproot = os.environ.get("PYTEST_DEBUG_TEMPROOT") or tempfile.gettempdir()
    for home in stop_orphan_servers(Path(temproot) / f"pytest-of-{getpass.getuser()}"):
        print(f"stopped an orphaned test server (its pytest session died): {home}")


@pytest.fixture(scope="session", autouse=True)
def _session_owner(tmp_path_factory: pytest.TempPathFactory) -> None:
    (tmp_path_factory.getbasetemp() / _OWNER).write_text(str(os.getpid()))


def home_settings(path: Path, port: int | None = None) -> Settings:
    """Settings of a local home of a test's own, blind to the ``NEO4J_*`` environment."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
    return load_settings(
        {"local_home": str(path), "bolt_port": port or free_port()},
        environ=environ,
        env_file=Path("/nonexistent"),
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def neo4j_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings of the test server (started once per session, stopped at the end)."""
    if os.environ.get("NEO4J_URI"):
        yield load_settings()
        return
    home = tmp_path_factory.mktemp("neo4j-home")
    environ = {k: v for k, v in os.environ.items() if k not in _CONN_VARS}
    settings = load_settings(
        {"local_home": str(home), "bolt_port": free_port()},
        environ=environ,
        env_file=Path("/nonexistent"),
    )
    localdb.start(settings)
    settings = load_settings(
        {"local_home": str(home), "bolt_port": settings.bolt_port},
        environ=environ,
        env_file=Path("/nonexistent"),
    )
    try:
        yield settings
    finally:
        localdb.stop(settings)


@pytest.fixture(scope="session")
def _session_driver(neo4j_settings: Settings) -> Iterator[Any]:
    with open_driver(neo4j_settings) as driver:
        yield driver


@pytest.fixture
def driver(neo4j_settings: Settings, _session_driver: Any) -> Iterator[Any]:
    """A driver on an empty database: nodes, constraints and indexes wiped before the test."""
    admin.wipe_database(_session_driver, neo4j_settings.database)
    yield _session_driver


@pytest.fixture
def etl_env(neo4j_settings: Settings) -> dict[str, str]:
    """Environment that points the `etl` CLI at the test server."""
    assert neo4j_settings.password is not None
    return {
        "NEO4J_URI": neo4j_settings.uri,
        "NEO4J_USERNAME": neo4j_settings.username,
        "NEO4J_PASSWORD": neo4j_settings.password.reveal(),
        "NEO4J_DATABASE": neo4j_settings.database,
        "ETL_NEO4J_HOME": str(neo4j_settings.local_home),
        "ETL_NEO4J_BOLT_PORT": str(neo4j_settings.bolt_port),
    }


@pytest.fixture
def run_cli(etl_env: dict[str, str]) -> Any:
    """Invoke the CLI in-process against the test server: run_cli("export", "--out", p)."""
    from etl.cli import cli

    def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
        runner = CliRunner()
        return runner.invoke(
            cli, list(args), env={**etl_env, **(env or {})}, input=input, catch_exceptions=False
        )

    return run

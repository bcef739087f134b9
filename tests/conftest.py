"""Shared fixtures: one real Neo4j server per test session, wiped between tests.

Without NEO4J_URI, the session starts its own local server (same jars as `etl db`)
in a temporary home on a free port, so parallel test runs never share a database.
With NEO4J_URI set, tests use that server, and WIPE IT between tests.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from etl import localdb
from etl.graph import admin
from etl.graph.connection import open_driver
from etl.settings import Settings, load_settings

_CONN_VARS = ("NEO4J_URI", "NEO4J_USERNAME", "NEO4J_PASSWORD", "NEO4J_DATABASE")


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

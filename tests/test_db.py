"""`etl db` lifecycle and the CLI's connection error paths, against a real server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from etl import localdb
from etl.cli import cli
from etl.errors import ExitCode, LocalServerError
from etl.settings import Settings, load_settings
from tests.conftest import free_port

pytestmark = pytest.mark.db


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {
        "NEO4J_URI": "",
        "NEO4J_PASSWORD": "",
        "NEO4J_USERNAME": "",
        "NEO4J_DATABASE": "",
        "ETL_NEO4J_HOME": str(settings.local_home),
        "ETL_NEO4J_BOLT_PORT": str(settings.bolt_port),
    }
    env.update(extra)
    return env


def test_lifecycle_start_twice_status_stop(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = load_settings(
        {"local_home": str(home), "bolt_port": free_port()},
        environ={},
        env_file=tmp_path / "none",
    )
    runner = CliRunner()
    env = _env(settings)
    try:
        first = runner.invoke(cli, ["db", "start"], env=env)
        assert first.exit_code == 0, first.output
        pid = localdb.status(settings).pid
        assert pid is not None
        again = runner.invoke(cli, ["db", "start"], env=env)
        assert again.exit_code == 0
        assert localdb.status(settings).pid == pid  # idempotent: same process
        st = runner.invoke(cli, ["--json", "db", "status"], env=env)
        assert st.exit_code == 0, st.output
        assert f'"pid": {pid}' in st.output
        assert f"{settings.neo4j_version} community" in st.output
        password = (home / "password").read_text().strip()
        assert oct((home / "password").stat().st_mode & 0o777) == "0o600"
        assert password in st.output  # status is the one place that prints it
        # The password never lands in the server's own files.
        for path in (home / "logs").rglob("*"):
            if path.is_file():
                assert password not in path.read_text(errors="replace"), path
        assert password not in (home / "conf" / "neo4j.conf").read_text()
    finally:
        stopped = runner.invoke(cli, ["db", "stop"], env=env)
    assert stopped.exit_code == 0
    assert stopped.output.strip() == "Neo4j stopped."
    assert localdb.status(settings).running is False
    assert runner.invoke(cli, ["db", "stop"], env=env).output.strip() == "Neo4j was not running."
    down = runner.invoke(cli, ["db", "status"], env=env)
    assert down.exit_code == ExitCode.FAILURE
    assert "running: False" in down.output


def test_start_refuses_port_taken_by_another_process(
    tmp_path: Path, neo4j_settings: Settings
) -> None:
    # The session's test server holds its port: a second home on that port must refuse.
    other = load_settings(
        {"local_home": str(tmp_path / "other"), "bolt_port": neo4j_settings.bolt_port},
        environ={},
        env_file=tmp_path / "none",
    )
    with pytest.raises(LocalServerError, match="already taken by another process"):
        localdb.start(other)


def test_server_down_gives_unreachable_exit_code(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "NEO4J_URI": f"bolt://127.0.0.1:{port}",
        "NEO4J_PASSWORD": "whatever",
        "ETL_NEO4J_BOLT_PORT": str(port),
        "ETL_NEO4J_HOME": str(tmp_path),
    }
    result = CliRunner().invoke(cli, ["seed", "--workflows", "1"], env=env)
    assert result.exit_code == ExitCode.UNREACHABLE, result.output
    assert "cannot reach Neo4j at bolt://127.0.0.1" in result.output
    assert "etl db start" in result.output


def test_wrong_password_gives_auth_exit_code_without_echoing_it(
    etl_env: dict[str, str], driver: Any
) -> None:
    env = {**etl_env, "NEO4J_PASSWORD": "wrong-Pa55word-xyz"}
    result = CliRunner().invoke(cli, ["seed", "--workflows", "1"], env=env)
    assert result.exit_code == ExitCode.UNREACHABLE, result.output
    assert "authentication failed" in result.output
    assert "wrong-Pa55word-xyz" not in result.output


def test_missing_password_names_the_fix(tmp_path: Path) -> None:
    env = {
        "NEO4J_URI": "bolt://db.example:7687",
        "NEO4J_PASSWORD": "",
        "ETL_NEO4J_HOME": str(tmp_path),
    }
    result = CliRunner().invoke(cli, ["seed", "--workflows", "1"], env=env)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "set NEO4J_PASSWORD" in result.output


def test_neo4j_admin_runs_from_the_same_jars(neo4j_settings: Settings) -> None:
    proc = localdb.admin_command(neo4j_settings, ["database", "import", "full", "--help"])
    assert proc.returncode == 0, proc.stderr
    assert "neo4j-admin database import full" in proc.stdout


@pytest.mark.skipif(os.environ.get("NEO4J_URI") is not None, reason="uses the local server")
def test_version_is_the_pinned_one(driver: Any, neo4j_settings: Settings) -> None:
    from etl.graph.connection import server_info

    assert server_info(driver, neo4j_settings).version == neo4j_settings.neo4j_version


@pytest.mark.skipif(os.environ.get("NEO4J_URI") is not None, reason="uses the local server")
def test_local_server_keeps_two_transaction_log_files(driver: Any) -> None:
    """Not Neo4j's default two days: repeated seeds and loads filled 37 GiB of logs."""
    records, _, _ = driver.execute_query(
        "SHOW SETTINGS YIELD name, value WHERE name = 'db.tx_log.rotation.retention_policy' "
        "RETURN value"
    )
    assert [r["value"] for r in records] == ["2 files"]


def test_a_stale_pid_file_naming_another_process_is_not_a_running_server(tmp_path: Path) -> None:
    """Pids are reused: after a reboot the pid file may name any live process."""
    settings = load_settings(
        {"local_home": str(tmp_path), "bolt_port": free_port()},
        environ={},
        env_file=tmp_path / "none",
    )
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "etl-neo4j.pid").write_text(f"{os.getpid()}\n")  # this pytest
    assert localdb.status(settings).running is False

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
from etl.graph.connection import open_driver
from etl.graph.schema import node_total
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


def test_the_home_remembers_its_port(tmp_path: Path, neo4j_settings: Settings, driver: Any) -> None:
    """The port set only in the shell that started the server is read back from the home.

    Another shell (no ETL_NEO4J_BOLT_PORT, or one naming another server: here the
    session's test server) still finds it for `db status`, and `load --mode offline
    --home H` counts H's own database, not the other server's.
    """
    home = tmp_path / "home"
    port = free_port()
    settings = load_settings(
        {"local_home": str(home), "bolt_port": port}, environ={}, env_file=tmp_path / "none"
    )
    runner = CliRunner()
    started = _env(settings)
    try:
        assert runner.invoke(cli, ["db", "start"], env=started).exit_code == 0
        pid = localdb.status(settings).pid
        password = (home / "password").read_text().strip()
        expected = [
            "  running: True",
            f"      pid: {pid}",
            f"      uri: bolt://127.0.0.1:{port}",
            f"     home: {home}",
            f"     data: {home / 'data'}",
            f"  version: {settings.neo4j_version} community",
            f" password: {password}",
        ]
        other_shell = {**started, "ETL_NEO4J_BOLT_PORT": ""}
        st = runner.invoke(cli, ["db", "status"], env=other_shell)
        assert (st.exit_code, st.output.splitlines()) == (0, expected)
        wrong = {**started, "ETL_NEO4J_BOLT_PORT": str(neo4j_settings.bolt_port)}
        st = runner.invoke(cli, ["db", "status"], env=wrong)
        assert (st.exit_code, st.output.splitlines()) == (
            0,
            [
                *expected,
                f"note: the server of {home} listens on port {port} (its conf), "
                f"not on {neo4j_settings.bolt_port} (ETL_NEO4J_BOLT_PORT)",
            ],
        )
        # NEO4J_URI names another server: `db status` still describes this home's own.
        assert neo4j_settings.password is not None
        elsewhere = {
            **other_shell,
            "NEO4J_URI": neo4j_settings.uri,
            "NEO4J_PASSWORD": neo4j_settings.password.reveal(),
        }
        st = runner.invoke(cli, ["db", "status"], env=elsewhere)
        assert (st.exit_code, st.output.splitlines()) == (0, expected)
        moved = runner.invoke(cli, ["db", "start"], env=wrong)
        assert (moved.exit_code, moved.stderr) == (
            ExitCode.FAILURE,
            f"Error: the server of {home} already runs, on port {port}, not "
            f"{neo4j_settings.bolt_port}\n  hint: `etl db stop` first to move it to the new "
            "port, or unset ETL_NEO4J_BOLT_PORT to use it where it is\n",
        )
        seeded = runner.invoke(cli, ["seed", "--workflows", "3"], env=other_shell)
        assert seeded.exit_code == 0, seeded.output
        exported = runner.invoke(cli, ["export", "--out", str(tmp_path / "x")], env=other_shell)
        assert exported.exit_code == 0, exported.output
        with open_driver(localdb.server_settings(settings)) as own:
            nodes = node_total(own, settings.database)
        default_shell = {**wrong, "ETL_NEO4J_HOME": ""}
        offline = runner.invoke(
            cli,
            ["load", "--mode", "offline", "--home", str(home), "--in", str(tmp_path / "x")],
            env=default_shell,
        )
        assert offline.exit_code == ExitCode.FAILURE, offline.output
        assert offline.stderr.startswith(
            f"Error: the database 'neo4j' in {home} holds {nodes:,} nodes; an offline import "
            "replaces the whole database\n"
        )
        assert localdb.status(settings).pid == pid  # left running, untouched
        assert localdb.status(neo4j_settings).running  # the other server too
    finally:
        localdb.stop(settings)


def test_neo4j_admin_reads_relative_paths_from_the_callers_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As `neo4j-admin` itself: `etl load --mode offline --ledger-dir data/load` passes
    the importer paths relative to where the user stands, not to the home."""
    settings = load_settings(
        {"local_home": str(tmp_path / "home"), "bolt_port": free_port()},
        environ={},
        env_file=tmp_path / "none",
    )
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "nodes.csv").write_text("id:ID,:LABEL\na,Thing\n")
    monkeypatch.chdir(tmp_path)
    args = ["database", "import", "full", "neo4j", "--nodes=in/nodes.csv"]
    proc = localdb.admin_command(settings, [*args, "--overwrite-destination=true"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "IMPORT DONE" in proc.stdout + proc.stderr

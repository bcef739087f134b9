"""Configuration mistakes a user makes end in one `Error:` line and its hint, never a traceback.

Each case asserts the exact stderr, an empty stdout and the documented exit code
(README "Exit codes"), against the session's real test server where one is needed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from etl.errors import ExitCode
from etl.settings import PROJECT_ROOT, Settings
from tests.test_load_support import Stages, legacy_stages

__all__ = ["legacy_stages"]  # a session fixture used here

pytestmark = pytest.mark.db

_DB_HINT = "  hint: set NEO4J_DATABASE to one of its databases ('neo4j' when unset)\n"


def _stage_args(command: str, stages: Stages, tmp_path: Path) -> list[str]:
    if command == "export":
        return ["export", "--out", str(tmp_path / "export")]
    if command == "load":
        return ["load", "--in", str(stages.transform), "--ledger-dir", str(tmp_path / "load")]
    return ["validate", "--in", str(stages.transform)]


@pytest.mark.parametrize("command", ["export", "load", "validate"])
def test_a_database_that_does_not_exist_is_named_with_the_fix(
    command: str,
    run_cli: Any,
    driver: Any,
    neo4j_settings: Settings,
    legacy_stages: Stages,
    tmp_path: Path,
) -> None:
    records, _, _ = driver.execute_query(
        "SHOW DATABASES YIELD name WHERE name <> 'system' RETURN DISTINCT name ORDER BY name",
        database_="system",
    )
    there = ", ".join(repr(r["name"]) for r in records)
    result = run_cli(
        *_stage_args(command, legacy_stages, tmp_path), env={"NEO4J_DATABASE": "nosuch"}
    )
    assert (result.exit_code, result.stdout) == (ExitCode.USAGE, ""), result.output
    assert result.stderr == (
        f"Error: Neo4j at {neo4j_settings.redacted_uri()} has no database 'nosuch' "
        f"(it has {there})\n" + _DB_HINT
    )
    assert list(tmp_path.iterdir()) == []  # it failed before writing anything


_SCHEME_HINT = (
    "  hint: use bolt:// or neo4j:// (+s: TLS, +ssc: TLS with a self-signed certificate) "
    "and the Bolt port, not the HTTP one (7474), e.g. NEO4J_URI=neo4j://{host}:7687\n"
)


@pytest.mark.parametrize("command", ["export", "load", "validate"])
def test_an_http_uri_is_refused_before_the_driver_is_used(
    command: str, run_cli: Any, legacy_stages: Stages, tmp_path: Path
) -> None:
    result = run_cli(
        *_stage_args(command, legacy_stages, tmp_path), env={"NEO4J_URI": "http://127.0.0.1:7474"}
    )
    assert (result.exit_code, result.stdout) == (ExitCode.USAGE, ""), result.output
    assert result.stderr == (
        "Error: NEO4J_URI uses http://, which is not Bolt (http://127.0.0.1:7474)\n"
        + _SCHEME_HINT.format(host="127.0.0.1")
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("uri", "stderr"),
    [
        (
            "https://db.example.com",
            "Error: NEO4J_URI uses https://, which is not Bolt (https://db.example.com)\n"
            + _SCHEME_HINT.format(host="db.example.com"),
        ),
        (
            "bolt://127.0.0.1:7474x",
            "Error: NEO4J_URI has port '7474x', which is not a TCP port number "
            "(bolt://127.0.0.1:7474x)\n"
            "  hint: set NEO4J_URI=bolt://127.0.0.1:7687 (the server's Bolt port)\n",
        ),
        (
            "neo4j+s://[::1]:99999",
            "Error: NEO4J_URI has port '99999', which is not a TCP port number "
            "(neo4j+s://[::1]:99999)\n"
            "  hint: set NEO4J_URI=neo4j+s://[::1]:7687 (the server's Bolt port)\n",
        ),
        (
            "neo4j://:7687",
            "Error: NEO4J_URI names no host (neo4j://:7687)\n"
            "  hint: set NEO4J_URI=neo4j://localhost:7687 (or the server's host)\n",
        ),
        (
            # Credentials are refused first, and never echoed, whatever the scheme.
            "http://admin:s3cret@db.example.com:7474",
            "Error: NEO4J_URI carries credentials (http://…@db.example.com:7474); they would "
            "end up in logs\n  hint: set NEO4J_URI=http://db.example.com:7474 and pass the "
            "user and password in NEO4J_USERNAME / NEO4J_PASSWORD\n",
        ),
    ],
)
def test_a_malformed_uri_is_one_error_line(run_cli: Any, uri: str, stderr: str) -> None:
    result = run_cli("validate", env={"NEO4J_URI": uri})
    assert (result.exit_code, result.stdout) == (ExitCode.USAGE, ""), result.output
    assert result.stderr == stderr


def test_an_http_uri_prints_no_driver_warning_in_a_real_process(tmp_path: Path) -> None:
    """Out of process: the driver's PreviewWarning (its HTTP preview) must not show either."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "ETL_"))}
    env |= {"NEO4J_URI": "http://127.0.0.1:7474", "PYTHONWARNINGS": "default"}
    proc = subprocess.run(
        [sys.executable, "-m", "etl.cli", "validate"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stdout) == (ExitCode.USAGE, "")
    assert proc.stderr == (
        "Error: NEO4J_URI uses http://, which is not Bolt (http://127.0.0.1:7474)\n"
        + _SCHEME_HINT.format(host="127.0.0.1")
    )

"""TLS: the bundled server with a self-signed certificate, reached the way Aura users are.

`etl db start --tls` serves Bolt over TLS only; the tool then talks to it over
``bolt+ssc://`` (any certificate), and a user who trusts the certificate
(``SSL_CERT_FILE``) over ``neo4j+s://`` (verified, with routing) — the code path of
``neo4j+s://…databases.neo4j.io``. Plain Bolt, and ``+s`` without trusting the
certificate, are refused with the fix named.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from etl import localdb
from etl.cli import cli
from etl.errors import ExitCode
from etl.localdb_conf import cert_dir, conf_path
from etl.settings import Settings, load_settings
from tests.conftest import free_port

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def tls_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A home of its own, started with `etl db start --tls` and stopped at the end."""
    home = tmp_path_factory.mktemp("tls") / "home"
    settings = load_settings(
        {"local_home": str(home), "bolt_port": free_port()},
        environ={},
        env_file=Path("/nonexistent"),
    )
    try:
        yield settings
    finally:
        localdb.stop(settings)


def _cli(settings: Settings, *args: str, **env: str) -> Result:
    base: dict[str, str | None] = {
        "NEO4J_URI": "",
        "NEO4J_PASSWORD": "",
        "NEO4J_USERNAME": "",
        "NEO4J_DATABASE": "",
        "ETL_NEO4J_TLS": None,
        "SSL_CERT_FILE": None,
        "ETL_NEO4J_HOME": str(settings.local_home),
        "ETL_NEO4J_BOLT_PORT": "",  # another shell: the home's conf has the port
    }
    return CliRunner().invoke(cli, list(args), env={**base, **env})


def test_start_with_tls_serves_bolt_over_tls_only(tls_home: Settings) -> None:
    port, home = tls_home.bolt_port, tls_home.local_home
    started = _cli(tls_home, "--json", "db", "start", "--tls", ETL_NEO4J_BOLT_PORT=str(port))
    assert started.exit_code == 0, started.output
    assert json.loads(started.stdout)["uri"] == f"bolt+ssc://127.0.0.1:{port}"
    conf = conf_path(home).read_text()
    assert "server.bolt.tls_level=REQUIRED" in conf.splitlines()
    assert oct((cert_dir(home) / "private.key").stat().st_mode & 0o777) == "0o600"
    # Another shell, without --tls: the home remembers it.
    status = _cli(tls_home, "--json", "db", "status")
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["uri"] == f"bolt+ssc://127.0.0.1:{port}"
    plain = _cli(tls_home, "db", "start", "--no-tls")
    assert (plain.exit_code, plain.stderr) == (
        ExitCode.FAILURE,
        f"Error: the server of {home} already runs with TLS\n"
        "  hint: `etl db stop` first to start it without TLS (--tls/--no-tls, ETL_NEO4J_TLS)\n",
    )
    seeded = _cli(tls_home, "--json", "seed", "--workflows", "5", "--replace")
    assert seeded.exit_code == 0, seeded.output


def test_neo4j_s_with_a_trusted_certificate_works(tls_home: Settings, tmp_path: Path) -> None:
    crt = cert_dir(tls_home.local_home) / "public.crt"
    uri = f"neo4j+s://localhost:{tls_home.bolt_port}"
    result = _cli(
        tls_home,
        "--json",
        "export",
        "--out",
        str(tmp_path / "x"),
        NEO4J_URI=uri,
        SSL_CERT_FILE=str(crt),
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "x" / "manifest.json").read_text())
    assert manifest["source"]["uri"] == uri
    assert {t["name"]: t["rows"] for t in manifest["tables"]}["Workflow"] == 5


def test_bolt_ssc_to_localhost_works(tls_home: Settings, tmp_path: Path) -> None:
    uri = f"bolt+ssc://localhost:{tls_home.bolt_port}"
    result = _cli(tls_home, "--json", "export", "--out", str(tmp_path / "x"), NEO4J_URI=uri)
    assert result.exit_code == 0, result.output


def test_plain_bolt_to_a_tls_server_names_the_fix(tls_home: Settings) -> None:
    port = tls_home.bolt_port
    result = _cli(tls_home, "seed", "--workflows", "1", NEO4J_URI=f"bolt://127.0.0.1:{port}")
    assert (result.exit_code, result.stdout) == (ExitCode.UNREACHABLE, "")
    assert result.stderr == (
        f"Error: cannot reach Neo4j at bolt://127.0.0.1:{port}: ServiceUnavailable\n"
        f"  hint: the server of {tls_home.local_home} takes TLS only (`etl db start --tls`): "
        f"use bolt+ssc://127.0.0.1:{port} (unset NEO4J_URI), or neo4j+s://localhost:{port} "
        f"with SSL_CERT_FILE={cert_dir(tls_home.local_home)}/public.crt\n"
    )


def test_neo4j_s_without_trusting_the_certificate_names_the_fix(tls_home: Settings) -> None:
    uri = f"neo4j+s://localhost:{tls_home.bolt_port}"
    result = _cli(tls_home, "seed", "--workflows", "1", NEO4J_URI=uri)
    assert (result.exit_code, result.stdout) == (ExitCode.UNREACHABLE, "")
    assert result.stderr == (
        f"Error: cannot reach Neo4j at {uri}: ServiceUnavailable (its TLS certificate is not "
        "trusted)\n  hint: trust the server's CA (SSL_CERT_FILE=<its certificate>), or accept "
        "a self-signed certificate with neo4j+ssc://\n"
    )

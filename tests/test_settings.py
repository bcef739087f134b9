"""Settings precedence: flag > environment > .env file > default."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from etl.errors import ConfigError
from etl.settings import DEFAULT_BOLT_PORT, Secret, load_settings

pytestmark = pytest.mark.unit


def test_defaults(tmp_path: Path) -> None:
    s = load_settings(environ={}, env_file=tmp_path / "none")
    assert s.uri == f"bolt://127.0.0.1:{DEFAULT_BOLT_PORT}"
    assert s.uri_is_local
    assert (s.username, s.database) == ("neo4j", "neo4j")


def test_flag_beats_env_beats_file_beats_default(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("NEO4J_DATABASE=fromfile\nNEO4J_USERNAME=fileuser\nETL_NEO4J_HEAP=3g\n")
    environ = {"NEO4J_DATABASE": "fromenv", "NEO4J_USERNAME": "envuser"}
    s = load_settings({"username": "flaguser"}, environ=environ, env_file=env_file)
    assert s.username == "flaguser"  # flag
    assert s.database == "fromenv"  # env over file
    assert s.heap == "3g"  # file over default
    assert s.pagecache == "1g"  # default


def test_password_is_never_shown(tmp_path: Path) -> None:
    s = load_settings(environ={"NEO4J_PASSWORD": "hunter2-secret"}, env_file=tmp_path / "n")
    assert s.password == Secret("hunter2-secret")
    assert "hunter2-secret" not in repr(s)
    assert "hunter2-secret" not in str(s)


def test_local_password_file_used_only_for_local_uri(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "password").write_text("localpw\n")
    local = load_settings({"local_home": str(home)}, environ={}, env_file=tmp_path / "n")
    assert local.password is not None and local.password.reveal() == "localpw"
    remote = load_settings(
        {"local_home": str(home)},
        environ={"NEO4J_URI": "neo4j://db.example:7687"},
        env_file=tmp_path / "n",
    )
    assert remote.password is None


def test_credentials_in_the_uri_are_refused_without_echo(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="carries credentials") as e:
        load_settings(
            environ={"NEO4J_URI": "neo4j+s://user:s3cret@host.example:7687"},
            env_file=tmp_path / "n",
        )
    assert "s3cret" not in str(e.value) and "user:" not in str(e.value)
    assert "NEO4J_URI=neo4j+s://host.example:7687" in str(e.value)
    # A URI without a scheme is refused without being echoed either.
    with pytest.raises(ConfigError) as e:
        load_settings(environ={"NEO4J_URI": "user:s3cret@host"}, env_file=tmp_path / "n")
    assert "s3cret" not in str(e.value)


def test_redacted_uri_strips_credentials(tmp_path: Path) -> None:
    s = load_settings(environ={"NEO4J_URI": "neo4j+s://host.example:7687"}, env_file=tmp_path / "n")
    assert dataclasses.replace(s, uri="neo4j+s://u:p@host.example:7687").redacted_uri() == (
        "neo4j+s://host.example:7687"
    )


@pytest.mark.parametrize(
    ("var", "value", "fragment"),
    [("ETL_NEO4J_BOLT_PORT", "http", "TCP port"), ("NEO4J_URI", "localhost", "bolt://")],
)
def test_bad_values_are_config_errors(tmp_path: Path, var: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_settings(environ={var: value}, env_file=tmp_path / "n")

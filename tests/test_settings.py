"""Settings precedence: flag > environment > .env file > default."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from etl.errors import ConfigError
from etl.localdb_conf import read_home, write_config
from etl.settings import DEFAULT_BOLT_PORT, NEO4J_VERSION, Secret, load_settings

pytestmark = pytest.mark.unit


def test_defaults(tmp_path: Path) -> None:
    s = load_settings({"local_home": str(tmp_path / "home")}, environ={}, env_file=tmp_path / "n")
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


def _started_home(tmp_path: Path, **overrides: object) -> Path:
    """A home whose conf `etl db start` wrote with ``overrides`` (no server needed)."""
    home = tmp_path / "home"
    write_config(
        load_settings({"local_home": str(home), **overrides}, environ={}, env_file=tmp_path / "n")
    )
    return home


def test_a_home_records_its_port_version_and_tls(tmp_path: Path) -> None:
    home = _started_home(tmp_path, bolt_port=27001, neo4j_version="5.26.3", tls=True)
    record = read_home(home)
    assert record is not None
    assert (record.bolt_port, record.neo4j_version, record.tls) == (27001, "5.26.3", True)
    assert oct((home / "certificates" / "bolt" / "private.key").stat().st_mode & 0o777) == "0o600"
    assert read_home(tmp_path / "never-started") is None


def test_another_shell_finds_the_home_where_it_was_started(tmp_path: Path) -> None:
    """Without ETL_NEO4J_BOLT_PORT (set only in the shell that started it) the home's wins."""
    home = _started_home(tmp_path, bolt_port=27002, neo4j_version="5.26.3", tls=True)
    s = load_settings(environ={"ETL_NEO4J_HOME": str(home)}, env_file=tmp_path / "n")
    assert (s.bolt_port, s.neo4j_version, s.tls) == (27002, "5.26.3", True)
    assert s.uri == "bolt+ssc://127.0.0.1:27002" and s.uri_is_local


def test_the_environment_still_moves_a_home_named_by_the_environment(tmp_path: Path) -> None:
    home = _started_home(tmp_path, bolt_port=27003)
    environ = {"ETL_NEO4J_HOME": str(home), "ETL_NEO4J_BOLT_PORT": "27004"}
    s = load_settings(environ=environ, env_file=tmp_path / "n")
    assert s.bolt_port == 27004  # the next `etl db start` moves the server there
    assert s.home_record is not None and s.home_record.bolt_port == 27003


def test_a_home_named_by_a_flag_brings_its_own_port(tmp_path: Path) -> None:
    """`--home H` (an override): the environment's port belongs to the default home."""
    home = _started_home(tmp_path, bolt_port=27005, neo4j_version="5.26.3")
    environ = {"ETL_NEO4J_BOLT_PORT": "17687", "ETL_NEO4J_VERSION": "2025.10.1"}
    s = load_settings({"local_home": str(home)}, environ=environ, env_file=tmp_path / "n")
    assert (s.bolt_port, s.neo4j_version, s.uri) == (27005, "5.26.3", "bolt://127.0.0.1:27005")
    explicit = load_settings(
        {"local_home": str(home), "bolt_port": 27006}, environ=environ, env_file=tmp_path / "n"
    )
    assert explicit.bolt_port == 27006  # a port flag beats everything
    fresh = load_settings(
        {"local_home": str(tmp_path / "fresh")}, environ=environ, env_file=tmp_path / "n"
    )
    assert (fresh.bolt_port, fresh.neo4j_version) == (17687, "2025.10.1")


def test_a_home_written_before_versions_were_recorded_uses_the_default(tmp_path: Path) -> None:
    home = tmp_path / "old"
    (home / "conf").mkdir(parents=True)
    (home / "conf" / "neo4j.conf").write_text("server.bolt.listen_address=127.0.0.1:27007\n")
    s = load_settings({"local_home": str(home)}, environ={}, env_file=tmp_path / "n")
    assert (s.bolt_port, s.neo4j_version, s.tls) == (27007, NEO4J_VERSION, False)


@pytest.mark.parametrize(
    ("uri", "is_local"),
    [
        ("bolt://127.0.0.1:27008", True),
        ("neo4j+s://localhost:27008", True),
        ("bolt+ssc://[::1]:27008", True),
        ("bolt://127.0.0.1:7687", False),
        ("neo4j+s://db.example.com:27008", False),
    ],
)
def test_any_scheme_on_the_homes_loopback_port_is_the_local_server(
    tmp_path: Path, uri: str, is_local: bool
) -> None:
    s = load_settings(
        {"local_home": str(tmp_path), "bolt_port": 27008},
        environ={"NEO4J_URI": uri},
        env_file=tmp_path / "n",
    )
    assert s.uri_is_local is is_local


@pytest.mark.parametrize(
    "uri",
    [
        "bolt://h:7687",
        "bolt+s://h",
        "bolt+ssc://h:1",
        "neo4j://h:7687/?policy=x",
        "neo4j+s://h.example",
        "NEO4J+SSC://h",
    ],
)
def test_every_driver_scheme_is_accepted(tmp_path: Path, uri: str) -> None:
    assert load_settings(environ={"NEO4J_URI": uri}, env_file=tmp_path / "n").uri == uri


def test_tls_setting_must_be_a_boolean(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ETL_NEO4J_TLS must be true or false, got 'maybe'"):
        load_settings(environ={"ETL_NEO4J_TLS": "maybe"}, env_file=tmp_path / "n")

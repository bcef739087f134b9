"""Settings, resolved once: flag > environment > `.env` file > default.

This is the only module that reads environment variables. Everything else gets
a frozen ``Settings`` passed down.

| setting            | environment              | default                                   |
|--------------------|--------------------------|-------------------------------------------|
| uri                | NEO4J_URI                | bolt://127.0.0.1:<ETL_NEO4J_BOLT_PORT>    |
| username           | NEO4J_USERNAME           | neo4j                                     |
| password           | NEO4J_PASSWORD           | the local server's generated password     |
| database           | NEO4J_DATABASE           | neo4j                                     |
| local_home         | ETL_NEO4J_HOME           | <project>/.neo4j/home                     |
| dist_dir           | ETL_NEO4J_DIST           | <project>/.neo4j/dist  (jar cache)        |
| bolt_port          | ETL_NEO4J_BOLT_PORT      | 17687                                     |
| heap               | ETL_NEO4J_HEAP           | 1g                                        |
| pagecache          | ETL_NEO4J_PAGECACHE      | 1g                                        |
| neo4j_version      | ETL_NEO4J_VERSION        | 5.26.30                                   |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from etl.errors import ConfigError

NEO4J_VERSION = "5.26.30"
DEFAULT_BOLT_PORT = 17687
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Secret:
    """A string that never shows itself in repr, str, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    uri: str
    username: str
    password: Secret | None
    database: str
    local_home: Path
    dist_dir: Path
    bolt_port: int
    heap: str
    pagecache: str
    neo4j_version: str
    uri_is_local: bool
    quiet: bool = False
    debug: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def password_file(self) -> Path:
        return self.local_home / "password"

    def redacted_uri(self) -> str:
        """The URI without any user-info part, safe for logs and manifests."""
        scheme, sep, rest = self.uri.partition("://")
        if not sep:
            return self.uri
        return f"{scheme}://{rest.rpartition('@')[2]}"

    def with_password(self, password: str) -> Settings:
        return replace(self, password=Secret(password))


_ENV_KEYS = {
    "uri": "NEO4J_URI",
    "username": "NEO4J_USERNAME",
    "password": "NEO4J_PASSWORD",
    "database": "NEO4J_DATABASE",
    "local_home": "ETL_NEO4J_HOME",
    "dist_dir": "ETL_NEO4J_DIST",
    "bolt_port": "ETL_NEO4J_BOLT_PORT",
    "heap": "ETL_NEO4J_HEAP",
    "pagecache": "ETL_NEO4J_PAGECACHE",
    "neo4j_version": "ETL_NEO4J_VERSION",
}


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = None,
) -> Settings:
    """Resolve settings: ``overrides`` (flags) > ``environ`` > ``env_file`` > defaults."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    environ = os.environ if environ is None else environ
    env_file = PROJECT_ROOT / ".env" if env_file is None else env_file
    file_values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}

    def pick(name: str, default: str) -> str:
        if name in overrides:
            return str(overrides[name])
        key = _ENV_KEYS[name]
        if environ.get(key):
            return environ[key]
        if file_values.get(key):
            return file_values[key]
        return default

    home = Path(pick("local_home", str(PROJECT_ROOT / ".neo4j" / "home"))).expanduser().resolve()
    dist = Path(pick("dist_dir", str(PROJECT_ROOT / ".neo4j" / "dist"))).expanduser().resolve()
    port_text = pick("bolt_port", str(DEFAULT_BOLT_PORT))
    try:
        port = int(port_text)
        if not 0 < port < 65536:
            raise ValueError
    except ValueError:
        raise ConfigError(
            f"ETL_NEO4J_BOLT_PORT must be a TCP port number, got {port_text!r}"
        ) from None
    local_uri = f"bolt://127.0.0.1:{port}"
    uri = pick("uri", local_uri)
    scheme, sep, rest = uri.partition("://")
    if not sep:
        # Never echo it: a URI without a scheme may still carry a password.
        raise ConfigError(
            "NEO4J_URI must look like bolt://host:7687 or neo4j://host "
            f"(got a value without '://', {len(uri)} characters)"
        )
    authority = rest.split("/", 1)[0]
    if "@" in authority:
        host = authority.rpartition("@")[2]
        raise ConfigError(
            f"NEO4J_URI carries credentials ({scheme}://…@{host}); they would end up in logs",
            hint=f"set NEO4J_URI={scheme}://{host} and pass the user and password in "
            "NEO4J_USERNAME / NEO4J_PASSWORD",
        )
    password_text = pick("password", "")
    password = Secret(password_text) if password_text else None
    uri_is_local = uri == local_uri
    if password is None and uri_is_local and (home / "password").is_file():
        password = Secret((home / "password").read_text().strip())
    return Settings(
        uri=uri,
        username=pick("username", "neo4j"),
        password=password,
        database=pick("database", "neo4j"),
        local_home=home,
        dist_dir=dist,
        bolt_port=port,
        heap=pick("heap", "1g"),
        pagecache=pick("pagecache", "1g"),
        neo4j_version=pick("neo4j_version", NEO4J_VERSION),
        uri_is_local=uri_is_local,
        quiet=bool(overrides.get("quiet", False)),
        debug=bool(overrides.get("debug", False)),
    )

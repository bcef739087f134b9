"""Settings, resolved once: flag > environment > `.env` file > the home's record > default.

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
| bolt_port          | ETL_NEO4J_BOLT_PORT      | the home's port, else 17687               |
| heap               | ETL_NEO4J_HEAP           | 1g                                        |
| pagecache          | ETL_NEO4J_PAGECACHE      | 1g                                        |
| neo4j_version      | ETL_NEO4J_VERSION        | the home's version, else 5.26.30          |
| tls                | ETL_NEO4J_TLS            | the home's, else off (bolt+ssc:// when on) |
| java               | ETL_JAVA                 | found per version (etl.localdb_java)      |

"The home's" values are what `etl db start` last wrote into it (``etl.localdb_conf``),
so another shell, or ``--home H``, finds the server where it really listens. A home
given by a flag (``--home``) brings its own port, version and TLS even when the
environment names others: those describe the default home.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dotenv import dotenv_values

from etl.errors import ConfigError
from etl.localdb_conf import HomeRecord, read_home

NEO4J_VERSION = "5.26.30"
DEFAULT_BOLT_PORT = 17687
PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: The driver's schemes: plain, TLS with verified certificates (+s), TLS with any (+ssc).
URI_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


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
    tls: bool = False
    java: str | None = None
    #: What the home recorded when its server was last started (None: never started).
    home_record: HomeRecord | None = None
    quiet: bool = False
    debug: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def password_file(self) -> Path:
        return self.local_home / "password"

    @property
    def local_uri(self) -> str:
        """The URI of this home's server (`bolt+ssc://` when it serves TLS)."""
        return local_uri(self.bolt_port, tls=self.tls)

    def redacted_uri(self) -> str:
        """The URI without any user-info part, safe for logs and manifests."""
        scheme, sep, rest = self.uri.partition("://")
        if not sep:
            return self.uri
        return f"{scheme}://{rest.rpartition('@')[2]}"

    def with_password(self, password: str) -> Settings:
        return replace(self, password=Secret(password))


def local_uri(port: int, *, tls: bool = False) -> str:
    return f"{'bolt+ssc' if tls else 'bolt'}://127.0.0.1:{port}"


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
    "tls": "ETL_NEO4J_TLS",
    "java": "ETL_JAVA",
}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = None,
) -> Settings:
    """Resolve: ``overrides`` (flags) > ``environ`` > ``env_file`` > the home > defaults."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    environ = os.environ if environ is None else environ
    env_file = PROJECT_ROOT / ".env" if env_file is None else env_file
    file_values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}

    def given(name: str) -> str | None:
        if name in overrides:
            return str(overrides[name])
        key = _ENV_KEYS[name]
        return environ.get(key) or file_values.get(key) or None

    def pick(name: str, default: str) -> str:
        value = given(name)
        return default if value is None else value

    home = Path(pick("local_home", str(PROJECT_ROOT / ".neo4j" / "home"))).expanduser().resolve()
    dist = Path(pick("dist_dir", str(PROJECT_ROOT / ".neo4j" / "dist"))).expanduser().resolve()
    record = read_home(home)
    # A home named by a flag brings its own server settings: the environment's
    # port, version and TLS are those of the default home.
    home_first = "local_home" in overrides and record is not None

    def pick_home(name: str, recorded: object, default: str) -> str:
        if name in overrides:
            return str(overrides[name])
        if recorded is not None and (home_first or given(name) is None):
            return str(recorded)
        return pick(name, default)

    port_text = pick_home("bolt_port", record.bolt_port if record else None, str(DEFAULT_BOLT_PORT))
    port = _port(port_text, "ETL_NEO4J_BOLT_PORT")
    tls_text = pick_home("tls", record.tls if record else None, "false").strip().lower()
    if tls_text not in (*_TRUE, *_FALSE):
        raise ConfigError(f"ETL_NEO4J_TLS must be true or false, got {tls_text!r}")
    tls = tls_text in _TRUE
    default_uri = local_uri(port, tls=tls)
    uri = pick("uri", default_uri)
    host, uri_port = check_uri(uri)
    password_text = pick("password", "")
    password = Secret(password_text) if password_text else None
    # Any URI that names this home's port on the loopback is the local server.
    uri_is_local = host in _LOOPBACK and uri_port == port
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
        neo4j_version=pick_home(
            "neo4j_version", record.neo4j_version if record else None, NEO4J_VERSION
        ),
        uri_is_local=uri_is_local,
        tls=tls,
        java=given("java"),
        home_record=record,
        quiet=bool(overrides.get("quiet", False)),
        debug=bool(overrides.get("debug", False)),
    )


def _port(text: str, what: str) -> int:
    try:
        port = int(text)
        if not 0 < port < 65536:
            raise ValueError
    except ValueError:
        raise ConfigError(f"{what} must be a TCP port number, got {text!r}") from None
    return port


def check_uri(uri: str) -> tuple[str, int]:
    """Refuse a URI the driver cannot use, before the driver is imported; (host, port).

    Credentials are refused before anything is echoed, and a URI without a scheme
    is never echoed (it may still carry a password).
    """
    scheme, sep, rest = uri.partition("://")
    if not sep:
        raise ConfigError(
            "NEO4J_URI must look like bolt://host:7687 or neo4j://host "
            f"(got a value without '://', {len(uri)} characters)"
        )
    authority = rest.split("/", 1)[0].split("?", 1)[0]
    host = authority.rpartition("@")[2]
    if "@" in authority:
        raise ConfigError(
            f"NEO4J_URI carries credentials ({scheme}://…@{host}); they would end up in logs",
            hint=f"set NEO4J_URI={scheme}://{host} and pass the user and password in "
            "NEO4J_USERNAME / NEO4J_PASSWORD",
        )
    if scheme.lower() not in URI_SCHEMES:
        raise ConfigError(
            f"NEO4J_URI uses {scheme}://, which is not Bolt ({uri})",
            hint="use bolt:// or neo4j:// (+s: TLS, +ssc: TLS with a self-signed "
            "certificate) and the Bolt port, not the HTTP one (7474), e.g. "
            f"NEO4J_URI=neo4j://{_hostname(host) or 'localhost'}:7687",
        )
    parts = urlsplit(f"bolt://{authority}")
    try:
        port = parts.port
    except ValueError:
        bad = authority.rpartition(":")[2]
        raise ConfigError(
            f"NEO4J_URI has port {bad!r}, which is not a TCP port number ({uri})",
            hint=f"set NEO4J_URI={scheme}://{_hostname(host) or 'localhost'}:7687 "
            "(the server's Bolt port)",
        ) from None
    if not parts.hostname:
        raise ConfigError(
            f"NEO4J_URI names no host ({uri})",
            hint=f"set NEO4J_URI={scheme}://localhost:7687 (or the server's host)",
        )
    return parts.hostname, 7687 if port is None else port


def _hostname(authority: str) -> str:
    """The host of ``host:port`` or ``[v6]:port``, port dropped (even a malformed one)."""
    if authority.startswith("["):
        return authority.partition("]")[0] + "]"
    return authority.rpartition(":")[0] if ":" in authority else authority

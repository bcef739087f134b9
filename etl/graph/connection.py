"""Opening a driver, and turning the driver's failures into ``EtlError``s once."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import neo4j
from neo4j import GraphDatabase
from neo4j.exceptions import AuthError, ClientError, ServiceUnavailable

from etl.errors import AuthFailed, ConfigError, ConnectionFailed
from etl.localdb_conf import cert_dir
from etl.settings import Settings, check_uri


@dataclass(frozen=True)
class ServerInfo:
    uri: str
    database: str
    version: str
    edition: str

    def describe(self) -> str:
        return f"{self.uri} (database {self.database!r}, Neo4j {self.version} {self.edition})"


DATABASE_NOT_FOUND = "Neo.ClientError.Database.DatabaseNotFound"


def _down_hint(settings: Settings, *, untrusted: bool = False) -> str:
    scheme = settings.uri.partition("://")[0].lower()
    if untrusted:
        return (
            f"trust the server's CA (SSL_CERT_FILE=<its certificate>), or accept a "
            f"self-signed certificate with {scheme.replace('+s', '+ssc')}://"
        )
    record = settings.home_record
    if settings.uri_is_local and record is not None and record.tls and "+" not in scheme:
        return (
            f"the server of {settings.local_home} takes TLS only (`etl db start --tls`): "
            f"use {settings.local_uri} (unset NEO4J_URI), or neo4j+s://localhost:"
            f"{settings.bolt_port} with SSL_CERT_FILE={cert_dir(settings.local_home)}/public.crt"
        )
    if record is not None and record.bolt_port not in (None, settings.bolt_port):
        return (
            f"the conf of {settings.local_home} has port {record.bolt_port}, "
            f"ETL_NEO4J_BOLT_PORT says {settings.bolt_port}: unset it to use the server "
            f"on {record.bolt_port}, or `etl db stop` and `etl db start` to move it"
        )
    if settings.uri_is_local:
        return "start the local server with `etl db start` (or `make db-start`)"
    return "check NEO4J_URI and that the server is running and reachable"


def _missing_database(settings: Settings, names: list[str] | None = None) -> ConfigError:
    there = f" (it has {', '.join(repr(n) for n in names)})" if names else ""
    return ConfigError(
        f"Neo4j at {settings.redacted_uri()} has no database {settings.database!r}{there}",
        hint="set NEO4J_DATABASE to one of its databases ('neo4j' when unset)",
    )


@contextmanager
def translate_errors(settings: Settings) -> Iterator[None]:
    """Map the driver's connection and auth failures to our exit codes, once."""
    try:
        yield
    except AuthError:
        raise AuthFailed(
            f"Neo4j at {settings.redacted_uri()} refused user {settings.username!r}: "
            "authentication failed",
            hint="set NEO4J_USERNAME / NEO4J_PASSWORD to valid credentials"
            + (
                f" (the local server's is in {settings.password_file}, shown by `etl db status`)"
                if settings.uri_is_local
                else ""
            ),
        ) from None
    except ClientError as e:
        if e.code == DATABASE_NOT_FOUND:
            raise _missing_database(settings) from None
        raise
    except (ServiceUnavailable, OSError) as e:
        untrusted = _untrusted(e, settings)
        raise ConnectionFailed(
            f"cannot reach Neo4j at {settings.redacted_uri()}: {type(e).__name__}"
            + (" (its TLS certificate is not trusted)" if untrusted else ""),
            hint=_down_hint(settings, untrusted=untrusted),
        ) from None


def _untrusted(error: BaseException, settings: Settings) -> bool:
    """The connection failed because the server's certificate does not verify."""
    seen: BaseException | None = error
    for _ in range(10):  # a direct driver wraps the ssl error a few levels down
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    if not settings.uri.partition("://")[0].lower().endswith("+s"):
        return False
    # A routing driver says only "Unable to retrieve routing information": ask the
    # server for its certificate the way the driver does (system CAs, SSL_CERT_FILE).
    host, port = check_uri(settings.uri)
    try:
        with (
            socket.create_connection((host, port), timeout=5) as raw,
            ssl.create_default_context().wrap_socket(raw, server_hostname=host),
        ):
            return False
    except ssl.SSLCertVerificationError:
        return True
    except OSError:
        return False


@contextmanager
def open_driver(
    settings: Settings, *, check_database: bool = True, **config: Any
) -> Iterator[neo4j.Driver]:
    """A verified driver for the configured server; closed on exit.

    It checks that ``settings.database`` exists before anything runs on it, so a
    wrong NEO4J_DATABASE fails before a command has written anything.
    """
    if settings.password is None:
        raise ConfigError(
            "no Neo4j password configured",
            hint="set NEO4J_PASSWORD (for the local server run `etl db start` first; "
            "it generates and stores one)",
        )
    config.setdefault("connection_timeout", 10.0)
    config.setdefault("max_transaction_retry_time", 30.0)
    with translate_errors(settings):
        driver = GraphDatabase.driver(
            settings.uri, auth=(settings.username, settings.password.reveal()), **config
        )
        try:
            driver.verify_connectivity()
            if check_database:
                _check_database(driver, settings)
        except BaseException:
            driver.close()
            raise
    try:
        with translate_errors(settings):
            yield driver
    finally:
        driver.close()


def _check_database(driver: neo4j.Driver, settings: Settings) -> None:
    try:
        driver.execute_query("RETURN 1", database_=settings.database)
    except ClientError as e:
        if e.code != DATABASE_NOT_FOUND:
            raise
        names: list[str] | None = None
        try:
            records, _, _ = driver.execute_query(
                "SHOW DATABASES YIELD name WHERE name <> 'system' "
                "RETURN DISTINCT name ORDER BY name",
                database_="system",
            )
            names = [str(r["name"]) for r in records]
        except ClientError:
            pass  # a user may not see the list; the error still names the fix
        raise _missing_database(settings, names) from None


def server_info(driver: neo4j.Driver, settings: Settings) -> ServerInfo:
    with translate_errors(settings):
        records, _, _ = driver.execute_query(
            "CALL dbms.components() YIELD name, versions, edition "
            "RETURN versions[0] AS version, edition",
            database_="system",
            routing_=neo4j.RoutingControl.READ,
        )
    rec = records[0]
    return ServerInfo(
        uri=settings.redacted_uri(),
        database=settings.database,
        version=str(rec["version"]),
        edition=str(rec["edition"]),
    )

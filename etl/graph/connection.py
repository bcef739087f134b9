"""Opening a driver, and turning the driver's failures into ``EtlError``s once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import neo4j
from neo4j import GraphDatabase
from neo4j.exceptions import AuthError, ServiceUnavailable

from etl.errors import AuthFailed, ConfigError, ConnectionFailed
from etl.settings import Settings


@dataclass(frozen=True)
class ServerInfo:
    uri: str
    database: str
    version: str
    edition: str

    def describe(self) -> str:
        return f"{self.uri} (database {self.database!r}, Neo4j {self.version} {self.edition})"


def _down_hint(settings: Settings) -> str:
    if settings.uri_is_local:
        return "start the local server with `etl db start` (or `make db-start`)"
    return "check NEO4J_URI and that the server is running and reachable"


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
                " (the local server's password is shown by `etl db status`)"
                if settings.uri_is_local
                else ""
            ),
        ) from None
    except (ServiceUnavailable, OSError) as e:
        raise ConnectionFailed(
            f"cannot reach Neo4j at {settings.redacted_uri()}: {type(e).__name__}",
            hint=_down_hint(settings),
        ) from None


@contextmanager
def open_driver(settings: Settings, **config: Any) -> Iterator[neo4j.Driver]:
    """A verified driver for the configured server; closed on exit."""
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
        except BaseException:
            driver.close()
            raise
    try:
        with translate_errors(settings):
            yield driver
    finally:
        driver.close()


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

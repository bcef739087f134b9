"""Server administration over Bolt: initial password, wiping, counting."""

from __future__ import annotations

import neo4j
from neo4j import GraphDatabase
from neo4j.exceptions import AuthError, ClientError, ServiceUnavailable

from etl.errors import LocalServerError


def bolt_ready(uri: str, auth: tuple[str, str] | None) -> bool | str:
    """True if Bolt answers and accepts ``auth``; "auth" if it answers but refuses it."""
    try:
        with GraphDatabase.driver(uri, auth=auth, connection_timeout=2.0) as driver:
            driver.verify_connectivity()
        return True
    except AuthError:
        return "auth"
    except ClientError as e:
        # An expired initial password still proves the server is up.
        if "CredentialsExpired" in (e.code or ""):
            return "auth"
        return False
    except (ServiceUnavailable, OSError):
        return False
    except Exception:
        return False


def set_initial_password(uri: str, new_password: str) -> None:
    """Replace the default `neo4j`/`neo4j` credentials without putting the password in argv."""
    try:
        with (
            GraphDatabase.driver(uri, auth=("neo4j", "neo4j")) as driver,
            driver.session(database="system") as session,
        ):
            session.run(
                "ALTER CURRENT USER SET PASSWORD FROM 'neo4j' TO $new", new=new_password
            ).consume()
    except AuthError as e:
        raise LocalServerError(
            "the local server no longer accepts the default password and the stored "
            "password does not work either",
            hint="run `etl db reset` to wipe the local database and its users",
        ) from e


def wipe_database(driver: neo4j.Driver, database: str, *, batch: int = 10_000) -> None:
    """Delete every node, relationship, constraint and index (tests and `etl db reset`)."""
    with driver.session(database=database) as session:
        session.run(
            "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF $b ROWS",
            b=batch,
        ).consume()
        for rec in list(session.run("SHOW CONSTRAINTS YIELD name RETURN name")):
            session.run(f"DROP CONSTRAINT {quote_name(rec['name'])} IF EXISTS").consume()
        for rec in list(
            session.run("SHOW INDEXES YIELD name, type WHERE type <> 'LOOKUP' RETURN name")
        ):
            session.run(f"DROP INDEX {quote_name(rec['name'])} IF EXISTS").consume()


def count_entities(driver: neo4j.Driver, database: str) -> dict[str, dict[str, int]]:
    """Counts per label and per relationship type (from the count store: cheap)."""
    labels: dict[str, int] = {}
    types: dict[str, int] = {}
    with driver.session(database=database, default_access_mode=neo4j.READ_ACCESS) as session:
        for rec in session.run("CALL db.labels() YIELD label RETURN label"):
            labels[rec["label"]] = 0
        for rec in session.run(
            "CALL db.relationshipTypes() YIELD relationshipType RETURN relationshipType AS t"
        ):
            types[rec["t"]] = 0
        for label in labels:
            labels[label] = session.run(
                f"MATCH (n:{quote_name(label)}) RETURN count(n) AS c"
            ).single(strict=True)["c"]
        for t in types:
            types[t] = session.run(f"MATCH ()-[r:{quote_name(t)}]->() RETURN count(r) AS c").single(
                strict=True
            )["c"]
    return {
        "labels": {k: v for k, v in sorted(labels.items()) if v},
        "types": {k: v for k, v in sorted(types.items()) if v},
    }


def quote_name(name: str) -> str:
    """Quote a label, type, property or schema name for Cypher: never interpolate raw."""
    return "`" + name.replace("`", "``") + "`"

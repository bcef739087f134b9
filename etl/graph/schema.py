"""Schema, the load lock, and what the loader asks the target before writing.

Schema: a load wants a uniqueness constraint on every key that the data keeps
unique and the migration's model declares unique, and a range index on the
other lookup keys (a legacy label whose nodes share keys gets an index). A
constraint the database refuses because legacy data already breaks it falls
back to a range index, and the reason is reported, not swallowed.

Lock: a node ``(:EtlLock {name: 'load'})`` under a uniqueness constraint.
Creating it is atomic, so of two loads exactly one gets it; the other gets
``LockHeld`` naming the holder. ``EtlLock`` (and ``EtlBatch``, the markers
of a fresh replay, see ``etl.graph.write``, and ``EtlHistory``, see
``etl.graph.history``) are the loader's bookkeeping, so ``counts`` leaves them out.
"""

from __future__ import annotations

import getpass
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import neo4j
from neo4j.exceptions import ClientError, ConstraintError, DatabaseError

from etl.errors import LockHeld
from etl.graph.admin import count_entities, quote_name
from etl.graph.history import HISTORY_LABEL
from etl.graph.write import MARKER_LABEL
from etl.pids import pid_alive

#: The driver type, for stage modules that pass one along without importing ``neo4j``.
Driver = neo4j.Driver

LOCK_LABEL = "EtlLock"
LOCK_CONSTRAINT = "etl_lock"
#: The loader's own nodes: never counted, compared or validated.
BOOKKEEPING = (LOCK_LABEL, MARKER_LABEL, HISTORY_LABEL)


@dataclass(frozen=True)
class SchemaItem:
    """One wanted constraint or index and what became of it."""

    label: str
    props: tuple[str, ...]
    unique: bool
    name: str = ""
    outcome: str = ""  # "created", "exists", "index-instead"
    note: str = ""

    def describe(self) -> str:
        what = f"({self.label} {{{', '.join(self.props)}}})"
        kind = "unique" if self.unique else "index"
        text = f"{kind:<6} {what:<40} {self.outcome}"
        return f"{text}: {self.note}" if self.note else text


def _session(driver: neo4j.Driver, database: str, *, read: bool = False) -> neo4j.Session:
    return driver.session(
        database=database,
        default_access_mode=neo4j.READ_ACCESS if read else neo4j.WRITE_ACCESS,
        notifications_min_severity="OFF",
    )


def schema_name(label: str, props: tuple[str, ...], unique: bool) -> str:
    safe = "_".join([label, *props]).replace("`", "")
    return f"etl_{safe}_{'unique' if unique else 'index'}"


def existing_schema(driver: neo4j.Driver, database: str) -> dict[tuple[str, tuple[str, ...]], str]:
    """(label, props) → ``"unique"`` or ``"index"`` for every node range index/constraint."""
    out: dict[tuple[str, tuple[str, ...]], str] = {}
    with _session(driver, database, read=True) as s:
        for rec in s.run(
            "SHOW INDEXES YIELD type, entityType, labelsOrTypes, properties, owningConstraint "
            "WHERE type = 'RANGE' AND entityType = 'NODE' RETURN *"
        ):
            key = (rec["labelsOrTypes"][0], tuple(rec["properties"]))
            out[key] = "unique" if rec["owningConstraint"] else "index"
    return out


def ensure_schema(
    driver: neo4j.Driver, database: str, wanted: list[SchemaItem]
) -> list[SchemaItem]:
    """Create what ``wanted`` lists (idempotent); wait until every index is online."""
    if not wanted:  # a replay defers nothing: no SHOW INDEXES, no wait
        return []
    have = existing_schema(driver, database)
    done: list[SchemaItem] = []
    for item in wanted:
        found = have.get((item.label, item.props))
        if found is not None:
            note = "" if found == "unique" or not item.unique else "an index exists; not unique"
            done.append(_with(item, "", "exists", note))
            continue
        done.append(_create(driver, database, item))
    with _session(driver, database) as s:
        s.run("CALL db.awaitIndexes(600)").consume()
    return done


def _with(item: SchemaItem, name: str, outcome: str, note: str = "") -> SchemaItem:
    return SchemaItem(item.label, item.props, item.unique, name, outcome, note)


def _create(driver: neo4j.Driver, database: str, item: SchemaItem) -> SchemaItem:
    label = quote_name(item.label)
    props = ", ".join(f"n.{quote_name(p)}" for p in item.props)
    if item.unique:
        name = schema_name(item.label, item.props, True)
        try:
            with _session(driver, database) as s:
                s.run(
                    f"CREATE CONSTRAINT {quote_name(name)} IF NOT EXISTS "
                    f"FOR (n:{label}) REQUIRE ({props}) IS UNIQUE"
                ).consume()
            return _with(item, name, "created")
        except (ClientError, DatabaseError) as e:
            # Legacy duplicates make the constraint impossible; an index still serves lookups.
            reason = (e.message or str(e)).splitlines()[0]
            item = _with(item, "", "", f"not unique in the database ({reason})")
    name = schema_name(item.label, item.props, False)
    with _session(driver, database) as s:
        s.run(
            f"CREATE INDEX {quote_name(name)} IF NOT EXISTS FOR (n:{label}) ON ({props})"
        ).consume()
    return _with(item, name, "index-instead" if item.unique else "created", item.note)


def schema_names(
    driver: neo4j.Driver, database: str, *, prefix: str, keep: tuple[str, ...] = ()
) -> list[str]:
    """Names of constraints and indexes starting with ``prefix`` (the loader's own)."""
    with _session(driver, database, read=True) as s:
        names = {r["name"] for r in s.run("SHOW CONSTRAINTS YIELD name RETURN name")}
        names |= {r["name"] for r in s.run("SHOW INDEXES YIELD name RETURN name")}
    return sorted(n for n in names if n.startswith(prefix) and n not in keep)


def drop_schema(driver: neo4j.Driver, database: str, names: list[str]) -> None:
    """Drop constraints or indexes by name (rollback of what a load created)."""
    with _session(driver, database) as s:
        constraints = {r["name"] for r in s.run("SHOW CONSTRAINTS YIELD name RETURN name")}
        # Constraints first: dropping one also drops the index it owns.
        for name in sorted(names, key=lambda n: n not in constraints):
            kind = "CONSTRAINT" if name in constraints else "INDEX"
            s.run(f"DROP {kind} {quote_name(name)} IF EXISTS").consume()


# ---------------------------------------------------------------------- lock


@dataclass(frozen=True)
class Lock:
    token: str
    holder: str


def lock_holder() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


def _local_pid(held: dict[str, Any]) -> int | None:
    """The holder's pid when it ran on this host (only then can it be checked)."""
    if held.get("host") != socket.gethostname() or not isinstance(held.get("pid"), int):
        return None
    return int(held["pid"])


def lock_is_live_here(held: dict[str, Any]) -> bool:
    """True when the holder runs on this host and its process is still there."""
    pid = _local_pid(held)
    return pid is not None and pid_alive(pid)


def lock_is_stale(held: dict[str, Any]) -> bool:
    """True when the holder ran on this host and its process is gone (killed, crashed)."""
    pid = _local_pid(held)
    return pid is not None and not pid_alive(pid)


def take_lock(
    driver: neo4j.Driver, database: str, *, purpose: str, input_sha: str
) -> tuple[Lock, dict[str, Any] | None]:
    """``acquire_lock``, taking over a stale lock of this host; returns (lock, taken over)."""
    try:
        return acquire_lock(driver, database, purpose=purpose, input_sha=input_sha), None
    except LockHeld:
        held = read_lock(driver, database)
        if held is None or not lock_is_stale(held):
            raise
        break_lock(driver, database, token=held.get("token"))
        return acquire_lock(driver, database, purpose=purpose, input_sha=input_sha), held


def acquire_lock(driver: neo4j.Driver, database: str, *, purpose: str, input_sha: str) -> Lock:
    """Create the lock node or raise ``LockHeld`` naming its holder and start time."""
    with _session(driver, database) as s:
        s.run(
            f"CREATE CONSTRAINT {LOCK_CONSTRAINT} IF NOT EXISTS "
            f"FOR (l:{LOCK_LABEL}) REQUIRE l.name IS UNIQUE"
        ).consume()
    token, holder = uuid.uuid4().hex, lock_holder()
    try:
        with _session(driver, database) as s:
            s.run(
                f"CREATE (:{LOCK_LABEL} {{name: 'load', token: $token, holder: $holder, "
                "host: $host, pid: $pid, purpose: $purpose, input: $input, "
                "started_at: datetime()})",
                token=token,
                holder=holder,
                host=socket.gethostname(),
                pid=os.getpid(),
                purpose=purpose,
                input=input_sha,
            ).consume()
    except ConstraintError:
        held = read_lock(driver, database) or {}
        raise LockHeld(
            f"another load holds the lock: {held.get('holder', '?')}, "
            f"{held.get('purpose', 'load')} started at {held.get('started_at', '?')}",
            hint="wait for it to finish; if it died, remove the lock with `etl load --break-lock`",
        ) from None
    return Lock(token, holder)


def read_lock(driver: neo4j.Driver, database: str) -> dict[str, Any] | None:
    with _session(driver, database, read=True) as s:
        rec = s.run(
            f"MATCH (l:{LOCK_LABEL} {{name: 'load'}}) "
            "RETURN l {.holder, .host, .pid, .token, .purpose, .input, "
            "started_at: toString(l.started_at)} AS l"
        ).single()
    return None if rec is None else dict(rec["l"])


def release_lock(driver: neo4j.Driver, database: str, lock: Lock) -> None:
    """Delete our lock node (only ours: a broken and re-taken lock has another token)."""
    with _session(driver, database) as s:
        s.run(
            f"MATCH (l:{LOCK_LABEL} {{name: 'load', token: $token}}) DELETE l", token=lock.token
        ).consume()


def break_lock(
    driver: neo4j.Driver, database: str, *, token: str | None = None
) -> dict[str, Any] | None:
    """Remove the lock (only if it still has ``token``, when given); what was removed, or None."""
    held = read_lock(driver, database)
    if held is None or (token is not None and held.get("token") != token):
        return None
    with _session(driver, database) as s:
        s.run(
            f"MATCH (l:{LOCK_LABEL} {{name: 'load'}}) WHERE $token IS NULL OR l.token = $token "
            "DELETE l",
            token=token,
        ).consume()
    return held


# -------------------------------------------------------------------- probes


def counts(driver: neo4j.Driver, database: str) -> dict[str, dict[str, int]]:
    """Nodes per label and relationships per type, without the loader's lock node."""
    c = count_entities(driver, database)
    for label in BOOKKEEPING:
        c["labels"].pop(label, None)
    return c


def node_total(driver: neo4j.Driver, database: str) -> int:
    """Nodes in the database, the loader's bookkeeping excluded (count store: instant)."""
    with _session(driver, database, read=True) as s:
        total = int(s.run("MATCH (n) RETURN count(n) AS c").single(strict=True)["c"])
        for label in BOOKKEEPING:
            total -= int(s.run(f"MATCH (n:{label}) RETURN count(n) AS c").single(strict=True)["c"])
    return total


def _key_guard(props: Sequence[str], var: str = "n", row: str = "row.k") -> str:
    return "".join(f" AND {var}.{quote_name(p)} = {row}[{i}]" for i, p in enumerate(props))


def found_by_element_id(
    driver: neo4j.Driver,
    database: str,
    rows: list[dict[str, Any]],
    labels: list[str],
    key: Sequence[str] = (),
) -> int:
    """How many ``{e, k}`` rows name a node with that element id, one of ``labels`` and the
    key properties ``key`` equal to ``k``."""
    guard = " OR ".join(f"n:{quote_name(lab)}" for lab in labels)
    with _session(driver, database, read=True) as s:
        rec = s.run(
            f"UNWIND $rows AS row MATCH (n) WHERE elementId(n) = row.e AND ({guard})"
            f"{_key_guard(key)} RETURN count(n) AS c",
            rows=rows,
        ).single(strict=True)
    return int(rec["c"])


def found_by_key(
    driver: neo4j.Driver, database: str, label: str, key: Sequence[str], values: list[list[Any]]
) -> int:
    """How many of ``values`` (key values in ``key`` order) exist as ``label`` nodes."""
    with _session(driver, database, read=True) as s:
        rec = s.run(
            f"UNWIND $values AS k MATCH (n:{quote_name(label)}) WHERE true"
            f"{_key_guard(key, row='k')} RETURN count(n) AS c",
            values=values,
        ).single(strict=True)
    return int(rec["c"])

"""Fetching one table as Arrow record batches: Cypher, id windows, workers, conversion.

``batches(driver, plan, …)`` is what ``GraphReader.batches`` runs. Choices
(measured on Neo4j 5.26 Community; docs/STAGE_FORMAT.md "How the export reads"):

* A batch is one record of parallel lists (``[n IN ns | n.prop]``): no
  per-row ``Record`` objects in the driver, 5–8× faster than streaming rows.
* Batches are internal-id windows, ``WHERE id(n) IN range($lo, $hi)``, a
  ``NodeByIdSeek`` / ``DirectedRelationshipByIdSeek``: linear in the table.
  ``ORDER BY id LIMIT $limit`` caps a window that turns out dense.
* Element ids are ``<prefix><id>`` on Neo4j 5; the prefix is read once and
  checked on the first row of every batch, and the strings are built with
  Arrow. Shipping three element-id strings per relationship costs the server
  and the driver about a third of a relationship read.
* Relationship endpoints are tabled under their first exported label; when the
  count store proves every endpoint is a single-label node with an exported
  label, the per-row label lookup and filter are left out (the fast path).
* ``workers`` threads fetch disjoint id ranges at once (the server executes a
  query on one core); the caller sorts afterwards, so arrival order is free.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import neo4j
import pyarrow as pa
import pyarrow.compute as pc

from etl.errors import StageError
from etl.graph.admin import quote_name
from etl.graph.arrow import ColumnSpec, to_arrow

if TYPE_CHECKING:
    from etl.graph.read import TablePlan

Session = Callable[[], neo4j.Session]


@dataclass(frozen=True)
class IdPrefixes:
    node: str
    relationship: str


def node_query(plan: TablePlan) -> str:
    where = "".join(f" AND NOT n:{quote_name(lab)}" for lab in plan.exclude)
    binds, rets = [], ["[n IN ns | id(n)] AS _id", "[n IN ns[..1] | elementId(n)] AS _probe"]
    if plan.single_labels is None:
        rets.append("[n IN ns | labels(n)] AS _labels")
    for i, spec in enumerate(plan.columns):
        bind, r = _projection(spec, "ns", f"c{i}")
        binds.append(bind)
        rets += r
    with_binds = f"WITH ns, {', '.join(binds)} " if binds else ""
    return (
        f"MATCH (n) WHERE id(n) IN range($lo, $hi) AND n:{quote_name(plan.name)}{where} "
        f"WITH n ORDER BY id(n) LIMIT $limit WITH collect(n) AS ns "
        f"{with_binds}RETURN {', '.join(rets)}"
    )


def rel_query(plan: TablePlan) -> str:
    binds = []
    rets = [
        "[r IN rs | id(r)] AS _id",
        "[r IN rs[..1] | elementId(r)] AS _probe",
        "[a IN sa | id(a)] AS _start_id",
        "[b IN eb | id(b)] AS _end_id",
    ]
    for side, source, keys in (("s", "sa", plan.start_keys), ("e", "eb", plan.end_keys)):
        for i, (spec, _) in enumerate(keys):
            bind, r = _projection(spec, source, f"{side}{i}")
            binds.append(bind)
            rets += r
    for i, spec in enumerate(plan.columns):
        bind, r = _projection(spec, "rs", f"c{i}")
        binds.append(bind)
        rets += r
    t = quote_name(plan.name)
    if plan.fast_endpoints:
        # Every endpoint has exactly one label, and it is exported: no per-row label work.
        for side, source, fixed in (
            ("start", "sa", plan.start_fixed),
            ("end", "eb", plan.end_fixed),
        ):
            if fixed is None:
                rets.append(f"[x IN {source} | labels(x)[0]] AS _{side}_label")
        head = (
            f"MATCH (a)-[r:{t}]->(b) WHERE id(r) IN range($lo, $hi) "
            "WITH r, a, b ORDER BY id(r) LIMIT $limit "
            "WITH collect(r) AS rs, collect(a) AS sa, collect(b) AS eb"
        )
        carried = "rs, sa, eb"
    else:
        # Endpoints are tabled under their first label in $prio; a relationship to a
        # node that is not exported (no label in $prio) is left out, and reported.
        rets += ["sl AS _start_label", "el AS _end_label"]
        head = (
            f"MATCH (a)-[r:{t}]->(b) WHERE id(r) IN range($lo, $hi) "
            "WITH r, a, b, head([l IN $prio WHERE l IN labels(a)]) AS s, "
            "head([l IN $prio WHERE l IN labels(b)]) AS e WHERE s IS NOT NULL AND e IS NOT NULL "
            "WITH r, a, b, s, e ORDER BY id(r) LIMIT $limit "
            "WITH collect(r) AS rs, collect(a) AS sa, collect(b) AS eb, collect(s) AS sl, "
            "collect(e) AS el"
        )
        carried = "rs, sa, eb, sl, el"
    with_binds = f" WITH {carried}, {', '.join(binds)}" if binds else ""
    return f"{head}{with_binds} RETURN {', '.join(rets)}"


def _projection(spec: ColumnSpec, source: str, alias: str) -> tuple[str, list[str]]:
    """``WITH`` part reading the property once, and one ``RETURN`` list per part."""
    bind = f"[o IN {source} | o.{quote_name(spec.prop)}] AS v_{alias}"
    rets = [
        f"[x IN v_{alias} | {part.replace('@', 'x')}] AS {alias}_{i}"
        for i, part in enumerate(spec.parts)
    ]
    return bind, rets


def batches(
    session: Session,
    plan: TablePlan,
    prefixes: IdPrefixes,
    *,
    batch_size: int,
    workers: int,
    wrap: Callable[[], Any],
) -> Iterator[pa.RecordBatch]:
    """The table's rows, as record batches of ``plan.schema()``, in no particular order."""
    query = node_query(plan) if plan.kind == "node" else rel_query(plan)
    schema = plan.schema()
    span = plan.max_id - plan.min_id + 1
    parts = max(1, min(workers, span // max(batch_size, 1)))
    step = -(-span // parts) if span > 0 else 1
    ranges = [
        (plan.min_id + i * step, min(plan.max_id, plan.min_id + (i + 1) * step - 1))
        for i in range(parts)
    ]

    def producer(lo: int, hi: int) -> Callable[[threading.Event], Iterator[Any]]:
        def run(stop: threading.Event) -> Iterator[Any]:
            share = max(plan.count // parts, 1)
            with wrap(), session() as s:
                yield from _windows(s, query, plan, lo, hi, share, batch_size, stop)

        return run

    for cols in _prefetch([producer(lo, hi) for lo, hi in ranges]):
        yield _to_batch(plan, schema, cols, prefixes)


def _windows(
    session: neo4j.Session,
    query: str,
    plan: TablePlan,
    lo: int,
    last: int,
    count: int,
    batch_size: int,
    stop: threading.Event,
) -> Iterator[dict[str, list[Any]]]:
    """Adaptive id windows over ``[lo, last]``: aim at ``batch_size`` rows, never more.

    The window follows the density of the previous one (ids of other labels and
    deleted ids make a label sparse), growing at most 8× per step.
    """
    density = max(count, 1) / max(last - lo + 1, 1)
    window = max(int(batch_size / density), batch_size)
    params = {"prio": plan.priority, "limit": batch_size}
    while lo <= last and not stop.is_set():
        hi = min(lo + window - 1, last)
        rec = session.run(query, {**params, "lo": lo, "hi": hi}).single(strict=True)
        cols: dict[str, list[Any]] = dict(zip(rec.keys(), rec.values(), strict=True))
        ids = cols["_id"]
        # A full batch may have stopped inside the window: resume after its last id.
        end = ids[-1] if len(ids) >= batch_size else hi
        density = max(len(ids), 1) / (end - lo + 1)
        window = max(batch_size, min(int(batch_size / density), window * 8))
        lo = end + 1
        if ids:
            yield cols


def _element_ids(ids: list[int], prefix: str, probe: list[str], what: str) -> pa.Array:
    arr = pa.array(ids, pa.int64())
    built = pc.binary_join_element_wise(prefix, pc.cast(arr, pa.string()), "")
    if probe and probe[0] != built[0].as_py():
        raise StageError(
            f"{what}: element id {probe[0]!r} does not have the form {prefix!r} + id",
            hint="this server's element ids are not supported by the export; please report it",
        )
    return built


def _to_batch(
    plan: TablePlan, schema: pa.Schema, cols: dict[str, list[Any]], prefixes: IdPrefixes
) -> pa.RecordBatch:
    node = plan.kind == "node"
    eids = _element_ids(
        cols["_id"], prefixes.node if node else prefixes.relationship, cols["_probe"], plan.name
    )
    what = "node" if node else "relationship"

    def locate(i: int) -> str:
        return f"{plan.name} {what} {eids[i].as_py()}"

    def convert(spec: ColumnSpec, alias: str) -> pa.Array:
        return to_arrow(spec, [cols[f"{alias}_{i}"] for i in range(len(spec.parts))], locate)

    arrays: list[pa.Array] = [eids]
    n = len(eids)
    if node:
        labels = (
            [plan.single_labels] * n
            if plan.single_labels is not None
            else [sorted(ls) for ls in cols["_labels"]]
        )
        arrays.append(pa.array(labels, pa.list_(pa.string())))
    else:
        sides = (
            ("start", "s", plan.start_keys, plan.start_fixed),
            ("end", "e", plan.end_keys, plan.end_fixed),
        )
        for side, short, keys, fixed in sides:
            label = (
                pa.array([fixed] * n, pa.string())
                if plan.fast_endpoints and fixed is not None
                else pa.array(cols[f"_{side}_label"], pa.string())
            )
            ends = pc.binary_join_element_wise(
                prefixes.node, pc.cast(pa.array(cols[f"_{side}_id"], pa.int64()), pa.string()), ""
            )
            arrays += [label, ends]
            for i, (spec, key_labels) in enumerate(keys):
                values = convert(spec, f"{short}{i}")
                # A key column is null where the endpoint's table has another key.
                other = pc.invert(pc.is_in(label, value_set=pa.array(key_labels, pa.string())))
                arrays.append(pc.if_else(other, pa.nulls(n, spec.arrow_type), values))
    arrays += [convert(spec, f"c{i}") for i, spec in enumerate(plan.columns)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


_DONE = object()


@dataclass
class _Failure:
    error: BaseException


def _prefetch(
    producers: list[Callable[[threading.Event], Iterator[Any]]], depth: int = 1
) -> Iterator[Any]:
    """Run producers in threads, ``depth`` items ahead each; errors re-raise here.

    Each producer also holds the batch it is fetching, so at most
    ``len(producers) × (depth + 1)`` raw batches exist at once.
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=depth * len(producers))
    stop = threading.Event()

    def put(item: Any) -> None:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def work(produce: Callable[[threading.Event], Iterator[Any]]) -> None:
        try:
            for item in produce(stop):
                put(item)
        except BaseException as e:  # handed to the consumer, which re-raises it
            put(_Failure(e))
        finally:
            put(_DONE)

    threads = [
        threading.Thread(target=work, args=(p,), name=f"etl-fetch-{i}", daemon=True)
        for i, p in enumerate(producers)
    ]
    for t in threads:
        t.start()
    running = len(threads)
    try:
        while running:
            item = q.get()
            if item is _DONE:
                running -= 1
            elif isinstance(item, _Failure):
                raise item.error
            else:
                yield item
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)

"""Streaming reads for the export: snapshot, profiles, and Arrow record batches.

How a table is read (measured on Neo4j 5.26 Community, see docs/STAGE_FORMAT.md
"How the export reads"):

* **Profile first.** One aggregate query per label (type) gives the property
  keys, their ``valueType()``s and the label combinations; a second one, only
  for temporal columns, gives zones and year ranges. The Arrow schema is then
  fixed before the first row is fetched.
* **Batches by internal-id windows.** ``WHERE id(n) IN range($lo, $hi)`` is a
  ``NodeByIdSeek``: each batch costs its own window, so the whole label is
  read in linear time. (Keyset pagination ``id(n) > $after … LIMIT`` rescans
  the label from the start for every batch: quadratic.) ``ORDER BY id(n)
  LIMIT $limit`` caps a batch when a window turns out dense; windows adapt to
  the label's density.
* **Columnar answers.** A batch is one record of parallel lists
  (``[n IN ns | n.prop]``), so the driver never builds a ``Record`` per row;
  that alone is 5–8× faster than streaming rows.
* **Prefetch.** A background thread fetches batch *k+1* while the caller sorts
  and writes batch *k*, so the server and the client work at the same time.

Row order here is internal-id order; the export sorts by key afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import neo4j
import pyarrow as pa

from etl.errors import StageError
from etl.graph import fetch
from etl.graph.admin import count_entities, quote_name
from etl.graph.arrow import (
    ColumnSpec,
    base_type,
    is_temporal,
    plan_column,
    tagged_column,
)
from etl.graph.connection import server_info, translate_errors
from etl.graph.fetch import IdPrefixes
from etl.graph.history import read_history
from etl.graph.schema import BOOKKEEPING
from etl.migrations import known_keys
from etl.settings import Settings

_SORTABLE = {"STRING", "INTEGER", "FLOAT", "BOOLEAN", "DATE", "LOCAL DATETIME"}


def label_priority(labels: Sequence[str]) -> list[str]:
    """Labels in the order that decides a node's table: known-key labels first, then by name."""
    return sorted(labels, key=lambda lab: (lab not in known_keys(), lab))


@dataclass
class _Profile:
    count: int = 0
    min_id: int = 2**63 - 1
    max_id: int = -1
    combos: dict[tuple[str, ...], int] = field(default_factory=dict)
    props: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class TablePlan:
    """What to fetch for one table, and the Arrow schema it yields."""

    kind: str  # "node" | "relationship"
    name: str
    count: int
    min_id: int
    max_id: int
    key: list[str]
    columns: list[ColumnSpec]
    #: node tables: labels that outrank ``name`` on some node here (such nodes go elsewhere)
    exclude: list[str] = field(default_factory=list)
    single_labels: list[str] | None = None
    #: relationship tables: endpoint key columns, and which labels give each one
    start_keys: list[tuple[ColumnSpec, list[str]]] = field(default_factory=list)
    end_keys: list[tuple[ColumnSpec, list[str]]] = field(default_factory=list)
    priority: list[str] = field(default_factory=list)
    #: every endpoint is a single-label node whose label is exported (count store proof)
    fast_endpoints: bool = False
    start_fixed: str | None = None
    end_fixed: str | None = None

    def schema(self) -> pa.Schema:
        fields: list[pa.Field] = [pa.field("_element_id", pa.string())]
        if self.kind == "node":
            fields.append(pa.field("_labels", pa.list_(pa.string())))
        else:
            for side, keys in (("_start", self.start_keys), ("_end", self.end_keys)):
                fields += [
                    pa.field(f"{side}_label", pa.string()),
                    pa.field(f"{side}_element_id", pa.string()),
                ]
                fields += [pa.field(f"{side}.{spec.name}", spec.arrow_type) for spec, _ in keys]
        fields += [pa.field(c.name, c.arrow_type) for c in self.columns]
        return pa.schema(fields)

    def sort_keys(self) -> list[str]:
        if self.kind == "node":
            present = {c.name for c in self.columns}
            return [k for k in self.key if k in present] + ["_element_id"]
        return (
            [f"_start.{s.name}" for s, _ in self.start_keys]
            + [f"_end.{s.name}" for s, _ in self.end_keys]
            + ["_element_id"]
        )


class GraphReader:
    """Reads one database for the export; every query runs here (the I/O layer)."""

    def __init__(self, driver: neo4j.Driver, settings: Settings) -> None:
        self.driver = driver
        self.settings = settings
        self.database = settings.database

    def _run(self, query: str, **params: Any) -> list[neo4j.Record]:
        with translate_errors(self.settings), self._session() as session:
            return list(session.run(query, params))

    def _session(self) -> neo4j.Session:
        # Server notifications (deprecated `id()`, unknown labels) are expected here: keep quiet.
        return self.driver.session(
            database=self.database,
            default_access_mode=neo4j.READ_ACCESS,
            notifications_min_severity="OFF",
        )

    # ------------------------------------------------------------------ snapshot
    def source(self) -> dict[str, Any]:
        """Redacted URI, database, server version and the server's clock (the export's "now")."""
        info = server_info(self.driver, self.settings)
        now = self._run("RETURN datetime.transaction('UTC') AS now")[0]["now"].to_native()
        return {
            "uri": info.uri,
            "database": info.database,
            "server_version": f"{info.version} {info.edition}",
            "snapshot_time": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }

    def counts(self) -> dict[str, dict[str, int]]:
        """Per label and type, without the loader's bookkeeping (lock, markers, history)."""
        with translate_errors(self.settings):
            found = count_entities(self.driver, self.database)
        for label in BOOKKEEPING:
            found["labels"].pop(label, None)
        return found

    def history(self) -> list[dict[str, Any]]:
        """What was loaded into this database (``etl.graph.history``), oldest first."""
        with translate_errors(self.settings):
            return read_history(self.driver, self.database)

    def type_label_counts(self, rel_type: str, labels: Sequence[str]) -> dict[str, tuple[int, int]]:
        """(as start, as end) relationship counts per label, from the count store (cheap)."""
        t = quote_name(rel_type)
        out: dict[str, tuple[int, int]] = {}
        for label in labels:
            lab = quote_name(label)
            start = self._run(f"MATCH (:{lab})-[r:{t}]->() RETURN count(r) AS c")[0]["c"]
            end = self._run(f"MATCH ()-[r:{t}]->(:{lab}) RETURN count(r) AS c")[0]["c"]
            out[label] = (int(start), int(end))
        return out

    # ------------------------------------------------------------------ profiles
    def _profile(self, match: str, var: str, with_labels: bool) -> _Profile:
        """One scan: label combinations, property types, id range and count."""
        prof = _Profile()
        labels = f"labels({var})" if with_labels else "[]"
        for rec in self._run(
            f"{match} RETURN {labels} AS ls, [k IN keys({var}) | [k, valueType({var}[k])]] AS sig, "
            f"count(*) AS c, min(id({var})) AS lo, max(id({var})) AS hi"
        ):
            c = int(rec["c"])
            combo = tuple(sorted(rec["ls"]))
            prof.combos[combo] = prof.combos.get(combo, 0) + c
            for k, t in rec["sig"]:
                by_type = prof.props.setdefault(k, {})
                by_type[base_type(t)] = by_type.get(base_type(t), 0) + c
            prof.count += c
            prof.min_id = min(prof.min_id, int(rec["lo"]))
            prof.max_id = max(prof.max_id, int(rec["hi"]))
        return prof

    def plan_nodes(self, label: str, priority: Sequence[str]) -> TablePlan:
        """Profile ``label`` and choose its columns and key."""
        match = f"MATCH (n:{quote_name(label)})"
        prof = self._profile(match, "n", with_labels=True)
        rank = {lab: i for i, lab in enumerate(priority)}
        exclude = sorted(
            {o for combo in prof.combos for o in combo if o in rank and rank[o] < rank[label]}
        )
        key = list(known_keys().get(label, []))
        id_types = prof.props.get("id", {})
        # Another label is keyed by `id` only when every node has one, of one sortable type;
        # uniqueness is checked while the sorted table is written.
        if (
            not key
            and len(id_types) == 1
            and sum(id_types.values()) == prof.count
            and next(iter(id_types)) in _SORTABLE
        ):
            key = ["id"]
        return TablePlan(
            kind="node",
            name=label,
            count=prof.count,
            min_id=prof.min_id,
            max_id=prof.max_id,
            key=key,
            columns=_order(self._plan_columns(match, "n", prof.props), key),
            exclude=exclude,
            single_labels=list(next(iter(prof.combos))) if len(prof.combos) == 1 else None,
        )

    def plan_relationships(
        self, rel_type: str, priority: Sequence[str], node_plans: dict[str, TablePlan]
    ) -> TablePlan:
        """Profile ``rel_type``; endpoint key columns come from the endpoint labels' plans."""
        match = f"MATCH ()-[x:{quote_name(rel_type)}]->()"
        prof = self._profile(match, "x", with_labels=False)
        sides = self.type_label_counts(rel_type, [p for p in priority if p in node_plans])
        plan = TablePlan(
            kind="relationship",
            name=rel_type,
            count=prof.count,
            min_id=prof.min_id,
            max_id=prof.max_id,
            key=[],
            columns=_order(self._plan_columns(match, "x", prof.props), []),
            priority=list(priority),
        )
        starts = [lab for lab, (s, _) in sides.items() if s]
        ends = [lab for lab, (_, e) in sides.items() if e]
        plan.start_keys = _endpoint_keys(starts, node_plans)
        plan.end_keys = _endpoint_keys(ends, node_plans)
        # Counts add up to the total only if no endpoint has two exported labels or none:
        # then each endpoint's only label is its table, and no row needs filtering.
        single = all(node_plans[lab].single_labels == [lab] for lab in starts + ends)
        plan.fast_endpoints = (
            single
            and sum(s for s, _ in sides.values()) == prof.count
            and sum(e for _, e in sides.values()) == prof.count
        )
        plan.start_fixed = starts[0] if len(starts) == 1 else None
        plan.end_fixed = ends[0] if len(ends) == 1 else None
        return plan

    def _plan_columns(
        self, match: str, var: str, props: dict[str, dict[str, int]]
    ) -> list[ColumnSpec]:
        """Column specs; temporal columns need zones and year ranges, LIST<INTEGER> a sample."""
        specs = {k: plan_column(k, list(types)) for k, types in props.items()}
        # Years and zones come back as plain values: the driver cannot build a Python
        # date for every Neo4j date (year 44 BC, year 100000), so none is fetched.
        dated = [
            k
            for k, types in props.items()
            if len(types) == 1
            and is_temporal(next(iter(types)))
            and next(iter(types)) in ("DATE", "LOCAL DATETIME", "ZONED DATETIME")
        ]
        if dated:
            parts = []
            for i, k in enumerate(dated):
                x = f"{var}.{quote_name(k)}"
                parts.append(f"min({x}.year) AS lo{i}, max({x}.year) AS hi{i}")
                if "ZONED DATETIME" in props[k]:
                    parts.append(f"collect(DISTINCT {x}.timezone)[..2] AS z{i}")
            rec = self._run(f"{match} RETURN {', '.join(parts)}")[0]
            for i, k in enumerate(dated):
                years = (int(rec[f"lo{i}"]), int(rec[f"hi{i}"]))
                zones = rec.get(f"z{i}") or ()
                specs[k] = plan_column(k, list(props[k]), years=years, zones=zones)
        for k, s in list(specs.items()):
            if s.kind == "LIST<INTEGER>":
                sample = self._run(
                    f"{match} WHERE {var}.{quote_name(k)} IS NOT NULL "
                    f"RETURN {var}.{quote_name(k)} AS v LIMIT 1"
                )
                if sample and isinstance(sample[0]["v"], bytes | bytearray):
                    specs[k] = plan_column(k, list(props[k]), bytes_sample=True)
        return list(specs.values())

    # ------------------------------------------------------------------ batches
    def id_prefixes(self) -> IdPrefixes:
        """Element ids are ``<prefix><id>``; read the prefixes (checked again per batch)."""
        out = []
        for match, fallback in (("MATCH (x)", "4:?:"), ("MATCH ()-[x]->()", "5:?:")):
            rec = self._run(f"{match} RETURN elementId(x) AS e, id(x) AS i LIMIT 1")
            if not rec:
                out.append(fallback)
                continue
            eid, ident = str(rec[0]["e"]), str(rec[0]["i"])
            if not eid.endswith(f":{ident}"):
                raise StageError(
                    f"element id {eid!r} does not end with its id {ident}",
                    hint="this server's element ids are not supported by the export",
                )
            out.append(eid[: len(eid) - len(ident)])
        return IdPrefixes(node=out[0], relationship=out[1])

    def batches(
        self, plan: TablePlan, prefixes: IdPrefixes, *, batch_size: int, workers: int = 2
    ) -> Iterator[pa.RecordBatch]:
        """The table's rows as record batches of ``plan.schema()`` (fetched ahead, in threads)."""
        return fetch.batches(
            self._session,
            plan,
            prefixes,
            batch_size=batch_size,
            workers=workers,
            wrap=lambda: translate_errors(self.settings),
        )


def _order(columns: list[ColumnSpec], key: list[str]) -> list[ColumnSpec]:
    """Key columns first (in key order), then the rest by name."""
    pos = {k: i for i, k in enumerate(key)}
    return sorted(columns, key=lambda c: (c.prop not in pos, pos.get(c.prop, 0), c.name))


def _endpoint_keys(
    labels: list[str], node_plans: dict[str, TablePlan]
) -> list[tuple[ColumnSpec, list[str]]]:
    """Union of the endpoint labels' key columns, in key order (``_element_id`` keys add none).

    When two labels share a key name with different representations, the
    column is tagged JSON, so both keep their exact values.
    """
    found: dict[str, tuple[list[ColumnSpec], list[str]]] = {}
    for label in labels:
        plan = node_plans[label]
        by_prop = {c.prop: c for c in plan.columns}
        for prop in plan.key:
            if prop in by_prop:
                specs, labs = found.setdefault(prop, ([], []))
                specs.append(by_prop[prop])
                labs.append(label)
    out = []
    for prop, (specs, labs) in found.items():
        first = specs[0]
        if any(
            (s.kind, s.arrow_type, s.zone) != (first.kind, first.arrow_type, first.zone)
            for s in specs
        ):
            first = tagged_column(prop, sorted({t for s in specs for t in s.neo4j_types}))
        out.append((first, labs))
    return out

"""Relationship steps of a load: endpoints per row, and parallel relationships as groups.

A relationship row finds each endpoint one of three ways (``Endpoint.match``):
by the endpoint's key (``_start.<key>`` columns), by its source element id
(replay, where the key is ambiguous: ``_etl_source_element_id``), or by its
element id (in place, where the node is the exported one). The way can differ
row by row (one type may start at a migrated node *or* at a rejected one),
so a batch is split by (start label, end label, ways) into a few
statements that all run in the batch's one transaction.

Rows that share both endpoints and the type (parallel relationships) cannot be
``MERGE``d one by one: they are found by one pass over the endpoint columns
and loaded by a ``#parallel`` step that sends each pair once, with the list of
its relationships, and creates only those still missing.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from etl.errors import StageError
from etl.graph.params import ColumnPlan, encode_columns, null_counts, plan_columns, prop_name
from etl.graph.write import Columns, Endpoint, RelOp
from etl.load_input import StageInput, TableInfo, batches, duplicated
from etl.load_model import IN_PLACE, Item, Keys, Step, property_columns

SIDES = (("a", "_start"), ("b", "_end"))


def _endpoint_columns(schema: pa.Schema) -> list[str]:
    return [
        n
        for n in schema.names
        if n in ("_start_label", "_end_label", "_start_element_id", "_end_element_id")
        or n.startswith(("_start.", "_end."))
    ]


def _mode(side: str, keys: Keys, mode: str) -> pl.Expr:
    label, eid = pl.col(f"{side}_label"), pl.col(f"{side}_element_id")
    if mode == IN_PLACE:
        # A node a rollback re-created is found by its old element id (``keys.ambiguous``).
        return (
            pl.when(keys.is_ambiguous(label, eid))
            .then(pl.lit("src"))
            .when(eid.is_not_null())
            .then(pl.lit("eid"))
            .otherwise(pl.lit("key"))
        )
    keyless = [lab for lab, cols in keys.columns.items() if not cols]
    src = keys.is_ambiguous(label, eid) | label.is_in(pl.Series(keyless, dtype=pl.String).implode())
    return pl.when(src).then(pl.lit("src")).otherwise(pl.lit("key"))


def _identity(side: str, schema_names: list[str]) -> list[pl.Expr]:
    """What names one endpoint: its label, element id unless found by key, key values."""
    cols = [pl.col(f"{side}_label")]
    cols.append(
        pl.when(pl.col(f"{side}_mode") != "key")
        .then(pl.col(f"{side}_element_id"))
        .alias(f"{side}_id")
    )
    cols += [pl.col(n) for n in schema_names if n.startswith(f"{side}.")]
    return cols


def with_modes(frame: pl.DataFrame, keys: Keys, mode: str) -> pl.DataFrame:
    return frame.with_columns(
        _mode("_start", keys, mode).alias("_start_mode"),
        _mode("_end", keys, mode).alias("_end_mode"),
    )


def _parallel_mask(stage: StageInput, table: TableInfo, keys: Keys, mode: str) -> pa.Array | None:
    """Rows that share type and both endpoints with another row, or None if there are none.

    One pass of 64-bit hashes (flat memory); a rare false positive only sends
    a unique row through the exact ``#parallel`` step.
    """
    path = stage.path / table.path
    names = _endpoint_columns(pq.read_schema(path))

    def identity(frame: pl.DataFrame) -> pl.DataFrame:
        frame = with_modes(frame, keys, mode)
        return frame.select(_identity("_start", names) + _identity("_end", names))

    mask = duplicated(path, names, identity)
    return mask.to_arrow() if mask.any() else None


def _key_props(
    keys: Keys, label: str, table: TableInfo, schema: pa.Schema, side: str
) -> tuple[str, ...]:
    if label not in keys.columns:
        raise StageError(
            f"{table.stem}: endpoint label {label!r} has no node table in the stage",
            hint="export the endpoint labels too (e.g. `etl export --all`)",
        )
    cols = keys.columns[label]
    missing = [c for c in cols if f"{side}.{c}" not in schema.names]
    if missing:
        raise StageError(f"{table.stem}: no {side}.{missing[0]} column for {label} endpoints")
    return tuple(cols)


def _side_columns(
    batch: pa.Table, var: str, side: str, match: str, cols: tuple[str, ...]
) -> Columns:
    if match == "key":
        return {f"{var}{n}": batch.column(f"{side}.{c}").to_pylist() for n, c in enumerate(cols)}
    return {f"{var}e": batch.column(f"{side}_element_id").to_pylist()}


class _RelEncoder:
    """Turns a batch of one relationship table into (operation, rows) per endpoint kind."""

    def __init__(
        self, stage: StageInput, table: TableInfo, keys: Keys, mode: str, *, fresh: bool
    ) -> None:
        self.table, self.keys, self.mode, self.fresh = table, keys, mode, fresh
        self.schema = pq.read_schema(stage.path / table.path)
        self.plans: list[ColumnPlan] = plan_columns(
            self.schema,
            property_columns(self.schema),
            tagged=table.tagged,
            zone_hints=table.zone_hints,
            null_counts=null_counts(stage.path / table.path),
        )
        self.names = _endpoint_columns(self.schema)

    def _groups(self, batch: pa.Table) -> Iterator[tuple[RelOp, pa.Table, pl.DataFrame]]:
        frame = pl.from_arrow(batch.select(self.names))
        assert isinstance(frame, pl.DataFrame)
        frame = with_modes(frame, self.keys, self.mode).with_row_index("__i")
        kinds = ["_start_label", "_end_label", "_start_mode", "_end_mode"]
        for (sl, el, sm, em), part in frame.group_by(kinds, maintain_order=True):
            start = Endpoint(str(sl), str(sm), self._props(str(sl), "_start"))
            end = Endpoint(str(el), str(em), self._props(str(el), "_end"))
            op = RelOp(self.table.name, start, end, tuple(self.plans), fresh=self.fresh)
            yield op, batch.take(part["__i"].to_arrow()), part

    def _props(self, label: str, side: str) -> tuple[str, ...]:
        cols = _key_props(self.keys, label, self.table, self.schema, side)
        return tuple(prop_name(c) for c in cols)

    def _endpoints(self, op: RelOp, sub: pa.Table) -> Columns:
        cols: Columns = {"n": sub.num_rows}
        for (var, side), ep in zip(SIDES, (op.start, op.end), strict=True):
            keys = self.keys.columns.get(ep.label, ())
            cols.update(_side_columns(sub, var, side, ep.match, keys))
        return cols

    def encode(self, batch: pa.Table) -> list[Item]:
        return [
            (op, {**encode_columns(sub, self.plans), **self._endpoints(op, sub)})
            for op, sub, _ in self._groups(batch)
        ]

    def encode_parallel(self, batch: pa.Table) -> list[Item]:
        """One row per endpoint pair; ``$lo[i]``..``$hi[i]`` index its relationships."""
        items: list[Item] = []
        for op, sub, part in self._groups(batch):
            # Parallel groups always count what exists: they are few, and this is exact.
            multi = RelOp(op.type, op.start, op.end, op.plans, multi=True)
            ident = part.select(_identity("_start", self.names) + _identity("_end", self.names))
            ident = ident.with_row_index("__j")
            groups = ident.group_by(ident.columns[1:], maintain_order=True).agg(pl.col("__j"))
            members: list[list[int]] = groups["__j"].to_list()
            order = pa.array([j for g in members for j in g], pa.int64())
            firsts = pa.array([g[0] for g in members], pa.int64())
            cols = encode_columns(sub.take(order), self.plans)
            cols.update(self._endpoints(op, sub.take(firsts)))
            sizes = [len(g) for g in members]
            hi = list(itertools.accumulate(sizes))
            cols["lo"] = [h - n for h, n in zip(hi, sizes, strict=True)]
            cols["hi"] = hi
            items.append((multi, cols))
        return items


def rel_steps(
    stage: StageInput,
    table: TableInfo,
    keys: Keys,
    mode: str,
    *,
    fresh: bool = False,
    keep: pa.Array | None = None,
) -> list[Step]:
    """The step of a relationship table, plus a ``#parallel`` step when it has such rows.

    ``keep``: only these rows (a boolean mask over the table), e.g. the ones an
    in-place load creates. Fresh replays create relationships, which Neo4j
    locks at commit in a fixed order, so several transactions may write them at
    once (``concurrent``); merges lock while reading and deadlock each other,
    so they go one by one.
    """
    import pyarrow.compute as pc

    encoder = _RelEncoder(stage, table, keys, mode, fresh=fresh)
    path = stage.path / table.path
    rows = table.rows if keep is None else int(pc.sum(keep).as_py() or 0)
    mask = _parallel_mask(stage, table, keys, mode)
    if mask is not None and keep is not None:
        mask = pc.and_(mask, keep)
    if mask is None or not pc.any(mask).as_py():
        return [
            Step(
                table.stem,
                table,
                rows,
                lambda n: batches(path, n, keep=keep),
                encoder.encode,
                concurrent=fresh,
            )
        ]

    single = pc.invert(mask) if keep is None else pc.and_(pc.invert(mask), keep)
    n_multi = int(pc.sum(mask).as_py() or 0)

    def parallel_source(n: int) -> Iterator[pa.Table]:
        # Parallel rows are few: hold them, order them by pair, cut between pairs.
        parts = list(batches(path, 65_536, keep=mask))
        if not parts:
            return
        rows = pa.concat_tables(parts)
        frame = pl.from_arrow(rows.select(encoder.names))
        assert isinstance(frame, pl.DataFrame)
        frame = with_modes(frame, keys, mode).with_row_index("__i")
        ident = _identity("_start", encoder.names) + _identity("_end", encoder.names)
        groups = frame.group_by(ident, maintain_order=True).agg(pl.col("__i"))["__i"].to_list()
        chunk: list[int] = []
        for group in groups:
            chunk += group
            if len(chunk) >= n:
                yield rows.take(pa.array(chunk, pa.int64()))
                chunk = []
        if chunk:
            yield rows.take(pa.array(chunk, pa.int64()))

    return [
        Step(
            table.stem,
            table,
            rows - n_multi,
            lambda n: batches(path, n, keep=single),
            encoder.encode,
            concurrent=fresh,
        ),
        Step(f"{table.stem}#parallel", table, n_multi, parallel_source, encoder.encode_parallel),
    ]

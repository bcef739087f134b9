"""The steps of a load: which table, which rows, which write operation.

Two ways to apply a transform stage (docs/MIGRATION.md, "The target"):

* **in place** — the database is the one exported. Only what the stage
  changes is written (``etl.load_change`` derives it from the stage and its
  export): nodes created or updated by element id (relabelled where their
  table changed, properties the stage dropped removed), relationships
  created, then exported relationships and nodes the stage no longer has
  deleted. Unchanged tables are not read; rejected rows are not touched.
* **replay** — the database is empty (or holds an earlier replay of this
  stage). Every table is merged: nodes on their key, relationships between
  endpoints found by key.

Where a key cannot identify a node (a duplicate or null key: a legacy graph
may have nodes sharing a key), replay merges on the
source element id instead, kept in ``_etl_source_element_id``: nothing else
can tell the copies, or the relationships of each copy, apart.

Parallel relationships (several of one type between the same two nodes) are
found up front; their rows leave the ordinary batches and load as groups in a
``#parallel`` step, so a replayed batch never doubles them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from etl.errors import StageError
from etl.graph.params import ColumnPlan, encode_columns, null_counts, plan_columns
from etl.graph.write import Columns, Endpoint, NodeOp, RelOp
from etl.load_change import CREATE, SKIP, NodeChange, RowSet, dropped_properties, stage_change
from etl.load_input import StageInput, TableInfo, batches, duplicated, read_columns
from etl.load_model import IN_PLACE, REPLAY, Item, Keys, Step, property_columns
from etl.load_rels import rel_steps

__all__ = ["IN_PLACE", "REPLAY", "Item", "Keys", "Step", "build_steps", "property_columns"]


def table_plans(stage_dir: Path, table: TableInfo) -> tuple[pa.Schema, list[ColumnPlan]]:
    """The table's schema and how each of its property columns travels."""
    import pyarrow.parquet as pq

    path = stage_dir / table.path
    schema = pq.read_schema(path)
    plans = plan_columns(
        schema,
        property_columns(schema),
        tagged=table.tagged,
        zone_hints=table.zone_hints,
        null_counts=null_counts(path),
    )
    return schema, plans


def _filter(table: pa.Table, mask: pl.Series) -> pa.Table:
    return table.filter(mask.to_arrow())


# ----------------------------------------------------------------- nodes


def find_keys(stage: StageInput, mode: str) -> Keys:
    """Key columns of every node table; in replay, which rows the key cannot identify.

    A key is ambiguous when it is null or shared by another row. Candidates
    come from a hash pass (flat memory), then are confirmed on their values.
    """
    keys = Keys()
    for table in stage.tables("node"):
        keys.columns[table.name] = table.key
        if mode != REPLAY:
            continue
        path = stage.path / table.path
        if table.key:
            frame = _ambiguous_rows(path, list(table.key))
        else:
            frame = read_columns(stage.path, table, ["_element_id"])
        if frame.height and frame["_element_id"].null_count():
            raise StageError(
                f"{table.stem}: rows without a usable key and without a source element id "
                "cannot be replayed",
                hint="re-export the graph (every exported node has an element id)",
            )
        keys.ambiguous[table.name] = frame.select(
            pl.concat_str([pl.lit(table.name), pl.lit("\x00"), pl.col("_element_id")])
        ).to_series()
    return keys


def _ambiguous_rows(path: Path, key: list[str]) -> pl.DataFrame:
    """``_element_id`` and key of the rows whose key is null or shared (exact)."""
    nulls = pl.any_horizontal(pl.col(c).is_null() for c in key)
    candidates = duplicated(
        path, key, lambda frame: frame, also=lambda frame: frame.select(nulls).to_series()
    )
    # Few rows are candidates: hold just those, and confirm on the values themselves.
    parts = [
        pl.from_arrow(p)
        for p in batches(path, 65_536, columns=["_element_id", *key], keep=candidates.to_arrow())
    ]
    frames = [f for f in parts if isinstance(f, pl.DataFrame)]
    if not frames:
        return pl.DataFrame(schema={"_element_id": pl.String})
    return pl.concat(frames).filter(pl.struct(key).is_duplicated() | nulls)


def node_op(table: TableInfo, plans: list[ColumnPlan], match: str, **kw: Any) -> NodeOp:
    by_name = {p.column: p for p in plans}
    key = tuple(by_name[k] for k in table.key if k in by_name)
    return NodeOp(label=table.name, match=match, key=key, plans=tuple(plans), **kw)


def node_rows(batch: pa.Table, plans: list[ColumnPlan], label: str | None) -> Columns:
    """A batch of nodes as parameter columns; ``label``: send the labels besides it."""
    cols: Columns = encode_columns(batch, plans)
    cols["n"] = batch.num_rows
    cols["e"] = batch.column("_element_id").to_pylist()
    if label is not None:
        labels = pl.Series(batch.column("_labels").combine_chunks())
        cols["l"] = labels.list.eval(pl.element().filter(pl.element() != label)).to_list()
    return cols


def _has_extra_labels(stage_dir: Path, table: TableInfo) -> bool:
    labels = read_columns(stage_dir, table, ["_labels"])
    if "_labels" not in labels.columns:
        return False
    col = pl.col("_labels")
    return bool(
        labels.select(((col.list.len() != 1) | (col.list.first() != table.name)).any()).item()
    )


def replay_node_step(stage: StageInput, table: TableInfo, keys: Keys, *, fresh: bool) -> Step:
    _, plans = table_plans(stage.path, table)
    dynamic = _has_extra_labels(stage.path, table)
    by_key = node_op(table, plans, "key", dynamic_labels=dynamic, fresh=fresh)
    by_src = node_op(table, plans, "src", dynamic_labels=dynamic, fresh=fresh)
    path = stage.path / table.path

    def encode(batch: pa.Table) -> list[Item]:
        frame = pl.from_arrow(batch.select(["_element_id"]))
        assert isinstance(frame, pl.DataFrame)
        # with_columns, not select: a literal False must still get one value per row.
        amb = keys.is_ambiguous(pl.lit(table.name), pl.col("_element_id")).alias("__amb")
        amb_mask = frame.with_columns(amb)["__amb"]
        if not table.key:
            amb_mask = pl.Series([True] * batch.num_rows)
        label = table.name if dynamic else None
        return [
            (by_key, node_rows(_filter(batch, ~amb_mask), plans, label)),
            (by_src, node_rows(_filter(batch, amb_mask), plans, label)),
        ]

    return Step(table.stem, table, table.rows, lambda n: batches(path, n), encode, concurrent=True)


def _with_ops(path: Path, ops: pa.Array, keep: pa.Array, n: int) -> Iterator[pa.Table]:
    """Batches of the kept rows, each with its rows' operation as an ``__op`` column."""
    kept_ops = ops.filter(keep)
    offset = 0
    for batch in batches(path, n, keep=keep):
        yield batch.append_column("__op", kept_ops.slice(offset, batch.num_rows))
        offset += batch.num_rows


def in_place_node_step(stage: StageInput, change: NodeChange) -> Step:
    """A stage node table in place: rows created on their key, or updating their exported node.

    An updated node keeps its element id; where its row is in another table than
    the exported node's, it swaps that label for the table's, and it loses the
    properties of its exported table that the stage table lacks.
    """
    table = change.table
    _, plans = table_plans(stage.path, table)
    create = node_op(table, plans, "key")
    updates = []
    for source in change.sources:
        relabel = source.name != table.name
        updates.append(
            node_op(
                table,
                plans,
                "eid",
                create=False,
                guard_labels=tuple(dict.fromkeys((source.name, table.name))),
                add_labels=(table.name,) if relabel else (),
                remove_labels=(source.name,) if relabel else (),
                remove_props=dropped_properties(stage, table, source),
            )
        )
    path = stage.path / table.path
    keep = pc.not_equal(change.ops, SKIP)

    def encode(batch: pa.Table) -> list[Item]:
        ops = pl.Series(batch.column("__op").combine_chunks())
        rows = batch.drop_columns(["__op"])
        items: list[Item] = [(create, node_rows(_filter(rows, ops == CREATE), plans, None))]
        for k, op in enumerate(updates):
            items.append((op, node_rows(_filter(rows, ops == k), plans, None)))
        return [item for item in items if item[1]["n"]] or items[:1]

    return Step(
        table.stem,
        table,
        change.written,
        lambda n: _with_ops(path, change.ops, keep, n),
        encode,
        concurrent=True,
    )


def rel_delete_step(export_dir: Path, gone: RowSet) -> Step:
    """Exported relationships the stage no longer has: every one of the type between the
    two nodes, or (where the stage keeps one of them there) by element id."""
    table = gone.table
    by_eid = RelOp(table.name, Endpoint("", "eid"), Endpoint("", "eid"), delete="eid")
    by_ends = RelOp(table.name, Endpoint("", "eid"), Endpoint("", "eid"), delete="ends")
    path = export_dir / table.path
    exact = gone.exact if gone.exact is not None else pa.array([False] * table.rows)
    keep = gone.mask

    def source(n: int) -> Iterator[pa.Table]:
        kept_exact = exact.filter(keep)
        offset = 0
        for batch in batches(path, n, columns=_REL_IDS, keep=keep):
            yield batch.append_column("__op", kept_exact.slice(offset, batch.num_rows))
            offset += batch.num_rows

    def encode(batch: pa.Table) -> list[Item]:
        is_exact = pl.Series(batch.column("__op").combine_chunks())
        items: list[Item] = []
        for op, part in ((by_eid, _filter(batch, is_exact)), (by_ends, _filter(batch, ~is_exact))):
            cols: Columns = {"n": part.num_rows, "e": part.column("_element_id").to_pylist()}
            cols["ae"] = part.column("_start_element_id").to_pylist()
            cols["be"] = part.column("_end_element_id").to_pylist()
            items.append((op, cols))
        return items

    return Step(f"{table.stem} (delete)", table, gone.rows, source, encode)


_REL_IDS = ["_element_id", "_start_element_id", "_end_element_id"]


def node_delete_step(export_dir: Path, gone: RowSet) -> Step:
    """Exported nodes the stage no longer has (their relationships went in an earlier step)."""
    table = gone.table
    _, plans = table_plans(export_dir, table)
    op = node_op(table, plans, "eid", create=False, guard_labels=(table.name,), remove_node=True)
    path = export_dir / table.path

    def encode(batch: pa.Table) -> list[Item]:
        return [(op, node_rows(batch, plans, None))]

    source = lambda n: batches(path, n, keep=gone.mask)  # noqa: E731
    return Step(f"{table.stem} (delete)", table, gone.rows, source, encode)


def in_place_steps(stage: StageInput, keys: Keys) -> list[Step]:
    """Schema aside, the phases of docs/DESIGN.md: node writes, relationship writes,
    relationship deletes, node deletes; only what the stage changes is written."""
    change = stage_change(stage)
    assert stage.export_path is not None
    steps = [in_place_node_step(stage, c) for c in change.nodes if c.written]
    for created in change.rel_creates:
        steps += rel_steps(stage, created.table, keys, IN_PLACE, keep=created.mask)
    steps += [rel_delete_step(stage.export_path, gone) for gone in change.rel_deletes]
    steps += [node_delete_step(stage.export_path, gone) for gone in change.node_deletes]
    return steps


# ------------------------------------------------------------------ steps


def build_steps(stage: StageInput, mode: str, keys: Keys, *, fresh: bool = False) -> list[Step]:
    """Every step of a load in order: nodes before the relationships that need them.

    ``fresh``: a replay into a database that was empty when the load began
    (rows are created, exactly once by batch markers; see ``etl.graph.write``).
    """

    if mode == IN_PLACE:
        return in_place_steps(stage, keys)
    steps = [replay_node_step(stage, t, keys, fresh=fresh) for t in stage.tables("node")]
    for table in stage.tables("relationship"):
        steps += rel_steps(stage, table, keys, mode, fresh=fresh)
    return steps

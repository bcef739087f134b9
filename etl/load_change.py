"""What an in-place load changes, derived from a transform stage and its export.

A transform stage is the graph as it must be after its migration, table by
table, with each row's provenance kept: a node row's ``_element_id`` is the
exported node it was made from (null: the migration creates it), a
relationship row's is the exported relationship (a relationship's type cannot
change, so only a row of the same type can be it). Rows the migration refused
(``rejected/<name>``, with their original ``_element_id``) stay in the
database as they are. Comparing element ids, and nothing else, gives the
change for any migration:

* a node row whose element id is an exported node of table ``E`` **updates**
  that node: its properties are set, the properties of ``E`` the row lacks go,
  and where the row's table is another label, the node is relabelled
  (``E``'s label removed, the table's added);
* a node row without an element id is **created** (merged on its key);
* a relationship row that is not an exported relationship of its type is
  **created** between its endpoints;
* an exported relationship that is in no stage table of its type and was not
  rejected is **deleted** (with every other one of its type between the same
  two nodes, unless the stage keeps one of them there), and so is an
  exported node that is in no stage table and was not rejected.

A ``passthrough`` table promises its rows are exported rows, unchanged: it is
not written, and when it has as many rows as its export table (rejected ones
counted) nothing of it is deleted either, so the big unchanged tables are
never read. The element ids are compared table by table, the likeliest
tables first, and a search stops as soon as every id is placed.

The same ``StageChange`` gives the in-place steps (``etl.load_steps``), the
plan, and the rollback (its inverse, ``etl.load_rollback``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from etl.errors import StageError
from etl.load_input import StageInput, TableInfo, count_true
from etl.load_model import property_columns

#: Per stage node row: not written (an unchanged row), created, or updated from source k.
SKIP, CREATE = -2, -1


@dataclass(frozen=True, eq=False)
class NodeChange:
    """One stage node table: which rows are created, and which update which exported node."""

    table: TableInfo
    #: the export tables the updated rows come from (``ops`` holds an index into it)
    sources: tuple[TableInfo, ...]
    #: one int8 per stage row: SKIP, CREATE or the index of its source table
    ops: pa.Array

    def count(self, op: int) -> int:
        return count_true(pa.compute.equal(self.ops, op))

    @property
    def written(self) -> int:
        return count_true(pa.compute.not_equal(self.ops, SKIP))


@dataclass(frozen=True, eq=False)
class RowSet:
    """Some rows of one table (a boolean mask over its rows)."""

    table: TableInfo
    mask: pa.Array
    #: relationships deleted by their own element id, not as every one of the type between
    #: their endpoints: those whose endpoints keep another of the type (parallel ones)
    exact: pa.Array | None = None

    @property
    def rows(self) -> int:
        return count_true(self.mask)


@dataclass(eq=False)
class StageChange:
    """Everything an in-place load of a stage writes, in the order it writes it."""

    nodes: list[NodeChange] = field(default_factory=list)
    #: stage relationship rows that are not exported relationships
    rel_creates: list[RowSet] = field(default_factory=list)
    #: exported relationships the stage no longer has (masks over export tables)
    rel_deletes: list[RowSet] = field(default_factory=list)
    #: exported nodes the stage no longer has (masks over export tables)
    node_deletes: list[RowSet] = field(default_factory=list)

    @property
    def written_labels(self) -> set[str]:
        """Labels whose nodes the load creates or updates (their lookups need the schema)."""
        return {n.table.name for n in self.nodes if n.written}

    def updates(self) -> list[tuple[NodeChange, int, TableInfo]]:
        """Every (stage table, source index, export table) pair with updated rows."""
        return [(n, k, src) for n in self.nodes for k, src in enumerate(n.sources) if n.count(k)]


_CACHE: dict[tuple[str, str], StageChange] = {}


def stage_change(stage: StageInput) -> StageChange:
    """The change ``stage`` makes to its export in place (computed once per stage)."""
    if stage.export_path is None:
        raise StageError(f"{stage.path}: an in-place load needs the export the stage was made from")
    key = (stage.sha256, str(stage.export_path))
    if key not in _CACHE:
        _CACHE[key] = _derive(stage, _Ids(stage))
    return _CACHE[key]


class _Ids:
    """Element-id columns of the stage's and the export's tables, read once when needed."""

    def __init__(self, stage: StageInput) -> None:
        assert stage.export_path is not None
        self.stage = stage
        self.export_dir: Path = stage.export_path
        self._cache: dict[tuple[str, str], pl.Series] = {}

    def of(self, where: str, table: TableInfo) -> pl.Series:
        base = self.stage.path if where == "stage" else self.export_dir
        key = (where, table.path)
        if key not in self._cache:
            path = base / table.path
            if "_element_id" not in pq.read_schema(path).names:
                raise StageError(
                    f"{table.stem}: no _element_id column, so its rows cannot be matched to "
                    "the exported graph",
                    hint="re-export and transform again (every stage table keeps _element_id)",
                )
            col = pl.read_parquet(path, columns=["_element_id"])["_element_id"]
            self._cache[key] = col.cast(pl.String)
        return self._cache[key]


def _rejected_of(stage: StageInput, kind: str) -> dict[str, list[TableInfo]]:
    """``rejected/<name>`` tables by the name of the export table of ``kind`` they came from."""
    exported = {t.name for t in stage.export_tables() if t.kind == kind}
    out: dict[str, list[TableInfo]] = {}
    for t in stage.tables("rejected"):
        if t.name in exported:
            out.setdefault(t.name, []).append(t)
    return out


def _likeliest(name: str, tables: list[TableInfo]) -> list[TableInfo]:
    """Same name first, then the smallest tables (a search stops when all ids are placed)."""
    return sorted(tables, key=lambda t: (t.name != name, t.rows, t.path))


def _derive(stage: StageInput, ids: _Ids) -> StageChange:
    change = StageChange()
    exported_nodes = [t for t in stage.export_tables() if t.kind == "node"]
    exported_rels = [t for t in stage.export_tables() if t.kind == "relationship"]
    stage_nodes = stage.tables("node")
    stage_rels = stage.tables("relationship")
    for table in stage_nodes:
        change.nodes.append(_node_change(stage, ids, table, exported_nodes))
    rejected_nodes = _rejected_of(stage, "node")
    for table in exported_nodes:
        same = [t for t in stage_nodes if t.name == table.name]
        if _untouched(table, same, rejected_nodes.get(table.name, [])):
            continue
        holders = _likeliest(table.name, stage_nodes) + rejected_nodes.get(table.name, [])
        gone = _missing(ids, table, holders)
        if gone is not None:
            change.node_deletes.append(gone)
    rejected_rels = _rejected_of(stage, "relationship")
    by_type = {t.name: t for t in exported_rels}
    for table in stage_rels:
        created = _rel_creates(stage, ids, table, by_type.get(table.name))
        if created is not None:
            change.rel_creates.append(created)
    for table in exported_rels:
        same = [t for t in stage_rels if t.name == table.name]
        rejected = rejected_rels.get(table.name, [])
        if _untouched(table, same, rejected):
            continue
        gone = _missing(ids, table, same + rejected)
        if gone is not None:
            change.rel_deletes.append(_with_exact(stage, gone, same + rejected))
    return change


def _pairs(path: Path) -> pl.Series:
    ends = pl.read_parquet(path, columns=["_start_element_id", "_end_element_id"])
    return ends.select(
        pl.concat_str(["_start_element_id", "_end_element_id"], separator="\x00")
    ).to_series()


def _with_exact(stage: StageInput, gone: RowSet, kept: list[TableInfo]) -> RowSet:
    """Mark the deleted relationships whose endpoints keep one of the type.

    The others are deleted as every relationship of the type between their
    endpoints: element ids do not survive a rollback's re-creation, pairs do.
    """
    assert stage.export_path is not None
    pairs = _pairs(stage.export_path / gone.table.path)
    exact = pl.Series([False] * len(pairs))
    for table in kept:
        exact = exact | pairs.is_in(_pairs(stage.path / table.path).implode()).fill_null(True)
    return RowSet(gone.table, gone.mask, exact.to_arrow())


def _untouched(exported: TableInfo, same: list[TableInfo], rejected: list[TableInfo]) -> bool:
    """A passthrough table holding every exported row (rejected ones counted): nothing goes."""
    kept = sum(t.rows for t in same) + sum(t.rows for t in rejected)
    return bool(same) and all(t.role == "passthrough" for t in same) and kept == exported.rows


def _missing(ids: _Ids, exported: TableInfo, holders: list[TableInfo]) -> RowSet | None:
    """The rows of an export table whose element id is in none of ``holders``."""
    own = ids.of("export", exported)
    left = own.drop_nulls().unique()
    for holder in holders:
        if left.is_empty():
            break
        left = left.filter(~left.is_in(ids.of("stage", holder).implode()))
    if left.is_empty():
        return None
    return RowSet(exported, own.is_in(left.implode()).fill_null(False).to_arrow())


def _node_change(
    stage: StageInput, ids: _Ids, table: TableInfo, exported: list[TableInfo]
) -> NodeChange:
    n = table.rows
    if table.role == "passthrough":
        return NodeChange(table, (), pa.array([SKIP] * n, pa.int8()))
    own = ids.of("stage", table)
    ops = pl.Series("ops", [CREATE] * n, dtype=pl.Int8)
    placed = own.is_null()
    if "_created" in pq.read_schema(stage.path / table.path).names:
        flags = pl.read_parquet(stage.path / table.path, columns=["_created"])["_created"]
        placed = placed | flags.fill_null(False)
    sources: list[TableInfo] = []
    for source in _likeliest(table.name, exported):
        if bool(placed.all()):
            break
        hit = ~placed & own.is_in(ids.of("export", source).implode()).fill_null(False)
        if hit.any():
            ops = pl.select(
                pl.when(hit).then(pl.lit(len(sources), pl.Int8)).otherwise(ops)
            ).to_series()
            sources.append(source)
            placed = placed | hit
    if not bool(placed.all()):
        stray = own.filter(~placed).head(3).to_list()
        raise StageError(
            f"{table.stem}: {int((~placed).sum()):,} rows carry an element id that is no node "
            f"of the export (e.g. {', '.join(map(str, stray))}): the stage does not describe "
            "the exported graph",
            hint="transform the export again (a migration keeps the exported _element_id, or "
            "leaves it null for a node it creates)",
        )
    return NodeChange(table, tuple(sources), ops.cast(pl.Int8).to_arrow())


def _rel_creates(
    stage: StageInput, ids: _Ids, table: TableInfo, exported: TableInfo | None
) -> RowSet | None:
    if table.role == "passthrough" and exported is not None:
        return None
    own = ids.of("stage", table)
    new = own.is_null()
    if exported is not None:
        new = new | ~own.is_in(ids.of("export", exported).implode()).fill_null(False)
        if not bool(new.all()):
            _refuse_changed_properties(stage, table, exported)
    if not new.any():
        return None
    return RowSet(table, new.to_arrow())


def _refuse_changed_properties(stage: StageInput, table: TableInfo, exported: TableInfo) -> None:
    """Kept relationships keep their properties in place: a stage that adds or drops a
    property column of one is refused before anything is written."""
    assert stage.export_path is not None
    mine = set(property_columns(pq.read_schema(stage.path / table.path)))
    theirs = set(property_columns(pq.read_schema(stage.export_path / exported.path)))
    if mine != theirs:
        changed = sorted(mine ^ theirs)
        raise StageError(
            f"{table.stem}: the stage changes the properties of exported relationships "
            f"({', '.join(changed)}); an in-place load does not change the properties of a "
            "relationship it keeps yet",
            hint="replay the stage into an empty database instead (`etl load` there), or have "
            "the migration create the relationships anew (a null _element_id)",
        )


def dropped_properties(stage: StageInput, table: TableInfo, source: TableInfo) -> tuple[str, ...]:
    """Properties of the export table that the stage table no longer has."""
    from etl.graph.params import prop_name

    assert stage.export_path is not None
    have = set(pq.read_schema(stage.path / table.path).names)
    old = property_columns(pq.read_schema(stage.export_path / source.path))
    return tuple(prop_name(c) for c in old if c not in have)

"""The steps of a load: which table, which rows, which write operation.

Two ways to apply a transform stage (docs/MIGRATION.md, "The target"):

* **in place** — the database is the one exported. Only what the migration
  changed is written: Issues get an integer ``number`` (found by element id)
  or are created (``_created``); each migrated Workflow *becomes* its
  WorkflowRun (same node: labels swapped, derived properties set, ``metadata``
  and ``created_at`` removed, its ``BASED_ON_ISSUE`` deleted); ``HAS_RUNS`` is
  merged. Events, plans and their relationships are the same nodes and need
  nothing; rejected Workflows are not touched.
* **replay** — the database is empty (or holds an earlier replay of this
  stage). Every table is merged: nodes on their key, relationships between
  endpoints found by key.

Where a key cannot identify a node (a duplicate or null key: legacy graphs
have duplicate Issues and Workflows sharing an id), replay merges on the
source element id instead, kept in ``_etl_source_element_id``: nothing else
can tell the copies, or the relationships of each copy, apart.

Parallel relationships (several of one type between the same two nodes) are
found up front; their rows leave the ordinary batches and load as groups in a
``#parallel`` step, so a replayed batch never doubles them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from etl.errors import StageError
from etl.graph.params import ColumnPlan, encode_columns, null_counts, plan_columns, prop_name
from etl.graph.write import Columns, NodeOp
from etl.load_input import StageInput, TableInfo, batches, duplicated, read_columns
from etl.load_model import IN_PLACE, REPLAY, Item, Keys, Step, property_columns
from etl.load_rels import rel_steps

__all__ = ["IN_PLACE", "REPLAY", "Item", "Keys", "Step", "build_steps", "property_columns"]

#: The in-place recipe of ``workflow-to-workflowrun``: the label converted, and
#: the relationship type the migration replaces (docs/MIGRATION.md).
SOURCE_LABEL, TARGET_LABEL = "Workflow", "WorkflowRun"
REPLACED_TYPES = ("BASED_ON_ISSUE",)


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


def in_place_node_steps(stage: StageInput) -> list[Step]:
    """Issues (number → integer, or created) and the Workflow → WorkflowRun conversion."""
    steps: list[Step] = []
    issues = stage.table("nodes/Issue")
    if issues is not None:
        steps.append(_issue_step(stage, issues))
    runs = stage.table(f"nodes/{TARGET_LABEL}")
    if runs is not None:
        steps.append(_convert_step(stage, runs))
    return steps


def _issue_step(stage: StageInput, issues: TableInfo) -> Step:
    _, plans = table_plans(stage.path, issues)
    update = node_op(issues, plans, "eid", create=False, guard_labels=("Issue",))
    create = node_op(issues, plans, "key")
    path = stage.path / issues.path

    def encode(batch: pa.Table) -> list[Item]:
        created = pl.Series(batch.column("_created").combine_chunks()).fill_null(False)
        return [
            (update, node_rows(_filter(batch, ~created), plans, None)),
            (create, node_rows(_filter(batch, created), plans, None)),
        ]

    return Step(
        issues.stem, issues, issues.rows, lambda n: batches(path, n), encode, concurrent=True
    )


def _convert_step(stage: StageInput, runs: TableInfo) -> Step:
    """Each migrated Workflow node becomes its WorkflowRun: same node, new labels and values."""
    schema, plans = table_plans(stage.path, runs)
    legacy = stage.export_table(f"nodes/{SOURCE_LABEL}")
    dropped: tuple[str, ...] = ()
    if legacy is not None and stage.export_path is not None:
        import pyarrow.parquet as pq

        # The legacy properties the transform dropped (metadata, created_at) go.
        old = property_columns(pq.read_schema(stage.export_path / legacy.path))
        dropped = tuple(prop_name(c) for c in old if c not in schema.names)
    convert = node_op(
        runs,
        plans,
        "eid",
        create=False,
        guard_labels=(SOURCE_LABEL, TARGET_LABEL),
        add_labels=(TARGET_LABEL,),
        remove_labels=(SOURCE_LABEL,),
        remove_props=dropped,
        delete_out=REPLACED_TYPES,
    )
    path = stage.path / runs.path

    def encode(batch: pa.Table) -> list[Item]:
        return [(convert, node_rows(batch, plans, None))]

    return Step(
        runs.stem,
        runs,
        runs.rows,
        lambda n: batches(path, n),
        encode,
        deleted_types=REPLACED_TYPES,
    )


# ------------------------------------------------------------------ steps


def build_steps(stage: StageInput, mode: str, keys: Keys, *, fresh: bool = False) -> list[Step]:
    """Every step of a load in order: nodes before the relationships that need them.

    ``fresh``: a replay into a database that was empty when the load began
    (rows are created, exactly once by batch markers; see ``etl.graph.write``).
    """

    if mode == IN_PLACE:
        nodes = in_place_node_steps(stage)
        # Types the export already had hang on the same nodes: only new ones are written.
        exported = {t.name for t in stage.export_tables() if t.kind == "relationship"}
        rels = [t for t in stage.tables("relationship") if t.name not in exported]
    else:
        nodes = [replay_node_step(stage, t, keys, fresh=fresh) for t in stage.tables("node")]
        rels = stage.tables("relationship")
    steps = list(nodes)
    for table in rels:
        steps += rel_steps(stage, table, keys, mode, fresh=fresh)
    return steps

"""Input files for ``neo4j-admin database import full`` written from a stage directory.

The importer reads Parquet with header-syntax column names (``:ID(group)``,
``:LABEL``, ``:START_ID(group)``, ``:END_ID(group)``, ``:TYPE``,
``name:type``). What Neo4j 5.26.30's Parquet reader does with each value was
measured, not assumed (tests/test_offline.py pins it):

=====================  ====================================  ==============================
stage column           written to the import file as         why
=====================  ====================================  ==============================
string                 string                                ``""`` is dropped: residual
int, float, bool       native                                NaN and ±Inf kept
date32                 native                                any year kept
list<string>           native list                           ``[]`` becomes bytes: residual
list<int>,             ``name:long[]``/``double[]`` joined   native lists of numbers fail;
list<float>            with U+001F (``--array-delimiter``)   non-finite floats: residual
timestamp[ns]          ``name:localdatetime`` ISO string     native timestamps before 1970
timestamp[ns, tz]      ``name:datetime`` ISO string + zone   fail, and lose the zone; rows
                       (named zone, from 1970, offset in     in a named zone with an offset
                       whole minutes; other rows: residual)  in seconds or before 1970: residual
time64                 ``name:localtime`` ISO string
anything else          residual (the whole column)           list<bool> comes back as
(tagged JSON, binary,                                        strings; structs and bytes
time, duration, point,                                       have no input form
list<bool>)
=====================  ====================================  ==============================

A **residual** cell is left out of the import file; its row gets the marker
property ``_etl_offline_fix`` (the row's index in its table), and after the
import ``etl.offline`` sets every residual column of those rows online, with
the same encoders as the online load (``etl.graph.params``), then removes
the marker. Rows without residual cells, nearly all, never leave the importer.

Node identity follows the online replay exactly (``etl.load_steps``): a node
whose key identifies it gets the ID ``k`` + its key values, a node with an
ambiguous key (duplicate or null; or a label without a key) ``e`` + its source
element id, which is also written as ``_etl_source_element_id``. Relationship
endpoints are named the same way, so an offline import and an online replay
of one stage give the same graph.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from etl.errors import StageError
from etl.graph.params import SOURCE_ID, prop_name
from etl.load_input import StageInput, TableInfo, batches
from etl.load_rels import with_modes
from etl.load_steps import REPLAY, Keys, property_columns
from etl.localdb_versions import MEASURED, ImportCapabilities, import_capabilities

ARRAY_DELIMITER = "\x1f"
FIX_PROP = "_etl_offline_fix"
READ_BATCH = 65_536

#: The importer's capabilities when no version is named (the newest measured).
NEWEST = MEASURED[-1][1]


@dataclass
class ImportTable:
    """One stage table and the import file written for it."""

    table: TableInfo
    file: Path
    rows: int = 0
    #: columns some of whose cells the importer cannot hold (set online afterwards)
    residual_columns: list[str] = field(default_factory=list)
    residual_rows: int = 0


@dataclass
class ImportFiles:
    nodes: list[ImportTable] = field(default_factory=list)
    relationships: list[ImportTable] = field(default_factory=list)
    #: ID group per label (synthetic names: labels may hold any character)
    groups: dict[str, str] = field(default_factory=dict)

    def args(self) -> list[str]:
        """The importer's ``--nodes``/``--relationships`` arguments."""
        out = [f"--nodes={t.file}" for t in self.nodes if t.rows]
        out += [f"--relationships={t.file}" for t in self.relationships if t.rows]
        return out

    def residual(self) -> list[ImportTable]:
        return [t for t in self.nodes + self.relationships if t.residual_rows]


# ----------------------------------------------------------- column kinds


def _column_kind(field_: pa.Field, tagged: tuple[str, ...], zone: str | None) -> str:
    """How a property column travels: ``native``, ``string``, ``<type>`` (ISO text),
    ``long[]``/``double[]`` (joined), ``strings`` (native list) or ``residual``."""
    t, name = field_.type, field_.name
    if name in tagged or ":" in prop_name(name) or prop_name(name) in (FIX_PROP, SOURCE_ID):
        return "residual"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        return "native"
    if pa.types.is_date32(t):
        return "native"
    if pa.types.is_timestamp(t):
        if t.tz is None:
            return "localdatetime"
        # Fixed offsets other than Z have no Polars zone to format with.
        return "datetime" if zone == "Z" or (zone and "/" in zone) or zone == "UTC" else "residual"
    if pa.types.is_time64(t):
        return "localtime"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = t.value_type
        if pa.types.is_string(inner) or pa.types.is_large_string(inner):
            return "strings"
        if pa.types.is_integer(inner):
            return "long[]"
        if pa.types.is_floating(inner):
            return "double[]"
    return "residual"


def _header(name: str, kind: str) -> str:
    prop = prop_name(name)
    if kind in ("localdatetime", "datetime", "localtime", "long[]", "double[]"):
        return f"{prop}:{kind}"
    return prop


_ISO = "%Y-%m-%dT%H:%M:%S%.9f"


def _encode(col: pl.Expr, kind: str, zone: str | None) -> tuple[pl.Expr, pl.Expr | None]:
    """(value written, residual mask or None) for one column."""
    if kind == "native":
        return col, None
    if kind == "string":
        empty = col.eq("").fill_null(False)
        return pl.when(empty).then(None).otherwise(col), empty
    if kind == "strings":
        empty = col.list.len().eq(0).fill_null(False)
        return pl.when(empty).then(None).otherwise(col), empty
    if kind in ("long[]", "double[]"):
        bad = col.list.len().eq(0)
        if kind == "double[]":
            bad = bad | col.list.eval(~pl.element().is_finite()).list.any()
        bad = bad.fill_null(False)
        joined = col.list.eval(pl.element().cast(pl.String)).list.join(ARRAY_DELIMITER)
        return pl.when(bad).then(None).otherwise(joined), bad
    if kind == "localdatetime":
        return col.dt.strftime(_ISO), None
    if kind == "localtime":
        return col.dt.strftime("%H:%M:%S%.9f"), None
    if kind == "datetime":
        if zone == "Z":
            return col.dt.convert_time_zone("UTC").dt.strftime(_ISO + "Z"), None
        z = str(zone)
        local = col.dt.convert_time_zone(z)
        text = local.dt.strftime(_ISO + "%:z")
        # The importer refuses a text whose offset is not the zone's (its own tz data): an
        # offset with seconds (local mean time) is printed rounded, and before 1970 tz
        # data releases differ (backzone). Those rows are set online, by instant.
        offset = (local.dt.base_utc_offset() + local.dt.dst_offset()).dt.total_seconds()
        odd = ((offset % 60 != 0) | (col.dt.year() < 1970)).fill_null(False)
        return pl.when(odd).then(None).otherwise(text + pl.lit(f"[{z}]")), odd
    raise AssertionError(kind)


def _zones(table: TableInfo, schema: pa.Schema) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for f in schema:
        if pa.types.is_timestamp(f.type) and f.type.tz is not None:
            hint = table.zone_hints.get(f.name)
            out[f.name] = hint or ("Z" if f.type.tz in ("UTC", "Z") else str(f.type.tz))
    return out


# ------------------------------------------------------------------ identity


def _key_id(cols: list[pl.Expr]) -> pl.Expr:
    parts = [pl.lit("k")] + [c.cast(pl.String) for c in cols]
    return pl.concat_str(parts, separator=ARRAY_DELIMITER)


def _eid_id(eid: pl.Expr) -> pl.Expr:
    return pl.concat_str([pl.lit("e"), eid], separator=ARRAY_DELIMITER)


# ------------------------------------------------------------------ writers


class _Writer:
    """Streams one import file, batch by batch (memory: one batch)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: pq.ParquetWriter | None = None

    def write(self, frame: pl.DataFrame) -> None:
        table = frame.to_arrow()
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        self.writer.write_table(table.cast(self.writer.schema))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _kinds(
    table: TableInfo, schema: pa.Schema, caps: ImportCapabilities
) -> tuple[dict[str, str], dict[str, str | None]]:
    """Each property column's kind (see ``_column_kind``) and each DateTime column's zone."""
    zones = _zones(table, schema)
    kinds = {
        name: _for_version(
            _column_kind(schema.field(name), table.tagged, zones.get(name)),
            schema.field(name),
            caps,
        )
        for name in property_columns(schema)
    }
    return kinds, zones


def _for_version(kind: str, field_: pa.Field, caps: ImportCapabilities) -> str:
    """``kind``, or ``residual`` where this version's importer loses it (etl.localdb_versions)."""
    prop = prop_name(field_.name)
    lost = (
        (kind == "strings" and not caps.native_string_lists)
        or (kind in ("long[]", "double[]") and not caps.joined_number_lists)
        or (pa.types.is_date32(field_.type) and not caps.native_dates)
        or (("(" in prop or ")" in prop) and not caps.parentheses_in_names)
    )
    return "residual" if lost else kind


def _frame(batch: pa.Table, kinds: dict[str, str]) -> pl.DataFrame:
    """The batch in Polars without its residual columns (Polars cannot hold some of them,
    e.g. offsets such as ``+05:30``), plus ``__res``: the row has a residual column value."""
    residual = [n for n, k in kinds.items() if k == "residual"]
    frame = pl.from_arrow(batch.drop_columns(residual))
    assert isinstance(frame, pl.DataFrame)
    flags = [pl.Series(batch.column(n).is_valid()) for n in residual]
    res = pl.DataFrame(flags).select(pl.any_horizontal(pl.all())).to_series() if flags else None
    return frame.with_columns(
        (res if res is not None else pl.repeat(False, frame.height, eager=True)).alias("__res")
    )


def _property_frame(
    frame: pl.DataFrame,
    kinds: dict[str, str],
    zones: dict[str, str | None],
    index: pl.Expr,
    out: ImportTable,
) -> list[pl.Expr]:
    """The property columns of a batch, then the fix marker (``index`` where a cell is
    residual, else null); records the residual columns and rows in ``out``."""
    exprs: list[pl.Expr] = []
    masks: dict[str, pl.Expr] = {}
    for name, kind in kinds.items():
        if kind == "residual":
            if name not in out.residual_columns:
                out.residual_columns.append(name)
            continue
        value, mask = _encode(pl.col(name), kind, zones.get(name))
        exprs.append(value.alias(_header(name, kind)))
        if mask is not None:
            masks[name] = mask
    any_residual = frame["__res"]
    if masks:
        flags = frame.select([m.alias(f"__m{j}") for j, m in enumerate(masks.values())])
        for name, flag in zip(masks, flags.iter_columns(), strict=True):
            if name not in out.residual_columns and flag.any():
                out.residual_columns.append(name)
        any_residual = any_residual | flags.select(pl.any_horizontal(pl.all())).to_series()
    out.residual_rows += int(any_residual.sum())
    fix = pl.when(pl.lit(any_residual)).then(index.cast(pl.Int64)).otherwise(None)
    exprs.append(fix.alias(f"{FIX_PROP}:long"))
    return exprs


def _check_labels(frame: pl.DataFrame, table: TableInfo) -> None:
    bad = frame.select(pl.col("_labels").list.eval(pl.element().str.contains(ARRAY_DELIMITER)))
    if bad.to_series().list.any().any():
        raise StageError(
            f"{table.stem}: a label contains the character U+001F, which the importer "
            "uses to separate labels",
            hint="load this stage online (`etl load`), which takes any label",
        )


def write_nodes(
    stage: StageInput,
    table: TableInfo,
    keys: Keys,
    out: ImportTable,
    group: str,
    caps: ImportCapabilities = NEWEST,
) -> None:
    path = stage.path / table.path
    kinds, zones = _kinds(table, pq.read_schema(path), caps)
    writer = _Writer(out.file)
    offset = 0
    try:
        for batch in batches(path, READ_BATCH):
            frame = _frame(batch, kinds)
            _check_labels(frame, table)
            eid = pl.col("_element_id")
            if table.key:
                amb = keys.is_ambiguous(pl.lit(table.name), eid)
                ident = (
                    pl.when(amb)
                    .then(_eid_id(eid))
                    .otherwise(_key_id([pl.col(c) for c in table.key]))
                )
            else:
                amb, ident = pl.lit(True), _eid_id(eid)
            index = pl.int_range(offset, offset + frame.height, dtype=pl.Int64)
            props = _property_frame(frame, kinds, zones, index, out)
            written = frame.with_columns(amb.alias("__amb")).select(
                ident.alias(f":ID({group})"),
                pl.col("_labels").list.join(ARRAY_DELIMITER).alias(":LABEL"),
                *props,
                pl.when(pl.col("__amb")).then(eid).otherwise(None).alias(SOURCE_ID),
            )
            writer.write(written)
            offset += frame.height
    finally:
        writer.close()
    out.rows = offset


def _endpoint_ids(
    frame: pl.DataFrame, side: str, keys: Keys, groups: dict[str, str]
) -> Iterator[tuple[str, pl.DataFrame]]:
    """Split a batch by endpoint label; yield (label, frame with the ID column ``__id<side>``)."""
    for (label,), part in frame.group_by(f"{side}_label", maintain_order=True):
        label = str(label)
        if label not in groups:
            raise StageError(
                f"relationship endpoint label {label!r} has no node table in the stage",
                hint="export the endpoint labels too (e.g. `etl export --all`)",
            )
        cols = [pl.col(f"{side}.{c}") for c in keys.columns.get(label, ())]
        by_key = _key_id(cols) if cols else pl.lit(None, pl.String)
        ident = (
            pl.when(pl.col(f"{side}_mode") == "key")
            .then(by_key)
            .otherwise(_eid_id(pl.col(f"{side}_element_id")))
        )
        yield label, part.with_columns(ident.alias(f"__id{side}"))


def write_relationships(
    stage: StageInput,
    table: TableInfo,
    keys: Keys,
    files: ImportFiles,
    directory: Path,
    caps: ImportCapabilities = NEWEST,
) -> None:
    """One import file per (start label, end label): the ID group is in the header."""
    path = stage.path / table.path
    kinds, zones = _kinds(table, pq.read_schema(path), caps)
    outs: dict[tuple[str, str], tuple[ImportTable, _Writer]] = {}
    offset = 0
    try:
        for batch in batches(path, READ_BATCH):
            frame = with_modes(_frame(batch, kinds), keys, REPLAY).with_row_index(
                "__i", offset=offset
            )
            for start, part in _endpoint_ids(frame, "_start", keys, files.groups):
                for end, sub in _endpoint_ids(part, "_end", keys, files.groups):
                    pair = (start, end)
                    if pair not in outs:
                        n = len(files.relationships)
                        it = ImportTable(table, directory / f"r{n}.parquet")
                        files.relationships.append(it)
                        outs[pair] = (it, _Writer(it.file))
                    it, writer = outs[pair]
                    # The marker is the row's index in the stage table (not the file).
                    props = _property_frame(sub, kinds, zones, pl.col("__i"), it)
                    writer.write(
                        sub.select(
                            pl.col("__id_start").alias(f":START_ID({files.groups[start]})"),
                            pl.col("__id_end").alias(f":END_ID({files.groups[end]})"),
                            pl.lit(table.name).alias(":TYPE"),
                            *props,
                        )
                    )
                    it.rows += sub.height
            offset += frame.height
    finally:
        for _, writer in outs.values():
            writer.close()


def write_import_files(
    stage: StageInput, keys: Keys, directory: Path, *, version: str | None = None
) -> ImportFiles:
    """Every node and relationship table of ``stage`` as import files in ``directory``.

    ``version`` is the Neo4j version of the importer: columns its Parquet reader
    loses (``etl.localdb_versions``) are left to the online fix-up.
    """
    caps = import_capabilities(version) if version else NEWEST
    directory.mkdir(parents=True, exist_ok=True)
    files = ImportFiles()
    for n, table in enumerate(stage.tables("node")):
        files.groups[table.name] = f"g{n}"
        out = ImportTable(table, directory / f"n{n}.parquet")
        files.nodes.append(out)
        write_nodes(stage, table, keys, out, files.groups[table.name], caps)
    for table in stage.tables("relationship"):
        write_relationships(stage, table, keys, files, directory, caps)
    return files


def residual_tables(files: ImportFiles) -> list[tuple[TableInfo, list[ImportTable]]]:
    """Stage tables with residual cells, each with its import files."""
    out: dict[str, tuple[TableInfo, list[ImportTable]]] = {}
    for item in files.nodes + files.relationships:
        if item.residual_rows:
            out.setdefault(item.table.path, (item.table, []))[1].append(item)
    return list(out.values())


def residual_batches(
    stage: StageInput, table: TableInfo, items: list[ImportTable]
) -> Iterator[tuple[pa.Table, list[int]]]:
    """Rows of ``table`` whose import rows carry a fix marker, with those markers.

    Markers are row indices in the stage table, so the rows are picked by
    position while streaming the table; only the markers are held (a few
    integers per residual row).
    """
    column = f"{FIX_PROP}:long"
    wanted = (
        pl.concat([pl.scan_parquet(i.file).select(pl.col(column).drop_nulls()) for i in items])
        .collect()
        .to_series()
        .sort()
    )
    offset = 0
    for batch in batches(stage.path / table.path, READ_BATCH):
        positions = pl.int_range(offset, offset + batch.num_rows, dtype=pl.Int64, eager=True)
        keep = positions.is_in(wanted.implode())
        offset += batch.num_rows
        if keep.any():
            yield batch.filter(keep.to_arrow()), positions.filter(keep).to_list()


def summary(files: ImportFiles) -> dict[str, Any]:
    return {
        "node_files": len(files.nodes),
        "relationship_files": len(files.relationships),
        "residual": [
            {
                "file": t.file.name,
                "table": t.table.stem,
                "rows": t.residual_rows,
                "columns": t.residual_columns,
            }
            for t in files.residual()
        ],
    }

"""The export's building blocks without a database: external sort, row groups, type mapping."""

from __future__ import annotations

import hashlib
import json
import math
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from etl.extsort import SortedRuns, sort_table
from etl.graph.arrow import finish_tagged, plan_column, to_arrow
from etl.stage import PARQUET_OPTIONS, ROW_GROUP_SIZE, TableWriter

pytestmark = pytest.mark.unit

SCHEMA = pa.schema([("k", pa.float64()), ("s", pa.string()), ("_element_id", pa.string())])


def _rows(n: int, seed: int) -> pa.Table:
    rng = random.Random(seed)
    ks = [rng.choice([None, math.nan, -1.0, 0.0, 2.5, float(rng.randint(0, 50))]) for _ in range(n)]
    ss = [rng.choice([None, "", "a", "b", "é", "z" * rng.randint(0, 3)]) for _ in range(n)]
    return pa.table({"k": ks, "s": ss, "_element_id": [f"4:x:{i}" for i in range(n)]}, SCHEMA)


@pytest.mark.parametrize("run_bytes", [1 << 30, 2_000, 300])
def test_merge_equals_in_memory_sort(tmp_path: Path, run_bytes: int) -> None:
    table = _rows(5_000, seed=run_bytes)
    keys = ["k", "s", "_element_id"]
    runs = SortedRuns(SCHEMA, keys, spill_dir=tmp_path, run_bytes=run_bytes)
    for batch in table.to_batches(max_chunksize=97):
        runs.add(batch)
    merged = pa.concat_tables(list(runs.merge()))
    expected = sort_table(table, keys)
    # Element ids are unique, so equal id order means equal row order (NaN != NaN in equals()).
    assert merged.column("_element_id").to_pylist() == expected.column("_element_id").to_pylist()
    assert list(tmp_path.iterdir()) == []  # spill files are gone


def test_sort_order_is_nulls_last_nan_before_null() -> None:
    table = pa.table({"k": [None, math.nan, 1.0, -1.0], "_element_id": ["a", "b", "c", "d"]})
    out = sort_table(table, ["k", "_element_id"]).column("_element_id").to_pylist()
    assert out == ["d", "c", "b", "a"]


def _write(path: Path, table: pa.Table, chunk: int) -> str:
    writer = TableWriter(path, table.schema)
    for start in range(0, table.num_rows, chunk):
        writer.write(table.slice(start, chunk))
    writer.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_row_groups_do_not_depend_on_write_sizes(tmp_path: Path) -> None:
    table = _rows(ROW_GROUP_SIZE + 1_234, seed=1)
    digests = {_write(tmp_path / f"{c}.parquet", table, c) for c in (997, 20_000, 10**9)}
    assert len(digests) == 1
    pq.write_table(
        table, tmp_path / "plain.parquet", row_group_size=ROW_GROUP_SIZE, **PARQUET_OPTIONS
    )
    assert digests == {hashlib.sha256((tmp_path / "plain.parquet").read_bytes()).hexdigest()}


def test_megabyte_values_make_smaller_row_groups(tmp_path: Path) -> None:
    table = pa.table({"s": ["x" * (1 << 20)] * 130})
    _write(tmp_path / "big.parquet", table, 13)
    meta = pq.read_metadata(tmp_path / "big.parquet")
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sum(sizes) == 130 and max(sizes) < 130


def test_tagged_json_keeps_types_and_non_finite_floats() -> None:
    assert finish_tagged({"t": "Float", "v": math.inf}) == '{"t":"Float","v":"Infinity"}'
    assert finish_tagged({"t": "List<Float>", "v": [math.nan]}) == '{"t":"List<Float>","v":["NaN"]}'
    assert json.loads(finish_tagged({"t": "List<Integer>", "v": b"\x00\xff"}) or "") == {
        "t": "ByteArray",
        "v": "AP8=",
    }
    assert finish_tagged(None) is None


def test_column_choice() -> None:
    assert plan_column("x", ["INTEGER", "FLOAT"]).tagged
    assert plan_column("x", ["LIST<STRING>", "LIST<NOTHING>"]).arrow_type == pa.list_(pa.string())
    zoned = plan_column("x", ["ZONED DATETIME"], zones=["Z"], years=(2020, 2025))
    assert zoned.arrow_type == pa.timestamp("ns", tz="UTC") and zoned.zone == "Z"
    assert plan_column("x", ["ZONED DATETIME"], zones=["Z", "+01:00"]).tagged
    assert plan_column("x", ["LOCAL DATETIME"], years=(1500, 2000)).tagged  # beyond ns range
    assert plan_column("_x", ["STRING"]).name == "_prop._x"


def test_lists_keep_nulls_and_empty_lists() -> None:
    spec = plan_column("x", ["LIST<INTEGER>"])
    arr = to_arrow(spec, [[[1, None], [], None]], lambda i: f"row {i}")
    assert arr.to_pylist() == [[1, None], [], None]


def test_a_value_of_another_type_names_node_and_property() -> None:
    spec = plan_column("count", ["INTEGER"])
    with pytest.raises(Exception, match="node 4:x:7: property 'count' holds a float"):
        to_arrow(spec, [[1, 2.5]], lambda i: "node 4:x:7")

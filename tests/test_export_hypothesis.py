"""Property: exporting a random small graph reproduces it exactly (values, types, endpoints)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl.export import run_export
from etl.graph import admin
from etl.settings import Settings
from etl.stage import read_manifest

pytestmark = [pytest.mark.db, pytest.mark.slow]

_SCALARS = st.one_of(
    st.text(max_size=8),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.lists(st.text(max_size=3), max_size=3),
    st.lists(st.integers(min_value=-5, max_value=5), max_size=3),
)
_PROPS = st.dictionaries(st.sampled_from(["p", "q", "r s", "_u"]), _SCALARS, max_size=3)
_NODES = st.lists(st.tuples(st.sampled_from(["A", "B"]), _PROPS), min_size=1, max_size=12)


@st.composite
def graphs(draw: Any) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[int, int]]]:
    nodes = draw(_NODES)
    index = st.integers(min_value=0, max_value=len(nodes) - 1)
    rels = draw(st.lists(st.tuples(index, index), max_size=10))
    return nodes, rels


def _tag(value: Any) -> Any:
    """A Python value as the tagged-JSON "v" of its Neo4j type, for comparisons."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _column(prop: str) -> str:
    return f"_prop.{prop}" if prop.startswith("_") else prop


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(graph=graphs())
def test_export_reproduces_random_graphs(
    graph: Any, driver: Any, neo4j_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    nodes, rels = graph
    admin.wipe_database(driver, neo4j_settings.database)
    rows = [{"label": lab, "id": f"n{i}", "props": props} for i, (lab, props) in enumerate(nodes)]
    for lab in ("A", "B"):
        driver.execute_query(
            f"UNWIND $rows AS row WITH row WHERE row.label = '{lab}' "
            f"CREATE (n:{lab} {{id: row.id}}) SET n += row.props",
            {"rows": rows},
        )
    driver.execute_query(
        "UNWIND $rels AS rel MATCH (a {id: rel[0]}), (b {id: rel[1]}) CREATE (a)-[:R]->(b)",
        {"rels": [[f"n{a}", f"n{b}"] for a, b in rels]},
    )
    out = Path(tmp_path_factory.mktemp("hyp")) / "export"
    run_export(neo4j_settings, out_dir=out, all_labels=True, batch_size=5)
    manifest = read_manifest(out)
    exported: dict[str, dict[str, Any]] = {}
    for entry in manifest["tables"]:
        if entry["kind"] != "node":
            continue
        table = pq.read_table(out / entry["path"])
        assert table.column("id").to_pylist() == sorted(table.column("id").to_pylist())
        for row in table.to_pylist():
            exported[row["id"]] = {"row": row, "tagged": set(entry["tagged_columns"])}
    assert set(exported) == {r["id"] for r in rows}
    for r in rows:
        got = exported[r["id"]]
        for prop, value in r["props"].items():
            cell = got["row"][_column(prop)]
            if _column(prop) in got["tagged"]:
                cell = json.loads(cell)["v"]
                value = [_tag(v) for v in value] if isinstance(value, list) else _tag(value)
            assert _same(value, cell), (prop, value, cell)
    rel_rows = pq.read_table(out / "relationships/R.parquet").to_pylist() if rels else []
    pairs = sorted((r["_start.id"], r["_end.id"]) for r in rel_rows)
    assert pairs == sorted((f"n{a}", f"n{b}") for a, b in rels)

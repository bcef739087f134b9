"""Every Neo4j property type survives export → load (replay) → export unchanged.

The loader rebuilds values from the export's columns (``etl.graph.params``):
nanosecond DateTimes in a named zone or an offset,
LocalDateTime, Date, LocalTime, Time, Duration, 2D and 3D points, NaN, byte
arrays, lists, and tagged-JSON columns (a property whose type differs between
nodes). If any of them came back different, the second export would differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from etl.export import run_export
from etl.graph import admin
from etl.load import run_load
from etl.settings import Settings
from tests.test_load_support import cypher

pytestmark = pytest.mark.db

NODES = """
CREATE (a:Thing {id: 'a', dt: datetime('2025-05-01T10:00:00.123456789Z'),
  berlin: datetime('2025-05-01T10:00:00.5+02:00[Europe/Berlin]'),
  mixed_zone: datetime('2025-05-01T10:00:00Z'),
  ldt: localdatetime('2025-01-01T01:02:03.000000004'), d: date('1950-06-01'),
  t: localtime('12:34:56.000000789'), zt: time('12:00:00.000000001+05:30'),
  dur: duration('P1M2DT3.000000004S'), p2: point({x: 1.5, y: 2.5}),
  p3: point({longitude: 1.0, latitude: 2.0, height: 3.0}),
  num: 1, nan: 0.0 / 0.0, bytes: $bytes, words: ['a', 'b'], empty: [],
  stamps: [datetime('2025-01-01T00:00:00.000000001Z')], _hidden: 'underscore'})
CREATE (b:Thing {id: 'b', dt: datetime('2025-05-02T00:00:00Z'),
  berlin: datetime('2025-12-01T10:00:00+01:00[Europe/Berlin]'),
  mixed_zone: datetime('2025-05-01T12:00:00+02:00'), num: 2.5, words: ['c']})
CREATE (c:Thing:Extra {id: 'c'})
CREATE (a)-[:LINK {at: datetime('2025-05-01T10:00:00.000000007Z'), w: 0.5}]->(b)
CREATE (a)-[:LINK {w: 1.5}]->(b)
CREATE (b)-[:LINK]->(c)
"""


def _frames(stage: Path, path: str) -> pl.DataFrame:
    frame = pl.read_parquet(stage / path)
    drop = [c for c in frame.columns if c.endswith("element_id")]
    rest = [c for c in frame.columns if c not in drop]
    return frame.drop(drop).sort(
        [
            c
            for c in rest
            if frame.schema[c].is_temporal() or frame.schema[c] in (pl.String, pl.Float64, pl.Int64)
        ]
    )


def test_export_load_export_is_the_identity(
    driver: Any, neo4j_settings: Settings, tmp_path: Path
) -> None:
    cypher(driver, neo4j_settings, NODES, bytes=b"\x00\xff\x10")
    first = run_export(neo4j_settings, out_dir=tmp_path / "e1", labels=["Thing"]).out_dir
    admin.wipe_database(driver, neo4j_settings.database)
    loaded = run_load(neo4j_settings, in_dir=first, ledger_dir=tmp_path / "l")
    assert loaded.mode == "replay"
    assert loaded.validation is not None and loaded.validation.ok, loaded.validation
    second = run_export(neo4j_settings, out_dir=tmp_path / "e2", labels=["Thing"]).out_dir
    for path in ("nodes/Thing.parquet", "relationships/LINK.parquet"):
        assert_frame_equal(_frames(first, path), _frames(second, path), check_exact=True)
    manifest = (first / "manifest.json").read_text()
    assert "tagged" in manifest, "the scenario must exercise tagged-JSON columns"
    # Values read back exactly as written (nanoseconds, zones, types).
    row = cypher(
        driver,
        neo4j_settings,
        "MATCH (n:Thing {id: 'a'}) RETURN toString(n.dt) AS dt, toString(n.berlin) AS b, "
        "valueType(n.num) AS num, n.bytes AS bytes, "
        "toString(n.zt) AS zt, n._hidden AS hidden",
    )[0]
    assert row == {
        "dt": "2025-05-01T10:00:00.123456789Z",
        "b": "2025-05-01T10:00:00.5+02:00[Europe/Berlin]",
        "num": "INTEGER NOT NULL",
        "bytes": b"\x00\xff\x10",
        "zt": "12:00:00.000000001+05:30",
        "hidden": "underscore",
    }


EARLY = (
    "1969-12-31T23:59:59.999999999Z",
    "1969-12-31T23:59:58.5Z",
    "1970-01-01T00:00:01.999999999Z",
    # Neo4j's epochSeconds is its floored epochMillis / 1000, truncated: a sub-millisecond
    # fraction floors correctly, a millisecond fraction does not (etl.graph.arrow).
    "1800-01-01T00:00:00.000000001Z",
    "1960-01-01T00:00:00.5Z",
)


def test_instants_before_1970_keep_their_nanoseconds(
    driver: Any, neo4j_settings: Settings, tmp_path: Path
) -> None:
    """Epoch seconds are split with floor division: -1 ns is (-1 s, 999999999 ns)."""
    import pyarrow as pa

    from etl.stage import StageWriter, TableEntry

    ns = [-1, -1_500_000_000, 1_999_999_999]
    table = pa.table(
        {
            "_element_id": ["4:x:1", "4:x:2", "4:x:3"],
            "_labels": [["Thing"]] * 3,
            "id": ["a", "b", "c"],
            "at": pa.array(ns, pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        }
    )
    with StageWriter(tmp_path / "stage", stage="export") as w:
        w.write_table(TableEntry("nodes/Thing.parquet", "node", "Thing", key=["id"]), table)
        stage = w.commit()
    run_load(neo4j_settings, in_dir=stage, ledger_dir=tmp_path / "l")
    rows = cypher(
        driver, neo4j_settings, "MATCH (n:Thing) RETURN toString(n.at) AS at ORDER BY n.id"
    )
    assert [r["at"] for r in rows] == list(EARLY[:3])


def test_export_of_instants_before_1970(
    driver: Any, neo4j_settings: Settings, tmp_path: Path
) -> None:
    cypher(
        driver,
        neo4j_settings,
        "UNWIND $at AS at CREATE (:Thing {id: at, at: datetime(at)})",
        at=list(EARLY),
    )
    stage = run_export(neo4j_settings, out_dir=tmp_path / "e", labels=["Thing"]).out_dir
    admin.wipe_database(driver, neo4j_settings.database)
    run_load(neo4j_settings, in_dir=stage, ledger_dir=tmp_path / "l")
    rows = cypher(driver, neo4j_settings, "MATCH (n:Thing) RETURN n.id AS id, toString(n.at) AS at")
    assert {r["id"]: r["at"] for r in rows} == {a: a for a in EARLY}
    # The same for local datetimes (converted through a UTC datetime).
    admin.wipe_database(driver, neo4j_settings.database)
    cypher(
        driver,
        neo4j_settings,
        "UNWIND $at AS at CREATE (:Thing {id: at, at: localdatetime(left(at, size(at) - 1))})",
        at=list(EARLY),
    )
    stage = run_export(neo4j_settings, out_dir=tmp_path / "e2", labels=["Thing"]).out_dir
    admin.wipe_database(driver, neo4j_settings.database)
    run_load(neo4j_settings, in_dir=stage, ledger_dir=tmp_path / "l2")
    rows = cypher(driver, neo4j_settings, "MATCH (n:Thing) RETURN n.id AS id, toString(n.at) AS at")
    assert {r["id"]: r["at"] for r in rows} == {a: a[:-1] for a in EARLY}

"""`etl export` against the real server: exact round trip of every type, keys, atomicity, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from etl.errors import ExitCode, StageError
from etl.export import run_export
from etl.graph.read import GraphReader
from etl.progress import NullReporter
from etl.settings import Settings
from etl.stage import manifest_sha256, read_manifest, verify_stage

pytestmark = pytest.mark.db

NS = 1_000_000_000
BIG = "ü" * (1 << 19) + "x" * (1 << 20)  # > 1 MB in UTF-8
BERLIN = "2020-01-02T03:04:05.123456789[Europe/Berlin]"


def _run(driver: Any, query: str, **params: Any) -> None:
    driver.execute_query(query, params)


def _table(out: Path, path: str) -> pa.Table:
    return pq.read_table(out / path)


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = int((y if y >= 0 else y - 399) / 400)  # C-style truncation, as in the original
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _row(table: pa.Table, key: str, value: Any) -> dict[str, Any]:
    rows = [r for r in table.to_pylist() if r.get(key) == value]
    assert len(rows) == 1, rows
    return rows[0]


@pytest.fixture
def typed_graph(driver: Any) -> Any:
    _run(
        driver,
        """
        CREATE (:T {id: 'all', s: 'héllo ✓ 🎉', e: '', big: $big,
                    imax: 9223372036854775807, imin: -9223372036854775808,
                    nan: $nan, inf: $inf, ninf: $ninf, b: true,
                    ls: ['a', ''], le: [], li: [1, -2], lf: [1.5, $nan],
                    d: date('-0044-03-15'), ldt: localdatetime('2020-01-02T03:04:05.123456789'),
                    dt: datetime($berlin), lt: localtime('03:04:05.000000001'),
                    t: time('03:04:05.5+01:00'), du: duration('P1Y2M3DT4H5M6.000000007S'),
                    p: point({x: 1.5, y: 2.5}), p3: point({x: 1, y: 2, z: 3}), by: $by,
                    mixed: 1, zones: datetime('2020-01-01T00:00:00Z'),
                    far: localdatetime('3000-01-01T00:00:00')})
        CREATE (:T {id: 'sparse', ls: ['b'], dt: datetime('2021-06-01T12:00:00[Europe/Berlin]'),
                    mixed: 1.5, zones: datetime('2020-01-01T00:00:00+02:00')})
        CREATE (:T {id: 'text', mixed: 'x', le: ['x']})
        """,
        big=BIG,
        nan=math.nan,
        inf=math.inf,
        ninf=-math.inf,
        berlin=BERLIN,
        by=b"\x00\x01\xff",
    )
    return driver


def test_every_type_round_trips_exactly(
    typed_graph: Any, neo4j_settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    run_export(neo4j_settings, out_dir=out, labels=["T"])
    table = _table(out, "nodes/T.parquet")
    assert table.column("id").to_pylist() == ["all", "sparse", "text"]  # sorted by key
    # Python's datetime cannot hold nanoseconds or 44 BC: those columns are checked as integers.
    row = _row(table.drop_columns(["d", "ldt", "lt", "dt"]), "id", "all")
    assert row["s"] == "héllo ✓ 🎉" and row["e"] == "" and row["big"] == BIG
    assert (row["imax"], row["imin"]) == (2**63 - 1, -(2**63))
    assert math.isnan(row["nan"]) and row["inf"] == math.inf and row["ninf"] == -math.inf
    assert row["b"] is True and row["ls"] == ["a", ""] and row["li"] == [1, -2]
    assert row["lf"][0] == 1.5 and math.isnan(row["lf"][1])
    lists = table.column("le").to_pylist()
    assert lists == [[], None, ["x"]]  # empty ≠ null
    # Python's date cannot hold 44 BC; compare days since 1970-01-01.
    assert table.column("d").cast(pa.int32())[0].as_py() == _days_from_civil(-44, 3, 15)
    ints = {name: table.column(name).cast(pa.int64()).to_pylist()[0] for name in ("ldt", "lt")}
    assert ints["ldt"] == 1_577_934_245 * NS + 123_456_789
    assert ints["lt"] == (3 * 3600 + 4 * 60 + 5) * NS + 1
    dt = table.column("dt")
    assert dt.type == pa.timestamp("ns", tz="Europe/Berlin")
    assert dt.cast(pa.int64())[0].as_py() == (1_577_934_245 - 3600) * NS + 123_456_789
    assert row["t"]["offset_seconds"] == 3600
    assert table.column("t").combine_chunks().field("time").cast(pa.int64())[0].as_py() == (
        (3 * 3600 + 4 * 60 + 5) * NS + 500_000_000
    )
    assert row["du"] == {
        "months": 14,
        "days": 3,
        "seconds": 4 * 3600 + 5 * 60 + 6,
        "nanoseconds": 7,
    }
    assert row["p"] == {"srid": 7203, "x": 1.5, "y": 2.5, "z": None}
    assert row["p3"] == {"srid": 9157, "x": 1.0, "y": 2.0, "z": 3.0}
    assert row["by"] == b"\x00\x01\xff"
    tagged = dict(
        zip(
            table.column("id").to_pylist(),
            map(json.loads, table.column("mixed").to_pylist()),
            strict=True,
        )
    )
    assert tagged == {
        "all": {"t": "Integer", "v": 1},
        "sparse": {"t": "Float", "v": 1.5},
        "text": {"t": "String", "v": "x"},
    }
    zones = [json.loads(v) for v in table.column("zones").to_pylist() if v]
    assert {z["v"] for z in zones} == {"2020-01-01T00:00:00Z", "2020-01-01T00:00:00+02:00"}
    assert json.loads(row["far"]) == {"t": "LocalDateTime", "v": "3000-01-01T00:00:00"}
    entry = read_manifest(out)["tables"][0]
    assert sorted(entry["tagged_columns"]) == ["far", "mixed", "zones"]
    assert entry["columns"]["dt"]["zone"] == "Europe/Berlin"
    assert entry["key"] == ["id"]


def test_neo4j_refuses_nulls_in_lists(driver: Any) -> None:
    """Lists with nulls cannot be stored as properties, so an export never meets one."""
    with pytest.raises(Exception, match=r"(?i)null"):
        _run(driver, "CREATE (:T {x: [1, null]})")


def test_exports_are_byte_identical_and_keyed(
    driver: Any, neo4j_settings: Settings, tmp_path: Path
) -> None:
    _run(
        driver,
        """
        UNWIND range(1, 300) AS i
        CREATE (w:Workflow {id: 'w' + toString(1000 - i),
                            created_at: datetime('2025-03-01T00:00:00Z') + duration({minutes: i})})
        CREATE (w)-[:BELONGS_TO_WORKFLOW]->(:Event {id: 'e' + toString(i), type: 'complete',
                data: '{}', timestamp: datetime('2025-03-01T00:00:00.001Z')})
        CREATE (w)-[:BASED_ON_ISSUE]->(:Issue {repoFullName: 'o/r', number: toFloat(i % 7)})
        """,
    )
    _run(driver, "CREATE (:Workflow:Legacy {id: 'multi'}), (:Other {id: 1})")
    a = run_export(neo4j_settings, out_dir=tmp_path / "a", batch_size=97)
    b = run_export(neo4j_settings, out_dir=tmp_path / "b", batch_size=1000)
    sums = [{t["path"]: t["sha256"] for t in read_manifest(r.out_dir)["tables"]} for r in (a, b)]
    assert sums[0] == sums[1]
    assert set(sums[0]) == {
        "nodes/Workflow.parquet",
        "nodes/Event.parquet",
        "nodes/Issue.parquet",
        "nodes/Plan.parquet",
        "relationships/BELONGS_TO_WORKFLOW.parquet",
        "relationships/BASED_ON_ISSUE.parquet",
    }
    wf = _table(a.out_dir, "nodes/Workflow.parquet")
    ids = wf.column("id").to_pylist()
    assert ids == sorted(ids) and len(ids) == 301
    assert _row(wf, "id", "multi")["_labels"] == ["Legacy", "Workflow"]
    rel = _table(a.out_dir, "relationships/BASED_ON_ISSUE.parquet")
    assert rel.schema.names[:7] == [
        "_element_id",
        "_start_label",
        "_start_element_id",
        "_start.id",
        "_end_label",
        "_end_element_id",
        "_end.repoFullName",
    ]
    assert rel.column("_end.number").type == pa.float64()
    source = read_manifest(a.out_dir)["source"]
    assert source["counts_before"] == source["counts_after"]
    assert source["snapshot_time"].endswith("Z") and "@" not in source["uri"]
    issues = next(t for t in read_manifest(a.out_dir)["tables"] if t["name"] == "Issue")
    assert issues["duplicate_keys"] == 300 - 7


class _Boom(NullReporter):
    """A reporter that fails after the first batch, like Ctrl-C in the middle of a table."""

    def task(self, description: str, total: int | None = None) -> Any:
        from contextlib import contextmanager

        @contextmanager
        def cm() -> Any:
            class T:
                def advance(self, n: int = 1) -> None:
                    raise KeyboardInterrupt

            yield T()

        return cm()


def test_interrupted_export_leaves_old_stage_intact(
    driver: Any, neo4j_settings: Settings, tmp_path: Path
) -> None:
    _run(driver, "UNWIND range(1, 50) AS i CREATE (:Workflow {id: toString(i)})")
    out = tmp_path / "export"
    run_export(neo4j_settings, out_dir=out)
    before = manifest_sha256(out)
    _run(driver, "CREATE (:Workflow {id: 'new'})")
    with pytest.raises(KeyboardInterrupt):
        run_export(neo4j_settings, out_dir=out, reporter=_Boom())
    assert manifest_sha256(out) == before
    verify_stage(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no tmp, spill or old dir
    with pytest.raises(KeyboardInterrupt):
        run_export(neo4j_settings, out_dir=tmp_path / "fresh", reporter=_Boom())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_graph_changed_under_the_export(
    driver: Any, neo4j_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(driver, "CREATE (:Workflow {id: 'a'})")
    real = GraphReader.counts
    calls: list[int] = []

    def drifting(self: GraphReader) -> dict[str, dict[str, int]]:
        calls.append(1)
        counts = real(self)
        if len(calls) > 1:
            counts["labels"]["Workflow"] = counts["labels"].get("Workflow", 0) + 1
        return counts

    monkeypatch.setattr(GraphReader, "counts", drifting)
    with pytest.raises(StageError, match="graph changed under the export: Workflow: 1 → 2"):
        run_export(neo4j_settings, out_dir=tmp_path / "x")
    assert not (tmp_path / "x").exists()
    calls.clear()
    result = run_export(neo4j_settings, out_dir=tmp_path / "y", allow_concurrent_writes=True)
    assert read_manifest(result.out_dir)["source"]["concurrent_changes"] == ["Workflow: 1 → 2"]


def test_names_with_spaces_backticks_and_quotes(
    driver: Any, neo4j_settings: Settings, tmp_path: Path
) -> None:
    label, rel, prop = "My `Label` 'x\"", "REL `T` 'q'", "we`ird 'p\" } name"
    _run(
        driver,
        f"CREATE (a:`{label.replace('`', '``')}` {{id: 'a', `{prop.replace('`', '``')}`: 1,"
        f" _hidden: 2}})-[:`{rel.replace('`', '``')}` {{`{prop.replace('`', '``')}`: 'r'}}]->"
        f"(:`{label.replace('`', '``')}` {{id: 'b'}})",
    )
    out = tmp_path / "export"
    run_export(neo4j_settings, out_dir=out, all_labels=True)
    nodes = _table(out, f"nodes/{label}.parquet")
    assert _row(nodes, "id", "a")[prop] == 1 and _row(nodes, "id", "a")["_prop._hidden"] == 2
    rels = _table(out, f"relationships/{rel}.parquet")
    assert rels.to_pylist()[0][prop] == "r"
    assert (rels.column("_start.id")[0].as_py(), rels.column("_end.id")[0].as_py()) == ("a", "b")
    verify_stage(out)


def test_cli_export_verify_backup(
    driver: Any, run_cli: Any, neo4j_settings: Settings, tmp_path: Path
) -> None:
    _run(driver, "CREATE (:Workflow {id: 'w'})-[:BELONGS_TO_WORKFLOW]->(:Event {id: 'e'})")
    out = tmp_path / "export"
    result = run_cli("export", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "nodes/Workflow.parquet" in result.output and f"→ {out.resolve()}" in result.output
    result = run_cli("--json", "export", "--out", str(out), "--labels", "Workflow,Event")
    report = json.loads(result.stdout)
    assert report["tables"]["relationships/BELONGS_TO_WORKFLOW.parquet"]["rows"] == 1
    assert run_cli("verify", str(out)).exit_code == 0
    bad = run_cli("export", "--labels", "Workflow", "--all")
    assert bad.exit_code == ExitCode.USAGE and "--labels and --all" in bad.output
    root = tmp_path / "backups"
    assert run_cli("backup", "--root", str(root)).exit_code == 0
    listing = run_cli("--json", "backup", "--root", str(root), "--list")
    rows = json.loads(listing.stdout)
    assert len(rows) == 1 and rows[0]["ok"] and rows[0]["nodes"] == 2
    assert neo4j_settings.password is not None
    secret = neo4j_settings.password.reveal().encode()
    for path in [*out.rglob("*"), *root.rglob("*")]:
        assert not path.is_file() or secret not in path.read_bytes()

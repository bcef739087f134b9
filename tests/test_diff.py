"""`etl diff`: golden cases for every kind of difference, --out files, and the exit codes.

Stage directories are built in the test with ``StageWriter`` (``write_stage``),
a few rows each, so every expected number below can be checked by eye.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from click.testing import CliRunner

from etl.cli import cli
from etl.diff import run_diff
from etl.errors import ConfigError, ExitCode, ValidationFailed
from etl.stage import StageWriter, TableEntry

pytestmark = pytest.mark.unit

LABELS = pa.list_(pa.string())
REL = [
    ("_element_id", pa.string()),
    ("_start_label", pa.string()),
    ("_start_element_id", pa.string()),
    ("_start.id", pa.string()),
    ("_end_label", pa.string()),
    ("_end_element_id", pa.string()),
    ("_end.id", pa.string()),
]


def node_schema(*props: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([("_element_id", pa.string()), ("_labels", LABELS), *props])


def write_stage(
    path: Path,
    tables: dict[str, tuple[pa.Schema, list[dict[str, Any]]]],
    *,
    stage: str = "export",
    keys: dict[str, list[str]] | None = None,
) -> Path:
    """A stage directory from ``{"nodes/Label": (schema, rows)}``; parts via "nodes/L/part-0"."""
    with StageWriter(path, stage=stage) as w:
        for name, (schema, rows) in tables.items():
            folder, _, rest = name.partition("/")
            kind = {"nodes": "node", "relationships": "relationship"}.get(folder, folder)
            label = rest.split("/")[0]
            key = (keys or {}).get(label, ["id"] if kind == "node" else [])
            entry = TableEntry(f"{name}.parquet", kind, label, key=key)
            w.write_table(entry, pa.Table.from_pylist(rows, schema=schema))
        w.commit()
    return path


def wf(eid: str, wid: str | None, labels: list[str] | None = None, **props: Any) -> dict[str, Any]:
    return {"_element_id": eid, "_labels": labels or ["Workflow"], "id": wid, **props}


WF = node_schema(("id", pa.string()), ("status", pa.string()), ("n", pa.int64()))


def rel(start: str, end: str, eid: str = "5:r", **props: Any) -> dict[str, Any]:
    return {
        "_element_id": eid,
        "_start_label": "Workflow",
        "_start_element_id": f"4:{start}",
        "_start.id": start,
        "_end_label": "Event",
        "_end_element_id": f"4:{end}",
        "_end.id": end,
        **props,
    }


def table(result: Any, name: str) -> dict[str, Any]:
    found = [t for t in result.to_json()["tables"] if t["name"] == name]
    assert len(found) == 1, name
    return dict(found[0])


def test_identical_stages(tmp_path: Path) -> None:
    rows = [wf("4:1", "w1", status="ok", n=1), wf("4:2", "w2", status="ok", n=2)]
    a = write_stage(tmp_path / "a", {"nodes/Workflow": (WF, rows)})
    b = write_stage(tmp_path / "b", {"nodes/Workflow": (WF, rows)})
    result = run_diff(a, b)
    assert result.identical
    t = table(result, "Workflow")
    assert (t["status"], t["unchanged"], t["added"], t["removed"], t["changed"]) == (
        "identical",
        2,
        0,
        0,
        0,
    )


def test_added_removed_changed_nodes(tmp_path: Path) -> None:
    a = write_stage(
        tmp_path / "a",
        {
            "nodes/Workflow": (
                WF,
                [
                    wf("4:1", "w1", status="ok", n=1),
                    wf("4:2", "w2", status="ok", n=2),
                    wf("4:3", "w3", status="ok", n=3),
                ],
            )
        },
    )
    b = write_stage(
        tmp_path / "b",
        {
            "nodes/Workflow": (
                WF,
                [
                    wf("4:2", "w2", status="failed", n=20),
                    wf("4:3", "w3", status="ok", n=3),
                    wf("4:4", "w4", status="new", n=None),
                ],
            )
        },
    )
    result = run_diff(a, b, samples=5)
    t = table(result, "Workflow")
    assert t["key"] == ["id"]
    assert (t["added"], t["removed"], t["changed"], t["unchanged"]) == (1, 1, 1, 1)
    assert t["changed_columns"] == {"status": 1, "n": 1}
    assert t["samples"]["added"] == [
        {"id": "w4", "_labels": ["Workflow"], "status": "new", "n": None}
    ]
    assert t["samples"]["removed"] == [
        {"id": "w1", "_labels": ["Workflow"], "status": "ok", "n": 1}
    ]
    assert t["samples"]["changed"] == [
        {"key": {"id": "w2"}, "changes": {"status": ["ok", "failed"], "n": [2, 20]}}
    ]


def test_schema_drift_and_type_changes(tmp_path: Path) -> None:
    sa = node_schema(
        ("id", pa.string()), ("old", pa.string()), ("num", pa.float64()), ("code", pa.string())
    )
    sb = node_schema(
        ("id", pa.string()), ("new", pa.bool_()), ("num", pa.int64()), ("code", pa.int64())
    )
    a = write_stage(
        tmp_path / "a",
        {"nodes/Issue": (sa, [wf("4:1", "i1", ["Issue"], old="x", num=42.0, code="7")])},
    )
    b = write_stage(
        tmp_path / "b",
        {"nodes/Issue": (sb, [wf("4:1", "i1", ["Issue"], new=True, num=42, code=7)])},
    )
    t = table(run_diff(a, b), "Issue")
    assert t["schema"] == {
        "added": {"new": "Boolean"},
        "removed": {"old": "String"},
        "type_changed": {"num": ["Float64", "Int64"], "code": ["String", "Int64"]},
    }
    # 42.0 and 42 compare equal as numbers; a string and an int have no common type.
    assert t["changed_columns"] == {"code": 1}
    assert t["status"] == "different"


def test_relationship_rewired_and_relabelled(tmp_path: Path) -> None:
    schema = pa.schema(REL)
    a = write_stage(
        tmp_path / "a",
        {"relationships/BELONGS": (schema, [rel("w1", "e1"), rel("w1", "e2"), rel("w2", "e3")])},
    )
    moved = {**rel("w2", "e3"), "_start_label": "WorkflowRun"}
    b = write_stage(
        tmp_path / "b",
        {"relationships/BELONGS": (schema, [rel("w1", "e1"), rel("w1", "e9"), moved])},
    )
    t = table(run_diff(a, b), "BELONGS")
    assert t["key"] == ["_start.id", "_end.id"]
    assert (t["added"], t["removed"], t["changed"], t["unchanged"]) == (1, 1, 1, 1)
    assert t["changed_columns"] == {"_start_label": 1}
    assert t["samples"]["added"][0]["_end.id"] == "e9"
    assert t["samples"]["removed"][0]["_end.id"] == "e2"


def test_parallel_relationships_match_copy_by_copy(tmp_path: Path) -> None:
    schema = pa.schema([*REL, ("w", pa.int64())])
    a_rows = [rel("a", "b", "5:1", w=1), rel("a", "b", "5:2", w=1)]
    b_rows = [rel("a", "b", "5:7", w=1), rel("a", "b", "5:8", w=1), rel("a", "b", "5:9", w=2)]
    a = write_stage(tmp_path / "a", {"relationships/R": (schema, a_rows)})
    b = write_stage(tmp_path / "b", {"relationships/R": (schema, b_rows)})
    t = table(run_diff(a, b), "R")
    assert t["duplicate_keys"] == {"a": 1, "b": 2}
    assert (t["added"], t["removed"], t["changed"], t["unchanged"]) == (1, 0, 0, 2)
    assert t["samples"]["added"][0]["w"] == 2


def test_element_id_keyed_endpoints(tmp_path: Path) -> None:
    """An endpoint label without a property key is matched by its element id."""
    schema = pa.schema(
        [
            ("_element_id", pa.string()),
            ("_start_label", pa.string()),
            ("_start_element_id", pa.string()),
            ("_end_label", pa.string()),
            ("_end_element_id", pa.string()),
        ]
    )

    def r(s: str, e: str) -> dict[str, Any]:
        return {
            "_element_id": "5:x",
            "_start_label": "Tag",
            "_start_element_id": s,
            "_end_label": "Tag",
            "_end_element_id": e,
        }

    a = write_stage(tmp_path / "a", {"relationships/LINK": (schema, [r("4:1", "4:2")])})
    b = write_stage(tmp_path / "b", {"relationships/LINK": (schema, [r("4:1", "4:3")])})
    t = table(run_diff(a, b), "LINK")
    assert (t["added"], t["removed"]) == (1, 1)
    assert t["samples"]["added"][0]["_end_element_id"] == "4:3"


def test_multi_label_nodes(tmp_path: Path) -> None:
    schema = node_schema(("id", pa.string()))
    a = write_stage(
        tmp_path / "a",
        {"nodes/Person": (schema, [wf("4:1", "p1", ["Person"]), wf("4:2", "p2", ["Person"])])},
    )
    b = write_stage(
        tmp_path / "b",
        {
            "nodes/Person": (
                schema,
                [wf("4:1", "p1", ["Admin", "Person"]), wf("4:2", "p2", ["Person"])],
            )
        },
    )
    t = table(run_diff(a, b), "Person")
    assert t["changed_columns"] == {"_labels": 1}
    assert t["label_changes"] == [{"a": ["Person"], "b": ["Admin", "Person"], "rows": 1}]


def test_table_in_one_side_only_and_moved_keys(tmp_path: Path) -> None:
    schema = node_schema(("id", pa.string()))
    a = write_stage(
        tmp_path / "a",
        {"nodes/Workflow": (schema, [wf("4:1", "w1"), wf("4:2", "w2")])},
    )
    b = write_stage(
        tmp_path / "b",
        {
            "nodes/Workflow": (schema, [wf("4:2", "w2")]),
            "nodes/WorkflowRun": (schema, [wf("4:1", "w1", ["WorkflowRun"])]),
        },
    )
    result = run_diff(a, b)
    run = table(result, "WorkflowRun")
    assert (run["status"], run["rows_a"], run["rows_b"], run["added"]) == ("only_b", None, 1, 1)
    assert result.moved == [{"from": "Workflow", "to": "WorkflowRun", "key": ["id"], "rows": 1}]
    gone = run_diff(b, a)
    assert table(gone, "WorkflowRun")["status"] == "only_a"


def test_nan_null_and_lists_compare_by_value(tmp_path: Path) -> None:
    schema = node_schema(("id", pa.string()), ("f", pa.float64()), ("tags", pa.list_(pa.string())))
    a_rows = [
        wf("4:1", "a", f=math.nan, tags=["x", "y"]),
        wf("4:2", "b", f=None, tags=[]),
        wf("4:3", "c", f=1.0, tags=["x", "y"]),
        wf("4:4", None, f=2.0, tags=None),
    ]
    b_rows = [
        wf("4:1", "a", f=math.nan, tags=["x", "y"]),
        wf("4:2", "b", f=None, tags=None),  # empty list is not null
        wf("4:3", "c", f=1.0, tags=["y", "x"]),  # order matters in a list
        wf("4:4", None, f=2.0, tags=None),  # null keys match each other
    ]
    a = write_stage(tmp_path / "a", {"nodes/Thing": (schema, a_rows)})
    b = write_stage(tmp_path / "b", {"nodes/Thing": (schema, b_rows)})
    t = table(run_diff(a, b), "Thing")
    assert (t["changed"], t["unchanged"], t["added"], t["removed"]) == (2, 2, 0, 0)
    assert t["changed_columns"] == {"tags": 2}


def test_element_ids_ignored_unless_asked(tmp_path: Path) -> None:
    a = write_stage(tmp_path / "a", {"nodes/Workflow": (WF, [wf("4:1", "w1", status="s", n=1)])})
    b = write_stage(tmp_path / "b", {"nodes/Workflow": (WF, [wf("4:9", "w1", status="s", n=1)])})
    assert run_diff(a, b).identical
    strict = run_diff(a, b, compare_element_ids=True)
    assert table(strict, "Workflow")["changed_columns"] == {"_element_id": 1}


def test_partitioned_tables_are_one_table(tmp_path: Path) -> None:
    a = write_stage(
        tmp_path / "a",
        {
            "nodes/Workflow/part-00000": (WF, [wf("4:1", "w1", status="s", n=1)]),
            "nodes/Workflow/part-00001": (WF, [wf("4:2", "w2", status="s", n=2)]),
        },
    )
    b = write_stage(
        tmp_path / "b",
        {
            "nodes/Workflow": (
                WF,
                [wf("4:1", "w1", status="s", n=1), wf("4:2", "w2", status="s", n=2)],
            )
        },
    )
    result = run_diff(a, b)
    assert result.identical
    assert table(result, "Workflow")["rows_a"] == 2


def test_out_writes_every_differing_row(tmp_path: Path) -> None:
    a = write_stage(
        tmp_path / "a",
        {
            "nodes/Workflow": (
                WF,
                [wf("4:1", "w1", status="a", n=1), wf("4:2", "w2", status="a", n=2)],
            )
        },
    )
    b = write_stage(
        tmp_path / "b",
        {
            "nodes/Workflow": (
                WF,
                [wf("4:2", "w2", status="b", n=2), wf("4:3", "w3", status="c", n=3)],
            )
        },
    )
    out = tmp_path / "out"
    result = run_diff(a, b, out=out, samples=0)
    assert result.out_dir == out.resolve()
    folder = out / "nodes" / "Workflow"
    assert pl.read_parquet(folder / "removed.parquet")["id"].to_list() == ["w1"]
    assert pl.read_parquet(folder / "added.parquet").columns == [
        "id",
        "_element_id",
        "_labels",
        "status",
        "n",
    ]
    changed = pl.read_parquet(folder / "changed.parquet")
    assert changed.select("id", "_changed", "a.status", "b.status").rows() == [
        ("w2", ["status"], "a", "b")
    ]
    summary = json.loads((out / "diff.json").read_text())
    assert summary["files"] == {"nodes/Workflow": {"added": 1, "removed": 1, "changed": 1}}
    # A second run replaces its own earlier output, never some other directory.
    run_diff(a, b, out=out)
    other = tmp_path / "precious"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    with pytest.raises(ConfigError):
        run_diff(a, b, out=other)
    assert (other / "keep.txt").exists()


def test_unverifiable_input_raises(tmp_path: Path) -> None:
    a = write_stage(tmp_path / "a", {"nodes/Workflow": (WF, [wf("4:1", "w1", status="s", n=1)])})
    with pytest.raises(ValidationFailed):
        run_diff(a, tmp_path / "missing")


# ------------------------------------------------------------------------- CLI


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    a = write_stage(tmp_path / "a", {"nodes/Workflow": (WF, [wf("4:1", "w1", status="ok", n=1)])})
    b = write_stage(
        tmp_path / "b",
        {"nodes/Workflow": (WF, [wf("4:1", "w1", status="failed", n=1), wf("4:2", "w2", n=2)])},
    )
    return a, b


def test_cli_exit_0_when_identical(pair: tuple[Path, Path]) -> None:
    a, _ = pair
    res = invoke("diff", str(a), str(a))
    assert res.exit_code == ExitCode.OK
    assert res.stdout.splitlines()[-1] == "Identical: 1 tables, 1 rows match."


def test_cli_exit_1_and_plain_output(pair: tuple[Path, Path]) -> None:
    a, b = pair
    res = invoke("diff", str(a), str(b), "--samples", "1")
    assert res.exit_code == ExitCode.FAILURE
    lines = res.stdout.splitlines()
    assert lines[3:5] == [
        "table           key  A rows  B rows  added  removed  changed  unchanged",
        "nodes/Workflow  id        1       2      1        0        1          0",
    ]
    assert '    id="w2", _labels=["Workflow"], status=null, n=2' in lines
    assert '    id="w1": status: "ok" → "failed"' in lines
    assert lines[-1] == "Differences: 1 of 1 tables differ (added 1, removed 0, changed 1)."
    assert "\x1b[" not in res.stdout  # no colour codes when stdout is not a terminal


def test_cli_json_both_spellings(pair: tuple[Path, Path]) -> None:
    a, b = pair
    for args in (("--json", "diff", str(a), str(b)), ("diff", "--json", str(a), str(b))):
        res = invoke(*args)
        assert res.exit_code == ExitCode.FAILURE
        data = json.loads(res.stdout)
        assert data["identical"] is False
        assert data["summary"]["tables_differing"] == 1
        assert data["tables"][0]["changed_columns"] == {"status": 1}


@pytest.mark.parametrize("problem", ["missing", "tampered", "not-a-stage"])
def test_cli_exit_3_for_unusable_input(pair: tuple[Path, Path], problem: str) -> None:
    """A missing or unverifiable stage is exit 3, as for every other command (README)."""
    a, b = pair
    if problem == "missing":
        b = b.parent / "nope"
    elif problem == "tampered":
        with (b / "nodes" / "Workflow.parquet").open("r+b") as f:
            f.seek(8)
            f.write(b"\x00\x00")
    else:
        (b / "manifest.json").unlink()
    res = CliRunner().invoke(cli, ["diff", str(a), str(b)])
    assert res.exit_code == ExitCode.VALIDATION, res.output
    assert res.stderr.startswith("Error: ")


def test_cli_exit_2_for_bad_flags(pair: tuple[Path, Path]) -> None:
    a, b = pair
    res = CliRunner().invoke(cli, ["diff", str(a), str(b), "--migration", "nope"])
    assert res.exit_code == ExitCode.USAGE
    assert "no diff explanation for migration 'nope'" in res.output
    res = CliRunner().invoke(cli, ["diff", str(a)])
    assert res.exit_code == ExitCode.USAGE  # click usage error: B missing
    res = CliRunner().invoke(cli, ["diff", str(a), str(b), "--samples", "-1"])
    assert res.exit_code == ExitCode.USAGE

"""The transform stage around the pure migration: verification, lineage, determinism, CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from click.testing import CliRunner

from etl.cli import cli
from etl.errors import ExitCode
from etl.stage import StageWriter, TableEntry, manifest_sha256, verify_stage
from etl.transform import run_transform, summarize

pytestmark = pytest.mark.unit

SNAPSHOT = datetime(2025, 5, 31, 12, 0, tzinfo=UTC)
TS = pa.timestamp("ns", tz="UTC")


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _nodes(rows: list[dict[str, object]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


def write_export(path: Path) -> Path:
    """A tiny export stage: one good run with an issue, one rejected (metadata missing)."""
    wf_schema = pa.schema(
        [
            ("_element_id", pa.string()),
            ("_labels", pa.list_(pa.string())),
            ("id", pa.string()),
            ("created_at", TS),
            ("metadata", pa.string()),
        ]
    )
    ev_schema = pa.schema(
        [
            ("_element_id", pa.string()),
            ("_labels", pa.list_(pa.string())),
            ("id", pa.string()),
            ("type", pa.string()),
            ("data", pa.string()),
            ("timestamp", TS),
        ]
    )
    is_schema = pa.schema(
        [
            ("_element_id", pa.string()),
            ("_labels", pa.list_(pa.string())),
            ("repoFullName", pa.string()),
            ("number", pa.float64()),
        ]
    )
    rel_schema = pa.schema(
        [
            ("_element_id", pa.string()),
            ("_start_label", pa.string()),
            ("_start_element_id", pa.string()),
            ("_start.id", pa.string()),
            ("_end_label", pa.string()),
            ("_end_element_id", pa.string()),
            ("_end.id", pa.string()),
        ]
    )
    meta = json.dumps(
        {
            "workflowType": "resolve_issue",
            "postToGithub": True,
            "issue": {"number": 7, "repoFullName": "o/r"},
        }
    )
    with StageWriter(path, stage="export") as w:
        w.source = {
            "uri": "bolt://127.0.0.1:1",
            "database": "neo4j",
            "snapshot_time": SNAPSHOT.isoformat(),
        }
        w.write_table(
            TableEntry("nodes/Workflow.parquet", "node", "Workflow", key=["id"]),
            _nodes(
                [
                    {
                        "_element_id": "4:x:1",
                        "_labels": ["Workflow"],
                        "id": "w1",
                        "created_at": _ts("2025-05-01T10:00:00"),
                        "metadata": meta,
                    },
                    {
                        "_element_id": "4:x:2",
                        "_labels": ["Workflow"],
                        "id": "w2",
                        "created_at": _ts("2025-05-01T11:00:00"),
                        "metadata": None,
                    },
                ],
                wf_schema,
            ),
        )
        w.write_table(
            TableEntry("nodes/Event.parquet", "node", "Event", key=["id"]),
            _nodes(
                [
                    {
                        "_element_id": "4:x:3",
                        "_labels": ["Event"],
                        "id": "e1",
                        "type": "complete",
                        "data": '{"success":true}',
                        "timestamp": _ts("2025-05-01T10:05:00"),
                    }
                ],
                ev_schema,
            ),
        )
        w.write_table(
            TableEntry("nodes/Issue.parquet", "node", "Issue", key=["repoFullName", "number"]),
            _nodes(
                [
                    {
                        "_element_id": "4:x:4",
                        "_labels": ["Issue"],
                        "repoFullName": "o/r",
                        "number": 7.0,
                    }
                ],
                is_schema,
            ),
        )
        w.write_table(
            TableEntry(
                "relationships/BELONGS_TO_WORKFLOW.parquet", "relationship", "BELONGS_TO_WORKFLOW"
            ),
            _nodes(
                [
                    {
                        "_element_id": "5:x:1",
                        "_start_label": "Workflow",
                        "_start_element_id": "4:x:1",
                        "_start.id": "w1",
                        "_end_label": "Event",
                        "_end_element_id": "4:x:3",
                        "_end.id": "e1",
                    }
                ],
                rel_schema,
            ),
        )
        w.commit()
    return path


def test_transform_writes_a_verified_stage_with_lineage(tmp_path: Path) -> None:
    export = write_export(tmp_path / "export")
    result = run_transform(in_dir=export, out_dir=tmp_path / "transform")
    manifest = verify_stage(tmp_path / "transform", expect_stage="transform")
    assert manifest["inputs"][0]["manifest_sha256"] == manifest_sha256(export)
    assert manifest["migration"]["name"] == "workflow-to-workflowrun"
    runs = pl.read_parquet(tmp_path / "transform" / "nodes" / "WorkflowRun.parquet")
    assert runs.select("id", "workflowType", "status").rows() == [
        ("w1", "resolveIssue", "completed")
    ]
    rejected = pl.read_parquet(tmp_path / "transform" / "rejected" / "Workflow.parquet")
    assert rejected.select("id", "reason").rows() == [("w2", "metadata_missing")]
    assert result.report["workflows_in"] == 2
    assert result.report["runs_out"] + sum(result.report["rejected"].values()) == 2


def test_transform_output_is_byte_identical_on_rerun(tmp_path: Path) -> None:
    export = write_export(tmp_path / "export")
    run_transform(in_dir=export, out_dir=tmp_path / "t1")
    run_transform(in_dir=export, out_dir=tmp_path / "t2")
    m1 = json.loads((tmp_path / "t1" / "manifest.json").read_text())
    m2 = json.loads((tmp_path / "t2" / "manifest.json").read_text())
    assert [(t["path"], t["sha256"]) for t in m1["tables"]] == [
        (t["path"], t["sha256"]) for t in m2["tables"]
    ]


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    export = write_export(tmp_path / "export")
    result = run_transform(in_dir=export, out_dir=tmp_path / "t", dry_run=True)
    assert result.out_dir is None
    assert result.report["runs_out"] == 1
    assert not (tmp_path / "t").exists()


def test_tampered_export_is_refused(tmp_path: Path) -> None:
    export = write_export(tmp_path / "export")
    with (export / "nodes" / "Issue.parquet").open("r+b") as f:
        f.seek(10)
        f.write(b"\x00\x01")
    result = CliRunner().invoke(
        cli, ["transform", "--in", str(export), "--out", str(tmp_path / "t")]
    )
    assert result.exit_code == ExitCode.VALIDATION, result.output
    assert "nodes/Issue.parquet: sha256 differs" in result.output
    assert not (tmp_path / "t").exists()


def test_cli_summary_list_and_strict(tmp_path: Path) -> None:
    export = write_export(tmp_path / "export")
    runner = CliRunner()
    listed = runner.invoke(cli, ["transform", "--list"])
    assert listed.exit_code == 0
    assert "workflow-to-workflowrun" in listed.output
    ok = runner.invoke(cli, ["transform", "--in", str(export), "--out", str(tmp_path / "t")])
    assert ok.exit_code == 0, ok.output
    assert "WorkflowRuns out:" in ok.output and "metadata_missing" in ok.output
    strict = runner.invoke(
        cli, ["transform", "--strict", "--in", str(export), "--out", str(tmp_path / "t")]
    )
    assert strict.exit_code == ExitCode.VALIDATION
    bad = runner.invoke(cli, ["transform", "--stale-after", "soon", "--in", str(export)])
    assert bad.exit_code == ExitCode.USAGE
    assert "not a duration" in bad.output


def _write_sorted_export(path: Path) -> Path:
    """An export whose manifest claims each table's order, with many events per run."""
    rel_fields = [
        "_element_id",
        "_start_label",
        "_start_element_id",
        "_start.id",
        "_end_label",
        "_end_element_id",
        "_end.id",
    ]
    rel_schema = pa.schema([(c, pa.string()) for c in rel_fields])
    meta = json.dumps({"workflowType": "resolve_issue", "postToGithub": False})
    workflows = [
        {
            "_element_id": f"4:x:w{i}",
            "_labels": ["Workflow"],
            "id": f"w{i}",
            "created_at": _ts("2025-05-01T10:00:00"),
            # Every third run has no metadata: rejected, so its relationships keep "Workflow".
            "metadata": None if i % 3 == 0 else meta,
        }
        for i in range(6)
    ]
    events = [
        {
            "_element_id": f"4:x:e{j:03}",
            "_labels": ["Event"],
            "id": f"e{j:03}",
            "type": "complete" if j % 10 == 9 else "progress",
            "data": '{"t":"String","v":"x"}' if j % 2 else None,
            "timestamp": _ts("2025-05-01T10:05:00"),
        }
        for j in range(60)
    ]
    belongs = [
        {
            "_element_id": f"5:x:b{j:03}",
            "_start_label": "Workflow",
            "_start_element_id": f"4:x:w{j // 10}",
            "_start.id": f"w{j // 10}",
            "_end_label": "Event",
            "_end_element_id": f"4:x:e{j:03}",
            "_end.id": f"e{j:03}",
        }
        for j in range(60)
    ]
    nxt = [
        {**b, "_element_id": f"5:x:n{j:03}", "_start_label": "Event", "_start.id": f"e{j:03}"}
        for j, b in enumerate(belongs[1:])
    ]
    users = [{"_element_id": f"4:x:u{k}", "_labels": ["User"], "id": f"u{k}"} for k in range(9)]
    with StageWriter(path, stage="export") as w:
        w.source = {"snapshot_time": SNAPSHOT.isoformat()}

        def table(name: str, kind: str, rows: list[dict[str, object]], sort: list[str]) -> None:
            folder = "nodes" if kind == "node" else "relationships"
            schema = rel_schema if kind == "relationship" else None
            data = pa.Table.from_pylist(rows, schema=schema)
            if name == "Workflow":
                data = data.cast(
                    pa.schema([*[*data.schema][:3], ("created_at", TS), ("metadata", pa.string())])
                )
            if name == "Event":
                data = data.set_column(5, "timestamp", data["timestamp"].cast(TS))
            extra = {"sort": sort}
            if name == "Event":
                extra["columns"] = {"timestamp": {"zone": "Z"}, "data": {"tagged": True}}
            tagged = ["data"] if name == "Event" else []
            entry = TableEntry(
                f"{folder}/{name}.parquet", kind, name, tagged_columns=tagged, extra=extra
            )
            w.write_table(entry, data)

        node_sort = ["id", "_element_id"]
        rel_sort = ["_start.id", "_end.id", "_element_id"]
        table("Workflow", "node", workflows, node_sort)
        table("Event", "node", events, node_sort)
        table("User", "node", users, node_sort)
        table("BELONGS_TO_WORKFLOW", "relationship", belongs, rel_sort)
        table("NEXT_EVENT", "relationship", nxt, rel_sort)
        w.commit()
    return path


def test_streamed_tables_match_collected_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tables copied batch by batch give the bytes of the collected path, in many row groups."""
    import pyarrow.parquet as pq

    import etl.stage
    import etl.transform

    monkeypatch.setattr(etl.stage, "ROW_GROUP_SIZE", 7)
    monkeypatch.setattr(etl.transform, "STREAM_BATCH_ROWS", 5)
    copied: list[str] = []
    original = etl.transform._write_streamed

    def spy(writer: StageWriter, entry: TableEntry, *args: Any) -> None:
        copied.append(entry.path)
        original(writer, entry, *args)

    monkeypatch.setattr(etl.transform, "_write_streamed", spy)
    export = _write_sorted_export(tmp_path / "export")
    streamed = run_transform(in_dir=export, out_dir=tmp_path / "streamed")
    assert sorted(copied) == [
        "nodes/Event.parquet",
        "nodes/User.parquet",
        "relationships/BELONGS_TO_WORKFLOW.parquet",
        "relationships/NEXT_EVENT.parquet",
    ]
    monkeypatch.setattr(etl.transform, "_presorted", lambda manifest: {})
    collected = run_transform(in_dir=export, out_dir=tmp_path / "collected")
    m1 = verify_stage(tmp_path / "streamed")
    m2 = verify_stage(tmp_path / "collected")
    strip = ("created_at", "manifest_sha256", "report_sha256")
    assert {k: v for k, v in m1.items() if k not in strip} == {
        k: v for k, v in m2.items() if k not in strip
    }
    for key in ("timings_s", "rows_per_s"):
        streamed.report.pop(key)
        collected.report.pop(key)
    assert streamed.report == collected.report
    belongs = pl.read_parquet(tmp_path / "streamed" / "relationships/BELONGS_TO_WORKFLOW.parquet")
    assert belongs.filter(pl.col("_start_label") == "Workflow")[
        "_start.id"
    ].unique().sort().to_list() == ["w0", "w3"]
    assert pq.ParquetFile(tmp_path / "streamed" / "nodes/Event.parquet").num_row_groups == 9
    event = next(t for t in m1["tables"] if t["path"] == "nodes/Event.parquet")
    assert event["tagged_columns"] == ["data"]
    assert event["role"] == "passthrough"
    assert {t["path"] for t in m1["tables"]} >= {"nodes/User.parquet", "nodes/Event.parquet"}


def test_passes_slices_and_batches_do_not_change_the_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events in many passes, Workflows in many slices, tables written in small batches."""
    import etl.transform
    from etl.migrations import workflow_runs, workflow_runs_events

    export = _write_sorted_export(tmp_path / "export")
    whole = run_transform(in_dir=export, out_dir=tmp_path / "whole")
    monkeypatch.setattr(workflow_runs_events, "PASS_ROWS", 7)
    monkeypatch.setattr(workflow_runs, "CLASSIFY_ROWS", 2)
    monkeypatch.setattr(etl.transform, "STREAM_BATCH_ROWS", 3)
    small = run_transform(in_dir=export, out_dir=tmp_path / "small")
    m1, m2 = verify_stage(tmp_path / "whole"), verify_stage(tmp_path / "small")
    assert [(t["path"], t["sha256"]) for t in m1["tables"]] == [
        (t["path"], t["sha256"]) for t in m2["tables"]
    ]
    for key in ("timings_s", "rows_per_s"):
        whole.report.pop(key)
        small.report.pop(key)
    assert whole.report == small.report


def test_summary_of_a_migration_without_figures_lists_the_tables() -> None:
    report = {"migration": "not-registered", "tables": {"nodes/A": 3, "rejected/A": 1}}
    assert summarize(report).splitlines() == [
        "nodes/A rows:                 3",
        "rejected/A rows:              1",
    ]

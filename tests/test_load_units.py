"""Pure parts of the loader: value encoding, the Cypher it generates, ledger rules, batching."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from etl.errors import ConfigError, StageError
from etl.graph.params import (
    _split_ns,
    decode_tagged,
    encode_column,
    plan_columns,
    value_expr,
)
from etl.graph.write import Endpoint, NodeOp, RelOp, node_statement, rel_statement
from etl.load_command import load_command
from etl.load_input import batch_digest, batches
from etl.load_ledger import LEDGER, open_ledger, plan_ledger, read_state
from etl.progress import NullReporter
from etl.settings import load_settings

pytestmark = pytest.mark.unit


def test_epoch_split_floors_before_1970() -> None:
    ns = pa.array([-1, -1_500_000_000, 0, 1_999_999_999, None], pa.int64())
    assert _split_ns(ns) == (
        [-1, -2, 0, 1, None],
        [999_999_999, 500_000_000, 0, 999_999_999, None],
    )


def test_datetime_zones_and_encoding() -> None:
    schema = pa.schema(
        [
            ("a", pa.timestamp("ns", tz="UTC")),
            ("b", pa.timestamp("ns", tz="UTC")),
            ("c", pa.timestamp("us", tz="Europe/Berlin")),
            ("_prop._x", pa.string()),
        ]
    )
    plans = plan_columns(schema, schema.names, zone_hints={"b": "UTC"}, null_counts={"c": 0})
    assert [(p.prop, p.kind, p.zone, p.nullable) for p in plans] == [
        ("a", "datetime", "Z", True),  # Arrow says UTC for Neo4j's "Z"
        ("b", "datetime", "UTC", True),  # the export recorded a named UTC zone
        ("c", "datetime", "Europe/Berlin", False),
        ("_x", "plain", None, True),
    ]
    col = pa.array([1_500, None], pa.int64()).cast(pa.timestamp("us", tz="Europe/Berlin"))
    assert encode_column(plans[2], col) == {"c2s": [0, None], "c2n": [1_500_000, None]}
    assert value_expr(plans[2]) == (
        "datetime({epochSeconds: $c2s[i], nanosecond: $c2n[i], timezone: $zones.c2})"
    )
    assert value_expr(plans[0]).startswith("CASE WHEN $c0s[i] IS NULL THEN null ELSE datetime(")


def test_tagged_values_become_driver_values() -> None:
    nan = decode_tagged('{"t":"Float","v":"NaN"}')
    assert nan is not None and math.isnan(nan["v"])
    assert decode_tagged('{"t":"ByteArray","v":"AP8="}') == {"t": "ByteArray", "v": b"\x00\xff"}
    assert decode_tagged('{"t":"Point","v":{"srid":7203,"x":1.0,"y":2.0,"z":null}}') == {
        "t": "Point",
        "v": {"srid": 7203, "x": 1.0, "y": 2.0},
    }
    assert decode_tagged('{"t":"DateTime","v":"2025-01-01T00:00Z[UTC]"}') == {
        "t": "DateTime",
        "v": "2025-01-01T00:00Z[UTC]",
    }
    assert decode_tagged(None) is None


def test_generated_cypher_quotes_names_and_takes_values_as_parameters() -> None:
    plans = plan_columns(pa.schema([("we`ird", pa.string())]), ["we`ird"])
    op = NodeOp("La`bel", "key", (plans[0],), tuple(plans), remove_props=("old",))
    text = node_statement(op).text
    assert "MERGE (n:`La``bel` {`we``ird`: $c0[i]})" in text
    assert "REMOVE n.`old`" in text
    rel = RelOp("T", Endpoint("A", "eid"), Endpoint("B", "key", ("id",)), multi=True)
    rtext = rel_statement(rel).text
    assert "WHERE elementId(a) = $ae[i]" in rtext and "(b:`B` {`id`: $b0[i]})" in rtext
    assert "FOREACH (j IN range($lo[i] + have, $hi[i] - 1)" in rtext


def test_batches_cut_the_same_way_whatever_the_row_groups(tmp_path: Path) -> None:
    table = pa.table({"x": list(range(100))})
    pq.write_table(table, tmp_path / "a.parquet", row_group_size=7)
    pq.write_table(table, tmp_path / "b.parquet", row_group_size=64)
    keep = pa.array([i % 3 != 0 for i in range(100)])
    a = list(batches(tmp_path / "a.parquet", 10, keep=keep))
    b = list(batches(tmp_path / "b.parquet", 10, keep=keep))
    assert [t.num_rows for t in a] == [10] * 6 + [6]
    assert [batch_digest(t) for t in a] == [batch_digest(t) for t in b]
    assert a[0].column("x").to_pylist() == [1, 2, 4, 5, 7, 8, 10, 11, 13, 14]


def _write_ledger(path: Path, *lines: Mapping[str, object], torn: bool = False) -> None:
    path.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(x) + "\n" for x in lines)
    (path / LEDGER).write_text(text + ('{"t": "batch", "st' if torn else ""))


def test_ledger_decisions(tmp_path: Path) -> None:
    header = {"t": "header", "input_manifest_sha256": "abc", "input": "in", "started_at": "t0"}
    batch = {"t": "batch", "step": "nodes/X", "batch": 0, "sha256": "d0", "rows": 5}
    new = plan_ledger(tmp_path / "none", input_sha="abc", resume=False, restart=False)
    assert not new.resuming and new.note == ""

    _write_ledger(tmp_path / "l", header, batch, torn=True)
    state = read_state(tmp_path / "l" / LEDGER)
    assert state.batches == {("nodes/X", 0): "d0"} and not state.finished
    with pytest.raises(StageError, match="--resume") as refused:
        plan_ledger(tmp_path / "l", input_sha="abc", resume=False, restart=False)
    assert "1 batches committed" in str(refused.value)
    with pytest.raises(StageError, match="another input"):
        plan_ledger(tmp_path / "l", input_sha="zzz", resume=True, restart=False)
    with pytest.raises(ConfigError, match="exclude each other"):
        plan_ledger(tmp_path / "l", input_sha="abc", resume=True, restart=True)
    resumed = plan_ledger(tmp_path / "l", input_sha="abc", resume=True, restart=False)
    assert resumed.resuming and resumed.state.batches
    restarted = plan_ledger(tmp_path / "l", input_sha="abc", resume=False, restart=True)
    ledger = open_ledger(tmp_path / "l", restarted, {"input_manifest_sha256": "abc"})
    ledger.record("done")
    ledger.close()
    assert len(list((tmp_path / "l").glob("ledger.*.jsonl"))) == 1
    finished = plan_ledger(tmp_path / "l", input_sha="other", resume=False, restart=False)
    assert finished.archive_old and "archived" in finished.note


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"dry_run": True, "rollback": True}, "--rollback and --dry-run exclude each other"),
        ({"rollback": True, "resume": True}, "--rollback and --resume exclude each other"),
        ({"mode": "offline", "resume": True}, "--resume belongs to online loads"),
        ({"mode": "offline", "rollback": True}, "--rollback belongs to online loads"),
        ({"replace": True}, "--replace belongs to --mode offline"),
    ],
)
def test_conflicting_flags_name_both(flags: dict[str, object], message: str) -> None:
    settings = load_settings(environ={}, env_file=Path("/nonexistent"))
    options: dict[str, object] = {
        "in_dir": Path("x"),
        "ledger_dir": Path("l"),
        "export_dir": None,
        "batch_size": 10,
        "resume": False,
        "restart": False,
        "rollback": False,
        "dry_run": False,
        "break_lock": False,
        "into_nonempty": False,
        "mode": "online",
        **flags,
    }
    with pytest.raises(ConfigError, match=message):
        load_command(settings, reporter=NullReporter(), **options)  # type: ignore[arg-type]


@pytest.mark.unit
def test_in_place_defers_only_constraints_on_labels_it_does_not_write() -> None:
    from etl.graph.schema import SchemaItem
    from etl.load_steps import IN_PLACE, REPLAY
    from etl.load_target import deferred_schema

    wanted = [
        SchemaItem("Event", ("id",), True),
        SchemaItem("Issue", ("repoFullName", "number"), False),
        SchemaItem("Plan", ("id",), True),
        SchemaItem("WorkflowRun", ("id",), True),
    ]
    written = ("WorkflowRun", "Issue")
    assert [i.label for i in deferred_schema(wanted, IN_PLACE, written)] == ["Event", "Plan"]
    assert deferred_schema(wanted, REPLAY) == []

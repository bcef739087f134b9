"""Fidelity without a server: fixed-offset columns in ``etl diff``, tagged DateTimes and Times
with offsets in seconds, the export's narrowed tag expressions, and the replay check.

The corpus round trips against real servers are in ``tests/test_fidelity.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner

from etl.cli import cli
from etl.diff import run_diff
from etl.errors import StageError
from etl.graph.arrow import UNEXPECTED, tag_expression
from etl.graph.tagged import datetime_arg, decode_tagged, time_arg
from etl.load_input import open_input
from etl.replay_check import check_replay
from etl.stage import StageWriter, TableEntry
from tests.test_diff import node_schema, table, write_stage

pytestmark = pytest.mark.unit

NS = 1_000_000_000


def _offset_stage(path: Path, tz: str, values: list[int]) -> Path:
    schema = node_schema(("id", pa.string()), ("at", pa.timestamp("ns", tz=tz)))
    rows = [
        {"_element_id": f"4:{i}", "_labels": ["T"], "id": f"n{i}", "at": v}
        for i, v in enumerate(values)
    ]
    return write_stage(path, {"nodes/T": (schema, rows)})


def test_diff_reads_fixed_offset_datetime_columns(tmp_path: Path) -> None:
    """Defect 4: Polars panicked ("unable to parse time zone: '-12:34'") on these columns."""
    values = [-NS - 1, 0, 1_700_000_000 * NS + 7]
    a = _offset_stage(tmp_path / "a", "-12:34", values)
    same = _offset_stage(tmp_path / "same", "-12:34", values)
    moved = _offset_stage(tmp_path / "moved", "-12:34", [values[0], values[1], values[2] + 1])
    rezoned = _offset_stage(tmp_path / "rezoned", "+00:17:30", values)

    assert run_diff(a, same).identical
    t = table(run_diff(a, moved, samples=1), "T")
    assert (t["changed"], t["unchanged"], t["changed_columns"]) == (1, 2, {"at": 1})
    t = table(run_diff(a, rezoned), "T")
    assert t["status"] == "different"
    assert t["schema"]["type_changed"] == {
        "at": [
            "Datetime(time_unit='ns', time_zone='-12:34')",
            "Datetime(time_unit='ns', time_zone='+00:17:30')",
        ]
    }
    runner = CliRunner()
    ok = runner.invoke(cli, ["diff", str(a), str(same)])
    assert ok.exit_code == 0, ok.output
    differs = runner.invoke(cli, ["diff", str(a), str(moved), "--out", str(tmp_path / "out")])
    assert differs.exit_code == 1, differs.output
    assert (tmp_path / "out" / "nodes" / "T" / "changed.parquet").is_file()


@pytest.mark.parametrize(
    ("text", "arg"),
    [
        # Neo4j prints these offsets but does not parse them back: built from a map.
        (
            "1970-01-01T00:00:00-00:44:30[Africa/Monrovia]",
            {"epochSeconds": 2670, "nanosecond": 0, "timezone": "Africa/Monrovia"},
        ),
        (
            "0001-01-01T00:00:00.000000005+00:17:30[Europe/Amsterdam]",
            {"epochSeconds": -62135597850, "nanosecond": 5, "timezone": "Europe/Amsterdam"},
        ),
        (
            "-0001-01-01T00:00:00+00:53:28[Europe/Berlin]",
            {"epochSeconds": -62198758408, "nanosecond": 0, "timezone": "Europe/Berlin"},
        ),
        (
            "1970-01-01T00:17:30.000000007+00:17:30",
            {"year": 1970, "month": 1, "day": 1, "hour": 0, "minute": 17, "second": 30,
             "nanosecond": 7, "timezone": "+00:17:30"},
        ),
        # Beyond ±2^63 ms Neo4j's epochSeconds wraps around: the fields, with the zone.
        (
            "-999999999-01-01T00:00:00+00:17:30[Europe/Amsterdam]",
            {"year": -999999999, "month": 1, "day": 1, "hour": 0, "minute": 0, "second": 0,
             "nanosecond": 0, "timezone": "Europe/Amsterdam"},
        ),
    ],
)  # fmt: skip
def test_datetime_texts_become_what_datetime_rebuilds_exactly(text: str, arg: Any) -> None:
    assert datetime_arg(text) == arg


@pytest.mark.parametrize(
    "text",
    [
        "+999999999-12-31T23:59:59.999999999+18:00",
        "2022-10-30T02:30:00+01:00[Europe/Stockholm]",
        "2025-01-01T00:00Z[UTC]",
    ],
)
def test_other_datetime_texts_parse_back_as_they_are(text: str) -> None:
    assert datetime_arg(text) == text


def test_time_texts_and_lists() -> None:
    assert time_arg("12:00:00.000000001-00:44:30") == {
        "hour": 12, "minute": 0, "second": 0, "nanosecond": 1, "timezone": "-00:44:30",
    }  # fmt: skip
    assert time_arg("12:00:00+05:30") == "12:00:00+05:30"
    decoded = decode_tagged(
        json.dumps({"t": "List<Time>", "v": ["01:00:00+00:17:30", "12:00:00Z"]})
    )
    assert decoded == {
        "t": "List<Time>",
        "v": [
            {"hour": 1, "minute": 0, "second": 0, "nanosecond": 0, "timezone": "+00:17:30"},
            "12:00:00Z",
        ],
    }
    assert decode_tagged('{"t":"ByteArray","v":""}') == {"t": "ByteArray", "v": b""}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"t":"Nope","v":1}', "unknown type tag"),
        ('{"t":"DateTime","v":"yesterday"}', "not a Neo4j DateTime"),
        ('{"t":"ByteArray","v":"***"}', "Non-base64|Incorrect padding|Only base64"),
        ('{"t":"Float","v":"NaNa"}', "NaNa"),
        ("not json", "Expecting value"),
    ],
)
def test_values_the_replay_cannot_rebuild_are_refused(text: str, why: str) -> None:
    with pytest.raises((ValueError, KeyError), match=why):
        decode_tagged(text)


def test_export_cases_follow_the_profile() -> None:
    """Only the profile's types are cased (planning cost); anything else is flagged."""
    narrow = tag_expression("n.x", ["ZONED DATETIME"])
    assert "IS :: ZONED DATETIME" in narrow and "IS :: STRING" not in narrow
    assert "IS :: LIST<NOTHING>" in narrow  # empty lists and byte arrays, whatever the profile
    assert f"ELSE {{t: '{UNEXPECTED}'" in narrow
    full = tag_expression("n.x")
    assert "ELSE" not in full and full.count("WHEN") > 4 * narrow.count("WHEN")


def test_replay_check_names_the_row_property_and_value(tmp_path: Path) -> None:
    rows = pa.table(
        {
            "_element_id": ["4:x:1", "4:x:2", "4:x:3"],
            "_labels": [["Thing"]] * 3,
            "id": ["a", "b", "c"],
            "v": ['{"t":"Integer","v":1}', '{"t":"Float","v":"NaN"}', '{"t":"Nope","v":2}'],
        }
    )
    with StageWriter(tmp_path / "stage", stage="backup") as w:
        w.write_table(
            TableEntry("nodes/Thing.parquet", "node", "Thing", key=["id"], tagged_columns=["v"]),
            rows,
        )
        stage = w.commit()
    with pytest.raises(StageError) as e:
        check_replay(open_input(stage))
    message = str(e.value)
    assert 'nodes/Thing row 2 (id \'c\'): property \'v\' = {"t":"Nope","v":2}' in message
    assert "unknown type tag 'Nope'" in message and "nothing was written or wiped" in message

"""`etl verify`: every kind of tampering is found, listed, and exits with code 3."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

from etl.cli import cli
from etl.errors import ExitCode
from etl.stage import MANIFEST, StageWriter, TableEntry

pytestmark = pytest.mark.unit


def _stage(tmp_path: Path) -> Path:
    out = tmp_path / "export"
    with StageWriter(out, stage="export") as w:
        w.source = {"uri": "bolt://127.0.0.1:1", "database": "neo4j"}
        for name in ("A", "B"):
            table = pa.table(
                {
                    "_element_id": [f"4:x:{i}" for i in range(100)],
                    "id": [f"{name}{i}" for i in range(100)],
                }
            )
            w.write_table(TableEntry(f"nodes/{name}.parquet", "node", name, key=["id"]), table)
        w.report = {"rows": 200}
        w.commit()
    return out


def _verify(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["verify", str(path)])
    return result.exit_code, result.output


def test_intact_stage_verifies(tmp_path: Path) -> None:
    code, out = _verify(_stage(tmp_path))
    assert code == 0
    assert "matches its manifest" in out and "2 tables, 200 rows" in out


def _missing(p: Path) -> None:
    (p / "nodes/A.parquet").unlink()


def _extra(p: Path) -> None:
    (p / "nodes/C.parquet").write_bytes(b"PAR1")


def _truncated(p: Path) -> None:
    f = p / "nodes/A.parquet"
    f.write_bytes(f.read_bytes()[:-10])


def _altered(p: Path) -> None:
    f = p / "nodes/B.parquet"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))


def _manifest_edited(p: Path) -> None:
    m = json.loads((p / MANIFEST).read_text())
    m["source"]["database"] = "other"
    (p / MANIFEST).write_text(json.dumps(m))


def _manifest_rows_edited(p: Path) -> None:
    m = json.loads((p / MANIFEST).read_text())
    m["tables"][0]["rows"] = 99
    (p / MANIFEST).write_text(json.dumps(m))


def _report_altered(p: Path) -> None:
    (p / "report.json").write_text("{}")


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (_missing, "nodes/A.parquet: missing"),
        (_extra, "nodes/C.parquet: extra file not listed in the manifest"),
        (_truncated, "nodes/A.parquet: size"),
        (_altered, "nodes/B.parquet: sha256 differs from the manifest (file altered)"),
        (_manifest_edited, "manifest.json: edited after it was written"),
        (_manifest_rows_edited, "nodes/A.parquet: 100 rows, manifest says 99"),
        (_report_altered, "report.json: sha256 differs"),
    ],
)
def test_tampering_is_listed_with_exit_3(tmp_path: Path, tamper, expected: str) -> None:  # type: ignore[no-untyped-def]
    stage = _stage(tmp_path)
    tamper(stage)
    code, out = _verify(stage)
    assert code == ExitCode.VALIDATION
    assert f"Error: stage directory {stage} failed verification" in out
    assert expected in out


def test_several_problems_are_all_listed(tmp_path: Path) -> None:
    stage = _stage(tmp_path)
    _missing(stage)
    _altered(stage)
    _extra(stage)
    code, out = _verify(stage)
    assert code == ExitCode.VALIDATION
    assert out.count("\n  - ") == 3


def test_not_a_stage(tmp_path: Path) -> None:
    (tmp_path / "half").mkdir()
    code, out = _verify(tmp_path / "half")
    assert code == ExitCode.VALIDATION
    assert "has no manifest.json" in out

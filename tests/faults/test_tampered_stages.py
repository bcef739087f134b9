"""Case 4: corrupted or tampered stage files are refused before any database write.

Each tampering is done to a copy of the standard scenario's stages; the load
then runs against a database holding a sentinel graph, with ``--into-nonempty``
so that nothing but the tampering can stop it. Every refusal must exit 3, name
the file and the check that failed, leave no ledger, and leave the database
exactly as it was (graph, counts, schema, no lock). The control (an intact
copy) shows the same command does write.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from etl.errors import ExitCode
from etl.settings import Settings
from etl.stage import MANIFEST, manifest_digest
from tests.faults.support import db_state
from tests.test_load_support import Stages, cypher

CASE = "4. tampered stage files"

pytestmark = pytest.mark.db

Tamper = Callable[[Path, Path], str]  # (transform copy, export copy) -> expected message


def _flip(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if offset is None else offset] ^= 0x01
    path.write_bytes(bytes(data))


def _manifest(stage: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((stage / MANIFEST).read_text())
    return data


def _entry(stage: Path, path: str) -> dict[str, Any]:
    return next(t for t in _manifest(stage)["tables"] if t["path"] == path)


def _truncated(t: Path, e: Path) -> str:
    f = t / "nodes/WorkflowRun.parquet"
    size = f.stat().st_size
    f.write_bytes(f.read_bytes()[: size // 2])
    return f"nodes/WorkflowRun.parquet: size {size // 2} bytes, manifest says {size}"


def _flipped(t: Path, e: Path) -> str:
    _flip(t / "relationships/HAS_RUNS.parquet")
    return "relationships/HAS_RUNS.parquet: sha256 differs from the manifest (file altered)"


def _flipped_footer(t: Path, e: Path) -> str:
    f = t / "nodes/Issue.parquet"
    _flip(f, f.stat().st_size - 12)  # inside the Thrift footer: the schema itself
    return "nodes/Issue.parquet: sha256 differs from the manifest (file altered)"


def _swapped_between_stages(t: Path, e: Path) -> str:
    # The export's legacy Workflow table where the transform's rejected-only one belongs.
    shutil.copyfile(e / "nodes/Workflow.parquet", t / "nodes/Workflow.parquet")
    size = (t / "nodes/Workflow.parquet").stat().st_size
    recorded = _entry(t, "nodes/Workflow.parquet")["bytes"]
    assert size != recorded
    return f"nodes/Workflow.parquet: size {size} bytes, manifest says {recorded}"


def _swapped_within_stage(t: Path, e: Path) -> str:
    a, b = t / "relationships/NEXT_EVENT.parquet", t / "relationships/BELONGS_TO_WORKFLOW.parquet"
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    return "relationships/BELONGS_TO_WORKFLOW.parquet: size"


def _manifest_rows_edited(t: Path, e: Path) -> str:
    m = _manifest(t)
    for entry in m["tables"]:
        if entry["path"] == "nodes/WorkflowRun.parquet":
            entry["rows"] -= 1
    (t / MANIFEST).write_text(json.dumps(m, indent=2))
    return "manifest.json: edited after it was written (its own sha256 differs)"


def _manifest_edited_consistently(t: Path, e: Path) -> str:
    """A hand edit that also re-hashes the edited table: still not the manifest written."""
    m = _manifest(t)
    for entry in m["tables"]:
        if entry["path"] == "nodes/WorkflowRun.parquet":
            entry["role"] = "passthrough"
    (t / MANIFEST).write_text(json.dumps(m, indent=2))
    return "manifest.json: edited after it was written (its own sha256 differs)"


def _manifest_hash_removed(t: Path, e: Path) -> str:
    """The edit hides itself by deleting ``manifest_sha256``."""
    m = _manifest(t)
    for entry in m["tables"]:
        if entry["path"] == "nodes/WorkflowRun.parquet":
            entry["tagged_columns"] = ["id"]
    del m["manifest_sha256"]
    (t / MANIFEST).write_text(json.dumps(m, indent=2))
    return "manifest.json: has no manifest_sha256"


def _manifest_rehashed(t: Path, e: Path) -> str:
    """An edit with a recomputed self-hash: caught by the lineage (the export's manifest)."""
    m = _manifest(e)
    m["source"]["database"] = "elsewhere"
    m["manifest_sha256"] = manifest_digest(m)
    (e / MANIFEST).write_text(json.dumps(m, indent=2))
    return "is not the export"


def _manifest_torn(t: Path, e: Path) -> str:
    text = (t / MANIFEST).read_text()
    (t / MANIFEST).write_text(text[: len(text) // 2])
    return f"{t / MANIFEST}: unreadable manifest"


def _manifest_missing(t: Path, e: Path) -> str:
    (t / MANIFEST).unlink()
    return f"{t} has no manifest.json: it is not a complete stage directory"


def _missing_file(t: Path, e: Path) -> str:
    (t / "relationships/PART_OF.parquet").unlink()
    return "relationships/PART_OF.parquet: missing"


def _extra_file(t: Path, e: Path) -> str:
    shutil.copyfile(t / "nodes/Plan.parquet", t / "nodes/Extra.parquet")
    return "nodes/Extra.parquet: extra file not listed in the manifest"


def _report_altered(t: Path, e: Path) -> str:
    (t / "report.json").write_text("{}\n")
    return "report.json: sha256 differs from the manifest (file altered)"


def _export_flipped(t: Path, e: Path) -> str:
    _flip(e / "nodes/Event.parquet")
    return "nodes/Event.parquet: sha256 differs from the manifest (file altered)"


def _export_missing_file(t: Path, e: Path) -> str:
    (e / "relationships/NEXT_EVENT.parquet").unlink()
    return "relationships/NEXT_EVENT.parquet: missing"


TAMPERINGS: list[Tamper] = [
    _truncated,
    _flipped,
    _flipped_footer,
    _swapped_between_stages,
    _swapped_within_stage,
    _manifest_rows_edited,
    _manifest_edited_consistently,
    _manifest_hash_removed,
    _manifest_rehashed,
    _manifest_torn,
    _manifest_missing,
    _missing_file,
    _extra_file,
    _report_altered,
    _export_flipped,
    _export_missing_file,
]


def _copies(stages: Stages, tmp_path: Path) -> tuple[Path, Path]:
    t, e = tmp_path / "transform", tmp_path / "export"
    shutil.copytree(stages.transform, t)
    shutil.copytree(stages.export, e)
    return t, e


def _sentinel(driver: Any, settings: Settings) -> None:
    cypher(
        driver,
        settings,
        "CREATE (:Sentinel {id: 's1', note: 'must survive'})-[:KEEP]->(:Sentinel {id: 's2'})",
    )


@pytest.mark.parametrize("tamper", TAMPERINGS, ids=lambda f: f.__name__.strip("_"))
def test_tampered_stage_is_refused_before_any_write(
    tamper: Tamper,
    driver: Any,
    neo4j_settings: Settings,
    legacy_stages: Stages,
    tmp_path: Path,
    run_cli: Any,
) -> None:
    """Refused with exit 3, the file and the failed check named, database untouched"""
    t, e = _copies(legacy_stages, tmp_path)
    expected = tamper(t, e)
    _sentinel(driver, neo4j_settings)
    before = db_state(driver, neo4j_settings)
    ledger = tmp_path / "ledger"
    result = run_cli(
        "load", "--in", str(t), "--export", str(e), "--ledger-dir", str(ledger), "--into-nonempty"
    )
    assert result.exit_code == ExitCode.VALIDATION, result.output
    assert expected in result.output, result.output
    assert "Traceback" not in result.output
    assert db_state(driver, neo4j_settings) == before
    assert not ledger.exists(), "no ledger for a refused input"


def test_intact_copy_does_write(
    driver: Any, neo4j_settings: Settings, legacy_stages: Stages, tmp_path: Path, run_cli: Any
) -> None:
    """Control: the same load of an intact copy writes (so the refusals above mean something)"""
    t, e = _copies(legacy_stages, tmp_path)
    _sentinel(driver, neo4j_settings)
    before = db_state(driver, neo4j_settings)
    result = run_cli(
        "load", "--in", str(t), "--export", str(e), "--ledger-dir", str(tmp_path / "l"),
        "--into-nonempty",
    )  # fmt: skip
    # Validation fails only because of the sentinel, which is not in the manifest.
    assert result.exit_code == ExitCode.VALIDATION, result.output
    assert "Sentinel 2 (expected 0)" in result.output
    assert db_state(driver, neo4j_settings) != before


def _export_truncated(e: Path) -> str:
    f = e / "nodes/Workflow.parquet"
    size = f.stat().st_size
    f.write_bytes(f.read_bytes()[:-100])
    return f"nodes/Workflow.parquet: size {size - 100} bytes, manifest says {size}"


def _export_flipped_rel(e: Path) -> str:
    _flip(e / "relationships/BASED_ON_ISSUE.parquet")
    return "relationships/BASED_ON_ISSUE.parquet: sha256 differs from the manifest (file altered)"


def _export_missing_plan(e: Path) -> str:
    (e / "nodes/Plan.parquet").unlink()
    return "nodes/Plan.parquet: missing"


def _export_extra(e: Path) -> str:
    (e / "relationships/EXTRA.parquet").write_bytes(b"PAR1")
    return "relationships/EXTRA.parquet: extra file not listed in the manifest"


def _export_hash_removed(e: Path) -> str:
    return _manifest_hash_removed(e, e)


@pytest.mark.parametrize(
    "tamper",
    [
        _export_truncated,
        _export_flipped_rel,
        _export_missing_plan,
        _export_extra,
        _export_hash_removed,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_tampered_export_is_refused_by_transform(
    tamper: Callable[[Path], str], legacy_stages: Stages, tmp_path: Path, run_cli: Any
) -> None:
    """`etl transform` refuses a tampered export and writes no stage"""
    e, t = tmp_path / "export", tmp_path / "out"
    shutil.copytree(legacy_stages.export, e)
    expected = tamper(e)
    result = run_cli("transform", "--in", str(e), "--out", str(t))
    assert result.exit_code == ExitCode.VALIDATION, result.output
    assert expected in result.output, result.output
    assert not t.exists()
    assert not list(tmp_path.glob("out.*")), "no temporary directory left either"

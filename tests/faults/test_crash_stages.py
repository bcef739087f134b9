"""Case 3: `etl export` and `etl transform` SIGKILLed at exact points, then run again.

After the kill no valid-looking stage directory is where a stage is expected:
the target is either absent (first run) or still the previous, complete stage,
byte for byte (a run over an existing stage); the only leftovers are the
``<stage>.tmp-<pid>-*`` / ``.spill-<pid>-*`` working directories (and, after a
kill between the two renames of a commit, the previous stage moved aside as
``<stage>.old-*``, which ``etl verify`` of the target points to). The rerun
then exits 0, removes those leftovers, and writes Parquet files byte-identical
to an uninterrupted run's.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from etl.errors import ExitCode
from etl.settings import Settings
from etl.stage import read_manifest, verify_stage
from tests.faults.support import fault, files_under, killed_at, run_etl
from tests.test_load_support import Stages, legacy_scenario

CASE = "3. crash during export and transform"

pytestmark = pytest.mark.db

COMMIT_RENAMED_ASIDE = fault("etl.stage:os.replace", 2)  # old moved aside, new not yet in place

#: (id, stage, fault, over an existing stage?, quick?)
POINTS: list[tuple[str, str, dict[str, Any], bool, bool]] = [
    ("export-while-reading", "export", fault("etl.extsort:SortedRuns.add", 3), False, False),
    ("export-between-tables", "export", fault("etl.export:_export_table", 4), False, False),
    ("export-manifest-written-not-renamed", "export", fault("etl.stage:_fsync_dir", 1), False,
     True),
    ("export-rerun-while-reading", "export", fault("etl.extsort:SortedRuns.add", 5), True, False),
    ("export-rerun-between-renames", "export", COMMIT_RENAMED_ASIDE, True, False),
    ("transform-writing-tables", "transform", fault("etl.stage:TableWriter.write", 3), False,
     False),
    ("transform-manifest-written-not-renamed", "transform", fault("etl.stage:_fsync_dir", 1),
     False, False),
    ("transform-rerun-writing-tables", "transform", fault("etl.stage:TableWriter.write", 2), True,
     True),
    ("transform-rerun-between-renames", "transform", COMMIT_RENAMED_ASIDE, True, False),
]  # fmt: skip


def _params() -> list[Any]:
    return [
        pytest.param(stage, spec, over, id=name, marks=() if quick else pytest.mark.slow)
        for name, stage, spec, over, quick in POINTS
    ]


def _parquet_bytes(stage: Path) -> dict[str, bytes]:
    return {
        p.relative_to(stage).as_posix(): p.read_bytes()
        for p in files_under(stage)
        if p.suffix == ".parquet"
    }


def _tables(stage: Path) -> list[tuple[str, int, str]]:
    return [(t["path"], t["rows"], t["sha256"]) for t in read_manifest(stage)["tables"]]


@pytest.mark.parametrize(("stage", "spec", "over_existing"), _params())
def test_killed_stage_leaves_nothing_valid_looking_and_reruns_identically(
    stage: str,
    spec: dict[str, Any],
    over_existing: bool,
    driver: Any,
    neo4j_settings: Settings,
    etl_env: dict[str, str],
    run_cli: Any,
    tmp_path: Path,
) -> None:
    """SIGKILL mid-stage: target absent or the old stage intact; rerun byte-identical"""
    ref: Stages = legacy_scenario(driver, neo4j_settings, tmp_path / "ref")
    work = tmp_path / "work"
    work.mkdir()
    target = work / stage
    if stage == "export":
        args: tuple[str | Path, ...] = ("export", "--out", target, "--batch-size", "7")
        reference = ref.export
    else:
        args = ("transform", "--in", ref.export, "--out", target)
        reference = ref.transform
    previous: dict[str, bytes] | None = None
    if over_existing:
        shutil.copytree(reference, target)
        previous = {p.name: p.read_bytes() for p in files_under(target)}

    mark = tmp_path / "mark"
    killed_at(run_etl(etl_env, *args, fault_spec=spec, mark=mark), mark)

    leftovers = sorted(p.name for p in work.iterdir() if p.name != stage)
    assert all(
        n.startswith((f"{stage}.tmp-", f"{stage}.spill-", f"{stage}.old-")) for n in leftovers
    ), leftovers
    if spec is COMMIT_RENAMED_ASIDE:
        assert not target.exists()
        refused = run_cli("verify", str(target))
        assert refused.exit_code == ExitCode.VALIDATION
        assert "interrupted while replacing it; the previous copy is" in refused.output
        old = next(work.glob(f"{stage}.old-*"))
        assert {p.name: p.read_bytes() for p in files_under(old)} == previous
    elif previous is not None:
        assert {p.name: p.read_bytes() for p in files_under(target)} == previous
        verify_stage(target)
    else:
        assert not target.exists(), "no stage directory at the target after a kill"

    rerun = run_etl(etl_env, *args)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert sorted(p.name for p in work.iterdir()) == [stage], "the rerun removed the leftovers"
    verify_stage(target)
    assert _tables(target) == _tables(reference)
    assert _parquet_bytes(target) == _parquet_bytes(reference)

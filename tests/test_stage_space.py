"""The disk-space check before a stage is written: headroom proportional to the stage."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from etl.errors import StageError
from etl.stage import ensure_free_space, with_headroom

pytestmark = pytest.mark.unit

MiB = 1 << 20


def test_headroom_is_a_quarter_between_1_and_64_mib() -> None:
    assert with_headroom(0) == 1 * MiB
    assert with_headroom(2 * MiB) == 3 * MiB  # a quarter is under the 1 MiB minimum
    assert with_headroom(6 * MiB) == 6 * MiB + 6 * MiB // 4
    assert with_headroom(1024 * MiB) == 1088 * MiB  # capped at 64 MiB


def test_a_small_stage_fits_a_small_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = shutil.disk_usage(tmp_path)._replace(total=100 * MiB, used=70 * MiB, free=30 * MiB)
    monkeypatch.setattr("etl.stage.shutil.disk_usage", lambda path: small)
    # A 6 MiB export on a disk with 30 MiB free: refused by the old fixed 64 MiB floor.
    ensure_free_space(tmp_path / "export", with_headroom(6 * MiB), what="the export")
    with pytest.raises(StageError) as refused:
        ensure_free_space(tmp_path / "export", with_headroom(28 * MiB), what="the export")
    assert str(refused.value) == (
        f"not enough disk space for the export: about 35 MiB needed, 30 MiB free on the "
        f"filesystem of {tmp_path}\n  hint: free some space, or write elsewhere with --out"
    )

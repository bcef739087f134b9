"""Checked-in cases: ``cases/*.json`` → expected tables, compared exactly.

Each case file holds ``about`` (what it shows), optional ``options``
(``snapshot_time`` ISO, ``stale_after_s``, ``infer_type``; the snapshot
defaults to 2025-05-01T12:00Z), ``inputs`` (rows per export table),
``expected`` (rows per output or rejected table; only the tables listed are
compared, ``[]`` means empty) and ``report`` (a subset of the report; nested
dicts are compared key by key). See ``frames.py`` for how rows become typed
frames. Add a case by adding a file.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.migrations.frames import SNAPSHOT, assert_table, case_paths, load_case, run

pytestmark = pytest.mark.unit


def _assert_subset(actual: Any, expected: Any, where: str) -> None:
    """A non-empty dict is compared key by key; anything else (``{}`` too) exactly."""
    if isinstance(expected, dict) and expected:
        assert isinstance(actual, dict), f"{where}: expected a dict, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} missing from the report"
            _assert_subset(actual[key], value, f"{where}.{key}")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


@pytest.mark.parametrize("path", case_paths(), ids=lambda p: p.stem)
def test_case(path: Path) -> None:
    case = load_case(path)
    options = case.get("options", {})
    snapshot = (
        datetime.fromisoformat(options["snapshot_time"].replace("Z", "+00:00"))
        if "snapshot_time" in options
        else SNAPSHOT
    )
    result = run(
        case["inputs"],
        snapshot=snapshot,
        stale_after=timedelta(seconds=options.get("stale_after_s", 3600)),
        infer_type=options.get("infer_type", False),
    )
    for name, rows in case["expected"].items():
        assert_table(result, name, rows)
    for key, value in case.get("report", {}).items():
        assert key in result.report, f"report.{key} missing"
        _assert_subset(result.report[key], value, f"report.{key}")


def test_every_rejection_code_has_a_case() -> None:
    """Each code of docs/MIGRATION.md is shown by at least one checked-in case."""
    from etl.migrations.workflow_runs_classify import REASONS

    shown: set[str] = set()
    for path in case_paths():
        for row in load_case(path)["expected"].get("rejected/Workflow", []):
            shown.add(row["reason"])
    assert set(REASONS) - shown == set()

"""The fault suite (issue 8): what survives crashes, bad input and hostile names.

Every test here is marked ``faults``. The expensive variants are also marked
``slow`` and run only with ``ETL_FAULTS=full``; without it, the default
``pytest -q`` (CI) gets the quick subset. A full run writes ``RELIABILITY.md``
at the repository root from what it saw: one row per check, with the case of
the issue it belongs to (each module's ``CASE``), runs, outcome and seconds.

    ETL_FAULTS=full .venv/bin/pytest -q tests/faults        # full run, rewrites RELIABILITY.md
    .venv/bin/pytest -q tests/faults                        # quick subset
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.test_load_support import legacy_stages, replay_snapshot

__all__ = ["legacy_stages", "replay_snapshot"]  # session fixtures for the fault tests

FULL = os.environ.get("ETL_FAULTS") == "full"
ROOT = Path(__file__).resolve().parents[2]
RELIABILITY = ROOT / "RELIABILITY.md"
HERE = Path(__file__).resolve().parent


def examples(quick: int, full: int) -> int:
    """How many hypothesis examples (or repetitions) a check gets in this run."""
    return full if FULL else quick


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="expensive fault variant: set ETL_FAULTS=full")
    for item in items:
        if HERE not in Path(str(item.fspath)).resolve().parents:
            continue
        item.add_marker(pytest.mark.faults)
        if not FULL and item.get_closest_marker("slow") is not None:
            item.add_marker(skip)


_WHOLE_SUITE: list[bool] = []


def pytest_collection_finish(session: pytest.Session) -> None:
    """Note whether every fault test was selected: only such a run rewrites RELIABILITY.md."""
    files = {Path(str(item.fspath)).name for item in session.items}
    opt = session.config.option
    selected = (
        not opt.keyword and not opt.markexpr and not any("::" in a for a in session.config.args)
    )
    _WHOLE_SUITE.append(selected and {p.name for p in HERE.glob("test_*.py")} <= files)


# ------------------------------------------------------------- the results


@dataclass
class Row:
    case: str
    check: str
    runs: int = 0
    passed: int = 0
    failed: int = 0
    xfailed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    examples: int = 0
    notes: list[str] = field(default_factory=list)


_ROWS: dict[tuple[str, str], Row] = {}


def _row(item: pytest.Item) -> Row:
    module = getattr(item, "module", None)
    case = str(getattr(module, "CASE", "?"))
    func = getattr(item, "function", None)
    doc = (getattr(func, "__doc__", None) or "").strip().splitlines()
    check = doc[0].rstrip(".") if doc else item.name.split("[")[0]
    key = (case, check)
    if key not in _ROWS:
        _ROWS[key] = Row(case, check)
    return _ROWS[key]


class Record:
    """What a fault test adds to its row of RELIABILITY.md (examples run, a measured figure)."""

    def __init__(self, row: Row) -> None:
        self._row = row

    def examples(self, n: int = 1) -> None:
        self._row.examples += n

    def note(self, text: str) -> None:
        if text not in self._row.notes:
            self._row.notes.append(text)


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Record:
    return Record(_row(request.node))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if HERE not in Path(str(item.fspath)).resolve().parents:
        return report
    row = _row(item)
    if report.when == "call" or (report.when == "setup" and not report.passed):
        row.seconds += call.duration if report.when == "call" else 0.0
        if hasattr(report, "wasxfail"):
            row.xfailed += 1
        elif report.skipped:
            row.skipped += 1
        elif report.passed:
            row.passed += 1
        else:
            row.failed += 1
        if not report.skipped or hasattr(report, "wasxfail"):
            row.runs += 1
    return report


def _outcome(row: Row) -> str:
    parts = []
    if row.failed:
        parts.append(f"**{row.failed} FAILED**")
    if row.passed:
        parts.append(f"{row.passed} passed")
    if row.xfailed:
        parts.append(f"{row.xfailed} xfail (known defect)")
    text = ", ".join(parts) or "not run"
    return text + (f"; {'; '.join(row.notes)}" if row.notes else "")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    ran = [r for r in _ROWS.values() if r.runs]
    if not FULL or not ran:
        return
    if not all(_WHOLE_SUITE):
        print("\nRELIABILITY.md left as it is: only part of the fault suite ran")
        return
    lines = [
        "# Reliability: the fault suite (issue 8)",
        "",
        "Generated by `ETL_FAULTS=full .venv/bin/pytest -q tests/faults` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}); do not edit by hand.",
        "The quick subset of these checks runs in CI (`make test`); the full run adds the",
        "expensive variants (every kill point, 500 hypothesis examples, large values).",
        "",
        "| case | check | runs | examples | outcome | seconds |",
        "|---|---|---:|---:|---|---:|",
    ]
    for row in sorted(ran, key=lambda r: (r.case, r.check)):
        lines.append(
            f"| {row.case} | {row.check} | {row.runs} | {row.examples or '-'} | "
            f"{_outcome(row)} | {row.seconds:.1f} |"
        )
    total = sum(r.seconds for r in ran)
    failed = sum(r.failed for r in ran)
    lines += [
        "",
        f"{sum(r.runs for r in ran)} runs, {failed} failed, {total:.0f} s of test time.",
        "",
    ]
    RELIABILITY.write_text("\n".join(lines), encoding="utf-8")

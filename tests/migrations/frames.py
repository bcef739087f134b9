"""Build stage-format frames from readable rows, and run the migration on them.

Case files (``cases/*.json``) and tests describe tables as lists of dicts. The
dtype of a column follows from its name, as the export stage would write it:

* ``_labels`` → list of strings; ``created_at``, ``createdAt``, ``timestamp``
  → ``Datetime("ns", "UTC")`` from ISO strings; ``postToGithub``, ``_created``
  → bool; everything else → string;
* Issue numbers (``number``, ``_start.number``, ``_end.number``) are Float64
  in *inputs* (the JavaScript driver wrote floats) and Int64 in *outputs*;
* ``metadata`` and ``data`` given as JSON values (objects, lists …) are
  serialised compactly; given as strings they are used verbatim, which is how
  a case writes malformed JSON.

Input rows get the export's defaults: ``_labels`` ``[Label]`` for nodes, and
endpoint labels for relationships (``BELONGS_TO_WORKFLOW`` is Workflow → Event,
…). Expected rows get no defaults: every column is spelled out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from polars.testing import assert_frame_equal

from etl.migrations import MigrationOptions, MigrationResult, get_migration

CASES_DIR = Path(__file__).parent / "cases"
SNAPSHOT = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)

ENDPOINTS = {
    "BELONGS_TO_WORKFLOW": ("Workflow", "Event"),
    "NEXT_EVENT": ("Event", "Event"),
    "BASED_ON_ISSUE": ("Workflow", "Issue"),
    "GENERATED_FROM": ("Plan", "Event"),
    "PART_OF": ("Plan", "Workflow"),
    "HAS_PLAN": ("Issue", "Plan"),
    "HAS_RUNS": ("Issue", "WorkflowRun"),
}
_DATETIMES = {"created_at", "createdAt", "timestamp"}
_BOOLS = {"postToGithub", "_created"}
_NUMBERS = {"number", "_start.number", "_end.number"}
_JSON_TEXT = {"metadata", "data"}


def dtype_for(column: str, *, output: bool) -> pl.DataType:
    if column == "_labels":
        return pl.List(pl.String())
    if column in _DATETIMES:
        return pl.Datetime("ns", "UTC")
    if column in _BOOLS:
        return pl.Boolean()
    if column in _NUMBERS:
        return pl.Int64() if output else pl.Float64()
    return pl.String()


def _value(column: str, value: Any, *, output: bool) -> Any:
    if value is None:
        return None
    if column in _DATETIMES:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if column in _JSON_TEXT and not output and not isinstance(value, str):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return value


def _input_defaults(table: str, row: Mapping[str, Any]) -> dict[str, Any]:
    kind, name = table.split("/", 1)
    if kind == "nodes":
        return {"_element_id": None, "_labels": [name], **row}
    start, end = ENDPOINTS.get(name, (None, None))
    base = {
        "_element_id": None,
        "_start_label": start,
        "_start_element_id": None,
        **{k: v for k, v in row.items() if k.startswith("_start.")},
        "_end_label": end,
        "_end_element_id": None,
        **{k: v for k, v in row.items() if k.startswith("_end.")},
    }
    return {**base, **row}  # base keys keep their place, the row's values win


def frame(
    table: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    output: bool,
    defaults: bool | None = None,
) -> pl.DataFrame:
    """A frame of ``rows`` typed as the stage format types ``table``'s columns.

    ``output`` picks the number dtype (Int64 out, Float64 in); ``defaults``
    (default: for inputs only) fills in the export's default columns.
    """
    with_defaults = not output if defaults is None else defaults
    full = [_input_defaults(table, r) if with_defaults else dict(r) for r in rows]
    names: list[str] = []
    for r in full:
        names += [k for k in r if k not in names]
    schema = {c: dtype_for(c, output=output) for c in names}
    data = {c: [_value(c, r.get(c), output=output) for r in full] for c in names}
    return pl.DataFrame(data, schema=schema)


def run(
    inputs: Mapping[str, Sequence[Mapping[str, Any]] | pl.DataFrame],
    *,
    snapshot: datetime = SNAPSHOT,
    stale_after: timedelta = timedelta(hours=1),
    infer_type: bool = False,
) -> MigrationResult:
    """Run ``workflow-to-workflowrun`` on rows (or ready frames) keyed by table."""
    lazy = {
        name: (rows if isinstance(rows, pl.DataFrame) else frame(name, rows, output=False)).lazy()
        for name, rows in inputs.items()
    }
    options = MigrationOptions(
        snapshot_time=snapshot, stale_after=stale_after, infer_type=infer_type
    )
    return get_migration("workflow-to-workflowrun").run(lazy, options)


def table(result: MigrationResult, name: str) -> pl.DataFrame:
    """An output or rejected table by key (``"nodes/WorkflowRun"``, ``"rejected/Workflow"``)."""
    return result.rejected[name] if name.startswith("rejected/") else result.tables[name]


def assert_table(result: MigrationResult, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """``result``'s table ``name`` equals ``rows`` exactly: columns, order, dtypes, values."""
    actual = table(result, name)
    if not rows:
        assert actual.height == 0, f"{name} should be empty, got\n{actual}"
        return
    # Rejected rows are the original rows: their Issue numbers are still floats.
    rejected = name.startswith("rejected/")
    expected = frame(name, rows, output=not rejected, defaults=False)
    assert actual.columns == expected.columns, f"{name}: columns differ"
    assert_frame_equal(actual, expected)


def load_case(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return case


def case_paths() -> list[Path]:
    return sorted(CASES_DIR.glob("*.json"))

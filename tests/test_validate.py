"""`etl validate`: every invariant passes on a correct load and fails on its own breakage.

Each case breaks the loaded graph in one way (the kind of damage the original
migration scripts did or could not see) and checks that exactly the right
invariant reports it, with exit code 3.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from etl.errors import ExitCode
from etl.load import run_load
from etl.settings import Settings
from tests.test_load_support import Stages, cypher, legacy_stages

__all__ = ["legacy_stages"]  # session fixture used here

pytestmark = pytest.mark.db

#: Breakages applied one after another to one loaded graph: the query, the
#: check-level counter it must move (check number, key), and every invariant
#: that must fail from then on. The first ones break one invariant each, so
#: each is seen failing alone.
BREAKAGES = [
    (
        "bad-status",
        "MATCH (w:WorkflowRun) WITH w LIMIT 1 SET w.status = 'finished'",
        (4, "bad_status"),
        {4},
    ),
    (
        "metadata-kept",
        "MATCH (w:WorkflowRun) WITH w SKIP 1 LIMIT 1 SET w.metadata = '{}'",
        (4, "legacy_props"),
        {4},
    ),
    (
        "created-at-string",
        "MATCH (w:WorkflowRun) WITH w SKIP 2 LIMIT 1 SET w.createdAt = toString(w.createdAt)",
        (4, "bad_created_at"),
        {4},
    ),
    (
        "has-runs-from-wrong-issue",
        "MATCH (i:Issue)-[h:HAS_RUNS]->(w) WITH i, h, w LIMIT 1 "
        "MATCH (j:Issue) WHERE j.repoFullName <> i.repoFullName WITH h, w, j LIMIT 1 "
        "DELETE h CREATE (j)-[:HAS_RUNS]->(w)",
        (2, "ok"),
        {2, 4},
    ),
    (
        "float-issue-number",
        "MATCH (i:Issue)-[:HAS_RUNS]->() WITH DISTINCT i SKIP 3 LIMIT 1 "
        "SET i.number = i.number + 0.0",
        (4, "non_integer"),
        {2, 4},
    ),
    (
        "event-lost",
        "MATCH (:WorkflowRun)-[b:BELONGS_TO_WORKFLOW]->() WITH b LIMIT 1 DELETE b",
        (3, "bad"),
        {2, 3, 4, 5},
    ),
    (
        "workflow-left-behind",
        "MATCH (w:WorkflowRun) WITH w SKIP 5 LIMIT 1 SET w:Workflow REMOVE w:WorkflowRun",
        (1, "migratable"),
        {1, 2, 3, 4, 5},
    ),
]


def _checks(result: Any) -> dict[int, dict[str, Any]]:
    return {c["number"]: c for c in json.loads(result.output)["checks"]}


def test_each_breakage_is_caught_by_its_invariant(
    driver: Any, neo4j_settings: Settings, legacy_stages: Stages, tmp_path: Path, run_cli: Any
) -> None:
    loaded = run_load(
        neo4j_settings, in_dir=legacy_stages.transform, ledger_dir=tmp_path / "l", validate=False
    )
    assert loaded.validation is None
    stage = str(legacy_stages.transform)
    good = run_cli("validate", "--in", stage)
    assert good.exit_code == 0, good.output
    assert [f"PASS  {n}." in good.output for n in range(1, 6)] == [True] * 5
    assert good.output.rstrip().endswith("All invariants hold.")
    before = _checks(run_cli("--json", "validate", "--in", stage))

    for name, query, (number, key), failing in BREAKAGES:
        cypher(driver, neo4j_settings, query)
        result = run_cli("validate", "--in", stage)
        assert result.exit_code == ExitCode.VALIDATION, (name, result.output)
        assert "Validation FAILED." in result.output
        failed = {n for n in range(1, 6) if f"FAIL  {n}." in result.output}
        assert failed == failing, (name, result.output)
        after = _checks(run_cli("--json", "validate", "--in", stage))
        assert after[number]["data"][key] != before[number]["data"][key], (name, key)
        assert after[number]["ok"] is False and isinstance(after[2]["ok"], bool)
        before = after

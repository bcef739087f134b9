"""The package's shape: no import cycles (DESIGN.md's layers rely on it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT.parent / "shared" / "tools" / "import_cycles.py"


@pytest.mark.skipif(not TOOL.is_file(), reason="../shared/tools/import_cycles.py is not beside")
def test_the_package_has_no_import_cycles() -> None:
    out = subprocess.run(
        [sys.executable, str(TOOL), "etl"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert out.stdout.strip() == "no cycles", out.stdout + out.stderr


#: Engine modules that still carry the first migration's invariants as Cypher; they go
#: when validation runs the migration's declared checks (issue 15, item 3). Nothing may
#: be added here: a new engine module must be generic.
NOT_YET_GENERIC = {"etl/validate.py", "etl/graph/validate.py", "etl/cli.py"}
#: The seed writes the sample legacy graph (the CLI, above, describes it in its help).
MODEL_OWNERS = ("etl/migrations/", "etl/seed", "etl/graph/seed")


def _model_names() -> set[str]:
    """Every label and relationship type a shipped migration names."""
    import re

    from etl.migrations import list_migrations

    names: set[str] = set()
    for migration in list_migrations():
        names |= set(migration.reads) | set(migration.writes) | set(migration.keys)
        module = sys.modules[type(migration).__module__]
        here = Path(str(module.__file__)).parent
        for file in here.glob("*.py"):
            names |= set(re.findall(r"(?:nodes|relationships|rejected)/(\w+)", file.read_text()))
    return names


def _engine_hits(text: str, names: set[str]) -> list[str]:
    """Where ``text`` names one of ``names`` as a label or type would be named."""
    import re

    hits = []
    for name in sorted(names):
        plain = name[:1].isupper() and name[1:].islower()  # "Issue", "Plan": English words too
        # A word that is also English counts quoted whole, as a Cypher label or a table path.
        pattern = rf"""(["'`]{name}["'`])|([:/]{name}\b)""" if plain else rf"\b{name}\b"
        for line in text.splitlines():
            if re.search(pattern, line):
                hits.append(f"{name}: {line.strip()}")
    return hits


def test_no_engine_module_names_a_label_of_a_shipped_migration() -> None:
    names = _model_names()
    assert {"WorkflowRun", "HAS_RUNS", "BASED_ON_ISSUE", "Issue"} <= names
    found = {}
    for path in sorted((ROOT / "etl").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(MODEL_OWNERS) or rel in NOT_YET_GENERIC:
            continue
        hits = _engine_hits(path.read_text(), names)
        if hits:
            found[rel] = hits
    assert not found, found


def test_the_scan_finds_a_label_where_one_is_written() -> None:
    names = {"WorkflowRun", "Issue"}
    assert _engine_hits('TARGET = "WorkflowRun"', names)
    assert _engine_hits("MATCH (i:Issue) RETURN i", names)
    assert _engine_hits('stage.table("nodes/Issue")', names)
    assert not _engine_hits('"Issues get an integer key"; f"Issue {n} of {m}"', names)

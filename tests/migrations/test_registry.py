"""The registry's facts about a migration: version, what it reads and writes, its checksum."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from etl.migrations import export_labels, get_migration, source_checksum

pytestmark = pytest.mark.unit


def test_the_first_migration_declares_its_version_and_labels() -> None:
    mig = get_migration("workflow-to-workflowrun")
    assert mig.version == "0001"
    assert mig.reads == ("Workflow", "Issue", "Event", "Plan")
    assert mig.writes == ("WorkflowRun",)
    # A default export takes what the migration writes only where the database has it.
    assert export_labels({"Workflow": 3}) == ["Workflow", "Issue", "Event", "Plan"]
    assert export_labels({"Workflow": 3, "WorkflowRun": 2}) == [
        "Workflow",
        "Issue",
        "Event",
        "Plan",
        "WorkflowRun",
    ]


def test_the_checksum_covers_every_source_file_of_the_migration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mig = get_migration("workflow-to-workflowrun")
    digest = source_checksum(mig)
    assert len(digest) == 64 and digest == source_checksum(mig)
    # The same module family elsewhere: one changed byte in a helper module changes it.
    module = sys.modules[type(mig).__module__]
    here = Path(str(module.__file__)).parent
    for file in here.glob("workflow_runs*.py"):
        shutil.copy(file, tmp_path / file.name)
    monkeypatch.setattr(module, "__file__", str(tmp_path / "workflow_runs.py"))
    assert source_checksum(mig) == digest
    helper = tmp_path / "workflow_runs_json.py"
    helper.write_text(helper.read_text() + "\n# changed\n")
    assert source_checksum(mig) != digest

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

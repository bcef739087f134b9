"""Case 8: a 50 MB string property and a label of 1,000,000 tiny nodes, with bounded memory.

Each graph goes through ``etl export --all`` and a replay ``etl load`` of that
export into the emptied database, as real processes whose peak resident
memory is read from ``wait4`` (the kernel's own high-water mark). The data
must come back exactly, and each process must stay under a fixed bound that
does not grow with the data (the bounds are well below what holding the
data several times over would take).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from etl.graph import admin
from etl.settings import Settings
from tests.faults.conftest import Record
from tests.faults.support import ETL, etl_environ
from tests.test_load_support import counts, cypher

CASE = "8. resource limits"

pytestmark = [pytest.mark.db, pytest.mark.slow]

MiB = 1 << 20


def _run_measured(etl_env: dict[str, str], *args: str | Path, log: Path) -> tuple[int, int]:
    """Run ``etl ARGS``; (exit code, peak RSS in MiB) from ``wait4``."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(ETL), *map(str, args)], env=etl_environ(etl_env), stdout=out, stderr=out
        )
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss // 1024  # KiB on Linux


def _export_and_replay(
    driver: Any, settings: Settings, etl_env: dict[str, str], tmp_path: Path
) -> tuple[int, int]:
    export, ledger = tmp_path / "export", tmp_path / "ledger"
    code, export_rss = _run_measured(
        etl_env, "export", "--all", "--out", export, log=tmp_path / "export.log"
    )
    assert code == 0, (tmp_path / "export.log").read_text()[-3000:]
    admin.wipe_database(driver, settings.database)
    code, load_rss = _run_measured(
        etl_env, "load", "--in", export, "--ledger-dir", ledger, log=tmp_path / "load.log"
    )
    assert code == 0, (tmp_path / "load.log").read_text()[-3000:]
    return export_rss, load_rss


def test_one_50_mb_string_property(
    driver: Any, neo4j_settings: Settings, etl_env: dict[str, str], tmp_path: Path, record: Record
) -> None:
    """One 50 MB string property: exported and loaded exactly, peak RSS bounded"""
    size = 50 * MiB
    cypher(
        driver,
        neo4j_settings,
        "CREATE (:Blob {id: 'big', s: $s}), (:Blob {id: 'small', s: 'x'})",
        s="ab" * (size // 2 - 1) + "é",
    )
    export_rss, load_rss = _export_and_replay(driver, neo4j_settings, etl_env, tmp_path)
    rows = cypher(
        driver,
        neo4j_settings,
        "MATCH (b:Blob) RETURN b.id AS id, size(b.s) AS n, right(b.s, 3) AS tail,"
        " b.s STARTS WITH 'abab' AS head ORDER BY id",
    )
    assert rows == [
        {"id": "big", "n": size - 1, "tail": "abé", "head": True},
        {"id": "small", "n": 1, "tail": "x", "head": False},
    ]
    record.note(f"peak RSS export {export_rss} MiB, load {load_rss} MiB")
    # The value itself is 50 MB (100 MB as a Python str): allow a few copies, not more.
    assert export_rss < 1200 and load_rss < 1200, (export_rss, load_rss)


def test_a_label_with_a_million_tiny_nodes(
    driver: Any, neo4j_settings: Settings, etl_env: dict[str, str], tmp_path: Path, record: Record
) -> None:
    """1,000,000 tiny nodes of one label: all exported and loaded, peak RSS bounded"""
    n = 1_000_000
    with driver.session(database=neo4j_settings.database) as session:  # CALL … IN TRANSACTIONS
        session.run(
            "UNWIND range(1, $n) AS i "
            "CALL (i) { CREATE (:Tiny {id: i}) } IN TRANSACTIONS OF 50000 ROWS",
            n=n,
        ).consume()
    export_rss, load_rss = _export_and_replay(driver, neo4j_settings, etl_env, tmp_path)
    assert counts(driver, neo4j_settings)["labels"] == {"Tiny": n}
    row = cypher(
        driver,
        neo4j_settings,
        "MATCH (t:Tiny) RETURN count(DISTINCT t.id) AS k, min(t.id) AS lo, max(t.id) AS hi",
    )
    assert row == [{"k": n, "lo": 1, "hi": n}]
    record.note(f"peak RSS export {export_rss} MiB, load {load_rss} MiB")
    assert export_rss < 1000 and load_rss < 1000, (export_rss, load_rss)

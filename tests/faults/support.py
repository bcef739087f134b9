"""Helpers of the fault suite (no tests here): subprocesses with injected faults, db states.

``run_etl`` starts the real ``etl`` executable; with ``fault=`` it puts
``tests/faults/inject`` on ``PYTHONPATH`` so its ``sitecustomize`` SIGKILLs
(or pauses) the process at an exact call (see that module). ``DbState`` is
everything a write could change: the graph (``snapshot``), counts, schema and
the lock, so "the database is untouched" is one equality.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etl.graph.params import SOURCE_ID
from etl.settings import Settings
from tests.test_load_support import counts, cypher, schema_names, snapshot

ETL = Path(sys.executable).with_name("etl")
INJECT = Path(__file__).resolve().parent / "inject"


def fault(target: str, k: int, when: str = "before", **extra: Any) -> dict[str, Any]:
    """A fault spec for ``run_etl``: die at the ``k``-th call of ``target`` (module:attr)."""
    return {"target": target, "k": k, "when": when, **extra}


def etl_environ(
    etl_env: dict[str, str], *, fault_spec: dict[str, Any] | None = None, mark: Path | None = None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ETL_FAULT", "PYTHONPATH")}
    env.update(etl_env)
    if fault_spec is not None:
        env["PYTHONPATH"] = str(INJECT)
        env["ETL_FAULT"] = json.dumps({**fault_spec, "mark": str(mark) if mark else None})
    return env


def run_etl(
    etl_env: dict[str, str],
    *args: str | Path,
    fault_spec: dict[str, Any] | None = None,
    mark: Path | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """``etl ARGS`` as a real process (output captured as text)."""
    return subprocess.run(
        [str(ETL), *map(str, args)],
        env=etl_environ(etl_env, fault_spec=fault_spec, mark=mark),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def killed_at(result: subprocess.CompletedProcess[str], mark: Path) -> dict[str, Any]:
    """Assert the process died by SIGKILL at the injected point; return that point."""
    assert result.returncode == -signal.SIGKILL, (result.returncode, result.stderr[-2000:])
    assert mark.is_file(), "killed, but not at the injected point"
    point: dict[str, Any] = json.loads(mark.read_text())
    return point


def wait_for(path: Path, proc: subprocess.Popen[str] | None = None, timeout: float = 120) -> None:
    """Poll until ``path`` exists (the process may not end first)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc is not None and proc.poll() is not None:
            _, err = proc.communicate()
            raise AssertionError(f"process ended (rc {proc.returncode}) first: {err[-2000:]}")
        assert time.monotonic() < deadline, f"timed out waiting for {path}"
        time.sleep(0.02)


def ledger(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


@dataclass(frozen=True)
class DbState:
    graph: tuple[list[str], list[str]]
    counts: dict[str, dict[str, int]]
    schema: list[str]
    lock: list[dict[str, Any]]


def db_state(driver: Any, settings: Settings) -> DbState:
    return DbState(
        snapshot(driver, settings),
        counts(driver, settings),
        schema_names(driver, settings),
        cypher(driver, settings, "MATCH (l:EtlLock) RETURN properties(l) AS p"),
    )


def key_census(driver: Any, settings: Settings) -> dict[str, tuple[int, int]]:
    """Per label: (nodes, distinct business keys); per type: (rels, distinct endpoint pairs).

    A duplicate made by a replayed batch shows as a count above the reference's.
    """
    out: dict[str, tuple[int, int]] = {}
    keys = {"Issue": "[n.repoFullName, n.number]"}
    for label in ("Workflow", "WorkflowRun", "Event", "Plan", "Issue"):
        key = keys.get(label, "n.id")
        row = cypher(
            driver,
            settings,
            f"MATCH (n:{label}) RETURN count(n) AS n, count(DISTINCT {key}) AS k",
        )[0]
        out[label] = (int(row["n"]), int(row["k"]))
    for row in cypher(
        driver,
        settings,
        "MATCH (a)-[r]->(b) RETURN type(r) AS t, count(r) AS n, "
        "count(DISTINCT [elementId(a), elementId(b)]) AS k",
    ):
        out[f"-[:{row['t']}]->"] = (int(row["n"]), int(row["k"]))
    return out


def files_under(*roots: Path) -> list[Path]:
    return sorted(p for root in roots if root.exists() for p in root.rglob("*") if p.is_file())


def _render(labels: list[str], props: dict[str, Any]) -> str:
    kept = {k: v for k, v in props.items() if k != SOURCE_ID}
    return repr((sorted(labels), sorted((k, type(v).__name__, repr(v)) for k, v in kept.items())))


def value_snapshot(driver: Any, settings: Settings) -> tuple[list[str], list[str]]:
    """Like ``snapshot``, rendered in Python: any value type (lists too), exact reprs."""
    nodes = cypher(
        driver,
        settings,
        "MATCH (n) WHERE NOT n:EtlLock AND NOT n:EtlBatch AND NOT n:EtlHistory "
        "RETURN labels(n) AS ls, properties(n) AS p",
    )
    rels = cypher(
        driver,
        settings,
        "MATCH (a)-[r]->(b) RETURN type(r) AS t, properties(r) AS p, labels(a) AS la, "
        "properties(a) AS pa, labels(b) AS lb, properties(b) AS pb",
    )
    return (
        sorted(_render(r["ls"], r["p"]) for r in nodes),
        sorted(
            f"{r['t']} {_render([], r['p'])} "
            f"{_render(r['la'], r['pa'])} {_render(r['lb'], r['pb'])}"
            for r in rels
        ),
    )

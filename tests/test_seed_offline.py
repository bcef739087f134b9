"""`etl seed --offline`: the importer writes the same graph as the online seed.

Two servers take part: the session's test server (seeded online) and a second
local home that the offline seed fills with neo4j-admin import. The strongest
check compares the two graphs value by value, types included, for options that
plant every oddity (duplicate ids and Issues, empty-string metadata, forks).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from etl import localdb, seed_offline
from etl import seed as seeding
from etl.errors import ConfigError, EtlError, ExitCode
from etl.graph import admin
from etl.graph.connection import open_driver
from etl.offline import with_server
from etl.settings import Settings, load_settings
from tests.conftest import free_port, home_settings

pytestmark = [
    pytest.mark.db,
    pytest.mark.skipif(bool(os.environ.get("NEO4J_URI")), reason="offline seed needs a local home"),
]

#: Plants every kind, with four Workflows whose metadata is the empty string.
OPTIONS: dict[str, Any] = {"workflows": 200, "seed": 2, "dirty": 0.6}
TIMING = ("wipe_s", "write_s", "nodes_per_s", "mode", "offline")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A second local home, never started before the first test; stopped at the end."""
    path = tmp_path_factory.mktemp("seed-home")
    settings = home_settings(path)
    try:
        yield settings
    finally:
        localdb.stop(settings)


def _fingerprint(driver: Any, database: str) -> str:
    """Every node's labels and typed properties, every relationship by its endpoints' keys."""
    typed = "[k IN keys({0}) | [k, valueType({0}[k]), toString({0}[k])]]"
    nodes, _, _ = driver.execute_query(
        f"MATCH (n) RETURN labels(n) AS l, {typed.format('n')} AS p", database_=database
    )
    ends = "[labels({0})[0], {0}.id, {0}.repoFullName, {0}.number]"
    rels, _, _ = driver.execute_query(
        f"MATCH (a)-[r]->(b) RETURN type(r) AS t, {ends.format('a')} AS a, {ends.format('b')} AS b",
        database_=database,
    )
    rows = sorted(json.dumps([r["l"], sorted(r["p"])]) for r in nodes)
    rows += sorted(json.dumps([r["t"], r["a"], r["b"]]) for r in rels)
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def _in_home(settings: Settings) -> tuple[str, dict[str, Any], int]:
    """Fingerprint, counts and empty-string metadata count of the home's database."""
    settings = with_server(settings)
    with open_driver(settings) as driver:
        db = settings.database
        empty, _, _ = driver.execute_query(
            "MATCH (w:Workflow) WHERE w.metadata = '' RETURN count(*) AS c", database_=db
        )
        return _fingerprint(driver, db), admin.count_entities(driver, db), empty[0]["c"]


def test_offline_seed_writes_the_graph_the_online_seed_writes(
    home: Settings, driver: Any, neo4j_settings: Settings
) -> None:
    online = seeding.seed_database(driver, database=neo4j_settings.database, **OPTIONS)
    want = _fingerprint(driver, neo4j_settings.database)

    offline = seeding.run_seed(home, offline=True, **OPTIONS)
    assert not localdb.status(home).running  # it was not running: left stopped
    assert offline["mode"] == "offline" and online["mode"] == "online"
    assert offline["offline"]["server_restarted"] is False
    assert offline["offline"]["import_s"] > 0
    assert {k: v for k, v in offline.items() if k not in TIMING} == {
        k: v for k, v in online.items() if k not in TIMING
    }
    got, counts, empty = _in_home(home)
    assert got == want
    assert counts["labels"] == offline["nodes"]
    assert counts["types"] == offline["relationships"]
    assert empty == 4  # "" stays an empty string (the importer drops it from Parquet)
    assert not (home.local_home / "seed-import").exists()  # input files removed
    assert "IMPORT DONE" in (home.local_home / "logs" / "seed-import.log").read_text()


def test_offline_seed_refuses_a_non_empty_database_and_replaces_it(home: Settings) -> None:
    # After the test above the home holds a graph; its server runs (started to look).
    before, _, _ = _in_home(home)
    for running in (True, False):
        if not running:
            localdb.stop(home)
        with pytest.raises(EtlError, match=r"is not empty \(it has nodes\)") as e:
            seeding.run_seed(home, offline=True, workflows=5)
        assert "--replace" in str(e.value)
        assert localdb.status(home).running is running  # as it was found
    assert _in_home(home)[0] == before  # untouched; the server runs again

    summary = seeding.run_seed(home, offline=True, replace=True, workflows=30, seed=4)
    assert summary["offline"]["server_restarted"] is True
    assert localdb.status(home).running
    _, counts, _ = _in_home(home)
    assert counts["labels"] == summary["nodes"]
    assert summary["nodes"]["Workflow"] == 30


def test_a_failed_import_leaves_an_empty_database_and_says_why(
    home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_files = seed_offline._write_files

    def with_a_bad_file(*args: Any, **kwargs: Any) -> tuple[list[str], dict[str, int]]:
        files, counts = write_files(*args, **kwargs)
        return [*files, f"--nodes=Bad={home.local_home / 'missing.csv'}"], counts

    monkeypatch.setattr(seed_offline, "_write_files", with_a_bad_file)
    assert localdb.status(home).running
    with pytest.raises(EtlError, match="neo4j-admin import of the seed failed") as e:
        seeding.run_seed(home, offline=True, replace=True, workflows=10)
    assert "missing.csv" in str(e.value)
    assert "seed-import.log" in str(e.value)
    assert localdb.status(home).running  # started again, on an empty database
    _, counts, _ = _in_home(home)
    assert counts == {"labels": {}, "types": {}}
    assert not (home.local_home / "seed-import").exists()


def test_cli_offline_flags(run_cli: Any) -> None:
    both = run_cli("seed", "--workflows", "5", "--offline", "--batch-size", "10")
    assert both.exit_code == ExitCode.USAGE
    assert "--batch-size and --offline exclude each other" in both.output
    remote = run_cli(
        "seed",
        "--workflows",
        "5",
        "--offline",
        env={"NEO4J_URI": f"bolt://127.0.0.1:{free_port()}"},
    )
    assert remote.exit_code == ExitCode.USAGE
    assert "--offline writes the store files of the local Neo4j home" in remote.output


def test_a_remote_database_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    settings = load_settings(
        {"local_home": str(tmp_path / "home")},
        environ={"NEO4J_URI": "bolt://db.example.invalid:7687", "NEO4J_PASSWORD": "x"},
        env_file=Path("/nonexistent"),
    )
    with pytest.raises(ConfigError, match=r"NEO4J_URI points at bolt://db\.example\.invalid"):
        seeding.run_seed(settings, offline=True, workflows=5)
    assert not (tmp_path / "home").exists()

"""Helpers for the load tests (no tests here): legacy graphs, stages, graph snapshots.

A *legacy scenario* is the real pipeline in process: ``etl seed`` writes a
small dirty legacy graph, ``etl export`` exports it and ``etl transform``
migrates it, so every load test runs against the stage the product makes.

``snapshot`` reads the whole graph as two sorted lists (nodes; relationships
with their endpoints' properties), with types and nanosecond temporals
spelled out and element ids left out. Two graphs with equal snapshots hold the
same data, whichever way they were loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from etl.export import run_export
from etl.graph import admin
from etl.graph.params import SOURCE_ID
from etl.seed import seed_database
from etl.settings import Settings
from etl.transform import run_transform

WORKFLOWS = 60
SEED = 7
DIRTY = 0.3


@dataclass(frozen=True)
class Stages:
    export: Path
    transform: Path
    report: dict[str, Any]


def legacy_scenario(driver: Any, settings: Settings, root: Path) -> Stages:
    """Seed a legacy graph into the (wiped) database, export it and transform it."""
    seed_database(
        driver,
        database=settings.database,
        workflows=WORKFLOWS,
        seed=SEED,
        dirty=DIRTY,
        replace=False,
        batch_size=200,
        reporter=None,
    )
    export = run_export(settings, out_dir=root / "export").out_dir
    result = run_transform(in_dir=export, out_dir=root / "transform")
    assert result.out_dir is not None
    return Stages(export, result.out_dir, result.report)


@pytest.fixture(scope="session")
def legacy_stages(
    tmp_path_factory: pytest.TempPathFactory, neo4j_settings: Settings, _session_driver: Any
) -> Stages:
    """The standard scenario's stages, made once per session (the database is wiped after)."""
    admin.wipe_database(_session_driver, neo4j_settings.database)
    stages = legacy_scenario(_session_driver, neo4j_settings, tmp_path_factory.mktemp("legacy"))
    admin.wipe_database(_session_driver, neo4j_settings.database)
    return stages


@pytest.fixture(scope="session")
def replay_snapshot(
    tmp_path_factory: pytest.TempPathFactory,
    neo4j_settings: Settings,
    _session_driver: Any,
    legacy_stages: Stages,
) -> tuple[list[str], list[str]]:
    """The graph the standard scenario's stage gives, replayed into an empty database.

    Every way of loading that stage (in place, resumed, …) must end in this graph.
    """
    from etl.load import run_load

    admin.wipe_database(_session_driver, neo4j_settings.database)
    result = run_load(
        neo4j_settings,
        in_dir=legacy_stages.transform,
        ledger_dir=tmp_path_factory.mktemp("replay-ledger"),
    )
    assert result.mode == "replay"
    assert result.validation is not None and result.validation.ok, result.validation
    return snapshot(_session_driver, neo4j_settings)


def cypher(driver: Any, settings: Settings, query: str, **params: Any) -> list[dict[str, Any]]:
    records, _, _ = driver.execute_query(query, params, database_=settings.database)
    return [dict(r) for r in records]


_PROPS = "[k IN keys(n) WHERE k <> $src | k + ':' + valueType(n[k]) + '=' + toString(n[k])]"


def snapshot(driver: Any, settings: Settings) -> tuple[list[str], list[str]]:
    """Every node and relationship as a sorted string (no element ids, no loader marks)."""
    nodes = cypher(
        driver,
        settings,
        "MATCH (n) WHERE NOT n:EtlLock AND NOT n:EtlHistory "
        f"RETURN labels(n) AS ls, {_PROPS} AS ps",
        src=SOURCE_ID,
    )
    node_text = sorted(f"{sorted(r['ls'])} {sorted(r['ps'])}" for r in nodes)
    rels = cypher(
        driver,
        settings,
        "MATCH (a)-[r]->(b) "
        f"WITH a, r, b, [n IN [a] | {_PROPS}][0] AS pa, [n IN [b] | {_PROPS}][0] AS pb, "
        "[k IN keys(r) | k + '=' + toString(r[k])] AS pr "
        "RETURN type(r) AS t, labels(a) AS la, pa, labels(b) AS lb, pb, pr",
        src=SOURCE_ID,
    )
    rel_text = sorted(
        f"{r['t']} {sorted(r['la'])}{sorted(r['pa'])} -> {sorted(r['lb'])}{sorted(r['pb'])} "
        f"{sorted(r['pr'])}"
        for r in rels
    )
    return node_text, rel_text


def counts(driver: Any, settings: Settings) -> dict[str, dict[str, int]]:
    from etl.graph.schema import counts as graph_counts

    return graph_counts(driver, settings.database)


def schema_names(driver: Any, settings: Settings) -> list[str]:
    rows = cypher(driver, settings, "SHOW CONSTRAINTS YIELD name RETURN name")
    rows += cypher(
        driver, settings, "SHOW INDEXES YIELD name, type WHERE type <> 'LOOKUP' RETURN name"
    )
    return sorted(r["name"] for r in rows)

"""`etl load --mode offline` (neo4j-admin import into a fresh home) against real servers.

Two servers take part: the session's test server (the source, where graphs
are seeded and exported) and a second local home that the offline import
stops, fills and starts again. The strongest checks: the offline import of
the standard transform stage gives exactly the graph an online replay gives
(``replay_snapshot``), and a graph full of values the importer cannot take
natively (empty strings and lists, mixed-type properties, byte arrays,
durations, points, zones, pre-1970 instants, hostile names) comes back equal
to its source.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from etl import localdb
from etl.errors import ConfigError, StageError
from etl.export import run_export
from etl.graph.connection import open_driver
from etl.graph.params import SOURCE_ID
from etl.offline import run_offline
from etl.settings import Settings, load_settings
from tests.conftest import home_settings
from tests.test_load_support import (
    Stages,
    counts,
    cypher,
    legacy_stages,
    replay_snapshot,
    snapshot,
)

__all__ = ["legacy_stages", "replay_snapshot"]  # session fixtures used here

pytestmark = [
    pytest.mark.db,
    pytest.mark.skipif(
        bool(os.environ.get("NEO4J_URI")), reason="offline import needs a local home"
    ),
]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A second local home (its server started by the first import), stopped at the end."""
    home = tmp_path_factory.mktemp("offline-home")
    settings = home_settings(home)
    try:
        yield settings
    finally:
        localdb.stop(settings)


def _target_snapshot(settings: Settings) -> tuple[list[str], list[str]]:
    settings = settings.with_password(settings.password_file.read_text().strip())
    with open_driver(settings) as driver:
        return snapshot(driver, settings)


def test_offline_import_equals_online_replay(
    target: Settings, legacy_stages: Stages, replay_snapshot: Any, tmp_path: Path
) -> None:
    report, validation = run_offline(target, in_dir=legacy_stages.transform, ledger_dir=tmp_path)
    assert validation.ok, validation.to_json()
    assert _target_snapshot(target) == replay_snapshot
    assert report["mode"] == "offline"
    assert report["seconds"]["import"] > 0
    assert (tmp_path / "report.json").is_file()
    assert (tmp_path / "offline" / "check.log").is_file()
    assert not (tmp_path / "offline" / "input").exists()  # import files removed after success

    # A second import into the now non-empty database is refused, nothing touched ...
    with pytest.raises(StageError, match=r"holds .* nodes.*replaces the whole database") as e:
        run_offline(target, in_dir=legacy_stages.transform, ledger_dir=tmp_path)
    assert "--replace" in str(e.value)
    assert _target_snapshot(target) == replay_snapshot
    # ... and with --replace it overwrites to the same graph.
    _, again = run_offline(
        target, in_dir=legacy_stages.transform, ledger_dir=tmp_path, replace=True
    )
    assert again.ok
    assert _target_snapshot(target) == replay_snapshot


# Values the importer cannot take natively, and names that break header syntax or Cypher.
HOSTILE = """
CREATE (a:Thing:`Odd Label`:`semi;colon` {id: 1, empty: '', tags: [], strs: ['', 'x;y'],
        mixed: 1, bytes: $bytes, dur: duration('P1M2DT3.5S'), pt: point({x: 1.5, y: -2.0}),
        pt3: point({longitude: 13.4, latitude: 52.5, height: 30.0}),
        old: datetime('1900-06-01T12:00:00.123456789+01:00[Europe/Berlin]'),
        utc: datetime('1960-01-01T00:00:00.5Z'), off: datetime('2020-01-01T00:00:00+05:30'),
        lt: localtime('23:59:59.999999999'), t: time('10:00:00+02:00'),
        d: date('1066-10-14'), ldt: localdatetime('1800-01-01T00:00:00.000000001'),
        ints: [1, -2, 9223372036854775807], floats: [1.5, 1e-300], nan: 0.0/0.0,
        bad_floats: [1.0/0.0, 2.0], bools: [true, false], `we:ird`: 'colon',
        `back``tick`: 'x', `MATCH (n) DETACH DELETE n //`: 'inject', unicode: 'ü\\u0000\\n"'})
CREATE (b:Thing {id: 2, empty: 'not empty', mixed: 'text', tags: ['t'], bools: []})
CREATE (c:Other {name: 'no id', big: $big})
CREATE (a)-[:`REL TYPE` {empty: '', w: 1, dur: duration('PT1S')}]->(b)
CREATE (a)-[:`REL TYPE` {empty: '', w: 1, dur: duration('PT1S')}]->(b)
CREATE (b)-[:LINK]->(c)
CREATE (c)-[:LINK {list: [], s: ''}]->(c)
"""


def _value(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    if isinstance(v, bytes):
        return "bytes:" + v.hex()
    if isinstance(v, list):
        return [_value(x) for x in v]
    if hasattr(v, "iso_format"):
        return f"{type(v).__name__}:{v.iso_format()}:{getattr(v, 'tzinfo', None)}"
    return f"{type(v).__name__}:{v!r}"


def exact_snapshot(driver: Any, settings: Settings) -> tuple[list[str], list[str]]:
    """Like ``snapshot``, for values Cypher's toString() refuses (lists, bytes, points)."""

    def props(p: dict[str, Any], types: list[list[str]]) -> str:
        kinds = dict(types)
        return repr(sorted((k, kinds[k], _value(v)) for k, v in p.items() if k != SOURCE_ID))

    q = "[k IN keys(x) | [k, valueType(x[k])]]"
    nodes = cypher(
        driver,
        settings,
        f"MATCH (x) WHERE NOT x:EtlLock AND NOT x:EtlHistory "
        f"RETURN labels(x) AS l, properties(x) AS p, {q} AS t",
    )
    rels = cypher(
        driver,
        settings,
        "MATCH (a)-[x]->(b) RETURN type(x) AS type, properties(a) AS pa, "
        f"[k IN keys(a) | [k, valueType(a[k])]] AS ta, properties(b) AS pb, "
        f"[k IN keys(b) | [k, valueType(b[k])]] AS tb, properties(x) AS p, {q} AS t",
    )
    return (
        sorted(f"{sorted(r['l'])} {props(r['p'], r['t'])}" for r in nodes),
        sorted(
            f"{r['type']} {props(r['pa'], r['ta'])} -> {props(r['pb'], r['tb'])} "
            f"{props(r['p'], r['t'])}"
            for r in rels
        ),
    )


def test_offline_round_trip_of_hostile_values(
    driver: Any, neo4j_settings: Settings, target: Settings, tmp_path: Path
) -> None:
    cypher(driver, neo4j_settings, HOSTILE, bytes=b"\x00\x01\xff", big="z" * 200_000)
    source = exact_snapshot(driver, neo4j_settings)
    export = run_export(neo4j_settings, out_dir=tmp_path / "export", all_labels=True).out_dir
    report, validation = run_offline(
        target, in_dir=export, ledger_dir=tmp_path / "load", replace=True
    )
    assert validation.ok, validation.to_json()
    settings = target.with_password(target.password_file.read_text().strip())
    with open_driver(settings) as d:
        got = exact_snapshot(d, settings)
    for want_part, got_part in zip(source, got, strict=True):
        assert not set(want_part) ^ set(got_part), (
            f"only in source: {sorted(set(want_part) - set(got_part))}\n"
            f"only in import: {sorted(set(got_part) - set(want_part))}"
        )
    assert got == source
    residual = {r["table"]: set(r["columns"]) for r in report["files"]["residual"]}
    # Node a's primary label is `Odd Label` (sorted first, no known key).
    assert {"empty", "bytes", "dur", "pt", "off", "bools", "tags"} <= residual["nodes/Odd Label"]
    assert residual["relationships/REL TYPE"] == {"dur", "empty"}
    assert sum(report["residual_rows"].values()) >= 4
    # The markers and their indexes are gone.
    with open_driver(settings) as d:
        left = cypher(d, settings, "MATCH (n) WHERE n._etl_offline_fix IS NOT NULL RETURN n")
        left += cypher(
            d, settings, "MATCH ()-[r]->() WHERE r._etl_offline_fix IS NOT NULL RETURN r"
        )
        indexes = cypher(d, settings, "SHOW INDEXES YIELD name RETURN name")
        assert counts(d, settings) == counts(driver, neo4j_settings)
    assert left == []
    assert not [i for i in indexes if i["name"].startswith("etl_offline_fix")]


def test_offline_refuses_a_remote_uri(legacy_stages: Stages, tmp_path: Path) -> None:
    settings = load_settings(
        {"uri": "bolt://example.invalid:7687"}, environ={}, env_file=Path("/nonexistent")
    )
    with pytest.raises(ConfigError, match="--mode offline writes the store files"):
        run_offline(settings, in_dir=legacy_stages.transform, ledger_dir=tmp_path)


def test_offline_cli_flags(run_cli: Any, legacy_stages: Stages) -> None:
    result = run_cli("load", "--mode", "offline", "--resume", "--in", str(legacy_stages.transform))
    assert result.exit_code == 2
    assert "--resume belongs to online loads" in result.output
    result = run_cli("load", "--replace", "--in", str(legacy_stages.transform))
    assert result.exit_code == 2
    assert "--replace belongs to --mode offline" in result.output

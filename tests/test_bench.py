"""The benchmark harness's pieces (bench/): script parsing, measuring, ratios, and the
proof that the in-place APOC baseline migrates a graph exactly as our pipeline does.

The last test needs Maven (APOC is fetched like the server's jars, once, into
``.neo4j/apoc``) and starts a server with APOC in a home of its own; it skips
when APOC cannot be fetched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import apoc
from bench.common import ETL, Measurement, measure
from bench.report import ratios, targets
from bench.servers import BenchServer
from etl.localdb import lib_dir
from etl.settings import Settings


@pytest.mark.unit
def test_script_steps_and_directives() -> None:
    steps = apoc.parse_script()
    names = [s.name for s in steps]
    assert names[:4] == [
        "index workflow ids",
        "index issue keys",
        "await indexes",
        "integer issue numbers",
    ]
    migrate = next(s for s in steps if s.name == "migrate workflows")
    assert migrate.batches == (10_000, 1)
    assert "IN TRANSACTIONS OF $batch ROWS ON ERROR CONTINUE" in migrate.text
    assert "apoc.convert.fromJsonMap" in migrate.text
    assert not any(line.lstrip().startswith("//") for s in steps for line in s.text.splitlines())
    checks = [s.name for s in steps if s.check]
    assert len(checks) == 4 and all(n.startswith("check: ") for n in checks)


@pytest.mark.unit
def test_jar_artifact_names() -> None:
    assert apoc._artifact("commons-lang3-3.12.0.jar") == "commons-lang3"
    assert apoc._artifact("apoc-core-5.26.19.jar") == "apoc-core"
    assert apoc._artifact("RoaringBitmap-0.7.17.jar") == "RoaringBitmap"
    assert apoc._artifact("neo4j-cypher-5.26.30.jar") == "neo4j-cypher"


@pytest.mark.unit
def test_measure_repeats_only_fast_steps(tmp_path: Path) -> None:
    calls: list[int] = []
    out = tmp_path / "out.txt"
    m = measure(
        "echo",
        "tiny",
        [sys.executable, "-c", "print('hi')"],
        entities=10,
        repeat=3,
        before=calls.append,
        stdout=out,
        pid=lambda: None,
    )
    assert (m.runs, calls, out.read_text().strip()) == (3, [0, 1, 2], "hi")
    assert len(m.extra["loadavg"]) == 3 and m.rss_mib and m.rss_mib > 1
    slow = measure(
        "slow",
        "tiny",
        [sys.executable, "-c", "pass"],
        entities=1,
        repeat=3,
        repeat_under_s=0.0,
        pid=lambda: None,
    )
    assert slow.runs == 1
    with pytest.raises(RuntimeError, match="failed"):
        measure("boom", "tiny", [sys.executable, "-c", "raise SystemExit(2)"], entities=0)


class _Run:
    def __init__(self, n: int, results: list[Measurement]) -> None:
        self.n, self.size, self.results = n, f"{n:,} workflows", results
        self.info: dict[str, Any] = {}


@pytest.mark.unit
def test_ratios_and_targets() -> None:
    def m(step: str, wall: float, entities: int, rss: float, **extra: Any) -> Measurement:
        return Measurement(step, "", wall, entities, rss_mib=rss, extra=extra)

    small = _Run(
        10,
        [
            m("export", 10, 3_000_000, 300),
            m("transform", 1, 3_000_000, 400),
            m("load (online, in place; validates)", 9, 10, 200),
            m("in-place APOC migration", 40, 3_000_000, 90),
            m(
                "load (online, replay into empty)",
                50,
                1,
                300,
                nodes_per_s=70_000,
                relationships_per_s=90_000,
            ),
            m(
                "naive load (one row per transaction)",
                1,
                0,
                0,
                nodes_per_s=700,
                relationships_per_s=900,
            ),
        ],
    )
    rows = {r[0]: r for r in ratios(small)}
    assert rows["end to end vs in-place APOC (wall)"][3] == "0.50"
    assert rows["load nodes/s vs one row per transaction"][3] == "100.0"
    big = _Run(40, [m("export", 40, 12_000_000, 390)])
    met = {(t[0], t[1]): t[3] for t in targets([small, big])}
    assert met[("export ≥ 200k entities/s", "10 workflows")] is True
    assert met[("online load ≥ 100k rels/s", "10 workflows")] is False
    assert met[("end to end ≤ in-place APOC", "10 workflows")] is True
    assert met[("RSS growth < 20%: export", "10 → 40")] is False  # 300 → 390 MiB is +30 %


def _etl(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run([ETL, *args], env={**os.environ, **env}, capture_output=True, text=True)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return proc.stdout


@pytest.mark.db
@pytest.mark.slow
def test_apoc_inplace_migrates_like_our_pipeline(
    tmp_path: Path, neo4j_settings: Settings, etl_env: dict[str, str], driver: Any
) -> None:
    """The same seeded legacy graph (same seed, so equal by key) on an APOC server and
    on the test server: APOC migrates one in place, our export → transform → load the
    other; `etl diff` of the two migrated graphs must find nothing."""
    seed = ["--quiet", "seed", "--workflows", "300", "--dirty", "0.2", "--replace"]
    server = BenchServer(tmp_path / "apoc-home")
    try:
        apoc.ensure_apoc(server.plugins, lib_dir(server.settings()))
    except (RuntimeError, OSError) as exc:
        pytest.skip(f"APOC could not be fetched: {exc}")
    server.start()
    try:
        env = server.env()
        _etl(env, *seed)
        run = subprocess.run(
            [sys.executable, str(apoc.ROOT / "bench" / "apoc.py")],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        _etl(env, "--quiet", "export", "--all", "--out", str(tmp_path / "apoc"))
    finally:
        server.wipe()
    _etl(etl_env, *seed)
    _etl(etl_env, "--quiet", "export", "--out", str(tmp_path / "export"))
    _etl(
        etl_env,
        "--quiet",
        "transform",
        "--in",
        str(tmp_path / "export"),
        "--out",
        str(tmp_path / "transform"),
    )
    _etl(
        etl_env,
        "--quiet",
        "load",
        "--in",
        str(tmp_path / "transform"),
        "--ledger-dir",
        str(tmp_path / "ledger"),
    )
    _etl(etl_env, "--quiet", "export", "--all", "--out", str(tmp_path / "ours"))
    diff = subprocess.run(
        [ETL, "diff", str(tmp_path / "ours"), str(tmp_path / "apoc")],
        capture_output=True,
        text=True,
    )
    assert diff.returncode == 0, diff.stdout[-4000:]


@pytest.mark.unit
def test_profile_summary_attributes_samples_to_our_code() -> None:
    from bench.profile import attribute, summarize

    ours = "main (etl/cli.py:10);run (etl/transform.py:42)"
    collapsed = "\n".join(
        [
            f"{ours};collect (polars/lazyframe/frame.py:2100) 30",
            f"{ours} 10",
            "<module> (etl:6);<module> (etl/graph/connection.py:10);"
            "<module> (neo4j/__init__.py:1) 5",
            "_worker (concurrent/futures/thread.py:81) 5",
            "not a sample line",
        ]
    )
    prof = summarize(collapsed, stage="transform", wall_s=2.0, rate=100)
    assert prof.samples == 50
    assert prof.busy_s == pytest.approx(0.5)
    assert prof.share == pytest.approx(0.25)
    assert prof.top == [
        ("etl/transform.py:run → Polars", 30),
        ("etl/transform.py:run", 10),
        ("start-up: importing modules", 5),
        ("outside etl/ (start-up, imports, threads)", 5),
    ]
    assert attribute("a (/x/site-packages/neo4j/_sync/io.py:3)").startswith("outside")

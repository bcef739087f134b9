"""Load benchmark: nodes/s, relationships/s and peak RSS of `etl load`, next to a naive baseline.

Uses the *dev* server (`etl db start`, port 17687) and WIPES it. Steps:

1. ``etl seed --workflows N --dirty 0.1 --replace``, ``etl export``, ``etl transform``;
2. **in place**: ``etl load`` into the seeded (source) database — converts every
   migrated Workflow, integer Issue numbers, ``HAS_RUNS``;
3. wipe the database (same server process, so it stays warm), then **replay**:
   ``etl load`` creates the whole target graph (every node and relationship);
4. **reload**: ``etl load`` again into the replayed database: the merge path,
   which finds everything already there (the idempotent cost);
5. **baseline**: the same kinds of writes one row per auto-commit transaction
   (``MERGE`` a node with its properties; ``MATCH`` two nodes, ``MERGE`` the
   relationship) — how a loader is written in an afternoon — on a sample of
   the stage's rows, into labels of its own.

Each ``etl`` step runs in its own process, so its peak RSS (``wait4``) is its
own; rates per kind come from the load's ``report.json`` (rows written / time
spent in that kind's steps). Results go to ``bench/results/<date>.json`` and
``BENCHMARKS.md`` (see ``bench/common.py``).

Usage: python bench/bench_load.py --workflows 100000 [--baseline-rows 2000] [--workers 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ETL, Measurement, measure, save

TARGETS = {"nodes_per_s": 60_000, "relationships_per_s": 100_000, "speedup": 50, "rss_mib": 1024}

BASELINE = """
import json, sys, time
import pandas  # first: to_pylist() gives pandas.Timestamp, which the driver packs only then
import pyarrow.parquet as pq
from etl.graph.connection import open_driver
from etl.settings import load_settings
stage, n = sys.argv[1], int(sys.argv[2])
events = pq.read_table(f"{stage}/nodes/Event.parquet").slice(0, n).to_pylist()
rels = pq.read_table(f"{stage}/relationships/NEXT_EVENT.parquet").slice(0, n).to_pylist()
s = load_settings()
out = {}
with open_driver(s) as driver, driver.session(database=s.database) as session:
    session.run("CREATE INDEX bench_naive IF NOT EXISTS FOR (n:NaiveEvent) ON (n.id)").consume()
    session.run("CALL db.awaitIndexes(300)").consume()
    t = time.perf_counter()
    for row in events:
        props = {k: v for k, v in row.items() if not k.startswith("_")}
        session.run("MERGE (n:NaiveEvent {id: $id}) SET n += $props",
                    id=row["id"], props=props).consume()
    out["nodes_per_s"] = len(events) / (time.perf_counter() - t)
    ids = [r["id"] for r in events]
    session.run("UNWIND $ids AS id MERGE (:NaiveEvent {id: id})", ids=[
        x for r in rels for x in (r["_start.id"], r["_end.id"])]).consume()
    t = time.perf_counter()
    for row in rels:
        session.run("MATCH (a:NaiveEvent {id: $a}) MATCH (b:NaiveEvent {id: $b}) "
                    "MERGE (a)-[:NAIVE_NEXT]->(b)", a=row["_start.id"], b=row["_end.id"]).consume()
    out["relationships_per_s"] = len(rels) / (time.perf_counter() - t)
    session.run("MATCH (n:NaiveEvent) CALL (n) { DETACH DELETE n } IN TRANSACTIONS").consume()
    session.run("DROP INDEX bench_naive IF EXISTS").consume()
print(json.dumps(out))
"""


def etl(*args: str) -> None:
    subprocess.run([ETL, "--quiet", *args], check=True, stdout=subprocess.DEVNULL)


def load_step(
    name: str, size: str, stage: Path, ledger: Path, workers: int
) -> tuple[Measurement, dict[str, Any]]:
    """One ``etl load`` in a child process; its measurement and its report.json."""
    args = [
        ETL,
        "--quiet",
        "load",
        "--in",
        str(stage),
        "--ledger-dir",
        str(ledger),
        "--workers",
        str(workers),
    ]
    m = measure(name, size, args, entities=0)
    report: dict[str, Any] = json.loads((ledger / "report.json").read_text())
    m.entities = report["nodes_written"] + report["relationships_written"]
    m.extra = {k: report[k] for k in ("nodes_per_s", "relationships_per_s", "mode", "seconds")}
    m.note = (
        f"{report['mode']}: nodes {report['nodes_per_s'] or 0:,}/s, "
        f"rels {report['relationships_per_s'] or 0:,}/s"
    )
    if not report["validation"]["ok"]:
        sys.exit(f"{name}: validation failed: {report['validation']}")
    return m, report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workflows", type=int, default=100_000)
    ap.add_argument("--baseline-rows", type=int, default=2_000)
    ap.add_argument("--workers", type=int, default=3)
    args = ap.parse_args()
    size = f"{args.workflows:,} workflows"
    results: list[Measurement] = []
    with tempfile.TemporaryDirectory(dir="data" if Path("data").is_dir() else None) as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        etl("seed", "--workflows", str(args.workflows), "--dirty", "0.1", "--replace")
        etl("export", "--out", str(root / "export"))
        etl("transform", "--in", str(root / "export"), "--out", str(root / "transform"))
        print(f"seed + export + transform: {time.perf_counter() - started:.0f}s", flush=True)

        m, _ = load_step("load in place", size, root / "transform", root / "l1", args.workers)
        results.append(m)
        print(
            f"{m.step}: {m.entities:,} rows in {m.wall_s:.1f}s ({m.note}), RSS {m.rss_mib:.0f} MiB",
            flush=True,
        )

        # Empty the database in the same JVM: a restart would also throw away the JIT warmth
        # that the in-place load built, and measure the warm-up instead of the loader.
        wipe = (
            "from etl.graph import admin\nfrom etl.graph.connection import open_driver\n"
            "from etl.settings import load_settings\ns = load_settings()\n"
            "with open_driver(s) as d:\n    admin.wipe_database(d, s.database)\n"
        )
        for attempt in (1, 2):
            done = subprocess.run([sys.executable, "-c", wipe], capture_output=True, text=True)
            if done.returncode == 0:
                break
            print(f"wipe attempt {attempt} failed:\n{done.stderr[-2000:]}", flush=True)
        else:
            sys.exit("could not empty the database")
        replay, report = load_step(
            "load replay", size, root / "transform", root / "l2", args.workers
        )
        results.append(replay)
        print(
            f"{replay.step}: {replay.entities:,} rows in {replay.wall_s:.1f}s "
            f"({replay.note}), RSS {replay.rss_mib:.0f} MiB",
            flush=True,
        )
        m, _ = load_step(
            "reload (merge, no-op)", size, root / "transform", root / "l3", args.workers
        )
        results.append(m)
        print(f"{m.step}: {m.entities:,} rows in {m.wall_s:.1f}s ({m.note})", flush=True)

        proc = subprocess.run(
            [sys.executable, "-c", BASELINE, str(root / "transform"), str(args.baseline_rows)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            sys.exit(f"baseline failed:\n{proc.stderr[-3000:]}")
        naive = json.loads(proc.stdout.strip().splitlines()[-1])
        speed = {k: (report[k] or 0) / naive[k] for k in ("nodes_per_s", "relationships_per_s")}
        note = (
            f"nodes {naive['nodes_per_s']:,.0f}/s, rels {naive['relationships_per_s']:,.0f}/s; "
            f"etl is {speed['nodes_per_s']:.0f}x / {speed['relationships_per_s']:.0f}x faster"
        )
        sample = f"{args.baseline_rows:,} rows each"
        results.append(
            Measurement("baseline (row at a time)", sample, 0.0, 0, note=note, extra=naive)
        )
        print(results[-1].note, flush=True)
    verdict = {
        "nodes_per_s": (report["nodes_per_s"] or 0) >= TARGETS["nodes_per_s"],
        "relationships_per_s": (report["relationships_per_s"] or 0)
        >= TARGETS["relationships_per_s"],
        "speedup": min(speed.values()) >= TARGETS["speedup"],
        "rss_mib": max(r.rss_mib or 0 for r in results) <= TARGETS["rss_mib"],
    }
    print("targets:", ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in verdict.items()))
    path = save(results, name="load", command=f"make bench-load BENCH_WORKFLOWS={args.workflows}")
    print(f"results → {path}")


if __name__ == "__main__":
    main()

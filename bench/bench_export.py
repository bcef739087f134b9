"""Export benchmark: entities/s and peak RSS of `etl export`, next to a naive baseline.

Seeds the *dev* server (`etl db start`; this WIPES it) with `etl seed`, then runs,
each in a fresh child process so peak RSS is its own:

* ``etl``:   ``run_export`` (profiled, id-window batches, external sort, Parquet);
* ``naive``: per label/type ``session.run(...).data()`` → pandas (pyarrow when pandas
  is not installed) → ``to_parquet``, the way one would write it in an afternoon.

Usage:  python bench/bench_export.py --workflows 100000 [--sizes 25000,100000] [--skip-naive]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD_ETL = """
import json, sys, time
from pathlib import Path
from etl.export import run_export
from etl.settings import load_settings
t = time.perf_counter()
r = run_export(load_settings(), out_dir=Path(sys.argv[1]), batch_size=int(sys.argv[2]))
import resource
print(json.dumps({"rows": r.report["rows"], "seconds": time.perf_counter() - t,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

CHILD_NAIVE = """
import json, sys, time
from pathlib import Path
from etl.graph.connection import open_driver
from etl.settings import load_settings
try:
    import pandas as pd
except ImportError:
    pd = None
import pyarrow as pa, pyarrow.parquet as pq
out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
s = load_settings(); rows = 0; t = time.perf_counter()
queries = {
    "Workflow": "MATCH (n:Workflow) RETURN elementId(n) AS eid, properties(n) AS p",
    "Event": "MATCH (n:Event) RETURN elementId(n) AS eid, properties(n) AS p",
    "Issue": "MATCH (n:Issue) RETURN elementId(n) AS eid, properties(n) AS p",
    "Plan": "MATCH (n:Plan) RETURN elementId(n) AS eid, properties(n) AS p",
}
for t_ in ["BELONGS_TO_WORKFLOW", "NEXT_EVENT", "BASED_ON_ISSUE", "GENERATED_FROM", "PART_OF",
           "HAS_PLAN"]:
    queries[t_] = (f"MATCH (a)-[r:{t_}]->(b) RETURN elementId(r) AS eid, a.id AS start, "
                   "b.id AS end, properties(r) AS p")
with open_driver(s) as driver, driver.session(database=s.database) as session:
    for name, q in queries.items():
        data = session.run(q).data()
        flat = [{**{k: v for k, v in d.items() if k != "p"},
                 **{k: (v.isoformat() if hasattr(v, "isoformat") else v)
                    for k, v in (d["p"] or {}).items()}} for d in data]
        rows += len(flat)
        if pd is not None:
            pd.DataFrame(flat).to_parquet(out / f"{name}.parquet")
        else:
            pq.write_table(pa.Table.from_pylist(flat), out / f"{name}.parquet")
import resource
print(json.dumps({"rows": rows, "seconds": time.perf_counter() - t,
                  "frame": "pandas" if pd is not None else "pyarrow",
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def child(code: str, *args: str) -> dict[str, float]:
    """Run ``code`` in a fresh interpreter; it reports its own rows, seconds and peak RSS."""
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        sys.exit(f"child failed:\n{proc.stderr[-3000:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def seed(workflows: int) -> None:
    subprocess.run(
        [
            str(Path(sys.executable).parent / "etl"),
            "--quiet",
            "seed",
            "--workflows",
            str(workflows),
            "--replace",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workflows", type=int, default=100_000)
    ap.add_argument("--sizes", help="comma-separated workflow counts (overrides --workflows)")
    ap.add_argument("--batch-size", type=int, default=20_000)
    ap.add_argument("--skip-naive", action="store_true")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else [args.workflows]
    for n in sizes:
        started = time.perf_counter()
        seed(n)
        print(f"seeded {n:,} workflows in {time.perf_counter() - started:.0f}s", flush=True)
        with tempfile.TemporaryDirectory(dir="data" if Path("data").is_dir() else None) as tmp:
            # The first export after seeding also pays Neo4j's query planning and JIT
            # warm-up (and a cold page cache); the second is the steady state.
            cold = child(CHILD_ETL, f"{tmp}/cold", str(args.batch_size))
            print(
                f"workflows={n:,} etl (first run after seeding): "
                f"{cold['rows'] / cold['seconds']:,.0f}/s in {cold['seconds']:.1f}s",
                flush=True,
            )
            etl = child(CHILD_ETL, f"{tmp}/export", str(args.batch_size))
            line = (
                f"workflows={n:,} etl: {etl['rows']:,.0f} entities in {etl['seconds']:.1f}s "
                f"= {etl['rows'] / etl['seconds']:,.0f}/s, "
                f"peak RSS {etl['peak_rss_mib']:.0f} MiB"
            )
            print(line, flush=True)
            if not args.skip_naive:
                naive = child(CHILD_NAIVE, f"{tmp}/naive")
                print(
                    f"workflows={n:,} naive ({naive.get('frame')}): {naive['rows']:,.0f} rows in "
                    f"{naive['seconds']:.1f}s = {naive['rows'] / naive['seconds']:,.0f}/s, "
                    f"peak RSS {naive['peak_rss_mib']:.0f} MiB; "
                    f"etl is {naive['seconds'] / etl['seconds']:.1f}× faster",
                    flush=True,
                )


if __name__ == "__main__":
    main()

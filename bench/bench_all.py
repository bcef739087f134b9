"""`make bench`: the whole pipeline against the original in-place APOC migration and the
naive ways, on the same machine, in the same run.

For each size (workflows): start a benchmark server in a home of its own (never
``.neo4j/home``), seed the legacy graph once (``etl seed``, fixed seed), stop it,
and give every contender an identical fresh copy of that store (``servers.py``):

1. ours, stage by stage: ``etl export``, ``etl transform``, ``etl load`` (online,
   in place; it validates at the end), ``etl validate``; the online replay into
   an empty server (the nodes/s and relationships/s targets); the offline
   import into a fresh home (``etl load --mode offline``);
2. the original in-place migration, ``bench/apoc_inplace.cypher`` with APOC core
   (``bench/apoc.py``), on its own fresh copy;
3. the naive ways: ``.data()`` → DataFrame → Parquet export (sizes up to
   ``--naive-max``: it holds a whole label in Python objects), and one row per
   transaction loading on a sample (``--naive-load-rows``).

Then it exports both migrated graphs with ``etl export --all`` and runs ``etl diff``:
the benchmark fails unless they are identical. Steps that take under a minute
are repeated (``--runs``, median reported); steps that change the graph get a
fresh copy before each run (untimed). Results: ``bench/results/<date>.json`` and
the ``pipeline`` section of BENCHMARKS.md (``report.py``).

Usage: python bench/bench_all.py --sizes 100000,400000 [--runs 3] [--dirty 0.01]
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import apoc, naive
from bench.common import ETL, ROOT, Measurement, measure
from bench.report import finish
from bench.servers import BenchServer
from etl.localdb import lib_dir

UNDER = 60.0  # seconds: a step faster than this is repeated and its median quoted


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def etl(server: BenchServer, *args: str) -> str:
    proc = subprocess.run([ETL, *args], env=_env(server), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"etl {' '.join(args)} failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return proc.stdout


def _env(server: BenchServer) -> dict[str, str]:
    import os

    return {**os.environ, **server.env()}


def stage_rows(stage: Path) -> int:
    manifest = json.loads((stage / "manifest.json").read_text())
    return sum(t["rows"] for t in manifest["tables"] if t["kind"] in ("node", "relationship"))


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


def offline_available() -> bool:
    out = subprocess.run([ETL, "load", "--help"], capture_output=True, text=True).stdout
    return "offline" in out and "--home" in out and "not implemented" not in out


class SizeRun:
    """Every measurement for one graph size."""

    def __init__(self, workflows: int, args: argparse.Namespace, work: Path) -> None:
        self.n, self.a, self.dir = workflows, args, work / f"w{workflows}"
        self.size = f"{workflows:,} workflows"
        self.password = secrets.token_urlsafe(24)
        self.src = self.server("src")
        self.results: list[Measurement] = []
        self.info: dict[str, Any] = {"workflows": workflows}

    def server(self, name: str) -> BenchServer:
        """A home of this size; all share one password, as clones share the system db."""
        return BenchServer(self.dir / name, password=self.password)

    def step(self, m: Measurement) -> Measurement:
        self.results.append(m)
        loads = m.extra.get("loadavg")
        log(
            f"  {m.step}: {m.wall_s:.2f}s ({m.runs} run(s)), {m.rate:,.0f}/s, "
            f"RSS {m.rss_mib or 0:.0f} MiB, Neo4j {m.server_rss_mib or 0:.0f} MiB, load {loads}"
        )
        return m

    def restore(self, server: BenchServer) -> None:
        """``server`` (stopped or not) gets a fresh copy of the seeded store and starts."""
        server.stop()
        self.src.clone_to(server)
        server.start()

    def run(self) -> None:
        log(f"{self.size}: seeding")
        if not self.a.seed_offline:
            self.src.start()  # the offline seed imports into the stopped home
        t = time.perf_counter()
        seeded = json.loads(
            etl(
                self.src,
                "--json",
                "seed",
                "--workflows",
                str(self.n),
                "--seed",
                str(self.a.seed),
                "--dirty",
                str(self.a.dirty),
                "--replace",
                *(["--offline"] if self.a.seed_offline else []),
            )
        )
        self.info["seed_s"] = round(time.perf_counter() - t, 1)
        self.info["graph"] = {
            "nodes": seeded["total_nodes"],
            "relationships": seeded["total_relationships"],
        }
        if self.a.seed_offline:
            # The first start registers the imported database (and its id, part of every
            # element id) in the system database; copies of a never-started home would each
            # get their own id, and the export's element ids would match none of them.
            self.src.start()
        self.src.stop()
        self.info["store_mib"] = round(self.src.store_mib())
        log(f"  seeded in {self.info['seed_s']}s: {self.info['graph']}")
        self.ours()
        if self.n <= self.a.replay_max:
            self.replay()
        else:
            self.info["replay"] = f"skipped above --replay-max {self.a.replay_max:,}"
        self.offline()
        self.in_place_apoc()
        self.equivalence()
        if not self.a.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _measure(
        self, step: str, args: list[str], server: BenchServer | None, **kw: Any
    ) -> Measurement:
        return measure(
            step,
            self.size,
            args,
            env=server.env() if server else None,
            pid=(lambda: server.pid) if server else (lambda: None),
            repeat=self.a.runs,
            repeat_under_s=UNDER,
            **kw,
        )

    def ours(self) -> None:
        d, ours = self.dir, self.server("ours")
        exp, tr, ledger = d / "export", d / "transform", d / "ledger"
        self.restore(ours)
        m = self._measure(
            "export",
            [ETL, "--quiet", "export", "--out", str(exp)],
            ours,
            entities=0,
            before=lambda i: fresh(exp),
        )
        m.entities = self.info["entities"] = stage_rows(exp)
        self.step(m)
        if self.n <= self.a.naive_max:
            out = d / "naive-export"
            m = self._measure(
                "naive export (.data() → DataFrame → Parquet)",
                [sys.executable, "-c", naive.EXPORT, str(out)],
                ours,
                entities=self.info["entities"],
                before=lambda i: fresh(out),
            )
            self.step(m)
        m = self._measure(
            "transform",
            [ETL, "--quiet", "transform", "--in", str(exp), "--out", str(tr)],
            None,
            entities=self.info["entities"],
            before=lambda i: fresh(tr),
        )
        self.step(m)

        def again(i: int) -> None:
            fresh(ledger)
            if i:
                self.restore(ours)

        m = self._measure(
            "load (online, in place; validates)",
            [ETL, "--quiet", "load", "--in", str(tr), "--ledger-dir", str(ledger)],
            ours,
            entities=0,
            before=again,
        )
        report = json.loads((ledger / "report.json").read_text())
        m.entities = report["nodes_written"] + report["relationships_written"]
        writing = sum(s["seconds"] for s in report["steps"])
        m.note = (
            f"{report['mode']}: nodes {report['nodes_per_s'] or 0:,}/s, rels "
            f"{report['relationships_per_s'] or 0:,}/s; batches {writing:.0f}s of "
            f"{report['seconds']:.0f}s (the rest: schema, checks; validation after)"
        )
        self.step(m)
        m = self._measure(
            "validate",
            [ETL, "--quiet", "validate", "--in", str(tr)],
            ours,
            entities=self.info["entities"],
        )
        self.step(m)
        etl(ours, "--quiet", "export", "--all", "--out", str(fresh(d / "ours-migrated")))
        self.naive_load(ours, tr)
        ours.wipe()

    def naive_load(self, server: BenchServer, stage: Path) -> None:
        rows = str(self.a.naive_load_rows)
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", naive.LOAD, str(stage), rows],
            env=_env(server),
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"naive load failed:\n{proc.stderr[-3000:]}")
        rates = json.loads(proc.stdout.strip().splitlines()[-1])
        m = Measurement(
            "naive load (one row per transaction)",
            f"{self.a.naive_load_rows:,} rows each",
            time.perf_counter() - t,
            0,
            runs=1,
            extra=rates,
        )
        m.note = (
            f"nodes {rates['nodes_per_s']:,.0f}/s, rels {rates['relationships_per_s']:,.0f}/s"
            " (sample of Event / NEXT_EVENT rows)"
        )
        self.step(m)

    def replay(self) -> None:
        """Online load of the whole transform stage into an empty server (every node and rel)."""
        srv, tr, ledger = self.server("replay"), self.dir / "transform", self.dir / "l2"

        def empty(i: int) -> None:
            fresh(ledger)
            srv.stop()
            shutil.rmtree(srv.home / "data", ignore_errors=True)
            srv.start()

        m = self._measure(
            "load (online, replay into empty)",
            [ETL, "--quiet", "load", "--in", str(tr), "--ledger-dir", str(ledger)],
            srv,
            entities=0,
            before=empty,
        )
        report = json.loads((ledger / "report.json").read_text())
        m.entities = report["nodes_written"] + report["relationships_written"]
        m.extra.update(
            nodes_per_s=report["nodes_per_s"], relationships_per_s=report["relationships_per_s"]
        )
        m.note = (
            f"{report['mode']}: nodes {report['nodes_per_s'] or 0:,}/s, rels "
            f"{report['relationships_per_s'] or 0:,}/s"
        )
        self.step(m)
        srv.wipe()

    def offline(self) -> None:
        if not offline_available():
            log("  offline import: not available (etl load rejects --mode offline)")
            self.info["offline"] = "not available: `etl load --mode offline` was rejected"
            return
        srv, tr, ledger = self.server("offline"), self.dir / "transform", self.dir / "l3"

        def empty(i: int) -> None:
            srv.stop()
            fresh(ledger)
            shutil.rmtree(srv.home / "data", ignore_errors=True)

        m = self._measure(
            "offline import (neo4j-admin, fresh home; checks, validates)",
            [
                ETL,
                "--quiet",
                "load",
                "--mode",
                "offline",
                "--home",
                str(srv.home),
                "--in",
                str(tr),
                "--ledger-dir",
                str(ledger),
            ],
            srv,
            entities=stage_rows(tr),
            before=empty,
        )
        m.note = "RSS: etl and the neo4j-admin JVM it waits for"
        self.step(m)
        srv.wipe()

    def in_place_apoc(self) -> None:
        srv, out = self.server("apoc"), self.dir / "apoc.json"
        apoc.ensure_apoc(srv.plugins, lib_dir(srv.settings()))
        m = self._measure(
            "in-place APOC migration (bench/apoc_inplace.cypher)",
            [sys.executable, str(ROOT / "bench" / "apoc.py")],
            srv,
            entities=self.info["entities"],
            before=lambda i: self.restore(srv),
            stdout=out,
        )
        result = json.loads(out.read_text().strip().splitlines()[-1])
        steps = {}
        for s in result["steps"]:
            key = s["step"] + (f" (batch {s['batch']})" if s["step"].startswith("migrate") else "")
            steps[key] = s["seconds"]
        m.extra.update(
            steps=steps, failed_batches=result["failed_batches"], checks=result["checks"]
        )
        m.note = (
            f"migrate {steps.get('migrate workflows (batch 10000)', 0):.1f}s, "
            f"{result['failed_batches']} failed batch(es) retried row by row; "
            "RSS: the Python client"
        )
        self.step(m)
        etl(srv, "--quiet", "export", "--all", "--out", str(fresh(self.dir / "apoc-migrated")))
        srv.wipe()

    def equivalence(self) -> None:
        proc = subprocess.run(
            [
                ETL,
                "diff",
                str(self.dir / "ours-migrated"),
                str(self.dir / "apoc-migrated"),
                "--samples",
                "5",
            ],
            capture_output=True,
            text=True,
        )
        self.info["diff_exit"] = proc.returncode
        self.info["diff"] = proc.stdout[-4000:]
        log(
            f"  etl diff ours vs APOC: exit {proc.returncode} "
            f"({'identical' if proc.returncode == 0 else 'DIFFERENT'})"
        )
        if proc.returncode != 0:
            print(proc.stdout[-6000:], proc.stderr[-2000:], flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100000,400000", help="comma-separated workflow counts")
    ap.add_argument("--runs", type=int, default=3, help="runs of each step under a minute")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--dirty", type=float, default=0.01, help="planted bad workflows (fraction)")
    ap.add_argument(
        "--online-seed",
        dest="seed_offline",
        action="store_false",
        help="seed through Bolt (`etl seed`) instead of `etl seed --offline` (neo4j-admin "
        "import of the same graph, several times faster; seeding is not measured)",
    )
    ap.add_argument("--naive-max", type=int, default=100_000, help="largest naive export size")
    ap.add_argument("--naive-load-rows", type=int, default=2_000)
    ap.add_argument(
        "--replay-max",
        type=int,
        default=100_000,
        help="largest size whose online replay into an empty server is measured (the "
        "longest step: about 6 min at 100k on a busy 2-core machine)",
    )
    ap.add_argument("--work", type=Path, default=ROOT / "data" / "bench-work")
    ap.add_argument("--keep", action="store_true", help="keep the homes and stages")
    ap.add_argument("--command", default=None, help="the command line recorded in the results")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    command = args.command or f"python bench/bench_all.py --sizes {args.sizes} --runs {args.runs}"
    started = time.perf_counter()
    done: list[SizeRun] = []
    fresh(args.work)
    try:
        for n in sizes:
            run = SizeRun(n, args, args.work)
            done.append(run)
            run.run()
    finally:
        for run in done:
            for sub in ("src", "ours", "replay", "offline", "apoc"):
                if (run.dir / sub).is_dir():
                    BenchServer(run.dir / sub).stop()
    total = time.perf_counter() - started
    name = "pipeline" if max(sizes) >= 100_000 else "pipeline-quick"
    ok = finish(done, command=command, total_s=total, name=name)
    log(f"done in {total / 60:.1f} min")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

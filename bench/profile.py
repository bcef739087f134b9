"""`make profile`: where each of our stages spends its time, sampled with py-spy.

Seeds a legacy graph in a benchmark home of its own (``servers.py``; never the dev
server), then runs ``etl export``, ``etl transform``, ``etl load`` (online, in
place) and ``etl validate`` once each under ``py-spy record`` (100 samples/s,
active samples only, child processes included). For each stage it reports:

* wall time, and **our CPU share**: sampled busy seconds / wall. A stage whose
  share is low spends its time waiting for the server (or the disk); the Neo4j
  JVM's CPU seconds over the same interval are read from ``/proc``.
* the functions that take the most busy samples, attributed to the innermost
  frame of our code (``etl/``) and the library call it made (Polars, PyArrow,
  the driver's packstream), so "ours" and "what we call" are told apart.

The collapsed stacks (``<stage>.txt``, the format speedscope.app and
flamegraph.pl read) go to ``bench/results/profile-<date>/``, the summary to
``summary.md`` there and to the ``profile`` section of BENCHMARKS.md.

Usage: python bench/profile.py [--workflows 20000] [--rate 100]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BENCHMARKS_MD, ETL, RESULTS, machine
from bench.servers import BenchServer

PY_SPY = str(Path(sys.executable).with_name("py-spy"))
_OURS = re.compile(r"\((?:[^()]*/)?(etl/[\w/]+\.py):(\d+)\)")
_LIBS = (
    ("polars", "Polars"),
    ("pyarrow", "PyArrow"),
    ("neo4j/_codec", "driver packstream"),
    ("neo4j/", "driver"),
    ("hashlib", "hashlib"),
    ("json", "json"),
)


@dataclass
class StageProfile:
    stage: str
    wall_s: float
    rate: int
    samples: int = 0
    jvm_cpu_s: float | None = None
    top: list[tuple[str, int]] = field(default_factory=list)

    @property
    def busy_s(self) -> float:
        return self.samples / self.rate

    @property
    def share(self) -> float:
        return self.busy_s / self.wall_s if self.wall_s else 0.0


def attribute(stack: str) -> str:
    """``etl/file.py:function`` of the innermost frame of ours, plus the library it called."""
    frames = stack.split(";")
    ours = None
    for i in range(len(frames) - 1, -1, -1):
        m = _OURS.search(frames[i])
        if m:
            ours = (i, f"{m.group(1)}:{frames[i].split(' (')[0]}")
            break
    if ours is None:
        return "outside etl/ (start-up, imports, threads)"
    i, where = ours
    if where.endswith(":<module>"):
        return "start-up: importing modules"
    below = ";".join(frames[i + 1 :])
    for needle, name in _LIBS:
        if needle in below:
            return f"{where} → {name}"
    return where


def summarize(collapsed: str, *, stage: str, wall_s: float, rate: int) -> StageProfile:
    """Busy samples and the top attributions of a py-spy ``raw`` (collapsed) profile."""
    prof = StageProfile(stage, wall_s, rate)
    counts: collections.Counter[str] = collections.Counter()
    for line in collapsed.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        prof.samples += int(n)
        counts[attribute(stack)] += int(n)
    prof.top = counts.most_common(8)
    return prof


def _jvm_cpu_s(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def profile_stage(
    stage: str, args: list[str], out: Path, server: BenchServer, rate: int
) -> StageProfile:
    raw = out / f"{re.sub(r'[^a-z]+', '-', stage).strip('-')}.txt"
    env = {**os.environ, **server.env()}
    cmd = [PY_SPY, "record", "--rate", str(rate), "--format", "raw", "--subprocesses"]
    cmd += ["--output", str(raw), "--", ETL, "--quiet", *args]
    pid = server.pid
    jvm0 = _jvm_cpu_s(pid)
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    jvm1 = _jvm_cpu_s(pid)
    if proc.returncode != 0:
        raise RuntimeError(f"{stage} failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    prof = summarize(raw.read_text(), stage=stage, wall_s=wall, rate=rate)
    if jvm0 is not None and jvm1 is not None:
        prof.jvm_cpu_s = jvm1 - jvm0
    return prof


def render(profiles: list[StageProfile], *, command: str, workflows: int, out: Path) -> str:
    lines = [
        "### profile",
        "",
        f"Command: `{command}` — {machine()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{workflows:,} workflows, load average {os.getloadavg()[0]:.1f} at the end. "
        f"Collapsed stacks: `{out.relative_to(BENCHMARKS_MD.parent)}/`.",
        "",
        "| stage | wall (s) | ours busy (s) | ours busy / wall | Neo4j JVM CPU (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for p in profiles:
        jvm = f"{p.jvm_cpu_s:.1f}" if p.jvm_cpu_s is not None else "–"
        lines.append(f"| {p.stage} | {p.wall_s:.1f} | {p.busy_s:.1f} | {p.share:.0%} | {jvm} |")
    for p in profiles:
        lines += ["", f"`{p.stage}`, share of our busy samples:", ""]
        for where, n in p.top:
            lines.append(f"* {n / max(p.samples, 1):.0%} `{where}`")
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    begin, end = "<!-- bench:profile:begin -->", "<!-- bench:profile:end -->"
    md = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.is_file() else "# Benchmarks\n"
    block = f"{begin}\n{text}{end}"
    if begin in md and end in md:
        md = md[: md.index(begin)] + block + md[md.index(end) + len(end) :]
    else:
        md = md.rstrip("\n") + "\n\n" + block + "\n"
    BENCHMARKS_MD.write_text(md)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workflows", type=int, default=20_000)
    ap.add_argument("--rate", type=int, default=100, help="samples per second")
    ap.add_argument("--work", type=Path, default=Path("data/bench-work/profile"))
    ap.add_argument("--command", default=None)
    a = ap.parse_args()
    if not Path(PY_SPY).is_file():
        sys.exit(f"py-spy not found at {PY_SPY}: run `make install` (it is a dev dependency)")
    out = RESULTS / f"profile-{time.strftime('%Y-%m-%d')}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    shutil.rmtree(a.work, ignore_errors=True)
    server = BenchServer(a.work / "home")
    exp, tr, ledger = a.work / "export", a.work / "transform", a.work / "ledger"
    profiles: list[StageProfile] = []
    try:
        server.start()
        print(f"seeding {a.workflows:,} workflows …", flush=True)
        subprocess.run(
            [ETL, "--quiet", "seed", "--workflows", str(a.workflows), "--seed", "42",
             "--dirty", "0.01", "--replace"],
            env={**os.environ, **server.env()},
            check=True,
        )  # fmt: skip
        stages = [
            ("export", ["export", "--out", str(exp)]),
            ("transform", ["transform", "--in", str(exp), "--out", str(tr)]),
            ("load (in place)", ["load", "--in", str(tr), "--ledger-dir", str(ledger)]),
            ("validate", ["validate", "--in", str(tr)]),
        ]
        for stage, args in stages:
            p = profile_stage(stage, args, out, server, a.rate)
            print(f"{stage}: {p.wall_s:.1f}s wall, ours busy {p.share:.0%}", flush=True)
            profiles.append(p)
    finally:
        server.wipe()
        shutil.rmtree(a.work, ignore_errors=True)
    command = a.command or f"python bench/profile.py --workflows {a.workflows}"
    text = render(profiles, command=command, workflows=a.workflows, out=out)
    (out / "summary.md").write_text(text)
    write_section(text)
    print(text)


if __name__ == "__main__":
    main()

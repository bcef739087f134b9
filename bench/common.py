"""Shared benchmark plumbing: run a step as a subprocess, measure wall time and peak RSS.

Each measured step runs as its own process (`etl …`), so its peak RSS is the
kernel's ``ru_maxrss`` for that child alone (from ``os.wait4``), not the
harness's. The Neo4j JVM's peak is read from ``/proc/<pid>/status`` (VmHWM)
after resetting it with ``clear_refs`` (Linux ≥ 4.0), so it covers the step only.

Results are appended to ``bench/results/<YYYY-MM-DD>.json`` and rendered into
the table between the markers in ``BENCHMARKS.md``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
ETL = str(Path(sys.executable).with_name("etl"))
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


@dataclass
class Measurement:
    step: str
    size: str
    wall_s: float
    entities: int
    rss_mib: float | None = None
    server_rss_mib: float | None = None
    runs: int = 1
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.entities / self.wall_s if self.wall_s > 0 else 0.0


def server_pid() -> int | None:
    pid_file = ROOT / ".neo4j" / "home" / "run" / "etl-neo4j.pid"
    home = os.environ.get("ETL_NEO4J_HOME")
    if home:
        pid_file = Path(home) / "run" / "etl-neo4j.pid"
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _reset_peak(pid: int | None) -> None:
    if pid is None:
        return
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def _cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds the process has used so far (``/proc/<pid>/stat``)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _peak_mib(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def measure(
    step: str,
    size: str,
    args: list[str],
    *,
    entities: int,
    repeat: int = 1,
    env: dict[str, str] | None = None,
    note: str = "",
    pid: Callable[[], int | None] | None = None,
    before: Callable[[int], None] | None = None,
    stdout: Path | None = None,
    repeat_under_s: float | None = None,
) -> Measurement:
    """Run ``args`` ``repeat`` times; report the median wall time and the max peak RSS.

    ``pid`` gives the Neo4j server's pid (default: ``server_pid()``), looked up
    after ``before(run_index)``, which prepares each run (untimed: e.g. restores a
    fresh copy of the graph). ``stdout`` keeps the last run's output. With
    ``repeat_under_s``, runs after the first happen only while the first took
    less than that (the "median of 3 where a step takes under a minute" rule).
    The 1-minute load average is recorded before each run (``extra["loadavg"]``).
    """
    walls: list[float] = []
    rss: list[float] = []
    server: list[float] = []
    loads: list[float] = []
    cpu: list[float] = []
    server_cpu: list[float] = []
    for n in range(repeat):
        if n and repeat_under_s is not None and walls[0] >= repeat_under_s:
            break
        if before is not None:
            before(n)
        spid = pid() if pid is not None else server_pid()
        _reset_peak(spid)
        loads.append(round(os.getloadavg()[0], 2))
        cpu0 = _cpu_s(spid)
        out = stdout.open("wb") if stdout is not None else subprocess.DEVNULL
        started = time.perf_counter()
        try:
            proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.PIPE, env={**os.environ, **(env or {})}
            )
            assert proc.stderr is not None
            stderr = proc.stderr.read().decode(errors="replace")  # drain: no pipe deadlock
            _, status, usage = os.wait4(proc.pid, 0)
            walls.append(time.perf_counter() - started)
        finally:
            if stdout is not None and not isinstance(out, int):
                out.close()
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{stderr[-3000:]}")
        rss.append(usage.ru_maxrss / 1024)  # Linux reports KiB (waited-for children included)
        cpu.append(usage.ru_utime + usage.ru_stime)
        cpu1 = _cpu_s(spid)
        if cpu0 is not None and cpu1 is not None:
            server_cpu.append(cpu1 - cpu0)
        peak = _peak_mib(spid)
        if peak is not None:
            server.append(peak)
    return Measurement(
        step=step,
        size=size,
        wall_s=statistics.median(walls),
        entities=entities,
        rss_mib=max(rss),
        server_rss_mib=max(server) if server else None,
        runs=len(walls),
        note=note,
        extra={
            "walls_s": [round(w, 3) for w in walls],
            "loadavg": loads,
            # CPU seconds of our process (and children it waited for) and of the Neo4j JVM:
            # which side a step is bound by (2 cores: at most 2 s of CPU per second).
            "cpu_s": round(statistics.median(cpu), 2),
            "server_cpu_s": round(statistics.median(server_cpu), 2) if server_cpu else None,
        },
    )


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.machine()}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, {platform.system()}"


def save(
    results: list[Measurement], *, name: str, command: str, extra_md: str = "", **meta: Any
) -> Path:
    """Append to bench/results/<date>.json and refresh BENCHMARKS.md's table for ``name``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    path = RESULTS / f"{day}.json"
    runs: list[dict[str, Any]] = json.loads(path.read_text()) if path.is_file() else []
    runs.append(
        {
            "benchmark": name,
            "command": command,
            "machine": machine(),
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            **meta,
            "results": [asdict(m) | {"rate_per_s": round(m.rate)} for m in results],
        }
    )
    path.write_text(json.dumps(runs, indent=2) + "\n")
    _render_markdown(name, command, results, extra_md)
    return path


def _load(m: Measurement) -> str:
    loads = m.extra.get("loadavg") or []
    return f"{statistics.median(loads):.1f}" if loads else ""


def _render_markdown(
    name: str, command: str, results: list[Measurement], extra_md: str = ""
) -> None:
    rows = [
        "| step | size | wall (s) | entities | entities/s | peak RSS (MiB) "
        "| Neo4j RSS (MiB) | runs | load avg | note |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for m in results:
        cpu, scpu = m.extra.get("cpu_s"), m.extra.get("server_cpu_s")
        if cpu is not None:
            more = f"CPU s: ours {cpu:.0f}" + (f", Neo4j {scpu:.0f}" if scpu is not None else "")
            m.note = f"{m.note}; {more}" if m.note else more
        rows.append(
            f"| {m.step} | {m.size} | {m.wall_s:.2f} | {m.entities:,} | {m.rate:,.0f} | "
            f"{m.rss_mib or 0:,.0f} | {m.server_rss_mib or 0:,.0f} | {m.runs} | {_load(m)} "
            f"| {m.note} |"
        )
    block = "\n".join(
        [
            f"### {name}",
            "",
            f"Command: `{command}` — {machine()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "",
            *rows,
            "",
            *([extra_md.rstrip("\n"), ""] if extra_md else []),
        ]
    )
    begin, end = BEGIN.replace("bench", f"bench:{name}"), END.replace("bench", f"bench:{name}")
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.is_file() else "# Benchmarks\n\n"
    section = f"{begin}\n{block}{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    BENCHMARKS_MD.write_text(text)

"""The in-place APOC baseline: fetch APOC core, and run ``bench/apoc_inplace.cypher``.

``ensure_apoc(plugins, lib)`` resolves ``org.neo4j.procedure:apoc-core`` and
``apoc-common`` with their runtime dependencies from Maven Central once (via
``tools/apoc/pom.xml``, into ``.neo4j/apoc/<version>/``) and copies into
``plugins`` the jars the server does not already ship (it ships newer
``commons-lang3``/``commons-text``/``asm``/``slf4j``; two copies of a class on
one class path is asking for trouble). APOC 5.26.19, the newest on Central,
loads on the 5.26.30 server; ``etl.localdb`` puts ``<home>/plugins/*`` on the
class path, and ``apoc.convert.fromJsonMap`` is a function, so no
``dbms.security.procedures.unrestricted`` is needed.

As a script it runs the migration against the configured server (settings from
the environment, like ``etl``) and prints one JSON line: seconds per step,
failed batches, and the validation checks (each must be 0)::

    python bench/apoc.py [--script bench/apoc_inplace.cypher] [--batch 10000]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from etl.localdb import resolve_jars

ROOT = Path(__file__).resolve().parent.parent
POM = ROOT / "tools" / "apoc" / "pom.xml"
SCRIPT = ROOT / "bench" / "apoc_inplace.cypher"
APOC_VERSION = "5.26.19"
CACHE = ROOT / ".neo4j" / "apoc"
_VERSIONED = re.compile(r"^(?P<name>.+?)-\d[\w.]*?(?:-[a-z]+)?\.jar$")


def _artifact(jar: str) -> str:
    m = _VERSIONED.match(jar)
    return m.group("name") if m else jar


def fetch_apoc(version: str = APOC_VERSION) -> Path:
    """The folder of APOC's jars (resolved with Maven the first time)."""
    return resolve_jars(POM, {"apoc.version": version}, CACHE / version, what=f"APOC {version}")


def ensure_apoc(plugins: Path, lib: Path, version: str = APOC_VERSION) -> list[str]:
    """Copy APOC and the dependencies the server lacks into ``plugins``; their names."""
    shipped = {_artifact(p.name) for p in lib.glob("*.jar")}
    plugins.mkdir(parents=True, exist_ok=True)
    copied = []
    for jar in sorted(fetch_apoc(version).glob("*.jar")):
        if _artifact(jar.name) in shipped:
            continue
        shutil.copy2(jar, plugins / jar.name)
        copied.append(jar.name)
    return copied


@dataclass
class Step:
    name: str
    text: str
    batches: tuple[int, ...] | None = None  # @repeat batch=A,B
    check: bool = False


def parse_script(path: Path = SCRIPT) -> list[Step]:
    """Statements of the script, each introduced by ``// step: <name>``."""
    steps: list[Step] = []
    for chunk in re.split(r"^// step: ", path.read_text(), flags=re.M)[1:]:
        name, _, body = chunk.partition("\n")
        repeat = re.search(r"^// @repeat batch=([\d,]+)", body, flags=re.M)
        lines = [ln for ln in body.splitlines() if not ln.lstrip().startswith("//")]
        text = "\n".join(lines).strip().rstrip(";").strip()
        steps.append(
            Step(
                name=name.strip(),
                text=text,
                batches=tuple(int(x) for x in repeat.group(1).split(",")) if repeat else None,
                check="// @check" in body,
            )
        )
    return steps


def run_script(driver: Any, database: str, steps: list[Step], *, batch: int) -> dict[str, Any]:
    """Run every step in auto-commit transactions; timings, results and check counts."""
    snapshot = datetime.now(UTC)
    out: dict[str, Any] = {"steps": [], "checks": {}, "failed_batches": 0}
    started = time.perf_counter()
    with driver.session(database=database) as session:
        for step in steps:
            for size in step.batches or (batch,):
                t = time.perf_counter()
                params = {"batch": size, "snapshot": snapshot}
                records = [r.data() for r in session.run(step.text, params)]
                seconds = time.perf_counter() - t
                row = records[0] if len(records) == 1 else {}
                out["steps"].append(
                    {"step": step.name, "batch": size, "seconds": round(seconds, 3), **row}
                )
                if step.check:
                    out["checks"][step.name] = row.get("violations")
                if "failed_batches" in row:
                    out["failed_batches"] += int(row["failed_batches"] or 0)
    out["seconds"] = round(time.perf_counter() - started, 3)
    with driver.session(database=database) as session:
        counts = session.run(
            "MATCH (n) UNWIND labels(n) AS l RETURN l AS label, count(*) AS n ORDER BY l"
        ).data()
    out["labels"] = {r["label"]: r["n"] for r in counts}
    out["ok"] = all(v == 0 for v in out["checks"].values())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--script", type=Path, default=SCRIPT)
    ap.add_argument("--batch", type=int, default=10_000)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from etl.graph.connection import open_driver
    from etl.settings import load_settings

    settings = load_settings()
    with open_driver(settings) as driver:
        result = run_script(driver, settings.database, parse_script(args.script), batch=args.batch)
    print(json.dumps(result, default=str))
    if not result["ok"]:
        sys.exit(3)


if __name__ == "__main__":
    main()

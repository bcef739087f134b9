"""Measure what one Neo4j version's `neo4j-admin database import` takes from Parquet.

    .venv/bin/python tools/neo4j/probe_import.py 5.26.3 [PROBE ...]

Each probe imports one small node file (one property column written one way)
into a fresh home of that version, starts its server, reads the property back
and prints ``ok``, ``lost: <what came back>`` or ``fails: <the importer's error>``.
The findings are recorded in ``etl/localdb_versions.py``; this script is how
they were measured, so that a new version can be measured the same way.
"""

from __future__ import annotations

import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from etl import localdb
from etl.graph.connection import open_driver
from etl.settings import load_settings

DELIMITER = "\x1f"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _native_strings() -> tuple[str, pa.Array, list[Any]]:
    values = [["a", "b"], ["c"]]
    return "strs", pa.array(values, pa.large_list(pa.large_string())), values


def _joined_strings() -> tuple[str, pa.Array, list[Any]]:
    values = [["a", "b"], ["c"]]
    joined = [DELIMITER.join(v) for v in values]
    return "strs:string[]", pa.array(joined, pa.large_string()), values


def _native_longs() -> tuple[str, pa.Array, list[Any]]:
    values = [[1, 2], [3]]
    return "ints", pa.array(values, pa.large_list(pa.int64())), values


def _typed_native_longs() -> tuple[str, pa.Array, list[Any]]:
    values = [[1, 2], [3]]
    return "ints:long[]", pa.array(values, pa.large_list(pa.int64())), values


def _joined_longs() -> tuple[str, pa.Array, list[Any]]:
    values = [[1, 2], [3]]
    joined = [DELIMITER.join(map(str, v)) for v in values]
    return "ints:long[]", pa.array(joined, pa.large_string()), values


PROBES: dict[str, Callable[[], tuple[str, pa.Array, list[Any]]]] = {
    "native-string-list": _native_strings,
    "joined-string-list": _joined_strings,
    "native-long-list": _native_longs,
    "joined-long-list": _joined_longs,
    "typed-native-long-list": _typed_native_longs,
}


def probe(version: str, name: str, root: Path) -> str:
    column, array, expected = PROBES[name]()
    home = root / name
    settings = load_settings(
        {"local_home": str(home), "bolt_port": free_port(), "neo4j_version": version},
        environ={},
        env_file=Path("/nonexistent"),
    )
    home.mkdir(parents=True)
    table = pa.table(
        {
            ":ID": pa.array([f"n{i}" for i in range(len(expected))], pa.large_string()),
            ":LABEL": pa.array(["P"] * len(expected), pa.large_string()),
            "i:long": pa.array(range(len(expected)), pa.int64()),
            column: array,
        }
    )
    pq.write_table(table, home / "nodes.parquet", compression="zstd")
    args = ["database", "import", "full", "neo4j", "--input-type=parquet"]
    args += [f"--array-delimiter={DELIMITER}", "--overwrite-destination=true", "--verbose"]
    args += [f"--report-file={home / 'import.report'}", f"--nodes={home / 'nodes.parquet'}"]
    proc = localdb.admin_command(settings, args)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0 or "IMPORT DONE" not in out:
        (home / "import.log").write_text(out)
        keep = ("Caused by", "Exception", "ERROR", "Error")
        causes = [ln.strip() for ln in out.splitlines() if ln.strip().startswith(keep)]
        return "fails: " + (causes[-1] if causes else out.strip().splitlines()[-1])[:300]
    try:
        localdb.start(settings)
        settings = settings.with_password(settings.password_file.read_text().strip())
        prop = column.partition(":")[0]
        with open_driver(settings) as driver:
            records, _, _ = driver.execute_query(
                "MATCH (n:P) RETURN n[$p] AS v, labels(n) AS l ORDER BY n.i", p=prop
            )
        got = [r["v"] for r in records]
        labels = {tuple(r["l"]) for r in records}
    finally:
        localdb.stop(settings)
    if labels != {("P",)}:
        return f"lost: labels {sorted(labels)}"
    return "ok" if got == expected else f"lost: {got!r}"


def main() -> None:
    version, *names = sys.argv[1:]
    with tempfile.TemporaryDirectory(prefix=f"probe-{version}-") as tmp:
        for name in names or list(PROBES):
            print(f"{version}  {name:<20} {probe(version, name, Path(tmp))}", flush=True)


if __name__ == "__main__":
    main()

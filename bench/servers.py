"""Benchmark servers: Neo4j homes of their own, on ports of their own, never `.neo4j/home`.

A ``BenchServer`` is a temporary ``NEO4J_HOME`` (same jar cache as ``etl db``,
so nothing is downloaded twice) started with ``etl.localdb``. ``clone_to``
copies a *stopped* server's ``data/`` (store files, transaction logs and the
system database, hence the same password) into another home: the cheapest
identical fresh copy of a seeded graph (a cold file copy of a cleanly shut
down store is what ``neo4j-admin database dump``/``load`` round-trips, minus
the compression).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from etl import localdb
from etl.settings import Settings, load_settings

_CONN_VARS = ("NEO4J_URI", "NEO4J_USERNAME", "NEO4J_PASSWORD", "NEO4J_DATABASE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BenchServer:
    """One Neo4j home under the benchmark's work folder, with its own Bolt port."""

    def __init__(self, home: Path, *, port: int | None = None, password: str | None = None) -> None:
        self.home = home
        self.port = port or free_port()
        home.mkdir(parents=True, exist_ok=True)
        pw = home / "password"
        # Known before the first start, so env() always works; clones of one store
        # must share it (the system database, users included, is copied).
        if password is not None or not pw.is_file():
            pw.unlink(missing_ok=True)
            fd = os.open(pw, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write((password or secrets.token_urlsafe(24)) + "\n")

    def settings(self) -> Settings:
        environ = {k: v for k, v in os.environ.items() if k not in _CONN_VARS}
        environ.update(ETL_NEO4J_HOME=str(self.home), ETL_NEO4J_BOLT_PORT=str(self.port))
        return load_settings(environ=environ, env_file=Path("/nonexistent"))

    @property
    def plugins(self) -> Path:
        return self.home / "plugins"

    @property
    def pid(self) -> int | None:
        return localdb.status(self.settings()).pid

    def env(self) -> dict[str, str]:
        """Environment that points the ``etl`` CLI (and ``measure``) at this server."""
        s = self.settings()
        return {
            "NEO4J_URI": f"bolt://127.0.0.1:{self.port}",
            "NEO4J_USERNAME": s.username,
            "NEO4J_PASSWORD": (self.home / "password").read_text().strip(),
            "NEO4J_DATABASE": s.database,
            "ETL_NEO4J_HOME": str(self.home),
            "ETL_NEO4J_BOLT_PORT": str(self.port),
        }

    def start(self) -> float:
        started = time.perf_counter()
        localdb.start(self.settings())
        return time.perf_counter() - started

    def stop(self) -> None:
        localdb.stop(self.settings())

    def clone_to(self, other: BenchServer) -> float:
        """Copy this (stopped) server's databases (and password) into ``other`` (stopped)."""
        if self.pid is not None or other.pid is not None:
            raise RuntimeError("clone_to needs both servers stopped")
        started = time.perf_counter()
        shutil.rmtree(other.home / "data", ignore_errors=True)
        shutil.copytree(self.home / "data", other.home / "data", symlinks=True)
        shutil.copy2(self.home / "password", other.home / "password")
        return time.perf_counter() - started

    def wipe(self) -> None:
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)

    def store_mib(self) -> float:
        total = sum(p.stat().st_size for p in (self.home / "data").rglob("*") if p.is_file())
        return total / 2**20


@contextmanager
def running(server: BenchServer) -> Iterator[BenchServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()

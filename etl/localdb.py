"""The bundled local Neo4j Community server (`etl db …`), built from Maven Central jars.

Layout (both folders git-ignored):

    .neo4j/dist/<version>/lib/*.jar     the server's runtime jars (shared by every home)
    .neo4j/home/                        NEO4J_HOME: conf/, data/, logs/, plugins/, run/, import/
    .neo4j/home/password                generated password (mode 0600) unless NEO4J_PASSWORD is set

The server runs the same entry point as the distribution's `bin/neo4j console`
(read from the version's jar, ``etl.localdb_java``), on 127.0.0.1 only, on a Java
found for that version; its conf (``etl.localdb_conf``) records the port, version
and TLS setting it was started with.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

from etl.errors import LocalServerError
from etl.graph import admin
from etl.localdb_conf import read_home, write_config
from etl.localdb_java import entry_point, find_java, required_java
from etl.pids import pid_alive
from etl.settings import PROJECT_ROOT, Secret, Settings, local_uri

POM = PROJECT_ROOT / "tools" / "neo4j" / "pom.xml"
ADMIN_TOOL = "org.neo4j.cli.AdminTool"
START_TIMEOUT_S = 120.0
#: What the distribution's neo4j.conf and neo4j-admin give every JVM (the jars name the
#: same list, ConfigFileMigrator): the calendar releases' importer stops without
#: java.nio ("DirectByteBuffer is not available"); 5.26 ran without, and runs with.
JVM_OPENS = (
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--enable-native-access=ALL-UNNAMED",
)


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    pid: int | None
    uri: str
    home: Path
    version: str
    port_in_use_by_other: bool = False
    #: The port the home's running server listens on (its conf), maybe not the asked one.
    port: int = 0
    note: str | None = None


def lib_dir(settings: Settings) -> Path:
    return settings.dist_dir / settings.neo4j_version / "lib"


def _pid_file(settings: Settings) -> Path:
    return settings.local_home / "run" / "etl-neo4j.pid"


def resolve_jars(pom: Path, properties: dict[str, str], folder: Path, *, what: str) -> Path:
    """Copy the jars ``pom`` resolves (Maven Central) into ``folder``, once.

    ``folder/.complete`` records the properties and the pom's hash: editing the
    pom or asking for another version resolves again. The jars land in a
    ``.partial`` sibling first, so an interrupted download is never used.
    """
    marker = folder / ".complete"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:16]
    wanted = " ".join([*properties.values(), digest])
    if marker.is_file() and marker.read_text().strip() == wanted:
        return folder
    if shutil.which("mvn") is None or shutil.which("java") is None:
        raise LocalServerError(
            f"{what} needs Java 17+ and Maven on PATH",
            hint="install them (Debian: apt-get install openjdk-17-jdk-headless maven), "
            "or point NEO4J_URI at a server you already run",
        )
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = ["mvn", "-q", "-B", "-f", str(pom)]
    cmd += [f"-D{k}={v}" for k, v in properties.items()]
    cmd += [f"-DoutputDirectory={tmp}", "package"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise LocalServerError(
            f"Maven could not resolve {what}:\n" + (proc.stdout + proc.stderr)[-2000:],
            hint="check the network access to Maven Central and the version asked for",
        )
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    marker.write_text(wanted + "\n")
    return folder


def install(settings: Settings) -> Path:
    """Resolve the server's jars from Maven Central once; later calls reuse the cache."""
    return resolve_jars(
        POM,
        {"neo4j.version": settings.neo4j_version},
        lib_dir(settings),
        what=f"Neo4j {settings.neo4j_version} (ETL_NEO4J_VERSION)",
    )


def java_for(settings: Settings) -> str:
    """The `java` that runs this version's server and neo4j-admin (jars installed)."""
    lib = lib_dir(settings)
    need = required_java(lib, settings.neo4j_version)
    return find_java(need, configured=settings.java, version=settings.neo4j_version)


def _classpath(settings: Settings) -> str:
    return f"{settings.local_home / 'plugins'}/*:{lib_dir(settings)}/*"


def _is_our_server(pid: int, settings: Settings) -> bool:
    """The pid runs this home's server (pids are reused: a stale pid file may name
    any process after a reboot or a SIGKILL of the server)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc to ask: trust the pid file
    args = [a.decode(errors="replace") for a in cmdline]
    main = any(a.startswith("org.neo4j.server.") for a in args)
    return main and f"--home-dir={settings.local_home}" in args


def _read_pid(settings: Settings) -> int | None:
    try:
        pid = int(_pid_file(settings).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) and _is_our_server(pid, settings) else None


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _ensure_password(settings: Settings) -> str:
    if settings.password is not None:
        return settings.password.reveal()
    pw_file = settings.local_home / "password"
    if pw_file.is_file():
        return pw_file.read_text().strip()
    pw_file.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(24)
    fd = os.open(pw_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    return password


def _log_tail(settings: Settings, lines: int = 30) -> str:
    out = []
    for name in ("console.log", "neo4j.log", "debug.log"):
        p = settings.local_home / "logs" / name
        if p.is_file():
            text = p.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {p} (last {len(text)} lines)\n" + "\n".join(text))
    return "\n".join(out) or "(no log written)"


def start(settings: Settings, *, timeout: float = START_TIMEOUT_S) -> ServerStatus:
    """Start the local server and wait until Bolt answers; a no-op if it already runs."""
    pid = _read_pid(settings)
    if pid is not None:
        st = status(settings)
        if st.port != settings.bolt_port:
            raise LocalServerError(
                f"the server of {settings.local_home} already runs, on port {st.port}, "
                f"not {settings.bolt_port}",
                hint="`etl db stop` first to move it to the new port, or unset "
                "ETL_NEO4J_BOLT_PORT to use it where it is",
            )
        if st.uri != settings.local_uri:
            raise LocalServerError(
                f"the server of {settings.local_home} already runs "
                + ("with" if st.uri.startswith("bolt+ssc") else "without")
                + " TLS",
                hint="`etl db stop` first to start it "
                + ("without" if not settings.tls else "with")
                + " TLS (--tls/--no-tls, ETL_NEO4J_TLS)",
            )
        return st
    if _port_open(settings.bolt_port):
        raise LocalServerError(
            f"port {settings.bolt_port} on 127.0.0.1 is already taken by another process",
            hint="stop that process, or choose another port with ETL_NEO4J_BOLT_PORT",
        )
    install(settings)
    java = java_for(settings)
    password = _ensure_password(settings)
    write_config(settings)
    home = settings.local_home
    log = (home / "logs" / "console.log").open("ab")
    cmd = [
        java,
        f"-Xms{settings.heap}",
        f"-Xmx{settings.heap}",
        "-XX:+UseG1GC",
        "-XX:+ExitOnOutOfMemoryError",
        *JVM_OPENS,
        "-Dfile.encoding=UTF-8",
        "-cp",
        _classpath(settings),
        entry_point(lib_dir(settings), settings.neo4j_version),
        f"--home-dir={home}",
        f"--config-dir={home / 'conf'}",
        "--console-mode",
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=home,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # survives the CLI; stopped by `etl db stop`
    )
    log.close()
    _pid_file(settings).write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    uri = settings.local_uri
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _pid_file(settings).unlink(missing_ok=True)
            raise LocalServerError(
                f"the Neo4j server exited during start (code {proc.returncode})\n"
                + _log_tail(settings),
                hint="see the log above; `etl db reset` wipes a damaged local database",
            )
        if _port_open(settings.bolt_port):
            state = admin.bolt_ready(uri, (settings.username, password))
            if state is True:
                return status(settings)
            if state == "auth":
                # First start (no auth file yet): the default password must be replaced.
                admin.set_initial_password(uri, password)
                if admin.bolt_ready(uri, (settings.username, password)) is True:
                    return status(settings)
        time.sleep(0.3)
    stop(settings)
    raise LocalServerError(
        f"Neo4j did not answer on Bolt port {settings.bolt_port} within {timeout:.0f}s\n"
        + _log_tail(settings),
        hint="the machine may be overloaded; see the log above",
    )


def stop(settings: Settings, *, timeout: float = 60.0) -> bool:
    """SIGTERM (clean shutdown), then SIGKILL after ``timeout``. False if it was not running."""
    pid = _read_pid(settings)
    if pid is None:
        _pid_file(settings).unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        _reap(pid)
        time.sleep(0.2)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
    _reap(pid)
    _pid_file(settings).unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def status(settings: Settings) -> ServerStatus:
    """The home's server: running or not, and where it really listens (its conf's port)."""
    pid = _read_pid(settings)
    record = read_home(settings.local_home)
    port, tls = settings.bolt_port, settings.tls
    note = None
    if pid is not None and record is not None and record.bolt_port is not None:
        port, tls = record.bolt_port, record.tls
        if port != settings.bolt_port:
            note = (
                f"the server of {settings.local_home} listens on port {port} (its conf), "
                f"not on {settings.bolt_port} (ETL_NEO4J_BOLT_PORT)"
            )
    return ServerStatus(
        running=pid is not None,
        pid=pid,
        uri=local_uri(port, tls=tls),
        home=settings.local_home,
        version=(record.neo4j_version if pid and record else None) or settings.neo4j_version,
        port_in_use_by_other=pid is None and _port_open(settings.bolt_port),
        port=port,
        note=note,
    )


def server_settings(settings: Settings) -> Settings:
    """Settings that talk to this home's own server, whatever NEO4J_URI names."""
    st = status(settings)
    password = settings.password if settings.uri_is_local else None
    if password is None and settings.password_file.is_file():
        password = Secret(settings.password_file.read_text().strip())
    return replace(
        settings,
        uri=st.uri,
        bolt_port=st.port,
        tls=st.uri.startswith("bolt+ssc"),
        uri_is_local=True,
        password=password if password is not None else settings.password,
    )


def database_dirs(settings: Settings) -> list[Path]:
    """The store and transaction-log folders of the configured database."""
    data = settings.local_home / "data"
    return [data / "databases" / settings.database, data / "transactions" / settings.database]


def has_store(settings: Settings) -> bool:
    return any(d.is_dir() and any(d.iterdir()) for d in database_dirs(settings))


def drop_store(settings: Settings) -> None:
    """Delete the configured database's files (server stopped); it starts empty next time."""
    for d in database_dirs(settings):
        shutil.rmtree(d, ignore_errors=True)


def reset(settings: Settings) -> None:
    """Stop the server and delete its databases (users included); jars and password stay."""
    stop(settings)
    shutil.rmtree(settings.local_home / "data", ignore_errors=True)
    shutil.rmtree(settings.local_home / "logs", ignore_errors=True)


def admin_command(
    settings: Settings, args: list[str], *, heap: str = "1g"
) -> subprocess.CompletedProcess[str]:
    """Run `neo4j-admin ARGS` from the same jars (``org.neo4j.cli.AdminTool``)."""
    install(settings)
    write_config(settings)
    env = dict(os.environ)
    env["NEO4J_HOME"] = str(settings.local_home)
    env["NEO4J_CONF"] = str(settings.local_home / "conf")
    java = java_for(settings)
    cmd = [java, f"-Xmx{heap}", *JVM_OPENS, "-cp", _classpath(settings), ADMIN_TOOL, *args]
    # The caller's working directory, as for `neo4j-admin` itself: relative paths in
    # ARGS (`etl load --mode offline --ledger-dir data/load`) are the caller's.
    return subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)

"""The local home's `neo4j.conf`, what it records, and its TLS certificate.

`etl db start` writes ``<home>/conf/neo4j.conf``; the same file is read back
(``read_home``) so that another shell, or ``--home H``, finds the server on the
port, version and TLS setting it was really started with, not the ones the
current environment happens to name.

This module imports nothing of ours at run time: ``etl.settings`` reads it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from etl.errors import LocalServerError

if TYPE_CHECKING:
    from etl.settings import Settings

#: A structured comment: Neo4j's strict config validation ignores comments.
_VERSION_KEY = "# etl.neo4j_version="
_CERT_DIR = Path("certificates") / "bolt"


@dataclass(frozen=True)
class HomeRecord:
    """What a home's conf says about its server (None where the conf does not say)."""

    bolt_port: int | None
    neo4j_version: str | None
    tls: bool


def conf_path(home: Path) -> Path:
    return home / "conf" / "neo4j.conf"


def cert_dir(home: Path) -> Path:
    """``public.crt`` (what a client may trust) and ``private.key`` of a TLS home."""
    return home / _CERT_DIR


def read_home(home: Path) -> HomeRecord | None:
    """The port, version and TLS setting in ``home``'s conf; None without a conf."""
    try:
        text = conf_path(home).read_text(errors="replace")
    except OSError:
        return None
    port: int | None = None
    version: str | None = None
    tls = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(_VERSION_KEY):
            version = line[len(_VERSION_KEY) :].strip() or None
            continue
        key, sep, value = line.partition("=")
        if not sep or line.startswith("#"):
            continue
        key, value = key.strip(), value.strip()
        if key == "server.bolt.listen_address":
            m = re.search(r":(\d{1,5})$", value)
            port = int(m.group(1)) if m and 0 < int(m.group(1)) < 65536 else None
        elif key == "server.bolt.tls_level":
            tls = value.upper() == "REQUIRED"
    return HomeRecord(bolt_port=port, neo4j_version=version, tls=tls)


def write_config(settings: Settings) -> Path:
    """A minimal neo4j.conf: unknown keys stop the server, so keep only what matters."""
    home = settings.local_home
    for sub in ("conf", "data", "logs", "plugins", "run", "import"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    lines = [
        "# Written by `etl db start`; edit the ETL_NEO4J_* settings instead.",
        # Read back by etl.settings: the jars this home's store was written with.
        f"{_VERSION_KEY}{settings.neo4j_version}",
        "server.default_listen_address=127.0.0.1",
        "server.default_advertised_address=127.0.0.1",
        "server.bolt.enabled=true",
        f"server.bolt.listen_address=127.0.0.1:{settings.bolt_port}",
        "server.http.enabled=false",
        "server.https.enabled=false",
        "dbms.security.auth_enabled=true",
        f"server.memory.pagecache.size={settings.pagecache}",
        "dbms.memory.transaction.total.max=4g",
        "db.transaction.timeout=0",
        # A local server is a scratch copy: keep two rotated transaction
        # log files, not Neo4j's default two days (a few seeds and loads
        # filled 37 GiB of logs on a 1.2 GiB store).
        "db.tx_log.rotation.retention_policy=2 files",
        "dbms.usage_report.enabled=false",
        f"server.directories.import={home / 'import'}",
    ]
    if settings.tls:
        ensure_certificate(home)
        lines += [
            "server.bolt.tls_level=REQUIRED",
            "dbms.ssl.policy.bolt.enabled=true",
            f"dbms.ssl.policy.bolt.base_directory={cert_dir(home)}",
            "dbms.ssl.policy.bolt.private_key=private.key",
            "dbms.ssl.policy.bolt.public_certificate=public.crt",
            "dbms.ssl.policy.bolt.client_auth=NONE",
        ]
    conf = conf_path(home)
    conf.write_text("\n".join([*lines, ""]))
    return conf


def ensure_certificate(home: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 and localhost, made once per home.

    ``bolt+ssc://`` accepts it as it is; ``neo4j+s://localhost`` verifies it when
    the client trusts ``public.crt`` (``SSL_CERT_FILE=<home>/certificates/bolt/public.crt``).
    """
    folder = cert_dir(home)
    crt, key = folder / "public.crt", folder / "private.key"
    if crt.is_file() and key.is_file():
        return crt
    if shutil.which("openssl") is None:
        raise LocalServerError(
            "`etl db start --tls` makes its certificate with openssl, which is not on PATH",
            hint="install it (Debian: apt-get install openssl), or start without --tls",
        )
    for sub in ("trusted", "revoked"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    cmd = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256"]
    cmd += ["-days", "3650", "-subj", "/CN=localhost"]
    cmd += ["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    cmd += ["-keyout", str(key), "-out", str(crt)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        key.unlink(missing_ok=True)
        crt.unlink(missing_ok=True)
        raise LocalServerError(
            "openssl could not make the local server's certificate:\n" + proc.stderr[-1000:],
            hint="start without --tls, or put private.key and public.crt into " + str(folder),
        )
    key.chmod(0o600)
    return crt

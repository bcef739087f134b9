"""A test session killed from outside leaves its servers running; the next one stops them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from etl import localdb
from etl.settings import load_settings
from tests.conftest import free_port, stop_orphan_servers


@pytest.mark.db
def test_servers_of_a_dead_session_are_stopped_and_of_a_live_one_kept(tmp_path: Path) -> None:
    session = tmp_path / "pytest-7"
    home = session / "test_x0" / "neo4j-home"
    settings = load_settings(
        {"local_home": str(home), "bolt_port": free_port()},
        environ={},
        env_file=Path("/nonexistent"),
    )
    localdb.start(settings)
    try:
        owner = subprocess.Popen(["sleep", "60"])
        (session / "etl-owner.pid").write_text(str(owner.pid))
        assert stop_orphan_servers(tmp_path) == []  # its pytest still runs
        assert localdb.status(settings).running
        owner.kill()
        owner.wait()
        assert stop_orphan_servers(tmp_path) == [home]
        assert not localdb.status(settings).running
        (tmp_path / "pytest-8").mkdir()  # no owner file: not ours to judge
        assert stop_orphan_servers(tmp_path) == []
    finally:
        localdb.stop(settings)

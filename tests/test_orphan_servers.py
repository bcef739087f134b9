"""A test session killed from outside leaves its servers running; the next one stops them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from etl import localdb
from tests.conftest import home_settings, stop_orphan_servers


@pytest.mark.db
def test_servers_of_a_dead_session_are_stopped_and_of_a_live_one_kept(tmp_path: Path) -> None:
    session = tmp_path / "pytest-7"
    home = session / "test_x0" / "neo4j-home"
    settings = home_settings(home)
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

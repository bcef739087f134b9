"""What the CLI says when a stage is missing or a load is interrupted: the fix, named.

A missing stage directory is one documented exit code for every command (3,
README "Exit codes": a stage directory that does not verify), and its hint
names the command that writes the stage the command at hand reads. Ctrl-C
during a load says that ``--resume`` continues it, and it does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from etl.cli import cli
from etl.errors import ExitCode
from etl.settings import Settings
from tests.test_load_support import legacy_scenario
from tests.test_transform_stage import write_export

ETL = Path(sys.executable).with_name("etl")
#: Nothing listens there: a command that got past the stage check would exit 4, not 3.
NO_SERVER = {"NEO4J_URI": "bolt://127.0.0.1:1", "NEO4J_PASSWORD": "unused"}

TRANSFORM_FIRST = "run `etl transform` first, or pass a transform stage with --in"
EXPORT_FIRST = "run `etl export` first, or pass two stage directories that exist"


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), env=NO_SERVER)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["transform", "--in", "{nope}"], "run `etl export` first, or pass an export with --in"),
        (["load", "--in", "{nope}"], TRANSFORM_FIRST),
        (["load", "--mode", "offline", "--in", "{nope}"], TRANSFORM_FIRST),
        (["plan", "--in", "{nope}"], TRANSFORM_FIRST),
        (["validate", "--in", "{nope}"], TRANSFORM_FIRST),
        (["diff", "{nope}", "{other}"], EXPORT_FIRST),
        (["diff", "{other}", "{nope}"], EXPORT_FIRST),
        (["restore", "{nope}"], "make one with `etl backup` (`etl backup --list` shows them)"),
        (["report", "--export", "{nope}", "--out", "{other}/r.html"],
         "run `etl export` first, or pass an export with --export"),
        (["verify", "{nope}"],
         "run the stage that writes it first (`etl export`, `etl transform` or `etl backup`)"),
    ],
)  # fmt: skip
def test_a_missing_stage_is_exit_3_and_names_its_writer(
    args: list[str], hint: str, tmp_path: Path
) -> None:
    nope, other = tmp_path / "nope", write_export(tmp_path / "other")
    res = _invoke(*(a.format(nope=nope, other=other) for a in args))
    assert (res.exit_code, res.stdout) == (ExitCode.VALIDATION, "")
    assert res.stderr == (
        f"Error: {nope} is not a stage directory (it does not exist)\n  hint: {hint}\n"
    )


@pytest.mark.unit
def test_an_interrupted_replacement_still_points_at_the_previous_copy(tmp_path: Path) -> None:
    (tmp_path / "transform.old-20261207").mkdir()
    res = _invoke("load", "--in", str(tmp_path / "transform"))
    assert res.exit_code == ExitCode.VALIDATION
    assert res.stderr.endswith(
        f"the previous copy is {tmp_path / 'transform.old-20261207'} "
        "(rename it back, or run the stage again)\n"
    )


@pytest.mark.unit
def test_diff_keeps_exit_2_for_usage_errors(tmp_path: Path) -> None:
    export = write_export(tmp_path / "export")
    res = _invoke("diff", str(export), str(export), "--migration", "nope")
    assert (res.exit_code, res.stdout) == (ExitCode.USAGE, "")
    assert res.stderr.startswith("Error: no diff explanation for migration 'nope'")
    assert _invoke("diff", str(export)).exit_code == ExitCode.USAGE  # B missing: click's error


RESUME = (
    "Interrupted: the batches committed so far are in the ledger; run the same `etl load` "
    "with --resume to continue it (or --restart to start over).\n"
)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], RESUME),
        (["--resume"], RESUME),
        (["--dry-run"], "Interrupted.\n"),
        (["--rollback"], "Interrupted.\n"),
        (["--mode", "offline"], "Interrupted.\n"),
    ],
)
def test_ctrl_c_during_a_load_names_resume(
    args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*a: Any, **k: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("etl.load_command.load_command", interrupted)
    res = _invoke("load", *args)
    assert (res.exit_code, res.stdout, res.stderr) == (ExitCode.INTERRUPTED, "", message)


@pytest.mark.unit
def test_ctrl_c_elsewhere_says_interrupted(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*a: Any, **k: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("etl.transform.run_transform", interrupted)
    res = _invoke("transform")
    assert (res.exit_code, res.stderr) == (ExitCode.INTERRUPTED, "Interrupted.\n")


@pytest.mark.db
def test_sigint_during_a_load_then_resume(
    driver: Any, neo4j_settings: Settings, tmp_path: Path, etl_env: dict[str, str]
) -> None:
    stages = legacy_scenario(driver, neo4j_settings, tmp_path)
    ledger = tmp_path / "ledger"
    args = [str(ETL), "load", "--in", str(stages.transform), "--ledger-dir", str(ledger)]
    env = {**os.environ, **etl_env}
    proc = subprocess.Popen(
        [*args, "--batch-size", "5", "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while _batches(ledger / "ledger.jsonl") < 2:
        assert proc.poll() is None, f"load ended before the interrupt: {proc.communicate()[1]}"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.INTERRUPTED, stderr
    assert stderr.endswith(RESUME), stderr
    assert "Traceback" not in stderr
    resumed = subprocess.run([*args, "--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == ExitCode.OK, resumed.stderr
    assert "skipped as already committed" in resumed.stdout


def _batches(path: Path) -> int:
    if not path.is_file():
        return 0
    lines = [x for x in path.read_text().splitlines() if x.strip().endswith("}")]
    return sum(json.loads(x)["t"] == "batch" for x in lines)

"""`etl report`: what it reads, that the page is self-contained and escaped, and a browser check.

The browser tests need Chromium (Debian: ``apt-get install -y chromium``, or
``make report-check``) and skip with that reason when it is missing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner

from etl.cli import cli
from etl.errors import ExitCode
from etl.migrations.figures import CARD, REPORT, Figure, Row
from etl.report import collect, load_outcome, read_load, write_report
from etl.report_browser import check_in_browser, external_references, find_chromium
from etl.report_html import render
from etl.transform import run_transform
from tests.test_diff import write_stage
from tests.test_transform_stage import write_export

pytestmark = pytest.mark.unit

needs_chromium = pytest.mark.skipif(
    find_chromium() is None,
    reason="Chromium not installed: apt-get install -y chromium (or run `make report-check`)",
)


def write_load(path: Path) -> Path:
    """A load directory as `etl load` leaves it: report.json and ledger.jsonl."""
    path.mkdir(parents=True)
    header = {"t": "header", "started_at": "2025-06-01T10:00:00.000000Z", "batch_size": 2}
    batches = [
        {
            "t": "batch",
            "step": "nodes/WorkflowRun",
            "batch": i,
            "rows": 2,
            "committed_at": f"2025-06-01T10:00:0{i + 1}.000000Z",
        }
        for i in range(4)
    ]
    lines = [json.dumps(x) for x in (header, *batches)] + ['{"t": "batch", "torn']
    (path / "ledger.jsonl").write_text("\n".join(lines) + "\n")
    report: dict[str, Any] = {
        "mode": "in-place",
        "seconds": 4.2,
        "nodes_written": 8,
        "steps": [
            {
                "step": "nodes/WorkflowRun",
                "kind": "node",
                "rows": 8,
                "written": 8,
                "batches": 4,
                "seconds": 4.0,
                "rows_per_s": 2,
            }
        ],
        "counts_after": {"labels": {"WorkflowRun": 1, "Workflow": 1}, "types": {"HAS_RUNS": 1}},
        "validation": {
            "ok": True,
            "checks": [
                {
                    "number": 1,
                    "title": "remaining Workflows are the rejected ones",
                    "ok": True,
                    "detail": "1 Workflow",
                }
            ],
        },
    }
    (path / "report.json").write_text(json.dumps(report))
    return path


@pytest.fixture
def stages(tmp_path: Path) -> dict[str, Path]:
    export = write_export(tmp_path / "export")
    run_transform(in_dir=export, out_dir=tmp_path / "transform")
    return {
        "export": export,
        "transform": tmp_path / "transform",
        "load": write_load(tmp_path / "load"),
    }


def test_collect_reads_every_stage(stages: dict[str, Path]) -> None:
    data = collect(export=stages["export"], transform=stages["transform"], load=stages["load"])
    assert data.export and data.export.verified
    assert data.transform and data.transform.rows()["nodes/WorkflowRun"] == 1
    assert data.transform.report["status_per_type"] == {
        "resolveIssue": {"completed": 1, "error": 0, "running": 0}
    }
    assert [(r["reason"], r["rows"], r["examples"]) for r in data.rejected] == [
        (
            "metadata_missing",
            1,
            [("w2", "Workflow has no metadata, so its workflowType is unknown")],
        )
    ]
    assert data.diff is not None and data.diff["migration"]["migrated"] == 1
    assert data.load is not None and len(data.load.batches) == 4  # the torn line is ignored


def test_rate_series_sums_batches_over_time(tmp_path: Path) -> None:
    load = read_load(write_load(tmp_path / "load"))
    assert load is not None
    # 4 batches of 2 rows at t = 1, 2, 3, 4 s: four 1-second slices of 2 rows/s each.
    assert load.rate_series(bins=4) == [(0.5, 2.0), (1.5, 2.0), (2.5, 2.0), (3.5, 2.0)]


def test_page_is_self_contained_with_charts(stages: dict[str, Path]) -> None:
    data = collect(export=stages["export"], transform=stages["transform"], load=stages["load"])
    html = render(data)
    assert external_references(html) == []
    assert not re.search(r"https?://", html)
    assert "<script" not in html
    assert html.count("<svg") == 4  # rows per table, runs, rejections, load rate
    for anchor in ("stages", "counts", "runs", "rejected", "load", "diff"):
        assert f'<section id="{anchor}">' in html
    assert "metadata_missing" in html and "all invariants hold" in html


def test_values_from_files_are_escaped(tmp_path: Path) -> None:
    schema = pa.schema([("reason", pa.string()), ("detail", pa.string()), ("id", pa.string())])
    evil = "<script>alert(1)</script>"
    transform = write_stage(
        tmp_path / "t",
        {
            "rejected/Workflow": (
                schema,
                [{"reason": "metadata_missing", "detail": evil, "id": evil}],
            )
        },
        stage="transform",
    )
    html = render(collect(export=None, transform=transform, load=None))
    assert evil not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_missing_stages_are_reported_not_fatal(tmp_path: Path) -> None:
    data = collect(export=tmp_path / "e", transform=tmp_path / "t", load=tmp_path / "l")
    html = render(data)
    assert "No load yet" in html and "No stage directory found." in html
    assert "no export stage found" in html


def test_unfinished_load_and_unverifiable_stage(stages: dict[str, Path]) -> None:
    (stages["load"] / "report.json").unlink()  # a load that crashed: only the ledger
    with (stages["export"] / "nodes" / "Event.parquet").open("r+b") as f:
        f.seek(10)
        f.write(b"\x00\x01")
    data = collect(export=stages["export"], transform=stages["transform"], load=stages["load"])
    html = render(data)
    assert "report.json missing: the load did not finish" in html
    assert html.count("<svg") == 4  # the rate chart still comes from the ledger
    assert "FAILED verification" in html and "sha256 differs" in html
    assert data.diff is None and data.diff_error is not None


def test_cli_writes_the_report(stages: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "r" / "report.html"
    res = CliRunner().invoke(
        cli,
        [
            "--json",
            "report",
            "--export",
            str(stages["export"]),
            "--transform",
            str(stages["transform"]),
            "--load",
            str(stages["load"]),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == ExitCode.OK, res.output
    data = json.loads(res.stdout)
    assert data["out"] == str(out) and data["warnings"] == []
    assert out.read_text().startswith("<!DOCTYPE html>")


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]  # PNG signature, then the IHDR chunk: width, height
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


@needs_chromium
def test_report_renders_in_chromium(stages: dict[str, Path], tmp_path: Path) -> None:
    html = write_report(
        export=stages["export"],
        transform=stages["transform"],
        load=stages["load"],
        out=tmp_path / "report.html",
    ).path
    check = check_in_browser(html, tmp_path / "report.png")
    assert check.problems == []
    assert check.svgs == 4 and len(check.sections) == 6
    assert check.png.stat().st_size > 10_000
    # The whole page, not a 1200×2000 window of it: this one is over 3,000 px tall.
    assert check.height > 3000
    assert _png_size(check.png) == (1200, check.height)


@needs_chromium
def test_screenshot_height_follows_the_page(tmp_path: Path) -> None:
    page = tmp_path / "tall.html"
    page.write_text(
        '<!DOCTYPE html><html><body style="margin:0">'
        '<div style="height:5000px;background:#336">top to bottom</div></body></html>'
    )
    check = check_in_browser(page, tmp_path / "tall.png")
    assert (check.height, _png_size(check.png)) == (5000, (1200, 5000))
    assert check.problems == ["sections missing from the rendered page: " + ", ".join(
        ("stages", "counts", "runs", "rejected", "load", "diff"))]  # fmt: skip


@needs_chromium
def test_browser_check_catches_console_errors(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><img src="http://example.invalid/x.png">'
        "<script>undefinedFunction()</script>"
    )
    check = check_in_browser(page, tmp_path / "bad.png")
    assert any("Uncaught ReferenceError" in line for line in check.console)
    joined = " ".join(check.problems)
    assert "console message" in joined and "outside resources" in joined
    assert "sections missing" in joined


def test_a_named_stage_that_is_missing_is_an_error(stages: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    nope = tmp_path / "nope"
    res = CliRunner().invoke(cli, ["report", "--export", str(nope), "--out", str(out)])
    assert (res.exit_code, res.stdout) == (ExitCode.VALIDATION, "")
    assert res.stderr == (
        f"Error: {nope} is not a stage directory (it does not exist)\n"
        "  hint: run `etl export` first, or pass an export with --export\n"
    )
    res = CliRunner().invoke(
        cli, ["report", "--export", str(stages["export"]), "--transform", str(nope),
              "--out", str(out)],
    )  # fmt: skip
    assert (res.exit_code, res.stdout) == (ExitCode.VALIDATION, "")
    assert res.stderr == (
        f"Error: {nope} is not a stage directory (it does not exist)\n"
        "  hint: run `etl transform` first, or pass one with --transform\n"
    )
    nope.mkdir()  # a directory, but no stage: no manifest
    res = CliRunner().invoke(cli, ["report", "--export", str(nope), "--out", str(out)])
    assert res.exit_code == ExitCode.VALIDATION
    assert res.stderr.startswith(f"Error: {nope} has no manifest.json")
    assert not out.exists()


def test_stages_left_out_are_read_from_their_default_place(
    stages: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    stages["export"].rename(tmp_path / "data" / "export")
    res = CliRunner().invoke(cli, ["--json", "report", "--out", "r.html"])
    assert res.exit_code == ExitCode.OK, res.output
    assert json.loads(res.stdout)["warnings"] == [
        "no transform stage found",
        "no load directory found (report.json/ledger.jsonl): load sections are empty",
    ]


def test_load_section_says_what_the_load_changed(stages: dict[str, Path]) -> None:
    html = render(collect(export=None, transform=None, load=stages["load"]))
    assert "<tr><td>changed</td><td>8 node rows and 0 relationship rows written</td></tr>" in html
    assert load_outcome({"nothing_to_do": True, "mode_reason": "this stage is applied"}) == (
        "nothing: this stage is applied"
    )
    assert load_outcome({"nodes_written": 0, "relationships_written": 0, "rows_skipped": 0}) == (
        "nothing: no row needed writing"
    )
    assert load_outcome({"nodes_written": 3, "relationships_written": 4, "rows_skipped": 5}) == (
        "3 node rows and 4 relationship rows written (5 more committed by an earlier run of it)"
    )


def test_diff_table_marks_different_only_where_rows_differ(stages: dict[str, Path]) -> None:
    data = collect(export=stages["export"], transform=stages["transform"], load=None)
    html = render(data)
    assert data.diff is not None
    issue = next(t for t in data.diff["tables"] if t["name"] == "Issue" and t["kind"] == "node")
    # Issue numbers become integers: the schema changed, not a single row.
    assert (issue["status"], issue["added"], issue["removed"], issue["changed"]) == (
        "different", 0, 0, 0
    )  # fmt: skip
    assert "<tr><td>nodes/Issue</td><td>schema changed</td>" in html
    assert "number Float64 → Int64" in html
    assert "<tr><td>nodes/Workflow</td><td>different</td>" in html  # a row was removed


def test_figures_section_draws_what_the_migration_gives(stages: dict[str, Path]) -> None:
    data = collect(export=None, transform=stages["transform"], load=None)
    assert data.migration == "workflow-to-workflowrun" and len(data.figures) == 1
    data.figures = [
        Figure(
            title="Orders per state",
            rows=(Row("Orders in", 7, places=(CARD, REPORT)), Row("terminal only", 1, places=())),
            groups=(("web", {"paid": 6, "open": 1}),),
            parts=("paid", "open"),
            group_by="channel",
        )
    ]
    html = render(data)
    assert '<section id="runs"><h2>Orders per state</h2>' in html
    assert "<th>channel</th><th>paid</th><th>open</th><th>total</th>" in html
    assert '<span class="muted">Orders in</span><b>7</b>' in html
    assert "terminal only" not in html
    data.figures = []
    assert "has no figures for this stage" in render(data)

"""HTML sections of ``etl report``, rendered from a ``ReportData`` (see ``etl.report``).

Every value that came from a file goes through ``escape`` before it reaches
the page; numbers are formatted here, charts come from ``etl.report_svg``.
A section whose stage is missing says so in one sentence instead of vanishing,
so a reader can tell "nothing was rejected" from "the transform never ran".
"""

from __future__ import annotations

from html import escape
from typing import Any

from etl.migrations.figures import CARD, REPORT, Figure, as_figures
from etl.report_model import ReportData, load_outcome, warnings
from etl.report_svg import grouped_hbars, hbars, line_chart, stacked_hbars
from etl.report_template import PAGE, badge, chart, code, fmt, note, section, table

# ------------------------------------------------------------------ sections


def stages_section(data: ReportData) -> str:
    rows = []
    for role, stage in (("export", data.export), ("transform", data.transform)):
        if stage is None:
            rows.append([role, "not found", "", "", "", ""])
            continue
        m = stage.manifest or {}
        src = m.get("source") or {}
        rows.append(
            [
                role,
                code(stage.path),
                m.get("created_at", ""),
                badge(stage.verified, "verified", "FAILED verification"),
                str(src.get("server_version", "")),
                src.get("snapshot_time", ""),
            ]
        )
    if data.load is not None:
        r = data.load.report or {}
        rows.append(
            [
                "load",
                code(data.load.path),
                r.get("finished_at", "unfinished"),
                badge(bool((r.get("validation") or {}).get("ok")), "validated", "not validated"),
                r.get("target", ""),
                r.get("mode", ""),
            ]
        )
    else:
        rows.append(["load", "not found", "", "", "", ""])
    body = table(["stage", "path", "written", "state", "server / target", "snapshot / mode"], rows)
    problems = [(s.role, p) for s in (data.export, data.transform) if s for p in s.problems]
    if problems:
        body += (
            "<h3>Verification problems</h3><ul>"
            + "".join(f"<li><b>{escape(r)}</b>: {escape(p)}</li>" for r, p in problems)
            + "</ul>"
        )
    return section("stages", "Stages", body)


def counts_section(data: ReportData) -> str:
    export = data.export.rows() if data.export else {}
    transform = data.transform.rows() if data.transform else {}
    after = ((data.load.report or {}).get("counts_after") or {}) if data.load else {}
    loaded = {
        **{f"nodes/{k}": int(v) for k, v in (after.get("labels") or {}).items()},
        **{f"relationships/{k}": int(v) for k, v in (after.get("types") or {}).items()},
    }
    names = sorted(
        set(export) | set(transform) | set(loaded),
        key=lambda n: (n.split("/")[0] != "nodes", n.startswith("rejected"), n),
    )
    if not names:
        return section("counts", "Rows per table", note("No stage directory found."))
    series: list[tuple[str, list[float | None]]] = [
        (name, [float(src[n]) if n in src else None for n in names])
        for name, src in (
            ("export", export),
            ("transform", transform),
            ("database after load", loaded),
        )
        if src
    ]
    svg = grouped_hbars(names, series, title="Rows per table in each stage")
    rows = [[n, *(src.get(n) for src in (export, transform, loaded))] for n in names]
    body = chart(svg) + table(
        ["table", "export", "transform", "database after load"],
        rows,
        caption="“–”: the table is not in that stage.",
    )
    return section("counts", "Rows per table", body)


def figures_section(data: ReportData) -> str:
    """The migration's own figures (``Migration.report_figures``), drawn as they come."""
    if not data.figures:
        what = (
            "No transform stage found."
            if data.transform is None
            else f"The migration {data.migration or '(not named)'} has no figures for this stage."
        )
        return section("runs", "Migration figures", note(what))
    title = data.figures[0].title if len(data.figures) == 1 else "Migration figures"
    body = "".join(figure_html(f, heading=len(data.figures) > 1, charts=True) for f in data.figures)
    return section("runs", title or "Migration figures", body)


def figure_html(figure: Figure, *, heading: bool, charts: bool, place: str | None = REPORT) -> str:
    """One figure: its bar groups (a chart, then a table), its table, then its rows.

    ``place`` picks the rows placed there (a report figure's ``REPORT`` rows); None
    shows every row (an explanation's figures).
    """
    body = f"<h3>{escape(figure.title)}</h3>" if heading and figure.title else ""
    order = figure.part_order()
    groups = list(figure.groups)
    if groups:
        if charts:
            svg = stacked_hbars(
                groups,
                order=order,
                title=figure.chart_title or figure.title,
                colors=figure.colors,
            )
            body += chart(svg)
        body += table(
            [figure.group_by, *order, "total"],
            [[g, *(parts.get(p, 0) for p in order), sum(parts.values())] for g, parts in groups],
        )
    if figure.table is not None:
        body += table(list(figure.table.headers), [list(r) for r in figure.table.rows])
    rows = [
        [("\u2003" * r.level) + r.caption, _cell(r.value), *([r.note] if r.note else [])]
        for r in figure.rows
        if place is None or place in r.places
    ]
    if rows:
        width = max(len(r) for r in rows)
        headers = [*figure.columns, *([""] if width > 2 else [])]
        body += table(headers, [[*r, *[""] * (width - len(r))] for r in rows])
    return body


def _cell(value: Any) -> Any:
    return badge(value, "yes", "NO") if isinstance(value, bool) else value


def rejected_section(data: ReportData) -> str:
    if data.transform is None:
        return section("rejected", "Rejected rows", note("No transform stage found."))
    if not data.rejected:
        return section("rejected", "Rejected rows", note("No row was rejected."))
    body = ""
    for name in sorted({r["table"] for r in data.rejected}):
        mine = [r for r in data.rejected if r["table"] == name]
        total = sum(r["rows"] for r in mine)
        body += f"<h3>rejected/{escape(name)}: {total:,} rows</h3>"
        body += chart(
            hbars(
                [(r["reason"], r["rows"]) for r in mine],
                title=f"Rejected {name} rows by reason",
                color="#e15759",
            )
        )
        rows = []
        for r in mine:
            for i, example in enumerate(r["examples"]):
                shown = "; ".join(f"{c}={v}" for c, v in zip(r["columns"], example, strict=True))
                rows.append(
                    [code(r["reason"]) if i == 0 else "", r["rows"] if i == 0 else "", shown]
                )
        body += table(["reason", "rows", "examples (first by id)"], rows)
    return section("rejected", "Rejected rows by reason", body)


def load_section(data: ReportData) -> str:
    load = data.load
    if load is None:
        return section(
            "load",
            "Load",
            note("No load yet: the load directory has no report.json or ledger.jsonl."),
        )
    r = load.report or {}
    facts: list[list[Any]] = [["changed", load_outcome(r)]] if r else []
    facts += [
        [k, r.get(key)]
        for k, key in (
            ("mode", "mode"),
            ("why", "mode_reason"),
            ("finished", "finished_at"),
            ("seconds", "seconds"),
            ("node rows written", "nodes_written"),
            ("node rows/s", "nodes_per_s"),
            ("relationship rows written", "relationships_written"),
            ("relationship rows/s", "relationships_per_s"),
            ("batch size", "batch_size"),
            ("skipped (already committed)", "rows_skipped"),
        )
        if key in r
    ]
    body = (
        table(["load", ""], facts)
        if facts
        else note(
            "report.json missing: the load did not finish (the ledger below shows its progress)."
        )
    )
    series = load.rate_series()
    if series:
        body += "<h3>Write rate over time</h3>" + chart(
            line_chart(
                series,
                title="Rows committed per second over the load",
                x_label="seconds since the load started",
                y_label="rows/s",
            )
        )
        body += f'<p class="muted">{len(load.batches):,} committed batches from ledger.jsonl, '
        body += "summed over equal time slices.</p>"
    steps = r.get("steps") or []
    if steps:
        body += table(
            ["step", "rows", "written", "batches", "seconds", "rows/s"],
            [
                [
                    s.get("step"),
                    s.get("rows"),
                    s.get("written"),
                    s.get("batches"),
                    s.get("seconds"),
                    s.get("rows_per_s"),
                ]
                for s in steps
            ],
        )
    validation = r.get("validation") or {}
    if validation.get("checks"):
        overall = bool(validation.get("ok"))
        rows = [
            [
                c.get("number"),
                # Reports of older versions put a check's counts beside "ok" (one was
                # named "ok"): a non-bool falls back to the overall verdict.
                badge(c["ok"] if isinstance(c.get("ok"), bool) else overall, "pass", "FAIL"),
                c.get("title"),
                c.get("detail"),
            ]
            for c in validation["checks"]
        ]
        body += "<h3>Validation " + str(badge(overall, "all invariants hold", "FAILED")) + "</h3>"
        body += table(["#", "result", "invariant", "detail"], rows)
    return section("load", "Load", body)


def diff_status(t: dict[str, Any]) -> str:
    """A table's diff status in words: "different" only when rows differ."""
    if t["status"] != "different" or t["added"] or t["removed"] or t["changed"]:
        return str(t["status"]).replace("_", " ")
    return "schema changed" if any((t.get("schema") or {}).values()) else "identical rows"


def schema_changes(t: dict[str, Any]) -> list[str]:
    """Column drift of a diffed table: ``+col type``, ``-col type``, ``col A → B``."""
    schema = t.get("schema") or {}
    return [
        *(f"+{c} {ty}" for c, ty in (schema.get("added") or {}).items()),
        *(f"-{c} {ty}" for c, ty in (schema.get("removed") or {}).items()),
        *(f"{c} {a} → {b}" for c, (a, b) in (schema.get("type_changed") or {}).items()),
    ]


def diff_section(data: ReportData) -> str:
    title = "Diff: export → transform"
    if data.diff_error:
        return section("diff", title, note(data.diff_error))
    d = data.diff
    if d is None:
        return section("diff", title, note("Needs both an export and a transform stage."))
    if "error" in d:
        return section("diff", title, note(f"The diff failed: {d['error']}"))
    folders = {"node": "nodes", "relationship": "relationships"}
    rows = [
        [
            f"{folders.get(t['kind'], t['kind'])}/{t['name']}",
            diff_status(t),
            t["rows_a"],
            t["rows_b"],
            t["added"],
            t["removed"],
            t["changed"],
            t["unchanged"],
            ", ".join(f"{c} {n:,}" for c, n in t["changed_columns"].items()),
            "; ".join(schema_changes(t)),
        ]
        for t in d["tables"]
    ]
    body = table(
        [
            "table",
            "status",
            "export",
            "transform",
            "added",
            "removed",
            "changed",
            "unchanged",
            "changed columns",
            "schema",
        ],
        rows,
    )
    for move in d.get("moved") or []:
        body += (
            f"<p>{move['rows']:,} keys moved from <code>{escape(move['from'])}</code> to "
            f"<code>{escape(move['to'])}</code>.</p>"
        )
    m = d.get("migration")
    if m:
        heading = str(m.get("title") or f"Migration {m.get('name')}")
        body += f"<h3>{escape(heading)}</h3>"
        if m.get("lineage_ok") is False:
            body += note("The transform's manifest does not name this export as its input.")
        for figure in as_figures(m.get("figures") or []):
            body += figure_html(figure, heading=True, charts=False, place=None)
    return section("diff", title, body)


def cards(data: ReportData) -> str:
    load = (data.load.report or {}) if data.load else {}
    validation = load.get("validation") or {}
    items = [(r.caption, fmt(r.value)) for f in data.figures for r in f.rows_in(CARD)]
    items.append(
        (
            "Load",
            "not run"
            if data.load is None
            else (str(badge(bool(validation.get("ok")), "validated", "not validated"))),
        )
    )
    if data.diff and "summary" in data.diff:
        s = data.diff["summary"]
        items.append(("Tables changed", f"{s['tables_differing']} of {s['tables']}"))
    return "".join(
        f'<div class="card"><span class="muted">{escape(k)}</span><b>{v}</b></div>'
        for k, v in items
    )


SECTIONS = (
    ("stages", "Stages", stages_section),
    ("counts", "Rows", counts_section),
    ("runs", "Migration", figures_section),
    ("rejected", "Rejected", rejected_section),
    ("load", "Load", load_section),
    ("diff", "Diff", diff_section),
)


def render(data: ReportData) -> str:
    """The whole page."""
    notes = warnings(data)
    top = (
        "<ul>" + "".join(f'<li class="muted">{escape(w)}</li>' for w in notes) + "</ul>"
        if notes
        else ""
    )
    return PAGE.substitute(
        title="Neo4j migration report",
        generated=escape(data.generated),
        nav="".join(f'<a href="#{a}">{escape(t)}</a>' for a, t, _ in SECTIONS),
        cards=cards(data),
        sections=top + "".join(fn(data) for _, _, fn in SECTIONS),
    )

"""Human output of ``etl diff``: a summary table, then details of each differing table.

``render(result_json, rich=False)`` returns plain, aligned text (stable, so
tests compare it exactly, and pipes get no escape codes); ``rich=True``
renders the same content with ``rich`` tables for a terminal. Both read the
JSON form of the result (``DiffResult.to_json()``), so what people see is
always what ``--json`` gives machines.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Sequence
from typing import Any

from etl.migrations.figures import Figure, Row, as_figures

_FOLDERS = {"node": "nodes", "relationship": "relationships", "rejected": "rejected"}
HEADERS = ("table", "key", "A rows", "B rows", "added", "removed", "changed", "unchanged")


def _n(value: float | None) -> str:
    return "-" if value is None else f"{value:,}"


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def summary_rows(data: dict[str, Any]) -> list[list[str]]:
    rows = []
    for t in data["tables"]:
        name = f"{_FOLDERS.get(t['kind'], t['kind'])}/{t['name']}"
        if t["status"] in ("only_a", "only_b"):
            name += f" (only in {t['status'][-1].upper()})"
        rows.append(
            [
                name,
                ", ".join(t["key"]),
                _n(t["rows_a"]),
                _n(t["rows_b"]),
                _n(t["added"]),
                _n(t["removed"]),
                _n(t["changed"]),
                _n(t["unchanged"]),
            ]
        )
    return rows


def table_details(t: dict[str, Any]) -> list[str]:
    """What differs in one table, one fact per line, samples last."""
    lines = [f"{_FOLDERS.get(t['kind'], t['kind'])}/{t['name']}  (key: {', '.join(t['key'])})"]
    schema = t["schema"]
    drift = [f"+{c} ({ty})" for c, ty in schema["added"].items()]
    drift += [f"-{c} ({ty})" for c, ty in schema["removed"].items()]
    drift += [f"~{c} ({a} → {b})" for c, (a, b) in schema["type_changed"].items()]
    if drift:
        lines.append("  schema:  " + ", ".join(drift))
    if t["changed_columns"]:
        cols = ", ".join(f"{c} {n:,}" for c, n in t["changed_columns"].items())
        lines.append(f"  changed: {cols}")
    for move in t["label_changes"][:5]:
        lines.append(f"  labels:  {_value(move['a'])} → {_value(move['b'])}  {move['rows']:,} rows")
    dups = t["duplicate_keys"]
    if dups["a"] or dups["b"]:
        lines.append(
            f"  note:    duplicate keys (A {dups['a']:,}, B {dups['b']:,}): "
            "copies matched in order of their values"
        )
    for kind in ("added", "removed", "changed"):
        shown = t["samples"].get(kind) or []
        total = t[kind]
        if not shown:
            continue
        lines.append(f"  {kind} ({len(shown)} of {total:,}):")
        for row in shown:
            if kind == "changed":
                key = ", ".join(f"{k}={_value(v)}" for k, v in row["key"].items())
                what = "; ".join(
                    f"{c}: {_value(a)} → {_value(b)}" for c, (a, b) in row["changes"].items()
                )
                lines.append(f"    {key}: {what}")
            else:
                lines.append("    " + ", ".join(f"{k}={_value(v)}" for k, v in row.items()))
    return lines


def migration_lines(m: dict[str, Any]) -> list[str]:
    """A migration's explanation: its title, then each of its figures, then its samples.

    The figures (``etl.migrations.figures``, in their JSON form) are printed as
    they come: a count right-aligned after its caption (a breakdown indented
    under it), a yes/no or a text after its caption, bar groups as one line
    each, a table as aligned columns.
    """
    lines = [str(m.get("title") or f"Migration {m.get('name')}")]
    if m.get("lineage_ok") is False:
        lines.append("  warning: B's manifest does not name A as its input (not B's export)")
    for figure in as_figures(m.get("figures") or []):
        lines += figure_lines(figure)
    for outcome, rows in (m.get("samples") or {}).items():
        lines.append(f"  {outcome}:")
        for r in rows:
            lines.append("    " + ", ".join(f"{k}={_value(v)}" for k, v in r.items()))
    return lines


def figure_lines(figure: Figure) -> list[str]:
    """One figure as text (see ``migration_lines``)."""
    lines = [figure.title] if figure.title else []
    for row in figure.rows:
        lines.append(_row_line(row))
    order = figure.part_order()
    for name, counts in figure.groups:
        parts = ", ".join(f"{p} {counts[p]:,}" for p in order if p in counts)
        lines.append(f"  {name:<22}{parts}")
    if figure.table is not None:
        body = [[_cell(v) for v in r] for r in figure.table.rows]
        lines += ["  " + line for line in _plain_table(figure.table.headers, body)]
    return lines


def _row_line(row: Row) -> str:
    value = row.value
    if isinstance(value, bool):
        line = f"  {row.caption}: {'yes' if value else 'NO'}"
    elif isinstance(value, int | float) or value is None:
        indent = "  " + "    " * row.level
        width = max(32 - 4 * row.level, 0)
        line = f"{indent}{row.caption:<{width}}{_n(value):>10}"
    else:
        line = f"  {'    ' * row.level}{row.caption:<8} {value}"
    return f"{line}   {row.note}" if row.note else line


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return _n(value)
    return str(value)


def _plain_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, text_columns: int = 1
) -> list[str]:
    """Aligned columns: the first ``text_columns`` to the left, numbers to the right."""
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(
            f"{c:<{w}}" if i < text_columns else f"{c:>{w}}"
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [fmt(headers), *(fmt(r) for r in rows)]


def render(data: dict[str, Any], *, rich: bool = False) -> str:
    """The whole human report for ``DiffResult.to_json()``."""
    a, b, s = data["a"], data["b"], data["summary"]
    head = [
        f"A: {a['path']} ({a['stage']}, {a['tables']} tables, {a['rows']:,} rows)",
        f"B: {b['path']} ({b['stage']}, {b['tables']} tables, {b['rows']:,} rows)",
    ]
    rows = summary_rows(data)
    details: list[str] = []
    for t in data["tables"]:
        if t["status"] != "identical":
            details += ["", *table_details(t)]
    for move in data["moved"]:
        details.append(
            f"\nmoved: {move['rows']:,} keys ({', '.join(move['key'])}) left nodes/{move['from']} "
            f"and appear in nodes/{move['to']}"
        )
    if data.get("migration"):
        details += ["", *migration_lines(data["migration"])]
    if data["identical"]:
        verdict = f"Identical: {s['tables']} tables, {s['unchanged']:,} rows match."
    else:
        verdict = (
            f"Differences: {s['tables_differing']} of {s['tables']} tables differ "
            f"(added {s['added']:,}, removed {s['removed']:,}, changed {s['changed']:,})."
        )
    if data.get("out"):
        verdict += f"\nDiffering rows written to {data['out']}"
    if not rich:
        return "\n".join(
            [*head, "", *_plain_table(HEADERS, rows, text_columns=2), *details, "", verdict]
        )
    statuses = [t["status"] for t in data["tables"]]
    return _render_rich(head, rows, statuses, details, verdict, identical=data["identical"])


def _render_rich(
    head: list[str],
    rows: list[list[str]],
    statuses: list[str],
    details: list[str],
    verdict: str,
    *,
    identical: bool,
) -> str:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    buf = io.StringIO()
    width = shutil.get_terminal_size((120, 40)).columns
    console = Console(file=buf, force_terminal=True, width=width, highlight=False)
    for line in head:
        console.print(line, markup=False)
    table = Table(show_edge=False, header_style="bold")
    for i, h in enumerate(HEADERS):
        table.add_column(h, justify="left" if i < 2 else "right")
    for row, status in zip(rows, statuses, strict=True):
        table.add_row(*row, style=None if status == "identical" else "yellow")
    console.print(table)
    for line in details:
        console.print(Text(line, style="bold" if line and not line[0].isspace() else ""))
    console.print(Text(verdict, style="green" if identical else "bold yellow"))
    return buf.getvalue().rstrip("\n")

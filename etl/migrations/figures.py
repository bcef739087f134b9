"""Figures: what a migration shows people about its own run, in a shape any renderer draws.

A migration knows what is worth counting (runs per status, rows created, rows
refused); the engine knows how to print a table, an aligned terminal summary or
a stacked bar chart. A ``Figure`` is the contract between them: a title, rows
of (caption, value), optionally a table and bar groups. The engine renders
whatever it is given and never reads a caption::

    Figure(
        title="Orders per state",
        rows=(Row("Orders in", 10, places=(SUMMARY, REPORT, CARD)), Row("Refused", 1)),
        groups=(("web", {"paid": 6, "open": 1}), ("shop", {"paid": 3})),
        parts=("paid", "open"),
        group_by="channel",
    )

It is used twice: ``Migration.report_figures(report)`` (the transform summary
on the terminal, the overview cards and the figures section of ``etl report``)
and the explanation ``Migration.explain_diff`` returns for ``etl diff
--migration`` (under its ``"figures"`` key, as ``to_json`` writes it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CARD", "REPORT", "SUMMARY", "Figure", "Row", "Table", "Value", "as_figures"]

#: A value a renderer can print: a count, a rate, a word, a yes/no, or nothing.
Value = int | float | str | bool | None

#: Where a row of ``report_figures`` is shown: the terminal summary of the stage …
SUMMARY = "summary"
#: … the figure's table in ``etl report`` …
REPORT = "report"
#: … and an overview card at the top of the report.
CARD = "card"


@dataclass(frozen=True)
class Row:
    """One fact: ``caption`` and ``value``.

    ``level`` 1 makes it a breakdown of the row above (printed indented);
    ``note`` is printed after the value (e.g. "← should be 0"); ``places``
    says where a report figure's row is shown (an explanation shows them all).
    """

    caption: str
    value: Value
    level: int = 0
    note: str = ""
    places: tuple[str, ...] = (SUMMARY, REPORT)

    def to_json(self) -> dict[str, Any]:
        return {
            "caption": self.caption,
            "value": self.value,
            "level": self.level,
            "note": self.note,
            "places": list(self.places),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Row:
        return cls(
            caption=str(data["caption"]),
            value=data.get("value"),
            level=int(data.get("level") or 0),
            note=str(data.get("note") or ""),
            places=tuple(data.get("places") or (SUMMARY, REPORT)),
        )


@dataclass(frozen=True)
class Table:
    """A small table: ``headers`` and ``rows`` of cells (the first column is text)."""

    headers: tuple[str, ...]
    rows: tuple[tuple[Value, ...], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"headers": list(self.headers), "rows": [list(r) for r in self.rows]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Table:
        return cls(
            headers=tuple(data.get("headers") or ()),
            rows=tuple(tuple(r) for r in data.get("rows") or ()),
        )


@dataclass(frozen=True)
class Figure:
    """A titled group of facts; see the module docstring.

    ``groups`` are (name, {part: count}) pairs, drawn as one stacked bar each
    (``etl.report_svg.stacked_hbars``) with the parts in ``parts``' order and
    ``colors`` where given; ``group_by`` names what a group is (the first
    column of their table) and ``chart_title`` titles the chart. ``columns``
    are the headers of the rows when they are shown as a table.
    """

    title: str
    rows: tuple[Row, ...] = ()
    columns: tuple[str, str] = ("", "count")
    groups: tuple[tuple[str, Mapping[str, int]], ...] = ()
    parts: tuple[str, ...] = ()
    group_by: str = ""
    chart_title: str = ""
    colors: Mapping[str, str] = field(default_factory=dict)
    table: Table | None = None

    def rows_in(self, place: str) -> list[Row]:
        """The rows shown in ``place`` (``SUMMARY``, ``REPORT`` or ``CARD``)."""
        return [r for r in self.rows if place in r.places]

    def part_order(self) -> list[str]:
        """``parts``, then any part a group has that ``parts`` does not name (sorted)."""
        seen = {p for _, counts in self.groups for p in counts}
        return [*self.parts, *sorted(seen - set(self.parts))]

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "rows": [r.to_json() for r in self.rows],
            "columns": list(self.columns),
            "groups": [[name, dict(counts)] for name, counts in self.groups],
            "parts": list(self.parts),
            "group_by": self.group_by,
            "chart_title": self.chart_title,
            "colors": dict(self.colors),
            "table": self.table.to_json() if self.table is not None else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Figure:
        columns = tuple(data.get("columns") or ("", "count"))
        table = data.get("table")
        return cls(
            title=str(data.get("title") or ""),
            rows=tuple(Row.from_json(r) for r in data.get("rows") or ()),
            columns=(str(columns[0]), str(columns[1])) if len(columns) == 2 else ("", "count"),
            groups=tuple((str(g), dict(c)) for g, c in data.get("groups") or ()),
            parts=tuple(data.get("parts") or ()),
            group_by=str(data.get("group_by") or ""),
            chart_title=str(data.get("chart_title") or ""),
            colors=dict(data.get("colors") or {}),
            table=Table.from_json(table) if table else None,
        )


def as_figures(items: Sequence[Any]) -> list[Figure]:
    """``items`` as Figures: Figures kept, their JSON form (a dict) read back."""
    return [f if isinstance(f, Figure) else Figure.from_json(f) for f in items]

"""What ``etl diff`` knows about one table: its two sides, and what differs.

``TablePair`` names a table (kind and name) and its part files in A and B;
``TableDiff`` is the comparison's result, whose ``to_json`` is what
``etl --json diff`` prints per table. The column-name constants are shared by
the comparison (``etl.diff_table``) and the code that reads its differing
rows back (``etl.diff_rows``): in those rows, A's columns are prefixed
``a::``, B's ``b::``, key columns keep their names, and ``__in_a``/``__in_b``/
``__changed``/``__chg::<column>`` are the flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Columns that record where a row came from, not what it is. The last is the property a
#: replay puts on nodes whose key cannot identify them (``etl.graph.params.SOURCE_ID``):
#: the element id in the database the stage came from, renumbered by every replay.
PROVENANCE = (
    "_element_id",
    "_start_element_id",
    "_end_element_id",
    "_prop._etl_source_element_id",
)
A, B = "a::", "b::"
IN_A, IN_B, DUP, CHANGED = "__in_a", "__in_b", "__dup", "__changed"
KEY_HASH = "__key_hash"
#: Candidate keys whose rows are joined at once; more are split into buckets by key hash.
BUCKET_ROWS = 250_000


@dataclass(frozen=True)
class TableSide:
    """One side of a table: its part files and its manifest entry."""

    paths: list[Path]
    entry: dict[str, Any]
    rows: int
    #: fixed-offset zones of DateTime columns read as UTC (``etl.diff_read``)
    zones: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TablePair:
    kind: str  # node | relationship | rejected
    name: str
    a: TableSide | None
    b: TableSide | None

    @property
    def label(self) -> str:
        folder = {"node": "nodes", "relationship": "relationships"}.get(self.kind, self.kind)
        return f"{folder}/{self.name}"


@dataclass
class TableDiff:
    """What differs in one table; ``rows_files`` hold the differing rows (temporary)."""

    kind: str
    name: str
    key: list[str]
    rows_a: int | None
    rows_b: int | None
    added: int = 0
    removed: int = 0
    changed: int = 0
    unchanged: int = 0
    changed_columns: dict[str, int] = field(default_factory=dict)
    columns_added: dict[str, str] = field(default_factory=dict)
    columns_removed: dict[str, str] = field(default_factory=dict)
    type_changes: dict[str, list[str]] = field(default_factory=dict)
    label_changes: list[dict[str, Any]] = field(default_factory=list)
    duplicate_keys: list[int] = field(default_factory=lambda: [0, 0])
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    rows_files: list[Path] = field(default_factory=list)
    compared: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.rows_a is None:
            return "only_b"
        if self.rows_b is None:
            return "only_a"
        return "different" if self.differs else "identical"

    @property
    def differs(self) -> bool:
        drift = self.columns_added or self.columns_removed or self.type_changes
        return bool(self.added or self.removed or self.changed or drift)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "status": self.status,
            "key": self.key,
            "rows_a": self.rows_a,
            "rows_b": self.rows_b,
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "changed_columns": self.changed_columns,
            "schema": {
                "added": self.columns_added,
                "removed": self.columns_removed,
                "type_changed": self.type_changes,
            },
            "label_changes": self.label_changes,
            "duplicate_keys": {"a": self.duplicate_keys[0], "b": self.duplicate_keys[1]},
            "samples": self.samples,
        }

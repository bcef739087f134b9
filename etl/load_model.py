"""The vocabulary of a load: its modes, its steps, and the keys that find nodes.

Shared by the node steps (``etl.load_steps``), the relationship steps
(``etl.load_rels``), the plan and the rollback, so none of them imports another
for a type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import polars as pl
import pyarrow as pa

from etl.graph.write import Columns, NodeOp, RelOp
from etl.load_input import TableInfo

IN_PLACE, REPLAY = "in-place", "replay"

Item = tuple[NodeOp | RelOp, Columns]


@dataclass
class Step:
    """One ledgered unit: a table (or part of one) loaded batch by batch."""

    name: str
    table: TableInfo
    rows: int
    source: Callable[[int], Iterator[pa.Table]]
    encode: Callable[[pa.Table], list[Item]]
    #: batches may be written by several transactions at once (they share no node)
    concurrent: bool = False


def property_columns(schema: pa.Schema) -> list[str]:
    """Columns that are properties: not reserved (``_…``), except ``_prop.<name>``."""
    return [n for n in schema.names if not n.startswith("_") or n.startswith("_prop.")]


@dataclass
class Keys:
    """Per label: key columns, and (replay) the element ids whose key is ambiguous."""

    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    ambiguous: dict[str, pl.Series] = field(default_factory=dict)

    def is_ambiguous(self, label: pl.Expr, eid: pl.Expr) -> pl.Expr:
        tagged = pl.concat_str([label, pl.lit("\x00"), eid])
        every = [s for s in self.ambiguous.values() if len(s)]
        if not every:
            return pl.lit(False)
        return tagged.is_in(pl.concat(every).implode()).fill_null(False)

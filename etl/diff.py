"""The diff stage: what differs between two stage directories, table by table.

A and B are any two stage directories (two exports, an export and its
transform, a backup and a re-export). Both are verified first; then every
table (``nodes/<Label>``, ``relationships/<TYPE>``, ``rejected/<Label>``) of
either side is compared with the table of the same kind and name on the other
side (``etl.diff_table`` explains how rows are matched and compared)::

    from etl.diff import run_diff

    result = run_diff(Path("data/export"), Path("data/transform"), samples=3)
    result.identical                    # False
    result.tables[0].to_json()          # added/removed/changed/unchanged, drift, samples
    result.to_json()                    # the whole result, as `etl --json diff` prints it

Two views go beyond one table at a time:

* **moved**: keys removed from one node table and added to another (a
  relabelling), so it reads as one move rather than an unrelated removal and
  addition;
* **migration** (``migration=NAME``): the migration's own explanation of
  A → B, ``get_migration(NAME).explain_diff`` (see ``etl.diff_migration``);
  a migration with nothing to explain adds no section.

``out`` writes the full differing rows as Parquet per table
(``nodes/<Label>/{added,removed,changed}.parquet``, likewise for relationships
and rejected rows), the files the migration's explanation writes
(``migration/*.parquet``) and ``diff.json``, into a directory built under a
temporary name and renamed into place, like a stage.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from etl.diff_model import BUCKET_ROWS, IN_A, IN_B, TableDiff, TablePair, TableSide
from etl.diff_read import readable_pairs
from etl.diff_rows import write_rows
from etl.diff_table import diff_table
from etl.errors import ConfigError
from etl.migrations import UnknownMigration, get_migration, list_migrations
from etl.progress import NullReporter, Reporter
from etl.stage import manifest_sha256, verify_stage

#: The marker file of a ``--out`` directory; only such a directory is ever replaced.
SUMMARY = "diff.json"
_FOLDERS = {"node": "nodes", "relationship": "relationships", "rejected": "rejected"}


@dataclass
class DiffResult:
    """Everything ``etl diff`` reports; ``to_json`` is its machine-readable form."""

    a: Path
    b: Path
    manifest_a: dict[str, Any]
    manifest_b: dict[str, Any]
    tables: list[TableDiff]
    moved: list[dict[str, Any]] = field(default_factory=list)
    migration: dict[str, Any] | None = None
    out_dir: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        return not any(t.status != "identical" for t in self.tables)

    def to_json(self) -> dict[str, Any]:
        def side(path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
            return {
                "path": str(path),
                "stage": manifest.get("stage"),
                "manifest_sha256": manifest_sha256(path),
                "tables": len(manifest.get("tables", [])),
                "rows": sum(int(t["rows"]) for t in manifest.get("tables", [])),
            }

        differing = [t for t in self.tables if t.status != "identical"]
        return {
            "identical": self.identical,
            "a": side(self.a, self.manifest_a),
            "b": side(self.b, self.manifest_b),
            "options": self.options,
            "summary": {
                "tables": len(self.tables),
                "tables_differing": len(differing),
                **{
                    k: sum(getattr(t, k) for t in self.tables)
                    for k in ("added", "removed", "changed", "unchanged")
                },
            },
            "tables": [t.to_json() for t in self.tables],
            "moved": self.moved,
            "migration": self.migration,
            "out": str(self.out_dir) if self.out_dir else None,
        }


def table_pairs(
    a_dir: Path, manifest_a: dict[str, Any], b_dir: Path, manifest_b: dict[str, Any]
) -> list[TablePair]:
    """Tables of A and B paired by (kind, name); a partitioned table's parts form one side."""

    def sides(root: Path, manifest: dict[str, Any]) -> dict[tuple[str, str], TableSide]:
        grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for t in manifest.get("tables", []):
            name = t.get("name") or Path(t["path"]).stem
            grouped.setdefault((t.get("kind", "node"), name), []).append(t)
        return {
            key: TableSide(
                paths=[root / t["path"] for t in sorted(parts, key=lambda t: t["path"])],
                entry=parts[0],
                rows=sum(int(t["rows"]) for t in parts),
            )
            for key, parts in grouped.items()
        }

    sa, sb = sides(a_dir, manifest_a), sides(b_dir, manifest_b)
    order = {"node": 0, "relationship": 1, "rejected": 2}
    keys = sorted(set(sa) | set(sb), key=lambda k: (order.get(k[0], 3), k[0], k[1]))
    return [
        TablePair(kind, name, sa.get((kind, name)), sb.get((kind, name))) for kind, name in keys
    ]


def run_diff(
    a: Path,
    b: Path,
    *,
    samples: int = 5,
    out: Path | None = None,
    compare_element_ids: bool = False,
    migration: str | None = None,
    reporter: Reporter | None = None,
    bucket_rows: int = BUCKET_ROWS,
) -> DiffResult:
    """Verify A and B, compare every table, and optionally explain a migration or write rows.

    ``bucket_rows`` bounds how many candidate keys' full rows are joined at
    once (memory against extra scans; see ``etl.diff_table``).

    Raises ``ValidationFailed`` when a side fails verification and
    ``ConfigError`` for an unknown migration or an ``out`` that is not a
    previous diff output: exit codes 3 and 2, as for every command (1 is "differences").
    """
    reporter = reporter or NullReporter()
    explain = _explainer(migration) if migration else None
    if out is not None:
        _check_out(out)
    manifest_a = verify_stage(a)
    manifest_b = verify_stage(b)
    pairs = table_pairs(a, manifest_a, b, manifest_b)
    result = DiffResult(
        a=a,
        b=b,
        manifest_a=manifest_a,
        manifest_b=manifest_b,
        tables=[],
        options={
            "samples": samples,
            "compare_element_ids": compare_element_ids,
            "migration": migration,
        },
    )
    with tempfile.TemporaryDirectory(prefix="etl-diff-") as work:
        pairs = readable_pairs(pairs, Path(work) / "input")
        for i, pair in enumerate(pairs):
            rows = sum(side.rows for side in (pair.a, pair.b) if side is not None)
            with reporter.task(f"diff {pair.label}", total=rows) as task:
                result.tables.append(
                    diff_table(
                        pair,
                        rows_dir=Path(work) / f"{i:04d}",
                        samples=samples,
                        compare_element_ids=compare_element_ids,
                        bucket_rows=bucket_rows,
                    )
                )
                task.advance(rows)
        result.moved = moved_keys(result.tables)
        if explain is not None:
            result.migration = explain(
                {p.label: p for p in pairs},
                {f"{_FOLDERS[t.kind]}/{t.name}": t for t in result.tables},
                samples=samples,
                compare_element_ids=compare_element_ids,
                lineage_ok=_derived_from(manifest_b, a),
                write_to=Path(work) / "migration" if out is not None else None,
            )
        if out is not None:
            result.out_dir = _write_out(result, out, extra=Path(work) / "migration")
    for t in result.tables:
        t.rows_files = []  # deleted with the work directory
    return result


def _explainer(name: str) -> Callable[..., dict[str, Any] | None]:
    """The ``explain_diff`` of migration ``name``; a ``ConfigError`` (exit 2) if unknown."""
    try:
        migration = get_migration(name)
    except UnknownMigration:
        known = ", ".join(m.name for m in list_migrations())
        raise ConfigError(
            f"no diff explanation for migration {name!r}; known: {known}",
            hint="run `etl transform --list` for the registered migrations",
        ) from None
    explain: Callable[..., dict[str, Any] | None] = migration.explain_diff
    return explain


def _derived_from(manifest_b: dict[str, Any], a: Path) -> bool:
    """Whether B's lineage names A's manifest (B was produced from exactly this A)."""
    digest = manifest_sha256(a)
    return any(i.get("manifest_sha256") == digest for i in manifest_b.get("inputs", []))


def moved_keys(tables: list[TableDiff]) -> list[dict[str, Any]]:
    """Keys removed from one node table and added to another with the same key columns."""
    nodes = [t for t in tables if t.kind == "node" and t.rows_files]
    moves = []
    for src in (t for t in nodes if t.removed):
        for dst in (t for t in nodes if t.added and t is not src and t.key == src.key):
            gone = pl.scan_parquet(src.rows_files).filter(~pl.col(IN_B)).select(src.key)
            came = pl.scan_parquet(dst.rows_files).filter(~pl.col(IN_A)).select(dst.key)
            dtypes = gone.collect_schema()
            came = came.with_columns(pl.col(k).cast(dtypes[k], strict=False) for k in src.key)
            n = int(
                gone.unique()
                .join(came.unique(), on=src.key, how="semi", nulls_equal=True)
                .select(pl.len())
                .collect(engine="streaming")
                .item()
            )
            if n:
                moves.append({"from": src.name, "to": dst.name, "key": src.key, "rows": n})
    return moves


def _check_out(out: Path) -> None:
    if out.exists() and (
        not out.is_dir() or (any(out.iterdir()) and not (out / SUMMARY).is_file())
    ):
        raise ConfigError(
            f"{out} exists and is not the output of an earlier `etl diff --out`",
            hint="choose a new directory; only a previous diff output is replaced",
        )


def _write_out(result: DiffResult, out: Path, *, extra: Path) -> Path:
    """Differing rows per table, ``extra`` (the migration's files) and diff.json, built aside
    and renamed into place."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{out.name}.tmp-", dir=out.parent))
    try:
        files: dict[str, dict[str, int]] = {}
        for t in result.tables:
            folder = f"{_FOLDERS.get(t.kind, t.kind)}/{t.name}"
            written = write_rows(t, tmp / folder)
            if written:
                files[folder] = written
        if extra.is_dir():
            for part in sorted(extra.glob("*.parquet")):
                rows = pl.scan_parquet(part).select(pl.len()).collect().item()
                files[f"{extra.name}/{part.stem}"] = {"rows": int(rows)}
            shutil.move(extra, tmp / extra.name)
        summary = {**result.to_json(), "out": str(out), "files": files}
        (tmp / SUMMARY).write_text(
            json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8"
        )
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out

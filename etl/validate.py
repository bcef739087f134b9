"""`etl validate`: prove in the database that the migration holds (docs/MIGRATION.md).

The stage side of validation. From the transform stage (and its export) this
module derives what the loaded database must look like; ``etl.graph.validate``
asks the database; each invariant becomes a ``Check`` that passes or fails
with its counts:

1. no migratable Workflow remains; every remaining one is in ``rejected/Workflow``;
2. every run with an issue reference has exactly one ``HAS_RUNS``, from that
   Issue; the issue-less runs are as many as the transform reported;
3. every run has exactly the events (``BELONGS_TO_WORKFLOW``) and plans
   (``PART_OF``) its Workflow had *in the export*;
4. enums, a DateTime ``createdAt``, no ``metadata``/``created_at`` left, and
   integer ``Issue.number`` everywhere except Issues the transform rejected
   (in place they stay as they were, and are listed in ``rejected/Issue``);
5. nodes per label and relationships per type equal the expectation:
   replayed, exactly the stage's tables; in place, the export's counts of the
   whole database with the exported tables replaced by the stage's (plus the
   rejected rows the load leaves where they are).

Exit code 3 (``ValidationFailed``) when any check fails.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from etl.graph import schema
from etl.graph import validate as gv
from etl.graph.schema import Driver
from etl.load_input import StageInput, TableInfo, open_input, read_columns
from etl.load_steps import IN_PLACE
from etl.load_target import detect_mode
from etl.settings import Settings
from etl.stage import open_parquet

#: The first migration's converted label: this module goes generic with declared checks.
TARGET_LABEL = "WorkflowRun"


@dataclass
class Check:
    number: int
    title: str
    ok: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Validation:
    target: str
    mode: str
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "mode": self.mode,
            "ok": self.ok,
            "checks": [
                # The figures go under "data": a count named "ok" must not hide the verdict.
                {
                    "number": c.number,
                    "title": c.title,
                    "ok": c.ok,
                    "detail": c.detail,
                    "data": c.data,
                }
                for c in self.checks
            ],
        }


# ------------------------------------------------------------ expectations


def _column_chunks(path: Path, column: str) -> Iterator[pl.Series]:
    """One column of a table, chunk by chunk (memory stays flat on large tables)."""
    pf = open_parquet(path)
    if column not in pf.schema_arrow.names:
        return
    for rb in pf.iter_batches(batch_size=65_536, columns=[column]):
        yield pl.Series(rb.column(0))


def _labels(stage_dir: Path, table: TableInfo) -> Counter[str]:
    path = stage_dir / table.path
    if "_labels" not in pq.read_schema(path).names:
        return Counter({table.name: table.rows})
    total: Counter[str] = Counter()
    for labels in _column_chunks(path, "_labels"):
        exploded = labels.explode(empty_as_null=False).drop_nulls()
        total.update(dict(exploded.value_counts().iter_rows()))
    return total


def _tables_counts(stage_dir: Path, tables: list[TableInfo]) -> dict[str, Counter[str]]:
    labels: Counter[str] = Counter()
    types: Counter[str] = Counter()
    for t in tables:
        if t.kind == "node":
            labels += _labels(stage_dir, t)
        elif t.kind == "relationship":
            types[t.name] += t.rows
    return {"labels": labels, "types": types}


def kept_rejected(stage: StageInput) -> dict[str, Counter[str]]:
    """Rejected rows that an in-place load leaves in the database (not in any stage table)."""
    labels: Counter[str] = Counter()
    types: Counter[str] = Counter()
    for t in stage.tables("rejected"):
        cols = read_columns(stage.path, t, ["_element_id", "_labels", "_start_label"])
        mirror = stage.table(f"nodes/{t.name}") or stage.table(f"relationships/{t.name}")
        if mirror is not None:
            present = read_columns(stage.path, mirror, ["_element_id"])["_element_id"]
            cols = cols.filter(~pl.col("_element_id").is_in(present.implode()))
        if "_labels" in cols.columns:
            labels += Counter(
                dict(
                    cols["_labels"]
                    .explode(empty_as_null=False)
                    .drop_nulls()
                    .value_counts()
                    .iter_rows()
                )
            )
        elif cols.height:
            types[t.name] += cols.height
    return {"labels": labels, "types": types}


def expected_counts(stage: StageInput, mode: str) -> dict[str, dict[str, int]]:
    """Nodes per label and relationships per type the database must hold after the load."""
    out = _tables_counts(stage.path, stage.tables())
    if mode == IN_PLACE and stage.export_path is not None:
        kept = kept_rejected(stage)
        before = (stage.export_manifest or {}).get("source", {}).get("counts_before") or {}
        exported = _tables_counts(stage.export_path, stage.export_tables())
        for group in ("labels", "types"):
            base = Counter(before.get(group) or exported[group])
            base.subtract(exported[group])
            out[group].update(base)
            out[group].update(kept[group])
    return {g: {k: v for k, v in sorted(c.items()) if v} for g, c in out.items()}


def _runs_expectations(stage: StageInput, mode: str) -> dict[str, Any]:
    runs = stage.table(f"nodes/{TARGET_LABEL}")
    assert runs is not None
    frame = read_columns(stage.path, runs, ["_element_id", "id"])
    has = stage.table("relationships/HAS_RUNS")
    refs: list[dict[str, Any]] = []
    if has is not None:
        cols = ["_end.id", "_start.repoFullName", "_start.number", "_start_element_id"]
        rel = read_columns(stage.path, has, cols)
        for end, repo, number, eid in rel.select(cols).iter_rows():
            refs.append(
                {
                    "id": end,
                    "repo": repo,
                    "number": number,
                    "eid": eid if mode == IN_PLACE else None,
                }
            )
    events = _per_run(stage, frame, "BELONGS_TO_WORKFLOW", "_start")
    plans = _per_run(stage, frame, "PART_OF", "_end")
    counts = frame.join(events, on="_element_id", how="left").join(
        plans, on="_element_id", how="left"
    )
    counts = counts.with_columns(pl.col("events").fill_null(0), pl.col("plans").fill_null(0))
    rejected = stage.table("rejected/Workflow")
    rejected_ids = (
        read_columns(stage.path, rejected, ["id"])["id"].drop_nulls().unique().to_list()
        if rejected is not None
        else []
    )
    report = stage.report()
    issueless = report.get("issueless_runs")
    if issueless is None:
        issueless = frame.height - len({r["id"] for r in refs})
    non_integer = kept_rejected(stage)["labels"].get("Issue", 0) if mode == IN_PLACE else 0
    workflows = stage.table("nodes/Workflow")
    return {
        "migrated": frame["id"].to_list(),
        "rejected": rejected_ids,
        "workflows": workflows.rows if workflows is not None else 0,
        "refs": refs,
        "issueless": int(issueless),
        "per_run": counts.select("id", "events", "plans").to_dicts(),
        "non_integer_issues": non_integer,
    }


def _per_run(stage: StageInput, runs: pl.DataFrame, rel_type: str, side: str) -> pl.DataFrame:
    """Relationships of ``rel_type`` per run, counted in the export (the Workflow's own)."""
    name = "events" if rel_type == "BELONGS_TO_WORKFLOW" else "plans"
    source = stage.export_table(f"relationships/{rel_type}")
    base = stage.export_path
    if source is None or base is None:
        source, base = stage.table(f"relationships/{rel_type}"), stage.path
    if source is None:
        return pl.DataFrame(schema={"_element_id": pl.String, name: pl.UInt32})
    per: Counter[str] = Counter()
    for ends in _column_chunks(base / source.path, f"{side}_element_id"):
        per.update(dict(ends.drop_nulls().value_counts().iter_rows()))
    return pl.DataFrame(
        {"_element_id": list(per), name: list(per.values())},
        schema={"_element_id": pl.String, name: pl.UInt32},
    )


# ------------------------------------------------------------------ checks


def check_loaded(
    driver: Driver, database: str, stage: StageInput, mode: str, target: str
) -> Validation:
    """Run every invariant that applies to ``stage`` against the database."""
    checks: list[Check] = []
    if stage.stage == "transform" and stage.table(f"nodes/{TARGET_LABEL}") is not None:
        exp = _runs_expectations(stage, mode)
        checks += _migration_checks(driver, database, exp)
    expected = expected_counts(stage, mode)
    actual = schema.counts(driver, database)
    diffs = []
    for group in ("labels", "types"):
        for name in sorted(set(expected[group]) | set(actual[group])):
            want, have = expected[group].get(name, 0), actual[group].get(name, 0)
            if want != have:
                diffs.append(f"{name} {have:,} (expected {want:,})")
    compared = len(set(expected["labels"]) | set(expected["types"]))
    checks.append(
        Check(
            5,
            "counts per label and type",
            not diffs,
            "; ".join(diffs) if diffs else f"{compared} labels and types as expected",
            {"expected": expected, "actual": actual},
        )
    )
    return Validation(target, mode, checks)


def _migration_checks(driver: Driver, database: str, exp: dict[str, Any]) -> list[Check]:
    wf = gv.remaining_workflows(
        driver, database, rejected=exp["rejected"], migrated=exp["migrated"]
    )
    ok1 = wf["unlisted"] == 0 and wf["migratable"] == 0 and wf["total"] == exp["workflows"]
    hr = gv.has_runs(driver, database, exp["refs"])
    n_refs = len(exp["refs"])
    ok2 = hr["checked"] == n_refs and hr["ok"] == n_refs and hr["issueless"] == exp["issueless"]
    ep = gv.events_and_plans(driver, database, exp["per_run"])
    ok3 = ep["checked"] == len(exp["per_run"]) and ep["bad"] == 0
    en = gv.enums_and_types(driver, database)
    bad4 = en["bad_type"] + en["bad_status"] + en["bad_created_at"] + en["legacy_props"]
    ok4 = bad4 == 0 and en["non_integer"] == exp["non_integer_issues"]

    def ex(d: dict[str, Any]) -> str:
        return f"; e.g. {', '.join(map(str, d['examples']))}" if d.get("examples") else ""

    return [
        Check(
            1,
            "remaining Workflows are the rejected ones",
            ok1,
            f"{wf['total']:,} Workflows (rejected file: {exp['workflows']:,}), "
            f"{wf['unlisted']:,} not listed, {wf['migratable']:,} migratable{ex(wf)}",
            wf,
        ),
        Check(
            2,
            "one HAS_RUNS from the right Issue",
            ok2,
            f"{hr['ok']:,}/{n_refs:,} runs with an issue reference correct "
            f"({hr['checked']:,} found); issue-less {hr['issueless']:,} "
            f"(report: {exp['issueless']:,}){ex(hr)}",
            hr,
        ),
        Check(
            3,
            "events and plans kept per run",
            ok3,
            f"{ep['checked'] - ep['bad']:,}/{len(exp['per_run']):,} runs keep their "
            f"BELONGS_TO_WORKFLOW and PART_OF counts{ex(ep)}",
            ep,
        ),
        Check(
            4,
            "enums, types, no legacy properties",
            ok4,
            f"{en['runs']:,} runs: {en['bad_type']} bad workflowType, {en['bad_status']} bad "
            f"status, {en['bad_created_at']} createdAt not a DateTime, {en['legacy_props']} "
            f"keep metadata/created_at; {en['non_integer']:,}/{en['issues']:,} Issue numbers "
            f"not integer (rejected Issues left as they were: {exp['non_integer_issues']:,})",
            en,
        ),
    ]


def run_validate(settings: Settings, *, in_dir: Path, export_dir: Path | None = None) -> Validation:
    """Verify the stage, connect, detect how it was loaded, and check every invariant."""
    from etl.graph.connection import open_driver, server_info

    stage = open_input(in_dir, export_dir=export_dir)
    with open_driver(settings) as driver:
        info = server_info(driver, settings)
        target = detect_mode(driver, settings.database, stage, into_nonempty=True)
        return check_loaded(driver, settings.database, stage, target.mode, info.describe())


def describe(v: Validation) -> str:
    """One line per invariant: PASS/FAIL, what it checks, and the counts."""
    lines = [f"Validation of {v.target} ({v.mode}):"]
    for c in v.checks:
        lines.append(f"  {'PASS' if c.ok else 'FAIL'}  {c.number}. {c.title}: {c.detail}")
    lines.append("All invariants hold." if v.ok else "Validation FAILED.")
    return "\n".join(lines)

"""Issue references, Issue nodes and ``HAS_RUNS`` for ``workflow-to-workflowrun``.

A run's issue reference comes from its ``BASED_ON_ISSUE`` relationship (latest
era) or from ``metadata.issue`` in either shape::

    {"number": 12, "repoFullName": "o/r", ...}        shape 2
    {"number": 12, "repo": "r", "owner": "o"}          shape 4 (the README's)

A reference is the key (``repoFullName``, integer ``number``). Rules:

* ``number`` must be a JSON number (``"12"`` is refused, not coerced) that is
  a positive integer exactly representable as a double: ``12`` and ``12.0``
  pass, ``12.5``, ``0`` and ``-3`` do not (``issue_ref_invalid``).
* the repository is ``repoFullName`` (``owner/repo``, no whitespace), or
  ``owner`` and ``repo`` (no slash or whitespace), each a JSON string. A valid
  ``repoFullName`` wins over a partial owner/repo; a complete pair that names
  another repository is ``issue_ref_invalid``, and so is neither form ("repo
  missing").
* ``issue: null`` counts as no reference (issue-less runs are valid).
* ``BASED_ON_ISSUE`` endpoints must have a repository and a positive integral
  number. Two relationships to different keys, or a relationship and
  ``metadata.issue`` naming different keys (compared exactly, case included),
  is ``issue_ref_conflict``.

Existing Issue nodes keep every property; ``number`` becomes Int64 (an Issue
whose number is missing or not integral cannot be keyed and goes to
``rejected/Issue`` with reason ``issue_number_invalid``). Several Issues with
one key are all kept and reported; ``HAS_RUNS`` attaches to the one with the
lowest ``_element_id`` (string order), so the choice never depends on row order.
"""

from __future__ import annotations

import polars as pl

from etl.migrations.workflow_runs_json import field, is_number, is_string
from etl.migrations.workflow_runs_schema import (
    MAX_EXACT_INT,
    lit_str,
    number_parts,
    short,
)

#: ``owner/repo``: exactly one slash, no whitespace, nothing JSON-structural.
_FULL_NAME = r'^[^/\s"{}\[\]]+/[^/\s"{}\[\]]+$'
_NAME_PART = r'^[^/\s"{}\[\]]+$'

ISSUE_NUMBER_INVALID = "issue_number_invalid"
_ISSUE_FIELDS = ("number", "repoFullName", "owner", "repo")


def _positive_int(value: pl.Expr) -> pl.Expr:
    ok = value.is_finite() & (value == value.floor()) & (value >= 1) & (value <= MAX_EXACT_INT)
    return pl.when(ok).then(value.cast(pl.Int64, strict=False))


def metadata_issue(meta: str, is_obj: pl.Expr) -> list[dict[str, pl.Expr]]:
    """Stages of columns (apply in order with ``with_columns``) ending in
    ``__meta_issue`` (bool), ``__meta_repo``, ``__meta_number`` (Int64; null
    unless valid) and ``__meta_issue_problem`` (a detail, null when fine).

    Each stage materialises JSON lookups as columns so the next one reuses
    them: every row's JSON is parsed once per lookup, not once per use.
    """
    m = pl.col(meta)
    issue, text = pl.col("__issue"), {n: pl.col(f"__{n}_text") for n in _ISSUE_FIELDS}
    lookups: dict[str, pl.Expr] = {}
    for name in _ISSUE_FIELDS:
        lookups[f"__{name}_text"] = field(issue, name)
        lookups[f"__{name}_is_str"] = is_string(issue, name)
    lookups["__number_is_num"] = is_number(issue, "number")

    def valid_name(name: str, pattern: str) -> pl.Expr:
        ok = pl.col(f"__{name}_is_str") & text[name].str.contains(pattern)
        return pl.when(ok).then(text[name])

    parsed = {
        "__number": _positive_int(
            pl.when(pl.col("__number_is_num")).then(text["number"].cast(pl.Float64, strict=False))
        ),
        "__full": valid_name("repoFullName", _FULL_NAME),
        "__pair": pl.concat_str(
            valid_name("owner", _NAME_PART), pl.lit("/"), valid_name("repo", _NAME_PART)
        ),
    }
    number, full, pair = pl.col("__number"), pl.col("__full"), pl.col("__pair")
    number_text, full_text = text["number"], text["repoFullName"]
    has_pair = text["owner"].is_not_null() | text["repo"].is_not_null()
    shown = short(pl.coalesce(number_text, pl.lit("null")), 40)
    problem = (
        pl.when(issue.is_null())
        .then(lit_str(None))
        .when(~pl.col("__issue_is_obj"))
        .then(pl.format("metadata.issue is not an object (got '{}')", short(issue, 40)))
        .when(number_text.is_null())
        .then(lit_str("metadata.issue has no number"))
        .when(~pl.col("__number_is_num"))
        .then(pl.format("metadata.issue.number must be a JSON number, got '{}'", shown))
        .when(number.is_null())
        .then(pl.format("metadata.issue.number {} is not a whole number from 1 to 2^53", shown))
        .when(full_text.is_not_null() & full.is_null())
        .then(
            pl.format(
                "metadata.issue.repoFullName '{}' is not of the form owner/repo",
                short(full_text, 60),
            )
        )
        # With a valid repoFullName, a stray partial owner/repo is ignored; a
        # complete pair must agree with it (below).
        .when(full.is_null() & has_pair & pair.is_null())
        .then(
            pl.format(
                "metadata.issue needs owner and repo names, got owner '{}' and repo '{}'",
                short(pl.coalesce(text["owner"], pl.lit("null")), 40),
                short(pl.coalesce(text["repo"], pl.lit("null")), 40),
            )
        )
        .when(full.is_null() & pair.is_null())
        .then(lit_str("metadata.issue has no repository (repoFullName, or owner and repo)"))
        .when(full.is_not_null() & pair.is_not_null() & (full != pair))
        .then(
            pl.format("metadata.issue.repoFullName '{}' disagrees with owner/repo '{}'", full, pair)
        )
    )
    valid = issue.is_not_null() & pl.col("__meta_issue_problem").is_null()
    return [
        {"__issue": pl.when(is_obj).then(field(m, "issue"))},
        {
            # A string holding JSON (double-encoded) is not an object, whatever it holds.
            "__issue_is_obj": ~is_string(m, "issue") & issue.str.starts_with("{"),
            **lookups,
        },
        parsed,
        {"__meta_issue_problem": problem, "__meta_issue": issue.is_not_null()},
        {
            "__meta_repo": pl.when(valid).then(pl.coalesce(full, pair)),
            "__meta_number": pl.when(valid).then(number),
        },
    ]


def relationship_refs(based_on: pl.LazyFrame, number_dtype: pl.DataType) -> pl.LazyFrame:
    """One row per Workflow id with ``BASED_ON_ISSUE`` relationships.

    Columns: ``wf_id``; ``rel_problem`` (the first invalid endpoint's detail,
    or null); ``rel_keys`` (distinct valid keys, e.g. ``"o/r#1, o/r#2"``);
    ``rel_key_count``; ``rel_repo``/``rel_number`` (the smallest valid key).
    """
    as_float, _ = number_parts("_end.number", number_dtype)
    repo = pl.col("_end.repoFullName")
    number = _positive_int(as_float)
    problem = (
        pl.when(repo.is_null() | (repo.str.strip_chars() == ""))
        .then(lit_str("BASED_ON_ISSUE points to an Issue without repoFullName"))
        .when(as_float.is_null())
        .then(lit_str("BASED_ON_ISSUE points to an Issue without a number"))
        .when(number.is_null())
        .then(
            pl.format(
                "BASED_ON_ISSUE points to {}#{}, whose number is not a whole number from 1 to 2^53",
                short(repo, 60),
                as_float.cast(pl.String),
            )
        )
    )
    rels = based_on.filter(
        (pl.col("_start_label") == "Workflow") & (pl.col("_end_label") == "Issue")
    ).select(wf_id=pl.col("_start.id"), repo=repo, number=number, problem=problem)
    keys = (
        rels.filter(pl.col("problem").is_null())
        .select("wf_id", "repo", "number")
        .unique()
        .group_by("wf_id")
        .agg(
            rel_key_count=pl.len(),
            rel_repo=pl.col("repo").sort_by(["repo", "number"]).first(),
            rel_number=pl.col("number").sort_by(["repo", "number"]).first(),
            rel_keys=pl.concat_str(pl.col("repo"), pl.lit("#"), pl.col("number").cast(pl.String))
            .sort()
            .str.join(", "),
        )
    )
    problems = (
        rels.filter(pl.col("problem").is_not_null())
        .group_by("wf_id")
        .agg(rel_problem=pl.col("problem").sort().first())
    )
    return keys.join(problems, on="wf_id", how="full", coalesce=True)


def issue_nodes(
    issues: pl.LazyFrame, number_dtype: pl.DataType
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """``(kept, rejected)``: Issues with an Int64 ``number`` and ``_created=False``
    after the key columns, and the ones whose number cannot be an integer."""
    as_float, as_int = number_parts("number", number_dtype)
    cols = issues.collect_schema().names()
    at = cols.index("number") + 1
    order = [*cols[:at], "_created", *cols[at:]]
    marked = issues.with_columns(__as_int=as_int, __as_float=as_float)
    kept = (
        marked.filter(pl.col("__as_int").is_not_null())
        .with_columns(number=pl.col("__as_int"), _created=pl.lit(False))
        .select(order)
    )
    rejected = marked.filter(pl.col("__as_int").is_null()).select(
        lit_str(ISSUE_NUMBER_INVALID).alias("reason"),
        pl.when(pl.col("__as_float").is_null())
        .then(lit_str("Issue has no numeric number"))
        .otherwise(
            pl.format(
                "Issue number {} is not a whole number within ±2^53",
                pl.col("__as_float").cast(pl.String),
            )
        )
        .alias("detail"),
        *cols,
    )
    return kept, rejected


def issue_number_in_key(
    rels: pl.LazyFrame, col: str, number_dtype: pl.DataType
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """``(kept, rejected)``: a relationship table with the Issue key column ``col``
    as Int64, and the rows whose non-null number cannot be an integer."""
    as_float, as_int = number_parts(col, number_dtype)
    cols = rels.collect_schema().names()
    marked = rels.with_columns(__as_int=as_int, __as_float=as_float)
    bad = pl.col(col).is_not_null() & pl.col("__as_int").is_null()
    kept = marked.filter(~bad).with_columns(pl.col("__as_int").alias(col)).select(cols)
    rejected = marked.filter(bad).select(
        lit_str(ISSUE_NUMBER_INVALID).alias("reason"),
        pl.format(
            "Issue number {} in {} is not a whole number within ±2^53",
            pl.coalesce(pl.col("__as_float").cast(pl.String), pl.lit("null")),
            pl.lit(col),
        ).alias("detail"),
        *cols,
    )
    return kept, rejected


def resolve_issues(
    existing: pl.LazyFrame, refs: pl.LazyFrame
) -> tuple[pl.LazyFrame, pl.LazyFrame, pl.LazyFrame]:
    """``(issues, has_runs, duplicates)`` from the kept Issues and the runs' references.

    ``refs`` has one row per migrated run with a reference: ``_element_id`` and
    ``id`` of the run, ``repo`` and ``number``. Keys no Issue has are created
    (``_element_id`` null, ``_labels`` ``["Issue"]``, ``_created`` true), once
    per key. ``duplicates`` lists keys held by several Issues.
    """
    keyed = existing.filter(pl.col("repoFullName").is_not_null())
    by_key = keyed.group_by("repoFullName", "number").agg(
        chosen=pl.col("_element_id").min(),
        copies=pl.len(),
        element_ids=pl.col("_element_id").sort(nulls_last=True),
    )
    wanted = refs.select(repoFullName="repo", number="number").unique()
    created = wanted.join(by_key, on=["repoFullName", "number"], how="anti").select(
        _element_id=lit_str(None),
        _labels=pl.lit(["Issue"], dtype=pl.List(pl.String)),
        repoFullName="repoFullName",
        number="number",
        _created=pl.lit(True),
    )
    issues = pl.concat([existing, created], how="diagonal")
    has_runs = refs.join(
        by_key.select(repo="repoFullName", number="number", chosen="chosen"),
        on=["repo", "number"],
        how="left",
    ).select(
        _element_id=lit_str(None),
        _start_label=lit_str("Issue"),
        _start_element_id="chosen",
        **{"_start.repoFullName": pl.col("repo"), "_start.number": pl.col("number")},
        _end_label=lit_str("WorkflowRun"),
        _end_element_id="_element_id",
        **{"_end.id": pl.col("id")},
    )
    duplicates = by_key.filter(pl.col("copies") > 1)
    return issues, has_runs, duplicates

"""What a seeded legacy graph is made of: its vocabulary, what ``--dirty`` plants, what a
correct transform must report, and the batches the generator streams.

``etl.seed_generate`` draws a graph from these; ``etl.seed`` writes it online,
``etl.seed_files`` and ``etl.seed_offline`` with the importer.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from etl.migrations.workflow_runs_classify import REASONS

NOW = datetime(2025, 6, 1, tzinfo=UTC)
START = datetime(2025, 3, 1, tzinfo=UTC)

#: Planted kinds and their share of ``--dirty``: first the rejected ones (reason of the
#: same name), then valid ones that exercise a rule and migrate.
PLANT_WEIGHTS: dict[str, int] = {
    **dict.fromkeys(REASONS[2:], 1),  # metadata_missing: crashed before initialisation
    "duplicate_id": 2,  # pairs: both Workflows of a pair are rejected
    "issue_not_in_graph": 1,  # the migration creates the Issue
    "no_events": 1,  # created_at but no events
    "duplicate_issue": 1,  # two Issue nodes share the run's key
    "resolve_issue_alias": 1,
    "issueless": 1,  # metadata without an issue, and no BASED_ON_ISSUE
}
ISSUE_TYPES = ("commentOnIssue", "resolveIssue")
PR_TYPES = ("identifyPRGoal", "reviewPullRequest")
TYPES, TYPE_WEIGHTS = (*ISSUE_TYPES, *PR_TYPES), (35, 35, 15, 15)

#: Status texts that name a workflow type (``--infer-type`` evidence), and ones that do not.
TYPED_STATUS = {
    "commentOnIssue": ("Commenting on issue", "Posting a comment on the issue"),
    "resolveIssue": ("Resolving issue", "Starting to resolve the issue"),
    "identifyPRGoal": ("Identifying PR goal", "Summarising the pull request goal"),
    "reviewPullRequest": ("Starting PR review", "Reviewing pull request"),
}
NEUTRAL_STATUS = (
    "Fetching repository", "Cloning repository", "Checking out branch", "Analyzing code",
    "Running tests", "Generating plan", "Waiting for LLM", "Pushing changes", "Thinking",
)  # fmt: skip
UNKNOWN_TYPES = ("summarizeIssue", "triageIssue", "ResolveIssue", "resolve-issue", "")
INVALID_JSON = ("[object Object]", "undefined", "{workflowType: 'commentOnIssue'}", "")
NOT_OBJECT = ("null", "[]", '"commentOnIssue"', "true", "0")
TOOLS = ("read_file", "search_code", "write_file", "run_tests", "git_diff", "create_pr")
MODELS = ("claude-3-7-sonnet", "gpt-4o", "o3-mini", "gpt-4.1")
ERRORS = ("Rate limit exceeded", "Request timed out", "Tool execution failed: exit code 1",
          "Context length exceeded", "GitHub API returned 502", "ECONNRESET")  # fmt: skip
OWNERS = ("acme", "octo-labs", "youngchingjui", "northwind", "ducklake")
REPO_NAMES = ("web", "api", "issue-to-pr", "docs", "cli", "infra", "sdk", "mobile")
WORDS = ("the issue", "function", "returns", "null when", "the test", "config", "update",
         "error", "handler", "should", "component", "render", "fix", "missing", "type",
         "import", "we", "need to", "refactor", "async", "call", "README", "page", "build",
         "dependency", "version", "user", "session", "cache", "query", "route")  # fmt: skip
OUTCOMES = ("done", "error", "open")
PLAN_STATUS = ("draft", "approved", "rejected")


def plant_counts(workflows: int, dirty: float) -> dict[str, int]:
    """How many workflows of each planted kind ``--dirty`` gives (largest remainder).

    ``duplicate_id`` is kept even (pairs); an odd one moves to
    ``metadata_invalid_json``, so the total is always ``round(dirty × workflows)``.
    """
    total = round(workflows * dirty)
    weight = sum(PLANT_WEIGHTS.values())
    exact = {k: total * w / weight for k, w in PLANT_WEIGHTS.items()}
    counts = {k: int(v) for k, v in exact.items()}
    by_remainder = sorted(PLANT_WEIGHTS, key=lambda k: (counts[k] - exact[k], k))
    for k in by_remainder[: total - sum(counts.values())]:
        counts[k] += 1
    if counts["duplicate_id"] % 2:
        counts["duplicate_id"] -= 1
        counts["metadata_invalid_json"] += 1
    return counts


def schedule(rng: random.Random, workflows: int, counts: dict[str, int]) -> Iterator[str | None]:
    """The planted kind of each workflow in order (None: natural).

    A uniformly random arrangement drawn one unit at a time (a duplicate pair
    is one unit of two adjacent workflows), so no index list is ever held.
    """
    left: dict[str | None, int] = {None: workflows - sum(counts.values())}
    left.update({k: v for k, v in counts.items() if k != "duplicate_id"})
    left["pair"] = counts["duplicate_id"] // 2
    units = sum(left.values())
    while units:
        pick = rng.randrange(units)
        kinds = iter(left)
        kind = next(kinds)
        while pick >= left[kind]:
            pick -= left[kind]
            kind = next(kinds)
        left[kind] -= 1
        units -= 1
        yield from ["duplicate_id"] * 2 if kind == "pair" else [kind]


@dataclass
class Expected:
    """What a correct ``etl transform`` reports (the keys of its report.json)."""

    runs_out: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    issues_created: int = 0
    issueless_runs: int = 0
    aliases_normalised: int = 0

    def add(self, reason: str | None, *, ref: str, alias: bool) -> None:
        """Count one Workflow; ``ref``: ``"graph"``, ``"new"`` (Issue to create) or ``"none"``."""
        if reason is not None:
            self.rejected[reason] += 1
            return
        self.runs_out += 1
        self.issueless_runs += ref == "none"
        # A "new" key is unique to its run, so each one is created exactly once.
        self.issues_created += ref == "new"
        self.aliases_normalised += alias


@dataclass
class Events:
    """Events as columns: ``id``, ``type``, ``data`` (JSON text), ``ts`` (epoch ms)."""

    ids: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    data: list[str] = field(default_factory=list)
    ts: list[int] = field(default_factory=list)


@dataclass
class Batch:
    """One batch of workflows, plus the Issues created before and after its issue links.

    A workflow row is ``{id, created_at, metadata, first, count, fork, based_on,
    plan}``: its events are ``events[first : first + count]``, chained by
    ``NEXT_EVENT`` in that order, except that at a ``fork`` ``k`` (or None) event
    ``k`` is a leaf and ``k - 1`` points to ``k + 1`` too (``next_pairs``);
    ``based_on`` holds Issue keys, and ``plan`` is ``{id, status, createdAt,
    event (position), issue (key)}`` or None.
    A duplicate Issue's second copy comes after the links, so every link finds
    exactly one Issue; its key is unique to its run, so no later batch needs it.
    """

    workflows: list[dict[str, Any]] = field(default_factory=list)
    events: Events = field(default_factory=Events)
    issues: list[dict[str, Any]] = field(default_factory=list)
    late_issues: list[dict[str, Any]] = field(default_factory=list)

    @staticmethod
    def next_pairs(row: dict[str, Any]) -> list[list[int]]:
        """The ``NEXT_EVENT`` pairs of a workflow row, as positions in its events."""
        pairs = [[j - 1, j] for j in range(1, row["count"])]
        if row["fork"] is not None:
            pairs[row["fork"]] = [row["fork"] - 1, row["fork"] + 1]
        return pairs

    def workflow_events(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        """The events of one workflow row as ``{id, type, data, ts}`` dicts."""
        ev, lo = self.events, row["first"]
        return [{"id": ev.ids[j], "type": ev.types[j], "data": ev.data[j], "ts": ev.ts[j]}
                for j in range(lo, lo + row["count"])]  # fmt: skip


@dataclass(frozen=True)
class PoolKeys:
    """The keys of the pool Issues: ``key(j)`` is ``(repos[j % R], float(j // R + 1))``."""

    repos: tuple[str, ...]
    pool: int

    def index(self, key: tuple[str, float]) -> int | None:
        """``j`` such that pool Issue ``j`` has ``key``, or None for a key outside the pool."""
        repo, number = key
        if repo not in self.repos or number != int(number) or number < 1:
            return None
        j = (int(number) - 1) * len(self.repos) + self.repos.index(repo)
        return j if j < self.pool else None

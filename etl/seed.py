"""`etl seed`: a realistic, deterministic *legacy* graph (docs/MIGRATION.md).

The generator replays what the issue-to-pr application wrote between March and
May 2025. Workflow index order is time order, and the era decides the shape of
``metadata``::

    era 1  first 15 %  none
    era 2  next 30 %   {"workflowType", "issue": {number, repoFullName, title}, "postToGithub"}
    era 4  next 25 %   {"workflowType", "issue": {number, repo, owner}, "postToGithub"} (README)
    era 3  last 30 %   {"workflowType", "postToGithub": false} + BASED_ON_ISSUE → Issue

``identifyPRGoal`` and ``reviewPullRequest`` runs never have metadata. Runs have
about 20 events (log-normal), chained by ``NEXT_EVENT`` (3 % of runs fork on two
events in the same millisecond); most complete, some fail (some after
recoverable errors), some were abandoned, and a few are still running relative
to the fixed ``NOW``. Issue numbers are floats, as the JavaScript driver wrote.

``--dirty F`` plants ``round(F × workflows)`` workflows, each with exactly one
problem or oddity (``PLANT_WEIGHTS``), so the seed knows what a correct
transform reports: ``summary["expected"]`` (default options) and
``summary["expected_infer_type"]`` (``--infer-type``). Every metadata-less
Workflow (early runs, every PR run, planted crashes) is ``metadata_missing``.

Determinism: every value comes from ``random.Random`` seeded by ``seed`` and
drawn in workflow order, and times are relative to ``NOW``, never the wall
clock; ``batch_size`` only changes where the stream is cut. Memory is flat:
each batch is generated while the previous one is being written.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
import zlib
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from etl.errors import ConfigError, EtlError
from etl.graph import seed_write
from etl.migrations.workflow_runs_classify import REASONS
from etl.progress import NullReporter, Reporter, Task

NOW = datetime(2025, 6, 1, tzinfo=UTC)
START = datetime(2025, 3, 1, tzinfo=UTC)
_NOW_MS, _START_MS = int(NOW.timestamp() * 1000), int(START.timestamp() * 1000)
# Runs start at least two hours before NOW, so only the planned ones look alive.
_SPAN_MS = _NOW_MS - 2 * 3_600_000 - _START_MS

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
_TYPES, _TYPE_WEIGHTS = (*ISSUE_TYPES, *PR_TYPES), (35, 35, 15, 15)
#: Small transactions, two at a time: the fastest measured on a 2-core machine.
DEFAULT_BATCH_SIZE, DEFAULT_WRITERS = 200, 2

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
_TOOLS = ("read_file", "search_code", "write_file", "run_tests", "git_diff", "create_pr")
_MODELS = ("claude-3-7-sonnet", "gpt-4o", "o3-mini", "gpt-4.1")
_ERRORS = ("Rate limit exceeded", "Request timed out", "Tool execution failed: exit code 1",
           "Context length exceeded", "GitHub API returned 502", "ECONNRESET")  # fmt: skip
_OWNERS = ("acme", "octo-labs", "youngchingjui", "northwind", "ducklake")
_NAMES = ("web", "api", "issue-to-pr", "docs", "cli", "infra", "sdk", "mobile")
_WORDS = ("the issue", "function", "returns", "null when", "the test", "config", "update",
          "error", "handler", "should", "component", "render", "fix", "missing", "type",
          "import", "we", "need to", "refactor", "async", "call", "README", "page", "build",
          "dependency", "version", "user", "session", "cache", "query", "route")  # fmt: skip


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
class Batch:
    """One batch of workflows, plus the Issues created before and after its issue links.

    A duplicate Issue's second copy comes after the links, so every link finds
    exactly one Issue; its key is unique to its run, so no later batch needs it.
    """

    workflows: list[dict[str, Any]] = field(default_factory=list)
    issues: list[dict[str, Any]] = field(default_factory=list)
    late_issues: list[dict[str, Any]] = field(default_factory=list)


def _schedule(rng: random.Random, workflows: int, counts: dict[str, int]) -> Iterator[str | None]:
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


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))  # compact, like JSON.stringify


class Generator:
    """Streams the legacy graph for ``(seed, workflows, dirty)``; see the module docstring."""

    def __init__(self, *, seed: int, workflows: int, dirty: float) -> None:
        self.seed, self.workflows = seed, workflows
        self.planted = plant_counts(workflows, dirty)
        self.rng = random.Random(seed)
        self._plan_rng = random.Random(f"{seed}/plan")
        words = random.Random(0)
        self._corpus = " ".join(words.choice(_WORDS) for _ in range(30_000))
        # About three runs per Issue; a key is a function of its index, never stored.
        self.pool = max(2, workflows // 3)
        pairs = [f"{o}/{n}" for o in _OWNERS for n in _NAMES]
        self.repos = random.Random(f"{seed}/repos").sample(pairs, min(24, self.pool))
        self._fresh = 0
        self.nodes: Counter[str] = Counter()
        self.rels: Counter[str] = Counter()
        self.expected, self.expected_infer = Expected(), Expected()
        self.without_metadata = 0

    def key(self, j: int) -> tuple[str, float]:
        """Key of pool Issue ``j``: numbers run 1, 2, … per repository."""
        return self.repos[j % len(self.repos)], float(j // len(self.repos) + 1)

    def _fresh_key(self) -> tuple[str, float]:
        # Numbers far above the pool's, so a fresh key never names a pool Issue.
        self._fresh += 1
        base = self.pool // len(self.repos) + 1000
        return self.repos[self._fresh % len(self.repos)], float(base + self._fresh)

    def _title(self, key: tuple[str, float]) -> str:
        # crc32, not hash(): str hashes change with every interpreter (PYTHONHASHSEED).
        h = zlib.crc32(f"{self.seed}:{key[0]}#{key[1]}".encode())
        first, second = _WORDS[h % len(_WORDS)], _WORDS[h // len(_WORDS) % len(_WORDS)]
        return f"{first.capitalize()} {second} in {key[0].split('/')[1]}"

    def _issue(self, key: tuple[str, float]) -> dict[str, Any]:
        self.nodes["Issue"] += 1
        return {"repo": key[0], "number": key[1], "title": self._title(key)}

    def pool_issues(self, size: int) -> Iterator[list[dict[str, Any]]]:
        """The Issues that runs reference, ``size`` per list."""
        for lo in range(0, self.pool, size):
            yield [self._issue(self.key(j)) for j in range(lo, min(lo + size, self.pool))]

    def batches(self, size: int) -> Iterator[Batch]:
        """The workflows (events, plans, extra Issues), ``size`` per batch."""
        batch, previous, pair_open = Batch(), "", False
        for i, kind in enumerate(_schedule(self._plan_rng, self.workflows, self.planted)):
            # The second Workflow of a duplicate pair reuses the first one's id.
            reuse = previous if kind == "duplicate_id" and pair_open else None
            pair_open = kind == "duplicate_id" and not pair_open
            row = self._workflow(i, kind, reuse, batch)
            previous = row["id"]
            batch.workflows.append(row)
            if len(batch.workflows) >= size:
                yield batch
                batch = Batch()
        if batch.workflows:
            yield batch

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _text(self, median: float, cap: int = 4000) -> str:
        n = min(cap, int(self.rng.lognormvariate(0, 0.8) * median) + 1)
        at = self.rng.randrange(len(self._corpus) - cap)
        return self._corpus[at : at + n]

    def _issue_ref(self, shape: int, key: tuple[str, float]) -> dict[str, Any]:
        if shape == 2:
            return {"number": int(key[1]), "repoFullName": key[0], "title": self._title(key)}
        owner, repo = key[0].split("/")
        return {"number": int(key[1]), "repo": repo, "owner": owner}

    def _invalid_ref(self, shape: int, key: tuple[str, float]) -> dict[str, Any]:
        ref = self._issue_ref(shape, key)
        flaw = self.rng.randrange(3)
        if flaw == 0:
            ref["number"] += 0.5  # not integral
        elif flaw == 1:
            ref["number"] = str(ref["number"])  # a string, not a number
        else:
            ref.pop("repoFullName" if shape == 2 else "owner")  # repository missing
        return ref

    def _workflow(
        self, i: int, kind: str | None, reuse: str | None, batch: Batch
    ) -> dict[str, Any]:
        rng = self.rng
        t = i / self.workflows
        era = 1 if t < 0.15 else 2 if t < 0.45 else 4 if t < 0.70 else 3
        wid = reuse or self._uuid()
        wtype = rng.choices(_TYPES, _TYPE_WEIGHTS)[0] if kind is None else rng.choice(ISSUE_TYPES)
        running = kind is None and t >= 0.9 and rng.random() < 0.03
        t0 = _START_MS + int(t * _SPAN_MS) + rng.randrange(1 + _SPAN_MS // self.workflows)
        if running:
            t0 = _NOW_MS - rng.randrange(10 * 60_000, 40 * 60_000)
        outcome = "running" if running else rng.choices(("done", "error", "open"), (82, 11, 7))[0]
        n = min(150, max(3, int(rng.lognormvariate(2.8, 0.6))))
        created: int | None = None if rng.random() < (0.5 if era == 1 else 0.03) else t0
        # Natural shape by era (0: no metadata); planted ones need metadata even in era 1.
        shape = (0 if wtype in PR_TYPES or era == 1 else era) if kind is None else max(era, 2)
        key = self.key(rng.randrange(self.pool))
        ref, alias = "graph", False
        if kind in ("issue_not_in_graph", "duplicate_issue"):
            key = self._fresh_key()
            if kind == "issue_not_in_graph":
                ref, shape = "new", 4 if shape == 3 else shape
            else:
                batch.issues.append(self._issue(key))
                batch.late_issues.append(self._issue(key))
        elif kind in ("issue_ref_invalid", "issueless"):
            ref, shape = "none", rng.choice((2, 4) if kind == "issue_ref_invalid" else (2, 3))
        elif kind == "resolve_issue_alias":
            wtype, alias = "resolveIssue", True
        meta: dict[str, Any] | None = None
        if shape:
            meta = {"workflowType": "resolve_issue" if alias else wtype}
            if shape != 3:
                meta["issue"] = self._issue_ref(shape, key)
            meta["postToGithub"] = shape == 2 or (shape == 4 and rng.random() < 0.5)
        based = [key] if shape == 3 and kind != "issueless" else []
        if meta is None or kind == "metadata_missing":  # planted: crashed before initialisation
            meta, based, ref = None, [], "none"
            if kind:
                n, outcome = rng.choice((0, 1, 1, 2)), "error"
                created = t0 if rng.random() < 0.7 else None
        elif kind in ("created_at_missing", "no_events"):
            n, created = 0, (None if kind == "created_at_missing" else t0)
        elif kind == "workflow_type_missing":
            del meta["workflowType"]
        elif kind == "workflow_type_unknown":
            meta["workflowType"] = rng.choice(UNKNOWN_TYPES)
        elif kind == "issue_ref_invalid":
            meta["issue"] = self._invalid_ref(shape, key)
        elif kind == "issueless" and shape == 2:
            meta["issue"] = None  # `issue: null` counts as no reference
        elif kind == "issue_ref_conflict":
            j = rng.randrange(self.pool)
            other = self.key(j) if self.key(j) != key else self.key((j + 1) % self.pool)
            if rng.random() < 0.5:  # BASED_ON_ISSUE and metadata.issue disagree
                meta["issue"], based = self._issue_ref(rng.choice((2, 4)), other), [key]
            else:  # two BASED_ON_ISSUE to different Issues
                meta.pop("issue", None)
                based = [key, other]
        metadata = None if meta is None else _json(meta)
        if metadata and kind == "metadata_invalid_json":
            variants = (*INVALID_JSON, metadata[: rng.randrange(1, len(metadata))])  # truncated
            metadata = rng.choice(variants)
        elif metadata and kind == "metadata_not_object":
            metadata = rng.choice((*NOT_OBJECT, _json(metadata)))  # or double-encoded
        events, nexts, evidence = self._events(n, wtype, outcome, t0, rng.random() < 0.7)
        plan = None
        plan_key = based[0] if based else key if meta and ref == "graph" else None
        if wtype == "commentOnIssue" and plan_key and len(events) >= 3 and rng.random() < 0.7:
            plan = self._plan(events, plan_key)
        self._count(events, nexts, based, plan, metadata)
        reason = kind if kind in REASONS else None if meta else "metadata_missing"
        self.expected.add(reason, ref=ref, alias=alias)
        # --infer-type rescues a run without a workflowType when a status event names one.
        rescued = reason in ("metadata_missing", "workflow_type_missing") and evidence
        self.expected_infer.add(None if rescued else reason, ref=ref, alias=alias)
        return {"id": wid, "created_at": created, "metadata": metadata, "events": events,
                "next": nexts, "based_on": [list(k) for k in based], "plan": plan}  # fmt: skip

    def _events(
        self, n: int, wtype: str, outcome: str, t0: int, typed: bool
    ) -> tuple[list[dict[str, Any]], list[list[int]], bool]:
        """``n`` events of a run, their ``NEXT_EVENT`` pairs, and whether a status names
        the run's type (``--infer-type`` evidence)."""
        if n == 0:
            return [], [], False
        rng = self.rng
        finished = outcome in ("done", "error") and n >= 2
        body_end = n - 1 if finished else n
        start = {"status": "starting"} if rng.random() < 0.4 else {"content": self._text(80)}
        seq: list[tuple[str, Any]] = [("workflow_start", start)]
        for kind, median in (("system_prompt", 900), ("user_message", 250)):
            if len(seq) < body_end:
                seq.append((kind, {"content": self._text(median)}))
        evidence = typed and len(seq) < body_end
        if evidence:
            seq.append(("status", {"status": rng.choice(TYPED_STATUS[wtype])}))
        while len(seq) < body_end:
            r = rng.random()
            if r < 0.4:
                content = None if rng.random() < 0.05 else self._text(300)
                llm: dict[str, Any] = {"content": content}
                if r < 0.3:
                    llm["model"] = rng.choice(_MODELS)
                seq.append(("llm_response", llm))
            elif r < 0.7 and len(seq) + 1 < body_end:
                tool = rng.choice(_TOOLS)
                args = {"path": f"src/{self._text(8, 20).strip()}.ts"}
                seq.append(("tool_call", {"toolName": tool, "arguments": args}))
                seq.append(("tool_response", {"toolName": tool, "response": self._text(400)}))
            elif r < 0.9:
                seq.append(("status", {"status": rng.choice(NEUTRAL_STATUS)}))
            elif r < 0.95:
                seq.append(("user_message", {"content": self._text(120)}))
            else:
                retry = {"error": rng.choice(_ERRORS), "recoverable": True}
                seq.append(("error", {**retry, "retryCount": rng.randrange(1, 4)}))
        if finished and outcome == "done":
            completed = {"status": "completed", "success": True}
            seq.append(rng.choice((("complete", {"success": True}), ("status", completed))))
        elif finished:
            err: Any = {} if rng.random() < 0.2 else rng.choice(_ERRORS)  # {} = a serialised Error
            fatal: dict[str, Any] = {"error": err}
            if rng.random() < 0.5:
                fatal["recoverable"] = False
            seq.append(("error", fatal))
        stamps, ts = [], t0 + rng.randrange(50)
        for _ in seq:
            stamps.append(ts)
            ts += 1 + int(rng.expovariate(1 / (800 if outcome == "running" else 3000)))
        nexts = [[j - 1, j] for j in range(1, n)]
        if n >= 5 and rng.random() < 0.03:  # same millisecond: both hang off the previous event
            k = rng.randrange(1, n - 3)
            stamps[k + 1] = stamps[k]
            nexts[k] = [k - 1, k + 1]
        events = [{"id": self._uuid(), "type": typ, "data": _json(data), "ts": at}
                  for (typ, data), at in zip(seq, stamps, strict=True)]  # fmt: skip
        return events, nexts, evidence

    def _plan(self, events: list[dict[str, Any]], key: tuple[str, float]) -> dict[str, Any]:
        rng = self.rng
        llm = [j for j, e in enumerate(events) if e["type"] == "llm_response"]
        at = rng.choice(llm) if llm else len(events) - 1
        status = rng.choices(("draft", "approved", "rejected"), (50, 35, 15))[0]
        created = events[at]["ts"] + rng.randrange(1, 500)
        return {"id": self._uuid(), "status": status, "createdAt": created, "event": at,
                "issue": list(key)}  # fmt: skip

    def _count(self, events: list[Any], nexts: list[Any], based: list[Any],
               plan: dict[str, Any] | None, metadata: str | None) -> None:  # fmt: skip
        self.nodes.update(Workflow=1, Event=len(events), Plan=plan is not None)
        self.rels.update(BELONGS_TO_WORKFLOW=len(events), NEXT_EVENT=len(nexts),
                         BASED_ON_ISSUE=len(based))  # fmt: skip
        if plan:
            self.rels.update(PART_OF=1, GENERATED_FROM=1, HAS_PLAN=1)
        self.without_metadata += metadata is None


def seed_database(
    driver: seed_write.Driver,
    *,
    database: str,
    workflows: int,
    seed: int = 42,
    dirty: float = 0.0,
    replace: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    writers: int = DEFAULT_WRITERS,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Write the legacy graph for ``(seed, workflows, dirty)`` into ``database``.

    Refuses a database that holds anything unless ``replace`` (which wipes it
    first). Returns the summary: what was written, what was planted, what a
    correct transform must report (``expected``) and how fast it went.
    """
    if workflows < 1 or batch_size < 1 or writers < 1 or not 0.0 <= dirty <= 1.0:
        raise ConfigError(
            "need workflows, batch_size and writers >= 1 and 0 <= dirty <= 1; got "
            f"{workflows}, {batch_size}, {writers}, {dirty}"
        )
    reporter = reporter or NullReporter()
    started = time.perf_counter()
    if replace:
        reporter.info(f"Wiping database {database!r} (--replace)…")
        seed_write.wipe(driver, database)
    else:
        found = seed_write.contents(driver, database)
        if found:
            raise EtlError(
                f"database {database!r} is not empty ({', '.join(found)}); "
                "refusing to seed over existing data",
                hint="pass --replace to wipe it first (this deletes everything in it)",
            )
    wiped = time.perf_counter()
    gen = Generator(seed=seed, workflows=workflows, dirty=dirty)
    seed_write.create_temp_indexes(driver, database)
    try:
        with reporter.task("seed issues", total=gen.pool) as task:
            for rows in gen.pool_issues(10 * batch_size):
                seed_write.write_issues(driver, database, rows)
                task.advance(len(rows))
        with reporter.task("seed workflows", total=workflows) as task:
            _write_stream(driver, database, gen.batches(batch_size), task, writers)
    except BaseException:
        seed_write.drop_temp_indexes(driver, database, quiet=True)
        raise
    # Legacy databases have no schema: leave none behind.
    seed_write.drop_temp_indexes(driver, database)
    done = time.perf_counter()
    summary = _summary(gen, seed, dirty, write_s=done - wiped, wipe_s=wiped - started)
    reporter.info(
        f"Wrote {summary['total_nodes']:,} nodes and {summary['total_relationships']:,} "
        f"relationships in {summary['write_s']:.1f}s ({summary['nodes_per_s']:,} nodes/s)"
    )
    return summary


def _write_stream(
    driver: seed_write.Driver, database: str, batches: Iterator[Batch], task: Task, writers: int
) -> None:
    """Write ``batches`` with ``writers`` parallel transactions while the next is generated.

    At most ``writers`` batches are in flight, so memory does not grow with the
    graph. Issue links take a lock: they are the only writes that touch shared
    nodes, and serialising them rules out deadlocks between writers.
    """
    link_lock = threading.Lock()

    def write(batch: Batch) -> int:
        ids = seed_write.write_workflows(driver, database, batch.workflows)
        based = [{"workflow": ids[k], "repo": key[0], "number": key[1]}
                 for k, row in enumerate(batch.workflows) for key in row["based_on"]]  # fmt: skip
        plans = [{"plan": p["id"], "repo": p["issue"][0], "number": p["issue"][1]}
                 for row in batch.workflows if (p := row["plan"])]  # fmt: skip
        with link_lock:
            seed_write.link_issues(driver, database, before=batch.issues, based_on=based,
                                   has_plan=plans, after=batch.late_issues)  # fmt: skip
        return len(batch.workflows)

    with ThreadPoolExecutor(writers, thread_name_prefix="seed-write") as pool:
        in_flight: deque[Future[int]] = deque()
        for n, batch in enumerate(batches):
            # The first batch goes alone: a cold server plans the queries once, not per writer.
            while in_flight and len(in_flight) >= (writers if n > 1 else 1):
                task.advance(in_flight.popleft().result())
            in_flight.append(pool.submit(write, batch))
        while in_flight:
            task.advance(in_flight.popleft().result())


def _summary(
    gen: Generator, seed: int, dirty: float, *, write_s: float, wipe_s: float
) -> dict[str, Any]:
    nodes, rels = dict(sorted(gen.nodes.items())), dict(sorted(gen.rels.items()))
    total = sum(nodes.values())
    return {
        "seed": seed,
        "workflows": gen.workflows,
        "dirty": dirty,
        "now": NOW.isoformat().replace("+00:00", "Z"),
        "nodes": nodes,
        "relationships": rels,
        "total_nodes": total,
        "total_relationships": sum(rels.values()),
        "workflows_without_metadata": gen.without_metadata,
        "planted": gen.planted,
        "duplicate_issues": gen.planted["duplicate_issue"],
        "expected": asdict(gen.expected),
        "expected_infer_type": asdict(gen.expected_infer),
        "wipe_s": round(wipe_s, 3),
        "write_s": round(write_s, 3),
        "nodes_per_s": round(total / write_s) if write_s > 0 else 0,
    }


def describe(summary: dict[str, Any]) -> str:
    """The human summary printed by ``etl seed``."""
    exp = summary["expected"]

    def counts(d: dict[str, int]) -> str:
        return ", ".join(f"{k} {v:,}" for k, v in d.items() if v) or "none"

    return "\n".join([
        f"Seeded {summary['workflows']:,} workflows (seed {summary['seed']}, "
        f"dirty {summary['dirty']}): {summary['total_nodes']:,} nodes, "
        f"{summary['total_relationships']:,} relationships in {summary['write_s']:.1f}s "
        f"({summary['nodes_per_s']:,} nodes/s)",
        f"  nodes          {counts(summary['nodes'])}",
        f"  relationships  {counts(summary['relationships'])}",
        f"  planted        {counts(summary['planted'])}",
        f"  expected       {exp['runs_out']:,} runs out; {exp['issues_created']:,} issues created; "
        f"{exp['issueless_runs']:,} issue-less; {exp['aliases_normalised']:,} aliases normalised",
        f"  rejected       {counts(exp['rejected'])}",
    ])  # fmt: skip

"""The generator behind `etl seed`: a realistic, deterministic *legacy* graph (docs/MIGRATION.md).

It replays what the issue-to-pr application wrote between March and May 2025.
Workflow index order is time order, and the era decides the shape of ``metadata``::

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
transform reports: ``expected`` (default options) and ``expected_infer``
(``--infer-type``). Every metadata-less Workflow (early runs, every PR run,
planted crashes) is ``metadata_missing``.

Determinism: every value comes from ``random.Random`` seeded by ``seed`` and
drawn in workflow order, and times are relative to ``NOW``, never the wall
clock; the batch size only changes where the stream is cut. The draws are
pinned by tests/test_seed_generate.py: making this faster must not move one.
Events travel as columns (``Events``), not one dict each: two million of them
are the bulk of a 100k-workflow graph.
"""

from __future__ import annotations

import functools
import json
import random
import re
import zlib
from collections.abc import Callable, Iterator
from json.encoder import encode_basestring_ascii
from typing import Any

from etl.migrations.workflow_runs_classify import REASONS
from etl.seed_model import (
    ERRORS,
    INVALID_JSON,
    ISSUE_TYPES,
    MODELS,
    NEUTRAL_STATUS,
    NOT_OBJECT,
    NOW,
    OUTCOMES,
    OWNERS,
    PLAN_STATUS,
    PR_TYPES,
    REPO_NAMES,
    START,
    TOOLS,
    TYPE_WEIGHTS,
    TYPED_STATUS,
    TYPES,
    UNKNOWN_TYPES,
    WORDS,
    Batch,
    Events,
    Expected,
    PoolKeys,
    plant_counts,
    schedule,
)

_NOW_MS, _START_MS = int(NOW.timestamp() * 1000), int(START.timestamp() * 1000)
# Runs start at least two hours before NOW, so only the planned ones look alive.
_SPAN_MS = _NOW_MS - 2 * 3_600_000 - _START_MS

# What uuid.UUID(int=bits, version=4) keeps of the bits and sets in them.
_UUID_KEEP = ~((0xC000 << 48) | (0xF000 << 64))
_UUID_SET = (0x8000 << 48) | (4 << 76)
# Event data written out as JSON text (see Generator._events); choice() from these draws
# exactly as from the plain values.
_PLAIN = re.compile(r"[ -!#-\[\]-~]*")  # printable ASCII but " and \: JSON as it is
_TYPED_JSON = {t: tuple(f'{{"status":"{s}"}}' for s in v) for t, v in TYPED_STATUS.items()}
_NEUTRAL_JSON = tuple(f'{{"status":"{s}"}}' for s in NEUTRAL_STATUS)
_MODEL_JSON = tuple(f',"model":"{m}"' for m in MODELS)
_COMPLETE_JSON = (("complete", '{"success":true}'),
                  ("status", '{"status":"completed","success":true}'))  # fmt: skip


@functools.cache
def _uuid_masks(k: int) -> tuple[int, int]:
    """``_UUID_KEEP`` and ``_UUID_SET`` repeated for ``k`` 128-bit values side by side."""
    repeat = sum(1 << (128 * j) for j in range(k))
    return (_UUID_KEEP & (1 << 128) - 1) * repeat, _UUID_SET * repeat


def _json_encoder() -> Callable[[Any], str]:
    """``json.dumps(value, separators=(",", ":"))`` (compact, like JSON.stringify), without
    building an encoder per call; the C encoder is used only if it gives the same text."""
    encoder = json.JSONEncoder(separators=(",", ":"))
    slow = encoder.encode
    try:
        from json.encoder import c_make_encoder  # type: ignore[attr-defined]

        make = c_make_encoder(
            None, encoder.default, encode_basestring_ascii, None, ":", ",",
            False, False, True,
        )  # fmt: skip
        probe = {"a": [1, 2.5, None, True], "é": {"x": '"\n'}, "e": {}}

        def fast(value: Any) -> str:
            return "".join(make(value, 0))

        if fast(probe) == json.dumps(probe, separators=(",", ":")):
            return fast
    except (ImportError, TypeError):  # no C accelerator, or another signature
        pass
    return slow


_json = _json_encoder()


class Generator:
    """Streams the legacy graph for ``(seed, workflows, dirty)``; see the module docstring."""

    def __init__(self, *, seed: int, workflows: int, dirty: float) -> None:
        self.seed, self.workflows = seed, workflows
        self.planted = plant_counts(workflows, dirty)
        self.rng = random.Random(seed)
        self._plan_rng = random.Random(f"{seed}/plan")
        words = random.Random(0)
        self._corpus = " ".join(words.choice(WORDS) for _ in range(30_000))
        # About three runs per Issue; a key is a function of its index, never stored.
        self.pool = max(2, workflows // 3)
        pairs = [f"{o}/{n}" for o in OWNERS for n in REPO_NAMES]
        self.repos = random.Random(f"{seed}/repos").sample(pairs, min(24, self.pool))
        self._fresh = 0
        self.nodes = dict.fromkeys(("Event", "Issue", "Plan", "Workflow"), 0)
        # Plan relationships are only named once a plan exists (the summary lists what exists).
        self.rels = dict.fromkeys(("BELONGS_TO_WORKFLOW", "NEXT_EVENT", "BASED_ON_ISSUE"), 0)
        self.expected, self.expected_infer = Expected(), Expected()
        self.without_metadata = 0

    def key(self, j: int) -> tuple[str, float]:
        """Key of pool Issue ``j``: numbers run 1, 2, … per repository."""
        return self.repos[j % len(self.repos)], float(j // len(self.repos) + 1)

    def pool_keys(self) -> PoolKeys:
        """The pool's keys, as a small picklable object."""
        return PoolKeys(tuple(self.repos), self.pool)

    def _fresh_key(self) -> tuple[str, float]:
        # Numbers far above the pool's, so a fresh key never names a pool Issue.
        self._fresh += 1
        base = self.pool // len(self.repos) + 1000
        return self.repos[self._fresh % len(self.repos)], float(base + self._fresh)

    def _title(self, key: tuple[str, float]) -> str:
        # crc32, not hash(): str hashes change with every interpreter (PYTHONHASHSEED).
        h = zlib.crc32(f"{self.seed}:{key[0]}#{key[1]}".encode())
        first, second = WORDS[h % len(WORDS)], WORDS[h // len(WORDS) % len(WORDS)]
        return f"{first.capitalize()} {second} in {key[0].split('/')[1]}"

    def _issue(self, key: tuple[str, float]) -> dict[str, Any]:
        self.nodes["Issue"] += 1
        return {"repo": key[0], "number": key[1], "title": self._title(key)}

    def pool_issues(self, size: int) -> Iterator[list[dict[str, Any]]]:
        """The Issues that runs reference, ``size`` per list (pool Issue ``j`` is row ``j``)."""
        for lo in range(0, self.pool, size):
            yield [self._issue(self.key(j)) for j in range(lo, min(lo + size, self.pool))]

    def batches(self, size: int) -> Iterator[Batch]:
        """The workflows (events, plans, extra Issues), ``size`` per batch."""
        batch, previous, pair_open = Batch(), "", False
        for i, kind in enumerate(schedule(self._plan_rng, self.workflows, self.planted)):
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
        # str(uuid.UUID(int=bits, version=4)), a third of the cost.
        h = "%032x" % (self.rng.getrandbits(128) & _UUID_KEEP | _UUID_SET)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _uuids(self, k: int) -> list[str]:
        """``[self._uuid() for _ in range(k)]`` from one draw: CPython's
        ``getrandbits(128 * k)`` is ``k`` successive ``getrandbits(128)``, the first in
        the lowest bits (pinned by tests/test_seed_generate.py)."""
        keep, put = _uuid_masks(k)
        h = f"{self.rng.getrandbits(128 * k) & keep | put:0{32 * k}x}"
        return [f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-{h[i + 12 : i + 16]}-{h[i + 16 : i + 20]}-"
                f"{h[i + 20 : i + 32]}" for i in range(32 * (k - 1), -32, -32)]  # fmt: skip

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
        wtype = rng.choices(TYPES, TYPE_WEIGHTS)[0] if kind is None else rng.choice(ISSUE_TYPES)
        running = kind is None and t >= 0.9 and rng.random() < 0.03
        t0 = _START_MS + int(t * _SPAN_MS) + rng.randrange(1 + _SPAN_MS // self.workflows)
        if running:
            t0 = _NOW_MS - rng.randrange(10 * 60_000, 40 * 60_000)
        outcome = "running" if running else rng.choices(OUTCOMES, (82, 11, 7))[0]
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
        first = len(batch.events.ids)
        fork, evidence = self._events(batch.events, n, wtype, outcome, t0, rng.random() < 0.7)
        count = len(batch.events.ids) - first
        plan = None
        plan_key = based[0] if based else key if meta and ref == "graph" else None
        if wtype == "commentOnIssue" and plan_key and count >= 3 and rng.random() < 0.7:
            plan = self._plan(batch.events, first, count, plan_key)
        self._count(count, max(count - 1, 0), len(based), plan is not None, metadata is None)
        reason = kind if kind in REASONS else None if meta else "metadata_missing"
        self.expected.add(reason, ref=ref, alias=alias)
        # --infer-type rescues a run without a workflowType when a status event names one.
        rescued = reason in ("metadata_missing", "workflow_type_missing") and evidence
        self.expected_infer.add(None if rescued else reason, ref=ref, alias=alias)
        return {"id": wid, "created_at": created, "metadata": metadata, "first": first,
                "count": count, "fork": fork, "based_on": [list(k) for k in based],
                "plan": plan}  # fmt: skip

    def _events(
        self, out: Events, n: int, wtype: str, outcome: str, t0: int, typed: bool
    ) -> tuple[int | None, bool]:
        """Append ``n`` events of a run to ``out``; return its fork (see ``Batch``) and
        whether a status names the run's type (``--infer-type`` evidence).

        ``data`` is the compact JSON of a small object, written out directly: every
        string in it is plain ASCII (``_PLAIN``), so none needs escaping.
        """
        if n == 0:
            return None, False
        rng = self.rng
        random_, choice, text = rng.random, rng.choice, self._text
        finished = outcome in ("done", "error") and n >= 2
        body_end = n - 1 if finished else n
        start = '{"status":"starting"}' if random_() < 0.4 else f'{{"content":"{text(80)}"}}'
        types, datas = ["workflow_start"], [start]
        for kind, median in (("system_prompt", 900), ("user_message", 250)):
            if len(types) < body_end:
                types.append(kind)
                datas.append(f'{{"content":"{text(median)}"}}')
        evidence = typed and len(types) < body_end
        if evidence:
            types.append("status")
            datas.append(choice(_TYPED_JSON[wtype]))
        size = len(types)
        while size < body_end:
            r = random_()
            if r < 0.4:
                content = "null" if random_() < 0.05 else f'"{text(300)}"'
                model = choice(_MODEL_JSON) if r < 0.3 else ""
                types.append("llm_response")
                datas.append(f'{{"content":{content}{model}}}')
                size += 1
            elif r < 0.7 and size + 1 < body_end:
                tool = choice(TOOLS)
                path = text(8, 20).strip()
                types += ("tool_call", "tool_response")
                datas.append(f'{{"toolName":"{tool}","arguments":{{"path":"src/{path}.ts"}}}}')
                datas.append(f'{{"toolName":"{tool}","response":"{text(400)}"}}')
                size += 2
            elif r < 0.9:
                types.append("status")
                datas.append(choice(_NEUTRAL_JSON))
                size += 1
            elif r < 0.95:
                types.append("user_message")
                datas.append(f'{{"content":"{text(120)}"}}')
                size += 1
            else:
                error = choice(ERRORS)
                retries = rng.randrange(1, 4)
                types.append("error")
                datas.append(f'{{"error":"{error}","recoverable":true,"retryCount":{retries}}}')
                size += 1
        if finished and outcome == "done":
            typ, data = choice(_COMPLETE_JSON)
            types.append(typ)
            datas.append(data)
        elif finished:
            err = "{}" if random_() < 0.2 else f'"{choice(ERRORS)}"'  # {} = a serialised Error
            fatal = ',"recoverable":false' if random_() < 0.5 else ""
            types.append("error")
            datas.append(f'{{"error":{err}{fatal}}}')
        expo, mean = rng.expovariate, 1 / (800 if outcome == "running" else 3000)
        stamps, ts = [], t0 + rng.randrange(50)
        for _ in types:
            stamps.append(ts)
            ts += 1 + int(expo(mean))
        fork = None
        if n >= 5 and random_() < 0.03:  # same millisecond: both hang off the previous event
            fork = rng.randrange(1, n - 3)
            stamps[fork + 1] = stamps[fork]
        out.ids += self._uuids(len(types))
        out.types += types
        out.data += datas
        out.ts += stamps
        return fork, evidence

    def _plan(
        self, events: Events, first: int, count: int, key: tuple[str, float]
    ) -> dict[str, Any]:
        rng = self.rng
        types = events.types
        llm = [j for j in range(count) if types[first + j] == "llm_response"]
        at = rng.choice(llm) if llm else count - 1
        status = rng.choices(PLAN_STATUS, (50, 35, 15))[0]
        created = events.ts[first + at] + rng.randrange(1, 500)
        return {"id": self._uuid(), "status": status, "createdAt": created, "event": at,
                "issue": list(key)}  # fmt: skip

    def _count(self, events: int, nexts: int, based: int, plan: bool, bare: bool) -> None:
        nodes, rels = self.nodes, self.rels
        nodes["Workflow"] += 1
        nodes["Event"] += events
        rels["BELONGS_TO_WORKFLOW"] += events
        rels["NEXT_EVENT"] += nexts
        rels["BASED_ON_ISSUE"] += based
        if plan:
            nodes["Plan"] += 1
            for name in ("PART_OF", "GENERATED_FROM", "HAS_PLAN"):
                rels[name] = rels.get(name, 0) + 1
        self.without_metadata += bare

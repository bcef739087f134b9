"""The seed generator on its own: its values are pinned, so making it faster moves none.

``test_values_are_pinned`` hashes whole generated streams; the digests were
computed with the generator as it was before it was optimised (one dict per
event, ``json.dumps`` and ``uuid.UUID`` per value). A change that moves one
random draw, or one character of one value, changes them: every ``--seed``
would then seed a different graph than before.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.csv as pcsv
import pytest

from etl import seed_files
from etl import seed_generate as sg
from etl import seed_model as model

pytestmark = pytest.mark.unit

_ROW_KEYS = ("id", "created_at", "metadata", "events", "next", "based_on", "plan")


def _rows(batch: model.Batch) -> list[dict[str, Any]]:
    """Workflow rows as they were before events became columns (one dict per event)."""
    rows = []
    for row in batch.workflows:
        full = {**row, "events": batch.workflow_events(row), "next": batch.next_pairs(row)}
        rows.append({k: full[k] for k in _ROW_KEYS})
    return rows


def _digest(seed: int, workflows: int, dirty: float, size: int) -> str:
    gen = sg.Generator(seed=seed, workflows=workflows, dirty=dirty)
    h = hashlib.sha256()
    for rows in gen.pool_issues(size):
        h.update(json.dumps(rows).encode())
    for batch in gen.batches(size):
        h.update(json.dumps([_rows(batch), batch.issues, batch.late_issues]).encode())
    totals = [vars(gen.expected), vars(gen.expected_infer), dict(sorted(gen.nodes.items())),
              dict(sorted(gen.rels.items())), gen.without_metadata, gen.planted]  # fmt: skip
    h.update(json.dumps(totals).encode())
    return h.hexdigest()


@pytest.mark.parametrize(
    ("seed", "workflows", "dirty", "size", "digest"),
    [
        (42, 3000, 0.01, 200, "6ac36ceb5b303e8805e5f7e6f41765f09c975837ecd568e6bcd4aa7e723fd3e7"),
        (5, 1000, 0.6, 7, "ea03efa5cd76457037bc58bef73b424db5db7b6c2ea6bb902d0c3d4ab7b34215"),
        (7, 500, 1.0, 50, "d172ffa7de366041034422f5decf740f1a677e062f3fc1ec7995723f74f70887"),
        (1, 1, 0.0, 1, "af66db133b4d544e40b850500441eb94a125e27f27da4ed13eb7ec7af981496a"),
        (3, 5, 0.0, 2, "5d5ba207d7a4b4dac7f1033f4a486200d3445e4f6dbbdc6138f99df6b4885c5c"),
    ],
)
def test_values_are_pinned(seed: int, workflows: int, dirty: float, size: int, digest: str) -> None:
    assert _digest(seed, workflows, dirty, size) == digest


def test_fast_paths_equal_the_standard_library() -> None:
    values: list[Any] = [
        {"content": 'a "quoted"\n\\ line é', "model": None, "ok": True, "n": [1, 2.5, -0.0]},
        {"error": {}, "recoverable": False},
        {"issue": {"number": 3.5, "repo": "x"}, "deep": [[{}], []]},
        "plain",
        None,
    ]
    for value in values:
        assert sg._json(value) == json.dumps(value, separators=(",", ":"))
    a, b = sg.Generator(seed=9, workflows=10, dirty=0.0), random.Random(9)
    for _ in range(2000):
        assert a._uuid() == str(uuid.UUID(int=b.getrandbits(128), version=4))


def test_event_data_needs_no_json_escaping() -> None:
    """Event data is written as JSON text without an encoder: every string that goes into
    it must be JSON as it is (printable ASCII, no quote, no backslash)."""
    gen = sg.Generator(seed=1, workflows=10, dirty=0.0)
    texts = [gen._corpus, *model.NEUTRAL_STATUS, *model.TOOLS, *model.MODELS, *model.ERRORS]
    texts += [t for statuses in model.TYPED_STATUS.values() for t in statuses]
    for text in texts:
        assert sg._PLAIN.fullmatch(text), text
        assert json.dumps(text) == f'"{text}"'
    batch = next(gen.batches(10))
    for data in batch.events.data:
        assert sg._json(json.loads(data)) == data


def test_pool_keys_invert_the_key() -> None:
    gen = sg.Generator(seed=3, workflows=500, dirty=0.0)
    keys = gen.pool_keys()
    for j in range(gen.pool):
        assert keys.index(gen.key(j)) == j
    repo = gen.repos[0]
    for outside in ((repo, float(gen.pool)), (repo, 0.0), (repo, 1.5), ("nobody/none", 1.0)):
        assert keys.index(outside) is None
    assert keys.index(gen._fresh_key()) is None  # keys made for planted Issues are never pooled


def test_import_files_hold_the_generated_graph(tmp_path: Path) -> None:
    """Every node and relationship the generator counts is in the CSV files, with IDs that
    point at the right rows, and values that survive the CSV round trip."""
    gen = sg.Generator(seed=2, workflows=200, dirty=0.6)
    writer = seed_files.ImportWriter(gen.pool_keys(), tmp_path)
    workflows: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for rows in gen.pool_issues(64):
        writer.pool_issues(rows)
    for batch in gen.batches(30):
        writer.batch(seed_files.Packed.of(batch))
        for row in batch.workflows:
            workflows.append(row)
            events += batch.workflow_events(row)
    writer.close()
    assert writer.counts() == {k: v for k, v in {**gen.nodes, **gen.rels}.items() if v}
    assert len(writer.args()) == len(writer.counts())

    def read(stem: str) -> pl.DataFrame:
        opts = pcsv.ConvertOptions(strings_can_be_null=True, quoted_strings_can_be_null=False)
        table = pcsv.read_csv(tmp_path / f"{stem}.csv", convert_options=opts)
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return frame

    wf = read("nodes-workflow")
    assert wf["id"].to_list() == [w["id"] for w in workflows]
    assert wf["metadata"].to_list() == [w["metadata"] for w in workflows]
    assert "" in wf["metadata"].to_list()  # kept as an empty string, not a missing value
    ev = read("nodes-event")
    assert ev["data"].to_list() == [e["data"] for e in events]
    # Times as the importer reads them: ISO-8601, UTC, milliseconds.
    stamps = [datetime.fromtimestamp(e["ts"] / 1000, UTC) for e in events]
    assert ev["timestamp:datetime"].to_list() == stamps
    line = (tmp_path / "nodes-event.csv").read_text().splitlines()[1]
    iso = stamps[0].isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert line.endswith(f',"{iso}"') and iso.endswith("Z") and len(iso) == 24
    # The first Workflow with events owns the first events; chains stay inside a Workflow.
    belongs = read("rels-belongs")
    owner = belongs.filter(pl.col(":END_ID(Event)") == 0)[":START_ID(Workflow)"].item()
    assert workflows[owner]["count"] > 0 and all(w["count"] == 0 for w in workflows[:owner])
    chains = read("rels-next").join(
        belongs.rename({":END_ID(Event)": ":START_ID(Event)", ":START_ID(Workflow)": "wa"}),
        on=":START_ID(Event)",
    ).join(belongs.rename({":END_ID(Event)": ":END_ID(Event)", ":START_ID(Workflow)": "wb"}),
           on=":END_ID(Event)")  # fmt: skip
    assert chains.height == gen.rels["NEXT_EVENT"]
    assert (chains["wa"] == chains["wb"]).all()
    # Links to Issues name existing Issue rows.
    issues = read("nodes-issue")[":ID(Issue)"]
    for stem, column in (("rels-based", ":END_ID(Issue)"), ("rels-has-plan", ":START_ID(Issue)")):
        assert read(stem)[column].is_in(issues.implode()).all()

"""Migrations: pure functions from export tables to transform tables.

A migration reads the tables of an export stage (``"nodes/Workflow"``,
``"relationships/BELONGS_TO_WORKFLOW"``, …) as Polars ``LazyFrame``s and returns
the tables of the transform stage, the rows it refused, and a JSON report. It
never touches a file, a driver or the environment: the transform stage
(``etl.transform``) does the I/O around it, so a migration can be tested with
frames built in memory.

Adding a schema change means adding a module here and one line to
``_REGISTRY``; ``etl transform --migration NAME`` picks it up::

    from etl.migrations import MigrationOptions, get_migration

    migration = get_migration("workflow-to-workflowrun")
    result = migration.run(inputs, MigrationOptions(snapshot_time=snapshot))
    result.tables["nodes/WorkflowRun"]       # a polars DataFrame
    result.rejected["rejected/Workflow"]     # reason, detail, then the original row

Errors (both are ``EtlError``s, see ``etl.errors``)::

    ConfigError ── UnknownMigration            a name not in the registry (also a KeyError)
    StageError  ── MigrationInputError         an input table breaks the stage contract
                └─ MigrationInternalError      a migration broke its own invariant (a bug)
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from etl.errors import ConfigError, StageError

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "DEFAULT_MIGRATION",
    "Migration",
    "MigrationBase",
    "MigrationInputError",
    "MigrationInternalError",
    "MigrationOptions",
    "MigrationResult",
    "StreamedTable",
    "UnknownMigration",
    "export_labels",
    "get_migration",
    "known_keys",
    "list_migrations",
    "source_checksum",
]


class UnknownMigration(ConfigError, KeyError):
    """``get_migration`` was asked for a name that is not registered."""

    def __str__(self) -> str:
        # KeyError would otherwise repr() the message; keep EtlError's plain text.
        return ConfigError.__str__(self)


class MigrationInputError(StageError):
    """An input table does not have the columns or types the stage format promises."""


class MigrationInternalError(StageError):
    """A migration violated one of its own invariants: a bug, never a data problem."""


@dataclass(frozen=True, kw_only=True)
class MigrationOptions:
    """Knobs of a migration run, resolved once by the CLI.

    ``snapshot_time`` is the export's "now" (tz-aware): a run with no terminal
    event counts as still ``running`` only if its last sign of life is within
    ``stale_after`` of it. ``infer_type`` lets a migration derive a missing
    ``workflowType`` from unambiguous event evidence (off by default).

    ``presorted`` maps an input table to the columns its rows are already
    sorted by (the export manifest's ``sort``). A table that passes through
    (nearly) unchanged and is already in the output's order may then come back
    as a ``StreamedTable`` instead of a DataFrame, so the transform stage can
    copy it batch by batch in bounded memory. Empty (the default): every table
    is collected.
    """

    snapshot_time: datetime
    stale_after: timedelta = timedelta(hours=1)
    infer_type: bool = False
    presorted: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.snapshot_time.tzinfo is None or self.snapshot_time.utcoffset() is None:
            raise ConfigError(
                f"snapshot_time must be timezone-aware, got {self.snapshot_time.isoformat()}",
                hint="pass an aware datetime, e.g. datetime(..., tzinfo=UTC)",
            )
        if self.stale_after < timedelta(0):
            raise ConfigError(
                f"stale_after must not be negative, got {self.stale_after}",
                hint="use a duration such as 1h or 30m",
            )


@dataclass(frozen=True, kw_only=True, eq=False)
class StreamedTable:
    """An output table that is an input table, row for row and in the same order.

    ``apply`` maps any slice of the input (a DataFrame with the input's schema)
    to the same slice of the output, so the table can be written batch by
    batch; ``schema`` is the output's schema and ``rows`` its row count.
    """

    source: str
    frame: pl.LazyFrame
    apply: Callable[[pl.DataFrame], pl.DataFrame]
    schema: pl.Schema
    rows: int

    def collect(self) -> pl.DataFrame:
        """The whole table at once (for tests and small inputs)."""
        return self.apply(self.frame.collect())


@dataclass(frozen=True, kw_only=True)
class MigrationResult:
    """What a migration returns; the transform stage writes it verbatim.

    ``tables`` and ``rejected`` are keyed by their stage path without suffix
    (``"nodes/WorkflowRun"``, ``"rejected/Workflow"``); ``roles`` gives each key
    of ``tables`` its manifest role (``"migrated"`` or ``"passthrough"``);
    ``report`` is JSON-serialisable and merged into the stage's report.json.
    ``streamed`` holds the output tables (keys of ``roles`` too) that are not
    in ``tables`` because they are copied from an input batch by batch (see
    ``MigrationOptions.presorted``).
    """

    tables: dict[str, pl.DataFrame]
    roles: dict[str, str]
    rejected: dict[str, pl.DataFrame]
    report: dict[str, Any] = field(default_factory=dict)
    streamed: dict[str, StreamedTable] = field(default_factory=dict)
    #: Output table → the input table its rows come from, where that is another table
    #: (``"nodes/WorkflowRun": "nodes/Workflow"``); the rest come from the same path or are new.
    sources: dict[str, str] = field(default_factory=dict)

    def table(self, name: str) -> pl.DataFrame:
        """An output table as a DataFrame, collecting it if it is streamed."""
        if name in self.streamed:
            return self.streamed[name].collect()
        return self.tables[name]


@runtime_checkable
class Migration(Protocol):
    """The shape every registered migration has."""

    name: str
    #: Orders the chain ("0001", "0002", …); recorded with each load in the database's history.
    version: str
    description: str
    #: Tables that must exist in the export (others are optional and read as empty).
    required_inputs: tuple[str, ...]
    #: Labels the migration reads: what `etl export` exports by default.
    reads: tuple[str, ...]
    #: Labels the migration writes that its input lacks: exported by default where present,
    #: so an export of a migrated database shows the migrated graph.
    writes: tuple[str, ...]

    #: The model the migration declares: the business key of each label it reads or writes
    #: (labels it does not name get ``id`` where the data allows; docs/STAGE_FORMAT.md "Keys").
    keys: Mapping[str, tuple[str, ...]]
    #: Labels whose key the target model makes unique (a load creates the constraint).
    unique: tuple[str, ...]

    def run(
        self, inputs: Mapping[str, pl.LazyFrame], options: MigrationOptions
    ) -> MigrationResult: ...

    def checks(self) -> Sequence[Any]:
        """The migration's declared invariants (``etl.migrations.checks.Check``), evaluated by
        ``etl validate`` over the tables of the export, the stage and the re-export."""
        ...

    def explain_diff(self, pairs: Mapping[str, Any], diffs: Mapping[str, Any], **kw: Any) -> Any:
        """``etl diff --migration``: the explanation per source row (None: nothing to add)."""
        ...

    def report_figures(self, report: Mapping[str, Any]) -> list[Any]:
        """Figures of the migration's own for ``etl report``, from its ``report.json``."""
        ...


class MigrationBase:
    """Defaults for the optional parts of the contract; a migration may subclass it.

    Only ``name``, ``version``, ``description``, ``required_inputs``, ``reads``,
    ``writes`` and ``run`` are the migration's to write; everything else the
    engine derives from the stage and its export (docs/ENGINE.md).
    """

    writes: tuple[str, ...] = ()
    keys: Mapping[str, tuple[str, ...]] = {}
    unique: tuple[str, ...] = ()

    def checks(self) -> Sequence[Any]:
        return ()

    def explain_diff(self, pairs: Mapping[str, Any], diffs: Mapping[str, Any], **kw: Any) -> Any:
        return None

    def report_figures(self, report: Mapping[str, Any]) -> list[Any]:
        return []


def _workflow_runs() -> Migration:
    module = importlib.import_module("etl.migrations.workflow_runs")
    migration: Migration = module.WorkflowToWorkflowRun()
    return migration


# Name -> factory. Factories import lazily so `etl --help` never loads Polars.
_REGISTRY: dict[str, Callable[[], Migration]] = {
    "workflow-to-workflowrun": _workflow_runs,
}


#: What `etl transform` runs and `etl export` exports for when no migration is named.
DEFAULT_MIGRATION = "workflow-to-workflowrun"


def export_labels(present: Collection[str], migration: str = DEFAULT_MIGRATION) -> list[str]:
    """The labels a default export takes: what ``migration`` reads, and what it wrote if present."""
    mig = get_migration(migration)
    return list(mig.reads) + [lab for lab in mig.writes if lab in present and lab not in mig.reads]


def source_checksum(migration: Migration) -> str:
    """sha256 of the migration's source files: a changed applied migration can be told.

    A migration is its module and the modules beside it that share its name
    (``workflow_runs*.py``), or every module of its package.
    """
    import hashlib
    import sys
    from pathlib import Path

    module = sys.modules[type(migration).__module__]
    path = Path(str(module.__file__))
    pattern = "*.py" if path.name == "__init__.py" else f"{path.stem}*.py"
    digest = hashlib.sha256()
    for file in sorted(path.parent.glob(pattern)):
        digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


@functools.cache
def _known_keys() -> dict[str, tuple[str, ...]]:
    keys: dict[str, tuple[str, ...]] = {}
    for migration in list_migrations():
        for label, key in migration.keys.items():
            keys.setdefault(label, tuple(key))
    return keys


def known_keys() -> dict[str, list[str]]:
    """The business key of every label a registered migration declares (first one wins)."""
    return {label: list(key) for label, key in _known_keys().items()}


def list_migrations() -> list[Migration]:
    """Every registered migration, sorted by name."""
    return [_REGISTRY[name]() for name in sorted(_REGISTRY)]


def get_migration(name: str) -> Migration:
    """The migration registered as ``name``; ``UnknownMigration`` lists the known names."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownMigration(
            f"unknown migration {name!r}; known migrations: {known}",
            hint="run `etl transform --list` to see them",
        ) from None
    return factory()

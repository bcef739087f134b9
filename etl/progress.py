"""Progress reporting through an injected reporter, never bare ``print``.

Library code receives a ``Reporter`` and calls ``task(...)``; the CLI picks
``RichReporter`` (stderr, rows/s and ETA) or ``NullReporter`` (tests, ``--quiet``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol


class Task(Protocol):
    def advance(self, n: int = 1) -> None: ...


class Reporter(Protocol):
    def task(self, description: str, total: int | None = None) -> AbstractContextManager[Task]:
        """Context manager yielding a task to advance; closed when the block ends."""
        ...

    def info(self, message: str) -> None:
        """A status line for humans (stderr); hidden by ``--quiet``."""
        ...


class _NullTask:
    def __init__(self) -> None:
        self.count = 0

    def advance(self, n: int = 1) -> None:
        self.count += n


class NullReporter:
    """Silent reporter; remembers what it was told so tests can look."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.tasks: dict[str, int] = {}

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Task]:
        t = _NullTask()
        yield t
        self.tasks[description] = self.tasks.get(description, 0) + t.count

    def info(self, message: str) -> None:
        self.messages.append(message)


class _RichTask:
    def __init__(self, progress: object, task_id: object) -> None:
        self._progress = progress
        self._task_id = task_id

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task_id, n)  # type: ignore[attr-defined]


class RichReporter:
    """Progress bars with rows/s and ETA on stderr."""

    def __init__(self) -> None:
        from rich.console import Console

        self._console = Console(stderr=True)

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Task]:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = [
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            _rows_per_second_column(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        ]
        with Progress(*columns, console=self._console, transient=False) as progress:
            task_id = progress.add_task(description, total=total)
            yield _RichTask(progress, task_id)
            if total is not None:
                progress.update(task_id, completed=total)

    def info(self, message: str) -> None:
        self._console.print(message, highlight=False)


def format_speed(speed: float | None) -> str:
    """``task.speed`` as shown: rich leaves it ``None`` until a task has advanced twice."""
    return f"{'–' if speed is None else f'{speed:,.0f}':>10} rows/s"


def _rows_per_second_column() -> Any:
    """A column of rows/s that renders before the first update (a format string cannot)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RowsPerSecond(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(format_speed(task.speed), style="progress.data.speed")

    return RowsPerSecond()


def make_reporter(*, quiet: bool) -> Reporter:
    if quiet or not sys.stderr.isatty():
        return _PlainReporter(quiet=quiet)
    return RichReporter()


class _PlainReporter(NullReporter):
    """Non-interactive stderr: one line per finished task, no redraws."""

    def __init__(self, *, quiet: bool) -> None:
        super().__init__()
        self._quiet = quiet

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Task]:
        import time

        started = time.perf_counter()
        with super().task(description, total) as t:
            yield t
        if not self._quiet:
            n = self.tasks.get(description, 0)
            secs = max(time.perf_counter() - started, 1e-9)
            print(f"{description}: {n:,} rows in {secs:.1f}s ({n / secs:,.0f}/s)", file=sys.stderr)

    def info(self, message: str) -> None:
        super().info(message)
        if not self._quiet:
            print(message, file=sys.stderr)

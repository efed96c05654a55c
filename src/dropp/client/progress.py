"""Transfer progress as a person sees it: bars on a terminal, one line per file otherwise.

Both implement `transfers.Progress`. On a terminal each file in flight has a bar and a total
bar shows throughput and the time left; a finished file leaves a line above the bars, so a
transfer of thousands of files keeps a short screen. When stdout is a pipe or a file, each
finished file is one plain line (its path and size) and nothing else is written.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Self

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from dropp.client.cli.app import human_size, interactive, out


def _line(name: str, total: int) -> str:
    return f"{name}  {human_size(total)}"


class LineProgress:
    """One line per finished file on `console`."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.tasks: dict[int, tuple[str, int]] = {}

    def add(self, name: str, total: int) -> int:
        task = len(self.tasks)
        self.tasks[task] = (name, total)
        return task

    def advance(self, task: int, amount: int) -> None:
        pass

    def done(self, task: int) -> None:
        name, total = self.tasks[task]
        self.console.print(_line(name, total), markup=False, highlight=False)


class BarProgress:
    """A bar per file in flight and a total with throughput and ETA (a context manager: the
    bars live between enter and exit)."""

    def __init__(self, console: Console, total: int | None = None) -> None:
        self.bars = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        # Without a total known ahead, it grows as files are added.
        self.counting = total is None
        self.grand_total = total or 0
        self.total = self.bars.add_task("Total", total=self.grand_total)
        self.files: dict[int, tuple[TaskID, str, int]] = {}

    def __enter__(self) -> Self:
        self.bars.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.bars.stop()

    def add(self, name: str, total: int) -> int:
        bar = self.bars.add_task(name, total=total)
        if self.counting:
            self.grand_total += total
            self.bars.update(self.total, total=self.grand_total)
        task = len(self.files)
        self.files[task] = (bar, name, total)
        return task

    def advance(self, task: int, amount: int) -> None:
        bar, _, _ = self.files[task]
        self.bars.advance(bar, amount)
        self.bars.advance(self.total, amount)

    def done(self, task: int) -> None:
        bar, name, total = self.files[task]
        self.bars.remove_task(bar)
        self.bars.console.print(_line(name, total), markup=False, highlight=False)


@contextmanager
def open_progress(
    console: Console | None = None, *, bars: bool | None = None, total: int | None = None
) -> Iterator[LineProgress | BarProgress]:
    """Bars for a person at a terminal (stdout by default), plain lines otherwise; `total`
    is the bytes to move, when known ahead."""
    console = console or out
    if not (interactive() if bars is None else bars):
        yield LineProgress(console)
        return
    with BarProgress(console, total) as progress:
        yield progress

"""Progress reporting without tying the library to a terminal: the CLI plugs rich in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol


class Progress(Protocol):
    def stage(self, name: str, total: int | None = None) -> Callable[[int], None]:
        """Start a stage; the returned callback advances it by n units."""


class NullProgress:
    def stage(self, name: str, total: int | None = None) -> Callable[[int], None]:
        return lambda n: None


@contextmanager
def rich_progress() -> Iterator[Progress]:
    """A rich progress bar per stage (used by the CLI; the library never prints)."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as RichProgress

    with RichProgress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), transient=False) as bar:
        class _Rich:
            def stage(self, name: str, total: int | None = None) -> Callable[[int], None]:
                task = bar.add_task(name, total=total)
                return lambda n: bar.advance(task, n)

        yield _Rich()

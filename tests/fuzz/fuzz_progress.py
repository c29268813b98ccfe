"""Progress of a long fuzz run (`make fuzz`): a rich bar on a terminal; in a log (nohup, CI) a
line at every tenth of the run, so a reader of the log sees the rate and the time left."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


class FuzzProgress:
    """`tick()` once per example that ran to the end; `close()` prints the total. `lifted` is a
    context manager under which writes reach the terminal (pytest's capture lifted); the
    console is made under it so it sees the real stderr."""

    def __init__(
        self,
        label: str,
        total: int,
        lifted: Callable[[], AbstractContextManager],
        console: Console | None = None,
    ):
        self.label, self.total, self.lifted = label, max(total, 1), lifted
        self.done, self.start, self.next_line = 0, time.monotonic(), 1
        with lifted():
            self.console = console or Console(stderr=True)
            self.bar = None
            if self.console.is_terminal:
                # No stdout/stderr redirection: pytest's capture owns sys.stdout and sys.stderr.
                self.bar = Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    TextColumn("left"),
                    TimeRemainingColumn(),
                    console=self.console,
                    auto_refresh=False,
                    redirect_stdout=False,
                    redirect_stderr=False,
                )
                self.task = self.bar.add_task(label, total=self.total)
                self.bar.start()
        if self.bar is None:
            self._line(f"\n{label}: {self.total} examples")

    def tick(self) -> None:
        self.done += 1  # shrinking a failure runs examples beyond the total: shown as the total
        shown = min(self.done, self.total)
        if self.bar is not None:
            with self.lifted():
                self.bar.update(self.task, completed=shown)
                self.bar.refresh()
        elif shown * 10 >= self.next_line * self.total:
            self.next_line = shown * 10 // self.total + 1
            elapsed = time.monotonic() - self.start
            left = elapsed * (self.total - shown) / shown
            self._line(
                f"{self.label}: {shown}/{self.total} examples ({100 * shown // self.total}%), "
                f"{_clock(elapsed)} elapsed, about {_clock(left)} left"
            )

    def close(self) -> None:
        if self.bar is not None:
            with self.lifted():
                self.bar.stop()
        self._line(
            f"{self.label}: {self.done} examples ran in {_clock(time.monotonic() - self.start)}"
        )

    def _line(self, text: str) -> None:
        with self.lifted():
            self.console.print(text, highlight=False, soft_wrap=True)

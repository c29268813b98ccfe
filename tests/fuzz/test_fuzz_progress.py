"""The progress display of `make fuzz`: a line per tenth of the run in a log, a bar on a
terminal, and the count never beyond the total while hypothesis shrinks a failure."""

from __future__ import annotations

import io
import re
from contextlib import nullcontext

from fuzz_progress import FuzzProgress
from rich.console import Console


def _run(total: int, ticks: int, terminal: bool) -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=120)
    shown = FuzzProgress("fuzz", total, nullcontext, console)
    for _ in range(ticks):
        shown.tick()
    shown.close()
    return out.getvalue()


def test_a_log_gets_a_line_per_tenth_and_the_total():
    text = _run(total=25, ticks=27, terminal=False)
    counts = [int(c) for c in re.findall(r"fuzz: (\d+)/25 examples", text)]
    assert counts == [3, 5, 8, 10, 13, 15, 18, 20, 23, 25]
    assert "fuzz: 25 examples\n" in text
    assert text.rstrip().endswith("fuzz: 27 examples ran in 0:00")


def test_a_terminal_gets_a_bar_that_stops_at_the_total():
    text = _run(total=7, ticks=9, terminal=True)
    assert "7/7" in text and "8/7" not in text and "9/7" not in text
    assert "examples ran" in text

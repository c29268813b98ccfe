"""What neuron-cc's commands print and write alike: the console, the progress bar, number cells,
the error table of eval and run, titles named after the model, JSON reports."""

from __future__ import annotations

import json
import math
from pathlib import Path

# Wide enough for any table: piped output is never wrapped (a cut option name is a wrong name).
PIPE_WIDTH = 10_000

# File stems and ONNX graph names that do not tell models apart (exporters' defaults).
GENERIC_NAMES = frozenset(
    {"", "model", "graph", "main", "main_graph", "torch_jit", "torch-jit-export", "tf2onnx"}
)


def console(stderr: bool = False):
    """A rich Console: the terminal's width on a terminal, never wrapping when piped."""
    from rich.console import Console

    c = Console(stderr=stderr)
    return c if c.is_terminal else Console(stderr=stderr, width=PIPE_WIDTH)


def progress():
    """A rich progress bar on stderr (description, bar, done/total, elapsed) that vanishes when
    finished and stays off when stderr is not a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    c = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=c,
        transient=True,
        disable=not c.is_terminal,
    )


def sci(v, digits: int = 3) -> str:
    """A table cell for a figure: `-` for none, `0`, else scientific notation."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}e}" if v != 0 else "0"
    return str(v)


def model_name(path: str, graph_name: str = "") -> str:
    """How tables and plots name a model: its ONNX graph's name, else its file's stem, with the
    parent folder when the stem is an exporter's default (`bert/model`)."""
    if graph_name not in GENERIC_NAMES:
        return graph_name
    p = Path(path)
    if p.stem.lower() in GENERIC_NAMES and p.parent.name:
        return f"{p.parent.name}/{p.stem}"
    return p.stem


def plot_file(name: str, kind: str, beside: str | None) -> str:
    """A default plot path, `NAME_KIND.png` (the model name's folders joined by _), in the
    folder of `beside` (another output) or the current folder."""
    stem = f"{name.replace('/', '_')}_{kind}.png"
    return str(Path(beside).parent / stem) if beside and beside != "-" else stem


def check_plot(path: str) -> None:
    if not path.endswith(".png"):
        from neuron_opt.diagnostics import CompileError

        raise CompileError("the plot must be a .png file", path)


# The rows of an error table: (label, key in an output's metrics).
ERROR_COLUMNS = ("max abs err", "rel max abs", "rel L2")


def error_table(
    title: str,
    rows: list[tuple[str, dict | None]],
    extra: tuple[str, list] | None,
    counts: dict | None,
):
    """One output's errors: a row per comparison (skipped when None), the max abs / rel max abs /
    rel L2 columns, `extra` = (column, a cell per row) when given, the range counts below."""
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    t.add_column("comparison", no_wrap=True)
    for col in ERROR_COLUMNS + ((extra[0],) if extra else ()):
        t.add_column(col, justify="right", no_wrap=True)
    for i, (label, e) in enumerate(rows):
        if e is None:
            continue
        cells = [sci(e["max_abs"]), sci(e["rel_max_abs"]), sci(e["rel_l2"])]
        t.add_row(label, *cells, *((extra[1][i],) if extra else ()))
    if counts is not None and "inf" in counts:
        t.caption = (
            f"inf {counts['inf']}  NaN {counts['nan']}  overflowed {counts['overflowed']}  "
            f"underflowed {counts['underflowed']}  saturated {counts['saturated']}"
        )
        t.caption_justify = "left"
    return t


def json_safe(x):
    # Strict JSON has no inf/NaN: spell them as strings.
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, list):
        return [json_safe(v) for v in x]
    return x


def write_json(path: str, report: dict) -> None:
    """The report as strict JSON (inf/NaN spelt as strings), written atomically."""
    from neuron_opt.outputs import atomic_output

    with atomic_output(path) as f:
        json.dump(json_safe(report), f, indent=2, allow_nan=False)
        f.write("\n")

"""`neuron-cc eval MODEL.onnx --inputs X.npz [--auto-cast M] [--auto-cast-type T] [--cast-io]
[-o OUT.npz] [--json FILE]`: run the reference interpreter for the option and for fp32 (`none`),
and onnxruntime on the model; print per output the errors against fp32 and onnxruntime, arg-max
agreement for outputs that look like class scores, and range counts (metrics.py)."""

from __future__ import annotations

import argparse
import threading

import numpy as np

from neuron_opt.cli.inputs import add_model_arguments
from neuron_opt.cli.precision import (
    add_cast_options,
    add_plan_options,
    add_report_option,
    emit_report,
    label_of,
    plan_options,
    report_file,
)
from neuron_opt.diagnostics import markup


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    add_cast_options(p)
    add_plan_options(p)
    add_report_option(p)
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT.npz",
        help="save the option's outputs (bf16/tf32/fp8 widened to float32, exactly)",
    )
    p.add_argument("--json", metavar="FILE", help="write the metrics as JSON")


class _Steps:
    """A rich progress bar on stderr that appears only if the run takes more than a second
    (and only on a terminal), so quick runs and piped output stay clean."""

    def __init__(self, total: int):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task("eval", total=total)
        self._lock = threading.Lock()
        self._started = self._done = False
        self._timer = threading.Timer(1.0, self._start) if console.is_terminal else None
        if self._timer:
            self._timer.daemon = True
            self._timer.start()

    def _start(self):
        with self._lock:
            if not self._done:
                self._progress.start()
                self._started = True

    def step(self, description: str):
        self._progress.update(self._task, description=markup(description))

    def advance(self):
        self._progress.advance(self._task)

    def close(self):
        with self._lock:
            self._done = True
            if self._timer:
                self._timer.cancel()
            if self._started:
                self._progress.stop()


def evaluate(args, steps: _Steps) -> tuple[dict, dict[str, np.ndarray]]:
    """Returns (the metrics report, the option's outputs)."""
    from neuron_opt.cli.metrics import looks_like_logits, output_metrics
    from neuron_opt.cli.models import OnnxModel
    from neuron_opt.runtime.reference import Reference

    plan = plan_options(args)
    label = label_of(args)
    steps.step("import")
    model = OnnxModel(args.model)
    inputs = model.inputs(args.inputs)
    steps.advance()

    steps.step(f"auto-cast {label}")
    c = model.compile(
        args.auto_cast,
        args.auto_cast_type,
        args.cast_io,
        plan,
        lambda r: emit_report(r, args),
        label,
    )
    steps.advance()

    steps.step("interpreter: fp32")
    ref32 = Reference(model.fp32, model.weights).run(inputs)
    steps.advance()
    steps.step(f"interpreter: {label}")
    # Reference.run rounds each input RNE to the compiled signature (e.g. bf16 with --cast-io).
    unchanged = args.auto_cast == "none" and not any(plan.values())  # no pass ran
    option = ref32 if unchanged else Reference(c.nt, c.weights).run(inputs)
    steps.advance()
    steps.step("onnxruntime")
    ort_out = model.onnxruntime(inputs)
    steps.advance()

    cast_type = "none" if args.auto_cast == "none" else args.auto_cast_type
    report = {
        "model": args.model,
        "name": model.name,
        "inputs": args.inputs,
        "option": label,
        "auto_cast": args.auto_cast,
        "auto_cast_type": args.auto_cast_type,
        "cast_io": bool(args.cast_io),
        "outputs": {},
    }
    for name in model.output_names:
        logits = looks_like_logits(name, ref32[name], model.producer(name))
        m = output_metrics(option[name], ref32[name], ort_out[name], cast_type, logits)
        m["dtype"] = str(option[name].dtype)
        report["outputs"][name] = m
    return report, {name: option[name] for name in model.output_names}


def print_report(report: dict) -> None:
    """A table per output; the arg-max column only for outputs that look like class scores
    (metrics.looks_like_logits)."""
    from neuron_opt.cli.inputs import shape_text
    from neuron_opt.cli.tables import console, error_table

    out = console()
    for name, m in report["outputs"].items():
        title = (
            f"{markup(report['name'])}: {markup(name)}  {shape_text(m['shape'])} {m['dtype']}  "
            f"option {markup(report['option'])}"
        )
        rows = [
            ("option vs fp32", m["vs_fp32"]),
            ("option vs onnxruntime", m["vs_onnxruntime"]),
            ("fp32 vs onnxruntime", m["fp32_vs_onnxruntime"]),
        ]
        agree = m["argmax_agreement"]
        extra = None if agree is None else ("argmax agree", [f"{agree:.4f}", "-", "-"])
        out.print(error_table(title, rows, extra, m))


def run(args) -> int:
    from neuron_opt.cli.tables import write_json
    from neuron_opt.outputs import check_outputs, save_outputs

    check_outputs(
        [args.output, args.json, report_file(args)], [args.model, args.inputs]
    )  # before the slow run
    steps = _Steps(total=5)
    try:
        report, outputs = evaluate(args, steps)
    finally:
        steps.close()
    print_report(report)
    if args.output is not None:
        save_outputs(args.output, outputs)
    if args.json is not None:
        write_json(args.json, report)
    return 0

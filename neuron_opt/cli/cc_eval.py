"""`neuron-cc eval MODEL.onnx --inputs X.npz [--auto-cast M] [--auto-cast-type T] [--cast-io]
[-o OUT.npz] [--json FILE]`: run the reference interpreter for the option and for fp32 (`none`),
and onnxruntime on the model; print per output the errors against fp32 and onnxruntime, arg-max
agreement and range counts (cc_metrics.py)."""

from __future__ import annotations

import argparse
import json
import threading

import numpy as np

from neuron_opt.cli.cc_compile import add_cast_options
from neuron_opt.cli.cc_precision import (add_plan_options, add_report_option, emit_report, label_of, plan_options,
                                         report_file)
from neuron_opt.cli.common import load_npz
from neuron_opt.diagnostics import CompileError, markup


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL.onnx", help="the ONNX model")
    p.add_argument("--inputs", metavar="X.npz", required=True,
                   help="inputs keyed by the model's input names, in the model's input dtypes")
    add_cast_options(p)
    add_plan_options(p)
    add_report_option(p)
    p.add_argument("-o", "--output", metavar="OUT.npz",
                   help="save the option's outputs (bf16/tf32/fp8 widened to float32, exactly)")
    p.add_argument("--json", metavar="FILE", help="write the metrics as JSON")


class _Steps:
    """A rich progress bar on stderr that appears only if the run takes more than a second
    (and only on a terminal), so quick runs and piped output stay clean."""

    def __init__(self, total: int):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                                  console=console, transient=True)
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


def _onnx_np_dtype(elem_type: int) -> np.dtype:
    import onnx

    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))


def _fmt_shape(shape) -> str:
    return "x".join(map(str, shape)) or "scalar"


def load_inputs(path: str, model) -> dict[str, np.ndarray]:
    """The .npz's arrays, checked against the ONNX model's graph inputs (name, dtype, shape)."""
    given = load_npz(path)
    inits = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    names = [i.name for i in inputs]
    for inp in inputs:  # names first, then headers, then data: nothing unused is decompressed
        if inp.name not in given:
            tt = inp.type.tensor_type
            want = f"{_onnx_np_dtype(tt.elem_type)} {_fmt_shape(d.dim_value for d in tt.shape.dim)}"
            raise CompileError(f"missing (expected {want})", f"{path}: input {inp.name}")
    for key in given:  # after the missing ones: a misspelt name shows up as missing first
        if key not in names:
            raise CompileError(f"'{key}' is not an input of the model (inputs: {', '.join(names)})", path)
    for inp in inputs:
        where = f"{path}: input {inp.name}"
        tt = inp.type.tensor_type
        want_dt = _onnx_np_dtype(tt.elem_type)
        want_shape = tuple(d.dim_value for d in tt.shape.dim)
        shape, dt = given.header(inp.name)
        if dt != want_dt:
            raise CompileError(f"expected dtype {want_dt} (the model's input type), found {dt}", where)
        if shape != want_shape:
            raise CompileError(f"expected shape {_fmt_shape(want_shape)}, found {_fmt_shape(shape)}", where)
    return {inp.name: given[inp.name] for inp in inputs}


def _run_onnxruntime(model_path: str, inputs: dict[str, np.ndarray], names: list[str]) -> dict:
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
        values = sess.run(names, inputs)
    except Exception as e:  # onnxruntime raises its own exception types; keep one line
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CompileError(f"onnxruntime failed: {detail}", model_path) from None
    return dict(zip(names, values))


def evaluate(args, steps: _Steps) -> tuple[dict, dict[str, np.ndarray]]:
    """Returns (the metrics report, the option's outputs)."""
    from neuron_opt.cli.cc_model import OnnxModel
    from neuron_opt.passes.pipeline import apply_cast_pipeline, cast_pipeline
    from neuron_opt.dialects.parse import verify_module
    from neuron_opt.runtime.reference import Reference

    plan = plan_options(args)
    steps.step("import")
    model = OnnxModel(args.model)  # read and imported once
    fp32_module, weights = model.fp32, model.weights
    inputs = model.inputs(args.inputs)
    out_names = [o.name for o in model.proto.graph.output]
    mode = args.auto_cast  # normalized by its argparse type
    label = label_of(args)
    steps.advance()

    steps.step(f"auto-cast {label}")
    option_module = fp32_module.clone()
    passes = cast_pipeline(mode, args.auto_cast_type, not args.cast_io, **plan)
    emit_report(apply_cast_pipeline(option_module, passes), args)
    verify_module(option_module)
    steps.advance()

    steps.step("interpreter: fp32")
    ref32 = Reference(fp32_module, weights).run(inputs)  # the weights held in memory
    steps.advance()
    steps.step(f"interpreter: {label}")
    # Reference.run rounds each input RNE to the compiled signature (e.g. bf16 with --cast-io).
    option = ref32 if not passes else Reference(option_module, weights).run(inputs)
    steps.advance()
    steps.step("onnxruntime")
    ort_out = _run_onnxruntime(args.model, inputs, out_names)
    steps.advance()

    from neuron_opt.cli.cc_metrics import output_metrics

    cast_type = "none" if mode == "none" else args.auto_cast_type
    report = {
        "model": args.model,
        "inputs": args.inputs,
        "option": label,
        "auto_cast": mode,
        "auto_cast_type": args.auto_cast_type,
        "cast_io": bool(args.cast_io),
        "outputs": {},
    }
    for name in out_names:
        m = output_metrics(option[name], ref32[name], ort_out[name], cast_type)
        m["dtype"] = str(option[name].dtype)
        report["outputs"][name] = m
    return report, {name: option[name] for name in out_names}


def _num(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3e}" if v != 0 else "0"
    return str(v)


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 110))  # never wrap the figures when piped
    for name, m in report["outputs"].items():
        table = Table(title=f"{markup(name)}  {_fmt_shape(m['shape'])} {m['dtype']}  option {markup(report['option'])}",
                      title_justify="left")
        table.add_column("comparison")
        for col in ("max abs err", "rel max abs", "rel L2", "argmax agree"):
            table.add_column(col, justify="right")
        rows = (("option vs fp32", m["vs_fp32"], m["argmax_agreement"]),
                ("option vs onnxruntime", m["vs_onnxruntime"], None),
                ("fp32 vs onnxruntime", m["fp32_vs_onnxruntime"], None))
        for label, e, agree in rows:
            table.add_row(label, _num(e["max_abs"]), _num(e["rel_max_abs"]), _num(e["rel_l2"]),
                          "-" if agree is None else f"{agree:.4f}")
        table.caption = (f"inf {m['inf']}  NaN {m['nan']}  overflowed {m['overflowed']}  "
                         f"underflowed {m['underflowed']}  saturated {m['saturated']}")
        table.caption_justify = "left"
        console.print(table)


def run(args) -> int:
    from neuron_opt.cli.cc_metrics import json_safe
    from neuron_opt.outputs import atomic_output, save_outputs

    from neuron_opt.outputs import check_outputs

    check_outputs([args.output, args.json, report_file(args)], [args.model, args.inputs])  # before the slow run
    steps = _Steps(total=5)
    try:
        report, outputs = evaluate(args, steps)
    finally:
        steps.close()
    print_report(report)
    if args.output is not None:
        save_outputs(args.output, outputs)
    if args.json is not None:
        with atomic_output(args.json) as f:
            json.dump(json_safe(report), f, indent=2, allow_nan=False)
            f.write("\n")
    return 0

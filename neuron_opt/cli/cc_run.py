"""`neuron-cc run MODEL [--inputs X.npz] [-o OUT.npz] [--trace T.json] [--json FILE]
[--no-numerics]`: MODEL is an ONNX model (imported, cast and lowered), an nt .mlir (lowered as
written) or a nisa .mlir (run as is). The kernel runs on the NeuronCore-v2 simulator; the
outputs are compared with the reference interpreter for the same option (and, for an ONNX
model, with fp32 and onnxruntime); a summary table follows (time, per-engine busy and
utilization, TensorE HFU, DMA bytes)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping

from neuron_opt.cli.models import (
    Compiled,
    OnnxModel,
    Stopwatch,
    engine_summary,
    is_kernel,
    module_weights,
)
from neuron_opt.cli.precision import (
    add_cast_options,
    add_plan_options,
    add_report_option,
    report_file,
)
from neuron_opt.diagnostics import CompileError
from neuron_opt.options import DEFAULT_TYPE


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model",
        metavar="MODEL",
        help="an ONNX model (.onnx), an nt module or a nisa kernel (.mlir)",
    )
    p.add_argument(
        "--inputs",
        metavar="X.npz",
        help="inputs keyed by the model's input names (needed unless --no-numerics)",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT.npz",
        help="save the outputs (bf16/tf32/fp8 widened to float32, exactly)",
    )
    p.add_argument(
        "--trace",
        metavar="T.json",
        help="write a Chrome/Perfetto trace: one track per engine and DMA queue",
    )
    p.add_argument("--json", metavar="FILE", help="write the metrics as JSON")
    p.add_argument(
        "--no-numerics",
        action="store_true",
        help="timing only: no values computed, no inputs needed",
    )
    p.add_argument(
        "--weights-root",
        metavar="DIR",
        help="also allow the IR's weights file under DIR (by default it must lie in "
        "the IR file's directory)",
    )
    add_cast_options(p)
    add_plan_options(p)
    add_report_option(p)


def run(args) -> int:
    from neuron_opt.cli.common import load_module, load_npz
    from neuron_opt.cli.precision import emit_report, has_plan, label_of, plan_options
    from neuron_opt.cli.tables import model_name
    from neuron_opt.npz import set_weights_root
    from neuron_opt.outputs import check_outputs

    set_weights_root(args.weights_root)
    numerics = not args.no_numerics
    if args.output and not numerics:
        raise CompileError("-o needs numerics (drop --no-numerics)", "neuron-cc")
    if numerics and not args.inputs:
        raise CompileError(
            "--inputs X.npz is needed to compute outputs (or --no-numerics for timing only)",
            "neuron-cc",
        )
    outputs = [args.output, args.trace, args.json, report_file(args)]
    check_outputs(outputs, [args.model, args.inputs])
    wall = Stopwatch()
    model, kernel = None, False
    if args.model.endswith(".onnx"):
        with wall("import"):
            model = OnnxModel(args.model)
        inputs = model.inputs(args.inputs) if numerics else {}
        with wall("passes"):
            c = model.compile(
                args.auto_cast,
                args.auto_cast_type,
                args.cast_io,
                plan_options(args),
                lambda r: emit_report(r, args),
                label_of(args),
            )
        name = model.name
    else:
        if has_plan(args) or args.cast_report:
            raise CompileError(
                "--precision-plan, the block lists and --cast-report apply to ONNX "
                "models (an nt module runs as written)",
                args.model,
            )
        module = load_module(args.model)
        kernel = is_kernel(module)
        # A kernel run for timing only never reads its weights.
        weights = module_weights(module, args.model) if numerics or not kernel else None
        c = Compiled(module, weights, "as written", nisa=module if kernel else None)
        inputs = load_npz(args.inputs) if numerics else {}
        name = model_name(args.model)
    check_outputs(outputs, [args.model, args.inputs, getattr(c.weights, "file", None)])
    if not kernel:
        with wall("lowering"):
            _ = c.kernel
    with wall("simulation"):
        result = _simulate(c, inputs, numerics, bool(args.trace), args.model)
    report = {
        "model": args.model,
        "name": name,
        "option": c.option,
        "simulation": engine_summary(result),
        "outputs": {},
    }
    if numerics and not kernel:  # the interpreter runs nt modules, not kernels
        report["outputs"] = _compare(c, model, inputs, result.outputs, args, wall)
        print_comparison(report)
    print_summary(result, name, wall.seconds)
    report["metrics"] = result.metrics()
    report["wall_seconds"] = wall.seconds
    _save(args, result, report)
    return 0


def _simulate(c: Compiled, inputs: Mapping, numerics: bool, trace: bool, path: str):
    from neuron_opt.cli.models import simulate
    from neuron_opt.runtime.sim.errors import SimError

    try:
        return simulate(c, inputs, numerics=numerics, trace=trace)
    except SimError as e:
        if e.where is None:  # a problem of the inputs or of the whole kernel
            raise CompileError(e.message, path) from None
        raise


def _compare(
    c: Compiled, model: OnnxModel | None, inputs: Mapping, outputs: dict, args, wall: Stopwatch
) -> dict:
    """Per output: the simulator against the interpreter for the same option; for an ONNX
    model also against fp32 and onnxruntime, and the option's own error."""
    from neuron_opt.cli.metrics import agreement, error_norms, range_counts
    from neuron_opt.cli.models import reference

    with wall("interpreter"):
        ref = reference(c, inputs)
    agree = agreement(outputs, ref)
    ref32 = ort = None
    if model is not None:
        with wall("interpreter"):
            ref32 = (
                ref
                if c.option == "none"
                else reference(model.compile("none", DEFAULT_TYPE), inputs)
            )
        with wall("onnxruntime"):
            ort = model.onnxruntime(inputs)
    cast_type = "none" if c.option in ("none", "as written") else args.auto_cast_type
    out = {}
    for name, value in outputs.items():
        m = {"vs_interpreter": agree.get(name)}
        if ref32 is not None and ort is not None:
            m["vs_fp32"] = error_norms(value, ref32[name])
            m["vs_onnxruntime"] = error_norms(value, ort[name])
            m["interpreter_vs_fp32"] = error_norms(ref[name], ref32[name])
            m.update(range_counts(value, ref32[name], cast_type))
        out[name] = m
    return out


def print_comparison(report: dict) -> None:
    from neuron_opt.cli.tables import console, error_table
    from neuron_opt.diagnostics import markup

    out = console()
    for name, m in report["outputs"].items():
        rows = [
            ("simulator vs interpreter (same option)", m.get("vs_interpreter")),
            ("simulator vs interpreter fp32", m.get("vs_fp32")),
            ("simulator vs onnxruntime fp32", m.get("vs_onnxruntime")),
            ("interpreter (option) vs fp32", m.get("interpreter_vs_fp32")),
        ]
        shares = [
            None
            if e is None or e.get("differing_share") is None
            else f"{100 * e['differing_share']:.2f}%"
            for _, e in rows
        ]
        title = f"{markup(report['name'])}: {markup(name)}  option {markup(report['option'])}: simulator outputs"
        out.print(error_table(title, rows, ("differing", [s or "-" for s in shares]), m))


def print_summary(result, name: str, wall: dict[str, float] | None = None) -> None:
    """The simulation table of model `name`; `wall` adds the wall seconds of each stage before
    simulation."""
    from rich.table import Table

    from neuron_opt.cli.tables import console
    from neuron_opt.diagnostics import markup

    out = console()
    t = Table(
        title=f"{markup(name)}: NeuronCore-v2 simulation"
        + ("" if result.numerics else " (timing only)")
    )
    t.add_column("track", no_wrap=True)
    t.add_column("instructions", justify="right")
    t.add_column("busy µs", justify="right")
    t.add_column("utilization", justify="right")
    dma = [e for e in result.engines if e.engine == "dma"]
    for e in result.engines:
        if e.engine != "dma":
            t.add_row(
                e.name,
                str(e.instructions),
                f"{e.busy_ns / 1000:.3f}",
                f"{100 * e.utilization:.1f}%",
            )
    if dma:  # one row for all queues (each queue is in --json): mean queue utilization
        busy = sum(e.busy_ns for e in dma)
        t.add_row(
            f"DMA ({len(dma)} queues)",
            str(sum(e.instructions for e in dma)),
            f"{busy / 1000:.3f}",
            f"{100 * sum(e.utilization for e in dma) / len(dma):.1f}%",
        )
    out.print(t)
    out.print(
        f"time {result.makespan_us:.3f} µs ({result.cycles} cycles @ 1.4 GHz)  "
        f"TensorE busy {100 * result.utilization('tensor'):.1f}%  HFU {100 * result.hfu:.1f}%  "
        f"FLOPs {result.flops:,}  DMA {result.dma_bytes:,} B  instructions {result.instructions:,}"
    )
    wall = dict(wall or {})
    wall.pop("simulation", None)  # shown split into the simulator's decode and run
    wall |= {"decode": result.timings["decode"], "simulate": result.timings["simulate"]}
    order = ("import", "passes", "lowering", "decode", "simulate", "interpreter", "onnxruntime")
    stages = [f"{k} {wall[k]:.3f} s" for k in order if k in wall]
    out.print("wall: " + ", ".join(stages), style="dim")


def _save(args, result, report: dict) -> None:
    """The files a run asked for: -o outputs, --trace, --json (strict JSON)."""
    from neuron_opt.cli.tables import write_json
    from neuron_opt.outputs import atomic_output, save_outputs

    if args.output:
        save_outputs(args.output, result.outputs)
    if args.trace:
        with atomic_output(args.trace) as f:
            json.dump(result.trace, f)
    if args.json:
        write_json(args.json, report)

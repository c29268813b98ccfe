"""`neuron-cc run KERNEL.mlir --inputs X.npz [-o OUT.npz] [--trace T.json] [--json FILE]
[--no-numerics]`: run a nisa kernel on the NeuronCore-v2 simulator and print a summary table
(time, per-engine busy and utilization, TensorE HFU, DMA bytes).

For now it runs nisa IR as is; ONNX models and nt modules need the lowering first.
`simulate_file` is the Python entry point the lowering's extension of this command reuses.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from neuron_opt.cli.common import load_npz
from neuron_opt.diagnostics import CompileError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="KERNEL.mlir", help="a module holding a nisa.kernel")
    p.add_argument("--inputs", metavar="X.npz",
                   help="inputs keyed by the kernel's HBM input names (needed with numerics)")
    p.add_argument("-o", "--output", metavar="OUT.npz",
                   help="save the outputs (bf16/tf32/fp8 widened to float32, exactly)")
    p.add_argument("--trace", metavar="T.json",
                   help="write a Chrome/Perfetto trace: one track per engine and DMA queue")
    p.add_argument("--json", metavar="FILE", help="write the metrics as JSON")
    p.add_argument("--no-numerics", action="store_true",
                   help="timing only: no values computed, no inputs needed")  # fmt: skip
    p.add_argument("--weights-root", metavar="DIR",
                   help="also allow the IR's weights file under DIR (by default it must lie in "
                   "the IR file's directory)")
    # MODEL.onnx / nt .mlir: compiled and lowered first (neuron_opt.cli.cc_model)
    from neuron_opt.cli.cc_compile import add_cast_options
    from neuron_opt.cli.cc_precision import add_plan_options, add_report_option

    add_cast_options(p)
    add_plan_options(p)
    add_report_option(p)


def simulate_file(path: str, inputs: dict[str, np.ndarray], numerics: bool = True,
                  trace: bool = False, outputs_of=None):
    """Parse, verify and simulate a nisa .mlir file (weights relative to its directory)."""
    from neuron_opt.cli.common import load_module
    from neuron_opt.runtime.sim import simulate
    from neuron_opt.runtime.sim.errors import SimError

    if path.endswith(".onnx"):
        raise CompileError("running ONNX models needs the nt -> nisa lowering (not built yet)", path)
    module = load_module(path)
    from neuron_opt.dialects.nisa import KernelOp

    if not any(isinstance(op, KernelOp) for op in module.walk()):
        raise CompileError(
            "no nisa.kernel in the module (nt modules need the nt -> nisa lowering)", path
        )
    from neuron_opt.cli.cc_model import check_run_outputs, module_weights

    weights = module_weights(module, path) if numerics else None
    if outputs_of is not None:
        check_run_outputs(outputs_of, getattr(weights, "file", None))
    try:
        return simulate(module, inputs, weights, numerics=numerics, trace=trace)
    except SimError as e:
        if e.where is None:
            raise CompileError(e.message, path) from None
        raise


def print_summary(result, path: str, wall: dict[str, float] | None = None) -> None:
    """The simulation table; `wall` adds the wall seconds of each stage before simulation."""
    from rich.console import Console
    from rich.table import Table

    from neuron_opt.diagnostics import markup

    console = Console()
    t = Table(title=f"{markup(Path(path).name)}: NeuronCore-v2 simulation"
              + ("" if result.numerics else " (timing only)"))
    t.add_column("track")
    t.add_column("instructions", justify="right")
    t.add_column("busy µs", justify="right")
    t.add_column("utilization", justify="right")
    dma = [e for e in result.engines if e.engine == "dma"]
    for e in result.engines:
        if e.engine != "dma":
            t.add_row(e.name, str(e.instructions), f"{e.busy_ns / 1000:.3f}",
                      f"{100 * e.utilization:.1f}%")
    if dma:  # one row for all queues (each queue is in --json): mean queue utilization
        busy = sum(e.busy_ns for e in dma)
        t.add_row(f"DMA ({len(dma)} queues)", str(sum(e.instructions for e in dma)),
                  f"{busy / 1000:.3f}", f"{100 * sum(e.utilization for e in dma) / len(dma):.1f}%")
    console.print(t)
    console.print(
        f"time {result.makespan_us:.3f} µs ({result.cycles} cycles @ 1.4 GHz)  "
        f"TensorE busy {100 * result.utilization('tensor'):.1f}%  HFU {100 * result.hfu:.1f}%  "
        f"FLOPs {result.flops:,}  DMA {result.dma_bytes:,} B  instructions {result.instructions:,}"
    )
    wall = dict(wall or {})
    wall.pop("simulation", None)  # shown split into the simulator's decode and run
    wall |= {"decode": result.timings["decode"], "simulate": result.timings["simulate"]}
    order = ("import", "passes", "lowering", "decode", "simulate", "interpreter", "onnxruntime")
    stages = [f"{k} {wall[k]:.3f} s" for k in order if k in wall]
    console.print("wall: " + ", ".join(stages), style="dim")


def run(args) -> int:
    from neuron_opt.cli import cc_model
    from neuron_opt.npz import set_weights_root

    set_weights_root(args.weights_root)
    cc_model.check_run_outputs(args)
    if cc_model.wants_lowering(args.model):
        return cc_model.run_model(args)

    numerics = not args.no_numerics
    inputs = load_npz(args.inputs) if args.inputs else {}
    if args.output and not numerics:
        raise CompileError("-o needs numerics (drop --no-numerics)", "neuron-cc")
    result = simulate_file(args.model, inputs, numerics=numerics, trace=bool(args.trace),
                           outputs_of=args)
    print_summary(result, args.model)
    save_run_files(args, result, result.metrics())
    return 0


def save_run_files(args, result, report: dict) -> None:
    """The files a run asked for: -o outputs, --trace, --json (strict JSON)."""
    from neuron_opt.cli.cc_metrics import json_safe
    from neuron_opt.outputs import atomic_output, save_outputs

    if args.output:
        save_outputs(args.output, result.outputs)
    if args.trace:
        with atomic_output(args.trace) as f:
            json.dump(result.trace, f)
    if args.json:
        with atomic_output(args.json) as f:
            json.dump(json_safe(report), f, indent=2, allow_nan=False)
            f.write("\n")

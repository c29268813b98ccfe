"""Models on the simulator, for `neuron-cc run` and `neuron-cc sweep`: compile (ONNX import
and cast pipeline, or an nt .mlir as is), lower to nisa, simulate, and compare the outputs
with the reference interpreter for the same option, with fp32 and with onnxruntime."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neuron_opt.diagnostics import CompileError
from neuron_opt.options import DEFAULT_TYPE

WEIGHTS = "weights.npz"


@dataclass
class Compiled:
    """An nt module for one option and its weights (arrays by name: held in memory, or read on
    demand from the .npz an IR file names); the nisa kernel is lowered on first use (a baseline
    only evaluated by the interpreter is never lowered)."""

    nt: object
    weights: object
    option: str
    onnx: str | None = None
    keep: list = field(default_factory=list)  # what must live as long as this object
    _kernel: object = None

    @property
    def kernel(self):
        if self._kernel is None:
            self._kernel = lower(self.nt)
        return self._kernel


def lower(nt_module):
    """nt module -> nisa module (lowering errors are located CompileErrors). Not verified
    here: the simulator checks every placement rule of docs/nisa.md before it runs a kernel,
    so a lowering bug still stops the run with the verifier's message."""
    from neuron_opt.lowering.lower_to_nisa import lower_module

    return lower_module(nt_module)


class OnnxModel:
    """An ONNX model read and imported once; each option compiles a clone of the import,
    and every option shares its weights, held in memory (passes never change the stored
    weights; nothing is written to disk, so a killed run leaves nothing behind)."""

    def __init__(self, path: str, proto=None):
        """`proto`: the model already read (`path` then only names it in messages)."""
        from neuron_opt.importers.onnx import import_onnx, load_model

        self.path = path
        self.proto, _ = load_model(path if proto is None else proto, path, validate=True)
        self.fp32, self.weights = import_onnx(self.proto, WEIGHTS, label=path, validated=True)

    def __reduce__(self):
        # Sent to another process (a Ray worker) as the serialized model, imported there once.
        return _imported, (self.path, self.proto.SerializeToString())

    def compile(self, mode: str, cast_type: str, cast_io: bool = False, plan: dict | None = None,
                on_report=None, label: str | None = None, rules=None) -> Compiled:
        """`plan`: auto-cast's precision-plan options; `rules`: a PrecisionPlan built by a
        program, in their place; `on_report` receives auto-cast's report; `label` names the
        option (default from mode, type and cast_io)."""
        from neuron_opt.dialects.parse import verify_module
        from neuron_opt.options import normalize_mode, option_label
        from neuron_opt.passes.pipeline import apply_cast_pipeline, cast_pipeline

        module = self.fp32.clone()
        report = apply_cast_pipeline(module, cast_pipeline(mode, cast_type, not cast_io, **(plan or {})), rules)
        if on_report is not None:
            on_report(report)
        verify_module(module)
        label = label or option_label(normalize_mode(mode), cast_type, cast_io)
        return Compiled(module, self.weights, label, onnx=self.path, keep=[self])

    def inputs(self, inputs_path: str) -> dict:
        """The .npz's arrays, checked against the model's graph inputs."""
        from neuron_opt.cli.cc_eval import load_inputs

        return load_inputs(inputs_path, self.proto)

    def onnxruntime(self, inputs: dict) -> dict:
        from neuron_opt.cli.cc_eval import _run_onnxruntime

        return _run_onnxruntime(self.path, inputs, [o.name for o in self.proto.graph.output])


# Models a worker process has imported, by the digest of their serialized form.
_IMPORTED: dict[bytes, OnnxModel] = {}


def _imported(path: str, data: bytes) -> OnnxModel:
    import hashlib

    import onnx

    key = hashlib.sha256(data).digest()
    if key not in _IMPORTED:
        _IMPORTED[key] = OnnxModel(path, onnx.load_model_from_string(data))
    return _IMPORTED[key]


def compile_onnx(path: str, mode: str, type_: str, cast_io: bool = False) -> Compiled:
    return OnnxModel(path).compile(mode, type_, cast_io)


def is_kernel(module) -> bool:
    from neuron_opt.dialects.nisa import KernelOp

    return any(isinstance(op, KernelOp) for op in module.walk())


def simulate(c: Compiled, inputs: dict, numerics: bool = True, trace: bool = False):
    from neuron_opt.runtime.sim import simulate as sim

    return sim(c.kernel, inputs, c.weights, numerics=numerics, trace=trace)


def reference(c: Compiled, inputs: dict) -> dict[str, np.ndarray]:
    from neuron_opt.runtime.reference import Reference

    return Reference(c.nt, c.weights).run(inputs)


def differing_share(a, b) -> float:
    """Share of elements that differ (NaN matches NaN)."""
    from neuron_opt.cli.cc_metrics import f64_pieces

    n = np.size(a)
    if not n:
        return 0.0
    same = 0
    for pa, pb in f64_pieces(a, b):
        same += int(np.count_nonzero((pa == pb) | (np.isnan(pa) & np.isnan(pb))))
    return float(1.0 - same / n)  # as bool.mean(): an exact count over the size


def agreement(sim_out: dict, ref: dict) -> dict:
    """Per output: the simulator vs the interpreter (same option)."""
    from neuron_opt.cli.cc_metrics import error_norms

    out = {}
    for name, r in ref.items():
        e = error_norms(sim_out[name], r)
        e["differing_share"] = differing_share(sim_out[name], r)
        out[name] = e
    return out


def engine_summary(result) -> dict:
    return {
        "latency_us": result.makespan_us,
        "utilization": {e.name: e.utilization for e in result.engines if e.engine != "dma"},
        "dma_utilization": (sum(e.utilization for e in result.engines if e.engine == "dma")
                            / max(1, sum(1 for e in result.engines if e.engine == "dma"))),
        "tensor_busy": result.utilization("tensor"),
        "hfu": result.hfu,
        "flops": result.flops,
        "dma_bytes": result.dma_bytes,
        "instructions": result.instructions,
    }


def check_run_outputs(args, weights_file=None) -> None:
    """run's outputs: writable, none of them an input (the model, the inputs, the weights)."""
    from neuron_opt.cli.cc_precision import report_file
    from neuron_opt.outputs import check_outputs

    check_outputs([args.output, args.trace, args.json, report_file(args)], [args.model, args.inputs, weights_file])


def wants_lowering(path: str) -> bool:
    """An .onnx model or an nt module (not a nisa kernel) is compiled before it runs."""
    if path.endswith(".onnx"):
        return True
    from neuron_opt.cli.common import load_module

    return not is_kernel(load_module(path))


def compile_for_run(args, model: OnnxModel | None) -> Compiled:
    from neuron_opt.cli.cc_precision import emit_report, has_plan, label_of, plan_options
    from neuron_opt.cli.common import load_module

    if model is not None:
        return model.compile(args.auto_cast, args.auto_cast_type, args.cast_io, plan_options(args),
                             lambda r: emit_report(r, args), label_of(args))
    if has_plan(args) or args.cast_report:
        raise CompileError("--precision-plan, the block lists and --cast-report apply to ONNX models "
                           "(an nt module runs as written)", args.model)
    module = load_module(args.model)  # an nt module runs as written (its casts included)
    return Compiled(module, module_weights(module, args.model), "as written")


def module_weights(module, path: str):
    """The weights of an IR file's module: its .npz opened (inside the file's directory, digest
    checked) if the module names one, else the directory (a weight then reports the missing
    attribute)."""
    from neuron_opt.npz import WEIGHTS_ATTR, open_weights

    base = Path(path).parent if path != "-" else Path(".")
    if WEIGHTS_ATTR not in module.attributes:
        return base
    return open_weights(module, base)


def run_model(args) -> int:
    """`neuron-cc run MODEL.onnx|NT.mlir`: compile, lower, simulate, compare, report."""
    from neuron_opt.cli.cc_metrics import error_norms, range_counts
    from neuron_opt.cli.cc_run import print_summary, save_run_files
    from neuron_opt.cli.common import load_npz

    numerics = not args.no_numerics
    if args.output and not numerics:
        raise CompileError("-o needs numerics (drop --no-numerics)", "neuron-cc")
    if numerics and not args.inputs:
        raise CompileError("--inputs X.npz is needed to compute outputs (or use --no-numerics)",
                           "neuron-cc")
    wall = Stopwatch()
    model = None
    if args.model.endswith(".onnx"):
        with wall("import"):
            model = OnnxModel(args.model)
    inputs = {}
    if numerics:
        inputs = model.inputs(args.inputs) if model is not None else load_npz(args.inputs)
    with wall("passes"):
        c = compile_for_run(args, model)
    check_run_outputs(args, getattr(c.weights, "file", None))
    with wall("lowering"):
        _ = c.kernel
    with wall("simulation"):
        result = simulate(c, inputs, numerics=numerics, trace=bool(args.trace))
    report = {"model": args.model, "option": c.option, "simulation": engine_summary(result),
              "outputs": {}}
    if numerics:
        with wall("interpreter"):
            ref = reference(c, inputs)
        agree = agreement(result.outputs, ref)
        ref32 = ort = None
        if model is not None:
            with wall("interpreter"):
                ref32 = ref if c.option == "none" else reference(model.compile("none", DEFAULT_TYPE), inputs)
            with wall("onnxruntime"):
                ort = model.onnxruntime(inputs)
        cast_type = "none" if c.option in ("none", "as written") else args.auto_cast_type
        for name, out in result.outputs.items():
            m = {"vs_interpreter": agree.get(name)}
            if ref32 is not None:
                m["vs_fp32"] = error_norms(out, ref32[name])
                m["vs_onnxruntime"] = error_norms(out, ort[name])
                m["interpreter_vs_fp32"] = error_norms(ref[name], ref32[name])
                m.update(range_counts(out, ref32[name], cast_type))
            report["outputs"][name] = m
        print_comparison(report)
    print_summary(result, args.model, wall.seconds)
    report["metrics"] = result.metrics()
    report["wall_seconds"] = wall.seconds
    save_run_files(args, result, report)
    return 0


class Stopwatch:
    """Wall seconds per stage (`with wall("lowering"): ...`), summed over repeats."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0


def _num(v) -> str:
    if v is None:
        return "-"
    return f"{v:.3e}" if isinstance(v, float) and v != 0 else str(v)


def print_comparison(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from neuron_opt.diagnostics import markup

    console = Console(width=max(Console().width, 110))
    for name, m in report["outputs"].items():
        t = Table(title=f"{markup(name)}  option {markup(report['option'])}: simulator outputs",
                  title_justify="left")
        t.add_column("comparison")
        for col in ("max abs err", "rel max abs", "rel L2", "differing"):
            t.add_column(col, justify="right")
        rows = [("simulator vs interpreter (same option)", m.get("vs_interpreter")),
                ("simulator vs interpreter fp32", m.get("vs_fp32")),
                ("simulator vs onnxruntime fp32", m.get("vs_onnxruntime")),
                ("interpreter (option) vs fp32", m.get("interpreter_vs_fp32"))]
        for label, e in rows:
            if e is None:
                continue
            share = e.get("differing_share")
            t.add_row(label, _num(e["max_abs"]), _num(e["rel_max_abs"]), _num(e["rel_l2"]),
                      "-" if share is None else f"{100 * share:.2f}%")
        if "inf" in m:
            t.caption = (f"inf {m['inf']}  NaN {m['nan']}  overflowed {m['overflowed']}  "
                         f"underflowed {m['underflowed']}  saturated {m['saturated']}")
            t.caption_justify = "left"
        console.print(t)

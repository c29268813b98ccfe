"""Models as neuron-cc's commands use them: an ONNX model imported once and compiled per
option (import and cast pipeline), an IR file's module and weights, the nisa kernel lowered on
first use, the simulator and the reference interpreter on them."""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from neuron_opt.options import CastTypeOption, ModeOption

if TYPE_CHECKING:
    from xdsl.dialects.builtin import ModuleOp

WEIGHTS = "weights.npz"


@dataclass
class Compiled:
    """An nt module for one option and its weights (arrays by name: held in memory, or read on
    demand from the .npz an IR file names); the nisa kernel is lowered on first use (a baseline
    only evaluated by the interpreter is never lowered)."""

    nt: ModuleOp
    weights: object
    option: str
    onnx: str | None = None
    keep: list = field(default_factory=list)  # what must live as long as this object
    nisa: ModuleOp | None = (
        None  # the kernel: given (a nisa file runs as is), else lowered on first use
    )

    @property
    def kernel(self):
        if self.nisa is None:
            self.nisa = lower(self.nt)
        return self.nisa


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

    def compile(
        self,
        mode: ModeOption,
        cast_type: CastTypeOption,
        cast_io: bool = False,
        plan: dict | None = None,
        on_report=None,
        label: str | None = None,
        rules=None,
    ) -> Compiled:
        """`plan`: auto-cast's precision-plan options; `rules`: a PrecisionPlan built by a
        program, in their place; `on_report` receives auto-cast's report; `label` names the
        option (default from mode, type and cast_io)."""
        from neuron_opt.options import normalize_mode, option_label

        module = self.fp32.clone()
        apply_casts(module, mode, cast_type, cast_io, plan, on_report, rules)
        label = label or option_label(normalize_mode(mode), cast_type, cast_io)
        return Compiled(module, self.weights, label, onnx=self.path, keep=[self])

    @property
    def name(self) -> str:
        """The model's name in titles and default file names (tables.model_name)."""
        from neuron_opt.cli.tables import model_name

        return model_name(self.path, self.proto.graph.name)

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.proto.graph.output]

    def producer(self, value: str) -> str | None:
        """The op type of the node that makes `value`."""
        return next((n.op_type for n in self.proto.graph.node if value in n.output), None)

    def inputs(self, inputs_path: str) -> dict:
        """The .npz's arrays, checked against the model's graph inputs."""
        from neuron_opt.cli.inputs import load_inputs

        return load_inputs(inputs_path, self.proto)

    def onnxruntime(self, inputs: Mapping[str, np.ndarray]) -> dict:
        from neuron_opt.cli.inputs import run_onnxruntime

        return run_onnxruntime(self.path, inputs, self.output_names)


# Models a worker process has imported, by the digest of their serialized form.
_IMPORTED: dict[bytes, OnnxModel] = {}


def _imported(path: str, data: bytes) -> OnnxModel:
    import hashlib

    import onnx

    key = hashlib.sha256(data).digest()
    if key not in _IMPORTED:
        _IMPORTED[key] = OnnxModel(path, onnx.load_model_from_string(data))
    return _IMPORTED[key]


def compile_onnx(
    path: str, mode: ModeOption, cast_type: CastTypeOption, cast_io: bool = False
) -> Compiled:
    return OnnxModel(path).compile(mode, cast_type, cast_io)


def compile_model(
    model_path: str,
    mode: ModeOption,
    cast_type: CastTypeOption,
    cast_io: bool,
    weights_name: str | None = None,
    plan: dict | None = None,
    on_report=None,
):
    """Import + cast pipeline + verify. Returns (module, weights). ONNX problems arrive from the
    importer as `model.onnx: node NAME (OpType): error: ...`."""
    from neuron_opt.importers.onnx import import_onnx

    module, weights = import_onnx(model_path, weights_name)
    apply_casts(module, mode, cast_type, cast_io, plan, on_report)
    return module, weights


def apply_casts(
    module,
    mode: ModeOption,
    cast_type: CastTypeOption,
    cast_io: bool = False,
    plan: dict | None = None,
    on_report=None,
    rules=None,
) -> None:
    """The cast pipeline on `module`, then verify. `plan` holds auto-cast's precision-plan
    options (or `rules`, a PrecisionPlan built by a program); `on_report` receives auto-cast's
    report (when it ran)."""
    from neuron_opt.dialects.parse import verify_module
    from neuron_opt.passes.pipeline import apply_cast_pipeline, cast_pipeline

    report = apply_cast_pipeline(
        module, cast_pipeline(mode, cast_type, not cast_io, **(plan or {})), rules
    )
    if on_report is not None:
        on_report(report)
    verify_module(module)


def module_weights(module, path: str):
    """The weights of an IR file's module: its .npz opened (inside the file's directory, digest
    checked) if the module names one, else the directory (a weight then reports the missing
    attribute)."""
    from neuron_opt.npz import WEIGHTS_ATTR, open_weights

    base = Path(path).parent if path != "-" else Path(".")
    if WEIGHTS_ATTR not in module.attributes:
        return base
    return open_weights(module, base)


def is_kernel(module) -> bool:
    from neuron_opt.dialects.nisa import KernelOp

    return any(isinstance(op, KernelOp) for op in module.walk())


def simulate(
    c: Compiled, inputs: Mapping[str, np.ndarray], numerics: bool = True, trace: bool = False
):
    from neuron_opt.runtime.sim import simulate as sim

    return sim(c.kernel, inputs, c.weights, numerics=numerics, trace=trace)


def reference(c: Compiled, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    from neuron_opt.runtime.reference import Reference

    return Reference(c.nt, c.weights).run(inputs)


def engine_summary(result) -> dict:
    return {
        "latency_us": result.makespan_us,
        "utilization": {e.name: e.utilization for e in result.engines if e.engine != "dma"},
        "dma_utilization": (
            sum(e.utilization for e in result.engines if e.engine == "dma")
            / max(1, sum(1 for e in result.engines if e.engine == "dma"))
        ),
        "tensor_busy": result.utilization("tensor"),
        "hfu": result.hfu,
        "flops": result.flops,
        "dma_bytes": result.dma_bytes,
        "instructions": result.instructions,
    }


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

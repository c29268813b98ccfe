"""What several test folders share: nt functions built op by op, comparing outputs bit for bit,
running neuron-cc in-process, and the example models' inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from xdsl.dialects import func
from xdsl.dialects.builtin import FunctionType, ModuleOp, StringAttr, bf16, f8E4M3, f16, f32, tf32
from xdsl.ir import Block, Region, SSAValue

from neuron_opt.dialects import nt
from neuron_opt.dialects.parse import verify_module

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FLOATS = (f32, tf32, bf16, f16, f8E4M3)  # the float element types nt accepts


def main_module(block: Block, outs: list[SSAValue], weights: str | None = None) -> ModuleOp:
    """A verified module holding `func.func @main` over `block` (its arguments the inputs),
    returning `outs`; `weights` names the .npz its nt.weight ops read."""
    block.add_op(func.ReturnOp(*outs))
    fn = func.FuncOp(
        "main",
        FunctionType.from_lists([a.type for a in block.args], [v.type for v in outs]),
        Region(block),
    )
    module = ModuleOp([fn])
    if weights is not None:
        module.attributes[nt.WEIGHTS_ATTR] = StringAttr(weights)
    verify_module(module)
    return module


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-identical, NaN payloads aside (NaN positions must agree)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind in "biu":
        return bool(np.array_equal(a, b))
    na, nb = np.isnan(a.astype(np.float32)), np.isnan(b.astype(np.float32))
    ua = np.ascontiguousarray(a).view(f"u{a.dtype.itemsize}")
    ub = np.ascontiguousarray(b).view(f"u{b.dtype.itemsize}")
    return bool(np.array_equal(na, nb) and np.array_equal(ua[~na], ub[~nb]))


# docs/design.md "Comparisons and tolerances": the simulator against the interpreter (same option),
# within a share of the option's own error (the interpreter against fp32), 1e-5 under none.
SIM_SHARE = {"bf16": 0.25, "fp8_e4m3": 0.25, "fp16": 1.0, "tf32": 1.0}
NONE_TOL = 1e-5


def rel_l2(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    n = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / n) if n else float(np.linalg.norm(a - b))


def sim_bound(mode: str, type_: str, own: float) -> float:
    """The largest rel L2 the simulator may be off the interpreter by under an option."""
    return NONE_TOL if mode == "none" else max(SIM_SHARE[type_] * own, NONE_TOL)


def run_neuron_cc(argv, capsys) -> tuple[int, str, str]:
    """Run neuron-cc in-process: (exit code, stdout, stderr)."""
    from neuron_opt.cli import neuron_cc

    with pytest.raises(SystemExit) as e:
        neuron_cc.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return e.value.code, out, err


def example_inputs(name: str) -> dict[str, np.ndarray]:
    with np.load(EXAMPLES / f"{name}_inputs.npz") as z:
        return {k: z[k] for k in z.files}

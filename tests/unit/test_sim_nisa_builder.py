"""Building nisa from Python (what the lowering does) gives IR that prints, parses back and
runs."""

from __future__ import annotations

import io

import numpy as np
import pytest
from xdsl.dialects.builtin import ModuleOp, TensorType, bf16, f32
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

from neuron_opt.cli.common import make_context
from neuron_opt.dialects import nisa
from neuron_opt.dialects.parse import parse_module, verify_module
from neuron_opt.runtime.sim import simulate


def _kernel(stationary_rows: int = 128) -> ModuleOp:
    full = [(0, 128), (0, 128)]
    ops = [
        nisa.HbmOp.get("x", "input", TensorType(f32, [128, 128])),
        nisa.HbmOp.get("y", "output", TensorType(f32, [128, 128])),
        nisa.SbufOp.get("xs", 0, 0, TensorType(bf16, [128, 128])),
        nisa.SbufOp.get("ys", 0, 256, TensorType(f32, [128, 128])),
        nisa.PsumOp.get("ps", 0, 0, TensorType(f32, [128, 128])),
        nisa.SemaphoreOp.get("s"),
        nisa.DmaQueueOp("q", [
            nisa.DmaCopyOp.make(("xs", full), ("x", full), signal=["s"]),
            nisa.DmaCopyOp.make(("y", full), ("ys", full), wait={"s": 3}),
        ]),
        nisa.EngineOp("tensor", [
            nisa.MatmulOp.make(("ps", full), ("xs", [(0, stationary_rows), (0, 128)]),
                               ("xs", full), start=True, stop=True, wait={"s": 1}, signal=["s"]),
        ]),
        nisa.EngineOp("scalar", [
            nisa.ActivationOp.make(("ys", full), ("ps", full), func="copy", scale=0.5,
                                   wait={"s": 2}, signal=["s"]),
        ]),
    ]  # fmt: skip
    return ModuleOp([nisa.KernelOp("k", ops)])


def test_built_kernel_prints_parses_and_runs():
    m = _kernel()
    m.verify()
    out = io.StringIO()
    Printer(stream=out).print_op(m)
    text = out.getvalue()
    assert (
        "nisa.matmul @ps[0:128, 0:128], @xs[0:128, 0:128], @xs[0:128, 0:128] start stop "
        "wait(@s >= 1) signal(@s)" in text
    )
    assert "nisa.activation @ys[0:128, 0:128], @ps[0:128, 0:128] func copy scale 0.5" in text
    m2 = parse_module(make_context(), text, "built.mlir")
    verify_module(m2)
    x = np.random.default_rng(1).standard_normal((128, 128)).astype(np.float32)
    y = simulate(m2, {"x": x}).outputs["y"]
    xb = x.astype(bf16_np()).astype(np.float64)
    assert np.linalg.norm(y - 0.5 * xb.T @ xb) / np.linalg.norm(0.5 * xb.T @ xb) < 1e-6


def bf16_np():
    import ml_dtypes

    return ml_dtypes.bfloat16


def test_built_kernel_is_verified():
    with pytest.raises(
        VerifyException, match="operand moving: contraction 128 partitions, stationary has 64"
    ):
        _kernel(stationary_rows=64).verify()

"""Transposes that swap two blocks of dims (a batch of 2-D transposes on TensorE) and reductions
over rows longer than one tensor_reduce, lowered to nisa and simulated against the reference
interpreter: transposes bit for bit, reductions within docs/design.md's 1e-5 rel L2."""

from __future__ import annotations

import numpy as np
import pytest
from test_lowering_windows import _check, _ty


@pytest.mark.parametrize(
    "shape,perm,elt",
    [
        ((1, 96, 56, 56), (0, 2, 3, 1), "f32"),  # NCHW -> NHWC (ConvNeXt): 3136 DMAs the other way
        ((1, 128, 12, 64), (0, 2, 3, 1), "f32"),  # attention's K^T
        ((300, 200), (1, 0), "bf16"),
        ((2, 3, 200, 5, 7), (0, 3, 4, 1, 2), "f32"),  # batch prefix, blocks of two dims each
        ((1, 128, 12, 64), (0, 2, 1, 3), "f32"),  # the last dim stays: DMAs
    ],
)
def test_transpose_against_interpreter(shape, perm, elt):
    out = tuple(shape[p] for p in perm)
    body = (
        f"    %y = nt.transpose %x {{perm = array<i64: {', '.join(map(str, perm))}>}} : "
        f"({_ty(shape, elt)}) -> {_ty(out, elt)}"
    )
    r = _check(body, [("x", shape, elt)], out, elt, exact=True)
    swaps = perm[-1] != len(perm) - 1
    assert (r.utilization("tensor") > 0) == swaps


def test_transpose_keeps_signed_zero_and_non_finite_values():
    """The TensorE transposes are bit copies on the simulator (the interpreter's values)."""
    from neuron_opt.cli.common import make_context
    from neuron_opt.dialects.parse import parse_module
    from neuron_opt.lowering.lower_to_nisa import lower_module
    from neuron_opt.runtime.sim import simulate

    x = np.random.default_rng(1).standard_normal((64, 96)).astype(np.float32)
    x[0, :4] = [-0.0, np.inf, -np.inf, np.nan]
    text = (
        f'builtin.module {{\n  func.func @main(%x: {_ty((64, 96))} {{nt.name = "x"}}) -> ({_ty((96, 64))} '
        f'{{nt.name = "y"}}) {{\n    %y = nt.transpose %x {{perm = array<i64: 1, 0>}} : ({_ty((64, 96))}) -> '
        f"{_ty((96, 64))}\n    func.return %y : {_ty((96, 64))}\n  }}\n}}\n"
    )
    y = simulate(lower_module(parse_module(make_context(), text, "t.mlir")), {"x": x}).outputs["y"]
    assert np.array_equal(np.asarray(y, np.float32).view(np.uint32), x.T.view(np.uint32))


@pytest.mark.parametrize("kind", ["reduce_sum", "reduce_mean", "reduce_max"])
def test_reduce_of_long_rows(kind):
    shape, axes = (2, 3, 300, 300), (2, 3)  # 90000 elements per row: 11 chunks
    out = (2, 3, 1, 1)
    body = (
        f"    %y = nt.{kind} %x {{axes = array<i64: {', '.join(map(str, axes))}>, keepdims}} : "
        f"({_ty(shape)}) -> {_ty(out)}"
    )
    _check(body, [("x", shape, "f32")], out, exact=kind == "reduce_max")


def test_heads_merged_back_in_few_dmas():
    """[1, H, S, D] -> [1, S, H, D]: one DMA per head (split over queues), not one per
    position (the output-major loop took S = 1500 DMAs on Whisper's encoder)."""
    shape, perm = (1, 6, 1500, 64), (0, 2, 1, 3)
    out = tuple(shape[p] for p in perm)
    body = (
        f"    %y = nt.transpose %x {{perm = array<i64: 0, 2, 1, 3>}} : ({_ty(shape)}) -> {_ty(out)}"
    )
    r = _check(body, [("x", shape, "f32")], out, exact=True)
    assert r.instructions <= 6 * 16

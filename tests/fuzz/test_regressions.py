"""Minimized graphs from fuzz failures, run through every invariant of test_fuzz_pipeline.

The failures themselves were bugs outside this suite (reported; their failing reproducers are
kept out of the suite until fixed). What is pinned here is the rank >= 1 form of each graph,
which must keep passing: the fuzzer draws such graphs rarely.
"""

from __future__ import annotations

import numpy as np
import pytest
from nt_graphs import Graph
from test_fuzz_pipeline import check_graph, parse

from neuron_opt.dialects.types import round_to

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

SPECIALS = np.array([0.0, -0.0, 1e-45, -3e38, np.inf, -np.inf, np.nan, 1.00390625], np.float32)


def _graph(text: str, weights=None) -> Graph:
    m = parse(text)
    args = m.body.block.first_op.function_type.inputs.data
    rng = np.random.default_rng(0)
    feeds = []
    for special in (False, True):
        feed = {}
        for i, t in enumerate(args):
            shape = tuple(t.get_shape())
            a = (rng.standard_normal(shape) * 3).astype(np.float32)
            if special:
                a.reshape(-1)[: SPECIALS.size] = SPECIALS[: a.size]
            # Inputs hold values of the framework type (what a user's .npz holds).
            feed[f"arg{i}"] = round_to(a, t.element_type).astype(np.float32)
        feeds.append(feed)
    return Graph(m, weights or {}, feeds, [])


def test_exact_cast_chain_through_tf32_folds_to_the_argument(base_dir):
    # bf16 -> f32 -> tf32 -> bf16 is exact at every step: canonicalize-casts folds it to %0
    # (R2 twice, then R1) and the bits must not move; beside a conv reading weights.
    g = _graph(
        """builtin.module attributes {nt.weights = "w.npz"} {
  func.func @main(%0: tensor<8xbf16>) -> (tensor<8xbf16>, tensor<1x2x1x5xf32>) {
    %1 = nt.cast %0 : tensor<8xbf16> to tensor<8xf32>
    %2 = nt.cast %1 : tensor<8xf32> to tensor<8xf16>
    %3 = nt.cast %1 : tensor<8xf32> to tensor<8xf16>
    %4 = nt.reshape %1 : (tensor<8xf32>) -> tensor<1x1x1x8xf32>
    %5 = nt.weight @w0 : tensor<2x1x1x1xf32>
    %6 = nt.weight @w1 : tensor<2xf32>
    %7 = nt.conv %4, %5, %6 {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 0, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x1x1x8xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>) -> tensor<1x2x1x5xf32>
    %8 = nt.cast %1 : tensor<8xf32> to tensor<8xtf32>
    %9 = nt.cast %8 : tensor<8xtf32> to tensor<8xbf16>
    func.return %9, %7 : tensor<8xbf16>, tensor<1x2x1x5xf32>
  }
}
""",
        {
            "w0": np.array([1.5, -0.0], np.float32).reshape(2, 1, 1, 1),
            "w1": np.array([np.inf, 1e-40], np.float32),
        },
    )
    check_graph(g, base_dir)
    from xdsl.context import Context

    from neuron_opt.passes.canonicalize_casts import CanonicalizeCastsPass

    m = g.module.clone()
    CanonicalizeCastsPass().apply(Context(), m)
    ret = m.body.block.first_op.body.block.last_op
    assert ret.operands[0] is m.body.block.first_op.body.block.args[0]


def test_returned_bf16_argument_under_all_tf32(base_dir):
    # all-tf32 retypes the bf16 argument to tf32; preserve-io must give back exactly the
    # input bits (bf16 -> tf32 is exact, so the round trip folds to the argument).
    check_graph(
        _graph("""func.func @main(%0: tensor<3xbf16>, %1: tensor<3xf32>) -> (tensor<3xf32>, tensor<3xbf16>) {
  %2 = nt.cast %1 : tensor<3xf32> to tensor<3xf32>
  %3 = nt.mul %0, %0 : tensor<3xbf16>
  %4 = nt.gelu %0 : tensor<3xbf16>
  %5 = nt.tanh %1 : tensor<3xf32>
  %6 = nt.cast %3 : tensor<3xbf16> to tensor<3xf32>
  func.return %6, %0 : tensor<3xf32>, tensor<3xbf16>
}"""),
        base_dir,
    )


def test_cast_io_lowers_an_argument_used_only_by_casts_to_t(base_dir):
    # Under matmult-bf16 --cast-io, %0's uses (the matmul's operand cast and a user cast to
    # bf16, merged by CSE) are all casts to bf16, and %1's one use is the matmul's: both
    # inputs become bf16 (docs/design.md); the f32 matmul result stays f32.
    g = _graph("""func.func @main(%0: tensor<2x3xf32>, %1: tensor<3x4xf32>) -> (tensor<2x4xf32>, tensor<2x3xbf16>) {
  %2 = nt.matmul %0, %1 : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x4xf32>
  %3 = nt.cast %0 : tensor<2x3xf32> to tensor<2x3xbf16>
  func.return %2, %3 : tensor<2x4xf32>, tensor<2x3xbf16>
}""")
    check_graph(g, base_dir)
    from neuron_opt.passes.pipeline import run_cast_pipeline

    m = run_cast_pipeline(g.module.clone(), "matmult", "bf16", preserve_io=False)
    assert str(m.body.block.first_op.function_type) == (
        "(tensor<2x3xbf16>, tensor<3x4xbf16>) -> (tensor<2x4xf32>, tensor<2x3xbf16>)"
    )

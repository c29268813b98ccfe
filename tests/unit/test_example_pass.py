"""The pass-developer guide's example pass (examples/passes/fold_double_neg.py): registered in
the Universe, run in-process through xDSL's PassPipeline, and checked against the reference
interpreter (the result must not change one bit) and against the IR we expect."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.context import Context
from xdsl.dialects.builtin import Builtin
from xdsl.dialects.func import Func
from xdsl.passes import PassPipeline
from xdsl.universe import Universe

from neuron_opt.dialects import nt
from neuron_opt.dialects.parse import parse_module, verify_module
from neuron_opt.runtime.reference import run_module
from neuron_opt.universe import NEURON_UNIVERSE

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

TEXT = """func.func @main(%x: tensor<64xf32>, %i: tensor<4xi32>) -> (tensor<64xf32>, tensor<64xf32>, tensor<4xi32>) {
  %0 = nt.neg %x : tensor<64xf32>
  %1 = nt.neg %0 : tensor<64xf32>
  %2 = nt.neg %1 : tensor<64xf32>
  %3 = nt.abs %0 : tensor<64xf32>
  %4 = nt.neg %i : tensor<4xi32>
  %5 = nt.neg %4 : tensor<4xi32>
  func.return %2, %3, %5 : tensor<64xf32>, tensor<64xf32>, tensor<4xi32>
}"""


def ctx_and_module():
    ctx = Context()
    for d in (Builtin, Func, nt.NT):
        ctx.load_dialect(d)
    m = parse_module(ctx, TEXT, "t.mlir")
    verify_module(m)
    return ctx, m


def run_pipeline(spec: str, universe: Universe):
    ctx, m = ctx_and_module()
    PassPipeline.parse_spec(universe.all_passes, spec).apply(ctx, m)
    verify_module(m)
    return m


def feeds():
    x = np.random.default_rng(0).standard_normal(64).astype(np.float32)
    x[:8] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -3.4e38, 1e-40]
    i = np.array([0, -1, 2**31 - 1, -(2**31)], np.int32)
    return {"arg0": x, "arg1": i}


def same_bits(a, b):
    return a.dtype == b.dtype and np.array_equal(
        np.ascontiguousarray(a).view(f"u{a.itemsize}"),
        np.ascontiguousarray(b).view(f"u{b.itemsize}"),
    )


@pytest.mark.parametrize("universe", ["in-tree", "own"])
def test_example_pass_runs_in_a_pipeline(universe):
    if universe == "in-tree":
        u = NEURON_UNIVERSE  # the one registration line in neuron_opt/universe.py
    else:
        # What an out-of-tree package does: its own Universe (found through the entry point).
        example = NEURON_UNIVERSE.all_passes["example-fold-double-neg"]()
        mod = __import__(example.__module__)
        u = Universe(all_passes={**NEURON_UNIVERSE.all_passes, **mod.EXAMPLE_UNIVERSE.all_passes})
    m = run_pipeline("example-fold-double-neg", u)
    negs = [op for op in m.walk() if isinstance(op, nt.NegOp)]
    assert len(negs) == 2  # neg^3 -> one neg, whose operand neg stays for abs; integer pair gone
    ret = next(op for op in m.walk() if op.name == "func.return")
    main = next(op for op in m.walk() if op.name == "func.func")
    assert ret.operands[2] is main.body.block.args[1]

    _, orig = ctx_and_module()
    want = run_module(orig, feeds())
    got = run_module(m, feeds())
    for k in want:
        assert same_bits(want[k], got[k]), k
    # The expected values, written out: -x, |x| and the integers back.
    x = feeds()["arg0"]
    assert same_bits(got["out0"], np.negative(x)) and same_bits(got["out2"], feeds()["arg1"])


def test_example_pass_option_and_spec_round_trip():
    m = run_pipeline("example-fold-double-neg{only_float=true}", NEURON_UNIVERSE)
    ints = [op for op in m.walk() if isinstance(op, nt.NegOp) and "i32" in str(op.result.type)]
    assert len(ints) == 2
    p = PassPipeline.parse_spec(
        NEURON_UNIVERSE.all_passes, "example-fold-double-neg{only_float=true}"
    ).passes[0]
    assert str(p.spec()) == "example-fold-double-neg{only_float=true}"
    ctx, m2 = ctx_and_module()
    p.apply(ctx, m2)
    once = str(m2)
    p.apply(ctx, m2)
    assert str(m2) == once  # idempotent

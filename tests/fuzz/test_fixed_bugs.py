"""Minimized reproducers of bugs the fuzzer and the malformed corpus found outside the fuzz
suite, kept as regression tests now that they are fixed (the CLI ones live in the malformed
corpus: huge dims and constants, an implicit module's duplicate symbol, a truncated .npz)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from nt_graphs import Graph
from test_fuzz_lowering import check_lowered
from xdsl.context import Context
from xdsl.dialects.builtin import Builtin, tf32
from xdsl.dialects.func import Func

from neuron_opt.dialects import nt
from neuron_opt.dialects.parse import parse_module, verify_module
from neuron_opt.dialects.types import round_to
from neuron_opt.passes.pipeline import run_cast_pipeline
from neuron_opt.runtime.reference import Reference

CTX = Context()
for _d in (Builtin, Func, nt.NT):
    CTX.load_dialect(_d)
BIN = Path(sys.executable).parent


def parse(text):
    m = parse_module(CTX, text, "t.mlir")
    verify_module(m)
    return m


# dialects/types.py: round_tf32 uses np.ascontiguousarray, which makes a rank-0 array (1,).
def test_round_to_tf32_keeps_rank0():
    assert round_to(np.array(1.0, np.float32), tf32).shape == ()


def test_rank0_under_all_tf32_runs():
    m = run_cast_pipeline(
        parse("""func.func @main(%0: tensor<f32>) -> tensor<f32> {
  %1 = nt.transpose %0 {perm = array<i64>} : tensor<f32>
  func.return %1 : tensor<f32>
}"""),
        "all",
        "tf32",
    )
    out = Reference(m).run({"arg0": np.array(1.0, np.float32)})["out0"]  # "axes don't match array"
    assert out.shape == ()


# passes/preserve_io.py _lower_arguments: lowers an f32 argument whose uses are all casts to
# ONE float type U, for any U; docs/design.md: "retypes an f32 argument to T where every use of it
# is a cast to T". Under matmult-bf16 --cast-io this gives an f16 input.
def test_cast_io_lowers_only_to_the_auto_cast_type():
    m = run_cast_pipeline(
        parse("""func.func @main(%0: tensor<4xf32>) -> tensor<4xf16> {
  %1 = nt.cast %0 : tensor<4xf32> to tensor<4xf16>
  func.return %1 : tensor<4xf16>
}"""),
        "matmult",
        "bf16",
        preserve_io=False,
    )
    assert str(m.body.block.first_op.function_type) == "(tensor<4xf32>) -> tensor<4xf16>"


# dialects/nt.py verifies gather_elements with index dims smaller than the data's off the
# axis (as onnxruntime allows), but the interpreter (np.take_along_axis) cannot run it.
def test_gather_elements_smaller_index_dims_runs():
    m = parse("""func.func @main(%0: tensor<3x4xf32>) -> tensor<1x2xf32> {
  %1 = nt.constant [1, 2] : tensor<1x2xi64>
  %2 = nt.gather_elements %0, %1 {axis = 0 : i64} : (tensor<3x4xf32>, tensor<1x2xi64>) -> tensor<1x2xf32>
  func.return %2 : tensor<1x2xf32>
}""")
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert Reference(m).run({"arg0": x})["out0"].tolist() == [[4.0, 9.0]]


def test_outputs_get_the_umask_mode(tmp_path):
    # cli/common.atomic_output: mkstemp makes 0600 files, so `neuron-opt -o` (and eval/run
    # -o, --json, --trace) outputs are 0600 instead of 0666 & ~umask (save_compiled fixes it
    # for compile only).
    import os

    src = Path(__file__).resolve().parent.parent / "malformed" / "corpus" / "good.mlir"
    subprocess.run([BIN / "neuron-opt", src, "-o", tmp_path / "o.mlir"], check=True, timeout=60)
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "o.mlir").stat().st_mode & 0o777 == 0o666 & ~umask


# canonicalize-casts: removing an identity cast of a weight leaves the weight's other cast as
# its only use, which enables R4; the pass must take it in the same run (idempotence).
def test_canonicalize_casts_refolds_after_a_use_goes():
    from neuron_opt.passes.canonicalize_casts import CanonicalizeCastsPass

    text = """builtin.module attributes {nt.weights = "w.npz"} {
  func.func @main(%0: tensor<1x1xbf16>) -> tensor<1x1xf32> {
    %1 = nt.weight @w0 : tensor<1x1xf32>
    %2 = nt.cast %1 : tensor<1x1xf32> to tensor<1x1xbf16>
    %3 = nt.cast %1 : tensor<1x1xf32> to tensor<1x1xf32>
    %4 = nt.matmul %0, %2 {acc = f32} : (tensor<1x1xbf16>, tensor<1x1xbf16>) -> tensor<1x1xf32>
    func.return %4 : tensor<1x1xf32>
  }
}"""
    once = parse(text)
    CanonicalizeCastsPass().apply(Context(), once)
    twice = parse(str(once))
    CanonicalizeCastsPass().apply(Context(), twice)
    assert str(twice) == str(once)
    assert "nt.weight @w0 : tensor<1x1xbf16>" in str(once)


# Found by the pipeline fuzz in CI. passes/canonicalize_casts.py _cast: a cast it built and
# then found to be an identity (R1) was never inserted but kept its use of x, so x's own dead
# cast survived the dead-cast sweep and a second run removed it (not idempotent).
def test_canonicalize_casts_leaves_no_dead_cast_of_a_chain():
    from neuron_opt.passes.canonicalize_casts import CanonicalizeCastsPass

    m = parse("""func.func @main(%0: tensor<f32>) -> tensor<f32> {
  %1 = nt.cast %0 : tensor<f32> to tensor<tf32>
  %2 = nt.cast %1 : tensor<tf32> to tensor<f32>
  %3 = nt.cast %2 : tensor<f32> to tensor<tf32>
  func.return %0 : tensor<f32>
}""")
    CanonicalizeCastsPass().apply(Context(), m)
    assert "nt.cast" not in str(m), str(m)


# Found by test_fuzz_lowering.py. lowering/lowerer.py operand(): an operand of lower rank that
# broadcasts as a whole tile was loaded at the output's split, not its own (one element of two).
def test_lower_rank_full_operand_loads_every_element(tmp_path):
    m = parse("""func.func @main(%0: tensor<2xf32>) -> tensor<1x2xf32> {
  %1 = nt.constant 0.25146043 : tensor<1x1xf32>
  %2 = nt.add %1, %0 : (tensor<1x1xf32>, tensor<2xf32>) -> tensor<1x2xf32>
  func.return %2 : tensor<1x2xf32>
}""")
    check_lowered(
        Graph(m, {}, [{"arg0": np.array([1.5, -2.0], np.float32)}], []), "none", "bf16", tmp_path
    )


# Found by test_fuzz_lowering.py: rank-0 values gave an invalid `tensor<xf32>` HBM declaration or
# an IndexError. A rank-0 value is now one element (its HBM tensor rank 0, accessed as @x[0]):
# unused arguments, results and constants stored to HBM lower and match.
def test_rank0_values_lower_and_match(tmp_path):
    feed = {"arg0": np.array([0.5], np.float32), "arg1": np.array(2.0, np.float32)}
    for text in (
        """func.func @main(%0: tensor<1xf32>, %1: tensor<f32>) -> tensor<1xf32> {
  %2 = nt.exp %0 : tensor<1xf32>
  func.return %2 : tensor<1xf32>
}""",
        """func.func @main(%0: tensor<1xf32>, %1: tensor<f32>) -> (tensor<1xf32>, tensor<f32>, tensor<f32>) {
  %2 = nt.constant 0.25 : tensor<f32>
  %3 = nt.mul %1, %2 : tensor<f32>
  func.return %0, %2, %3 : tensor<1xf32>, tensor<f32>, tensor<f32>
}""",
        """func.func @main(%0: tensor<1xf32>, %1: tensor<f32>) -> (tensor<1xf32>, tensor<1xf32>) {
  %2 = nt.constant 0.25 : tensor<f32>
  %3 = nt.reshape %2 : (tensor<f32>) -> tensor<1xf32>
  func.return %0, %3 : tensor<1xf32>, tensor<1xf32>
}""",
    ):
        labels = check_lowered(Graph(parse(text), {}, [feed], []), "none", "bf16", tmp_path)
        assert "lowered nt.exp" in labels or "lowered nt.constant" in labels


# Found by test_fuzz_lowering.py. lowering/lowerer.py lower_group: a row-wise op over axis 0
# (tiled [1, rows]) was kept resident as if in the [rows, last dim] view; its next reader
# copied one element of two and read uninitialized SBUF.
def test_rowwise_over_another_axis_is_not_resident(tmp_path):
    m = parse("""func.func @main(%0: tensor<2x1xf32>) -> (tensor<2x1xf32>, tensor<2x1xf32>) {
  %1 = nt.constant 0.25146043 : tensor<f32>
  %2 = nt.rms_norm %0, %1 {axis = 0 : i64, epsilon = 1.000000e-05 : f64} : (tensor<2x1xf32>, tensor<f32>) -> tensor<2x1xf32>
  %3 = nt.exp %2 : tensor<2x1xf32>
  %4 = nt.tanh %2 : tensor<2x1xf32>
  func.return %3, %4 : tensor<2x1xf32>, tensor<2x1xf32>
}""")
    check_lowered(
        Graph(m, {}, [{"arg0": np.array([[0.5], [-1.0]], np.float32)}], []),
        "none",
        "bf16",
        tmp_path,
    )


# Found by test_fuzz_lowering.py. lowering/plan.py plan_transposed: a matmul result used as both
# operands of the next contraction (x @ x^T) was computed transposed for its left use and then
# read as stored for its right one (one element of two copied, an uninitialized SBUF read).
def test_a_result_used_as_both_contraction_operands_is_not_transposed(tmp_path):
    m = parse("""func.func @main(%0: tensor<2x3xf32>) -> tensor<2x2xf32> {
  %1 = nt.constant [0.5, -1.0, 2.0, 0.25, 1.5, -0.75] : tensor<3x2xf32>
  %2 = nt.matmul %0, %1 : (tensor<2x3xf32>, tensor<3x2xf32>) -> tensor<2x2xf32>
  %3 = nt.linear %2, %2 {trans_b} : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
  func.return %3 : tensor<2x2xf32>
}""")
    x = np.array([[1.0, 2.0, -3.0], [0.5, -1.5, 4.0]], np.float32)
    check_lowered(Graph(m, {}, [{"arg0": x}], []), "none", "bf16", tmp_path)


# Found by make fuzz. lowering/lowerer.py row_broadcast: a row broadcast across partitions by a
# TensorE ones matmul turned -0 into +0 (the accumulator starts at +0), so rsqrt(max(x, -0))
# gave +inf for x = -0. Rows now go across by DMA (bit copies).
def test_a_partition_broadcast_keeps_negative_zero(tmp_path):
    m = parse("""func.func @main(%0: tensor<2x2xf32>, %1: tensor<3x6xf32>, %2: tensor<6xf32>) -> (tensor<2x2xf32>, tensor<3x6xf32>) {
  %3 = nt.constant [-0.0, -1.5] : tensor<2xtf32>
  %4 = nt.cast %0 : tensor<2x2xf32> to tensor<2x2xtf32>
  %5 = nt.max %4, %3 : (tensor<2x2xtf32>, tensor<2xtf32>) -> tensor<2x2xtf32>
  %6 = nt.cast %5 : tensor<2x2xtf32> to tensor<2x2xf32>
  %7 = nt.rsqrt %6 : tensor<2x2xf32>
  %8 = nt.div %1, %2 : (tensor<3x6xf32>, tensor<6xf32>) -> tensor<3x6xf32>
  func.return %7, %8 : tensor<2x2xf32>, tensor<3x6xf32>
}""")
    feed = {
        "arg0": np.array([[-0.0, 1.0], [0.0, 4.0]], np.float32),
        "arg1": np.array([[1.0, -2.0, 3.0, 0.5, -0.0, 2.0]] * 3, np.float32),
        "arg2": np.array([-0.0, 0.0, -1e-45, np.nan, -np.inf, 3.0], np.float32),
    }
    for option in (("none", "bf16"), ("all", "bf16"), ("all", "fp16"), ("all", "fp8_e4m3")):
        check_lowered(Graph(m, {}, [feed], []), *option, tmp_path)


# Found by test_fuzz_lowering.py (not a lowering bug): with values near the float32 maximum a
# matmul's result depends on the summation order (inf in the simulator's order, NaN in
# numpy's: -max + -max overflows before + inf in one of them). docs/design.md allows order
# differences, so such runs are not compared; clean data on the same graph still must match.
def test_order_sensitive_runs_are_skipped_and_clean_runs_compared(tmp_path):
    from test_fuzz_lowering import _order_sensitive

    m = parse("""func.func @main(%0: tensor<2x8xf32>) -> tensor<2x1xf32> {
  %1 = nt.constant [-0.0, -inf, -3.4028235e+38, 1.0, -1.0e-45, -0.0, -3.4028235e+38, 3.4028235e+38] : tensor<8x1xf32>
  %2 = nt.matmul %0, %1 : (tensor<2x8xf32>, tensor<8x1xf32>) -> tensor<2x1xf32>
  func.return %2 : tensor<2x1xf32>
}""")
    x = np.array(
        [[-4.98, -16.3, 1.0, 10.06, 9.65, 3.49, 1.0, 1.2e-38], [1, 2, 3, 4, 5, 6, 7, 8]], np.float32
    )
    g = Graph(m, {}, [{"arg0": x}], [])
    assert _order_sensitive(m, g, {"arg0": x})
    assert "order-sensitive run skipped" in check_lowered(g, "none", "bf16", tmp_path)
    clean = parse("""func.func @main(%0: tensor<2x8xf32>) -> tensor<2x1xf32> {
  %1 = nt.constant [-0.0, -inf, -3.5, 1.0, -1.0e-45, -0.0, 2.0, 0.5] : tensor<8x1xf32>
  %2 = nt.matmul %0, %1 : (tensor<2x8xf32>, tensor<8x1xf32>) -> tensor<2x1xf32>
  func.return %2 : tensor<2x1xf32>
}""")
    labels = check_lowered(Graph(clean, {}, [{"arg0": x}], []), "none", "bf16", tmp_path)
    assert "order-sensitive run skipped" not in labels and "lowered nt.matmul" in labels


# Found by test_fuzz_lowering.py: a norm over more than the last axis whose scale broadcasts
# along only some of the normalized dims, and an elementwise operand fused with such a norm,
# fit no matrix split of the group ("operand broadcast pattern has no tiling"); such operands
# are now broadcast in HBM once and tiled like full ones.
def test_operands_no_split_fits_are_broadcast_in_hbm(tmp_path):
    m = parse("""func.func @main(%0: tensor<8x2xf32>, %1: tensor<8x1xf32>, %2: tensor<4x2x2xf32>, %3: tensor<2xf32>) -> (tensor<8x2xf32>, tensor<4x2x2xi1>) {
  %4 = nt.rms_norm %0, %1 {axis = -2 : i64, epsilon = 1.000000e-05 : f64} : (tensor<8x2xf32>, tensor<8x1xf32>) -> tensor<8x2xf32>
  %5 = nt.rms_norm %2, %3 {axis = 1 : i64, epsilon = 1.000000e-05 : f64} : (tensor<4x2x2xf32>, tensor<2xf32>) -> tensor<4x2x2xf32>
  %6 = nt.cmp %3, %5 {predicate = "ge"} : (tensor<2xf32>, tensor<4x2x2xf32>) -> tensor<4x2x2xi1>
  func.return %4, %6 : tensor<8x2xf32>, tensor<4x2x2xi1>
}""")
    rng = np.random.default_rng(1)
    feed = {
        f"arg{i}": rng.standard_normal(s).astype(np.float32)
        for i, s in enumerate([(8, 2), (8, 1), (4, 2, 2), (2,)])
    }
    labels = check_lowered(Graph(m, {}, [feed], []), "none", "bf16", tmp_path)
    assert "lowered nt.rms_norm" in labels

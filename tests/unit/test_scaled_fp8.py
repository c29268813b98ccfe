"""Scaled fp8: nt.scaled_cast and the contractions' unscale against an independent float64
oracle; the simulator against the interpreter (bits); canonicalize-casts with scales present
(bits); plan rules with amax values; `neuron-cc calibrate`."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from testlib import EXAMPLES, example_inputs, rel_l2, run_neuron_cc, same_bits
from xdsl.context import Context

from neuron_opt.cli.common import make_context
from neuron_opt.diagnostics import CompileError
from neuron_opt.dialects import nt
from neuron_opt.dialects.parse import parse_module, verify_module
from neuron_opt.lowering.lower_to_nisa import lower_module
from neuron_opt.passes.auto_cast import AutoCastPass
from neuron_opt.passes.canonicalize_casts import CanonicalizeCastsPass
from neuron_opt.passes.precision_plan import fp8_scale, load_plan
from neuron_opt.runtime.reference import Reference
from neuron_opt.runtime.sim import simulate

FP8 = ml_dtypes.float8_e4m3
RNG = np.random.default_rng(22)


def parse(text: str):
    m = parse_module(make_context(), text, "scaled.mlir")
    verify_module(m)
    return m


def fp8_oracle(x: np.ndarray, s: np.ndarray) -> np.ndarray:
    """E4M3 of x * s, written independently: the product in float64 (exact for a power of
    two), clamped to +-240 (saturation; NaN stays), one RNE rounding by ml_dtypes."""
    y = x.astype(np.float64) * s
    return np.clip(y, -240.0, 240.0).astype(FP8).astype(np.float64)


SCALED_MATMUL = """
builtin.module {
  func.func @main(%x: tensor<24x40xf32>, %w: tensor<40x6xf32>, %b: tensor<6xf32>) -> (tensor<24x6xf32>, tensor<24x6xf32>) {
    %x8 = nt.scaled_cast %x {scale = array<f32: 32768.0>} : tensor<24x40xf32> to tensor<24x40xf8E4M3>
    %w8 = nt.scaled_cast %w {scale = array<f32: 256.0, 512.0, 128.0, 256.0, 1024.0, 64.0>, axis = 1 : i64} : tensor<40x6xf32> to tensor<40x6xf8E4M3>
    %y = nt.matmul %x8, %w8 {acc = f32, unscale = array<f32: 1.1920929e-07, 5.96046448e-08, 2.38418579e-07, 1.1920929e-07, 2.98023224e-08, 4.76837158e-07>} : (tensor<24x40xf8E4M3>, tensor<40x6xf8E4M3>) -> tensor<24x6xf32>
    %wt = nt.transpose %w {perm = array<i64: 1, 0>} : (tensor<40x6xf32>) -> tensor<6x40xf32>
    %wt8 = nt.scaled_cast %wt {scale = array<f32: 256.0>} : tensor<6x40xf32> to tensor<6x40xf8E4M3>
    %z = nt.linear %x8, %wt8, %b {trans_b, acc = f32, unscale = array<f32: 1.1920929e-07>} : (tensor<24x40xf8E4M3>, tensor<6x40xf8E4M3>, tensor<6xf32>) -> tensor<24x6xf32>
    func.return %y, %z : tensor<24x6xf32>, tensor<24x6xf32>
  }
}
"""
W_SCALES = np.array([256.0, 512.0, 128.0, 256.0, 1024.0, 64.0])


def small_inputs():
    x = (1e-3 * RNG.standard_normal((24, 40))).astype(np.float32)
    x[0, :4] = [np.float32(0.01), -np.float32(0.02), 0.0, -0.0]  # beyond 240 once scaled: saturates
    w = (0.2 * RNG.standard_normal((40, 6))).astype(np.float32)
    return {"arg0": x, "arg1": w, "arg2": (0.01 * RNG.standard_normal(6)).astype(np.float32)}


def test_scaled_matmul_matches_a_float64_oracle():
    feeds = small_inputs()
    x, w, b = feeds["arg0"], feeds["arg1"], feeds["arg2"]
    y, z = Reference(parse(SCALED_MATMUL)).run(feeds).values()
    xq, wq = fp8_oracle(x, 32768.0), fp8_oracle(w, W_SCALES)
    assert np.abs(xq).max() == 240.0  # the saturating values did saturate
    want_y = (xq @ wq) / (32768.0 * W_SCALES)
    want_z = (xq @ fp8_oracle(w, 256.0)) / (32768.0 * 256.0) + b
    # fp32 accumulation against float64: summation order only
    assert rel_l2(y, want_y) < 1e-6 and rel_l2(z, want_z) < 1e-6
    # and, past the saturated row, far closer to fp32 than plain fp8 of the small values
    exact = x.astype(np.float64)[1:] @ w
    plain = fp8_oracle(x, 1.0)[1:] @ fp8_oracle(w, 1.0)
    assert rel_l2(y[1:], exact) < 0.1 < rel_l2(plain, exact)


def test_scaled_cast_alone_is_bit_exact_including_specials():
    m = parse("""
builtin.module {
  func.func @main(%x: tensor<2x8xf32>) -> tensor<2x8xf8E4M3> {
    %y = nt.scaled_cast %x {scale = array<f32: 4.0, 0.5>, axis = 0 : i64} : tensor<2x8xf32> to tensor<2x8xf8E4M3>
    func.return %y : tensor<2x8xf8E4M3>
  }
}""")
    x = np.array(
        [
            [0.0, -0.0, 59.0, 61.9, 1e30, -np.inf, np.nan, 3e-3],
            [480.0, 496.0, 1e-3, -1e-3, 3.0, np.inf, 2**-10, -7.7],
        ],
        np.float32,
    )
    (got,) = Reference(m).run({"arg0": x}).values()
    want = fp8_oracle(x, np.array([[4.0], [0.5]]))
    assert same_bits(got, want.astype(FP8))


def test_simulator_matches_the_interpreter_bit_for_bit_on_scaled_matmul_and_linear():
    m = parse(SCALED_MATMUL)
    feeds = small_inputs()
    ref = Reference(m).run(feeds)
    sim = simulate(lower_module(m), feeds, {}).outputs
    for k in ref:
        assert same_bits(sim[k], ref[k]), k


def test_simulator_matches_the_interpreter_on_scaled_conv_weights_scaled_as_they_load():
    m = parse("""
builtin.module attributes {nt.weights = "w.npz"} {
  func.func @main(%x: tensor<2x3x9x9xf32>, %b: tensor<5xf32>) -> tensor<2x5x9x9xf32> {
    %w = nt.weight @w : tensor<5x3x3x3xf32>
    %x8 = nt.scaled_cast %x {scale = array<f32: 65536.0>} : tensor<2x3x9x9xf32> to tensor<2x3x9x9xf8E4M3>
    %w8 = nt.scaled_cast %w {scale = array<f32: 512.0, 256.0, 512.0, 1024.0, 256.0>, axis = 0 : i64} : tensor<5x3x3x3xf32> to tensor<5x3x3x3xf8E4M3>
    %y = nt.conv %x8, %w8, %b {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64, acc = f32, unscale = array<f32: 2.98023224e-08, 5.96046448e-08, 2.98023224e-08, 1.49011612e-08, 5.96046448e-08>} : (tensor<2x3x9x9xf8E4M3>, tensor<5x3x3x3xf8E4M3>, tensor<5xf32>) -> tensor<2x5x9x9xf32>
    func.return %y : tensor<2x5x9x9xf32>
  }
}""")
    weights = {"w": (0.2 * RNG.standard_normal((5, 3, 3, 3))).astype(np.float32)}
    feeds = {
        "arg0": (1e-3 * RNG.standard_normal((2, 3, 9, 9))).astype(np.float32),
        "arg1": (1e-3 * RNG.standard_normal(5)).astype(np.float32),
    }
    ref = Reference(m, weights).run(feeds)
    kernel = lower_module(m)
    assert "scale = array<f32:" in str(kernel)  # the weight's scaled load, not an on-chip pass
    sim = simulate(kernel, feeds, weights).outputs
    # The scales are exact; the conv sums its taps in another fp32 order than the interpreter
    # (its result is f32: a reordering is all that can differ).
    assert rel_l2(sim["out0"], ref["out0"]) < 1e-6


def test_canonicalize_casts_leaves_scaled_casts_and_changes_no_bit():
    text = """
builtin.module {
  func.func @main(%x: tensor<8x16xf32>, %w: tensor<16x4xf32>) -> tensor<8x4xf32> {
    %h = nt.cast %x : tensor<8x16xf32> to tensor<8x16xbf16>
    %t = nt.transpose %h {perm = array<i64: 1, 0>} : (tensor<8x16xbf16>) -> tensor<16x8xbf16>
    %u = nt.transpose %t {perm = array<i64: 1, 0>} : (tensor<16x8xbf16>) -> tensor<8x16xbf16>
    %x8 = nt.scaled_cast %u {scale = array<f32: 64.0>} : tensor<8x16xbf16> to tensor<8x16xf8E4M3>
    %e = nt.cast %x8 : tensor<8x16xf8E4M3> to tensor<8x16xf32>
    %x8b = nt.scaled_cast %e {scale = array<f32: 0.5>} : tensor<8x16xf32> to tensor<8x16xf8E4M3>
    %w8 = nt.cast %w {saturate} : tensor<16x4xf32> to tensor<16x4xf8E4M3>
    %y = nt.matmul %x8b, %w8 {acc = f32, unscale = array<f32: 0.03125>} : (tensor<8x16xf8E4M3>, tensor<16x4xf8E4M3>) -> tensor<8x4xf32>
    %r = nt.cast %y : tensor<8x4xf32> to tensor<8x4xbf16>
    %s = nt.cast %r : tensor<8x4xbf16> to tensor<8x4xf32>
    func.return %s : tensor<8x4xf32>
  }
}"""
    before, after = parse(text), parse(text)
    CanonicalizeCastsPass().apply(Context(), after)
    verify_module(after)
    scaled = lambda m: [str(op) for op in m.walk() if isinstance(op, nt.ScaledCastOp)]  # noqa: E731
    assert scaled(after) == scaled(before)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, 3.4e38, -5.0], np.float32)
    for seed in range(20):
        rng = np.random.default_rng(seed)
        x = (rng.standard_normal((8, 16)) * 10.0 ** rng.integers(-4, 3)).astype(np.float32)
        x.reshape(-1)[:8] = specials
        feeds = {"arg0": x, "arg1": rng.standard_normal((16, 4)).astype(np.float32)}
        assert same_bits(Reference(after).run(feeds)["out0"], Reference(before).run(feeds)["out0"])


@pytest.mark.parametrize(
    "amax,margin,scale",
    [
        (1e-3, 1.0, 2.0**17),
        (240.0, 1.0, 1.0),
        (241.0, 1.0, 0.5),
        (0.0, 1.0, 1.0),
        (1.0, 2.0, 64.0),
        (1e-30, 1.0, 2.0**62),
    ],
)
def test_fp8_scale_is_the_largest_power_of_two_within_range(amax, margin, scale):
    assert fp8_scale(amax, margin) == scale
    assert amax * margin * scale <= 240.0 or scale == 2.0**62


PLAN_MODULE = """
builtin.module {
  func.func @main(%x: tensor<4x8xf32>, %w: tensor<8x3xf32>) -> tensor<4x3xf32> {
    %y = nt.matmul %x, %w : (tensor<4x8xf32>, tensor<8x3xf32>) -> tensor<4x3xf32>
    func.return %y : tensor<4x3xf32>
  }
}"""


@pytest.mark.parametrize("mode", ["matmult", "all", "none"])
def test_a_rule_with_amax_scales_operands_and_is_idempotent(tmp_path, mode):
    plan = tmp_path / "p.toml"
    plan.write_text(
        '[[rule]]\nnt_op = "matmul"\nprecision = "fp8_e4m3"\ninput_amax = 0.001\n'
        "weight_amax = [1.0, 0.25, 3.0]\n"
    )
    m = parse(PLAN_MODULE)
    p = AutoCastPass(mode=mode, type="bf16", plan=str(plan))
    p.apply(Context(), m)
    verify_module(m)
    once = str(m)
    (mm,) = [op for op in m.walk() if isinstance(op, nt.MatmulOp)]
    x8, w8 = mm.operands[0].owner, mm.operands[1].owner
    assert isinstance(x8, nt.ScaledCastOp) and x8.prop("scale") == [2.0**17]
    assert (
        isinstance(w8, nt.ScaledCastOp)
        and w8.prop("scale") == [128.0, 512.0, 64.0]
        and w8.prop("axis") == 1
    )
    assert mm.prop("unscale") == [2.0**-24, 2.0**-26, 2.0**-23]
    p.apply(Context(), m)
    assert str(m) == once


@pytest.mark.parametrize(
    "text,where,message",
    [
        (
            "[[rule]]\nnt_op = 'matmul'\nprecision = 'bf16'\ninput_amax = 1.0\n",
            ":4:",
            'input_amax applies to precision "fp8_e4m3" only',
        ),
        (
            "[[rule]]\nnt_op = 'matmul'\nprecision = 'fp8_e4m3'\ninput_amax = -1.0\n",
            ":4:",
            "input_amax must be a finite number >= 0",
        ),
        (
            "[[rule]]\nnt_op = 'matmul'\nprecision = 'fp8_e4m3'\nweight_amax = [1.0, 'a']\n",
            ":4:",
            "weight_amax must be a number >= 0 or a non-empty list",
        ),
        (
            "[[rule]]\nnt_op = 'matmul'\nprecision = 'fp8_e4m3'\nmargin = 2.0\n",
            ":4:",
            "margin needs input_amax or weight_amax",
        ),
        (
            "[[rule]]\nnt_op = 'matmul'\nprecision = 'fp8_e4m3'\ninput_amax = 1.0\nmargin = 0\n",
            ":5:",
            "margin must be a positive number",
        ),
    ],
)
def test_bad_scale_keys_are_one_located_error(tmp_path, text, where, message):
    p = tmp_path / "plan.toml"
    p.write_text(text)
    with pytest.raises(CompileError) as e:
        load_plan(str(p))
    assert where in str(e.value) and message in str(e.value)


def test_weight_amax_of_the_wrong_length_names_the_rule(tmp_path):
    plan = tmp_path / "p.toml"
    plan.write_text(
        '[[rule]]\nnt_op = "matmul"\nprecision = "fp8_e4m3"\nweight_amax = [1.0, 2.0]\n'
    )
    with pytest.raises(
        CompileError, match=r"p.toml:1: error: rule 1: weight_amax has 2 values, nt.matmul has 3"
    ):
        AutoCastPass(mode="matmult", plan=str(plan)).apply(Context(), parse(PLAN_MODULE))


def test_calibrate_writes_a_plan_that_fixes_small_values(tmp_path, capsys):
    model = EXAMPLES / "small_values.onnx"
    plan = tmp_path / "plan.toml"
    code, out, err = run_neuron_cc(
        ["calibrate", model, "--inputs", EXAMPLES / "small_values_inputs.npz", "-o", plan], capsys
    )
    assert code == 0 and out == "" and err == ""
    (rule,) = load_plan(str(plan)).rules
    x = example_inputs("small_values")["x"]
    assert rule.node == ("/mm/MatMul",) and rule.input_amax == float(np.abs(x).max())
    assert isinstance(rule.weight_amax, tuple) and len(rule.weight_amax) == 64
    held = EXAMPLES / "small_values_heldout_inputs.npz"
    errs = {}
    for name, opts in {
        "plain": ["--auto-cast-type", "fp8_e4m3"],
        "scaled": ["--precision-plan", plan],
    }.items():
        js = tmp_path / f"{name}.json"
        code, _, _ = run_neuron_cc(["eval", model, "--inputs", held, *opts, "--json", js], capsys)
        assert code == 0
        import json

        errs[name] = json.loads(js.read_text())["outputs"]["y"]
    # held-out inputs: plain fp8 loses most of the small products, calibrated scales keep them
    assert errs["scaled"]["vs_fp32"]["rel_l2"] < 0.1 < 0.5 < errs["plain"]["vs_fp32"]["rel_l2"]
    assert errs["scaled"]["underflowed"] == 0 < errs["plain"]["underflowed"]
    code, out, _ = run_neuron_cc(
        [
            "calibrate",
            model,
            "--inputs",
            EXAMPLES / "small_values_inputs.npz",
            held,
            "--margin",
            "2",
            "-o",
            "-",
        ],
        capsys,
    )
    assert code == 0 and "margin = 2.0" in out and 'node = "/mm/MatMul"' in out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--inputs", "missing.npz"], "missing.npz: error:"),
        (["--inputs", EXAMPLES / "mlp_inputs.npz"], "error:"),
        (
            ["--inputs", EXAMPLES / "small_values_inputs.npz", "--margin", "-1"],
            "--margin must be a positive number",
        ),
    ],
)
def test_calibrate_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "plan.toml"
    code, _, err = run_neuron_cc(
        ["calibrate", EXAMPLES / "small_values.onnx", *argv, "-o", out], capsys
    )
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_run_and_explain_take_a_calibrated_plan(tmp_path, capsys):
    import json

    model, calib = EXAMPLES / "small_values.onnx", EXAMPLES / "small_values_inputs.npz"
    held = EXAMPLES / "small_values_heldout_inputs.npz"
    plan = tmp_path / "plan.toml"
    assert run_neuron_cc(["calibrate", model, "--inputs", calib, "-o", plan], capsys)[0] == 0
    js = tmp_path / "run.json"
    assert (
        run_neuron_cc(
            ["run", model, "--inputs", held, "--precision-plan", plan, "--json", js], capsys
        )[0]
        == 0
    )
    y = json.loads(js.read_text())["outputs"]["y"]
    # the simulator's K tiles sum in another fp32 order: a reordering is all that differs
    assert y["vs_interpreter"]["rel_l2"] < 1e-6 and y["vs_fp32"]["rel_l2"] < 0.1
    explained = {}
    for name, opts in {
        "plain": ["--auto-cast-type", "fp8_e4m3"],
        "scaled": ["--precision-plan", plan],
    }.items():
        ej = tmp_path / f"{name}.json"
        assert (
            run_neuron_cc(["explain", model, "--inputs", held, *opts, "--json", ej], capsys)[0] == 0
        )
        (row,) = json.loads(ej.read_text())["ops"]
        explained[name] = row
    # the matmul's own error: plain fp8 flushes small products away, scaled fp8 keeps them
    assert explained["scaled"]["own"]["rel_l2"] < 0.1 < explained["plain"]["own"]["rel_l2"]
    assert explained["plain"]["flushed_to_zero"] > 0 == explained["scaled"]["flushed_to_zero"]

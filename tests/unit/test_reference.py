"""The reference interpreter against independent oracles: float64 numpy/scipy written here,
hand-computed special values, and onnxruntime on single-node models. Never against itself."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
import scipy.special
from xdsl.context import Context
from xdsl.dialects.builtin import Builtin
from xdsl.dialects.func import Func

from neuron_opt.diagnostics import CompileError
from neuron_opt.dialects.nt import NT
from neuron_opt.dialects.parse import parse_module, verify_module
from neuron_opt.runtime.reference import run_module

CTX = Context()
for d in (Builtin, Func, NT):
    CTX.load_dialect(d)

RNG = np.random.default_rng(1234)
BF16, FP8 = ml_dtypes.bfloat16, ml_dtypes.float8_e4m3
NP_OF = {"f32": np.float32, "tf32": np.float32, "bf16": BF16, "f16": np.float16, "f8E4M3": FP8}


def T(shape, elt="f32") -> str:
    return f"tensor<{'x'.join(map(str, shape))}{'x' if shape else ''}{elt}>"


def build(line: str, args: list[str], result: str, attrs: str = ""):
    sig = ", ".join(f"%a{i}: {t}" for i, t in enumerate(args))
    mod_attrs = f" attributes {{{attrs}}}" if attrs else ""
    text = (
        f"builtin.module{mod_attrs} {{\n  func.func @main({sig}) -> {result} {{\n"
        f"    %r = {line}\n    func.return %r : {result}\n  }}\n}}\n"
    )
    m = parse_module(CTX, text, "t.mlir")
    verify_module(m)
    return m


def run1(line, args, result, *inputs, attrs="", base_dir=None):
    m = build(line, args, result, attrs)
    return run_module(m, {f"arg{i}": v for i, v in enumerate(inputs)}, base_dir=base_dir)["out0"]


def rel_l2(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def bits(a) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a.view(f"u{a.dtype.itemsize}")


def tf32_oracle(x64: np.ndarray) -> np.ndarray:
    """RNE to 10 mantissa bits, written independently: scale by the binade, np.round is
    half-to-even."""
    x64 = np.asarray(x64, np.float64)
    e = np.floor(np.log2(np.abs(np.where(x64 == 0, 1, x64))))
    q = np.exp2(e - 10)
    return (np.round(x64 / q) * q).astype(np.float32)


def round_oracle(x64, elt):
    if elt == "tf32":
        return tf32_oracle(x64)
    return np.asarray(x64, np.float64).astype(NP_OF[elt])


def rand(shape, lo=-2.0, hi=2.0):
    return RNG.uniform(lo, hi, shape).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Contractions


def test_matmul_f32_accumulates_in_f32():
    a, b = rand((16, 64)), rand((64, 8))
    y = run1(
        f"nt.matmul %a0, %a1 : ({T((16, 64))}, {T((64, 8))}) -> {T((16, 8))}",
        [T((16, 64)), T((64, 8))],
        T((16, 8)),
        a,
        b,
    )
    assert y.dtype == np.float32
    assert rel_l2(y, a.astype(np.float64) @ b) < 1e-6


@pytest.mark.parametrize("elt", ["bf16", "f16", "f8E4M3", "tf32"])
def test_matmul_low_precision_inputs_f32_result(elt):
    a, b = rand((8, 32)), rand((32, 4))
    y = run1(
        f"nt.matmul %a0, %a1 : ({T((8, 32), elt)}, {T((32, 4), elt)}) -> {T((8, 4))}",
        [T((8, 32), elt), T((32, 4), elt)],
        T((8, 4)),
        a,
        b,
    )
    # Inputs are rounded on entry; the products of rounded inputs are summed in f32.
    ra, rb = (round_oracle(v.astype(np.float64), elt).astype(np.float64) for v in (a, b))
    assert rel_l2(y, ra @ rb) < 1e-6
    assert rel_l2(ra @ rb, a.astype(np.float64) @ b) > 1e-5  # the rounding was real


def test_batch_matmul_broadcasts_batch_dims():
    a, b = rand((2, 3, 4, 5)), rand((3, 5, 6))
    y = run1(
        f"nt.batch_matmul %a0, %a1 : ({T((2, 3, 4, 5))}, {T((3, 5, 6))}) -> {T((2, 3, 4, 6))}",
        [T((2, 3, 4, 5)), T((3, 5, 6))],
        T((2, 3, 4, 6)),
        a,
        b,
    )
    assert rel_l2(y, np.einsum("abij,bjk->abik", a.astype(np.float64), b)) < 1e-6


def test_linear_trans_b_with_bias_rounds_once():
    x, w, bias = rand((4, 16)), rand((8, 16)), rand((8,))
    y = run1(
        f"nt.linear %a0, %a1, %a2 {{trans_b}} : ({T((4, 16), 'bf16')}, {T((8, 16), 'bf16')}, "
        f"{T((8,))}) -> {T((4, 8))}",
        [T((4, 16), "bf16"), T((8, 16), "bf16"), T((8,))],
        T((4, 8)),
        x,
        w,
        bias,
    )
    ref = x.astype(BF16).astype(np.float64) @ w.astype(BF16).astype(np.float64).T + bias
    assert rel_l2(y, ref) < 1e-6


def _onnx_run(node, inputs: dict, out_shape, opset=18):
    """One ONNX node through onnxruntime (float32 I/O)."""

    import onnxruntime as ort
    from onnx import TensorProto, helper

    ins = [helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape) for k, v in inputs.items()]
    out = helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, out_shape)
    graph = helper.make_graph([node], "g", ins, [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, inputs)[0]


@pytest.mark.parametrize(
    "groups,strides,pads,dilations",
    [
        (1, [1, 1], [0, 0, 0, 0], [1, 1]),
        (2, [2, 1], [1, 2, 0, 1], [1, 2]),
        (4, [1, 2], [1, 1, 1, 1], [2, 1]),
    ],
)
def test_conv_against_onnxruntime(groups, strides, pads, dilations):
    from onnx import helper

    x, w, b = rand((2, 4, 9, 10)), rand((8, 4 // groups, 3, 3)), rand((8,))
    node = helper.make_node(
        "Conv",
        ["x", "w", "b"],
        ["y"],
        group=groups,
        strides=strides,
        pads=pads,
        dilations=dilations,
    )
    ref = _onnx_run(node, {"x": x, "w": w, "b": b}, None)
    props = (
        f"{{strides = array<i64: {', '.join(map(str, strides))}>, pads = array<i64: "
        f"{', '.join(map(str, pads))}>, dilations = array<i64: {', '.join(map(str, dilations))}>, "
        f"groups = {groups} : i64}}"
    )
    y = run1(
        f"nt.conv %a0, %a1, %a2 {props} : ({T(x.shape)}, {T(w.shape)}, {T((8,))}) -> "
        f"{T(ref.shape)}",
        [T(x.shape), T(w.shape), T((8,))],
        T(ref.shape),
        x,
        w,
        b,
    )
    assert y.shape == ref.shape
    assert rel_l2(y, ref) < 1e-6


# ---------------------------------------------------------------------------------------------
# Pooling against onnxruntime


def _pool_props(kernel, strides, pads, dilations=None, ceil=False, extra=""):
    arr = lambda v: f"array<i64: {', '.join(map(str, v))}>"  # noqa: E731
    p = f"kernel = {arr(kernel)}, strides = {arr(strides)}, pads = {arr(pads)}"
    if dilations:
        p += f", dilations = {arr(dilations)}"
    if ceil:
        p += ", ceil_mode"
    return "{" + p + extra + "}"


@pytest.mark.parametrize("ceil,dil", [(False, [1, 1]), (True, [1, 1]), (True, [2, 1])])
def test_max_pool_against_onnxruntime(ceil, dil):
    from onnx import helper

    x = rand((1, 3, 10, 11))
    kw = dict(
        kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 1, 1], ceil_mode=int(ceil), dilations=dil
    )
    ref = _onnx_run(helper.make_node("MaxPool", ["x"], ["y"], **kw), {"x": x}, None)
    props = _pool_props([3, 2], [2, 2], [1, 0, 1, 1], dil, ceil)
    y = run1(
        f"nt.max_pool %a0 {props} : ({T(x.shape)}) -> {T(ref.shape)}", [T(x.shape)], T(ref.shape), x
    )
    np.testing.assert_array_equal(y, ref)


@pytest.mark.parametrize(
    "ceil,include", [(False, False), (False, True), (True, False), (True, True)]
)
def test_avg_pool_against_onnxruntime(ceil, include):
    from onnx import helper

    x = rand((2, 2, 7, 8))
    kw = dict(
        kernel_shape=[3, 3],
        strides=[2, 2],
        pads=[1, 1, 1, 0],
        ceil_mode=int(ceil),
        count_include_pad=int(include),
    )
    ref = _onnx_run(helper.make_node("AveragePool", ["x"], ["y"], **kw), {"x": x}, None)
    props = _pool_props(
        [3, 3], [2, 2], [1, 1, 1, 0], None, ceil, ", count_include_pad" if include else ""
    )
    y = run1(
        f"nt.avg_pool %a0 {props} : ({T(x.shape)}) -> {T(ref.shape)}", [T(x.shape)], T(ref.shape), x
    )
    assert y.shape == ref.shape
    assert rel_l2(y, ref) < 1e-6


def test_max_pool_ieee_zero_and_nan():
    x = np.array([[[[-0.0, 0.0, -0.0, -0.0, 1.0, np.nan]]]], np.float16)
    props = _pool_props([1, 2], [1, 2], [0, 0, 0, 0])
    y = run1(
        f"nt.max_pool %a0 {props} : ({T(x.shape, 'f16')}) -> {T((1, 1, 1, 3), 'f16')}",
        [T(x.shape, "f16")],
        T((1, 1, 1, 3), "f16"),
        x,
    )
    assert y[0, 0, 0, 0] == 0 and not np.signbit(y[0, 0, 0, 0])
    assert y[0, 0, 0, 1] == 0 and np.signbit(y[0, 0, 0, 1])
    assert np.isnan(y[0, 0, 0, 2])


# ---------------------------------------------------------------------------------------------
# Elementwise: accuracy in f32, rounding once to low precision


UNARY_ORACLES = {
    "exp": (np.exp, (-4, 4)),
    "log": (np.log, (0.01, 4)),
    "sqrt": (np.sqrt, (0, 4)),
    "rsqrt": (lambda x: 1 / np.sqrt(x), (0.01, 4)),
    "reciprocal": (lambda x: 1 / x, (0.5, 4)),
    "tanh": (np.tanh, (-4, 4)),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), (-8, 8)),
    "erf": (scipy.special.erf, (-3, 3)),
    "silu": (lambda x: x / (1 + np.exp(-x)), (-8, 8)),
    "neg": (np.negative, (-4, 4)),
    "abs": (np.abs, (-4, 4)),
    "relu": (lambda x: np.maximum(x, 0), (-4, 4)),
}


@pytest.mark.parametrize("name", sorted(UNARY_ORACLES))
def test_unary_f32(name):
    fn, (lo, hi) = UNARY_ORACLES[name]
    x = rand((64, 33), lo, hi)
    y = run1(f"nt.{name} %a0 : {T(x.shape)}", [T(x.shape)], T(x.shape), x)
    assert rel_l2(y, fn(x.astype(np.float64))) < 2e-7


@pytest.mark.parametrize("approx", ["none", "tanh"])
def test_gelu(approx):
    x = rand((128,), -5, 5)
    x64 = x.astype(np.float64)
    if approx == "none":
        ref = 0.5 * x64 * (1 + scipy.special.erf(x64 / math.sqrt(2)))
    else:
        ref = 0.5 * x64 * (1 + np.tanh(math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64**3)))
    y = run1(
        f'nt.gelu %a0 {{approximate = "{approx}"}} : {T(x.shape)}', [T(x.shape)], T(x.shape), x
    )
    assert rel_l2(y, ref) < 2e-7


@pytest.mark.parametrize("approx", ["none", "tanh"])
def test_gelu_negative_tail_has_no_cancellation(approx):
    # 1 + erf(x / sqrt 2) and 1 + tanh(z) cancel for x << 0: fp32 evaluation of the textbook
    # formula is 2.6% off at x = -4.6 (found by the simulator fuzz). Oracles: x * ndtr(x), and
    # the tanh formula in 80-bit long double; every element within a few fp32 ulps.
    x = rand((256,), -6, -2)
    if approx == "none":
        ref = x.astype(np.float64) * scipy.special.ndtr(x.astype(np.float64))
    else:
        xl = x.astype(np.longdouble)
        ref = (
            0.5
            * xl
            * (
                1
                + np.tanh(
                    np.longdouble(math.sqrt(2 / math.pi)) * (xl + np.longdouble(0.044715) * xl**3)
                )
            )
        ).astype(np.float64)
    y = run1(
        f'nt.gelu %a0 {{approximate = "{approx}"}} : {T(x.shape)}', [T(x.shape)], T(x.shape), x
    )
    assert np.max(np.abs(y / ref - 1)) < 3e-7


@pytest.mark.parametrize("elt", ["bf16", "f16", "f8E4M3", "tf32"])
@pytest.mark.parametrize(
    "op,fn", [("add", np.add), ("mul", np.multiply), ("div", np.divide), ("sub", np.subtract)]
)
def test_binary_low_precision_rounds_once(elt, op, fn):
    # Rounding the fp32 result once equals rounding the exact (float64) result directly, for
    # these formats (24 >= 2p + 2): so the float64 oracle must match bit for bit.
    a, b = rand((4096,), 0.5, 8), rand((4096,), 0.5, 8)
    y = run1(f"nt.{op} %a0, %a1 : {T(a.shape, elt)}", [T(a.shape, elt)] * 2, T(a.shape, elt), a, b)
    ra = round_oracle(a.astype(np.float64), elt).astype(np.float64)
    rb = round_oracle(b.astype(np.float64), elt).astype(np.float64)
    ref = round_oracle(fn(ra, rb), elt)
    assert y.dtype == np.dtype(NP_OF[elt])
    np.testing.assert_array_equal(bits(y), bits(ref))


@pytest.mark.parametrize("elt", ["bf16", "f16"])
def test_transcendental_low_precision_is_rounded_fp32(elt):
    x = rand((2048,), -3, 3)
    y = run1(f"nt.exp %a0 : {T(x.shape, elt)}", [T(x.shape, elt)], T(x.shape, elt), x)
    rx = x.astype(NP_OF[elt]).astype(np.float64)
    ref = np.exp(rx).astype(NP_OF[elt])
    # f32 exp is within an ulp of f32, so after rounding to 8/11 bits at most a rare tie
    # differs; demand near-total bit agreement and one-ulp closeness everywhere.
    agree = np.mean(bits(y) == bits(ref))
    assert agree > 0.995
    assert np.max(np.abs(bits(y).astype(np.int64) - bits(ref).astype(np.int64))) <= 1


def test_broadcasting_binary_and_pow():
    a, b = rand((4, 1), 0.5, 2), rand((5,), -2, 2)
    y = run1(
        f"nt.pow %a0, %a1 : ({T((4, 1))}, {T((5,))}) -> {T((4, 5))}",
        [T((4, 1)), T((5,))],
        T((4, 5)),
        a,
        b,
    )
    assert rel_l2(y, np.power(a.astype(np.float64), b)) < 2e-7


def test_overflow_gives_inf_in_f16():
    a = np.array([60000.0, -60000.0, 1.0], np.float32)
    y = run1(f"nt.add %a0, %a0 : {T((3,), 'f16')}", [T((3,), "f16")], T((3,), "f16"), a)
    assert y[0] == np.inf and y[1] == -np.inf and y[2] == 2


# ---------------------------------------------------------------------------------------------
# IEEE maximum/minimum


@pytest.mark.parametrize("elt", ["f32", "f16", "bf16"])
def test_ieee_max_min_zero_signs_and_nan(elt):
    a = np.array([-0.0, 0.0, -0.0, 0.0, np.nan, 1.0, np.nan, -3.0], np.float32)
    b = np.array([0.0, -0.0, -0.0, 0.0, 1.0, np.nan, np.nan, 2.0], np.float32)
    t = T((8,), elt)
    mx = run1(f"nt.max %a0, %a1 : {t}", [t, t], t, a, b).astype(np.float32)
    mn = run1(f"nt.min %a0, %a1 : {t}", [t, t], t, a, b).astype(np.float32)
    np.testing.assert_array_equal(np.signbit(mx[:4]), [False, False, True, False])
    np.testing.assert_array_equal(np.signbit(mn[:4]), [True, True, True, False])
    assert np.isnan(mx[4:7]).all() and np.isnan(mn[4:7]).all()
    assert mx[7] == 2 and mn[7] == -3


@pytest.mark.parametrize("elt", ["f32", "f16", "bf16"])
def test_ieee_max_min_every_special_pair(elt):
    # Every pair of specials, both orders, against the definition written with comparisons.
    v = np.array([-np.inf, -2, -0.0, 0.0, 1e-7, 3, np.inf, np.nan], np.float32)
    a, b = np.repeat(v, 8), np.tile(v, 8)
    t = T((64,), elt)
    for op, better, neg_zero_wins in (("max", np.greater, False), ("min", np.less, True)):
        r = run1(f"nt.{op} %a0, %a1 : {t}", [t, t], t, a, b).astype(np.float32)
        ra, rb = (x.astype(NP_OF[elt]).astype(np.float32) for x in (a, b))
        ref = np.where(better(ra, rb), ra, rb)
        ref = np.where((ra == rb) & (np.signbit(ra) == neg_zero_wins), ra, ref)
        nan = np.isnan(ra) | np.isnan(rb)
        np.testing.assert_array_equal(np.isnan(r), nan)
        np.testing.assert_array_equal(r[~nan], ref[~nan])
        np.testing.assert_array_equal(np.signbit(r[~nan]), np.signbit(ref[~nan]))


@pytest.mark.parametrize("elt", ["f32", "f16"])
def test_relu_clip_reduce_max_ieee(elt):
    x = np.array([-0.0, 0.0, -1.0, np.nan, 5.0], np.float32)
    t = T((5,), elt)
    r = run1(f"nt.relu %a0 : {t}", [t], t, x).astype(np.float32)
    assert not np.signbit(r[:3]).any() and (r[:3] == 0).all()
    assert np.isnan(r[3]) and r[4] == 5
    c = run1(f"nt.clip %a0 {{min = 0.0 : f64, max = 2.5 : f64}} : {t}", [t], t, x).astype(
        np.float32
    )
    assert not np.signbit(c[0]) and c[2] == 0 and np.isnan(c[3]) and c[4] == 2.5
    c = run1(f"nt.clip %a0 {{max = -0.0 : f64}} : {t}", [t], t, x).astype(np.float32)
    assert np.signbit(c[1]) and c[2] == -1  # min(+0, -0) = -0
    rm = T((2, 2), elt)
    x2 = np.array([[-0.0, 0.0], [-0.0, -0.0]], np.float32)
    m = run1(
        f"nt.reduce_max %a0 {{axes = array<i64: 1>}} : ({rm}) -> {T((2,), elt)}",
        [rm],
        T((2,), elt),
        x2,
    ).astype(np.float32)
    assert (m == 0).all() and list(np.signbit(m)) == [False, True]
    xn = np.array([[1.0, np.nan], [3.0, -np.inf]], np.float32)
    m = run1(
        f"nt.reduce_max %a0 {{axes = array<i64: 1>}} : ({rm}) -> {T((2,), elt)}",
        [rm],
        T((2,), elt),
        xn,
    ).astype(np.float32)
    assert np.isnan(m[0]) and m[1] == 3


# ---------------------------------------------------------------------------------------------
# Integers and booleans


def test_integer_div_mod_signs():
    a = np.array([7, -7, 7, -7, 6, -6], np.int32)
    b = np.array([2, 2, -2, -2, 3, 3], np.int32)
    t = T((6,), "i32")
    div = run1(f"nt.div %a0, %a1 : {t}", [t, t], t, a, b)
    mod = run1(f"nt.mod %a0, %a1 : {t}", [t, t], t, a, b)
    fmod = run1(f"nt.mod %a0, %a1 {{fmod}} : {t}", [t, t], t, a, b)
    assert div.dtype == np.int32
    np.testing.assert_array_equal(div, [3, -3, -3, 3, 2, -2])
    np.testing.assert_array_equal(mod, [1, 1, -1, -1, 0, 0])
    np.testing.assert_array_equal(fmod, [1, -1, 1, -1, 0, 0])
    fa = np.array([7.5, -7.5], np.float32)
    f = run1(
        f"nt.mod %a0, %a1 {{fmod}} : {T((2,))}",
        [T((2,))] * 2,
        T((2,)),
        fa,
        np.array([2.0, 2.0], np.float32),
    )
    np.testing.assert_array_equal(f, [1.5, -1.5])


def test_integer_ops_stay_integer():
    a = np.array([2**31 - 1, -5, 3], np.int32)
    t = T((3,), "i32")
    s = run1(f"nt.add %a0, %a0 : {t}", [t, t], t, a, a)
    assert s.dtype == np.int32 and s[0] == -2 and s[1] == -10  # two's complement wrap
    r = run1(
        f"nt.reduce_sum %a0 : ({t}) -> {T((), 'i32')}",
        [t],
        T((), "i32"),
        np.array([1, 2, 3], np.int32),
    )
    assert r.dtype == np.int32 and r.shape == () and r == 6
    m = run1(f"nt.max %a0, %a1 : {t}", [t, t], t, a, np.array([0, 0, 9], np.int32))
    np.testing.assert_array_equal(m, [2**31 - 1, 0, 9])


def test_compare_logic_where():
    a, b = (
        np.array([1.0, np.nan, -0.0, 3.0], np.float32),
        np.array([2.0, 1.0, 0.0, 3.0], np.float32),
    )
    t, tb = T((4,)), T((4,), "i1")
    expect = {"eq": a == b, "ne": a != b, "lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}
    for pred, ref in expect.items():
        got = run1(
            f'nt.cmp %a0, %a1 {{predicate = "{pred}"}} : ({t}, {t}) -> {tb}', [t, t], tb, a, b
        )
        assert got.dtype == np.bool_
        np.testing.assert_array_equal(got, ref, err_msg=pred)
    p, q = np.array([True, True, False, False]), np.array([True, False, True, False])
    for op, ref in (("and", p & q), ("or", p | q), ("xor", p ^ q)):
        np.testing.assert_array_equal(run1(f"nt.{op} %a0, %a1 : {tb}", [tb, tb], tb, p, q), ref)
    np.testing.assert_array_equal(run1(f"nt.not %a0 : {tb}", [tb], tb, p), ~p)
    w = run1(f"nt.where %a0, %a1, %a2 : ({tb}, {t}, {t}) -> {t}", [tb, t, t], t, p, a, b)
    np.testing.assert_array_equal(w[[0, 2, 3]], [1.0, 0.0, 3.0])
    assert np.isnan(w[1])


# ---------------------------------------------------------------------------------------------
# Casts


def test_fp8_cast_saturate_vs_overflow():
    x = np.array([300.0, -1000.0, np.inf, -np.inf, np.nan, 239.0, 247.0, 250.0, 0.3], np.float32)
    t, t8 = T((9,)), T((9,), "f8E4M3")
    plain = run1(f"nt.cast %a0 : {t} to {t8}", [t], t8, x).astype(np.float32)
    sat = run1(f"nt.cast %a0 {{saturate}} : {t} to {t8}", [t], t8, x).astype(np.float32)
    # E4M3 (IEEE-style, bias 7): max 240, the next step would be 256, so 248 is the tie to inf.
    np.testing.assert_array_equal(plain[[0, 1, 2, 3]], [np.inf, -np.inf, np.inf, -np.inf])
    np.testing.assert_array_equal(sat[[0, 1, 2, 3]], [240, -240, 240, -240])
    assert np.isnan(plain[4]) and np.isnan(sat[4])
    np.testing.assert_array_equal(plain[5:7], [240, 240])  # 239 and 247 round to 240
    assert plain[7] == np.inf and sat[7] == 240
    assert plain[8] == sat[8] == 0.3125  # 0.3 -> nearest multiple of 2^-5 at that binade


@pytest.mark.parametrize(
    "src,dst",
    [
        ("f32", "bf16"),
        ("f32", "f16"),
        ("f32", "tf32"),
        ("bf16", "f8E4M3"),
        ("f16", "bf16"),
        ("bf16", "f32"),
    ],
)
def test_float_cast_is_one_rne(src, dst):
    x = (RNG.standard_normal(4096) * 50).astype(np.float32)
    rx = round_oracle(x.astype(np.float64), src).astype(np.float64)
    y = run1(
        f"nt.cast %a0 : {T(x.shape, src)} to {T(x.shape, dst)}",
        [T(x.shape, src)],
        T(x.shape, dst),
        x,
    )
    np.testing.assert_array_equal(bits(y), bits(round_oracle(rx, dst)))


def test_tf32_keeps_ten_mantissa_bits():
    x = np.array([1 + 2**-11, 1 + 3 * 2**-11, 1 + 2**-10 + 2**-12], np.float32)
    t = T((3,), "tf32")
    y = run1(f"nt.add %a0, %a1 : {t}", [t, t], t, x, np.zeros(3, np.float32))
    np.testing.assert_array_equal(y, [1.0, 1 + 2 * 2**-10, 1 + 2**-10])  # ties to even


def test_int_float_casts():
    x = np.array([2.7, -2.7, 0.5, -0.5, 100.9], np.float32)
    y = run1(f"nt.cast %a0 : {T((5,))} to {T((5,), 'i32')}", [T((5,))], T((5,), "i32"), x)
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, [2, -2, 0, 0, 100])  # toward zero
    s = run1(
        f"nt.cast %a0 : {T((4,))} to {T((4,), 'i32')}",
        [T((4,))],
        T((4,), "i32"),
        np.array([np.nan, np.inf, -3e9, 3e9], np.float32),
    )
    np.testing.assert_array_equal(s, [0, 2**31 - 1, -(2**31), 2**31 - 1])  # saturating
    i = np.array([16777217, 257, -3], np.int32)
    f = run1(
        f"nt.cast %a0 : {T((3,), 'i32')} to {T((3,), 'bf16')}", [T((3,), "i32")], T((3,), "bf16"), i
    )
    np.testing.assert_array_equal(f.astype(np.float32), [16777216, 256, -3])
    b = run1(
        f"nt.cast %a0 : {T((5,))} to {T((5,), 'i1')}",
        [T((5,))],
        T((5,), "i1"),
        np.array([0.0, -0.0, 1.0, np.nan, -2.0], np.float32),
    )
    np.testing.assert_array_equal(b, [False, False, True, True, True])


# ---------------------------------------------------------------------------------------------
# Reductions and normalizations (float64 oracles)


def test_reductions():
    x = rand((3, 4, 5))
    t = T(x.shape)
    s = run1(
        f"nt.reduce_sum %a0 {{axes = array<i64: 0, 2>, keepdims}} : ({t}) -> {T((1, 4, 1))}",
        [t],
        T((1, 4, 1)),
        x,
    )
    assert rel_l2(s, x.astype(np.float64).sum((0, 2), keepdims=True)) < 2e-7
    m = run1(
        f"nt.reduce_mean %a0 {{axes = array<i64: -1>}} : ({t}) -> {T((3, 4))}", [t], T((3, 4)), x
    )
    assert rel_l2(m, x.astype(np.float64).mean(-1)) < 2e-7
    mx = run1(f"nt.reduce_max %a0 : ({t}) -> {T(())}", [t], T(()), x)
    assert mx.shape == () and mx == x.max()


@pytest.mark.parametrize("log", [False, True])
def test_softmax_stable_with_masks(log):
    x = rand((4, 7), -3, 3)
    x[0, 2] = -np.inf
    x[1] += 80.0  # exp would overflow without subtracting the max
    x64 = x.astype(np.float64)
    sh = x64 - x64.max(1, keepdims=True)
    ref = (
        sh - np.log(np.exp(sh).sum(1, keepdims=True))
        if log
        else np.exp(sh) / np.exp(sh).sum(1, keepdims=True)
    )
    op = "log_softmax" if log else "softmax"
    y = run1(f"nt.{op} %a0 {{axis = 1 : i64}} : {T(x.shape)}", [T(x.shape)], T(x.shape), x)
    fin = np.isfinite(ref)
    assert rel_l2(y[fin], ref[fin]) < 3e-7
    assert (y[~fin] == ref[~fin]).all()


def test_layer_norm_rms_norm_batch_norm():
    x, s, b = rand((2, 3, 8)) + 3, rand((3, 8)), rand((8,))
    x64 = x.astype(np.float64)
    mean = x64.mean((1, 2), keepdims=True)
    var = ((x64 - mean) ** 2).mean((1, 2), keepdims=True)
    ref = (x64 - mean) / np.sqrt(var + 1e-5) * s + b
    y = run1(
        f"nt.layer_norm %a0, %a1, %a2 {{axis = 1 : i64, epsilon = 1.0e-05 : f64}} : "
        f"({T(x.shape)}, {T(s.shape)}, {T(b.shape)}) -> {T(x.shape)}",
        [T(x.shape), T(s.shape), T(b.shape)],
        T(x.shape),
        x,
        s,
        b,
    )
    assert rel_l2(y, ref) < 1e-6
    sc = rand((8,))
    ms = (x64**2).mean(-1, keepdims=True)
    y = run1(
        f"nt.rms_norm %a0, %a1 {{axis = -1 : i64, epsilon = 1.0e-06 : f64}} : "
        f"({T(x.shape)}, {T((8,))}) -> {T(x.shape)}",
        [T(x.shape), T((8,))],
        T(x.shape),
        x,
        sc,
    )
    assert rel_l2(y, x64 / np.sqrt(ms + 1e-6) * sc) < 1e-6
    xb = rand((2, 3, 4, 4))
    p = [rand((3,)) for _ in range(4)]
    p[3] = np.abs(p[3]) + 0.1
    c = lambda v: v.astype(np.float64).reshape(1, 3, 1, 1)  # noqa: E731
    ref = (xb - c(p[2])) / np.sqrt(c(p[3]) + 1e-3) * c(p[0]) + c(p[1])
    y = run1(
        f"nt.batch_norm %a0, %a1, %a2, %a3, %a4 {{epsilon = 1.0e-03 : f64}} : "
        f"({T(xb.shape)}, {', '.join([T((3,))] * 4)}) -> {T(xb.shape)}",
        [T(xb.shape)] + [T((3,))] * 4,
        T(xb.shape),
        xb,
        *p,
    )
    assert rel_l2(y, ref) < 1e-6


def test_layer_norm_bf16_output_is_one_rounding_of_f32():
    x, s = rand((4, 64)), rand((64,))
    x64 = x.astype(BF16).astype(np.float64)
    mean = x64.mean(-1, keepdims=True)
    ref = (
        (x64 - mean) / np.sqrt(((x64 - mean) ** 2).mean(-1, keepdims=True) + 1e-5) * s.astype(BF16)
    )
    t, ts = T(x.shape, "bf16"), T((64,), "bf16")
    y = run1(
        f"nt.layer_norm %a0, %a1 {{axis = -1 : i64, epsilon = 1.0e-05 : f64}} : ({t}, {ts}) -> {t}",
        [t, ts],
        t,
        x,
        s,
    )
    # At most one bf16 ulp from the exact result rounded once, and mostly equal.
    yb, rb = bits(y).astype(np.int64), bits(ref.astype(BF16)).astype(np.int64)
    assert np.max(np.abs(yb - rb)) <= 1 and np.mean(yb == rb) > 0.97


def _norm64(x64, axes, eps):
    mean = x64.mean(axes, keepdims=True)
    d = x64 - mean
    return d / np.sqrt((d * d).mean(axes, keepdims=True) + np.float64(np.float32(eps)))


def test_norms_and_reductions_are_correctly_rounded_fp32():
    """Computed in float64 inside and rounded once: bit-equal to the float64 oracle rounded to
    fp32, where a plain fp32 evaluation loses ulps to cancellation (y * scale + bias with
    bias close to -y * scale; sums of values of both signs)."""
    x = (rand((16, 64)) + 3).astype(np.float32)
    s = rand((64,), 0.9, 1.1)
    y64 = _norm64(x.astype(np.float64), -1, 1e-5)
    b = (-(y64 * s).mean(0) + rand((64,), -1e-3, 1e-3)).astype(np.float32)  # cancels
    ref = (y64 * s.astype(np.float64) + b.astype(np.float64)).astype(np.float32)
    t, tv = T(x.shape), T((64,))
    y = run1(
        f"nt.layer_norm %a0, %a1, %a2 {{axis = -1 : i64, epsilon = 1.0e-05 : f64}} : "
        f"({t}, {tv}, {tv}) -> {t}",
        [t, tv, tv],
        t,
        x,
        s,
        b,
    )
    np.testing.assert_array_equal(bits(y), bits(ref))
    v = rand((8, 4096), -1, 1)
    ref = v.astype(np.float64).sum(-1).astype(np.float32)
    r = run1(
        f"nt.reduce_sum %a0 {{axes = array<i64: 1>}} : ({T(v.shape)}) -> {T((8,))}",
        [T(v.shape)],
        T((8,)),
        v,
    )
    np.testing.assert_array_equal(bits(r), bits(ref))
    sm64 = np.exp(v.astype(np.float64) - v.max(-1, keepdims=True))
    ref = (sm64 / sm64.sum(-1, keepdims=True)).astype(np.float32)
    r = run1(f"nt.softmax %a0 {{axis = 1 : i64}} : {T(v.shape)}", [T(v.shape)], T(v.shape), v)
    np.testing.assert_array_equal(bits(r), bits(ref))


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_group_norm(groups):
    x, s, b = rand((2, 4, 3, 5)) * 2 + 1, rand((4,)), rand((4,))
    g = _norm64(x.astype(np.float64).reshape(2, groups, -1), -1, 1e-3).reshape(x.shape)
    ch = (1, 4, 1, 1)
    ref = (g * s.reshape(ch).astype(np.float64) + b.reshape(ch).astype(np.float64)).astype(
        np.float32
    )
    t, tc = T(x.shape), T((4,))
    y = run1(
        f"nt.group_norm %a0, %a1, %a2 {{groups = {groups} : i64, epsilon = 1.0e-03 : f64}} : "
        f"({t}, {tc}, {tc}) -> {t}",
        [t, tc, tc],
        t,
        x,
        s,
        b,
    )
    np.testing.assert_array_equal(bits(y), bits(ref))


# ---------------------------------------------------------------------------------------------
# Data movement


def test_transpose_reshape_broadcast_slice_concat():
    x = rand((2, 3, 4))
    t = T(x.shape)
    y = run1(
        f"nt.transpose %a0 {{perm = array<i64: 2, 0, 1>}} : ({t}) -> {T((4, 2, 3))}",
        [t],
        T((4, 2, 3)),
        x,
    )
    np.testing.assert_array_equal(y, x.transpose(2, 0, 1))
    y = run1(f"nt.reshape %a0 : ({t}) -> {T((6, 4))}", [t], T((6, 4)), x)
    np.testing.assert_array_equal(y, x.reshape(6, 4))
    y = run1(
        f"nt.broadcast %a0 : ({T((3, 1))}) -> {T((2, 3, 5))}",
        [T((3, 1))],
        T((2, 3, 5)),
        x[0, :, :1],
    )
    np.testing.assert_array_equal(y, np.broadcast_to(x[0, :, :1], (2, 3, 5)))
    y = run1(
        f"nt.slice %a0 {{starts = array<i64: 1, 2, 0>, limits = array<i64: 2, -1, 4>, "
        f"strides = array<i64: 1, -1, 2>}} : ({t}) -> {T((1, 3, 2))}",
        [t],
        T((1, 3, 2)),
        x,
    )
    np.testing.assert_array_equal(y, x[1:2, 2::-1, 0:4:2])
    y = run1(
        f"nt.concat %a0, %a1 {{axis = 1 : i64}} : ({t}, {T((2, 1, 4))}) -> {T((2, 4, 4))}",
        [t, T((2, 1, 4))],
        T((2, 4, 4)),
        x,
        x[:, :1],
    )
    np.testing.assert_array_equal(y, np.concatenate([x, x[:, :1]], 1))


def test_gathers_with_negative_indices():
    d = rand((4, 5))
    ti = T((2, 3), "i64")
    idx = np.array([[0, -1, 2], [-4, 3, 1]], np.int64)
    y = run1(
        f"nt.gather %a0, %a1 {{axis = 0 : i64}} : ({T(d.shape)}, {ti}) -> {T((2, 3, 5))}",
        [T(d.shape), ti],
        T((2, 3, 5)),
        d,
        idx,
    )
    np.testing.assert_array_equal(y, d[idx % 4])
    ie = np.array([[0, -1, 2, 1, -4], [3, 3, 0, -2, -3]], np.int64)
    y = run1(
        f"nt.gather_elements %a0, %a1 {{axis = 0 : i64}} : ({T((4, 5))}, {T((2, 5), 'i64')})"
        f" -> {T((2, 5))}",
        [T((4, 5)), T((2, 5), "i64")],
        T((2, 5)),
        d,
        ie,
    )
    ref = d[ie % 4, np.arange(5)[None, :]]
    np.testing.assert_array_equal(y, ref)
    data = rand((2, 3, 4))
    nd = np.array([[[0, -1], [2, 0]], [[1, 1], [-1, 3]]], np.int64)  # batch 2, 2 tuples of 2
    y = run1(
        f"nt.gather_nd %a0, %a1 {{batch_dims = 1 : i64}} : ({T(data.shape)}, "
        f"{T(nd.shape, 'i64')}) -> {T((2, 2))}",
        [T(data.shape), T(nd.shape, "i64")],
        T((2, 2)),
        data,
        nd,
    )
    ref = np.array([[data[b, i % 3, j % 4] for i, j in nd[b]] for b in range(2)])
    np.testing.assert_array_equal(y, ref)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_modes(mode):
    x = rand((3, 4))
    t = T(x.shape)
    value = ", value = 1.5 : f64" if mode == "constant" else ""
    y = run1(
        f'nt.pad %a0 {{pads = array<i64: 1, 2, 2, 0>, mode = "{mode}"{value}}} : ({t}) -> '
        f"{T((6, 6))}",
        [t],
        T((6, 6)),
        x,
    )
    kw = {"constant_values": 1.5} if mode == "constant" else {}
    np.testing.assert_array_equal(y, np.pad(x, ((1, 2), (2, 0)), mode=mode, **kw))


# ---------------------------------------------------------------------------------------------
# Constants, weights, names, errors


def test_constant_and_named_io():
    text = """builtin.module {
  func.func @main(%x: tensor<3xf32> {nt.name = "input.1"}) -> (tensor<3xbf16> {nt.name = "logits"}) {
    %c = nt.constant [1.0, -0.0, inf] : tensor<3xf32>
    %s = nt.add %x, %c : tensor<3xf32>
    %r = nt.cast %s : tensor<3xf32> to tensor<3xbf16>
    func.return %r : tensor<3xbf16>
  }
}"""
    m = parse_module(CTX, text, "t.mlir")
    out = run_module(m, {"input.1": np.array([1.0, -0.0, 1.0], np.float32)})
    assert list(out) == ["logits"] and out["logits"].dtype == BF16
    y = out["logits"].astype(np.float32)
    assert y[0] == 2 and y[1] == 0 and np.signbit(y[1]) and y[2] == np.inf


def test_inputs_rounded_to_argument_type():
    x = np.array([1 + 2**-9, 3.0], np.float64)  # 1 + 2^-9 is a bf16 tie: rounds to even (1.0)
    t = T((2,), "bf16")
    y = run1(f"nt.neg %a0 : {t}", [t], t, x)
    np.testing.assert_array_equal(y.astype(np.float32), [-1.0, -3.0])


def test_weight_loaded_and_rounded(tmp_path):
    w = np.array([[1 + 2**-9 + 2**-20, 300.0], [-1000.0, 0.1]], np.float32)
    np.savez(tmp_path / "w.npz", fc1=w, bad=np.zeros(4, BF16))
    text = f"""builtin.module attributes {{nt.weights = "w.npz"}} {{
  func.func @main() -> ({T((2, 2), "bf16")}, {T((2, 2), "f8E4M3")}) {{
    %w = nt.weight @fc1 : {T((2, 2), "bf16")}
    %q = nt.weight @fc1 : {T((2, 2), "f8E4M3")}
    func.return %w, %q : {T((2, 2), "bf16")}, {T((2, 2), "f8E4M3")}
  }}
}}"""
    m = parse_module(CTX, text, "t.mlir")
    verify_module(m)
    out = run_module(m, {}, base_dir=tmp_path)
    np.testing.assert_array_equal(bits(out["out0"]), bits(w.astype(np.float64).astype(BF16)))
    # fp8 weights saturate (finite overflow -> +-240), unlike a plain cast.
    np.testing.assert_array_equal(
        out["out1"].astype(np.float32), [[1.0, 240.0], [-240.0, 0.1015625]]
    )
    # A bf16 array saved by np.savez comes back as raw |V2: a clear error, not garbage.
    bad = (
        text.replace("@fc1 : tensor<2x2xbf16>", "@bad : tensor<4xbf16>")
        .replace("-> (tensor<2x2xbf16>", "-> (tensor<4xbf16>")
        .replace("func.return %w, %q : tensor<2x2xbf16>", "func.return %w, %q : tensor<4xbf16>")
    )
    with pytest.raises(CompileError, match=r"np\.savez drops ml_dtypes"):
        run_module(parse_module(CTX, bad, "t.mlir"), {}, base_dir=tmp_path)
    missing = text.replace("@fc1 : tensor<2x2xbf16>", "@nope : tensor<2x2xbf16>")
    with pytest.raises(CompileError, match="weight @nope is not in"):
        run_module(parse_module(CTX, missing, "t.mlir"), {}, base_dir=tmp_path)
    with pytest.raises(CompileError) as e:
        run_module(m, {}, base_dir=tmp_path / "elsewhere")
    assert "cannot read weights" in str(e.value) and "elsewhere" in str(e.value)


def test_input_errors():
    m = build(f"nt.neg %a0 : {T((2, 3), 'i32')}", [T((2, 3), "i32")], T((2, 3), "i32"))
    with pytest.raises(CompileError) as e:
        run_module(m, {})
    assert e.value.where == "arg0" and "missing input" in e.value.message
    with pytest.raises(CompileError, match="expected shape 2x3") as e:
        run_module(m, {"arg0": np.zeros((3, 2), np.int32)})
    assert e.value.where == "arg0"
    with pytest.raises(CompileError, match="floats would be truncated"):
        run_module(m, {"arg0": np.zeros((2, 3), np.float32)})
    with pytest.raises(CompileError, match="out of range"):
        run_module(m, {"arg0": np.full((2, 3), 2**40, np.int64)})
    with pytest.raises(CompileError, match="found <U1"):
        run_module(m, {"arg0": np.full((2, 3), "a")})
    with pytest.raises(CompileError, match=r"no func\.func @other"):
        run_module(m, {"arg0": np.zeros((2, 3), np.int32)}, func="other")


def test_bad_index_is_a_located_error():
    d, ti = T((4,)), T((2,), "i64")
    m = build(f"nt.gather %a0, %a1 {{axis = 0 : i64}} : ({d}, {ti}) -> {T((2,))}", [d, ti], T((2,)))
    with pytest.raises(CompileError) as e:
        run_module(m, {"arg0": np.zeros(4, np.float32), "arg1": np.array([1, 7])})
    assert e.value.where == "t.mlir:3:5" and "index 7 is out of range" in e.value.message

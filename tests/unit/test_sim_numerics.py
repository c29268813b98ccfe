"""Each instruction's numerics against numpy: fp32 math, one RNE rounding to the output."""

from __future__ import annotations

import math
import warnings

import ml_dtypes
import numpy as np
import pytest
import scipy.special
from sim_kernels import load_run_store, run

rng = np.random.default_rng(5)
X = rng.standard_normal((128, 64)).astype(np.float32)
C = (rng.random((128, 1)) + 0.5).astype(np.float32)


def _kernel(stream: str, out_dt="f32", extra_decls="") -> str:
    """x [128, 64] and c [128, 1] loaded (c into a 4-column tile), y [128, 64] stored."""
    return load_run_store(
        {"x": "128x64xf32", "c": "128x1xf32"},
        f"128x64x{out_dt}",
        stream,
        tiles={"cs": "128x4xf32"},
        extra=extra_decls,
    )


def _y(stream, out_dt="f32", extra=""):
    return run(_kernel(stream, out_dt, extra), {"x": X, "c": C}).outputs["y"]


def _bits_equal(a, b):
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.dtype == b.dtype and np.array_equal(a.view(np.uint8), b.view(np.uint8))


@pytest.mark.parametrize("func,ref", [
    ("exp", np.exp), ("tanh", np.tanh), ("sigmoid", scipy.special.expit),
    ("gelu", lambda y: 0.5 * y * (1 + scipy.special.erf(y / math.sqrt(2)))),
    ("relu", lambda y: np.maximum(y, 0)), ("square", np.square),
])  # fmt: skip
def test_activation_scale_bias_accumulate(func, ref):
    stream = f"""nisa.engine @scalar {{
      nisa.activation @ys[0:128, 0:64], @xs[0:128, 0:64] func {func} scale 0.5 bias @cs[0:128, 0] accumulate @cs[0:128, 1] wait(@in >= 2) signal(@done)
    }}"""
    for out_dt, dt in (("f32", np.float32), ("bf16", ml_dtypes.bfloat16)):
        y = _y(stream, out_dt)
        arg = X * np.float32(0.5) + C  # fp32 arithmetic
        exact32 = ref(arg.astype(np.float64)).astype(np.float32)
        assert _bits_equal(y, exact32.astype(dt))


def test_activation_of_inf_plus_minus_inf_is_nan_without_a_warning():
    """inf - inf in the bias add is the hardware's NaN, not a numpy RuntimeWarning."""
    stream = """nisa.engine @scalar {
      nisa.activation @ys[0:128, 0:64], @xs[0:128, 0:64] func relu bias @cs[0:128, 0] wait(@in >= 2) signal(@done)
    }"""
    x = np.full_like(X, np.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = run(_kernel(stream), {"x": x, "c": np.full_like(C, -np.inf)}).outputs["y"]
    assert np.isnan(y).all()


def test_activation_accumulate_column():
    stream = """nisa.engine @scalar {
      nisa.activation @ys[0:128, 0:64], @xs[0:128, 0:64] func exp accumulate @cs[0:128, 1] wait(@in >= 2)
      nisa.tensor_scalar @ys[0:128, 0:64], @xs[0:128, 0:64] op0 mul operand0 @cs[0:128, 1] signal(@done)
    }"""
    e = np.exp(X.astype(np.float64)).astype(np.float32)
    want = X * e.sum(axis=1, dtype=np.float32, keepdims=True)
    assert np.allclose(_y(stream), want, rtol=1e-6, atol=0)


@pytest.mark.parametrize(
    "op,ref",
    [
        ("add", np.add),
        ("mul", np.multiply),
        ("max", np.maximum),
        ("sub", np.subtract),
        ("gt", lambda a, b: (a > b) * 1.0),
    ],
)
def test_tensor_tensor(op, ref):
    stream = f"""nisa.engine @vector {{
      nisa.tensor_tensor @ys[0:128, 0:64], @xs[0:128, 0:64], @xs[0:128, 0:64:1] op {op} wait(@in >= 2)
      nisa.tensor_tensor @ys[0:128, 0:64], @ys[0:128, 0:64], @xs[0:128, 0:64] op {op} signal(@done)
    }}"""
    y = _y(stream, "bf16")
    first = ref(X, X).astype(np.float32).astype(ml_dtypes.bfloat16)
    want = ref(first.astype(np.float32), X).astype(np.float32).astype(ml_dtypes.bfloat16)
    assert _bits_equal(y, want)


def test_tensor_scalar_two_ops_with_column_and_reverse():
    stream = """nisa.engine @vector {
      nisa.tensor_scalar @ys[0:128, 0:64], @xs[0:128, 0:64] op0 sub operand0 1.0 reverse0 op1 mul operand1 @cs[0:128, 0] wait(@in >= 2) signal(@done)
    }"""
    assert _bits_equal(_y(stream), (np.float32(1.0) - X) * C)


def test_tensor_reduce_and_transposed_copy():
    stream = """nisa.engine @vector {
      nisa.tensor_reduce @cs[0:128, 2], @xs[0:128, 0:64] op max negate wait(@in >= 2)
      nisa.tensor_scalar @ys[0:128, 0:64], @xs[0:128, 0:64] op0 add operand0 @cs[0:128, 2] signal(@done)
    }"""
    assert _bits_equal(_y(stream), X - X.max(axis=1, keepdims=True))


def test_bn_stats_and_aggr():
    stream = """nisa.engine @vector {
      nisa.bn_stats @st[0:128, 0:3], @xs[0:128, 0:16] wait(@in >= 2)
      nisa.bn_stats @st[0:128, 3:6], @xs[0:128, 16:64]
      nisa.bn_aggr @cs[0:128, 2:4], @st[0:128, 0:6]
      nisa.tensor_scalar @ys[0:128, 0:64], @xs[0:128, 0:64] op0 sub operand0 @cs[0:128, 2] op1 div operand1 @cs[0:128, 3] signal(@done)
    }"""
    y = _y(stream, extra="nisa.sbuf @st partitions 0:128 offset 1024 : tensor<128x6xf32>")
    x64 = X.astype(np.float64)
    want = (x64 - x64.mean(1, keepdims=True)) / x64.var(1, keepdims=True)
    assert np.linalg.norm(y - want) / np.linalg.norm(want) < 1e-5


def test_iota_affine_select_select_memset_on_gpsimd():
    stream = """nisa.engine @gpsimd {
      nisa.iota @ix[0:128, 0:64] base 5 channel 1 step -1
      nisa.affine_select @ys[0:128, 0:64], @xs[0:128, 0:64] base 0 channel 1 step -1 cmp ge fill -9984.0 wait(@in >= 2)
      nisa.select @ys[0:128, 0:64], @ix[0:128, 0:64], @ys[0:128, 0:64], @cs[0:128, 0] signal(@done)
    }"""
    y = _y(stream, extra="nisa.sbuf @ix partitions 0:128 offset 1024 : tensor<128x64xi32>")
    p, f = np.arange(128)[:, None], np.arange(64)[None, :]
    masked = np.where(p - f >= 0, X, np.float32(-9984.0))
    want = np.where(5 + p - f != 0, masked, C)
    assert _bits_equal(y, want.astype(np.float32))


def test_transpose_on_tensor_engine():
    stream = """nisa.engine @tensor {
      nisa.transpose @pt[0:64, 0:128], @xs[0:128, 0:64] wait(@in >= 2) signal(@in)
    }
    nisa.engine @vector {
      nisa.tensor_copy @ys[0:64, 0:128], @pt[0:64, 0:128] wait(@in >= 3) signal(@done)
    }"""
    extra = "nisa.psum @pt partitions 0:64 offset 0 : tensor<64x128xf32>"
    body = (
        _kernel(stream, extra_decls=extra)
        .replace(
            "nisa.sbuf @ys partitions 0:128 offset 512 : tensor<128x64xf32>",
            "nisa.sbuf @ys partitions 0:64 offset 512 : tensor<64x128xf32>",
        )
        .replace("@y[0:128, 0:64], @ys[0:128, 0:64]", "@y[0:128, 0:64], @ys[0:64, 0:128]")
    )
    y = run(body, {"x": X, "c": C}).outputs["y"]
    assert _bits_equal(y.reshape(64, 128), X.T)


def test_dma_casts_through_fp32_with_rne():
    special = np.array([1.0 + 2**-8, 1.0 + 3 * 2**-8, -0.0, np.inf, 3.0e38, 1e-40], np.float32)
    x = np.resize(special, (128, 64)).astype(np.float32)
    stream = """nisa.engine @vector {
      nisa.memset @ys[0:128, 0:1] value 0.0 wait(@in >= 2)
      nisa.tensor_copy @ys[0:128, 0:64], @xb[0:128, 0:64] signal(@done)
    }
    nisa.dma_queue @q2 {
      nisa.dma_copy @xb[0:128, 0:64], @x[0:128, 0:64]
    }"""
    body = _kernel(
        stream, "bf16", "nisa.sbuf @xb partitions 0:128 offset 2048 : tensor<128x64xbf16>"
    )
    body = body.replace(
        "nisa.dma_copy @xb[0:128, 0:64], @x[0:128, 0:64]",
        "nisa.dma_copy @xb[0:128, 0:64], @x[0:128, 0:64] signal(@in)",
    )
    body = body.replace("wait(@in >= 2)", "wait(@in >= 3)")
    y = run(body, {"x": x, "c": C}).outputs["y"]
    assert _bits_equal(y, x.astype(ml_dtypes.bfloat16))

"""Elementwise semantics of the reference interpreter: rounding, IEEE max/min, integer
division, the unary function table and nt.cast.

Every float op upcasts its inputs to float32 (exact for every nt float type), computes in
float32 and rounds the result once, RNE, to the result element type (`finish`). Integer ops
compute in their own dtype.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import scipy.special
from xdsl.dialects.builtin import Float32Type
from xdsl.ir import Attribute

from neuron_opt.dialects.types import is_bool, is_float, numpy_dtype, round_to
from neuron_opt.runtime import special

F32 = np.float32


def is_float_array(x: np.ndarray) -> bool:
    """Float data, numpy's own or ml_dtypes' (whose dtype kind is 'V')."""
    if x.dtype.kind == "f":
        return True
    if x.dtype.kind == "V":
        try:
            ml_dtypes.finfo(x.dtype)
        except (ValueError, TypeError):
            return False
        return True
    return False


def up(x) -> np.ndarray:
    """Float data upcast to float32 (exact); no copy when it already is float32."""
    return np.asarray(x).astype(F32, copy=False)


def finish(x, elt: Attribute, saturate: bool = False) -> np.ndarray:
    """Round a float32 (or integer) result once to `elt`, RNE."""
    x = np.asarray(x)
    if isinstance(elt, Float32Type) and x.dtype == F32:
        return x
    return round_to(x, elt, saturate)


# ---------------------------------------------------------------------------------------------
# IEEE 754-2019 maximum/minimum: -0 < +0 and NaN propagates. np.maximum/np.minimum propagate
# NaN but pick either zero for a ±0 pair (differently for float16 and float32), so the sign bit
# of their result is fixed up with the operands' sign bits. A non-zero result already has the
# right sign under these rules; only a NaN's sign may change (payloads are not IEEE-specified).


def _bits(x: np.ndarray) -> np.ndarray:
    return x.view(f"u{x.dtype.itemsize}")


def _sign_mask(x: np.ndarray):
    return np.array(1 << (8 * x.dtype.itemsize - 1), dtype=f"u{x.dtype.itemsize}")


def ieee_max(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind != "f":
        return np.maximum(a, b)
    r = np.asarray(np.maximum(a, b))
    keep = np.bitwise_and(_bits(a), _bits(b))  # the sign survives only if both operands' did
    keep |= ~_sign_mask(r)
    rb = _bits(r)
    rb &= keep
    return r


def ieee_min(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind != "f":
        return np.minimum(a, b)
    r = np.asarray(np.minimum(a, b))
    sign = np.bitwise_or(_bits(a), _bits(b))  # the sign is set if either operand's was
    sign &= _sign_mask(r)
    rb = _bits(r)
    rb |= sign
    return r


# ---------------------------------------------------------------------------------------------
# Integer division (ONNX/C): quotient truncates toward zero.


def int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    q = np.floor_divide(a, b)
    # floor_divide rounds down; step back toward zero where the exact quotient was negative
    # and inexact.
    fix = (np.remainder(a, b) != 0) & ((a < 0) != (b < 0))
    return np.where(fix, q + 1, q).astype(np.result_type(a, b))


# ---------------------------------------------------------------------------------------------
# Binary ops: (float32 function, integer function or None)


def _div_f(a, b):
    return a / b


BINARY = {
    "add": (np.add, np.add),
    "sub": (np.subtract, np.subtract),
    "mul": (np.multiply, np.multiply),
    "div": (_div_f, int_div),
    "max": (ieee_max, ieee_max),
    "min": (ieee_min, ieee_min),
    "pow": (np.power, None),
}


def binary(kind: str, a: np.ndarray, b: np.ndarray, elt: Attribute) -> np.ndarray:
    f_float, f_int = BINARY[kind]
    if is_float(elt):
        return finish(f_float(up(a), up(b)), elt)
    return finish(f_int(a, b), elt)


def mod(a: np.ndarray, b: np.ndarray, fmod: bool, elt: Attribute) -> np.ndarray:
    """With `fmod`, C fmod (sign of the dividend); else sign of the divisor (integers)."""
    if is_float(elt):
        return finish(np.fmod(up(a), up(b)), elt)
    return finish(np.fmod(a, b) if fmod else np.remainder(a, b), elt)


CMP = {
    "eq": np.equal,
    "ne": np.not_equal,
    "lt": np.less,
    "le": np.less_equal,
    "gt": np.greater,
    "ge": np.greater_equal,
}


def compare(predicate: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if is_float_array(a):
        a, b = up(a), up(b)
    return CMP[predicate](a, b)


# ---------------------------------------------------------------------------------------------
# Unary functions on float32 data.


def _relu(x):
    # IEEE max(x, +0): np.maximum propagates NaN, and adding +0 turns a -0 result into +0
    # while leaving every other value unchanged.
    r = np.maximum(x, F32(0))
    r += F32(0)
    return r


def _in_f64(fn):
    """fn evaluated in float64 and rounded once to fp32."""
    return lambda x: fn(x.astype(np.float64)).astype(F32)


UNARY_FLOAT = {
    "neg": np.negative,
    "abs": np.abs,
    "relu": _relu,
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "rsqrt": lambda x: F32(1) / np.sqrt(x),
    "reciprocal": lambda x: F32(1) / x,
    "tanh": np.tanh,
    "sigmoid": scipy.special.expit,  # stable for large |x|, unlike 1 / (1 + exp(-x))
    "erf": scipy.special.erf,
    "silu": lambda x: x * scipy.special.expit(x),
    "gelu_none": _in_f64(special.gelu),
    "gelu_tanh": _in_f64(special.gelu_tanh),
}

UNARY_INT = {"neg": np.negative, "abs": np.abs}


def unary(kind: str, x: np.ndarray, elt: Attribute) -> np.ndarray:
    if is_float(elt):
        return finish(UNARY_FLOAT[kind](up(x)), elt)
    return finish(UNARY_INT[kind](x), elt)


def clip(x: np.ndarray, lo: float | None, hi: float | None, elt: Attribute) -> np.ndarray:
    """min(max(x, lo), hi) with IEEE max/min; a bound is first rounded to the element type."""
    if is_float(elt):
        r = up(x)
        if lo is not None:
            r = ieee_max(r, up(round_to(np.float64(lo), elt)))
        if hi is not None:
            r = ieee_min(r, up(round_to(np.float64(hi), elt)))
        return finish(r, elt)
    info = np.iinfo(x.dtype)
    r = x
    if lo is not None:
        r = np.maximum(r, x.dtype.type(min(max(np.ceil(lo), info.min), info.max)))
    if hi is not None:
        r = np.minimum(r, x.dtype.type(max(min(np.floor(hi), info.max), info.min)))
    return r


# ---------------------------------------------------------------------------------------------
# nt.cast


def cast(x: np.ndarray, elt: Attribute, saturate: bool) -> np.ndarray:
    """RNE between float types (fp8 saturates only with `saturate`); int -> float rounds once;
    float -> int truncates toward zero and saturates (NaN -> 0, out of range -> the type's
    min/max: ONNX leaves it undefined, this fixes one answer); anything -> i1 is `!= 0`."""
    if is_bool(elt):
        return np.asarray(x != 0) if x.dtype != np.bool_ else x
    if is_float(elt):
        if is_float_array(x):
            return finish(up(x), elt, saturate)
        # Integers go through float64 (exact below 2^53), which round_to rounds once.
        return round_to(x.astype(np.float64), elt, saturate)
    dt = numpy_dtype(elt)
    if is_float_array(x):
        return saturate_int(up(x), dt)
    return x.astype(dt)


def scaled_cast(x: np.ndarray, scale, axis: int | None, elt: Attribute) -> np.ndarray:
    """nt.scaled_cast: x * scale in fp32 (scale per index of `axis`, when given), rounded once
    to `elt` (fp8), saturating."""
    s = np.asarray(scale, dtype=F32)
    if axis is not None:
        shape = [1] * x.ndim
        shape[axis] = s.size
        s = s.reshape(shape)
    return finish(up(x) * s, elt, saturate=True)


def saturate_int(x: np.ndarray, dt: np.dtype) -> np.ndarray:
    """Float -> integer dtype: truncate toward zero, NaN -> 0, clamp to the type's range."""
    info = np.iinfo(dt)
    t = np.nan_to_num(np.trunc(x.astype(np.float64)), nan=0.0)
    return np.clip(t, info.min, info.max).astype(dt)

"""Element types shared by every layer: names, numpy dtypes, byte sizes and RNE rounding.

This is a leaf module (numpy, ml_dtypes, xDSL's builtin types and the option words of
neuron_opt/options.py only), so the passes, the
reference interpreter and the simulator can all use it without sharing anything else.
"""

from __future__ import annotations

import functools
import io
from typing import TypeGuard, cast

import ml_dtypes
import numpy as np
from numpy.typing import ArrayLike
from xdsl.dialects.builtin import (
    AnyFloat,
    BFloat16Type,
    Float8E4M3Type,
    Float16Type,
    Float32Type,
    FloatTF32Type,
    IntegerType,
    Signedness,
    TensorType,
    bf16,
    f8E4M3,
    f16,
    f32,
    tf32,
)
from xdsl.ir import Attribute, SSAValue
from xdsl.printer import Printer

from neuron_opt.options import CAST_TYPES

# The float element types nt accepts. fp8 is NC-v2's IEEE-style E4M3 (max 240, has inf).
NT_FLOAT_TYPES = (Float32Type, FloatTF32Type, BFloat16Type, Float16Type, Float8E4M3Type)
# Every element type nt accepts, as IR spells it (docs/nt.md), for error messages.
ELEMENT_TYPE_SPELLINGS = "f32, tf32, bf16, f16, f8E4M3, i1, i8, i16, i32, i64"

# --auto-cast-type spellings (neuron_opt/options.py, in its order) -> element type.
AUTO_CAST_TYPES: dict[str, AnyFloat] = dict(zip(CAST_TYPES, (bf16, f16, tf32, f8E4M3), strict=True))

FP8_MAX = 240.0
F16_MAX = 65504.0

_NUMPY_FLOAT = {
    Float32Type: np.dtype(np.float32),
    FloatTF32Type: np.dtype(np.float32),  # tf32 is stored as float32 with 13 low bits clear
    BFloat16Type: np.dtype(ml_dtypes.bfloat16),
    Float16Type: np.dtype(np.float16),
    Float8E4M3Type: np.dtype(ml_dtypes.float8_e4m3),
}

_BYTES = {Float32Type: 4, FloatTF32Type: 4, BFloat16Type: 2, Float16Type: 2, Float8E4M3Type: 1}


_BY_NAME: dict[str, Attribute] = {
    "f32": f32,
    "tf32": tf32,
    "bf16": bf16,
    "f16": f16,
    "f8E4M3": f8E4M3,
}


def element_type_named(name: str) -> Attribute:
    """The element type IR spells `name` (f32, bf16, i32, i1, ...)."""
    if name in _BY_NAME:
        return _BY_NAME[name]
    if name.startswith("i") and name[1:].isdigit():
        return IntegerType(int(name[1:]))
    raise ValueError(f"unknown element type {name!r}")


def is_float(elt: Attribute) -> bool:
    return isinstance(elt, NT_FLOAT_TYPES)


def is_integer(elt: Attribute) -> TypeGuard[IntegerType]:
    return isinstance(elt, IntegerType)


def is_bool(elt: Attribute) -> bool:
    return isinstance(elt, IntegerType) and elt.width.data == 1


def element_type(t: Attribute) -> Attribute:
    """The element type of a tensor type (or the type itself for a scalar)."""
    return t.element_type if isinstance(t, TensorType) else t


def tensor_type_of(v: SSAValue) -> TensorType:
    """The type of an nt value, a tensor: nt's verifier checks every operand and result."""
    return cast(TensorType, v.type)


def is_float_tensor(t: Attribute) -> bool:
    return isinstance(t, TensorType) and is_float(t.element_type)


@functools.cache  # element types are few and hashable; the simulator asks per operand
def numpy_dtype(elt: Attribute) -> np.dtype:
    """The numpy dtype that holds values of `elt` (tf32 -> float32)."""
    if isinstance(elt, IntegerType):
        width = elt.width.data
        if width == 1:
            return np.dtype(np.bool_)
        if width in (8, 16, 32, 64):
            unsigned = elt.signedness.data == Signedness.UNSIGNED
            return np.dtype(f"{'u' if unsigned else ''}int{width}")
    for cls, dt in _NUMPY_FLOAT.items():
        if isinstance(elt, cls):
            return dt
    raise ValueError(f"no numpy dtype for element type {elt}")


def max_finite(elt: Attribute) -> float:
    """The largest finite value of a float element type (tf32: f32's exponent, 10 mantissa bits)."""
    if isinstance(elt, FloatTF32Type):
        return (2 - 2.0**-10) * 2.0**127
    return float(ml_dtypes.finfo(numpy_dtype(elt)).max)


@functools.cache
def byte_size(elt: Attribute) -> int:
    """Bytes per element in memory. Never derived from xDSL's bitwidth (tf32 reports 19)."""
    for cls, n in _BYTES.items():
        if isinstance(elt, cls):
            return n
    return max(1, numpy_dtype(elt).itemsize)


def type_name(elt: Attribute) -> str:
    """Short printable name: f32, bf16, i64, ..."""
    out = io.StringIO()
    Printer(stream=out).print_attribute(elt)
    return out.getvalue()


def round_tf32(x: np.ndarray) -> np.ndarray:
    """Round float32 values to tf32 (10 mantissa bits) with RNE; result stays float32."""
    x = np.asarray(x, dtype=np.float32)
    bits = np.ascontiguousarray(x).reshape(x.shape).view(np.uint32)
    lsb = (bits >> np.uint32(13)) & np.uint32(1)
    rounded = (bits + np.uint32(0xFFF) + lsb) & np.uint32(0xFFFFE000)
    # A carry out of the mantissa rolls into the exponent: overflow becomes inf, as it should.
    # NaNs keep a quiet-NaN pattern (clearing their low bits could turn them into inf).
    rounded = np.where(np.isnan(x), bits | np.uint32(0x00400000), rounded)
    return rounded.astype(np.uint32).view(np.float32).reshape(x.shape)


def round_to(x: ArrayLike, elt: Attribute, saturate: bool = False) -> np.ndarray:
    """Round values to element type `elt` once, nearest-even.

    Float inputs are first taken exactly to float32 when they are narrower, and rounded once from
    float64 otherwise. Overflow gives +-inf, except that `saturate` (fp8 only) clamps finite
    overflow and +-inf to +-240, keeping NaN.
    """
    x = np.asarray(x)
    dt = numpy_dtype(elt)
    if not is_float(elt):
        if is_bool(elt):
            return x.astype(np.bool_)
        return x.astype(dt)
    if x.dtype == np.float64 and not isinstance(elt, Float32Type):
        x = _round_f64_via_f32(x)
    else:  # no copy of float32 data: each branch below returns a new array
        with np.errstate(over="ignore"):
            x = x.astype(np.float32, copy=False)
    if isinstance(elt, FloatTF32Type):
        return round_tf32(x)
    if saturate and isinstance(elt, Float8E4M3Type):
        x = np.clip(x, -FP8_MAX, FP8_MAX)  # clip keeps NaN
    with np.errstate(over="ignore"):
        return x.astype(dt)


def _round_f64_via_f32(x: np.ndarray) -> np.ndarray:
    """float64 -> float32 without creating a double rounding downstream.

    Rounds to float32 towards zero and sets the sticky lowest bit when inexact (round-to-odd):
    a later RNE to any format of at most 22 mantissa bits then equals one direct RNE.
    """
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        y = x.astype(np.float32)
        back = y.astype(np.float64)
        inexact = np.isfinite(x) & (back != x)
        # Step to the float32 neighbour towards zero when RNE went away from zero.
        away = inexact & (np.abs(back) > np.abs(x))
        y = np.where(away, np.nextafter(y, np.float32(0)), y)
        bits = y.view(np.uint32) | np.where(inexact & np.isfinite(y), np.uint32(1), np.uint32(0))
    return bits.astype(np.uint32).view(np.float32)


def tensor_bytes(t: TensorType) -> int:
    n = 1
    for d in t.get_shape():
        n *= d
    return n * byte_size(t.element_type)


__all__ = [
    "AUTO_CAST_TYPES",
    "F16_MAX",
    "FP8_MAX",
    "NT_FLOAT_TYPES",
    "bf16",
    "byte_size",
    "element_type",
    "f8E4M3",
    "f16",
    "f32",
    "is_bool",
    "is_float",
    "is_float_tensor",
    "is_integer",
    "max_finite",
    "numpy_dtype",
    "round_tf32",
    "round_to",
    "tensor_bytes",
    "tf32",
    "type_name",
]

"""ONNX element types <-> nt element types (and the numpy dtypes stored in the .npz)."""

from __future__ import annotations

import sys

import ml_dtypes
import numpy as np
from onnx import TensorProto, helper, numpy_helper
from xdsl.dialects.builtin import IntegerType, TensorType, bf16, f16, f32, i1, i32, i64
from xdsl.ir import Attribute

from neuron_opt import memory
from neuron_opt.diagnostics import CompileError
from neuron_opt.dialects.types import numpy_dtype

i8 = IntegerType(8)

# The ONNX types nt has. ONNX has no IEEE-style E4M3 (its FLOAT8E4M3FN is OCP's, NC-v4's
# format), and docs/design.md leaves f64, unsigned and 16-bit integers out of nt.
ONNX_TO_NT: dict[int, Attribute] = {
    TensorProto.FLOAT: f32,
    TensorProto.FLOAT16: f16,
    TensorProto.BFLOAT16: bf16,
    TensorProto.BOOL: i1,
    TensorProto.INT8: i8,
    TensorProto.INT32: i32,
    TensorProto.INT64: i64,
}

SUPPORTED_NAMES = "f32, f16, bf16, bool, int8, int32, int64"


def onnx_type_name(code: int) -> str:
    try:
        return TensorProto.DataType.Name(code)
    except ValueError:
        return f"data type {code}"


def nt_element(code: int) -> Attribute | None:
    """The nt element type for an ONNX TensorProto data type, or None when nt lacks it."""
    return ONNX_TO_NT.get(code)


def element_of_dtype(dt: np.dtype) -> Attribute | None:
    """The nt element type that holds numpy arrays of `dt`, or None when nt lacks it."""
    dt = np.dtype(dt)
    table = {
        np.dtype(np.float32): f32,
        np.dtype(np.float16): f16,
        np.dtype(ml_dtypes.bfloat16): bf16,
        np.dtype(np.bool_): i1,
        np.dtype(np.int8): i8,
        np.dtype(np.int32): i32,
        np.dtype(np.int64): i64,
    }
    return table.get(dt)


def dtype_label(dt: np.dtype) -> str:
    """ONNX-style name of a numpy dtype for messages (float64 -> DOUBLE)."""
    try:
        return onnx_type_name(helper.np_dtype_to_tensor_dtype(np.dtype(dt)))
    except (KeyError, ValueError, TypeError):
        return str(dt)


def tensor_type(elt: Attribute, shape) -> TensorType:
    return TensorType(elt, [int(d) for d in shape])


def storage_array(arr: np.ndarray) -> np.ndarray:
    """The array as saved in the .npz: plain numpy dtypes only (np.savez turns ml_dtypes types
    into |V2), so bf16 is widened to float32, which is exact; loaders round back to the IR type."""
    if arr.dtype == np.dtype(ml_dtypes.bfloat16):
        return arr.astype(np.float32)
    return np.ascontiguousarray(arr)


def as_nt_array(arr: np.ndarray, elt: Attribute) -> np.ndarray:
    return np.asarray(arr).astype(numpy_dtype(elt), copy=False)


def declared_bytes(t: TensorProto) -> int:
    n = 1
    for d in t.dims:
        n *= max(int(d), 0)
    try:
        itemsize = helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
    except (KeyError, TypeError, ValueError):
        itemsize = 8
    return n * itemsize


def initializer_array(t: TensorProto, where: str) -> np.ndarray:
    """An initializer's data, its declared size checked against the budget and its data length
    against its shape first."""
    memory.check(declared_bytes(t), f"initializer {t.name}", where)
    packed = {getattr(TensorProto, n, -1) for n in ("STRING", "INT4", "UINT4", "FLOAT4E2M1")}
    if t.HasField("raw_data") and t.data_type not in packed:
        raw = t.raw_data  # read once: each read of the field copies its bytes
        want = declared_bytes(t)
        if len(raw) != want:
            raise CompileError(
                f"initializer {t.name}: {len(raw)} bytes of raw data for a shape of {want} bytes",
                where,
            )
        if t.data_type in ONNX_TO_NT and sys.byteorder == "little":
            # what numpy_helper.to_array does for these types, minus a second copy
            return np.frombuffer(raw, helper.tensor_dtype_to_np_dtype(t.data_type)).reshape(t.dims)
    try:
        return numpy_helper.to_array(t)
    except Exception as e:  # onnx raises ValueError, TypeError... on inconsistent protos
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CompileError(
            f"initializer {t.name}: cannot read its data ({detail})", where
        ) from None

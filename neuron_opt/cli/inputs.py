"""A model's inputs from an .npz, checked against its graph, and onnxruntime's outputs for them.

Inputs come in the ONNX model's input types. A float64 array for a float input (numpy's default
dtype) is rounded to the input's type, nearest-even, with a note on stderr; any other dtype or
shape is an error.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

import numpy as np

from neuron_opt.diagnostics import CompileError


def add_model_arguments(p) -> None:
    """MODEL.onnx and --inputs X.npz, for the commands that evaluate an ONNX model."""
    p.add_argument("model", metavar="MODEL.onnx", help="the ONNX model")
    p.add_argument(
        "--inputs",
        metavar="X.npz",
        required=True,
        help="inputs keyed by the model's input names, in the model's input dtypes "
        "(float64 is rounded to a float input's type)",
    )


def onnx_np_dtype(elem_type: int) -> np.dtype:
    import onnx

    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))


def shape_text(shape) -> str:
    return "x".join(map(str, shape)) or "scalar"


def _float_type(dtype: np.dtype):
    """The nt float type held in numpy dtype `dtype`, or None."""
    from neuron_opt.dialects.types import NT_FLOAT_TYPES, numpy_dtype

    return next((t() for t in NT_FLOAT_TYPES if numpy_dtype(t()) == dtype), None)


def load_inputs(path: str, model) -> dict[str, np.ndarray]:
    """The .npz's arrays for the ONNX model `model` (a ModelProto), checked against its graph
    inputs (name, dtype, shape)."""
    from neuron_opt.npz import NpzFile

    given = NpzFile(path)
    inits = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    names = [i.name for i in inputs]
    for inp in inputs:  # names first, then headers, then data: nothing unused is decompressed
        if inp.name not in given:
            tt = inp.type.tensor_type
            want = f"{onnx_np_dtype(tt.elem_type)} {shape_text(d.dim_value for d in tt.shape.dim)}"
            raise CompileError(f"missing (expected {want})", f"{path}: input {inp.name}")
    for key in given:  # after the missing ones: a misspelt name shows up as missing first
        if key not in names:
            raise CompileError(
                f"'{key}' is not an input of the model (inputs: {', '.join(names)})", path
            )
    rounded = {}
    for inp in inputs:
        where = f"{path}: input {inp.name}"
        tt = inp.type.tensor_type
        want_dt = onnx_np_dtype(tt.elem_type)
        want_shape = tuple(d.dim_value for d in tt.shape.dim)
        shape, dt = given.header(inp.name)
        if dt == np.float64 and dt != want_dt and (elt := _float_type(want_dt)) is not None:
            rounded[inp.name] = (want_dt, elt)
        elif dt != want_dt:
            raise CompileError(
                f"expected dtype {want_dt} (the model's input type), found {dt}", where
            )
        if shape != want_shape:
            raise CompileError(
                f"expected shape {shape_text(want_shape)}, found {shape_text(shape)}", where
            )
    from neuron_opt.dialects.types import round_to

    out = {}
    for inp in inputs:
        out[inp.name] = given[inp.name]
        if inp.name in rounded:
            want_dt, elt = rounded[inp.name]
            print(
                f"{path}: input {inp.name}: note: float64 rounded to the model's "
                f"{want_dt} (nearest-even)",
                file=sys.stderr,
            )
            out[inp.name] = round_to(out[inp.name], elt)
    return out


def run_onnxruntime(model_path: str, inputs: Mapping[str, np.ndarray], names: list[str]) -> dict:
    """onnxruntime's outputs `names` for `inputs` (CPU); its failures are one-line errors."""
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
        values = sess.run(names, dict(inputs))  # onnxruntime takes a dict
    except Exception as e:  # onnxruntime raises its own exception types; keep one line
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CompileError(f"onnxruntime failed: {detail}", model_path) from None
    return dict(zip(names, values, strict=True))

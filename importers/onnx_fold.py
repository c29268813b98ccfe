"""The constant-folding environment of the ONNX importer.

Every ONNX value is either a known numpy array (initializers, Constant nodes, and everything
computed only from those, such as the Shape/Gather/Concat chains TorchScript exporters emit) or
an SSA value in the function being built. Nodes whose inputs are all known are evaluated at
import with ONNX's own numpy reference implementation, so shape arithmetic never reaches the IR.
An array becomes IR only when an SSA consumer needs it: inline `nt.constant` when small or a
splat (ConstantOfShape, zero biases), else `nt.weight @NAME` with the data kept for the .npz.
"""

from __future__ import annotations

import warnings

import numpy as np
import onnx
from xdsl.dialects.builtin import TensorType
from xdsl.ir import Block, SSAValue

from neuron_opt.dialects.nt import ConstantOp, WeightOp
from neuron_opt.importers.onnx_types import (
    SUPPORTED_NAMES,
    as_nt_array,
    dtype_label,
    element_of_dtype,
    storage_array,
    tensor_type,
)

# Arrays with more elements than this go out of line into the .npz.
INLINE_MAX_ELEMENTS = 16

# Ops never folded: their outputs are not a function of their inputs.
NOT_FOLDABLE = {
    "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial",
    "Bernoulli",
}  # fmt: skip


class Env:
    """ONNX value name -> known array or SSA value, and the weights gathered so far."""

    def __init__(self, block: Block):
        self.block = block
        self.arrays: dict[str, np.ndarray] = {}
        self.values: dict[str, SSAValue] = {}
        self.weights: dict[str, np.ndarray] = {}
        self.used: set[str] = set()  # names some node or the graph output reads

    def defined(self, name: str) -> bool:
        return name in self.arrays or name in self.values

    def known(self, name: str) -> np.ndarray | None:
        return self.arrays.get(name)

    def set_array(self, name: str, array: np.ndarray) -> None:
        self.arrays[name] = np.asarray(array)

    def set_value(self, name: str, value: SSAValue) -> None:
        self.values[name] = value

    def type_of(self, name: str) -> TensorType | None:
        """The tensor type a name has (or would have once materialized); None if nt lacks
        its element type."""
        if name in self.values:
            return self.values[name].type
        arr = self.arrays[name]
        elt = element_of_dtype(arr.dtype)
        return tensor_type(elt, arr.shape) if elt is not None else None

    def ssa(self, name: str, fail) -> SSAValue:
        """The SSA value of `name`, materializing a known array once (`fail(msg)` raises)."""
        if name in self.values:
            return self.values[name]
        arr = self.arrays[name]
        elt = element_of_dtype(arr.dtype)
        if elt is None:
            fail(
                f"value '{name}' has element type {dtype_label(arr.dtype)}, which nt lacks "
                f"(it has {SUPPORTED_NAMES})"
            )
        t = tensor_type(elt, arr.shape)
        data = as_nt_array(arr, elt)
        if data.size > INLINE_MAX_ELEMENTS and not _is_splat(data):
            key = self._weight_key(name)
            self.weights[key] = storage_array(data)
            op = WeightOp.get(key, t)
        else:
            op = ConstantOp.from_array(data, t)
        self.block.add_op(op)
        self.values[name] = op.result
        return op.result

    def _weight_key(self, name: str) -> str:
        key, n = name or "weight", 1
        while key in self.weights:
            n += 1
            key = f"{name}_{n}"
        return key


def _is_splat(a: np.ndarray) -> bool:
    """All elements share one bit pattern: prints as one value, so it stays inline."""
    flat = a.reshape(-1)
    raw = flat.view(f"u{flat.dtype.itemsize}") if flat.dtype.kind in "fV" else flat
    return bool((raw == raw[0]).all())


def fold(node: onnx.NodeProto, opset: int, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    """Evaluate one node on known inputs with ONNX's numpy reference (absent optional inputs are
    None). Raises any exception the reference raises."""
    from onnx.reference import ReferenceEvaluator

    feeds = {n: a for n, a in zip(node.input, inputs) if n}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        ev = ReferenceEvaluator(node, opsets={"": opset})
        outs = ev.run(None, feeds)
    return [np.asarray(o) for o in outs]

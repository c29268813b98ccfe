"""The constant-folding environment of the ONNX importer.

Every ONNX value is either a known numpy array (initializers, Constant nodes, and everything
computed only from those, such as the Shape/Gather/Concat chains TorchScript exporters emit) or
an SSA value in the function being built. Nodes whose inputs are all known are evaluated at
import with ONNX's own numpy reference implementation, so shape arithmetic never reaches the IR.
An array becomes IR only when an SSA consumer needs it: inline `nt.constant` when small or a
splat (ConstantOfShape, zero biases) that an IR parser accepts, else `nt.weight @NAME` with the
data kept for the .npz.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import NoReturn

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator
from xdsl.dialects.builtin import TensorType
from xdsl.ir import Block, SSAValue

from neuron_opt import memory
from neuron_opt.dialects.nt import MAX_INLINE_ELEMENTS, ConstantOp, WeightOp
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
        self.values: dict[str, SSAValue[TensorType]] = {}
        self.weights: dict[str, np.ndarray] = {}
        self.used: set[str] = set()  # names some node or the graph output reads

    def defined(self, name: str) -> bool:
        return name in self.arrays or name in self.values

    def known(self, name: str) -> np.ndarray | None:
        return self.arrays.get(name)

    def set_array(self, name: str, array: np.ndarray) -> None:
        self.arrays[name] = np.asarray(array)

    def set_value(self, name: str, value: SSAValue[TensorType]) -> None:
        self.values[name] = value

    def type_of(self, name: str) -> TensorType | None:
        """The tensor type a name has (or would have once materialized); None if nt lacks
        its element type."""
        if name in self.values:
            return self.values[name].type
        arr = self.arrays[name]
        elt = element_of_dtype(arr.dtype)
        return tensor_type(elt, arr.shape) if elt is not None else None

    def ssa(self, name: str, fail: Callable[[str], NoReturn]) -> SSAValue[TensorType]:
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
        if data.size > INLINE_MAX_ELEMENTS and (
            data.size > MAX_INLINE_ELEMENTS or not _is_splat(data)
        ):
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


def fold_budget(node: onnx.NodeProto, inputs: list[np.ndarray | None], where: str) -> None:
    """Check the size of what the ops that grow from small constant inputs would build
    (ConstantOfShape [70000, 70000], Range to 3e9, Expand, Tile, ...) against the memory
    budget before it is built."""
    x0, x1, x2 = (inputs[i] if i < len(inputs) else None for i in range(3))
    op = node.op_type
    n, itemsize = None, 8
    try:
        if op == "ConstantOfShape" and x0 is not None:
            n = _prod(x0.reshape(-1))
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            itemsize = (
                onnx.helper.tensor_dtype_to_np_dtype(value.data_type).itemsize if value else 4
            )
        elif op == "Range" and x0 is not None and x1 is not None and x2 is not None:
            itemsize = x0.dtype.itemsize
            start, limit, delta = (float(np.asarray(x).reshape(-1)[0]) for x in (x0, x1, x2))
            n = int(max(np.ceil((limit - start) / delta), 0)) if delta else 0
        elif op == "Expand" and x1 is not None:
            shape = [int(v) for v in x1.reshape(-1)]
            src = list(x0.shape) if x0 is not None else []
            width = max(len(shape), len(src))
            shape = [1] * (width - len(shape)) + shape
            src = [1] * (width - len(src)) + src
            n = _prod(max(a, b) for a, b in zip(shape, src))
            itemsize = x0.dtype.itemsize if x0 is not None else 8
        elif op == "Tile" and x1 is not None and x0 is not None:
            n, itemsize = x0.size * _prod(x1.reshape(-1)), x0.dtype.itemsize
        elif op == "OneHot" and x1 is not None and x0 is not None:
            n = x0.size * _prod(x1.reshape(-1))
    except (ValueError, OverflowError, TypeError, IndexError, KeyError):
        return  # malformed: the op itself reports it
    if n is not None:
        memory.check(n * itemsize, f"{op}'s output ({n} elements)", where)


def _prod(values) -> int:
    n = 1
    for v in values:
        n *= max(int(v), 0)
    return n


def fold(node: onnx.NodeProto, opset: int, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    """Evaluate one node on known inputs with ONNX's numpy reference (absent optional inputs are
    None). Raises any exception the reference raises."""
    feeds = {n: a for n, a in zip(node.input, inputs) if n}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        ev = ReferenceEvaluator(node, opsets={"": opset})
        outs = ev.run(None, feeds)
    return [np.asarray(o) for o in outs]

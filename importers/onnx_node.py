"""What an op handler sees of one ONNX node: its inputs (known arrays or SSA values), its
attributes, and `emit`, which builds a checked nt op in the function body."""

from __future__ import annotations

from typing import NoReturn, cast, overload

import numpy as np
import onnx
from xdsl.dialects.builtin import IntegerType, NameLoc, StringAttr, TensorType, UnknownLoc
from xdsl.ir import Attribute, SSAValue
from xdsl.utils.exceptions import VerifyException

from neuron_opt.diagnostics import CompileError
from neuron_opt.dialects import shapes
from neuron_opt.dialects.nt import ConstantOp, NtOp, ReshapeOp
from neuron_opt.dialects.types import is_bool, is_float, numpy_dtype, type_name
from neuron_opt.importers.onnx_fold import Env
from neuron_opt.importers.onnx_types import as_nt_array, tensor_type


class Unsupported(CompileError):
    """A valid model that uses something nt or this importer does not cover (an op, an
    attribute value, a dtype, a dynamic shape). Other CompileErrors mean an invalid model."""


_ELEMENT_RULES = {
    "float": (is_float, "float"),
    "numeric": (lambda e: is_float(e) or (isinstance(e, IntegerType) and not is_bool(e)),
                "float or integer"),
    "bool": (is_bool, "bool"),
    "any": (lambda e: True, "any"),
}  # fmt: skip


Value = SSAValue[TensorType]  # every nt value is a tensor


class NodeCtx:
    def __init__(self, node: onnx.NodeProto, where: str, env: Env, opset: int, since: int):
        self.node = node
        self.where = where
        self.env = env
        self.opset = opset
        self.since = since
        self.op_type = node.op_type
        self._attrs = {a.name: a for a in node.attribute}

    # -- errors

    def unsupported(self, message: str) -> NoReturn:
        raise Unsupported(message, self.where)

    def invalid(self, message: str) -> NoReturn:
        raise CompileError(message, self.where)

    # -- inputs

    @property
    def n_inputs(self) -> int:
        return len(self.node.input)

    def has(self, i: int) -> bool:
        return i < len(self.node.input) and self.node.input[i] != ""

    def name(self, i: int) -> str:
        return self.node.input[i]

    def value(self, i: int) -> Value:
        return self.env.ssa(self.node.input[i], self.unsupported)

    def values(self) -> list[Value]:
        return [self.value(i) for i in range(self.n_inputs) if self.has(i)]

    def known(self, i: int) -> np.ndarray | None:
        return self.env.known(self.node.input[i]) if self.has(i) else None

    def const(self, i: int, what: str) -> np.ndarray:
        """Input i, which nt needs at compile time (a shape, axes, pads, bounds...)."""
        arr = self.known(i)
        if arr is None:
            self.unsupported(
                f"input {i} ('{self.node.input[i]}', the {what}) must be a constant: it is "
                "computed at run time, which would make shapes or attributes dynamic"
            )
        return arr

    def ints(self, i: int, what: str) -> list[int]:
        return [int(v) for v in np.asarray(self.const(i, what)).reshape(-1)]

    def type(self, i: int) -> TensorType:
        t = self.env.type_of(self.node.input[i])
        return self.value(i).type if t is None else t  # value() raises the unsupported-dtype error

    def shape(self, i: int) -> tuple[int, ...]:
        name = self.node.input[i]
        arr = self.env.known(name)
        if arr is not None:
            return tuple(arr.shape)
        return tuple(self.env.values[name].type.get_shape())

    def rank(self, i: int) -> int:
        return len(self.shape(i))

    def elt(self, i: int) -> Attribute:
        return self.type(i).element_type

    # -- attributes

    # ONNX's checker has matched every attribute's type against the op schema before a handler
    # runs, so each accessor only converts.

    def has_attr(self, name: str) -> bool:
        return name in self._attrs

    @overload
    def int_attr(self, name: str) -> int | None: ...
    @overload
    def int_attr(self, name: str, default: int) -> int: ...
    def int_attr(self, name: str, default: int | None = None) -> int | None:
        a = self._attrs.get(name)
        return default if a is None else int(a.i)

    @overload
    def ints_attr(self, name: str) -> list[int] | None: ...
    @overload
    def ints_attr(self, name: str, default: list[int]) -> list[int]: ...
    def ints_attr(self, name: str, default: list[int] | None = None) -> list[int] | None:
        a = self._attrs.get(name)
        return default if a is None else [int(v) for v in a.ints]

    def required_ints(self, name: str) -> list[int]:
        if (v := self.ints_attr(name)) is None:
            self.invalid(f"missing attribute '{name}'")
        return v

    def str_attr(self, name: str, default: str) -> str:
        a = self._attrs.get(name)
        return default if a is None else a.s.decode("utf-8", "replace")

    @overload
    def float_attr(self, name: str) -> float | None: ...
    @overload
    def float_attr(self, name: str, default: float) -> float: ...
    def float_attr(self, name: str, default: float | None = None) -> float | None:
        """A float attribute (stored as f32 in ONNX) as its shortest f32 text's value, so that
        epsilon=1e-5 prints as 1.0e-05 and still rounds back to the same f32."""
        a = self._attrs.get(name)
        return default if a is None else float(str(np.float32(a.f)))

    def attr_proto(self, name: str) -> onnx.AttributeProto:
        """The attribute itself (a tensor, or a value that must keep its exact f32 bits)."""
        return self._attrs[name]

    # -- building

    def emit(
        self,
        cls: type[NtOp],
        *operands: Value | None,
        result_type: Attribute | None = None,
        **props,
    ) -> Value:
        """Build `cls` (result type inferred unless given), check it, append it to the body."""
        rule, label = _ELEMENT_RULES[cls.ELEMENTS]
        for v in operands:
            if v is not None and not rule(v.type.element_type):
                self.unsupported(
                    f"element type {type_name(v.type.element_type)} is not supported here "
                    f"({cls.name} takes {label} tensors)"
                )
        try:
            infer_type = getattr(cls, "infer_type", None)  # contractions: from the acc type
            if result_type is None and infer_type is not None:
                given = {k: v for k, v in props.items() if v is not None and v is not False}
                result_type = infer_type([v.type for v in operands if v is not None], given)
            op = cls.make(*operands, result_type=result_type, **props)
            op.verify_()  # nt's own checks; make() already fixed the operand/property layout
        except (VerifyException, shapes.ShapeError) as e:
            self.invalid(f"{cls.name}: {str(e).strip().splitlines()[0]}")
        self._add(op)
        return cast(Value, op.results[0])  # verified: a tensor

    def _add(self, op) -> None:
        # The node as the op's location: later errors (e.g. no lowering) name the ONNX node.
        op.location = NameLoc(StringAttr(self.where), UnknownLoc())
        self.env.block.add_op(op)

    def constant(self, values, elt: Attribute, shape=None) -> Value:
        """A small inline constant of element type `elt`."""
        arr = np.asarray(values)
        if shape is not None:
            arr = arr.reshape(shape)
        data = as_nt_array(arr, elt)
        op = ConstantOp.from_array(data, tensor_type(elt, data.shape))
        self._add(op)
        return op.result

    def scalar_like(self, value: float, v: Value) -> Value:
        """A rank-0 constant of v's element type (broadcasts against anything)."""
        return self.constant(
            np.asarray(value, dtype=numpy_dtype(v.type.element_type)), v.type.element_type
        )

    def reshape(self, v: Value, shape) -> Value:
        shape = tuple(int(d) for d in shape)
        if tuple(v.type.get_shape()) == shape:
            return v
        return self.emit(ReshapeOp, v, result_type=tensor_type(v.type.element_type, shape))

"""The `nt` tensor dialect: value-semantic ops on static-shape tensors.

Every op carries exactly one op-class trait (MATMUL, FP32, FOLLOW, MOVE); cast policies read only
that trait. Every op computes in fp32 from its inputs and rounds its result once; the class
only steers the passes.

Syntax shared by most ops (see NtOp):
    %r = nt.add %a, %b : tensor<4x8xf32>                      (all types equal)
    %r = nt.add %a, %b : (tensor<4x1xf32>, tensor<8xf32>) -> tensor<4x8xf32>
    %r = nt.softmax %x {axis = 1 : i64} : tensor<4x8xf32>
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, Literal, get_args, overload

import numpy as np
from xdsl.dialects.builtin import (
    AnyFloat,
    BytesAttr,
    DenseArrayBase,
    Float8E4M3Type,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    TensorType,
    UnitAttr,
    f32,
    i1,
    i64,
)
from xdsl.ir import Attribute, Dialect, Operation, OpResult, ParametrizedAttribute, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.parser import AttrParser, Parser
from xdsl.printer import Printer
from xdsl.traits import OpTrait, Pure
from xdsl.utils.exceptions import VerifyException

from neuron_opt.dialects import shapes
from neuron_opt.dialects.props import array_values, from_attr, to_attr
from neuron_opt.dialects.types import (
    is_bool,
    is_float,
    numpy_dtype,
    round_to,
    tensor_type_of,
    type_name,
)
from neuron_opt.npz import DIGEST_ATTR, WEIGHTS_ATTR  # noqa: F401  (part of nt's conventions)

# ---------------------------------------------------------------------------------------------
# Op classes


class OpClass(OpTrait):
    """The cast-policy class of an op. Subclasses are the four classes; `name` is printed."""

    name: ClassVar[str]


class MatmulClass(OpClass):
    """Contraction on TensorE: low-precision inputs, fp32 accumulation."""

    name = "MATMUL"


class Fp32Class(OpClass):
    """Numerically sensitive: computes in fp32 inside whatever it reads and writes."""

    name = "FP32"


class FollowClass(OpClass):
    """Computes in its inputs' type."""

    name = "FOLLOW"


class MoveClass(OpClass):
    """Data movement and monotone ops: commute exactly with rounding."""

    name = "MOVE"


OP_CLASSES = (MatmulClass, Fp32Class, FollowClass, MoveClass)


def op_class(op: Operation) -> type[OpClass] | None:
    for cls in OP_CLASSES:
        if op.has_trait(cls):
            return cls
    return None


# ---------------------------------------------------------------------------------------------
# Inline constant data: exact for every float value (±0, subnormals, max, ±inf, NaN payloads).


def _format_element(v, elt: Attribute) -> str:
    if is_bool(elt):
        return "true" if v else "false"
    if not is_float(elt):
        return str(int(v))
    f = float(v)
    if math.isnan(f):
        # NaN keeps its payload: print the bit pattern in the type's width.
        raw = np.asarray(v, dtype=numpy_dtype(elt)).reshape(1)
        width = raw.dtype.itemsize
        bits = int(raw.view(f"u{width}")[0])
        return f"0x{bits:0{2 * width}X}"
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    return _shortest(f, elt)


def _shortest(f: float, elt: Attribute) -> str:
    """The shortest decimal that rounds (RNE) back to the same value of type `elt`."""
    want = np.asarray(f, dtype=numpy_dtype(elt)).reshape(1)
    # Whole numbers below 1e16 keep all their integer digits (65504.0, not 6.55e+04).
    first = int(math.log10(abs(f))) + 1 if 1.0 <= abs(f) < 1e16 else 1
    s = f"{f:.17g}"  # 17 digits hold any double
    for digits in range(first, 17):
        t = f"{f:.{digits}g}"
        if round_to(np.array([float(t)]), elt)[0] == want[0]:
            s = t
            break
    if "e" in s and "." not in s.split("e")[0]:  # MLIR float literals need a dot
        s = s.replace("e", ".0e")
    elif "e" not in s and "." not in s:
        s += ".0"
    if f == 0.0 and math.copysign(1.0, f) < 0:
        s = "-0.0"
    return s


def format_elements(array: np.ndarray, elt: Attribute) -> str:
    flat = array.reshape(-1)
    if flat.size >= 1 and _all_same_bits(flat):
        return _format_element(flat[0], elt)
    return "[" + ", ".join(_format_element(v, elt) for v in flat) + "]"


def _all_same_bits(flat: np.ndarray) -> bool:
    raw = flat.view(f"u{flat.dtype.itemsize}") if flat.dtype.kind in "fV" else flat
    return bool((raw == raw[0]).all())


# Inline constants are for small data (weights go out of line); this bounds memory on bad input.
MAX_INLINE_ELEMENTS = 1 << 24


# ("num", a number) or ("hex", a bit pattern, an int).
RawElement = tuple[str, float]


def parse_raw_elements(parser: AttrParser) -> tuple[list[RawElement], int]:
    """Parse `v` (a splat) or `[v, v, ...]` before the type is known: each v is a number,
    true/false, inf, -inf, nan or a hex literal (a bit pattern for float types)."""
    start = parser.pos
    if parser.parse_optional_punctuation("[") is None:
        return [_parse_raw_element(parser)], start
    items: list[RawElement] = []
    if parser.parse_optional_punctuation("]") is None:
        items.append(_parse_raw_element(parser))
        while parser.parse_optional_punctuation(",") is not None:
            items.append(_parse_raw_element(parser))
        parser.parse_punctuation("]")
    return items, start


def _parse_raw_element(parser: AttrParser) -> RawElement:
    neg = parser.parse_optional_punctuation("-") is not None
    if parser.parse_optional_keyword("inf") is not None:
        return ("num", -math.inf if neg else math.inf)
    if not neg:
        if parser.parse_optional_keyword("nan") is not None:
            return ("num", math.nan)
        if (b := parser.parse_optional_boolean()) is not None:
            return ("num", int(b))
    if not neg and parser.lexer.input.content.startswith(("0x", "0X"), parser.pos):
        return ("hex", parser.parse_integer(allow_boolean=False, allow_negative=False))
    value = parser.parse_optional_number()
    if value is None:
        parser.raise_error("expected a number, inf, nan, true, false or a hex bit pattern")
    return ("num", -value if neg else value)


def elements_from_raw(
    parser: AttrParser, items: list[RawElement], start: int, t: TensorType
) -> np.ndarray:
    elt = t.element_type
    n = shapes.numel(t.get_shape())
    if n > MAX_INLINE_ELEMENTS:
        parser.raise_error(
            f"{type_name(t)} has {n} elements: inline constants hold at most "
            f"{MAX_INLINE_ELEMENTS} (use nt.weight for large data)",
            start,
        )
    if len(items) == 1:
        items = items * n
    elif len(items) != n:
        parser.raise_error(f"expected {n} elements for {type_name(t)}, found {len(items)}", start)
    values = []
    dt = numpy_dtype(elt)
    for kind, v in items:
        if kind == "hex" and is_float(elt):
            if v >= 1 << (8 * dt.itemsize):
                parser.raise_error(f"bit pattern {v:#x} is wider than {type_name(elt)}", start)
            v = np.array([v], dtype=f"u{dt.itemsize}").view(dt)[0]
        values.append(v)
    try:
        return elements_array(values, t)
    except VerifyException as e:
        parser.raise_error(str(e), start)


def elements_array(values: Sequence, t: TensorType) -> np.ndarray:
    """Values (Python numbers or numpy scalars of the type) as an array of `t`, rounded RNE."""
    elt = t.element_type
    dt = numpy_dtype(elt)
    if is_float(elt):
        # Numpy scalars of the type are exact bit patterns (NaN payloads); numbers are rounded.
        exact = [isinstance(v, np.generic) and v.dtype == dt for v in values]
        nums = np.array([0.0 if e else float(v) for v, e in zip(values, exact)], dtype=np.float64)
        arr = round_to(nums, elt)
        for i, e in enumerate(exact):
            if e:
                arr[i] = values[i]
    else:
        lo, hi = (np.iinfo(dt).min, np.iinfo(dt).max) if dt.kind in "iu" else (0, 1)
        ints = []
        for v in values:
            if isinstance(v, float) and not v.is_integer():  # nan, inf, 1.5: never truncated
                raise VerifyException(f"{type_name(elt)} holds integers only; found {v!r}")
            ints.append(int(v))
        if any(not lo <= v <= hi for v in ints):
            raise VerifyException(f"integer constant out of range for {type_name(elt)}")
        arr = np.array(ints, dtype=dt)
    return arr.reshape(t.get_shape())


@irdl_attr_definition
class DenseAttr(ParametrizedAttribute):
    """Raw element data of an inline constant, printed exactly: #nt.dense<[...] : tensor<...>>."""

    name = "nt.dense"

    type: TensorType
    data: BytesAttr

    @staticmethod
    def from_array(array: np.ndarray, t: TensorType) -> DenseAttr:
        arr = np.ascontiguousarray(array, dtype=numpy_dtype(t.element_type)).reshape(t.get_shape())
        return DenseAttr(t, BytesAttr(arr.tobytes()))

    def to_array(self) -> np.ndarray:
        dt = numpy_dtype(self.type.element_type)
        return np.frombuffer(self.data.data, dtype=dt).reshape(self.type.get_shape())

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            items, start = parse_raw_elements(parser)
            parser.parse_punctuation(":")
            t = parser.parse_type()
            if not isinstance(t, TensorType):
                parser.raise_error(f"expected a tensor type, found {type_name(t)}", start)
            arr = elements_from_raw(parser, items, start, t)
        return (t, BytesAttr(arr.tobytes()))

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_string(format_elements(self.to_array(), self.type.element_type) + " : ")
            printer.print_attribute(self.type)

    def verify(self) -> None:
        n = shapes.numel(self.type.get_shape()) * numpy_dtype(self.type.element_type).itemsize
        if len(self.data.data) != n:
            raise VerifyException(f"expected {n} bytes of data, found {len(self.data.data)}")


def _shape_str(t: Attribute) -> str:
    return type_name(t)


# ---------------------------------------------------------------------------------------------
# Base op: shared syntax, builder and verifier


class NtOp(IRDLOperation):
    """Base of every nt op with the shared syntax `operands {props} : types`."""

    # Which element types the data operands take: "float", "numeric" (float or integer,
    # not i1), "bool" or "any".
    ELEMENTS: ClassVar[str] = "float"

    if TYPE_CHECKING:  # each op declares its one tensor result_def; IRDL refuses it here
        result: OpResult[TensorType]

    @classmethod
    def infer(cls, types: list[TensorType], props: dict) -> TensorType | None:
        """The result type for these operand types and properties, or None where the result
        type is free (it is then checked by `check_result`). Raises VerifyException."""
        return None

    def check_result(self, types: list[TensorType], props: dict) -> None:
        """Checks for ops whose result type `infer` cannot fix."""

    @classmethod
    def make(
        cls, *operands: SSAValue | Operation | None, result_type: Attribute | None = None, **props
    ):
        """Build the op, inferring the result type when the op allows it."""
        values = [SSAValue.get(o) for o in operands if o is not None]
        properties = {k: to_attr(v) for k, v in props.items() if v is not None and v is not False}
        if result_type is None:
            result_type = cls.infer(
                [SSAValue.get(v, type=TensorType).type for v in values],
                {k: from_attr(a) for k, a in properties.items()},
            )
            if result_type is None:
                raise ValueError(f"{cls.name} needs an explicit result type")
        return cls.create(operands=values, result_types=[result_type], properties=properties)

    def prop(self, name: str):
        return from_attr(self.properties.get(name))

    def props(self) -> dict:
        return {k: from_attr(v) for k, v in self.properties.items()}

    def verify_(self) -> None:
        types: list[TensorType] = []
        for i, o in enumerate(self.operands):
            if not isinstance(o.type, TensorType):
                raise VerifyException(f"operand {i}: expected a tensor, found {_shape_str(o.type)}")
            types.append(o.type)
        self._check_elements(types)
        props = self.props()
        try:
            expected = self.infer(types, props)
        except shapes.ShapeError as e:
            raise VerifyException(str(e)) from None
        if expected is not None and expected != self.result.type:
            raise VerifyException(
                f"expected result type {_shape_str(expected)}, found {_shape_str(self.result.type)}"
            )
        if expected is None:
            try:
                self.check_result(types, props)
            except shapes.ShapeError as e:
                raise VerifyException(str(e)) from None

    def _check_elements(self, types: list[TensorType]) -> None:
        rule = self.ELEMENTS
        for i, t in enumerate(types):
            e = t.element_type
            ok = {
                "float": is_float(e),
                "numeric": is_float(e) or (isinstance(e, IntegerType) and not is_bool(e)),
                "bool": is_bool(e),
                "any": True,
            }[rule]
            if not ok:
                want = {"float": "a float", "numeric": "a float or integer", "bool": "an i1"}[rule]
                raise VerifyException(
                    f"operand {i}: expected {want} element type, found {type_name(e)}"
                )

    @classmethod
    def parse(cls, parser: Parser) -> NtOp:
        operands = []
        if (u := parser.parse_optional_unresolved_operand()) is not None:
            operands.append(u)
            while parser.parse_optional_punctuation(",") is not None:
                operands.append(parser.parse_unresolved_operand())
        attrs = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        pos = parser.pos
        if (ftype := parser.parse_optional_function_type()) is not None:
            in_types, out_types = list(ftype.inputs.data), list(ftype.outputs.data)
        else:
            t = parser.parse_type()
            in_types, out_types = [t] * len(operands), [t]
        if len(in_types) != len(operands):
            parser.raise_error(
                f"{cls.name}: expected {len(operands)} operand types, found {len(in_types)}", pos
            )
        values = [parser.resolve_operand(u, t) for u, t in zip(operands, in_types)]
        return cls._create_parsed(values, out_types, attrs)

    @classmethod
    def _create_parsed(cls, values, result_types, attrs: dict[str, Attribute]):
        prop_names = cls.get_irdl_definition().properties.keys()
        props = {k: v for k, v in attrs.items() if k in prop_names}
        others = {k: v for k, v in attrs.items() if k not in prop_names}
        return cls.create(
            operands=values, result_types=result_types, properties=props, attributes=others
        )

    def print(self, printer: Printer) -> None:
        if self.operands:
            printer.print_string(" ")
            printer.print_list(self.operands, printer.print_operand)
        merged = {**self.properties, **self.attributes}
        if merged:
            printer.print_string(" ")
            printer.print_attr_dict(merged)
        printer.print_string(" : ")
        res = self.result.type
        ins = [o.type for o in self.operands]
        if all(t == res for t in ins):
            printer.print_attribute(res)
        else:
            printer.print_string("(")
            printer.print_list(ins, printer.print_attribute)
            printer.print_string(") -> ")
            printer.print_attribute(res)


def _broadcasts_to(shape, target) -> bool:
    try:
        return shapes.broadcast(shape, target) == tuple(target)
    except shapes.ShapeError:
        return False


def _same_elements(types: list[TensorType], what: str = "operands") -> Attribute:
    elts = {t.element_type for t in types}
    if len(elts) > 1:
        raise VerifyException(
            f"{what} must have one element type (cast explicitly), found "
            + ", ".join(type_name(t.element_type) for t in types)
        )
    return types[0].element_type


def check_scales(values: Sequence[float], what: str) -> None:
    """Scales are finite, positive powers of two: multiplying by one is exact in binary
    floating point, so a scaled cast rounds once and undoing the scale changes no bit."""
    if not values:
        raise VerifyException(f"{what}: expected at least one value")
    for v in values:
        if not (math.isfinite(v) and v > 0 and math.frexp(v)[0] == 0.5):
            raise VerifyException(f"{what}: expected finite positive powers of two, found {v!r}")


@overload
def scale_values(attr: DenseArrayBase) -> list[float]: ...
@overload
def scale_values(attr: DenseArrayBase | None) -> list[float] | None: ...
def scale_values(attr: DenseArrayBase | None) -> list[float] | None:
    """The floats of an `array<f32: ...>` scale property (None when absent)."""
    return None if attr is None else [float(v) for v in array_values(attr)]


def scale_array(values: Sequence[float]) -> DenseArrayBase:
    return DenseArrayBase.from_list(f32, [float(v) for v in values])


# ---------------------------------------------------------------------------------------------
# Contractions (MATMUL)


class Contraction(NtOp):
    acc = opt_prop_def(Attribute)  # accumulation type, f32 by default
    # Scaled fp8: the fp32 accumulator times unscale[output channel] (one value, or one per
    # channel), before the bias and the result's rounding.
    unscale = opt_prop_def(DenseArrayBase)
    traits = traits_def(Pure(), MatmulClass())

    if TYPE_CHECKING:  # each contraction defines it

        @classmethod
        def result_shape(cls, types: list[TensorType], props: dict) -> tuple[int, ...]: ...

    def channel_axis(self) -> int:
        """The result dim of the output channels (the weights' per-channel scales)."""
        return len(self.result.type.get_shape()) - 1

    def check_result(self, types, props) -> None:
        acc = props.get("acc") or f32
        if acc != f32:
            raise VerifyException(f"accumulation type must be f32, found {type_name(acc)}")
        if (u := scale_values(self.unscale)) is not None:
            check_scales(u, "unscale")
            n = (
                self.result.type.get_shape()[self.channel_axis()]
                if self.result.type.get_shape()
                else 1
            )
            if len(u) not in (1, n):
                raise VerifyException(
                    f"unscale: expected 1 or {n} values (one per output channel), found {len(u)}"
                )
        data = types[:2]
        _same_elements(data, "contraction inputs")
        shape = self.result_shape(types, props)
        res = self.result.type
        if not isinstance(res, TensorType) or not is_float(res.element_type):
            raise VerifyException(f"expected a float tensor result, found {_shape_str(res)}")
        if tuple(res.get_shape()) != shape:
            raise VerifyException(
                f"expected result shape {'x'.join(map(str, shape))}, found "
                f"{'x'.join(map(str, res.get_shape()))}"
            )
        for i, t in enumerate(types[2:], 2):
            if t.element_type != res.element_type:
                raise VerifyException(
                    f"bias: expected element type {type_name(res.element_type)} (the result's), "
                    f"found {type_name(t.element_type)}"
                )

    @classmethod
    def infer_type(cls, types, props, element: AnyFloat | None = None) -> TensorType:
        """The default result type: the inputs' element type unless `element` is given."""
        return TensorType(element or types[0].element_type, cls.result_shape(types, props))


@irdl_op_definition
class MatmulOp(Contraction):
    """2-D matmul: [M, K] x [K, N] -> [M, N]."""

    name = "nt.matmul"
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    result = result_def(TensorType)

    @classmethod
    def result_shape(cls, types, props):
        if len(types[0].get_shape()) != 2 or len(types[1].get_shape()) != 2:
            raise shapes.ShapeError("nt.matmul takes rank-2 operands (use nt.batch_matmul)")
        return shapes.matmul(types[0].get_shape(), types[1].get_shape())


@irdl_op_definition
class BatchMatmulOp(Contraction):
    """[..., M, K] x [..., K, N] -> [..., M, N], batch dims broadcast."""

    name = "nt.batch_matmul"
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    result = result_def(TensorType)

    @classmethod
    def result_shape(cls, types, props):
        return shapes.matmul(types[0].get_shape(), types[1].get_shape())


@irdl_op_definition
class LinearOp(Contraction):
    """y = x @ w (+ bias); with `trans_b`, w is [N, K]. Bias broadcasts to [M, N]."""

    name = "nt.linear"
    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    trans_b = opt_prop_def(UnitAttr)
    result = result_def(TensorType)

    @classmethod
    def result_shape(cls, types, props):
        x, w = types[0].get_shape(), types[1].get_shape()
        if len(x) != 2 or len(w) != 2:
            raise shapes.ShapeError(
                f"expected rank-2 input and weight, found ranks {len(x)}, {len(w)}"
            )
        if props.get("trans_b"):
            w = (w[1], w[0])
        out = shapes.matmul(x, w)
        if len(types) > 2 and not _broadcasts_to(types[2].get_shape(), out):
            raise shapes.ShapeError(
                f"bias {'x'.join(map(str, types[2].get_shape()))} does not broadcast to "
                f"{'x'.join(map(str, out))}"
            )
        return out


@irdl_op_definition
class ConvOp(Contraction):
    """N-D convolution, NC[spatial] x O(C/groups)[kernel] (+ bias[O])."""

    name = "nt.conv"

    def channel_axis(self) -> int:
        return 1

    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    strides = prop_def(DenseArrayBase)
    pads = prop_def(DenseArrayBase)
    dilations = prop_def(DenseArrayBase)
    groups = prop_def(IntegerAttr)
    result = result_def(TensorType)

    @classmethod
    def result_shape(cls, types, props):
        out = shapes.conv(
            types[0].get_shape(),
            types[1].get_shape(),
            props["strides"],
            props["pads"],
            props["dilations"],
            props["groups"],
        )
        if len(types) > 2 and tuple(types[2].get_shape()) != (out[1],):
            raise shapes.ShapeError(
                f"bias: expected shape {out[1]}, found {'x'.join(map(str, types[2].get_shape()))}"
            )
        return out


# ---------------------------------------------------------------------------------------------
# Elementwise


class _Binary(NtOp):
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    result = result_def(TensorType)
    ELEMENTS: ClassVar[str] = "numeric"

    @classmethod
    def infer(cls, types, props):
        elt = _same_elements(types)
        return TensorType(elt, shapes.broadcast(types[0].get_shape(), types[1].get_shape()))


@irdl_op_definition
class AddOp(_Binary):
    name = "nt.add"
    traits = traits_def(Pure(), FollowClass())


@irdl_op_definition
class SubOp(_Binary):
    name = "nt.sub"
    traits = traits_def(Pure(), FollowClass())


@irdl_op_definition
class MulOp(_Binary):
    name = "nt.mul"
    traits = traits_def(Pure(), FollowClass())


@irdl_op_definition
class DivOp(_Binary):
    """Float division; integer division truncates toward zero (ONNX Div)."""

    name = "nt.div"
    traits = traits_def(Pure(), FollowClass())


@irdl_op_definition
class ModOp(_Binary):
    """Remainder: with `fmod`, C fmod (sign of the dividend); else the sign of the divisor.
    Float operands need `fmod` (as ONNX Mod does)."""

    name = "nt.mod"
    fmod = opt_prop_def(UnitAttr)
    traits = traits_def(Pure(), FollowClass())

    @classmethod
    def infer(cls, types, props):
        if is_float(types[0].element_type) and not props.get("fmod"):
            raise VerifyException("float nt.mod needs the fmod attribute")
        return super().infer(types, props)


@irdl_op_definition
class MaxOp(_Binary):
    """IEEE 754-2019 maximum: -0 < +0, NaN propagates."""

    name = "nt.max"
    traits = traits_def(Pure(), MoveClass())


@irdl_op_definition
class MinOp(_Binary):
    """IEEE 754-2019 minimum: -0 < +0, NaN propagates."""

    name = "nt.min"
    traits = traits_def(Pure(), MoveClass())


@irdl_op_definition
class PowOp(_Binary):
    name = "nt.pow"
    ELEMENTS: ClassVar[str] = "float"
    traits = traits_def(Pure(), Fp32Class())


CMP_PREDICATES = ("eq", "ne", "lt", "le", "gt", "ge")


@irdl_op_definition
class CmpOp(_Binary):
    """Comparison with `predicate` in eq, ne, lt, le, gt, ge; result i1."""

    name = "nt.cmp"
    predicate = prop_def(StringAttr)
    ELEMENTS: ClassVar[str] = "any"
    traits = traits_def(Pure(), MoveClass())

    @classmethod
    def infer(cls, types, props):
        if props["predicate"] not in CMP_PREDICATES:
            raise VerifyException(
                f"predicate must be one of {', '.join(CMP_PREDICATES)}, found {props['predicate']!r}"
            )
        _same_elements(types)
        return TensorType(i1, shapes.broadcast(types[0].get_shape(), types[1].get_shape()))


class _Logical(_Binary):
    ELEMENTS: ClassVar[str] = "bool"
    traits = traits_def(Pure(), MoveClass())


@irdl_op_definition
class AndOp(_Logical):
    name = "nt.and"


@irdl_op_definition
class OrOp(_Logical):
    name = "nt.or"


@irdl_op_definition
class XorOp(_Logical):
    name = "nt.xor"


@irdl_op_definition
class WhereOp(NtOp):
    """cond ? lhs : rhs, with broadcasting; cond is i1."""

    name = "nt.where"
    condition = operand_def(TensorType)
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    result = result_def(TensorType)
    ELEMENTS: ClassVar[str] = "any"
    traits = traits_def(Pure(), FollowClass())

    @classmethod
    def infer(cls, types, props):
        if not is_bool(types[0].element_type):
            raise VerifyException(
                f"condition: expected i1 elements, found {type_name(types[0].element_type)}"
            )
        elt = _same_elements(types[1:])
        return TensorType(elt, shapes.broadcast(*(t.get_shape() for t in types)))


class _Unary(NtOp):
    input = operand_def(TensorType)
    result = result_def(TensorType)

    @classmethod
    def infer(cls, types: list[TensorType], props: dict) -> TensorType | None:
        return types[0]


def _unary(name: str, cls_trait: OpClass, elements: str = "float", doc: str = ""):
    """Define a unary elementwise op class (the op set is a table, not 15 copies)."""
    op = type(
        "".join(p.capitalize() for p in name.split("_")) + "Op",
        (_Unary,),
        {
            "name": f"nt.{name}",
            "ELEMENTS": elements,
            "__annotations__": {"ELEMENTS": ClassVar[str]},
            "traits": traits_def(Pure(), cls_trait),
            "__doc__": doc or f"Elementwise {name}.",
            "__module__": __name__,
        },
    )
    return irdl_op_definition(op)


NegOp = _unary("neg", MoveClass(), "numeric")
AbsOp = _unary("abs", MoveClass(), "numeric")
ReluOp = _unary("relu", MoveClass(), doc="max(x, +0) with IEEE maximum: relu(-0) = +0.")
ExpOp = _unary("exp", Fp32Class())
LogOp = _unary("log", Fp32Class())
SqrtOp = _unary("sqrt", FollowClass())
RsqrtOp = _unary("rsqrt", Fp32Class())
ReciprocalOp = _unary("reciprocal", Fp32Class())
TanhOp = _unary("tanh", FollowClass())
SigmoidOp = _unary("sigmoid", FollowClass())
ErfOp = _unary("erf", FollowClass())
SiluOp = _unary("silu", FollowClass(), doc="x * sigmoid(x).")
NotOp = _unary("not", MoveClass(), "bool")


@irdl_op_definition
class GeluOp(_Unary):
    """GELU; `approximate` = "none" (erf) or "tanh"."""

    name = "nt.gelu"
    approximate = opt_prop_def(StringAttr)
    traits = traits_def(Pure(), FollowClass())

    @classmethod
    def infer(cls, types, props):
        if props.get("approximate", "none") not in ("none", "tanh"):
            raise VerifyException(
                f"approximate must be none or tanh, found {props['approximate']!r}"
            )
        return types[0]


@irdl_op_definition
class ClipOp(_Unary):
    """min(max(x, min), max) with IEEE max/min; absent bounds are open."""

    name = "nt.clip"
    min = opt_prop_def(FloatAttr)
    max = opt_prop_def(FloatAttr)
    ELEMENTS: ClassVar[str] = "numeric"
    traits = traits_def(Pure(), MoveClass())


# ---------------------------------------------------------------------------------------------
# Reductions and normalizations (FP32 unless monotone)


class _Reduce(NtOp):
    """Reduce over `axes` (all when absent); `keepdims` keeps them as size 1."""

    input = operand_def(TensorType)
    axes = opt_prop_def(DenseArrayBase)
    keepdims = opt_prop_def(UnitAttr)
    result = result_def(TensorType)

    @classmethod
    def infer(cls, types, props):
        t = types[0]
        return TensorType(
            t.element_type,
            shapes.reduce(t.get_shape(), props.get("axes") or [], bool(props.get("keepdims"))),
        )


@irdl_op_definition
class ReduceSumOp(_Reduce):
    name = "nt.reduce_sum"
    ELEMENTS: ClassVar[str] = "numeric"
    traits = traits_def(Pure(), Fp32Class())


@irdl_op_definition
class ReduceMeanOp(_Reduce):
    name = "nt.reduce_mean"
    traits = traits_def(Pure(), Fp32Class())


@irdl_op_definition
class ReduceMaxOp(_Reduce):
    name = "nt.reduce_max"
    ELEMENTS: ClassVar[str] = "numeric"
    traits = traits_def(Pure(), MoveClass())


class _AxisOp(_Unary):
    axis = prop_def(IntegerAttr)

    @classmethod
    def infer(cls, types, props):
        try:
            shapes.normalize_axis(props["axis"], len(types[0].get_shape()))
        except shapes.ShapeError as e:
            raise VerifyException(str(e)) from None
        return types[0]


@irdl_op_definition
class SoftmaxOp(_AxisOp):
    name = "nt.softmax"
    traits = traits_def(Pure(), Fp32Class())


@irdl_op_definition
class LogSoftmaxOp(_AxisOp):
    name = "nt.log_softmax"
    traits = traits_def(Pure(), Fp32Class())


class _Norm(NtOp):
    """Normalize over dims [axis, rank); scale (and bias) broadcast to those dims."""

    axis = prop_def(IntegerAttr)
    epsilon = prop_def(FloatAttr)
    result = result_def(TensorType)
    traits = traits_def(Pure(), Fp32Class())

    @classmethod
    def infer(cls, types, props):
        x = types[0]
        _same_elements(types)
        a = shapes.normalize_axis(props["axis"], len(x.get_shape()))
        norm_shape = tuple(x.get_shape()[a:])
        for name, t in zip(("scale", "bias"), types[1:]):
            if not _broadcasts_to(t.get_shape(), norm_shape):
                raise VerifyException(
                    f"{name}: expected a shape that broadcasts to {'x'.join(map(str, norm_shape))}, "
                    f"found {'x'.join(map(str, t.get_shape()))}"
                )
        return x


@irdl_op_definition
class LayerNormOp(_Norm):
    name = "nt.layer_norm"
    input = operand_def(TensorType)
    scale = operand_def(TensorType)
    bias = opt_operand_def(TensorType)


@irdl_op_definition
class RmsNormOp(_Norm):
    name = "nt.rms_norm"
    input = operand_def(TensorType)
    scale = operand_def(TensorType)


class _ChannelNorm(NtOp):
    """A norm of an N x C x ... input whose other operands hold one value per channel (dim 1).
    Each subclass declares its operands (IRDL orders a base class's after the subclass's)."""

    LAYOUT: ClassVar[str]  # the input's dims, e.g. "N x C x spatial"

    @classmethod
    def infer(cls, types, props):
        x = types[0]
        _same_elements(types)
        shape = x.get_shape()
        rank = sum(d != "..." for d in cls.LAYOUT.split(" x "))  # "..." may be no dims
        if len(shape) < rank:
            raise VerifyException(
                f"input: expected rank >= {rank} ({cls.LAYOUT}), found rank {len(shape)}"
            )
        cls.check_channels(shape[1], props)
        operands = [name for name, _ in cls.get_irdl_definition().operands[1:]]
        for name, t in zip(operands, types[1:]):
            if tuple(t.get_shape()) != (shape[1],):
                raise VerifyException(
                    f"{name}: expected shape {shape[1]} (the channels), found {'x'.join(map(str, t.get_shape()))}"
                )
        return x

    @classmethod
    def check_channels(cls, c: int, props) -> None:
        """Rules of the op's properties on the channel count."""


@irdl_op_definition
class GroupNormOp(_ChannelNorm):
    """ONNX GroupNormalization and InstanceNormalization (`groups` = C) as one op: x is
    N x C x spatial; each (n, group of C/groups channels) is normalized over its channels and
    spatial dims, then scaled and shifted per channel (scale, bias [C]). One op, so a cast
    policy rounds it once (its pieces computed apart would each round)."""

    name = "nt.group_norm"
    input = operand_def(TensorType)
    scale = operand_def(TensorType)
    bias = operand_def(TensorType)
    groups = prop_def(IntegerAttr)
    epsilon = prop_def(FloatAttr)
    result = result_def(TensorType)
    traits = traits_def(Pure(), Fp32Class())
    LAYOUT: ClassVar = "N x C x spatial"

    @classmethod
    def check_channels(cls, c: int, props) -> None:
        g = props["groups"]
        if g < 1 or c % g:
            raise VerifyException(f"groups must be >= 1 and divide the {c} channels, found {g}")


@irdl_op_definition
class BatchNormOp(_ChannelNorm):
    """Inference batch norm over channel dim 1: (x - mean) / sqrt(var + eps) * scale + bias."""

    name = "nt.batch_norm"
    input = operand_def(TensorType)
    scale = operand_def(TensorType)
    bias = operand_def(TensorType)
    mean = operand_def(TensorType)
    var = operand_def(TensorType)
    epsilon = prop_def(FloatAttr)
    result = result_def(TensorType)
    traits = traits_def(Pure(), FollowClass())
    LAYOUT: ClassVar = "N x C x ..."


# ---------------------------------------------------------------------------------------------
# Data movement (MOVE)


@irdl_op_definition
class TransposeOp(_Unary):
    name = "nt.transpose"
    perm = prop_def(DenseArrayBase)
    ELEMENTS: ClassVar[str] = "any"
    traits = traits_def(Pure(), MoveClass())

    @classmethod
    def infer(cls, types, props):
        t = types[0]
        return TensorType(t.element_type, shapes.transpose(t.get_shape(), props["perm"]))


@irdl_op_definition
class ReshapeOp(_Unary):
    """Row-major reshape to the result type's shape."""

    name = "nt.reshape"
    ELEMENTS: ClassVar[str] = "any"
    traits = traits_def(Pure(), MoveClass())

    @classmethod
    def infer(cls, types, props):
        return None

    def check_result(self, types, props):
        src, dst = types[0], self.result.type
        if dst.element_type != src.element_type:
            raise VerifyException("reshape must keep the element type")
        if shapes.numel(src.get_shape()) != shapes.numel(dst.get_shape()):
            raise VerifyException(
                f"reshape must keep the element count: {shapes.numel(src.get_shape())} vs "
                f"{shapes.numel(dst.get_shape())}"
            )


@irdl_op_definition
class BroadcastOp(_Unary):
    """Broadcast (numpy rules) to the result type's shape."""

    name = "nt.broadcast"
    ELEMENTS: ClassVar[str] = "any"
    traits = traits_def(Pure(), MoveClass())

    @classmethod
    def infer(cls, types, props):
        return None

    def check_result(self, types, props):
        src, dst = types[0], self.result.type
        if dst.element_type != src.element_type:
            raise VerifyException("broadcast must keep the element type")
        if not _broadcasts_to(src.get_shape(), dst.get_shape()):
            raise VerifyException(f"{_shape_str(src)} does not broadcast to {_shape_str(dst)}")


@irdl_op_definition
class SliceOp(_Unary):
    """Static strided slice; per dim `starts`, `limits` (exclusive) and `strides`."""

    name = "nt.slice"
    starts = prop_def(DenseArrayBase)
    limits = prop_def(DenseArrayBase)
    strides = prop_def(DenseArrayBase)
    ELEMENTS: ClassVar[str] = "any"
    traits = traits_def(Pure(), MoveClass())

    @classmethod
    def infer(cls, types, props):
        t = types[0]
        return TensorType(
            t.element_type,
            shapes.slice_(t.get_shape(), props["starts"], props["limits"], props["strides"]),
        )


@irdl_op_definition
class ConcatOp(NtOp):
    name = "nt.concat"
    inputs = var_operand_def(TensorType)
    axis = prop_def(IntegerAttr)
    result = result_def(TensorType)
    ELEMENTS: ClassVar[str] = "any"
    traits = traits_def(Pure(), MoveClass())

    @classmethod
    def infer(cls, types, props):
        if not types:
            raise VerifyException("expected at least one operand")
        elt = _same_elements(types)
        return TensorType(elt, shapes.concat([t.get_shape() for t in types], props["axis"]))


class _IndexOp(NtOp):
    data = operand_def(TensorType)
    indices = operand_def(TensorType)
    result = result_def(TensorType)
    ELEMENTS: ClassVar[str] = "any"
    traits = traits_def(Pure(), MoveClass())

    @classmethod
    def _check_indices(cls, t: TensorType):
        e = t.element_type
        if not isinstance(e, IntegerType) or is_bool(e):
            raise VerifyException(f"indices: expected integer elements, found {type_name(e)}")


@irdl_op_definition
class GatherOp(_IndexOp):
    """ONNX Gather: take index slices along `axis` (negative indices count from the end)."""

    name = "nt.gather"
    axis = prop_def(IntegerAttr)

    @classmethod
    def infer(cls, types, props):
        cls._check_indices(types[1])
        return TensorType(
            types[0].element_type,
            shapes.gather(types[0].get_shape(), types[1].get_shape(), props["axis"]),
        )


@irdl_op_definition
class GatherElementsOp(_IndexOp):
    name = "nt.gather_elements"
    axis = prop_def(IntegerAttr)

    @classmethod
    def infer(cls, types, props):
        cls._check_indices(types[1])
        d, i = types[0].get_shape(), types[1].get_shape()
        shapes.normalize_axis(props["axis"], len(d))
        if len(d) != len(i):
            raise VerifyException(f"indices: expected rank {len(d)}, found {len(i)}")
        a = props["axis"] % len(d)
        if any(n > m for j, (n, m) in enumerate(zip(i, d)) if j != a):
            raise VerifyException(
                f"indices: dims off axis {a} must not exceed the data's: "
                f"{'x'.join(map(str, i))} vs {'x'.join(map(str, d))}"
            )
        return TensorType(types[0].element_type, i)


@irdl_op_definition
class GatherNdOp(_IndexOp):
    name = "nt.gather_nd"
    batch_dims = opt_prop_def(IntegerAttr)

    @classmethod
    def infer(cls, types, props):
        cls._check_indices(types[1])
        return TensorType(
            types[0].element_type,
            shapes.gather_nd(
                types[0].get_shape(), types[1].get_shape(), props.get("batch_dims") or 0
            ),
        )


PadMode = Literal["constant", "reflect", "edge"]
PAD_MODES: tuple[str, ...] = get_args(PadMode)


@irdl_op_definition
class PadOp(_Unary):
    """Pad with `pads` (all begins, then all ends); `mode` constant (with `value`), reflect
    or edge."""

    name = "nt.pad"
    pads = prop_def(DenseArrayBase)
    mode = opt_prop_def(StringAttr)
    value = opt_prop_def(FloatAttr)
    ELEMENTS: ClassVar[str] = "any"
    traits = traits_def(Pure(), MoveClass())

    @classmethod
    def infer(cls, types, props):
        if props.get("mode", "constant") not in PAD_MODES:
            raise VerifyException(
                f"mode must be one of {', '.join(PAD_MODES)}, found {props['mode']!r}"
            )
        t = types[0]
        return TensorType(t.element_type, shapes.pad(t.get_shape(), props["pads"]))


class _Pool(_Unary):
    """Pooling over the spatial dims of N x C x spatial."""

    kernel = prop_def(DenseArrayBase)
    strides = prop_def(DenseArrayBase)
    pads = prop_def(DenseArrayBase)
    dilations = opt_prop_def(DenseArrayBase)
    ceil_mode = opt_prop_def(UnitAttr)

    @classmethod
    def infer(cls, types, props):
        s = types[0].get_shape()
        if len(s) < 3:
            raise VerifyException(f"expected N x C x spatial, found rank {len(s)}")
        k = props["kernel"]
        out = shapes.window(
            s[2:],
            k,
            props["strides"],
            props["pads"],
            props.get("dilations") or [1] * len(k),
            bool(props.get("ceil_mode")),
        )
        return TensorType(types[0].element_type, tuple(s[:2]) + out)


@irdl_op_definition
class MaxPoolOp(_Pool):
    name = "nt.max_pool"
    traits = traits_def(Pure(), MoveClass())


@irdl_op_definition
class AvgPoolOp(_Pool):
    """Average pool; `count_include_pad` divides by the full window."""

    name = "nt.avg_pool"
    count_include_pad = opt_prop_def(UnitAttr)
    traits = traits_def(Pure(), FollowClass())


# ---------------------------------------------------------------------------------------------
# Casts, constants and weights


class _Convert(_Unary):
    """`OP %x {props} : tensor<...xA> to tensor<...xB>`: a change of element type."""

    @classmethod
    def infer(cls, types, props):
        return None

    def check_result(self, types, props):
        src, dst = types[0], self.result.type
        if not isinstance(dst, TensorType) or tuple(dst.get_shape()) != tuple(src.get_shape()):
            raise VerifyException(
                f"{self.name[3:]} must keep the shape: {_shape_str(src)} to {_shape_str(dst)}"
            )

    @classmethod
    def parse(cls, parser: Parser) -> _Convert:
        u = parser.parse_unresolved_operand()
        attrs = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        src = parser.parse_type()
        parser.parse_keyword("to")
        dst = parser.parse_type()
        return cls._create_parsed([parser.resolve_operand(u, src)], [dst], attrs)

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_operand(self.input)
        merged = {**self.properties, **self.attributes}
        if merged:
            printer.print_string(" ")
            printer.print_attr_dict(merged)
        printer.print_string(" : ")
        printer.print_attribute(self.input.type)
        printer.print_string(" to ")
        printer.print_attribute(self.result.type)


@irdl_op_definition
class CastOp(_Convert):
    """Convert element type, RNE. Float overflow gives +-inf unless `saturate` (fp8: clamp to
    +-240, NaN stays NaN). Float -> integer truncates toward zero and saturates (NaN -> 0)."""

    name = "nt.cast"
    saturate = opt_prop_def(UnitAttr)
    ELEMENTS: ClassVar[str] = "any"
    traits = traits_def(Pure(), MoveClass())

    def check_result(self, types, props):
        super().check_result(types, props)
        if props.get("saturate") and not is_float(self.result.type.element_type):
            raise VerifyException("saturate needs a float result type")


@irdl_op_definition
class ScaledCastOp(_Convert):
    """Scaled fp8: y = fp8(x * scale), the product in fp32, rounded once (RNE) and saturating
    to +-240 (NaN stays NaN). `scale` is one value, or with `axis` one per index of that dim
    (a weight's output channels); each a finite positive power of two. Class FP32: it is
    arithmetic, so no cast is ever moved across it, and the passes leave it as it is."""

    name = "nt.scaled_cast"
    scale = prop_def(DenseArrayBase)
    axis = opt_prop_def(IntegerAttr)
    traits = traits_def(Pure(), Fp32Class())

    @staticmethod
    def get(x: SSAValue, scale: Sequence[float], axis: int | None = None) -> ScaledCastOp:
        props: dict[str, Attribute] = {"scale": scale_array(scale)}
        if axis is not None:
            props["axis"] = IntegerAttr(axis, i64)
        t = TensorType(Float8E4M3Type(), tensor_type_of(x).get_shape())
        return ScaledCastOp.create(operands=[x], result_types=[t], properties=props)

    def check_result(self, types, props):
        super().check_result(types, props)
        if not isinstance(self.result.type.element_type, Float8E4M3Type):
            raise VerifyException(
                f"expected an f8E4M3 result, found {type_name(self.result.type.element_type)}"
            )
        scale = scale_values(self.scale)
        check_scales(scale, "scale")
        shape = tuple(types[0].get_shape())
        axis = props.get("axis")
        if axis is None:
            if len(scale) != 1:
                raise VerifyException(
                    f"scale: {len(scale)} values need an axis (one value without)"
                )
            return
        if not 0 <= axis < len(shape):
            raise VerifyException(f"axis {axis} is out of range for rank {len(shape)}")
        if len(scale) != shape[axis]:
            raise VerifyException(
                f"scale: expected {shape[axis]} values (dim {axis}), found {len(scale)}"
            )


@irdl_op_definition
class ConstantOp(NtOp):
    """A small inline constant: `nt.constant [1.0, -0.0, inf, 0x7FC0] : tensor<4xbf16>` or a
    splat `nt.constant 0.0 : tensor<4x4xf32>`. Every element round-trips exactly."""

    name = "nt.constant"
    value = prop_def(DenseAttr)
    result = result_def(TensorType)
    ELEMENTS: ClassVar[str] = "any"
    traits = traits_def(Pure(), MoveClass())

    @staticmethod
    def from_array(array: np.ndarray, t: TensorType) -> ConstantOp:
        return ConstantOp.create(
            result_types=[t], properties={"value": DenseAttr.from_array(array, t)}
        )

    @staticmethod
    def from_values(values: Sequence, t: TensorType) -> ConstantOp:
        return ConstantOp.from_array(elements_array(values, t), t)

    def to_array(self) -> np.ndarray:
        return self.value.to_array()

    def check_result(self, types, props):
        if self.value.type != self.result.type:
            raise VerifyException(
                f"expected data of type {_shape_str(self.result.type)}, found {_shape_str(self.value.type)}"
            )

    @classmethod
    def parse(cls, parser: Parser) -> ConstantOp:
        items, start = parse_raw_elements(parser)
        attrs = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        t = parser.parse_type()
        if not isinstance(t, TensorType):
            parser.raise_error(f"expected a tensor type, found {type_name(t)}", start)
        op = cls._create_parsed([], [t], attrs)
        op.properties["value"] = DenseAttr.from_array(elements_from_raw(parser, items, start, t), t)
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" " + format_elements(self.to_array(), self.result.type.element_type))
        if self.attributes:
            printer.print_string(" ")
            printer.print_attr_dict(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.result.type)


@irdl_op_definition
class WeightOp(NtOp):
    """An out-of-line weight: `nt.weight @name : tensor<...>`, stored under `name` in the .npz
    named by the module attribute `nt.weights`, rounded (RNE) to the IR type on load."""

    name = "nt.weight"
    sym_name = prop_def(StringAttr)
    result = result_def(TensorType)
    ELEMENTS: ClassVar[str] = "any"
    traits = traits_def(Pure(), MoveClass())

    @staticmethod
    def get(name: str, t: TensorType) -> WeightOp:
        return WeightOp.create(result_types=[t], properties={"sym_name": StringAttr(name)})

    @classmethod
    def parse(cls, parser: Parser) -> WeightOp:
        sym = parser.parse_symbol_name()
        attrs = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        t = parser.parse_type()
        op = cls._create_parsed([], [t], attrs)
        op.properties["sym_name"] = sym
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_symbol_name(self.sym_name.data)
        if self.attributes:
            printer.print_string(" ")
            printer.print_attr_dict(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.result.type)


NT_OPS = [
    MatmulOp, BatchMatmulOp, LinearOp, ConvOp,
    AddOp, SubOp, MulOp, DivOp, ModOp, MaxOp, MinOp, PowOp, CmpOp, AndOp, OrOp, XorOp, WhereOp,
    NegOp, AbsOp, ReluOp, ExpOp, LogOp, SqrtOp, RsqrtOp, ReciprocalOp, TanhOp, SigmoidOp, ErfOp,
    SiluOp, NotOp, GeluOp, ClipOp,
    ReduceSumOp, ReduceMeanOp, ReduceMaxOp, SoftmaxOp, LogSoftmaxOp, LayerNormOp, RmsNormOp,
    GroupNormOp, BatchNormOp,
    TransposeOp, ReshapeOp, BroadcastOp, SliceOp, ConcatOp, GatherOp, GatherElementsOp,
    GatherNdOp, PadOp, MaxPoolOp, AvgPoolOp,
    CastOp, ScaledCastOp, ConstantOp, WeightOp,
]  # fmt: skip

# Module and function attributes of the IR conventions.
# WEIGHTS_ATTR (module: the .npz holding nt.weight data) and DIGEST_ATTR (its sha256, written
# by compile) come from neuron_opt.npz, the loaders' leaf.
IO_TYPES_ATTR = "nt.io_types"  # func: the signature before auto-cast{mode=all}
CAST_TYPE_ATTR = "nt.cast_type"  # func: the contraction input type auto-cast{mode=matmult} used
NAME_ATTR = "nt.name"  # func arg/result: the framework's tensor name

NT = Dialect("nt", NT_OPS, [DenseAttr])

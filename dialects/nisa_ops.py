"""The nisa dialect's attributes and operations: declarations, streams and instructions, each
with its own checks. Import them from dialects/nisa.py, the dialect's module.

The placement rules (dialects/nisa_placement.py) read these classes, so they sit a layer above
this module: the kernel's and the instructions' verifiers call them through PLACEMENT_RULES,
which dialects/nisa.py sets when it loads.
"""

from __future__ import annotations

import functools
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    DictionaryAttr,
    Float8E4M3Type,
    FloatAttr,
    IntAttr,
    IntegerAttr,
    StringAttr,
    TensorType,
    UnitAttr,
    f64,
)
from xdsl.ir import Attribute, Block, Dialect, ParametrizedAttribute, Region
from xdsl.irdl import (
    AnyOf,
    AttrConstraint,
    BaseAttr,
    IRDLOperation,
    OptPropertyDef,
    PropertyDef,
    VerificationContext,
    irdl_attr_definition,
    irdl_op_definition,
    opt_prop_def,
    prop_def,
    region_def,
    traits_def,
)
from xdsl.parser import AttrParser, Parser
from xdsl.printer import Printer
from xdsl.traits import IsolatedFromAbove, NoTerminator
from xdsl.utils.exceptions import VerifyException

from neuron_opt.dialects import ncv2
from neuron_opt.dialects.nt import check_scales, scale_values
from neuron_opt.dialects.props import from_attr, to_attr
from neuron_opt.dialects.types import byte_size, is_integer, type_name

ENGINES = ("tensor", "vector", "scalar", "gpsimd")
ROLES = ("input", "output", "weight", "scratch", "const")

# Vector/GpSimd ALU ops (tensor_tensor, tensor_scalar). Arithmetic runs in fp32, or exactly on
# integers when every tensor input is an integer buffer (docs/nisa.md §3). `mod` takes the
# divisor's sign, `fmod` the dividend's; the bitvec ops take integer operands only.
ALU_OPS = (
    "add", "sub", "mul", "div", "mod", "fmod", "max", "min", "pow",
    "eq", "ne", "ge", "gt", "le", "lt", "and", "or", "xor",
)  # fmt: skip
BITVEC_OPS = ("and", "or", "xor")
REDUCE_OPS = ("add", "max", "min")
CMP_OPS = ("eq", "ne", "ge", "gt", "le", "lt")
# ScalarE functions f(x * scale + bias), computed exactly in fp32 (not the hardware LUTs).
ACT_FUNCS = (
    "copy", "exp", "log", "tanh", "sigmoid", "erf", "gelu", "gelu_tanh", "silu", "relu",
    "rsqrt", "sqrt", "reciprocal", "square", "abs", "neg",
)  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Access patterns


@irdl_attr_definition
class AccessAttr(ParametrizedAttribute):
    """`@buf[a:b, c:d:s, i]`: one slice per dimension of the buffer (an index `i` keeps its
    dimension with size 1). Stored flat as (start, stop, step) triples."""

    name = "nisa.ap"

    memory: StringAttr
    dims: ArrayAttr[IntAttr]

    @staticmethod
    def get(memory: str, slices) -> AccessAttr:
        flat: list[int] = []
        for s in slices:
            if isinstance(s, int):
                s = (s, s + 1, 1)
            flat += [s[0], s[1], s[2] if len(s) > 2 else 1]
        return _access(memory, tuple(flat))

    # Attributes are immutable and interned (`_access`), so what is derived from one is
    # computed once and kept in its __dict__: the verifier, the simulator's decoder and the
    # lowering ask for the same accesses' slices, shapes and text over and over.
    def slices(self) -> tuple[tuple[int, int, int], ...]:
        if (hit := vars(self).get("_slices")) is not None:
            return hit
        d = [a.data for a in self.dims.data]
        out = tuple((d[i], d[i + 1], d[i + 2]) for i in range(0, len(d), 3))
        vars(self)["_slices"] = out
        return out

    def shape(self) -> tuple[int, ...]:
        if (hit := vars(self).get("_shape")) is not None:
            return hit
        out = tuple(max(0, -(-(b - a) // s)) for a, b, s in self.slices())
        vars(self)["_shape"] = out
        return out

    def text(self) -> str:
        if (hit := vars(self).get("_text")) is not None:
            return hit
        vars(self)["_text"] = out = self._format()
        return out

    def _format(self) -> str:
        parts = []
        for a, b, s in self.slices():
            if b == a + 1 and s == 1:
                parts.append(str(a))
            elif s == 1:
                parts.append(f"{a}:{b}")
            else:
                parts.append(f"{a}:{b}:{s}")
        return f"{symbol_text(self.memory.data)}[{', '.join(parts)}]"

    @classmethod
    def parse_parameters(cls, parser: AttrParser):
        with parser.in_angle_brackets():
            ap = parse_access(parser)
        return (ap.memory, ap.dims)

    def print_parameters(self, printer: Printer) -> None:
        printer.print_string(f"<{self.text()}>")

    def verify(self) -> None:
        if len(self.dims.data) % 3 != 0 or not self.dims.data:
            raise VerifyException("an access pattern needs (start, stop, step) per dimension")
        for a, b, s in self.slices():
            if s < 1:
                raise VerifyException(f"access {self.text()}: step must be >= 1")
            if b <= a:
                raise VerifyException(f"access {self.text()}: empty slice {a}:{b}")


def _slice_meets(x: tuple[int, int, int], y: tuple[int, int, int]) -> bool:
    """Whether the index sets {a + k*s < b} of two slices share an index (the Chinese
    remainder theorem: the common indices step by lcm(s, t) from one solution)."""
    (a, b, s), (c, d, t) = x, y
    lo, hi = max(a, c), min(b, d)
    if lo >= hi:
        return False
    if s == 1 and t == 1:
        return True
    g = math.gcd(s, t)
    if (c - a) % g:
        return False
    m = t // g
    first = a + s * ((c - a) // g * pow(s // g, -1, m) % m)  # the least common index >= a
    step = s // g * t
    if first < lo:
        first += -(-(lo - first) // step) * step
    return first < hi


def slices_meet(x, y) -> bool:
    """Whether two accesses of one buffer (slices per dim) touch a common element: an
    element is a tuple of per-dim indices, so they meet when every dim's index sets do.
    Interleaved strided accesses (a head merged back per head) do not meet."""
    return all(_slice_meets(p, q) for p, q in zip(x, y))


def slices_cover(outer, inner) -> bool:
    """Whether every element of access `inner` is one of access `outer` (one buffer)."""
    for (a, b, s), (c, d, t) in zip(outer, inner):
        last = c + (d - 1 - c) // t * t
        if c < a or last >= b or (c - a) % s or (last > c and t % s):
            return False
    return True


def hbm_shape(t: TensorType) -> tuple[int, ...]:
    """The dims an access to an HBM tensor slices: a rank-0 tensor is accessed as `@x[0]`."""
    return tuple(t.get_shape()) or (1,)


def free_size(shape: tuple[int, ...]) -> int:
    """The elements per partition of an access of this shape (its free dims flattened)."""
    n = 1
    for d in shape[1:]:
        n *= d
    return n


_BARE_SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_$.]*")


def symbol_text(name: str) -> str:
    """`@name`, quoted and escaped as xDSL prints symbols when the name is not bare."""
    if _BARE_SYMBOL.fullmatch(name):
        return f"@{name}"
    out = io.StringIO()
    Printer(stream=out).print_symbol_name(name)
    return out.getvalue()


@functools.lru_cache(maxsize=1 << 16)
def _access(memory: str, flat: tuple[int, ...]) -> AccessAttr:
    # Attributes are immutable, so kernels share them: a lowering builds the same access
    # patterns over and over, and building xDSL attributes dominates its time otherwise.
    return AccessAttr(StringAttr(memory), ArrayAttr([_int(v) for v in flat]))


@functools.lru_cache(maxsize=1 << 14)
def _int(v: int) -> IntAttr:
    return IntAttr(v)


def parse_access(parser: AttrParser, sym: StringAttr | None = None) -> AccessAttr:
    """`@buf[a:b:s, ...]`; `sym` is the buffer's name when the caller has parsed it."""
    if sym is None:
        sym = parser.parse_symbol_name()
    slices = []
    with parser.in_square_brackets():
        while True:
            a = parser.parse_integer(allow_boolean=False, allow_negative=False)
            if parser.parse_optional_punctuation(":") is not None:
                b = parser.parse_integer(allow_boolean=False, allow_negative=False)
                s = 1
                if parser.parse_optional_punctuation(":") is not None:
                    s = parser.parse_integer(allow_boolean=False, allow_negative=False)
                slices.append((a, b, s))
            else:
                slices.append((a, a + 1, 1))
            if parser.parse_optional_punctuation(",") is None:
                break
    return AccessAttr.get(sym.data, slices)


# ---------------------------------------------------------------------------------------------
# Kernel, streams and declarations


def _unset(op: IRDLOperation) -> None:
    raise VerifyException(f"{op.name}: no placement rules (import neuron_opt.dialects.nisa)")


@dataclass
class PlacementRules:
    """The placement rules the verifiers call (set by dialects/nisa.py)."""

    verify_kernel: Callable[[KernelOp], None] = _unset
    verify_instruction: Callable[[InstrOp], None] = _unset


PLACEMENT_RULES = PlacementRules()


@irdl_op_definition
class KernelOp(IRDLOperation):
    """`nisa.kernel @name { declarations; streams }`: one NeuronCore program."""

    name = "nisa.kernel"
    sym_name = prop_def(StringAttr)
    body = region_def("single_block")
    traits = traits_def(NoTerminator(), IsolatedFromAbove())

    def __init__(self, name: str, ops=()):
        super().__init__(properties={"sym_name": StringAttr(name)}, regions=[Region(Block(ops))])

    @classmethod
    def parse(cls, parser: Parser) -> KernelOp:
        sym = parser.parse_symbol_name()
        d = parser.parse_optional_attr_dict_with_keyword()
        attrs = dict(d.data) if d else {}
        region = parser.parse_region()
        op = cls.create(properties={"sym_name": sym}, regions=[region], attributes=attrs)
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_symbol_name(self.sym_name.data)
        printer.print_op_attributes(self.attributes, print_keyword=True)
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False, print_empty_block=False)

    def verify_(self) -> None:
        # Declarations and streams here; each instruction checks itself (located at its line)
        # against the placement this keeps.
        PLACEMENT_RULES.verify_kernel(self)


class StreamOp(IRDLOperation):
    sym_name = prop_def(StringAttr)
    body = region_def("single_block")
    traits = traits_def(NoTerminator())

    def __init__(self, name: str, ops=()):
        super().__init__(properties={"sym_name": StringAttr(name)}, regions=[Region(Block(ops))])

    @classmethod
    def parse(cls, parser: Parser):
        sym = parser.parse_symbol_name()
        d = parser.parse_optional_attr_dict_with_keyword()
        attrs = dict(d.data) if d else {}
        region = parser.parse_region()
        return cls.create(properties={"sym_name": sym}, regions=[region], attributes=attrs)

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_symbol_name(self.sym_name.data)
        printer.print_op_attributes(self.attributes, print_keyword=True)
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False, print_empty_block=False)

    def instructions(self) -> list[InstrOp]:
        """The stream's ops, each checked to be an instruction."""
        out: list[InstrOp] = []
        for i, op in enumerate(self.body.block.ops):
            if not isinstance(op, InstrOp):
                raise VerifyException(
                    f"{self.label()} instruction {i}: {op.name} is not a nisa instruction"
                )
            out.append(op)
        return out

    def label(self) -> str:
        """How messages name the stream: `vector`, `dma queue q0`."""
        if isinstance(self, EngineOp):
            return self.sym_name.data
        return f"dma queue {self.sym_name.data}"

    def _verify_children(self) -> None:
        self.instructions()


@irdl_op_definition
class EngineOp(StreamOp):
    """`nisa.engine @tensor { ... }`: the in-order instruction stream of one compute engine."""

    name = "nisa.engine"

    def verify_(self) -> None:
        self._verify_children()
        if self.sym_name.data not in ENGINES:
            raise VerifyException(
                f"unknown engine @{self.sym_name.data}: expected one of {', '.join(ENGINES)}"
            )


@irdl_op_definition
class DmaQueueOp(StreamOp):
    """`nisa.dma_queue @q { ... }`: one DMA queue, executed in order. Queues are served by the
    16 DMA engines round-robin in declaration order (queue i -> DMA engine i mod 16)."""

    name = "nisa.dma_queue"

    def verify_(self) -> None:
        self._verify_children()


class _DeclOp(IRDLOperation):
    sym_name = prop_def(StringAttr)


@irdl_op_definition
class HbmOp(_DeclOp):
    """`nisa.hbm ROLE @name : tensor<...>`: a DRAM tensor. Inputs and outputs bind to .npz keys
    by name; weights are read from the module's `nt.weights` .npz (an fp8 weight with
    `{scale = array<f32: ...>, axis = A}` is loaded as fp8(w * scale), saturating); a const
    holds `{value = array<f32: ...>}`; scratch is private."""

    name = "nisa.hbm"
    role = prop_def(StringAttr)
    type = prop_def(TensorType)

    @staticmethod
    def get(name: str, role: str, t: TensorType) -> HbmOp:
        return HbmOp.create(
            properties={"sym_name": StringAttr(name), "role": StringAttr(role), "type": t}
        )

    @classmethod
    def parse(cls, parser: Parser) -> HbmOp:
        role = parser.parse_identifier(" (the role: input, output, weight or scratch)")
        if role not in ROLES:
            parser.raise_error(f"unknown role '{role}': expected one of {', '.join(ROLES)}")
        sym = parser.parse_symbol_name()
        attrs = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        t = parser.parse_type()
        if not isinstance(t, TensorType):
            parser.raise_error(f"expected a tensor type, found {type_name(t)}")
        return cls.create(
            properties={"sym_name": sym, "role": StringAttr(role), "type": t}, attributes=attrs
        )

    def print(self, printer: Printer) -> None:
        printer.print_string(f" {self.role.data} ")
        printer.print_symbol_name(self.sym_name.data)
        if self.attributes:
            printer.print_string(" ")
            printer.print_attr_dict(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.type)

    def verify_(self) -> None:
        if self.role.data not in ROLES:
            raise VerifyException(f"unknown role '{self.role.data}'")
        if any(d < 0 for d in self.type.get_shape()):
            raise VerifyException("HBM tensors need a static shape")
        self._verify_data_attrs()

    def _verify_data_attrs(self) -> None:
        """A const's values; a scaled weight's scales (as nt.scaled_cast's)."""
        shape = list(self.type.get_shape())
        role = self.role.data
        if role == "const":
            value = self.attributes.get("value")
            if not isinstance(value, DenseArrayBase) or len(value.get_values()) != math.prod(shape):
                raise VerifyException(
                    f"a const needs value = array<...> with {math.prod(shape)} values"
                )
        if "scale" not in self.attributes:
            return
        scale = self.attributes["scale"]
        if (
            role != "weight"
            or not isinstance(self.type.element_type, Float8E4M3Type)
            or not isinstance(scale, DenseArrayBase)
        ):
            raise VerifyException("scale = array<f32: ...> is for f8E4M3 weights only")
        values = scale_values(scale)
        check_scales(values, "scale")
        axis = self.attributes.get("axis")
        n = (
            1
            if axis is None
            else shape[axis.value.data]
            if isinstance(axis, IntegerAttr) and 0 <= axis.value.data < len(shape)
            else None
        )
        if n is None or len(values) != n:
            raise VerifyException(
                f"scale: expected {n or 'an axis and'} values, found {len(values)}"
            )


class OnChipOp(_DeclOp):
    """`nisa.sbuf @x partitions 0:128 offset 4096 : tensor<128x2x512xbf16>`: a buffer on
    partitions [0, 128), at byte offset 4096 of each, shape [partitions, free...]."""

    partition = prop_def(IntAttr)
    offset = prop_def(IntAttr)
    type = prop_def(TensorType)
    CAPACITY: ClassVar[int]
    MEMORY: ClassVar[str]

    @classmethod
    def get(cls, name: str, partition: int, offset: int, t: TensorType):
        return cls.create(
            properties={
                "sym_name": StringAttr(name),
                "partition": IntAttr(partition),
                "offset": IntAttr(offset),
                "type": t,
            }
        )

    def partitions(self) -> tuple[int, int]:
        return self.partition.data, self.partition.data + self.type.get_shape()[0]

    def free_bytes(self) -> int:
        n = 1
        for d in self.type.get_shape()[1:]:
            n *= d
        return n * byte_size(self.type.element_type)

    @classmethod
    def parse(cls, parser: Parser):
        sym = parser.parse_symbol_name()
        parser.parse_keyword("partitions")
        p0 = parser.parse_integer(allow_boolean=False, allow_negative=False)
        parser.parse_punctuation(":")
        p1 = parser.parse_integer(allow_boolean=False, allow_negative=False)
        parser.parse_keyword("offset")
        off = parser.parse_integer(allow_boolean=False, allow_negative=False)
        attrs = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        pos = parser.pos
        t = parser.parse_type()
        if not isinstance(t, TensorType) or len(t.get_shape()) < 2:
            parser.raise_error(
                f"expected a tensor type [partitions, free...], found {type_name(t)}", pos
            )
        if t.get_shape()[0] != p1 - p0:
            parser.raise_error(
                f"partitions {p0}:{p1} hold {p1 - p0} partitions but the type's first dimension "
                f"is {t.get_shape()[0]}",
                pos,
            )
        return cls.create(
            properties={
                "sym_name": sym,
                "partition": IntAttr(p0),
                "offset": IntAttr(off),
                "type": t,
            },
            attributes=attrs,
        )

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_symbol_name(self.sym_name.data)
        p0, p1 = self.partitions()
        printer.print_string(f" partitions {p0}:{p1} offset {self.offset.data}")
        if self.attributes:
            printer.print_string(" ")
            printer.print_attr_dict(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.type)

    def verify_(self) -> None:
        shape = self.type.get_shape()
        if len(shape) < 2 or any(d <= 0 for d in shape):
            raise VerifyException("an on-chip buffer needs a static shape [partitions, free...]")
        p0, p1 = self.partitions()
        if p0 < 0 or p1 > ncv2.PARTITIONS:
            raise VerifyException(
                f"partitions {p0}:{p1} exceed the {ncv2.PARTITIONS} partitions of {self.MEMORY}"
            )
        elt = self.type.element_type
        if is_integer(elt) and elt.width.data > 32:
            raise VerifyException(
                f"{type_name(elt)} cannot live in {self.MEMORY}: the NC-v2 engines have no 64-bit "
                "integer datapath (i64 tensors stay in HBM; DMA narrows them to i32)"
            )
        esize = byte_size(elt)
        off = self.offset.data
        if off % esize:
            raise VerifyException(f"offset {off} is not a multiple of the element size {esize}")
        end = off + self.free_bytes()
        if end > self.CAPACITY:
            raise VerifyException(
                f"bytes {off}:{end} per partition exceed {self.MEMORY}'s {self.CAPACITY}"
            )


@irdl_op_definition
class SbufOp(OnChipOp):
    name = "nisa.sbuf"
    CAPACITY: ClassVar = ncv2.SBUF_PARTITION_BYTES
    MEMORY: ClassVar = "SBUF"


@irdl_op_definition
class PsumOp(OnChipOp):
    """A PSUM buffer; bank b holds bytes [2048 b, 2048 (b + 1)) of each partition."""

    name = "nisa.psum"
    CAPACITY: ClassVar = ncv2.PSUM_PARTITION_BYTES
    MEMORY: ClassVar = "PSUM"


@irdl_op_definition
class SemaphoreOp(_DeclOp):
    """`nisa.semaphore @s`: a counter starting at 0, raised by `signal(@s)`."""

    name = "nisa.semaphore"

    @staticmethod
    def get(name: str) -> SemaphoreOp:
        return SemaphoreOp.create(properties={"sym_name": StringAttr(name)})

    @classmethod
    def parse(cls, parser: Parser) -> SemaphoreOp:
        sym = parser.parse_symbol_name()
        attrs = parser.parse_optional_attr_dict()
        return cls.create(properties={"sym_name": sym}, attributes=attrs)

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_symbol_name(self.sym_name.data)
        if self.attributes:
            printer.print_string(" ")
            printer.print_attr_dict(self.attributes)


# ---------------------------------------------------------------------------------------------
# Instructions: one generic syntax
#
#   nisa.OP ACCESS (, ACCESS|NUMBER)* (KEYWORD VALUE?)* (wait(@s >= n, ...))? (signal(@s, ...))?
#
# Each class declares its properties once, as IRDL properties; the syntax follows from them
# (InstrOp.syntax). A property's constraint gives its kind:
#   AccessAttr  access  @buf[...]          Scalar     scalar  a number or an access ([P,1] column)
#   FloatAttr   float   a number           IntAttr    int     an integer
#   UnitAttr    flag    no value           Words(..)  word    one of the words
# The leading required access and scalar properties are the positional operands, in order;
# every other property is a keyword, printed in declaration order.


@dataclass(frozen=True)
class Words(AttrConstraint[StringAttr]):
    """A string property that is one of `words` (kept in order: messages list them so)."""

    words: tuple[str, ...]

    def verify(self, attr: Attribute, constraint_context: VerificationContext) -> None:
        if not isinstance(attr, StringAttr) or attr.data not in self.words:
            raise VerifyException(f"expected one of {', '.join(self.words)}, found {attr}")

    def get_bases(self) -> set[type[Attribute]] | None:
        return {StringAttr}

    def mapping_type_vars(self, type_var_mapping: object) -> Words:
        return self


# A number or an access pattern (a [P, 1] column).
Scalar = AnyOf((BaseAttr(AccessAttr), BaseAttr(FloatAttr)))


class Field(NamedTuple):
    """One property of an instruction as its syntax sees it."""

    name: str
    kind: str  # access, scalar, float, int, flag or word
    words: tuple[str, ...]  # a word's choices
    required: bool


class Syntax(NamedTuple):
    """An instruction's syntax, derived from its IRDL properties (wait and signal aside)."""

    positional: tuple[Field, ...]
    keywords: dict[str, Field]  # in declaration order
    required: tuple[str, ...]
    accessed: tuple[str, ...]  # the properties that may hold an access
    words: tuple[Field, ...]


_KINDS: dict[type[Attribute], str] = {
    AccessAttr: "access",
    FloatAttr: "float",
    IntAttr: "int",
    UnitAttr: "flag",
}


def _field(name: str, prop: PropertyDef, opname: str) -> Field:
    c = prop.constr
    required = not isinstance(prop, OptPropertyDef)
    if isinstance(c, Words):
        return Field(name, "word", c.words, required)
    if c == Scalar:
        return Field(name, "scalar", (), required)
    if isinstance(c, BaseAttr) and c.attr in _KINDS:
        return Field(name, _KINDS[c.attr], (), required)
    raise TypeError(f"{opname}: property '{name}' has no syntax ({c})")


@functools.cache
def _syntax(cls: type[InstrOp]) -> Syntax:
    props = cls.get_irdl_definition().properties
    fields = [_field(n, p, cls.name) for n, p in props.items() if n not in ("wait", "signal")]
    n = 0
    while n < len(fields) and fields[n].required and fields[n].kind in ("access", "scalar"):
        n += 1
    return Syntax(
        positional=tuple(fields[:n]),
        keywords={f.name: f for f in fields[n:]},
        required=tuple(f.name for f in fields if f.required),
        accessed=tuple(f.name for f in fields if f.kind in ("access", "scalar")),
        words=tuple(f for f in fields if f.kind == "word"),
    )


class InstrOp(IRDLOperation):
    ENGINES: ClassVar[tuple[str, ...]] = ()  # "dma" for DMA queues
    OPCODE: ClassVar[str] = ""  # the name real profiles show

    wait = opt_prop_def(DictionaryAttr)
    signal = opt_prop_def(ArrayAttr)

    @classmethod
    def syntax(cls) -> Syntax:
        """Positional operands and keywords, as the IRDL definition declares them."""
        return _syntax(cls)

    # -- Python access ------------------------------------------------------------------------
    @classmethod
    def make(cls, *positional, wait=None, signal=None, **keywords):
        """Build from Python: accesses as AccessAttr or (name, slices); numbers; True flags;
        `wait={"s": 2}`, `signal=["s"]`."""
        syntax = _syntax(cls)
        props: dict[str, Attribute] = {}
        for field, v in zip(syntax.positional, positional):
            props[field.name] = _to_prop(v, field)
        for name, field in syntax.keywords.items():
            v = keywords.pop(name, None)
            if v is not None and v is not False:
                props[name] = _to_prop(v, field)
        if keywords:
            raise TypeError(f"{cls.name}: unknown keywords {sorted(keywords)}")
        if wait:
            props["wait"] = DictionaryAttr({k: IntAttr(int(n)) for k, n in wait.items()})
        if signal:
            props["signal"] = ArrayAttr([StringAttr(s) for s in signal])
        return cls.create(properties=props)

    def get(self, name: str):
        """A property as Python: AccessAttr, float, int, str, True, or None."""
        return from_attr(self.properties.get(name))

    def accesses(self) -> list[tuple[str, AccessAttr]]:
        out = []
        for name in _syntax(type(self)).accessed:
            v = self.properties.get(name)
            if isinstance(v, AccessAttr):
                out.append((name, v))
        return out

    # The verifier refuses other entries (generic-form IR can write any attribute there).
    def waits(self) -> dict[str, int]:
        w = self.wait.data if self.wait else {}
        return {k: n.data for k, n in w.items() if isinstance(n, IntAttr)}

    def signals(self) -> list[str]:
        return (
            [s.data for s in self.signal.data if isinstance(s, StringAttr)] if self.signal else []
        )

    # -- syntax ---------------------------------------------------------------------------
    @classmethod
    def parse(cls, parser: Parser):
        syntax = _syntax(cls)
        first = parser.pos
        props: dict[str, Attribute] = {}
        for i, field in enumerate(syntax.positional):
            if i and parser.parse_optional_punctuation(",") is None:
                parser.raise_error(
                    f"Expected ',' before operand '{field.name}' of {cls.name}",
                    _missing_at(parser),
                )
            props[field.name] = _parse_value(parser, field, cls.name)
        keywords = syntax.keywords
        while True:
            start = parser.pos
            word = parser.parse_optional_keyword_in(keywords.keys())
            if word is None:
                break
            if word in props:
                parser.raise_error(f"{cls.name}: '{word}' given twice", start)
            props[word] = _parse_value(parser, keywords[word], cls.name)
        if parser.parse_optional_keyword("wait") is not None:
            waits = {}
            with parser.in_parens():
                while True:
                    sym = parser.parse_symbol_name().data
                    parser.parse_punctuation(">")
                    parser.parse_punctuation("=")
                    waits[sym] = IntAttr(
                        parser.parse_integer(allow_boolean=False, allow_negative=False)
                    )
                    if parser.parse_optional_punctuation(",") is None:
                        break
            props["wait"] = DictionaryAttr(waits)
        if parser.parse_optional_keyword("signal") is not None:
            sigs = []
            with parser.in_parens():
                while True:
                    sigs.append(parser.parse_symbol_name())
                    if parser.parse_optional_punctuation(",") is None:
                        break
            props["signal"] = ArrayAttr(sigs)
        attrs = parser.parse_optional_attr_dict()
        for name in syntax.required:
            if name not in props:
                # At the op's name, where mlir-opt reports a missing required attribute: the
                # keywords come in any order, so no later token is where it was due.
                parser.raise_error(f"{cls.name} needs '{name}'", _name_at(parser, first))
        return cls.create(properties=props, attributes=attrs)

    def print(self, printer: Printer) -> None:
        syntax = _syntax(type(self))
        parts = []
        for field in syntax.positional:
            parts.append(_format_value(self.properties.get(field.name)))
        printer.print_string(" " + ", ".join(parts))
        for name, field in syntax.keywords.items():
            v = self.properties.get(name)
            if v is None:
                continue
            if field.kind == "flag":
                printer.print_string(f" {name}")
            else:
                printer.print_string(f" {name} {_format_value(v)}")
        if self.wait:
            w = ", ".join(f"{symbol_text(k)} >= {n}" for k, n in self.waits().items())
            printer.print_string(f" wait({w})")
        if self.signal:
            printer.print_string(" signal(" + ", ".join(map(symbol_text, self.signals())) + ")")
        if self.attributes:
            printer.print_string(" ")
            printer.print_attr_dict(self.attributes)

    def verify(self, verify_nested_ops: bool = True) -> None:
        # nisa's messages (naming the op, the property and its words) before IRDL's, reported
        # as xDSL reports a verifier's.
        try:
            self.verify_properties()
        except VerifyException as e:
            self.emit_error(f"Operation does not verify: {e}", e)
        super().verify(verify_nested_ops)

    def verify_(self) -> None:
        PLACEMENT_RULES.verify_instruction(self)

    def verify_properties(self) -> None:
        syntax = _syntax(type(self))
        for name in syntax.required:
            if name not in self.properties:
                raise VerifyException(f"{self.name} needs '{name}'")
        for field in syntax.words:
            v = self.properties.get(field.name)
            if v is not None and not (isinstance(v, StringAttr) and v.data in field.words):
                raise VerifyException(
                    f"{self.name}: '{field.name}' must be one of {', '.join(field.words)}"
                )
        for sem, n in (self.wait.data if self.wait else {}).items():
            if not isinstance(n, IntAttr):
                raise VerifyException(f"{self.name}: wait on @{sem} needs a whole count, found {n}")
        for s in self.signal.data if self.signal else ():
            if not isinstance(s, StringAttr):
                raise VerifyException(f"{self.name}: signal takes semaphore names, found {s}")


def _to_prop(v, field: Field) -> Attribute:
    if isinstance(v, Attribute):
        return v
    if isinstance(v, tuple):  # (memory, slices): an access, of an access or scalar field only
        if field.kind in ("access", "scalar") and isinstance(v[0], str):
            return AccessAttr.get(v[0], v[1])
        raise TypeError(f"cannot make a {field.kind} property from {v!r}")
    if field.kind == "access":
        raise TypeError(f"cannot make an access from {v!r}")
    if field.kind == "int":  # nisa's integers are IntAttr, nt's i64
        return IntAttr(int(v))
    return to_attr(True if field.kind == "flag" else str(v) if field.kind == "word" else float(v))


def _parse_value(parser: Parser, field: Field, opname: str) -> Attribute:
    kind, name = field.kind, field.name
    if kind == "flag":
        return UnitAttr()
    # A bad value is reported at its own first token (not at the token after it), a missing
    # one where it was due.
    start = parser.pos
    if kind in ("access", "scalar"):
        sym = parser.parse_optional_symbol_name()
        if sym is not None:
            return parse_access(parser, sym)
        if kind == "access":
            parser.raise_error(
                f"{opname}: '{name}' expects an access pattern @buf[...]", _missing_at(parser)
            )
    if kind in ("float", "scalar"):
        neg = parser.parse_optional_punctuation("-") is not None
        v = parser.parse_optional_number()
        if v is None:
            if parser.parse_optional_keyword("inf") is not None:
                v = math.inf
            elif parser.parse_optional_keyword("nan") is not None:
                v = math.nan
            else:
                at = start if neg else _missing_at(parser)
                parser.raise_error(f"{opname}: '{name}' expects a number", at)
        return FloatAttr(-float(v) if neg else float(v), f64)
    if kind == "int":
        v = parser.parse_optional_number()
        if not isinstance(v, int):
            at = start if v is not None else _missing_at(parser)
            parser.raise_error(f"{opname}: '{name}' expects an integer", at)
        return IntAttr(v)
    w = parser.parse_optional_identifier()
    if w not in field.words:
        at = start if w is not None else _missing_at(parser)
        parser.raise_error(f"{opname}: '{name}' expects one of {', '.join(field.words)}", at)
    return StringAttr(w)


def _name_at(parser: Parser, first: int) -> int:
    """Where the op's name starts: the token before its first operand (nisa ops have no
    results), spelled with or without the `nisa.` prefix."""
    text, i = parser.lexer.input.content, first
    while i and text[i - 1].isspace():
        i -= 1
    while i and (text[i - 1].isalnum() or text[i - 1] in "._$"):
        i -= 1
    return i


def _missing_at(parser: Parser) -> int:
    """Where a missing value is reported: at the next token, or, when that is on a later line,
    just after the last token of the instruction (as mlir-opt does), not on the next line."""
    text = parser.lexer.input.content
    end = len(text[: parser.pos].rstrip())
    return end if "\n" in text[end : parser.pos] else parser.pos


def _format_value(v: Attribute | None) -> str:
    if isinstance(v, AccessAttr):
        return v.text()
    if isinstance(v, FloatAttr):
        f = v.value.data
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        s = repr(float(f))
        if "e" in s and "." not in s:
            s = s.replace("e", ".0e")
        return s
    if isinstance(v, IntAttr):
        return str(v.data)
    if isinstance(v, StringAttr):
        return v.data
    return str(v)


_ALU = Words(ALU_OPS)


@irdl_op_definition
class MatmulOp(InstrOp):
    """dst[M, N] (PSUM, f32) (+)= stationary[K, M].T @ moving[K, N]; `start` overwrites (opens
    the accumulation group), `stop` closes it."""

    name = "nisa.matmul"
    ENGINES: ClassVar = ("tensor",)
    OPCODE: ClassVar = "MATMUL"
    dst = prop_def(AccessAttr)
    stationary = prop_def(AccessAttr)
    moving = prop_def(AccessAttr)
    start = opt_prop_def(UnitAttr)
    stop = opt_prop_def(UnitAttr)


@irdl_op_definition
class TransposeOp(InstrOp):
    """dst[F, P] (PSUM, f32) = src[P, F].T on TensorE (a matmul with the identity)."""

    name = "nisa.transpose"
    ENGINES: ClassVar = ("tensor",)
    OPCODE: ClassVar = "TRANSPOSE"
    dst = prop_def(AccessAttr)
    src = prop_def(AccessAttr)


@irdl_op_definition
class ActivationOp(InstrOp):
    """dst = func(src * scale + bias); `accumulate` gets the free-dim sum of dst's values."""

    name = "nisa.activation"
    ENGINES: ClassVar = ("scalar",)
    OPCODE: ClassVar = "ACTIVATE"
    dst = prop_def(AccessAttr)
    src = prop_def(AccessAttr)
    func = prop_def(Words(ACT_FUNCS))
    scale = opt_prop_def(Scalar)
    bias = opt_prop_def(AccessAttr)
    accumulate = opt_prop_def(AccessAttr)


@irdl_op_definition
class TensorTensorOp(InstrOp):
    """dst = lhs OP rhs, elementwise, in fp32."""

    name = "nisa.tensor_tensor"
    ENGINES: ClassVar = ("vector", "gpsimd")
    OPCODE: ClassVar = "TENSOR_TENSOR"
    dst = prop_def(AccessAttr)
    lhs = prop_def(AccessAttr)
    rhs = prop_def(AccessAttr)
    op = prop_def(_ALU)


@irdl_op_definition
class TensorScalarOp(InstrOp):
    """dst = (src op0 operand0) op1 operand1; operands are numbers or [P,1] columns;
    `reverseK` swaps the two sides of opK."""

    name = "nisa.tensor_scalar"
    ENGINES: ClassVar = ("vector", "scalar", "gpsimd")
    OPCODE: ClassVar = "TENSOR_SCALAR"
    dst = prop_def(AccessAttr)
    src = prop_def(AccessAttr)
    op0 = prop_def(_ALU)
    operand0 = prop_def(Scalar)
    reverse0 = opt_prop_def(UnitAttr)
    op1 = opt_prop_def(_ALU)
    operand1 = opt_prop_def(Scalar)
    reverse1 = opt_prop_def(UnitAttr)

    def verify_(self) -> None:
        super().verify_()
        if (self.op1 is None) != (self.operand1 is None):
            raise VerifyException("nisa.tensor_scalar: op1 and operand1 go together")


@irdl_op_definition
class TensorReduceOp(InstrOp):
    """dst[P, lead...] = OP over the last `axes` free dims of src (default: all free dims)."""

    name = "nisa.tensor_reduce"
    ENGINES: ClassVar = ("vector",)
    OPCODE: ClassVar = "TENSOR_REDUCE"
    dst = prop_def(AccessAttr)
    src = prop_def(AccessAttr)
    op = prop_def(Words(REDUCE_OPS))
    axes = opt_prop_def(IntAttr)
    negate = opt_prop_def(UnitAttr)


@irdl_op_definition
class TensorCopyOp(InstrOp):
    """dst = src (bit-exact for equal dtypes, else through fp32)."""

    name = "nisa.tensor_copy"
    ENGINES: ClassVar = ("vector", "gpsimd")
    OPCODE: ClassVar = "TENSOR_COPY"
    dst = prop_def(AccessAttr)
    src = prop_def(AccessAttr)


@irdl_op_definition
class MemsetOp(InstrOp):
    """dst = value."""

    name = "nisa.memset"
    ENGINES: ClassVar = ("vector", "gpsimd")
    OPCODE: ClassVar = "MEMSET"
    dst = prop_def(AccessAttr)
    value = prop_def(FloatAttr)


@irdl_op_definition
class IotaOp(InstrOp):
    """dst[p, f] = base + channel * p + step * f (f = flat free index)."""

    name = "nisa.iota"
    ENGINES: ClassVar = ("gpsimd",)
    OPCODE: ClassVar = "IOTA"
    dst = prop_def(AccessAttr)
    base = opt_prop_def(IntAttr)
    channel = opt_prop_def(IntAttr)
    step = opt_prop_def(IntAttr)


@irdl_op_definition
class SelectOp(InstrOp):
    """dst = pred != 0 ? on_true : on_false (a tensor or a number)."""

    name = "nisa.select"
    ENGINES: ClassVar = ("vector", "gpsimd")
    OPCODE: ClassVar = "SELECT"
    dst = prop_def(AccessAttr)
    pred = prop_def(AccessAttr)
    on_true = prop_def(AccessAttr)
    on_false = prop_def(Scalar)


@irdl_op_definition
class AffineSelectOp(InstrOp):
    """dst[p, f] = (base + channel * p + step * f CMP 0) ? src[p, f] : fill (causal masks)."""

    name = "nisa.affine_select"
    ENGINES: ClassVar = ("gpsimd",)
    OPCODE: ClassVar = "AFFINE_SELECT"
    dst = prop_def(AccessAttr)
    src = prop_def(AccessAttr)
    base = opt_prop_def(IntAttr)
    channel = opt_prop_def(IntAttr)
    step = opt_prop_def(IntAttr)
    cmp = prop_def(Words(CMP_OPS))
    fill = prop_def(FloatAttr)


@irdl_op_definition
class BnStatsOp(InstrOp):
    """dst[P, 3] = (count, mean, population variance) of src[P, N <= 512]."""

    name = "nisa.bn_stats"
    ENGINES: ClassVar = ("vector",)
    OPCODE: ClassVar = "BN_STATS"
    dst = prop_def(AccessAttr)
    src = prop_def(AccessAttr)


@irdl_op_definition
class BnAggrOp(InstrOp):
    """dst[P, 2] = (mean, variance) combining the G bn_stats triples of src[P, 3G]."""

    name = "nisa.bn_aggr"
    ENGINES: ClassVar = ("vector",)
    OPCODE: ClassVar = "BN_AGGR"
    dst = prop_def(AccessAttr)
    src = prop_def(AccessAttr)


@irdl_op_definition
class DmaCopyOp(InstrOp):
    """dst = src element by element in row-major order (equal counts), casting through fp32."""

    name = "nisa.dma_copy"
    ENGINES: ClassVar = ("dma",)
    OPCODE: ClassVar = "DMA"
    dst = prop_def(AccessAttr)
    src = prop_def(AccessAttr)


@irdl_op_definition
class DmaGatherOp(InstrOp):
    """dst[p, k, ...] = src[index[p, k], ...]: an indirect DMA on a DMA queue whose descriptors
    GpSimd builds from the indices in SBUF (NC-v2's software descriptor generation); each
    index selects a slab of src along its first dim, counted from the access's first row."""

    name = "nisa.dma_gather"
    ENGINES: ClassVar = ("dma",)
    OPCODE: ClassVar = "DMA_GATHER"
    dst = prop_def(AccessAttr)
    src = prop_def(AccessAttr)
    index = prop_def(AccessAttr)


INSTRUCTIONS: tuple[type[InstrOp], ...] = (
    MatmulOp, TransposeOp, ActivationOp, TensorTensorOp, TensorScalarOp, TensorReduceOp,
    TensorCopyOp, MemsetOp, IotaOp, SelectOp, AffineSelectOp, BnStatsOp, BnAggrOp, DmaCopyOp,
    DmaGatherOp,
)  # fmt: skip

NISA = Dialect(
    "nisa",
    [KernelOp, EngineOp, DmaQueueOp, HbmOp, SbufOp, PsumOp, SemaphoreOp, *INSTRUCTIONS],
    [AccessAttr],
)

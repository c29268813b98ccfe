"""The `nisa` instruction dialect: one NeuronCore-v2 kernel as per-engine instruction streams.

A kernel declares its memories and semaphores, then holds one in-order stream per engine
(tensor, vector, scalar, gpsimd) and per DMA queue:

    nisa.kernel @gemm {
      nisa.hbm input @a : tensor<256x128xbf16>
      nisa.sbuf @at partitions 0:128 offset 0 : tensor<128x256xbf16>
      nisa.psum @acc partitions 0:128 offset 0 : tensor<128x512xf32>
      nisa.semaphore @loaded
      nisa.dma_queue @q0 {
        nisa.dma_copy @at[0:128, 0:256], @a[0:128, 0:256] signal(@loaded)
      }
      nisa.engine @tensor {
        nisa.matmul @acc[0:128, 0:512], @at[0:128, 0:128], @b[0:128, 0:512] start stop wait(@loaded >= 1)
      }
    }

Instructions name memory by symbol with an access pattern `@buf[a:b, c:d:step, i]`; the
first index of an SBUF/PSUM buffer is the partition. Nothing is an SSA value: instructions
are ordered by their stream, and engines synchronise only through semaphores
(`wait(@s >= n)` before issue, `signal(@s)` = +1 when the instruction completes).
docs/nisa.md is the contract: operands, dtypes, semantics and cost of every instruction.
"""

from __future__ import annotations

import functools
import io
import math
import re
from typing import ClassVar

from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    DictionaryAttr,
    Float8E4M3Type,
    FloatAttr,
    Float32Type,
    FloatTF32Type,
    IntAttr,
    IntegerAttr,
    StringAttr,
    TensorType,
    UnitAttr,
    f64,
)
from xdsl.ir import Attribute, Dialect, Operation, ParametrizedAttribute, Region, TypeAttribute
from xdsl.irdl import (
    IRDLOperation,
    irdl_attr_definition,
    irdl_op_definition,
    opt_prop_def,
    param_def,
    prop_def,
    region_def,
    traits_def,
)
from xdsl.parser import AttrParser, Parser
from xdsl.printer import Printer
from xdsl.traits import IsolatedFromAbove, NoTerminator
from xdsl.utils.exceptions import VerifyException

from neuron_opt.dialects import ncv2
from neuron_opt.dialects.types import byte_size, is_float, is_integer, type_name

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

    memory: StringAttr = param_def(StringAttr)
    dims: ArrayAttr[IntAttr] = param_def(ArrayAttr[IntAttr])

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
        if (hit := self.__dict__.get("_slices")) is not None:
            return hit
        d = [a.data for a in self.dims.data]
        out = tuple((d[i], d[i + 1], d[i + 2]) for i in range(0, len(d), 3))
        self.__dict__["_slices"] = out
        return out

    def shape(self) -> tuple[int, ...]:
        if (hit := self.__dict__.get("_shape")) is not None:
            return hit
        out = tuple(max(0, -(-(b - a) // s)) for a, b, s in self.slices())
        self.__dict__["_shape"] = out
        return out

    def text(self) -> str:
        if (hit := self.__dict__.get("_text")) is not None:
            return hit
        self.__dict__["_text"] = out = self._format()
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


@irdl_op_definition
class KernelOp(IRDLOperation):
    """`nisa.kernel @name { declarations; streams }`: one NeuronCore program."""

    name = "nisa.kernel"
    sym_name = prop_def(StringAttr)
    body = region_def("single_block")
    traits = traits_def(NoTerminator(), IsolatedFromAbove())

    def __init__(self, name: str, ops=()):
        from xdsl.ir import Block

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
        # against this placement, which the walk builds once per kernel.
        _remember_placement(self, Placement(self))


class _StreamOp(IRDLOperation):
    sym_name = prop_def(StringAttr)
    body = region_def("single_block")
    traits = traits_def(NoTerminator())

    def __init__(self, name: str, ops=()):
        from xdsl.ir import Block

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
        return list(self.body.block.ops)

    def _verify_children(self) -> None:
        for i, op in enumerate(self.body.block.ops):
            if not isinstance(op, InstrOp):
                raise VerifyException(
                    f"{stream_label(self)} instruction {i}: {op.name} is not a nisa instruction"
                )


@irdl_op_definition
class EngineOp(_StreamOp):
    """`nisa.engine @tensor { ... }`: the in-order instruction stream of one compute engine."""

    name = "nisa.engine"

    def verify_(self) -> None:
        self._verify_children()
        if self.sym_name.data not in ENGINES:
            raise VerifyException(
                f"unknown engine @{self.sym_name.data}: expected one of {', '.join(ENGINES)}"
            )


@irdl_op_definition
class DmaQueueOp(_StreamOp):
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
        from neuron_opt.dialects.nt import check_scales, scale_values

        shape = list(self.type.get_shape())
        role = self.role.data
        if role == "const":
            value = self.attributes.get("value")
            if not isinstance(value, DenseArrayBase) or len(value.get_values()) != math.prod(shape):
                raise VerifyException(f"a const needs value = array<...> with {math.prod(shape)} values")
        if "scale" not in self.attributes:
            return
        scale = self.attributes["scale"]
        if role != "weight" or not isinstance(self.type.element_type, Float8E4M3Type) \
                or not isinstance(scale, DenseArrayBase):
            raise VerifyException("scale = array<f32: ...> is for f8E4M3 weights only")
        values = scale_values(scale)
        check_scales(values, "scale")
        axis = self.attributes.get("axis")
        n = 1 if axis is None else shape[axis.value.data] if isinstance(axis, IntegerAttr) and \
            0 <= axis.value.data < len(shape) else None
        if n is None or len(values) != n:
            raise VerifyException(f"scale: expected {n or 'an axis and'} values, found {len(values)}")


class _OnChipOp(_DeclOp):
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
class SbufOp(_OnChipOp):
    name = "nisa.sbuf"
    CAPACITY: ClassVar = ncv2.SBUF_PARTITION_BYTES
    MEMORY: ClassVar = "SBUF"


@irdl_op_definition
class PsumOp(_OnChipOp):
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
# Each class lists its positional operands and keywords with a kind:
#   access  @buf[...]          scalar  a number or an access (a [P,1] column)
#   float   a number           int     an integer       flag  no value
#   word:a|b|c  one of the words        type  an element type (e.g. bf16)


class InstrOp(IRDLOperation):
    POSITIONAL: ClassVar[tuple[tuple[str, str], ...]] = ()
    KEYWORDS: ClassVar[tuple[tuple[str, str], ...]] = ()
    REQUIRED: ClassVar[tuple[str, ...]] = ()
    ENGINES: ClassVar[tuple[str, ...]] = ()  # "dma" for DMA queues
    OPCODE: ClassVar[str] = ""  # the name real profiles show

    wait = opt_prop_def(DictionaryAttr)
    signal = opt_prop_def(ArrayAttr)

    # -- Python access ------------------------------------------------------------------------
    @classmethod
    def make(cls, *positional, wait=None, signal=None, **keywords):
        """Build from Python: accesses as AccessAttr or (name, slices); numbers; True flags;
        `wait={"s": 2}`, `signal=["s"]`."""
        props: dict[str, Attribute] = {}
        for (name, kind), v in zip(cls.POSITIONAL, positional):
            props[name] = _to_prop(v, kind)
        for name, kind in cls.KEYWORDS:
            v = keywords.pop(name, None)
            if v is not None and v is not False:
                props[name] = _to_prop(v, kind)
        if keywords:
            raise TypeError(f"{cls.name}: unknown keywords {sorted(keywords)}")
        if wait:
            props["wait"] = DictionaryAttr({k: IntAttr(int(n)) for k, n in wait.items()})
        if signal:
            props["signal"] = ArrayAttr([StringAttr(s) for s in signal])
        return cls.create(properties=props)

    def get(self, name: str):
        """A property as Python: AccessAttr, float, int, str, True, a type, or None."""
        return _from_prop(self.properties.get(name))

    def accesses(self) -> list[tuple[str, AccessAttr]]:
        out = []
        for name, _ in self.POSITIONAL + self.KEYWORDS:
            v = self.properties.get(name)
            if isinstance(v, AccessAttr):
                out.append((name, v))
        return out

    def waits(self) -> dict[str, int]:
        return {k: v.data for k, v in self.wait.data.items()} if self.wait else {}

    def signals(self) -> list[str]:
        return [s.data for s in self.signal.data] if self.signal else []

    # -- syntax ---------------------------------------------------------------------------
    @classmethod
    def parse(cls, parser: Parser):
        props: dict[str, Attribute] = {}
        for i, (name, kind) in enumerate(cls.POSITIONAL):
            if i:
                parser.parse_punctuation(",", f" before operand '{name}' of {cls.name}")
            props[name] = _parse_value(parser, kind, name, cls.name)
        keywords = dict(cls.KEYWORDS)
        while True:
            word = parser.parse_optional_keyword_in(keywords.keys())
            if word is None:
                break
            if word in props:
                parser.raise_error(f"{cls.name}: '{word}' given twice")
            props[word] = _parse_value(parser, keywords[word], word, cls.name)
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
        for name in cls.REQUIRED:
            if name not in props:
                parser.raise_error(f"{cls.name} needs '{name}'")
        return cls.create(properties=props, attributes=attrs)

    def print(self, printer: Printer) -> None:
        parts = []
        for name, _ in self.POSITIONAL:
            parts.append(_format_value(self.properties.get(name)))
        printer.print_string(" " + ", ".join(parts))
        for name, kind in self.KEYWORDS:
            v = self.properties.get(name)
            if v is None:
                continue
            if kind == "flag":
                printer.print_string(f" {name}")
            elif kind == "type":
                printer.print_string(f" {name} ")
                printer.print_attribute(v)
            else:
                printer.print_string(f" {name} {_format_value(v)}")
        if self.wait:
            w = ", ".join(f"{symbol_text(k)} >= {v.data}" for k, v in self.wait.data.items())
            printer.print_string(f" wait({w})")
        if self.signal:
            printer.print_string(" signal(" + ", ".join(symbol_text(s.data) for s in self.signal.data) + ")")
        if self.attributes:
            printer.print_string(" ")
            printer.print_attr_dict(self.attributes)

    def verify_(self) -> None:
        self._verify_properties()
        stream = self.parent_op()
        kernel = stream.parent_op() if stream is not None else None
        if not isinstance(stream, _StreamOp) or not isinstance(kernel, KernelOp):
            return
        pl = _placement_of(kernel)
        engine = stream.sym_name.data if isinstance(stream, EngineOp) else "dma"
        try:
            _check_instruction(pl, engine, self)
        except VerifyException as e:
            raise VerifyException(
                f"{stream_label(stream)} instruction {pl.index_of(self)} ({self.name}): {e}"
            ) from None

    def _verify_properties(self) -> None:
        for name in self.REQUIRED:
            if name not in self.properties:
                raise VerifyException(f"{self.name} needs '{name}'")
        kinds = dict(self.POSITIONAL + self.KEYWORDS)
        for name, v in self.properties.items():
            kind = kinds.get(name)
            if kind is None:
                continue
            if kind.startswith("word:") and not (
                isinstance(v, StringAttr) and v.data in kind[5:].split("|")
            ):
                raise VerifyException(
                    f"{self.name}: '{name}' must be one of {kind[5:].replace('|', ', ')}"
                )


def _to_prop(v, kind: str) -> Attribute:
    if isinstance(v, Attribute):
        return v
    if kind in ("access", "scalar") and isinstance(v, tuple) and isinstance(v[0], str):
        return AccessAttr.get(v[0], v[1])
    if kind == "flag":
        return UnitAttr()
    if kind in ("float", "scalar"):
        return FloatAttr(float(v), f64)
    if kind == "int":
        return IntAttr(int(v))
    if kind.startswith("word:"):
        return StringAttr(str(v))
    raise TypeError(f"cannot make a {kind} property from {v!r}")


def _from_prop(v: Attribute | None):
    if v is None:
        return None
    if isinstance(v, UnitAttr):
        return True
    if isinstance(v, FloatAttr):
        return v.value.data
    if isinstance(v, IntAttr):
        return v.data
    if isinstance(v, StringAttr):
        return v.data
    return v


def _parse_value(parser: Parser, kind: str, name: str, opname: str) -> Attribute:
    if kind == "flag":
        return UnitAttr()
    if kind in ("access", "scalar"):
        sym = parser.parse_optional_symbol_name()
        if sym is not None:
            return parse_access(parser, sym)
        if kind == "access":
            parser.raise_error(f"{opname}: '{name}' expects an access pattern @buf[...]")
    if kind in ("float", "scalar"):
        neg = parser.parse_optional_punctuation("-") is not None
        v = parser.parse_optional_number()
        if v is None:
            if parser.parse_optional_keyword("inf") is not None:
                v = math.inf
            elif parser.parse_optional_keyword("nan") is not None:
                v = math.nan
            else:
                parser.raise_error(f"{opname}: '{name}' expects a number")
        return FloatAttr(-float(v) if neg else float(v), f64)
    if kind == "int":
        v = parser.parse_optional_number()
        if not isinstance(v, int):
            parser.raise_error(f"{opname}: '{name}' expects an integer")
        return IntAttr(v)
    if kind.startswith("word:"):
        choices = kind[5:].split("|")
        w = parser.parse_optional_identifier()
        if w not in choices:
            parser.raise_error(f"{opname}: '{name}' expects one of {', '.join(choices)}")
        return StringAttr(w)
    if kind == "type":
        t = parser.parse_type()
        if not isinstance(t, TypeAttribute):
            parser.raise_error(f"{opname}: '{name}' expects an element type")
        return t
    raise AssertionError(kind)


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


_ALU = "word:" + "|".join(ALU_OPS)


@irdl_op_definition
class MatmulOp(InstrOp):
    """dst[M, N] (PSUM, f32) (+)= stationary[K, M].T @ moving[K, N]; `start` overwrites (opens
    the accumulation group), `stop` closes it."""

    name = "nisa.matmul"
    POSITIONAL: ClassVar = (("dst", "access"), ("stationary", "access"), ("moving", "access"))
    KEYWORDS: ClassVar = (("start", "flag"), ("stop", "flag"))
    REQUIRED: ClassVar = ("dst", "stationary", "moving")
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
    POSITIONAL: ClassVar = (("dst", "access"), ("src", "access"))
    REQUIRED: ClassVar = ("dst", "src")
    ENGINES: ClassVar = ("tensor",)
    OPCODE: ClassVar = "TRANSPOSE"
    dst = prop_def(AccessAttr)
    src = prop_def(AccessAttr)


@irdl_op_definition
class ActivationOp(InstrOp):
    """dst = func(src * scale + bias); `accumulate` gets the free-dim sum of dst's values."""

    name = "nisa.activation"
    POSITIONAL: ClassVar = (("dst", "access"), ("src", "access"))
    KEYWORDS: ClassVar = (
        ("func", "word:" + "|".join(ACT_FUNCS)),
        ("scale", "scalar"),
        ("bias", "access"),
        ("accumulate", "access"),
    )
    REQUIRED: ClassVar = ("dst", "src", "func")
    ENGINES: ClassVar = ("scalar",)
    OPCODE: ClassVar = "ACTIVATE"
    dst = prop_def(AccessAttr)
    src = prop_def(AccessAttr)
    func = prop_def(StringAttr)
    scale = opt_prop_def(Attribute)
    bias = opt_prop_def(AccessAttr)
    accumulate = opt_prop_def(AccessAttr)


@irdl_op_definition
class TensorTensorOp(InstrOp):
    """dst = lhs OP rhs, elementwise, in fp32."""

    name = "nisa.tensor_tensor"
    POSITIONAL: ClassVar = (("dst", "access"), ("lhs", "access"), ("rhs", "access"))
    KEYWORDS: ClassVar = (("op", _ALU),)
    REQUIRED: ClassVar = ("dst", "lhs", "rhs", "op")
    ENGINES: ClassVar = ("vector", "gpsimd")
    OPCODE: ClassVar = "TENSOR_TENSOR"
    dst = prop_def(AccessAttr)
    lhs = prop_def(AccessAttr)
    rhs = prop_def(AccessAttr)
    op = prop_def(StringAttr)


@irdl_op_definition
class TensorScalarOp(InstrOp):
    """dst = (src op0 operand0) op1 operand1; operands are numbers or [P,1] columns;
    `reverseK` swaps the two sides of opK."""

    name = "nisa.tensor_scalar"
    POSITIONAL: ClassVar = (("dst", "access"), ("src", "access"))
    KEYWORDS: ClassVar = (
        ("op0", _ALU),
        ("operand0", "scalar"),
        ("reverse0", "flag"),
        ("op1", _ALU),
        ("operand1", "scalar"),
        ("reverse1", "flag"),
    )
    REQUIRED: ClassVar = ("dst", "src", "op0", "operand0")
    ENGINES: ClassVar = ("vector", "scalar", "gpsimd")
    OPCODE: ClassVar = "TENSOR_SCALAR"
    dst = prop_def(AccessAttr)
    src = prop_def(AccessAttr)
    op0 = prop_def(StringAttr)
    operand0 = prop_def(Attribute)
    reverse0 = opt_prop_def(UnitAttr)
    op1 = opt_prop_def(StringAttr)
    operand1 = opt_prop_def(Attribute)
    reverse1 = opt_prop_def(UnitAttr)

    def verify_(self) -> None:
        super().verify_()
        if (self.op1 is None) != (self.operand1 is None):
            raise VerifyException("nisa.tensor_scalar: op1 and operand1 go together")


@irdl_op_definition
class TensorReduceOp(InstrOp):
    """dst[P, lead...] = OP over the last `axes` free dims of src (default: all free dims)."""

    name = "nisa.tensor_reduce"
    POSITIONAL: ClassVar = (("dst", "access"), ("src", "access"))
    KEYWORDS: ClassVar = (("op", "word:" + "|".join(REDUCE_OPS)), ("axes", "int"), ("negate", "flag"))
    REQUIRED: ClassVar = ("dst", "src", "op")
    ENGINES: ClassVar = ("vector",)
    OPCODE: ClassVar = "TENSOR_REDUCE"
    dst = prop_def(AccessAttr)
    src = prop_def(AccessAttr)
    op = prop_def(StringAttr)
    axes = opt_prop_def(IntAttr)
    negate = opt_prop_def(UnitAttr)


@irdl_op_definition
class TensorCopyOp(InstrOp):
    """dst = src (bit-exact for equal dtypes, else through fp32)."""

    name = "nisa.tensor_copy"
    POSITIONAL: ClassVar = (("dst", "access"), ("src", "access"))
    REQUIRED: ClassVar = ("dst", "src")
    ENGINES: ClassVar = ("vector", "gpsimd")
    OPCODE: ClassVar = "TENSOR_COPY"
    dst = prop_def(AccessAttr)
    src = prop_def(AccessAttr)


@irdl_op_definition
class MemsetOp(InstrOp):
    """dst = value."""

    name = "nisa.memset"
    POSITIONAL: ClassVar = (("dst", "access"),)
    KEYWORDS: ClassVar = (("value", "float"),)
    REQUIRED: ClassVar = ("dst", "value")
    ENGINES: ClassVar = ("vector", "gpsimd")
    OPCODE: ClassVar = "MEMSET"
    dst = prop_def(AccessAttr)
    value = prop_def(FloatAttr)


@irdl_op_definition
class IotaOp(InstrOp):
    """dst[p, f] = base + channel * p + step * f (f = flat free index)."""

    name = "nisa.iota"
    POSITIONAL: ClassVar = (("dst", "access"),)
    KEYWORDS: ClassVar = (("base", "int"), ("channel", "int"), ("step", "int"))
    REQUIRED: ClassVar = ("dst",)
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
    POSITIONAL: ClassVar = (("dst", "access"), ("pred", "access"), ("on_true", "access"), ("on_false", "scalar"))
    REQUIRED: ClassVar = ("dst", "pred", "on_true", "on_false")
    ENGINES: ClassVar = ("vector", "gpsimd")
    OPCODE: ClassVar = "SELECT"
    dst = prop_def(AccessAttr)
    pred = prop_def(AccessAttr)
    on_true = prop_def(AccessAttr)
    on_false = prop_def(Attribute)


@irdl_op_definition
class AffineSelectOp(InstrOp):
    """dst[p, f] = (base + channel * p + step * f CMP 0) ? src[p, f] : fill (causal masks)."""

    name = "nisa.affine_select"
    POSITIONAL: ClassVar = (("dst", "access"), ("src", "access"))
    KEYWORDS: ClassVar = (
        ("base", "int"),
        ("channel", "int"),
        ("step", "int"),
        ("cmp", "word:" + "|".join(CMP_OPS)),
        ("fill", "float"),
    )
    REQUIRED: ClassVar = ("dst", "src", "cmp", "fill")
    ENGINES: ClassVar = ("gpsimd",)
    OPCODE: ClassVar = "AFFINE_SELECT"
    dst = prop_def(AccessAttr)
    src = prop_def(AccessAttr)
    base = opt_prop_def(IntAttr)
    channel = opt_prop_def(IntAttr)
    step = opt_prop_def(IntAttr)
    cmp = prop_def(StringAttr)
    fill = prop_def(FloatAttr)


@irdl_op_definition
class BnStatsOp(InstrOp):
    """dst[P, 3] = (count, mean, population variance) of src[P, N <= 512]."""

    name = "nisa.bn_stats"
    POSITIONAL: ClassVar = (("dst", "access"), ("src", "access"))
    REQUIRED: ClassVar = ("dst", "src")
    ENGINES: ClassVar = ("vector",)
    OPCODE: ClassVar = "BN_STATS"
    dst = prop_def(AccessAttr)
    src = prop_def(AccessAttr)


@irdl_op_definition
class BnAggrOp(InstrOp):
    """dst[P, 2] = (mean, variance) combining the G bn_stats triples of src[P, 3G]."""

    name = "nisa.bn_aggr"
    POSITIONAL: ClassVar = (("dst", "access"), ("src", "access"))
    REQUIRED: ClassVar = ("dst", "src")
    ENGINES: ClassVar = ("vector",)
    OPCODE: ClassVar = "BN_AGGR"
    dst = prop_def(AccessAttr)
    src = prop_def(AccessAttr)


@irdl_op_definition
class DmaCopyOp(InstrOp):
    """dst = src element by element in row-major order (equal counts), casting through fp32."""

    name = "nisa.dma_copy"
    POSITIONAL: ClassVar = (("dst", "access"), ("src", "access"))
    REQUIRED: ClassVar = ("dst", "src")
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
    POSITIONAL: ClassVar = (("dst", "access"), ("src", "access"), ("index", "access"))
    REQUIRED: ClassVar = ("dst", "src", "index")
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

# ---------------------------------------------------------------------------------------------
# Placement rules (the kernel verifier; the simulator runs the same checks before it decodes)


def hbm_shape(t: TensorType) -> tuple[int, ...]:
    """The dims an access to an HBM tensor slices: a rank-0 tensor is accessed as `@x[0]`."""
    return tuple(t.get_shape()) or (1,)


def free_size(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape[1:]:
        n *= d
    return n


def access_bytes(decl: _OnChipOp, ap: AccessAttr) -> tuple[int, int]:
    """The byte span [lo, hi) within each partition that `ap` touches."""
    shape = decl.type.get_shape()
    esize = byte_size(decl.type.element_type)
    strides = [1] * len(shape)
    for i in range(len(shape) - 2, 0, -1):
        strides[i] = strides[i + 1] * shape[i + 1]
    lo = hi = 0
    for (a, b, s), st in zip(ap.slices()[1:], strides[1:]):
        last = a + ((b - 1 - a) // s) * s
        lo += a * st
        hi += last * st
    return decl.offset.data + lo * esize, decl.offset.data + (hi + 1) * esize


class Placement:
    """Where a kernel's symbols live: built once per check, also used by the simulator."""

    def __init__(self, kernel: KernelOp):
        self.decls: dict[str, Attribute] = {}
        self.semaphores: set[str] = set()
        self.streams: list[_StreamOp] = []
        for op in kernel.body.block.ops:
            if isinstance(op, _StreamOp):
                self.streams.append(op)
                continue
            if isinstance(op, SemaphoreOp):
                if op.sym_name.data in self.semaphores or op.sym_name.data in self.decls:
                    raise VerifyException(f"@{op.sym_name.data} is declared twice")
                self.semaphores.add(op.sym_name.data)
                continue
            if isinstance(op, (HbmOp, SbufOp, PsumOp)):
                if op.sym_name.data in self.decls or op.sym_name.data in self.semaphores:
                    raise VerifyException(f"@{op.sym_name.data} is declared twice")
                self.decls[op.sym_name.data] = op
                continue
            raise VerifyException(f"{op.name} may not appear directly in a nisa.kernel")

        seen: set[tuple[type, str]] = set()
        for stream in self.streams:
            key = (type(stream), stream.sym_name.data)
            if key in seen:
                raise VerifyException(f"{stream_label(stream)} has two streams")
            seen.add(key)
        self._index: dict[int, int] | None = None
        self.kernel = kernel

    def index_of(self, instr: Operation) -> int:
        if self._index is None:
            self._index = {}
            for stream in self.streams:
                for i, op in enumerate(stream.body.block.ops):
                    self._index[id(op)] = i
        return self._index.get(id(instr), -1)

    @staticmethod
    def memory_of(decl) -> str:
        return {HbmOp: "HBM", SbufOp: "SBUF", PsumOp: "PSUM"}[type(decl)]


def stream_label(stream: _StreamOp) -> str:
    if isinstance(stream, EngineOp):
        return stream.sym_name.data
    return f"dma queue {stream.sym_name.data}"


_PLACEMENT: list = [None, None]  # the kernel last verified and its placement


def _remember_placement(kernel: KernelOp, pl: Placement) -> None:
    _PLACEMENT[0], _PLACEMENT[1] = kernel, pl


def _placement_of(kernel: KernelOp) -> Placement:
    if _PLACEMENT[0] is not kernel:
        _remember_placement(kernel, Placement(kernel))
    return _PLACEMENT[1]


def check_kernel(kernel: KernelOp) -> Placement:
    """Every placement rule of docs/nisa.md; errors name the engine, the instruction index and
    the operand. Returns the placement (the simulator decodes with it)."""
    pl = Placement(kernel)
    for stream in pl.streams:
        stream.verify_()
        engine = stream.sym_name.data if isinstance(stream, EngineOp) else "dma"
        for index, instr in enumerate(stream.body.block.ops):
            try:
                if not isinstance(instr, InstrOp):
                    raise VerifyException(f"{instr.name} is not a nisa instruction")
                instr._verify_properties()
                _check_instruction(pl, engine, instr)
            except VerifyException as e:
                raise VerifyException(
                    f"{stream_label(stream)} instruction {index} ({instr.name}): {e}"
                ) from None
    return pl


def _check_instruction(pl: Placement, engine: str, instr: InstrOp) -> None:
    if engine not in instr.ENGINES:
        where = "a dma queue" if engine == "dma" else f"the {engine} engine"
        allowed = ", ".join(instr.ENGINES)
        raise VerifyException(f"{instr.name} cannot run on {where} (it runs on: {allowed})")
    for sem in list(instr.waits()) + instr.signals():
        if sem not in pl.semaphores:
            raise VerifyException(f"@{sem} is not a declared semaphore")
    mems: dict[str, str] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for opname, ap in instr.accesses():
        decl = pl.decls.get(ap.memory.data)
        if decl is None:
            raise VerifyException(f"operand {opname}: @{ap.memory.data} is not a declared buffer")
        t = decl.type
        shape = hbm_shape(t) if isinstance(decl, HbmOp) else t.get_shape()
        sl = ap.slices()
        if len(sl) != len(shape):
            raise VerifyException(
                f"operand {opname}: {ap.text()} has {len(sl)} indices for a "
                f"{len(shape)}-d buffer {type_name(t)}"
            )
        for d, ((a, b, _), n) in enumerate(zip(sl, shape)):
            if b > n:
                raise VerifyException(
                    f"operand {opname}: {ap.text()} is out of bounds in dimension {d} "
                    f"({a}:{b} of {n})"
                )
        mem = pl.memory_of(decl)
        mems[opname] = mem
        shapes[opname] = ap.shape()
        if isinstance(instr, DmaGatherOp):
            want = "HBM" if opname == "src" else "SBUF"
            if mem != want:
                raise VerifyException(f"operand {opname}: dma_gather's {opname} is in {want}, found {mem}")
        else:
            _check_engine_memory(engine, instr, opname, mem)
        if mem != "HBM":
            if sl[0][2] != 1:
                raise VerifyException(f"operand {opname}: no striding along the partition dim")
            p = decl.partition.data + sl[0][0]
            count = sl[0][1] - sl[0][0]
            if engine != "dma" and not ncv2.partition_start_ok(p, count):
                raise VerifyException(
                    f"operand {opname}: {count} partitions starting at {p}: "
                    f"{ncv2.partition_start_rule(count)}"
                )
            if engine in ("vector", "scalar", "gpsimd"):
                n = free_size(ap.shape())
                limit = ncv2.VECTOR_FREE_MAX_PSUM if mem == "PSUM" else ncv2.VECTOR_FREE_MAX_SBUF
                if n > limit:
                    raise VerifyException(
                        f"operand {opname}: free size {n} exceeds {limit} elements in {mem}"
                    )
    _check_shapes(pl, instr, mems, shapes)


def _check_engine_memory(engine: str, instr: InstrOp, opname: str, mem: str) -> None:
    if engine == "tensor":
        want = "PSUM" if opname == "dst" else "SBUF"
        if mem != want:
            verb = "writes" if opname == "dst" else "reads"
            raise VerifyException(
                f"operand {opname}: TensorE {verb} {want} only, found {mem}"
            )
    elif engine == "dma":
        if mem == "PSUM":
            raise VerifyException(f"operand {opname}: DMA cannot access PSUM")
    elif engine == "gpsimd":
        if mem != "SBUF":
            raise VerifyException(f"operand {opname}: GpSimd accesses SBUF only, found {mem}")
    elif mem == "HBM":
        raise VerifyException(f"operand {opname}: the {engine} engine cannot access HBM")


def _elt(pl: Placement, ap: AccessAttr):
    return pl.decls[ap.memory.data].type.element_type


def _check_shapes(pl: Placement, instr: InstrOp, mems, shapes) -> None:
    def fail(msg):
        raise VerifyException(msg)

    def same_partitions(a: str, b: str):
        if shapes[a][0] != shapes[b][0]:
            fail(f"operand {b}: {shapes[b][0]} partitions, but {a} has {shapes[a][0]}")

    def same_free(a: str, b: str):
        if free_size(shapes[a]) != free_size(shapes[b]):
            fail(
                f"operand {b}: {free_size(shapes[b])} elements per partition, "
                f"but {a} has {free_size(shapes[a])}"
            )

    def column(name: str):
        if name in shapes:
            same_partitions("dst", name)
            if free_size(shapes[name]) != 1:
                fail(f"operand {name}: expected a [P, 1] column, found {free_size(shapes[name])} per partition")

    if isinstance(instr, (TensorTensorOp, TensorScalarOp)):
        ops = [instr.get(k) for k in ("op", "op0", "op1")]
        if any(o in BITVEC_OPS for o in ops if o):
            for name in shapes:
                if not is_integer(_elt(pl, instr.properties[name])):
                    fail(f"operand {name}: bitvec ops take integer buffers, found "
                         f"{type_name(_elt(pl, instr.properties[name]))}")
    if isinstance(instr, (MatmulOp, TransposeOp)):
        dst = instr.dst
        dst_elt = _elt(pl, dst)
        if not isinstance(dst_elt, Float32Type):
            fail(f"operand dst: PE array output is f32 on NC-v2, found {type_name(dst_elt)}")
        decl = pl.decls[dst.memory.data]
        lo, hi = access_bytes(decl, dst)
        bank = ncv2.PSUM_BANK_BYTES
        if lo // bank != (hi - 1) // bank:
            fail(f"operand dst: bytes {lo}:{hi} cross a PSUM bank boundary (banks are {bank} B)")
    if isinstance(instr, MatmulOp):
        k, m = shapes["stationary"][0], free_size(shapes["stationary"])
        k2, n = shapes["moving"][0], free_size(shapes["moving"])
        if k != k2:
            fail(f"operand moving: contraction {k2} partitions, stationary has {k}")
        if k > ncv2.CONTRACTION_MAX:
            fail(f"operand stationary: contraction {k} > {ncv2.CONTRACTION_MAX}")
        if m > ncv2.STATIONARY_FREE_MAX:
            fail(f"operand stationary: free size {m} > {ncv2.STATIONARY_FREE_MAX}")
        if n > ncv2.MOVING_FREE_MAX:
            fail(f"operand moving: free size {n} > {ncv2.MOVING_FREE_MAX}")
        ps = pl.decls[instr.stationary.memory.data].partition.data + instr.stationary.slices()[0][0]
        pm = pl.decls[instr.moving.memory.data].partition.data + instr.moving.slices()[0][0]
        if ps != pm:
            fail(f"operand moving: starts at partition {pm}, stationary at {ps} (rows must align)")
        if shapes["dst"][0] != m or free_size(shapes["dst"]) != n:
            fail(f"operand dst: expected [{m}, {n}], found [{shapes['dst'][0]}, {free_size(shapes['dst'])}]")
        es, em = _elt(pl, instr.stationary), _elt(pl, instr.moving)
        wide = (Float32Type, FloatTF32Type)
        for name, e in (("stationary", es), ("moving", em)):
            if not is_float(e):
                fail(f"operand {name}: TensorE takes float inputs, found {type_name(e)}")
        if isinstance(es, wide) != isinstance(em, wide):
            fail("fp32/tf32 operands pair only with fp32/tf32 operands")
    elif isinstance(instr, TransposeOp):
        p, f = shapes["src"][0], free_size(shapes["src"])
        if f > ncv2.STATIONARY_FREE_MAX:
            fail(f"operand src: free size {f} > {ncv2.STATIONARY_FREE_MAX}")
        if shapes["dst"][0] != f or free_size(shapes["dst"]) != p:
            fail(f"operand dst: expected [{f}, {p}], found [{shapes['dst'][0]}, {free_size(shapes['dst'])}]")
    elif isinstance(instr, DmaCopyOp):
        a, b = shapes["dst"], shapes["src"]
        if math.prod(a) != math.prod(b):
            fail(f"operand src: {math.prod(b)} elements, dst has {math.prod(a)}")
    elif isinstance(instr, DmaGatherOp):
        same_partitions("dst", "index")
        if not is_integer(_elt(pl, instr.index)) or _elt(pl, instr.index).width.data == 1:
            fail(f"operand index: expected an integer buffer, found {type_name(_elt(pl, instr.index))}")
        if instr.src.slices()[0][2] != 1:
            fail("operand src: the indexed (first) dim takes no step")
        row = math.prod(shapes["src"][1:])
        want = free_size(shapes["index"]) * row
        if free_size(shapes["dst"]) != want:
            fail(f"operand dst: expected {want} elements per partition ({free_size(shapes['index'])} "
                 f"indices x {row}), found {free_size(shapes['dst'])}")
    elif isinstance(instr, TensorTensorOp):
        for name in ("lhs", "rhs"):
            same_partitions("dst", name)
            same_free("dst", name)
        if mems["lhs"] == "PSUM" and mems["rhs"] == "PSUM":
            fail("operand rhs: tensor_tensor inputs may not both be in PSUM")
    elif isinstance(instr, (TensorCopyOp, ActivationOp, TensorScalarOp, AffineSelectOp)):
        same_partitions("dst", "src")
        same_free("dst", "src")
        for name in ("bias", "accumulate", "operand0", "operand1", "scale"):
            column(name)
        if isinstance(instr, ActivationOp) and "accumulate" in shapes:
            if not is_float(_elt(pl, instr.accumulate)):
                fail("operand accumulate: expected a float buffer")
    elif isinstance(instr, SelectOp):
        for name in ("pred", "on_true"):
            same_partitions("dst", name)
            same_free("dst", name)
        if "on_false" in shapes and free_size(shapes["on_false"]) != 1:
            same_partitions("dst", "on_false")
            same_free("dst", "on_false")
        elif "on_false" in shapes:
            column("on_false")
    elif isinstance(instr, TensorReduceOp):
        same_partitions("dst", "src")
        src = shapes["src"][1:]
        axes = instr.get("axes")
        axes = len(src) if axes is None else axes
        if not 1 <= axes <= len(src):
            fail(f"axes {axes}: src has {len(src)} free dims")
        keep = math.prod(src[: len(src) - axes])
        if free_size(shapes["dst"]) != keep:
            fail(f"operand dst: expected {keep} elements per partition, found {free_size(shapes['dst'])}")
    elif isinstance(instr, BnStatsOp):
        same_partitions("dst", "src")
        if free_size(shapes["src"]) > ncv2.BN_STATS_FREE_MAX:
            fail(f"operand src: bn_stats takes at most {ncv2.BN_STATS_FREE_MAX} elements per partition")
        if free_size(shapes["dst"]) != 3:
            fail("operand dst: bn_stats writes 3 values (count, mean, variance) per partition")
    elif isinstance(instr, BnAggrOp):
        same_partitions("dst", "src")
        if free_size(shapes["src"]) % 3:
            fail("operand src: bn_aggr reads (count, mean, variance) triples")
        if free_size(shapes["dst"]) != 2:
            fail("operand dst: bn_aggr writes 2 values (mean, variance) per partition")


NISA = Dialect(
    "nisa",
    [KernelOp, EngineOp, DmaQueueOp, HbmOp, SbufOp, PsumOp, SemaphoreOp, *INSTRUCTIONS],
    [AccessAttr],
)

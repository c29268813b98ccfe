"""What each instruction computes (docs/nisa.md §3, §5): numpy on whole tiles.

`build(instr, machine)` runs once per instruction when a kernel is decoded and returns a
closure over ready-made numpy views of the instruction's operands, so the engine loop only
calls it. Inputs are read exactly (widened to fp32), arithmetic is fp32, and each result is
rounded once, nearest-even, to its destination dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import cast

import numpy as np
from xdsl.dialects.builtin import Float32Type, FloatTF32Type

from neuron_opt.dialects import nisa
from neuron_opt.dialects.types import (
    is_bool,
    is_integer,
    numpy_dtype,
    round_tf32,
    round_to,
    type_name,
)
from neuron_opt.runtime import special
from neuron_opt.runtime.sim.errors import Fault

F32 = np.float32


FP32_EXACT = 1 << 24  # integers of at most this magnitude are exact in fp32
# The integer range each engine computes in exactly (docs/nisa.md §3): VectorE and ScalarE
# convert to fp32, GpSimd computes in int32 natively.
EXACT_RANGE = {"vector": FP32_EXACT, "scalar": FP32_EXACT, "gpsimd": (1 << 31) - 1}


def _to_integer(x: np.ndarray, elt, operand: str) -> np.ndarray:
    """Exact integers (int64) or fp32/float64 values -> integer type `elt`: floats truncate
    toward zero and saturate (NaN -> 0); an integer out of range is a fault (hardware would
    wrap: never silently)."""
    if is_bool(elt):
        return x != 0
    dt = numpy_dtype(elt)
    if x.dtype.kind == "f":
        info = np.iinfo(dt)
        t = np.nan_to_num(np.trunc(x.astype(np.float64)), nan=0.0)
        return np.clip(t, info.min, info.max).astype(dt)
    info = np.iinfo(dt)
    out = (x < info.min) | (x > info.max)
    if out.any():
        v = x[out].reshape(-1)[0]
        raise Fault(operand, f"integer {int(v)} does not fit {type_name(elt)}")
    return x.astype(dt)


def _rounder(elt) -> Callable[[np.ndarray], np.ndarray]:
    """fp32 (or float64, or exact int64) values -> the dtype of `elt`, one RNE rounding."""
    if is_integer(elt):
        return lambda x: _to_integer(np.asarray(x), elt, "dst")
    if isinstance(elt, Float32Type):
        return lambda x: (
            np.asarray(x, F32) if x.dtype == F32 else round_to(x.astype(np.float64), elt)
        )
    if isinstance(elt, FloatTF32Type):
        return lambda x: round_tf32(x) if x.dtype == F32 else round_to(x.astype(np.float64), elt)
    dt = numpy_dtype(elt)

    def to_float(x):
        if x.dtype == np.float64 or x.dtype.kind in "iub":
            return round_to(x.astype(np.float64), elt)
        with np.errstate(over="ignore"):
            return x.astype(dt)

    return to_float


class _Operand:
    """An access's values, written-mask and the dtype facts the closures need."""

    __slots__ = (
        "dtype",
        "elt",
        "integer",
        "memory",
        "name",
        "p",
        "shape",
        "text",
        "values",
        "written",
    )

    def __init__(self, machine, name: str, ap: nisa.AccessAttr):
        self.name = name
        self.values, self.written = machine.view(ap)
        decl = machine.pl.decls[ap.memory.data]
        self.elt = decl.type.element_type
        self.dtype = numpy_dtype(self.elt)
        self.text = ap.text()
        self.memory = machine.pl.memory_of(decl)
        self.shape = self.values.shape
        self.p = self.shape[0]
        self.integer = is_integer(self.elt)

    def read(self) -> np.ndarray:
        """The values as fp32 [P, N]; a read of memory never written is a fault, and so is an
        integer that fp32 cannot hold exactly."""
        if not self.written.all():
            raise Fault(self.name, f"reads uninitialized {self.memory} {self.text}")
        x = self.values.reshape(self.p, -1)
        if isinstance(self.elt, FloatTF32Type):
            return round_tf32(x)
        if self.integer and x.dtype != np.bool_:
            _check_range(x, FP32_EXACT, self.name, "the fp32 datapath")
        return x.astype(F32, copy=False)

    def read_int(self) -> np.ndarray:
        """The values as exact int64 [P, N] (integer buffers only)."""
        self.check()
        return self.values.reshape(self.p, -1).astype(np.int64)

    def check(self) -> None:
        if not self.written.all():
            raise Fault(self.name, f"reads uninitialized {self.memory} {self.text}")


def _check_range(x: np.ndarray, limit: int, operand: str, where: str) -> None:
    if x.size and x.dtype != np.bool_:
        big = np.abs(x.astype(np.int64)) > limit
        if big.any():
            v = int(x[big].reshape(-1)[0])
            if where == "gpsimd engine":
                raise Fault(operand, f"integer {v} overflows GpSimd's int32 arithmetic")
            raise Fault(
                operand,
                f"integer {v} is beyond {where}'s exact range (|v| <= {limit}); "
                "integer arithmetic that large runs on GpSimd (int32)",
            )


def _ieee_max(a, b):
    # IEEE 754-2019 maximum: NaN propagates and -0 < +0 (np.maximum's zero sign varies).
    r = np.where(a > b, a, np.where(b > a, b, np.where(np.signbit(a), b, a)))
    return np.where(np.isnan(a) | np.isnan(b), np.float32(np.nan), r)


def _ieee_min(a, b):
    r = np.where(a < b, a, np.where(b < a, b, np.where(np.signbit(a), a, b)))
    return np.where(np.isnan(a) | np.isnan(b), np.float32(np.nan), r)


ALU: dict[str, Callable] = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "max": _ieee_max,
    "min": _ieee_min,
    "mod": np.remainder,
    "fmod": np.fmod,
    "pow": np.power,
    "eq": lambda a, b: (a == b).astype(F32),
    "ne": lambda a, b: (a != b).astype(F32),
    "ge": lambda a, b: (a >= b).astype(F32),
    "gt": lambda a, b: (a > b).astype(F32),
    "le": lambda a, b: (a <= b).astype(F32),
    "lt": lambda a, b: (a < b).astype(F32),
}


def _nonzero_divisor(b) -> None:
    if np.any(np.asarray(b) == 0):
        raise Fault("rhs", "integer division by zero")


def _int_div(a, b):
    _nonzero_divisor(b)
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -q, q)


def _int_mod(f):
    def run(a, b):
        _nonzero_divisor(b)
        return f(a, b)

    return run


def _int_pow(a, b):
    if np.any(np.asarray(b) < 0):
        raise Fault("rhs", "integer power with a negative exponent")
    with np.errstate(all="ignore"):
        big = np.abs(np.power(np.asarray(a, np.float64), b)) > 2.0**62
    if np.any(big):
        raise Fault("dst", "integer power overflows")
    return np.power(a, b)


# Exact integer arithmetic on int64 arrays (both inputs integer buffers or integral numbers).
INT_ALU: dict[str, Callable] = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": _int_div,
    "mod": _int_mod(np.remainder),
    "fmod": _int_mod(np.fmod),
    "max": np.maximum,
    "min": np.minimum,
    "pow": _int_pow,
    "eq": lambda a, b: (a == b).astype(np.int64),
    "ne": lambda a, b: (a != b).astype(np.int64),
    "ge": lambda a, b: (a >= b).astype(np.int64),
    "gt": lambda a, b: (a > b).astype(np.int64),
    "le": lambda a, b: (a <= b).astype(np.int64),
    "lt": lambda a, b: (a < b).astype(np.int64),
    "and": np.bitwise_and,
    "or": np.bitwise_or,
    "xor": np.bitwise_xor,
}


def _relu(y):
    return np.where(np.isnan(y), y, np.where(y > 0, y, 0.0))


# ScalarE functions on float64 arguments (then rounded to fp32: "exact in fp32").
ACT: dict[str, Callable] = {
    "copy": lambda y: y,
    "exp": np.exp,
    "log": np.log,
    "tanh": np.tanh,
    "sigmoid": lambda y: special.scipy_special().expit(y),
    "erf": lambda y: special.scipy_special().erf(y),
    "gelu": special.gelu,
    "gelu_tanh": special.gelu_tanh,
    "silu": lambda y: y * special.scipy_special().expit(y),
    "relu": _relu,
    "rsqrt": lambda y: 1.0 / np.sqrt(y),
    "sqrt": np.sqrt,
    "reciprocal": lambda y: 1.0 / y,
    "square": np.square,
    "abs": np.abs,
    "neg": np.negative,
}
assert set(ACT) == set(nisa.ACT_FUNCS)
# The bitvec ops are not in ALU: the verifier admits them on integer buffers only (INT_ALU).
assert set(ALU) == set(INT_ALU) - set(nisa.BITVEC_OPS)
assert set(INT_ALU) == set(nisa.ALU_OPS)


def build(op: nisa.InstrOp, machine) -> Callable[[], None]:
    ops: dict[str, _Operand | str] = {
        name: _Operand(machine, name, ap) for name, ap in op.accesses()
    }
    stream = op.parent_op()
    ops["engine"] = stream.sym_name.data if isinstance(stream, nisa.EngineOp) else "dma"
    builder = _BUILDERS[type(op)]
    return builder(op, ops)


def _exact(ops: dict, *names: str, numbers=()) -> bool:
    """Does the instruction compute on exact integers: every tensor input an integer buffer
    and every immediate a whole number?"""
    return all(ops[n].integer for n in names if n in ops) and all(
        float(v).is_integer()
        for v in numbers
        if v is not None and not isinstance(v, nisa.AccessAttr)
    )


def _limit(ops: dict, x: np.ndarray, operand: str = "dst") -> np.ndarray:
    """An exact integer result checked against the engine's exact range."""
    engine = ops["engine"]
    _check_range(x, EXACT_RANGE[engine], operand, f"{engine} engine")
    return x


def _writer(dst: _Operand):
    rnd = _rounder(dst.elt)
    values, written, shape = dst.values, dst.written, dst.shape

    def write(x: np.ndarray) -> None:
        values[...] = rnd(x).reshape(shape)
        written[...] = True

    return write


def _scalar_operand(op: nisa.InstrOp, name: str, ops: dict, exact: bool = False):
    """A number, or a [P, 1] column read at run time (as int64 when `exact`)."""
    v = op.get(name)
    if isinstance(v, nisa.AccessAttr):
        col = ops[name]
        if exact:
            return lambda: col.read_int().reshape(col.p, 1)
        return lambda: col.read().reshape(col.p, 1)
    c = np.int64(_number(v)) if exact else F32(_number(v))
    return lambda: c


def _number(v) -> float:
    """A Scalar property's value that is not an access: IRDL's Scalar constraint (an access or
    a FloatAttr) makes it a float."""
    return cast(float, v)


def _matmul(op: nisa.MatmulOp, ops):
    st, mv, dst = ops["stationary"], ops["moving"], ops["dst"]
    k, m = st.p, st.values.size // st.p
    n = mv.values.size // mv.p
    start = op.start is not None
    values, written, shape = dst.values, dst.written, dst.shape

    def run():
        a = st.read().reshape(k, m)
        b = mv.read().reshape(k, n)
        with np.errstate(all="ignore"):  # overflow and inf - inf are results, not warnings
            r = (a.T @ b).reshape(shape)
        if start:
            values[...] = r
            written[...] = True
        else:
            values[...] += r

    return run


def _transpose(op, ops):
    src, write = ops["src"], _writer(ops["dst"])
    return lambda: write(src.read().T)


def _activation(op: nisa.ActivationOp, ops):
    src, write = ops["src"], _writer(ops["dst"])
    func = ACT[op.func.data]
    scale = _scalar_operand(op, "scale", ops) if op.scale is not None else (lambda: F32(1.0))
    bias = ops.get("bias")
    acc = _writer(ops["accumulate"]) if "accumulate" in ops else None

    def run():
        with np.errstate(all="ignore"):  # inf * 0 and inf - inf are results, not warnings
            y = src.read() * scale()
            if bias is not None:
                y = y + bias.read().reshape(bias.p, 1)
            r = func(y.astype(np.float64)).astype(F32)
        write(r)
        if acc is not None:
            acc(r.sum(axis=1, dtype=F32).reshape(-1, 1))

    return run


def _tensor_tensor(op: nisa.TensorTensorOp, ops):
    lhs, rhs, write = ops["lhs"], ops["rhs"], _writer(ops["dst"])
    if _exact(ops, "lhs", "rhs"):
        g = INT_ALU[op.op.data]

        def exact():
            a, b = _limit(ops, lhs.read_int(), "lhs"), _limit(ops, rhs.read_int(), "rhs")
            write(_limit(ops, g(a, b)))

        return exact
    f = ALU[op.op.data]

    def run():
        with np.errstate(all="ignore"):
            write(f(lhs.read(), rhs.read()).astype(F32, copy=False))

    return run


def _tensor_scalar(op: nisa.TensorScalarOp, ops):
    src, write = ops["src"], _writer(ops["dst"])
    exact = _exact(
        ops, "src", "operand0", "operand1", numbers=(op.get("operand0"), op.get("operand1"))
    )
    table = INT_ALU if exact else ALU
    cast = (lambda x: _limit(ops, x)) if exact else (lambda x: np.asarray(x, F32))
    f0, r0 = table[op.op0.data], op.reverse0 is not None
    s0 = _scalar_operand(op, "operand0", ops, exact)
    second: Callable[[np.ndarray], np.ndarray] | None = None
    if op.op1 is not None:
        f1, r1 = table[op.op1.data], op.reverse1 is not None
        s1 = _scalar_operand(op, "operand1", ops, exact)
        second = lambda x: cast(f1(s1(), x) if r1 else f1(x, s1()))  # noqa: E731

    def run():
        with np.errstate(all="ignore"):
            x = _limit(ops, src.read_int(), "src") if exact else src.read()
            x = cast(f0(s0(), x) if r0 else f0(x, s0()))
            if second is not None:
                x = second(x)
            write(x)

    return run


def _tensor_reduce(op: nisa.TensorReduceOp, ops):
    src, write = ops["src"], _writer(ops["dst"])
    free = src.shape[1:]
    axes = len(free) if op.axes is None else op.axes.data  # the verifier's 1 <= axes
    keep = math.prod(free[: len(free) - axes])
    kind = op.op.data
    negate = op.negate is not None
    if src.integer:

        def exact():
            x = _limit(ops, src.read_int(), "src").reshape(src.p, keep, -1)
            r = {"add": np.sum, "max": np.max, "min": np.min}[kind](x, axis=2)
            write(_limit(ops, -r if negate else r))

        return exact

    def run():
        x = src.read().reshape(src.p, keep, -1)
        if kind == "add":
            r = x.sum(axis=2, dtype=F32)
        elif kind == "max":
            r = x.max(axis=2)
        else:
            r = x.min(axis=2)
        write(-r if negate else r)

    return run


def _bit_copy(src, dst):
    """A same-dtype copy moves bits (NaN payloads too); None when the copy must convert."""
    if src.dtype != dst.dtype or isinstance(dst.elt, FloatTF32Type):
        return None
    values, written, shape = dst.values, dst.written, dst.shape

    def bits():
        src.check()
        values[...] = src.values.reshape(shape)
        written[...] = True

    return bits


def _tensor_copy(op, ops):
    src, dst = ops["src"], ops["dst"]
    if (bits := _bit_copy(src, dst)) is not None:
        return bits
    write = _writer(dst)
    if src.integer:
        return lambda: write(_limit(ops, src.read_int(), "src"))
    return lambda: write(src.read())


def _memset(op: nisa.MemsetOp, ops):
    dst = ops["dst"]
    v = op.value.value.data
    if dst.integer:
        if not float(v).is_integer() and not is_bool(dst.elt):
            raise Fault("dst", f"value {v} is not a whole number for {type_name(dst.elt)}")
        value = _to_integer(np.full(dst.shape, v, np.float64), dst.elt, "dst")
    else:
        value = round_to(np.full(dst.shape, v, np.float64), dst.elt)
    values, written = dst.values, dst.written

    def run():
        values[...] = value
        written[...] = True

    return run


def _affine(op, shape) -> np.ndarray:
    """base + channel * p + step * f over a [P, ...] tile (f = flat free index)."""
    p = shape[0]
    n = math.prod(shape[1:])
    base, ch, step = op.get("base") or 0, op.get("channel") or 0, op.get("step")
    step = 1 if step is None and isinstance(op, nisa.IotaOp) else (step or 0)
    return (
        base
        + ch * np.arange(p, dtype=np.int64)[:, None]
        + step * np.arange(n, dtype=np.int64)[None, :]
    )


def _iota(op: nisa.IotaOp, ops):
    dst = ops["dst"]
    if dst.integer:
        value = _to_integer(_affine(op, dst.shape), dst.elt, "dst").reshape(dst.shape)
    else:
        value = round_to(_affine(op, dst.shape).astype(np.float64), dst.elt).reshape(dst.shape)
    values, written = dst.values, dst.written

    def run():
        values[...] = value
        written[...] = True

    return run


_CMP = {"eq": np.equal, "ne": np.not_equal, "ge": np.greater_equal, "gt": np.greater,
        "le": np.less_equal, "lt": np.less}  # fmt: skip


def _affine_select(op: nisa.AffineSelectOp, ops):
    src, write = ops["src"], _writer(ops["dst"])
    keep = _CMP[op.cmp.data](_affine(op, src.shape), 0)
    fill = F32(op.fill.value.data)
    return lambda: write(np.where(keep, src.read(), fill))


def _select(op: nisa.SelectOp, ops):
    pred, on_true, write = ops["pred"], ops["on_true"], _writer(ops["dst"])
    fo = ops.get("on_false")
    if fo is None:
        on_false = _scalar_operand(op, "on_false", ops)
    elif fo.values.size == fo.p:  # a [P, 1] column, broadcast along the free dim
        on_false = lambda: fo.read().reshape(fo.p, 1)  # noqa: E731
    else:
        on_false = fo.read

    if _exact(ops, "on_true", "on_false", numbers=(op.get("on_false"),)) and ops["dst"].integer:
        if fo is None:
            c = np.int64(_number(op.get("on_false")))
            false_int = lambda: c  # noqa: E731
        elif fo.values.size == fo.p:
            false_int = lambda: fo.read_int().reshape(fo.p, 1)  # noqa: E731
        else:
            false_int = fo.read_int

        def exact():
            pred.check()
            p = pred.values.reshape(pred.p, -1) != 0
            write(np.where(p, on_true.read_int(), false_int()))

        return exact

    def run():
        pred.check()
        p = pred.values.reshape(pred.p, -1) != 0
        write(np.where(p, on_true.read(), on_false()))

    return run


def _bn_stats(op, ops):
    src, write = ops["src"], _writer(ops["dst"])

    def run():
        x = src.read()
        n = x.shape[1]
        mean = x.mean(axis=1, dtype=F32)
        var = np.square(x - mean[:, None]).mean(axis=1, dtype=F32)
        write(np.stack([np.full_like(mean, n), mean, var], axis=1))

    return run


def _bn_aggr(op, ops):
    src, write = ops["src"], _writer(ops["dst"])

    def run():
        x = src.read().reshape(src.p, -1, 3)
        c, m, v = x[:, :, 0], x[:, :, 1], x[:, :, 2]
        with np.errstate(all="ignore"):
            n = c.sum(axis=1, dtype=F32)
            mean = (c * m).sum(axis=1, dtype=F32) / n
            var = (c * (v + np.square(m - mean[:, None]))).sum(axis=1, dtype=F32) / n
        write(np.stack([mean, var], axis=1))

    return run


def _dma_value(src: _Operand):
    """What a converting DMA reads: floats through fp32, integers exactly."""
    if src.integer:
        return lambda x: x.astype(np.int64)
    if isinstance(src.elt, FloatTF32Type):
        return round_tf32
    return lambda x: x.astype(F32)


def _dma_copy(op, ops):
    src, dst = ops["src"], ops["dst"]
    if (bits := _bit_copy(src, dst)) is not None:
        return bits
    rnd, value = _rounder(dst.elt), _dma_value(src)
    values, written, shape = dst.values, dst.written, dst.shape

    def cast():
        src.check()
        values[...] = rnd(value(src.values)).reshape(shape)
        written[...] = True

    return cast


def _dma_gather(op: nisa.DmaGatherOp, ops):
    src, dst, index = ops["src"], ops["dst"], ops["index"]
    rows = src.shape[0]
    same = src.dtype == dst.dtype and not isinstance(dst.elt, FloatTF32Type)
    rnd, value = _rounder(dst.elt), _dma_value(src)
    values, written, shape = dst.values, dst.written, dst.shape

    def run():
        idx = index.read_int()
        bad = (idx < 0) | (idx >= rows)
        if bad.any():
            raise Fault(
                "index",
                f"index {int(idx[bad][0])} is out of range for the {rows} rows of {src.text}",
            )
        if not src.written[idx].all():
            raise Fault("src", f"reads uninitialized HBM rows of {src.text}")
        data = src.values[idx]
        values[...] = (data if same else rnd(value(data))).reshape(shape)
        written[...] = True

    return run


_BUILDERS = {
    nisa.MatmulOp: _matmul,
    nisa.TransposeOp: _transpose,
    nisa.ActivationOp: _activation,
    nisa.TensorTensorOp: _tensor_tensor,
    nisa.TensorScalarOp: _tensor_scalar,
    nisa.TensorReduceOp: _tensor_reduce,
    nisa.TensorCopyOp: _tensor_copy,
    nisa.MemsetOp: _memset,
    nisa.IotaOp: _iota,
    nisa.SelectOp: _select,
    nisa.AffineSelectOp: _affine_select,
    nisa.BnStatsOp: _bn_stats,
    nisa.BnAggrOp: _bn_aggr,
    nisa.DmaCopyOp: _dma_copy,
    nisa.DmaGatherOp: _dma_gather,
}
assert set(_BUILDERS) == set(nisa.INSTRUCTIONS)

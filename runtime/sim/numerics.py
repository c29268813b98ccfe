"""What each instruction computes (docs/nisa.md §3, §5): numpy on whole tiles.

`build(instr, machine)` runs once per instruction when a kernel is decoded and returns a
closure over ready-made numpy views of the instruction's operands, so the engine loop only
calls it. Inputs are read exactly (widened to fp32), arithmetic is fp32, and each result is
rounded once, nearest-even, to its destination dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from xdsl.dialects.builtin import Float32Type, FloatTF32Type

from neuron_opt.dialects import nisa
from neuron_opt.dialects.types import is_float, numpy_dtype, round_tf32, round_to
from neuron_opt.runtime import special
from neuron_opt.runtime.sim.errors import Fault

F32 = np.float32


def _rounder(elt) -> Callable[[np.ndarray], np.ndarray]:
    """fp32 (or float64) values -> the dtype of `elt`, one RNE rounding."""
    if isinstance(elt, Float32Type):
        return lambda x: np.asarray(x, F32) if x.dtype != np.float64 else round_to(x, elt)
    if isinstance(elt, FloatTF32Type):
        return lambda x: round_tf32(x) if x.dtype != np.float64 else round_to(x, elt)
    if is_float(elt):
        dt = numpy_dtype(elt)

        def to_float(x):
            if x.dtype == np.float64:
                return round_to(x, elt)
            with np.errstate(over="ignore"):
                return x.astype(dt)

        return to_float
    return lambda x: round_to(x, elt)


class _Operand:
    """An access's values, written-mask and the dtype facts the closures need."""

    __slots__ = ("name", "values", "written", "elt", "dtype", "text", "memory", "shape", "p")

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

    def read(self) -> np.ndarray:
        """The values as fp32 [P, N]; a read of memory never written is a fault."""
        if not self.written.all():
            raise Fault(self.name, f"reads uninitialized {self.memory} {self.text}")
        x = self.values.reshape(self.p, -1)
        if isinstance(self.elt, FloatTF32Type):
            return round_tf32(x)
        return x.astype(F32, copy=False)

    def check(self) -> None:
        if not self.written.all():
            raise Fault(self.name, f"reads uninitialized {self.memory} {self.text}")


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
    "pow": np.power,
    "eq": lambda a, b: (a == b).astype(F32),
    "ne": lambda a, b: (a != b).astype(F32),
    "ge": lambda a, b: (a >= b).astype(F32),
    "gt": lambda a, b: (a > b).astype(F32),
    "le": lambda a, b: (a <= b).astype(F32),
    "lt": lambda a, b: (a < b).astype(F32),
}


def _special():
    # scipy.special costs ~0.7 s to import: only kernels using erf/gelu/sigmoid/silu pay it.
    import scipy.special

    return scipy.special


def _relu(y):
    return np.where(np.isnan(y), y, np.where(y > 0, y, 0.0))


# ScalarE functions on float64 arguments (then rounded to fp32: "exact in fp32").
ACT: dict[str, Callable] = {
    "copy": lambda y: y,
    "exp": np.exp,
    "log": np.log,
    "tanh": np.tanh,
    "sigmoid": lambda y: _special().expit(y),
    "erf": lambda y: _special().erf(y),
    "gelu": special.gelu,
    "gelu_tanh": special.gelu_tanh,
    "silu": lambda y: y * _special().expit(y),
    "relu": _relu,
    "rsqrt": lambda y: 1.0 / np.sqrt(y),
    "sqrt": np.sqrt,
    "reciprocal": lambda y: 1.0 / y,
    "square": np.square,
    "abs": np.abs,
    "neg": np.negative,
}
assert set(ACT) == set(nisa.ACT_FUNCS)
assert set(ALU) == set(nisa.ALU_OPS)


def build(op: nisa.InstrOp, machine) -> Callable[[], None]:
    ops = {name: _Operand(machine, name, ap) for name, ap in op.accesses()}
    builder = _BUILDERS[type(op)]
    return builder(op, ops)


def _writer(dst: _Operand):
    rnd = _rounder(dst.elt)
    values, written, shape = dst.values, dst.written, dst.shape

    def write(x: np.ndarray) -> None:
        values[...] = rnd(x).reshape(shape)
        written[...] = True

    return write


def _scalar_operand(op: nisa.InstrOp, name: str, ops: dict):
    """A number, or a [P, 1] column read at run time."""
    v = op.get(name)
    if isinstance(v, nisa.AccessAttr):
        col = ops[name]
        return lambda: col.read().reshape(col.p, 1)
    c = F32(v)
    return lambda: c


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
        y = src.read() * scale()
        if bias is not None:
            y = y + bias.read().reshape(bias.p, 1)
        with np.errstate(all="ignore"):
            r = func(y.astype(np.float64)).astype(F32)
        write(r)
        if acc is not None:
            acc(r.sum(axis=1, dtype=F32).reshape(-1, 1))

    return run


def _tensor_tensor(op: nisa.TensorTensorOp, ops):
    lhs, rhs, write = ops["lhs"], ops["rhs"], _writer(ops["dst"])
    f = ALU[op.op.data]

    def run():
        with np.errstate(all="ignore"):
            write(f(lhs.read(), rhs.read()).astype(F32, copy=False))

    return run


def _tensor_scalar(op: nisa.TensorScalarOp, ops):
    src, write = ops["src"], _writer(ops["dst"])
    f0, s0, r0 = ALU[op.op0.data], _scalar_operand(op, "operand0", ops), op.reverse0 is not None
    second = op.op1 is not None
    if second:
        f1, s1, r1 = ALU[op.op1.data], _scalar_operand(op, "operand1", ops), op.reverse1 is not None

    def run():
        with np.errstate(all="ignore"):
            x = src.read()
            x = f0(s0(), x) if r0 else f0(x, s0())
            x = np.asarray(x, F32)
            if second:
                x = f1(s1(), x) if r1 else f1(x, s1())
            write(np.asarray(x, F32))

    return run


def _tensor_reduce(op: nisa.TensorReduceOp, ops):
    src, dst, write = ops["src"], ops["dst"], _writer(ops["dst"])
    free = src.shape[1:]
    axes = op.get("axes") or len(free)
    keep = math.prod(free[: len(free) - axes])
    kind = op.op.data
    negate = op.negate is not None

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
    return lambda: write(src.read())


def _memset(op: nisa.MemsetOp, ops):
    dst = ops["dst"]
    value = round_to(np.full(dst.shape, op.value.value.data, np.float64), dst.elt)
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
    return (base + ch * np.arange(p, dtype=np.int64)[:, None] + step * np.arange(n, dtype=np.int64)[None, :])


def _iota(op: nisa.IotaOp, ops):
    dst = ops["dst"]
    value = round_to(_affine(op, dst.shape).astype(np.float64), dst.elt).reshape(dst.shape)
    if not is_float(dst.elt):
        value = _affine(op, dst.shape).astype(dst.dtype).reshape(dst.shape)
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


def _dma_copy(op, ops):
    src, dst = ops["src"], ops["dst"]
    if (bits := _bit_copy(src, dst)) is not None:
        return bits
    rnd = _rounder(dst.elt)
    values, written, shape = dst.values, dst.written, dst.shape

    def cast():
        src.check()
        x = src.values.astype(F32) if is_float(src.elt) else src.values.astype(np.float64)
        values[...] = rnd(x).reshape(shape)
        written[...] = True

    return cast


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
}
assert set(_BUILDERS) == set(nisa.INSTRUCTIONS)

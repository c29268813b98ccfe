"""The ONNX op table: one handler per (op type, since_version where its meaning changed).

A handler takes a NodeCtx and returns the node's outputs in order, each an SSA value or a known
numpy array (None for an optional output it does not produce). `static` lists the inputs nt
needs at compile time (shapes, axes, pads, bounds): the importer reports them as dynamic when
they are not constants, and the conformance run binds such test inputs as constants.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper
from xdsl.ir import Attribute

from neuron_opt.dialects import nt, shapes
from neuron_opt.dialects.types import is_float, numpy_dtype, type_name
from neuron_opt.importers.onnx_node import NodeCtx, Value
from neuron_opt.importers.onnx_types import (
    initializer_array,
    nt_element,
    onnx_type_name,
    tensor_type,
)

Handler = Callable[[NodeCtx], list]
_TABLE: dict[str, list[tuple[int, Handler, frozenset[int]]]] = {}


def op(*op_types: str, since: int = 1, static: tuple[int, ...] = ()):
    def register(fn: Handler) -> Handler:
        for t in op_types:
            _TABLE.setdefault(t, []).append((since, fn, frozenset(static)))
            _TABLE[t].sort(key=lambda e: e[0])
        return fn

    return register


def lookup(op_type: str, since_version: int) -> tuple[Handler, frozenset[int]] | None:
    """The handler for the op's schema in force (since_version), or None if unsupported."""
    best = None
    for since, fn, static in _TABLE.get(op_type, ()):
        if since <= since_version:
            best = (fn, static)
    return best


def supported_ops() -> list[str]:
    return sorted(_TABLE)


# ---------------------------------------------------------------------------------------------
# Helpers


def _axes(c: NodeCtx, axes, rank: int) -> list[int]:
    try:
        out = [shapes.normalize_axis(int(a), rank) for a in axes]
    except shapes.ShapeError as e:
        c.invalid(str(e))
    if len(set(out)) != len(out):
        c.invalid(f"repeated axis in {list(axes)}")
    return out


def _axis(c: NodeCtx, axis: int, rank: int) -> int:
    return _axes(c, [axis], rank)[0]


def _as_type(c: NodeCtx, i: int, elt: Attribute) -> Value:
    """Input i converted to element type `elt` (constants converted at import)."""
    if c.elt(i) == elt:
        return c.value(i)
    arr = c.known(i)
    if arr is not None:
        return _array_value(c, f"{c.name(i)}.{type_name(elt)}", arr.astype(numpy_dtype(elt)))
    v = c.value(i)
    return c.emit(nt.CastOp, v, result_type=tensor_type(elt, v.type.get_shape()))


def _array_value(c: NodeCtx, name: str, arr: np.ndarray) -> Value:
    """An array computed at import, as an SSA value (inline or a weight by its size)."""
    c.env.set_array(name, arr)
    return c.env.ssa(name, c.unsupported)


def _legacy_broadcast(c: NodeCtx, b: Value, a_rank: int) -> Value:
    """Opset < 7 binary ops: with `broadcast` and `axis`, B's dims align at `axis` of A."""
    if c.since < 7 and c.int_attr("broadcast", 0) and c.has_attr("axis"):
        axis = _axis(c, c.int_attr("axis", 0), a_rank)
        shape = tuple(b.type.get_shape())
        return c.reshape(b, shape + (1,) * (a_rank - axis - len(shape)))
    return b


def _padding(c: NodeCtx, spatial, kernel, strides, dilations) -> list[int]:
    """Explicit begin+end pads, resolving auto_pad the ONNX way."""
    n = len(kernel)
    auto = c.str_attr("auto_pad", "NOTSET")
    if auto == "NOTSET":
        return c.ints_attr("pads", [0] * (2 * n))
    if auto == "VALID":
        return [0] * (2 * n)
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        c.invalid(f"auto_pad {auto!r} is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
    begins, ends = [], []
    for i in range(n):
        out = -(-spatial[i] // strides[i])
        total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - spatial[i])
        small = total // 2
        begin = small if auto == "SAME_UPPER" else total - small
        begins.append(begin)
        ends.append(total - begin)
    return begins + ends


def _unused_extra_outputs(c: NodeCtx, first: int, what: str) -> None:
    """Optional outputs from `first` on are training or index outputs nt does not produce."""
    for k, name in enumerate(c.node.output):
        if k >= first and name and name in c.env.used:
            c.unsupported(f"output {k} ('{name}', {what}) is not supported")


# ---------------------------------------------------------------------------------------------
# Elementwise


def _binary(cls):
    def handler(c: NodeCtx):
        a, b = c.value(0), c.value(1)
        return [c.emit(cls, a, _legacy_broadcast(c, b, a.type.get_num_dims()))]

    return handler


for _name, _cls in [
    ("Add", nt.AddOp), ("Sub", nt.SubOp), ("Mul", nt.MulOp), ("Div", nt.DivOp),
    ("And", nt.AndOp), ("Or", nt.OrOp), ("Xor", nt.XorOp),
]:  # fmt: skip
    op(_name)(_binary(_cls))


def _compare(predicate: str):
    def handler(c: NodeCtx):
        a, b = c.value(0), c.value(1)
        return [
            c.emit(nt.CmpOp, a, _legacy_broadcast(c, b, a.type.get_num_dims()), predicate=predicate)
        ]

    return handler


for _name, _pred in [
    ("Equal", "eq"), ("Less", "lt"), ("LessOrEqual", "le"), ("Greater", "gt"),
    ("GreaterOrEqual", "ge"),
]:  # fmt: skip
    op(_name)(_compare(_pred))


@op("IsNaN", since=9)
def _is_nan(c: NodeCtx):
    # NaN is the one value unequal to itself (IEEE `ne` is unordered-or-unequal).
    x = c.value(0)
    return [c.emit(nt.CmpOp, x, x, predicate="ne")]


def _unary(cls):
    return lambda c: [c.emit(cls, c.value(0))]


for _name, _cls in [
    ("Neg", nt.NegOp), ("Abs", nt.AbsOp), ("Relu", nt.ReluOp), ("Exp", nt.ExpOp),
    ("Log", nt.LogOp), ("Sqrt", nt.SqrtOp), ("Reciprocal", nt.ReciprocalOp),
    ("Tanh", nt.TanhOp), ("Sigmoid", nt.SigmoidOp), ("Erf", nt.ErfOp), ("Not", nt.NotOp),
]:  # fmt: skip
    op(_name)(_unary(_cls))


@op("Pow")
def _pow(c: NodeCtx):
    # Since opset 12 the exponent may have another type (an integer power of a float base).
    base = c.value(0)
    if not is_float(base.type.element_type):
        c.unsupported(f"Pow of {type_name(base.type.element_type)} values (nt.pow takes floats)")
    return [c.emit(nt.PowOp, base, _as_type(c, 1, base.type.element_type))]


@op("Mod")
def _mod(c: NodeCtx):
    fmod = c.int_attr("fmod", 0)
    a, b = c.value(0), c.value(1)
    if fmod or not is_float(a.type.element_type):
        return [c.emit(nt.ModOp, a, b, fmod=bool(fmod))]
    # Float Mod with fmod=0 takes the divisor's sign (numpy's mod): nt.mod is C fmod for
    # floats, so move a nonzero remainder whose sign differs from b's by one b.
    r = c.emit(nt.ModOp, a, b, fmod=True)
    zero = c.scalar_like(0.0, r)
    differs = c.emit(nt.XorOp, c.emit(nt.CmpOp, r, zero, predicate="lt"),
                     c.emit(nt.CmpOp, b, zero, predicate="lt"))  # fmt: skip
    fix = c.emit(nt.AndOp, differs, c.emit(nt.CmpOp, r, zero, predicate="ne"))
    return [c.emit(nt.WhereOp, fix, c.emit(nt.AddOp, r, b), r)]


@op("Gelu", since=20)
def _gelu(c: NodeCtx):
    approx = c.str_attr("approximate", "none")
    return [c.emit(nt.GeluOp, c.value(0), approximate=None if approx == "none" else approx)]


def _clip(c: NodeCtx, lo, hi):
    x = c.value(0)
    props = {}
    if lo is not None:
        props["min"] = float(lo)
    if hi is not None:
        props["max"] = float(hi)
    return [c.emit(nt.ClipOp, x, **props)]


@op("Clip")
def _clip_v1(c: NodeCtx):
    return _clip(c, c.float_attr("min"), c.float_attr("max"))


@op("Clip", since=11, static=(1, 2))
def _clip_v11(c: NodeCtx):
    lo = c.const(1, "minimum").reshape(-1)[0] if c.has(1) else None
    hi = c.const(2, "maximum").reshape(-1)[0] if c.has(2) else None
    return _clip(c, lo, hi)


def _variadic(cls):
    def handler(c: NodeCtx):
        vals = c.values()
        acc = vals[0]
        for v in vals[1:]:
            acc = c.emit(cls, acc, v)
        return [acc]

    return handler


op("Max")(_variadic(nt.MaxOp))
op("Min")(_variadic(nt.MinOp))
op("Sum")(_variadic(nt.AddOp))


@op("Mean")
def _mean(c: NodeCtx):
    total = _variadic(nt.AddOp)(c)[0]
    n = len(c.values())
    return [total if n == 1 else c.emit(nt.DivOp, total, c.scalar_like(n, total))]


@op("Where")
def _where(c: NodeCtx):
    return [c.emit(nt.WhereOp, c.value(0), c.value(1), c.value(2))]


# ---------------------------------------------------------------------------------------------
# Contractions


@op("MatMul")
def _matmul(c: NodeCtx):
    a, b = c.value(0), c.value(1)
    sa, sb = tuple(a.type.get_shape()), tuple(b.type.get_shape())
    if not sa or not sb:
        c.invalid("MatMul operands must have rank >= 1")
    # numpy rules: a 1-D lhs is a row, a 1-D rhs a column, and that dim is dropped after.
    if len(sa) == 1:
        a = c.reshape(a, (1, sa[0]))
    if len(sb) == 1:
        b = c.reshape(b, (sb[0], 1))
    if a.type.get_num_dims() == 2 and b.type.get_num_dims() == 2:
        y = c.emit(nt.MatmulOp, a, b)
    else:
        y = c.emit(nt.BatchMatmulOp, a, b)
    out = list(y.type.get_shape())
    if len(sb) == 1:
        out.pop(-1)
    if len(sa) == 1:
        out.pop(-1 if len(sb) == 1 else -2)
    return [c.reshape(y, out)]


@op("Gemm")
def _gemm(c: NodeCtx):
    a, b = c.value(0), c.value(1)
    alpha, beta = c.float_attr("alpha", 1.0), c.float_attr("beta", 1.0)
    if c.int_attr("transA", 0):
        a = c.emit(nt.TransposeOp, a, perm=[1, 0])
    trans_b = bool(c.int_attr("transB", 0))
    bias = None
    if c.has(2) and beta != 0.0:
        cv = c.known(2)
        if cv is not None and beta != 1.0:
            bias = _array_value(
                c, f"{c.name(2)}.beta", (cv * np.asarray(beta, cv.dtype)).astype(cv.dtype)
            )
        else:
            bias = c.value(2)
            if beta != 1.0:
                bias = c.emit(nt.MulOp, bias, c.scalar_like(beta, bias))
    if alpha == 1.0:
        return [c.emit(nt.LinearOp, a, b, bias, trans_b=trans_b)]
    y = c.emit(nt.LinearOp, a, b, trans_b=trans_b)
    y = c.emit(nt.MulOp, y, c.scalar_like(alpha, y))
    return [y if bias is None else c.emit(nt.AddOp, y, bias)]


@op("Conv")
def _conv(c: NodeCtx):
    x, w = c.value(0), c.value(1)
    xs, ws = tuple(x.type.get_shape()), tuple(w.type.get_shape())
    kernel = list(ws[2:])
    n = len(kernel)
    if c.has_attr("kernel_shape") and c.ints_attr("kernel_shape") != kernel:
        c.invalid(f"kernel_shape {c.ints_attr('kernel_shape')} differs from the weight's {kernel}")
    strides = c.ints_attr("strides", [1] * n)
    dilations = c.ints_attr("dilations", [1] * n)
    pads = _padding(c, xs[2:], kernel, strides, dilations)
    bias = c.value(2) if c.has(2) else None
    return [
        c.emit(nt.ConvOp, x, w, bias, strides=strides, pads=pads, dilations=dilations,
               groups=c.int_attr("group", 1))
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Pooling, normalization, softmax


def _pool(c: NodeCtx, cls, extra: dict):
    x = c.value(0)
    xs = tuple(x.type.get_shape())
    kernel = c.required_ints("kernel_shape")
    n = len(kernel)
    strides = c.ints_attr("strides", [1] * n)
    dilations = c.ints_attr("dilations", [1] * n)
    pads = _padding(c, xs[2:], kernel, strides, dilations)
    ceil = bool(c.int_attr("ceil_mode", 0))
    if ceil:
        kernel = _clip_window(xs[2:], kernel, strides, pads, dilations)
    return c.emit(
        cls, x, kernel=kernel, strides=strides, pads=pads,
        dilations=dilations if any(d != 1 for d in dilations) else None, ceil_mode=ceil, **extra,
    )  # fmt: skip


def _clip_window(spatial, kernel, strides, pads, dilations) -> list[int]:
    """With ceil_mode, a window longer than the padded input (by less than a stride) still
    gives one output: the window over all of it, as onnxruntime computes it for either
    count_include_pad. HF EfficientNet exports pool with kernel = its channel count (1280 on
    a 7x7 map). Shorten such a window to the padded input (dilation 1 only)."""
    n = len(kernel)
    out = list(kernel)
    for i in range(n):
        total = spatial[i] + pads[i] + pads[n + i]
        if dilations[i] == 1 and total < kernel[i] < total + strides[i]:
            out[i] = total
    return out


@op("AveragePool")
def _avg_pool(c: NodeCtx):
    return [_pool(c, nt.AvgPoolOp, {"count_include_pad": bool(c.int_attr("count_include_pad", 0))})]


@op("MaxPool")
def _max_pool(c: NodeCtx):
    # storage_order only matters for the Indices output, which nt does not produce.
    _unused_extra_outputs(c, 1, "the argmax indices")
    return [_pool(c, nt.MaxPoolOp, {})]


def _global_pool(cls):
    def handler(c: NodeCtx):
        x = c.value(0)
        return [c.emit(cls, x, axes=list(range(2, x.type.get_num_dims())), keepdims=True)]

    return handler


op("GlobalAveragePool")(_global_pool(nt.ReduceMeanOp))
op("GlobalMaxPool")(_global_pool(nt.ReduceMaxOp))


def _softmax(cls, legacy: bool):
    def handler(c: NodeCtx):
        x = c.value(0)
        shape = tuple(x.type.get_shape())
        axis = _axis(c, c.int_attr("axis", 1 if legacy else -1), len(shape))
        if not legacy or axis == len(shape) - 1:
            return [c.emit(cls, x, axis=axis)]
        # Before opset 13 the input is coerced to 2-D [prod(dims < axis), prod(dims >= axis)].
        flat = c.reshape(x, (shapes.numel(shape[:axis]), shapes.numel(shape[axis:])))
        return [c.reshape(c.emit(cls, flat, axis=1), shape)]

    return handler


for _name, _cls in [("Softmax", nt.SoftmaxOp), ("LogSoftmax", nt.LogSoftmaxOp)]:
    op(_name)(_softmax(_cls, legacy=True))
    op(_name, since=13)(_softmax(_cls, legacy=False))


@op("LayerNormalization", since=17)
def _layer_norm(c: NodeCtx):
    x = c.value(0)
    elt = x.type.element_type
    rank = x.type.get_num_dims()
    axis = _axis(c, c.int_attr("axis", -1), rank)
    eps = c.float_attr("epsilon", 1e-5)
    scale = _as_type(c, 1, elt)
    bias = _as_type(c, 2, elt) if c.has(2) else None
    outs = [c.emit(nt.LayerNormOp, x, scale, bias, axis=axis, epsilon=eps)]
    if any(n in c.env.used for n in c.node.output[1:3] if n):
        outs += _layer_norm_stats(c, x, axis, eps)
    return outs


def _layer_norm_stats(c: NodeCtx, x: Value, axis: int, eps: float) -> list[Value]:
    """LayerNormalization's optional Mean and InvStdDev outputs (in stash_type, f32 by
    default), computed beside nt.layer_norm, which has no such results."""
    stash = nt_element(c.int_attr("stash_type", 1))
    if stash is None or not is_float(stash):
        c.unsupported(f"stash_type {c.int_attr('stash_type')}")
    if x.type.element_type != stash:
        x = c.emit(nt.CastOp, x, result_type=tensor_type(stash, x.type.get_shape()))
    axes = list(range(axis, x.type.get_num_dims()))
    mean = c.emit(nt.ReduceMeanOp, x, axes=axes, keepdims=True)
    d = c.emit(nt.SubOp, x, mean)
    var = c.emit(nt.ReduceMeanOp, c.emit(nt.MulOp, d, d), axes=axes, keepdims=True)
    inv = c.emit(nt.RsqrtOp, c.emit(nt.AddOp, var, c.scalar_like(eps, var)))
    return [mean, inv]


@op("BatchNormalization")
def _batch_norm(c: NodeCtx):
    if c.int_attr("training_mode", 0):
        c.unsupported("training_mode=1 (nt.batch_norm is inference only)")
    if c.since < 9 and not c.int_attr("spatial", 1):
        c.unsupported("spatial=0 (per-element statistics)")
    _unused_extra_outputs(c, 1, "training statistics")
    x = c.value(0)
    elt = x.type.element_type
    params = [_as_type(c, i, elt) for i in range(1, 5)]
    return [c.emit(nt.BatchNormOp, x, *params, epsilon=c.float_attr("epsilon", 1e-5))]


@op("InstanceNormalization")
def _instance_norm(c: NodeCtx):
    # One nt.group_norm with a group per channel: one op, computed in fp32 and rounded once.
    x = c.value(0)
    if x.type.get_num_dims() < 3:
        c.invalid(f"expected N x C x spatial, found rank {x.type.get_num_dims()}")
    elt = x.type.element_type
    return [
        c.emit(
            nt.GroupNormOp,
            x,
            _as_type(c, 1, elt),
            _as_type(c, 2, elt),
            groups=x.type.get_shape()[1],
            epsilon=c.float_attr("epsilon", 1e-5),
        )
    ]


@op(
    "GroupNormalization", since=21
)  # opset 18's per-group scale is deprecated (the checker refuses it)
def _group_norm(c: NodeCtx):
    x = c.value(0)
    if x.type.get_num_dims() < 3:
        c.invalid(f"expected N x C x spatial, found rank {x.type.get_num_dims()}")
    elt = x.type.element_type
    channels, groups = x.type.get_shape()[1], c.int_attr("num_groups", 0)
    if groups < 1 or channels % groups:
        c.invalid(f"num_groups {groups} does not divide the {channels} channels")
    return [
        c.emit(
            nt.GroupNormOp,
            x,
            _as_type(c, 1, elt),
            _as_type(c, 2, elt),
            groups=groups,
            epsilon=c.float_attr("epsilon", 1e-5),
        )
    ]


def _reduce(cls, axes_input: bool):
    def handler(c: NodeCtx):
        x = c.value(0)
        rank = x.type.get_num_dims()
        if axes_input:
            axes = c.ints(1, "axes") if c.has(1) else []
            noop = c.int_attr("noop_with_empty_axes", 0)
        else:
            axes, noop = c.ints_attr("axes", []), 0
        if not axes:
            if noop:
                return [x]
            axes = list(range(rank))
        axes = sorted(_axes(c, axes, rank))
        return [c.emit(cls, x, axes=axes, keepdims=bool(c.int_attr("keepdims", 1)))]

    return handler


op("ReduceSum")(_reduce(nt.ReduceSumOp, False))
op("ReduceSum", since=13, static=(1,))(_reduce(nt.ReduceSumOp, True))
for _name, _cls in [("ReduceMean", nt.ReduceMeanOp), ("ReduceMax", nt.ReduceMaxOp)]:
    op(_name)(_reduce(_cls, False))
    op(_name, since=18, static=(1,))(_reduce(_cls, True))


# ---------------------------------------------------------------------------------------------
# Shapes and data movement


def _reshape_to(c: NodeCtx, spec: list[int], allowzero: bool):
    x = c.value(0)
    src = tuple(x.type.get_shape())
    out = [src[i] if d == 0 and not allowzero and i < len(src) else d for i, d in enumerate(spec)]
    if out.count(-1) > 1 or any(d < -1 for d in out):
        c.invalid(f"shape {spec} has more than one -1 or a negative dim")
    if -1 in out:
        known = shapes.numel([d for d in out if d != -1])
        total = shapes.numel(src)
        if known == 0 or total % known:
            c.invalid(f"cannot reshape {list(src)} to {spec}")
        out[out.index(-1)] = total // known
    if shapes.numel(out) != shapes.numel(src):
        c.invalid(f"cannot reshape {list(src)} ({shapes.numel(src)} elements) to {out}")
    return [c.reshape(x, out)]


@op("Reshape")
def _reshape_v1(c: NodeCtx):
    return _reshape_to(c, c.ints_attr("shape", []), False)


@op("Reshape", since=5, static=(1,))
def _reshape_v5(c: NodeCtx):
    return _reshape_to(c, c.ints(1, "shape"), bool(c.int_attr("allowzero", 0)))


@op("Flatten")
def _flatten(c: NodeCtx):
    s = c.shape(0)
    axis = c.int_attr("axis", 1)
    axis = axis + len(s) if axis < 0 else axis
    if not 0 <= axis <= len(s):
        c.invalid(f"axis {c.int_attr('axis')} is out of range for rank {len(s)}")
    return [c.reshape(c.value(0), (shapes.numel(s[:axis]), shapes.numel(s[axis:])))]


def _squeeze(c: NodeCtx, axes):
    s = c.shape(0)
    if axes is None or len(axes) == 0:
        drop = {i for i, d in enumerate(s) if d == 1}
    else:
        drop = set(_axes(c, axes, len(s)))
        if any(s[a] != 1 for a in drop):
            c.invalid(f"cannot squeeze axes {sorted(drop)} of shape {list(s)}: not all of size 1")
    return [c.reshape(c.value(0), [d for i, d in enumerate(s) if i not in drop])]


@op("Squeeze")
def _squeeze_v1(c: NodeCtx):
    return _squeeze(c, c.ints_attr("axes"))


@op("Squeeze", since=13, static=(1,))
def _squeeze_v13(c: NodeCtx):
    return _squeeze(c, c.ints(1, "axes") if c.has(1) else None)


def _unsqueeze(c: NodeCtx, axes):
    s = list(c.shape(0))
    rank = len(s) + len(axes)
    for a in sorted(_axes(c, axes, rank)):
        s.insert(a, 1)
    return [c.reshape(c.value(0), s)]


@op("Unsqueeze")
def _unsqueeze_v1(c: NodeCtx):
    return _unsqueeze(c, c.ints_attr("axes", []))


@op("Unsqueeze", since=13, static=(1,))
def _unsqueeze_v13(c: NodeCtx):
    return _unsqueeze(c, c.ints(1, "axes"))


@op("Expand", since=8, static=(1,))
def _expand(c: NodeCtx):
    x = c.value(0)
    try:
        out = shapes.broadcast(x.type.get_shape(), c.ints(1, "shape"))
    except shapes.ShapeError as e:
        c.invalid(str(e))
    if tuple(out) == tuple(x.type.get_shape()):
        return [x]
    return [c.emit(nt.BroadcastOp, x, result_type=tensor_type(x.type.element_type, out))]


@op("Transpose")
def _transpose(c: NodeCtx):
    x = c.value(0)
    perm = c.ints_attr("perm")
    perm = list(range(x.type.get_num_dims()))[::-1] if perm is None else [int(p) for p in perm]
    if perm == list(range(len(perm))):
        return [x]
    return [c.emit(nt.TransposeOp, x, perm=perm)]


def _slice(c: NodeCtx, starts, ends, axes, steps):
    x = c.value(0)
    shape = tuple(x.type.get_shape())
    rank = len(shape)
    axes = list(range(len(starts))) if axes is None else _axes(c, axes, rank)
    steps = [1] * len(starts) if steps is None else steps
    if not len(starts) == len(ends) == len(axes) == len(steps):
        c.invalid("starts, ends, axes and steps must have the same length")
    lo, hi, st = [0] * rank, list(shape), [1] * rank
    for a, s, e, k in zip(axes, starts, ends, steps):
        d = shape[a]
        if k == 0:
            c.invalid("slice step must not be 0")
        s = s + d if s < 0 else s
        e = e + d if e < 0 else e
        if k > 0:
            s = min(max(s, 0), d)
            e = max(min(max(e, 0), d), s)
        else:  # counts down; a limit of -1 means "through index 0"
            s = min(max(s, 0), d - 1) if d else 0
            e = min(min(max(e, -1), d - 1), s) if d else 0
        lo[a], hi[a], st[a] = s, e, k
    if lo == [0] * rank and hi == list(shape) and st == [1] * rank:
        return [x]
    return [c.emit(nt.SliceOp, x, starts=lo, limits=hi, strides=st)]


@op("Slice")
def _slice_v1(c: NodeCtx):
    return _slice(c, c.ints_attr("starts"), c.ints_attr("ends"), c.ints_attr("axes"), None)


@op("Slice", since=10, static=(1, 2, 3, 4))
def _slice_v10(c: NodeCtx):
    return _slice(
        c, c.ints(1, "starts"), c.ints(2, "ends"),
        c.ints(3, "axes") if c.has(3) else None, c.ints(4, "steps") if c.has(4) else None,
    )  # fmt: skip


def _split(c: NodeCtx, sizes):
    x = c.value(0)
    shape = tuple(x.type.get_shape())
    axis = _axis(c, c.int_attr("axis", 0), len(shape))
    d = shape[axis]
    n = len(c.node.output)
    if sizes is None:
        parts = c.int_attr("num_outputs", n) if c.since >= 18 else n
        if c.since >= 18 and c.has_attr("num_outputs"):
            chunk = -(-d // parts)  # the last chunk may be smaller
            sizes = [chunk] * (parts - 1) + [d - chunk * (parts - 1)]
        else:
            if d % parts:
                c.invalid(f"dim {d} does not split evenly into {parts} outputs")
            sizes = [d // parts] * parts
    if sum(sizes) != d or len(sizes) != n or any(s < 0 for s in sizes):
        c.invalid(f"split sizes {list(sizes)} do not cover dim {d} with {n} outputs")
    outs, begin = [], 0
    for size in sizes:
        lo, hi = [0] * len(shape), list(shape)
        lo[axis], hi[axis] = begin, begin + size
        outs.append(c.emit(nt.SliceOp, x, starts=lo, limits=hi, strides=[1] * len(shape)))
        begin += size
    return outs


@op("Split")
def _split_v1(c: NodeCtx):
    sizes = c.ints_attr("split")
    if sizes is None and c.has(1):  # opset 1 also took the sizes as an input
        sizes = c.ints(1, "split")
    return _split(c, None if sizes is None else [int(s) for s in sizes])


@op("Split", since=13, static=(1,))
def _split_v13(c: NodeCtx):
    return _split(c, c.ints(1, "split") if c.has(1) else None)


@op("Concat")
def _concat(c: NodeCtx):
    vals = c.values()
    axis = _axis(c, c.int_attr("axis", 1 if c.since < 4 else 0), vals[0].type.get_num_dims())
    if len(vals) == 1:
        return [vals[0]]
    return [c.emit(nt.ConcatOp, *vals, axis=axis)]


@op("Gather")
def _gather(c: NodeCtx):
    x = c.value(0)
    axis = _axis(c, c.int_attr("axis", 0), x.type.get_num_dims())
    return [c.emit(nt.GatherOp, x, c.value(1), axis=axis)]


@op("GatherElements")
def _gather_elements(c: NodeCtx):
    x = c.value(0)
    axis = _axis(c, c.int_attr("axis", 0), x.type.get_num_dims())
    return [c.emit(nt.GatherElementsOp, x, c.value(1), axis=axis)]


@op("GatherND")
def _gather_nd(c: NodeCtx):
    batch = c.int_attr("batch_dims", 0)
    return [c.emit(nt.GatherNdOp, c.value(0), c.value(1), batch_dims=batch or None)]


def _pad(c: NodeCtx, pads: list[int], value: float, axes):
    x = c.value(0)
    rank = x.type.get_num_dims()
    mode = c.str_attr("mode", "constant")
    if mode not in nt.PAD_MODES:
        c.unsupported(f"pad mode {mode!r} (nt.pad has {', '.join(nt.PAD_MODES)})")
    if axes is not None:
        axes = _axes(c, axes, rank)
        if len(pads) != 2 * len(axes):
            c.invalid(f"expected {2 * len(axes)} pads for axes {axes}, found {len(pads)}")
        full = [0] * (2 * rank)
        for j, a in enumerate(axes):
            full[a], full[rank + a] = pads[j], pads[len(axes) + j]
        pads = full
    if len(pads) != 2 * rank:
        c.invalid(f"expected {2 * rank} pads, found {len(pads)}")
    # Negative pads crop: pad by the positive part, then slice the negative part off.
    grow = [max(p, 0) for p in pads]
    y = x
    if any(grow):
        y = c.emit(nt.PadOp, x, pads=grow, mode=None if mode == "constant" else mode,
                   value=float(value) if value else None)  # fmt: skip
    if any(p < 0 for p in pads):
        shape = y.type.get_shape()
        lo = [-min(pads[i], 0) for i in range(rank)]
        hi = [shape[i] + min(pads[rank + i], 0) for i in range(rank)]
        y = c.emit(nt.SliceOp, y, starts=lo, limits=hi, strides=[1] * rank)
    return [y]


@op("Pad")
def _pad_v1(c: NodeCtx):
    pads = c.required_ints("pads" if c.since >= 2 else "paddings")
    value = c.attr_proto("value").f if c.has_attr("value") else 0.0  # its exact f32
    return _pad(c, pads, value, None)


@op("Pad", since=11, static=(1, 2, 3))
def _pad_v11(c: NodeCtx):
    value = c.const(2, "constant value").reshape(-1)[0] if c.has(2) else 0
    axes = c.ints(3, "axes") if c.has(3) else None
    return _pad(c, c.ints(1, "pads"), float(value), axes)


@op("Identity")
def _identity(c: NodeCtx):
    return [c.value(0)]


@op("Dropout")
def _dropout(c: NodeCtx):
    # Inference: the identity. Training mode (a random mask) is not an inference graph.
    if c.since >= 12 and c.has(2):
        if bool(np.asarray(c.const(2, "training mode")).reshape(-1)[0]):
            c.unsupported("training_mode=true (a random mask)")
    elif c.since < 7 and not c.int_attr("is_test", 0):
        c.unsupported("is_test=0 (a random mask)")
    _unused_extra_outputs(c, 1, "the dropout mask")
    return [c.value(0)]


# ---------------------------------------------------------------------------------------------
# Casts and constants (values computed at import when their inputs are known)


def _cast_to(c: NodeCtx, elt: Attribute | None, what: str):
    if elt is None:
        c.unsupported(f"cast to {what}, which nt lacks")
    x = c.value(0)
    if x.type.element_type == elt:
        return [x]
    return [c.emit(nt.CastOp, x, result_type=tensor_type(elt, x.type.get_shape()))]


@op("Cast")
def _cast(c: NodeCtx):
    a = c.attr_proto("to")
    # Opset 1 spelled the type as a string.
    to = onnx.TensorProto.DataType.Value(a.s.decode().upper()) if a.s else a.i
    return _cast_to(c, nt_element(to), onnx_type_name(to))


@op("CastLike", since=15)
def _cast_like(c: NodeCtx):
    t = c.env.type_of(c.name(1))
    return _cast_to(c, t.element_type if t is not None else None, "the type of input 1")


@op("Constant")
def _constant(c: NodeCtx):
    if c.has_attr("sparse_value"):
        c.unsupported("sparse constants")
    for name, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                        ("value_int", np.int64), ("value_ints", np.int64)):  # fmt: skip
        if c.has_attr(name):
            return [np.asarray(helper.get_attribute_value(c.attr_proto(name)), dtype=dtype)]
    if c.has_attr("value"):
        return [initializer_array(c.attr_proto("value").t, c.where)]
    c.unsupported("string constants")


@op("ConstantOfShape", since=9, static=(0,))
def _constant_of_shape(c: NodeCtx):
    shape = c.ints(0, "shape")
    value = np.zeros((1,), np.float32)
    if c.has_attr("value"):
        value = initializer_array(c.attr_proto("value").t, c.where)
    return [np.full(shape, value.reshape(-1)[0], dtype=value.dtype)]


@op("Shape")
def _shape(c: NodeCtx):
    s = np.asarray(c.shape(0), dtype=np.int64)
    if c.since >= 15:
        r = len(s)
        start, end = c.int_attr("start", 0), c.int_attr("end", r)
        start = min(max(start + r if start < 0 else start, 0), r)
        end = min(max(end + r if end < 0 else end, 0), r)
        s = s[start:end]
    return [s]


@op("Size")
def _size(c: NodeCtx):
    return [np.asarray(shapes.numel(c.shape(0)), dtype=np.int64)]


@op("Range", since=11, static=(0, 1, 2))
def _range(c: NodeCtx):
    start, limit, delta = (c.const(i, w) for i, w in enumerate(("start", "limit", "delta")))
    n = max(math.ceil((float(limit) - float(start)) / float(delta)), 0)
    return [(start + np.arange(n).astype(start.dtype) * delta).astype(start.dtype)]

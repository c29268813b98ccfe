"""Every op of the nt dialect, with every element type it accepts, lowered to nisa and run on
the simulator against the reference interpreter.

The ops and their element types come from the dialect itself (the registered operations and
each op's ELEMENTS rule), so an op added to nt without a representative case here fails
`test_every_op_has_a_case`; the cases only say how to build a small instance of each op.
Outputs compare as docs/design.md "Comparisons and tolerances" says: integers and bools
exactly; floats with inf and NaN in the same places and the finite elements within 1e-5 rel L2
for f32, else within a share of the type's own error (the interpreter in that type against
the same case in f32)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from testlib import FLOATS, main_module, rel_l2, sim_bound
from xdsl.dialects.builtin import TensorType, f8E4M3, f32, i1, i8, i16, i32, i64
from xdsl.ir import Block

from neuron_opt.dialects import nt
from neuron_opt.dialects.parse import verify_module
from neuron_opt.dialects.types import (
    AUTO_CAST_TYPES,
    is_bool,
    is_float,
    numpy_dtype,
    round_to,
    type_name,
)
from neuron_opt.lowering.lower_to_nisa import lower_module
from neuron_opt.runtime.reference import Reference
from neuron_opt.runtime.sim import simulate

INTS = (i8, i16, i32, i64)
ACCEPTS = {"float": FLOATS, "numeric": FLOATS + INTS, "bool": (i1,), "any": FLOATS + INTS + (i1,)}
OPTION = {t: name for name, t in AUTO_CAST_TYPES.items()}  # a type's --auto-cast-type


def accepted_types(cls) -> tuple:
    """The data element types the op's verifier accepts (contractions take floats)."""
    return ACCEPTS[cls.ELEMENTS]


class Case:
    """A function under construction: its inputs (with data) and the values it returns."""

    def __init__(self, rng):
        self.rng = rng
        self.block = Block()
        self.inputs: list[np.ndarray] = []
        self.weights: dict[str, np.ndarray] = {}

    def arg(self, shape, elt, low=None, high=None):
        self.inputs.append(_data(self.rng, shape, elt, low, high))
        return self.block.insert_arg(TensorType(elt, shape), len(self.block.args))

    def add(self, op):
        self.block.add_op(op)
        return op.results[0]

    def const(self, array, elt):
        return self.add(
            nt.ConstantOp.from_array(np.asarray(array), TensorType(elt, np.shape(array)))
        )


def _data(rng, shape, elt, low=None, high=None) -> np.ndarray:
    n = int(np.prod(shape, dtype=np.int64))
    if is_bool(elt):
        return rng.integers(0, 2, size=n).astype(np.bool_).reshape(shape)
    if not is_float(elt):
        return (
            rng.integers(-7 if low is None else low, 8 if high is None else high, size=n)
            .astype(numpy_dtype(elt))
            .reshape(shape)
        )
    a = rng.standard_normal(n) * 2.0
    if low is not None:
        a = np.abs(a) + low
    return round_to(a, elt).reshape(shape)


def _binary(cls, **props):
    def build(c: Case, t):
        nonzero = {"low": 1, "high": 8} if cls in (nt.DivOp, nt.ModOp) else {}
        a = c.arg((3, 4), t)
        b = c.arg((4,), t, **({"low": 0.5} if is_float(t) and nonzero else nonzero))
        return [
            c.add(cls.make(a, b, **props)),
            c.add(cls.make(b, a if not nonzero else b, **props)),
        ]

    return build


def _unary(cls, low=None, **props):
    def build(c: Case, t):
        return [c.add(cls.make(c.arg((5, 6), t, low=low), **props))]

    return build


def _reduce(cls):
    def build(c: Case, t):
        x = c.arg((3, 4, 5), t)
        return [
            c.add(cls.make(x, axes=[2])),
            c.add(cls.make(x, axes=[0, 2], keepdims=True)),
            c.add(cls.make(x)),
        ]

    return build


def _contraction(c: Case, t, cls, a_shape, b_shape, **props):
    a, b = c.arg(a_shape, t), c.arg(b_shape, t)
    rest = [c.arg((b_shape[0],), t)] if props.pop("bias", False) else []
    types = [v.type for v in (a, b, *rest)]
    return c.add(cls.make(a, b, *rest, result_type=cls.infer_type(types, props), **props))


def _where(c: Case, t):
    cond = c.arg((3, 4), i1)
    return [
        c.add(nt.WhereOp.make(cond, c.arg((3, 4), t), c.arg((4,), t))),
        c.add(nt.WhereOp.make(c.arg((3, 1), i1), c.arg((1, 4), t), c.arg((3, 4), t))),
    ]


def _cmp(c: Case, t):
    a, b = c.arg((3, 4), t), c.arg((3, 4), t)
    return [c.add(nt.CmpOp.make(a, b, predicate=p)) for p in nt.CMP_PREDICATES]


def _cast(c: Case, t):
    """t -> f32 and f32 -> t (f32 itself: to i64 and i1); from bool, to every other kind."""
    x = c.arg((4, 5), t)
    outs = [c.add(nt.CastOp.make(x, result_type=TensorType(f32 if t != f32 else i64, (4, 5))))]
    y = c.arg((4, 5), f32 if t != f32 else i32)
    outs.append(c.add(nt.CastOp.make(y, result_type=TensorType(t if t != f32 else f32, (4, 5)))))
    if t == f8E4M3:
        outs.append(c.add(nt.CastOp.make(y, result_type=TensorType(t, (4, 5)), saturate=True)))
    if t == f32:
        outs.append(c.add(nt.CastOp.make(x, result_type=TensorType(i1, (4, 5)))))
    return outs


def _scaled_cast(c: Case, t):
    """Per tensor on an input; on f32, scaled fp8 end to end: a weight scaled per output
    channel as it loads, a constant folded, and the contractions' unscale (per channel and
    per tensor) on their PSUM eviction."""
    outs = [c.add(nt.ScaledCastOp.get(c.arg((4, 5), t), [0.25]))]
    if t != f32:
        return outs
    c.weights["w"] = _data(c.rng, (6, 7), f32).astype(np.float32)
    x8 = c.add(nt.ScaledCastOp.get(c.arg((5, 6), t), [8.0]))
    w8 = c.add(
        nt.ScaledCastOp.get(
            c.add(nt.WeightOp.get("w", TensorType(f32, (6, 7)))), [2.0, 4.0] * 3 + [1.0], 1
        )
    )
    k8 = c.add(nt.ScaledCastOp.get(c.const(_data(c.rng, (7, 6), f32), f32), [16.0] * 7, 0))
    outs.append(
        c.add(
            nt.MatmulOp.make(
                x8,
                w8,
                acc=f32,
                unscale=nt.scale_array([1 / 16, 1 / 32] * 3 + [1 / 8]),
                result_type=TensorType(f32, (5, 7)),
            )
        )
    )
    outs.append(
        c.add(
            nt.LinearOp.make(
                x8,
                k8,
                c.arg((7,), f32),
                trans_b=True,
                acc=f32,
                unscale=nt.scale_array([1 / 128]),
                result_type=TensorType(f32, (5, 7)),
            )
        )
    )
    return outs


def _gathers(c: Case, t, cls):
    data = c.arg((4, 5, 3), t)
    if cls is nt.GatherOp:
        i2 = c.const(np.array([[3, -1], [0, 2]], np.int64), i64)
        i0 = c.const(np.array(-2, np.int64), i64)  # one index: a rank-0 result along axis 1
        return [
            c.add(cls.make(data, i2, axis=0)),
            c.add(cls.make(data, i0, axis=1)),
            c.add(cls.make(data, c.const(np.array([2, 0, 4], np.int32), i32), axis=-2)),
        ]
    if cls is nt.GatherElementsOp:
        idx = c.const(np.array([[[1], [-1]], [[0], [4]]], np.int64).repeat(2, axis=2), i64)
        return [
            c.add(cls.make(data, idx, axis=1)),
            c.add(cls.make(data, c.const(np.array([[[2, 0, -3]]], np.int64), i64), axis=0)),
        ]
    idx = c.const(np.array([[1, -1], [3, 0], [0, 2]], np.int64), i64)
    bidx = c.const(np.array([[[2], [0]], [[4], [1]], [[0], [0]], [[1], [3]]], np.int64), i64)
    return [c.add(cls.make(data, idx)), c.add(cls.make(data, bidx, batch_dims=1))]


CASES = {
    "nt.matmul": lambda c, t: [_contraction(c, t, nt.MatmulOp, (5, 6), (6, 7))],
    "nt.batch_matmul": lambda c, t: [_contraction(c, t, nt.BatchMatmulOp, (2, 5, 6), (6, 3))],
    "nt.linear": lambda c, t: [
        _contraction(c, t, nt.LinearOp, (5, 6), (7, 6), trans_b=True, bias=True)
    ],
    "nt.conv": lambda c, t: [
        _contraction(
            c,
            t,
            nt.ConvOp,
            (1, 3, 6, 6),
            (4, 3, 3, 3),
            strides=[1, 1],
            pads=[1, 1, 1, 1],
            dilations=[1, 1],
            groups=1,
            bias=True,
        )
    ],
    "nt.add": _binary(nt.AddOp),
    "nt.sub": _binary(nt.SubOp),
    "nt.mul": _binary(nt.MulOp),
    "nt.div": _binary(nt.DivOp),
    "nt.max": _binary(nt.MaxOp),
    "nt.min": _binary(nt.MinOp),
    "nt.pow": lambda c, t: [c.add(nt.PowOp.make(c.arg((3, 4), t, low=0.25), c.arg((4,), t)))],
    "nt.mod": lambda c, t: (
        _binary(nt.ModOp, fmod=True)(c, t)
        if is_float(t)
        else _binary(nt.ModOp)(c, t) + _binary(nt.ModOp, fmod=True)(c, t)
    ),
    "nt.cmp": _cmp,
    "nt.and": _binary(nt.AndOp),
    "nt.or": _binary(nt.OrOp),
    "nt.xor": _binary(nt.XorOp),
    "nt.where": _where,
    "nt.neg": _unary(nt.NegOp),
    "nt.abs": _unary(nt.AbsOp),
    "nt.relu": _unary(nt.ReluOp),
    "nt.exp": _unary(nt.ExpOp),
    "nt.log": _unary(nt.LogOp, low=0.1),
    "nt.sqrt": _unary(nt.SqrtOp, low=0.1),
    "nt.rsqrt": _unary(nt.RsqrtOp, low=0.1),
    "nt.reciprocal": _unary(nt.ReciprocalOp, low=0.1),
    "nt.tanh": _unary(nt.TanhOp),
    "nt.sigmoid": _unary(nt.SigmoidOp),
    "nt.erf": _unary(nt.ErfOp),
    "nt.silu": _unary(nt.SiluOp),
    "nt.not": _unary(nt.NotOp),
    "nt.gelu": _unary(nt.GeluOp),
    "nt.clip": lambda c, t: [
        c.add(nt.ClipOp.make(c.arg((5, 6), t), min=-1.0, max=2.0)),
        c.add(nt.ClipOp.make(c.arg((5, 6), t), max=0.0)),
    ],
    "nt.reduce_sum": _reduce(nt.ReduceSumOp),
    "nt.reduce_mean": _reduce(nt.ReduceMeanOp),
    "nt.reduce_max": _reduce(nt.ReduceMaxOp),
    "nt.softmax": lambda c, t: [
        c.add(nt.SoftmaxOp.make(c.arg((4, 6), t), axis=-1)),
        c.add(nt.SoftmaxOp.make(c.arg((4, 6), t), axis=0)),
    ],
    "nt.log_softmax": lambda c, t: [c.add(nt.LogSoftmaxOp.make(c.arg((4, 6), t), axis=1))],
    "nt.layer_norm": lambda c, t: [
        c.add(
            nt.LayerNormOp.make(
                c.arg((4, 6), t), c.arg((6,), t), c.arg((6,), t), axis=-1, epsilon=1e-5
            )
        )
    ],
    "nt.rms_norm": lambda c, t: [
        c.add(nt.RmsNormOp.make(c.arg((4, 6), t), c.arg((6,), t), axis=-1, epsilon=1e-6))
    ],
    "nt.batch_norm": lambda c, t: [
        c.add(
            nt.BatchNormOp.make(
                c.arg((2, 3, 4), t),
                c.arg((3,), t),
                c.arg((3,), t),
                c.arg((3,), t),
                c.arg((3,), t, low=0.5),
                epsilon=1e-5,
            )
        )
    ],
    "nt.group_norm": lambda c, t: [
        c.add(
            nt.GroupNormOp.make(
                c.arg((2, 4, 5), t), c.arg((4,), t), c.arg((4,), t), groups=g, epsilon=1e-5
            )
        )
        for g in (4, 2)
    ],
    "nt.transpose": lambda c, t: [c.add(nt.TransposeOp.make(c.arg((2, 3, 4), t), perm=[2, 0, 1]))],
    "nt.reshape": lambda c, t: [
        c.add(nt.ReshapeOp.make(c.arg((2, 3, 4), t), result_type=TensorType(t, (4, 6))))
    ],
    "nt.broadcast": lambda c, t: [
        c.add(nt.BroadcastOp.make(c.arg((3, 1), t), result_type=TensorType(t, (2, 3, 4))))
    ],
    "nt.slice": lambda c, t: [
        c.add(nt.SliceOp.make(c.arg((5, 6), t), starts=[1, 0], limits=[5, 6], strides=[2, 3])),
        c.add(nt.SliceOp.make(c.arg((5, 6), t), starts=[4, 5], limits=[-1, 0], strides=[-1, -2])),
    ],
    "nt.concat": lambda c, t: [c.add(nt.ConcatOp.make(c.arg((2, 3), t), c.arg((2, 2), t), axis=1))],
    "nt.gather": lambda c, t: _gathers(c, t, nt.GatherOp),
    "nt.gather_elements": lambda c, t: _gathers(c, t, nt.GatherElementsOp),
    "nt.gather_nd": lambda c, t: _gathers(c, t, nt.GatherNdOp),
    "nt.pad": lambda c, t: [c.add(nt.PadOp.make(c.arg((3, 4), t), pads=[1, 0, 2, 1], value=1.0))],
    "nt.max_pool": lambda c, t: [
        c.add(
            nt.MaxPoolOp.make(
                c.arg((1, 2, 5, 5), t), kernel=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1]
            )
        )
    ],
    "nt.avg_pool": lambda c, t: [
        c.add(
            nt.AvgPoolOp.make(
                c.arg((1, 2, 5, 5), t),
                kernel=[3, 3],
                strides=[1, 1],
                pads=[1, 1, 1, 1],
                count_include_pad=True,
            )
        )
    ],
    "nt.cast": _cast,
    "nt.scaled_cast": _scaled_cast,
    "nt.constant": lambda c, t: [
        c.const(_data(c.rng, (3, 4), t), t),
        c.add(nt.AddOp.make(c.arg((3, 4), t), c.const(_data(c.rng, (4,), t), t)))
        if not is_bool(t)
        else c.add(nt.AndOp.make(c.arg((3, 4), t), c.const(_data(c.rng, (4,), t), t))),
    ],
    "nt.weight": lambda c, t: _weight(c, t),
}


def _weight(c: Case, t):
    c.weights["w"] = _data(c.rng, (6, 5), t).astype(np.float32 if is_float(t) else numpy_dtype(t))
    return [c.add(nt.WeightOp.get("w", TensorType(t, (6, 5))))]


def _params():
    return [
        pytest.param(cls.name, t, id=f"{cls.name[3:]}-{type_name(t)}")
        for cls in nt.NT.operations
        for t in accepted_types(cls)
    ]


def test_every_op_has_a_case():
    assert sorted(CASES) == sorted(cls.name for cls in nt.NT.operations)


def _module(name: str, t, seed: int):
    c = Case(np.random.default_rng(seed))
    outs = CASES[name](c, t)
    return main_module(c.block, outs, "w.npz" if c.weights else None), c


def _floats_to_f32(a: np.ndarray, t) -> np.ndarray:
    return np.asarray(a, np.float32) if is_float(t) else a


@pytest.mark.parametrize("name,t", _params())
def test_op_lowers_and_matches_the_interpreter(name, t):
    m, c = _module(name, t, 7)
    feeds = {f"arg{i}": a for i, a in enumerate(c.inputs)}
    with tempfile.TemporaryDirectory() as d:
        if c.weights:
            np.savez(Path(d) / "w.npz", **c.weights)
        ref = Reference(m, d).run(feeds)
        kernel = lower_module(m)
        verify_module(kernel)
        sim = simulate(kernel, feeds, d).outputs
        own = {}
        if t in OPTION:  # the same case in f32 on the same values: the type's own error
            m32, _c32 = _module(name, f32, 7) if name != "nt.cast" else (None, None)
            if m32 is not None:
                f32_feeds = {k: _floats_to_f32(a, t) for k, a in feeds.items()}
                try:
                    own = Reference(m32, d).run(f32_feeds)
                except Exception:  # inputs the f32 case types differently: no own error
                    own = {}
    for key, r in ref.items():
        s = sim[key]
        assert s.shape == r.shape and s.dtype == r.dtype, (
            f"{key}: {s.dtype}{s.shape} vs {r.dtype}{r.shape}"
        )
        if r.dtype.kind not in "fV":
            assert np.array_equal(s, r), f"{key}: integers differ\n{s}\n{r}"
            continue
        s64, r64 = np.asarray(s, np.float64), np.asarray(r, np.float64)
        assert np.array_equal(np.isnan(s64), np.isnan(r64)), (
            f"{key}: NaN positions differ\n{s}\n{r}"
        )
        fin = np.isfinite(r64)
        assert np.array_equal(s64[~fin & ~np.isnan(r64)], r64[~fin & ~np.isnan(r64)]), (
            f"{key}: inf differs"
        )
        err = rel_l2(s64[fin], r64[fin])
        if t in OPTION and key in own:
            bound = sim_bound(
                "all", OPTION[t], rel_l2(r64[fin], np.asarray(own[key], np.float64)[fin])
            )
        else:
            bound = sim_bound("none", "bf16", 0.0)
        assert err <= bound, (
            f"{key}: simulator vs interpreter rel L2 {err:.3e} > {bound:.3e}\n{s}\n{r}"
        )


def test_long_int32_reductions_are_exact_beyond_fp32():
    """Rows longer than a reduction chunk, with sums past 2^24 (where VectorE's fp32 would
    round): GpSimd's int32 tree and integer partials give the exact result."""
    rng = np.random.default_rng(3)
    x = rng.integers(-(2**14), 2**14, size=(3, 9001)).astype(np.int32)
    x[:, 0] = 2**14 * 9001 // 2  # well past 2^24 once summed
    c = Case(rng)
    a = c.block.insert_arg(TensorType(i32, x.shape), 0)
    outs = [c.add(nt.ReduceSumOp.make(a, axes=[1])), c.add(nt.ReduceMaxOp.make(a, axes=[1]))]
    m = main_module(c.block, outs)
    feeds = {"arg0": x}
    ref = Reference(m, None).run(feeds)
    sim = simulate(lower_module(m), feeds).outputs
    assert np.array_equal(sim["out0"], x.astype(np.int64).sum(axis=1)) and np.array_equal(
        sim["out0"], ref["out0"]
    )
    assert np.array_equal(sim["out1"], ref["out1"])

"""A hypothesis strategy for random valid `nt` functions, and the inputs to run them on.

Graphs draw ops from every op class (MATMUL, FP32, FOLLOW, MOVE), shapes that broadcast,
float / integer / bool tensors, values used more than once, user casts between every float
type, and inline constants full of special values (±0, subnormals, max finite, ±inf, NaN).
Float arithmetic is f32 mostly; some inputs arrive as f16/bf16 and are cast explicitly.
Every op is built with NtOp.make (result-type inference), so a generated graph verifies by
construction; a draw that the verifier rejects is a generator bug, not a skipped example.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
from hypothesis import strategies as st
from testlib import FLOATS, main_module
from xdsl.dialects.builtin import ModuleOp, TensorType, bf16, f8E4M3, f16, f32, i1, i32, i64, tf32
from xdsl.ir import Block, SSAValue

from neuron_opt.dialects import nt
from neuron_opt.dialects.types import is_bool, is_float, numpy_dtype, round_to

WEIGHTS_FILE = "w.npz"


def special_values(elt) -> np.ndarray:
    """±0, smallest subnormal, smallest normal, ±max finite, ±inf, NaN, in type `elt`."""
    dt = np.float32 if elt in (f32, tf32) else numpy_dtype(elt)
    fi = ml_dtypes.finfo(dt) if dt not in (np.float32, np.float16) else np.finfo(dt)
    sub = fi.smallest_subnormal
    vals = [
        0.0,
        -0.0,
        float(sub),
        -float(sub),
        float(fi.tiny),
        float(fi.max),
        -float(fi.max),
        math.inf,
        -math.inf,
        math.nan,
        1.0,
        -1.5,
    ]
    if elt == tf32:  # tf32 keeps float32's exponent range with 10 mantissa bits
        vals += [float(round_to(np.array([3.4e38], np.float32), tf32)[0])]
    return round_to(np.array(vals, dtype=np.float64), elt)


def random_data(rng: np.random.Generator, shape, elt, specials: float) -> np.ndarray:
    """Random values of `elt`; a share `specials` of float elements are special values."""
    n = int(np.prod(shape, dtype=np.int64))
    if is_bool(elt):
        return rng.integers(0, 2, size=n).astype(np.bool_).reshape(shape)
    if not is_float(elt):
        return rng.integers(-7, 8, size=n).astype(numpy_dtype(elt)).reshape(shape)
    a = rng.standard_normal(n) * rng.choice([0.5, 2.0, 30.0])
    a = round_to(a, elt)
    if specials > 0 and n:
        sv = special_values(elt)
        mask = rng.random(n) < specials
        a[mask] = sv[rng.integers(0, sv.size, size=int(mask.sum()))]
    return a.reshape(shape)


class Graph:
    """A generated function (in a module), its weights, input feeds, and the outputs computed
    from integer/bool values only (every option must give those bit for bit). Not a
    dataclass: hypothesis would print a failing example's op objects field by field."""

    def __init__(
        self,
        module: ModuleOp,
        weights: dict[str, np.ndarray],
        feeds: list[dict[str, np.ndarray]],
        int_outputs: list[str],
    ):
        self.module = module
        self.weights = weights
        self.feeds = feeds
        self.int_outputs = int_outputs

    def text(self) -> str:
        return str(self.module)

    def __repr__(self) -> str:  # what a failing example prints: the IR, not the op objects
        return (
            f"Graph(weights={sorted(self.weights)}, int_outputs={self.int_outputs})\n{self.text()}"
        )


class _Builder:
    def __init__(self, draw, rng: np.random.Generator, lowerable: bool = False):
        self.draw = draw
        self.rng = rng
        self.lowerable = lowerable  # only what lower-to-nisa covers: 2-D ungrouped conv
        self.block: Block | None = None
        self.values: list[SSAValue] = []
        self.pure_int: dict[SSAValue, bool] = {}
        # A bound on |v| of integer values: the simulator computes them in int32 (and reports
        # an overflow the interpreter's int64 would not have), so the lowering fuzz keeps
        # integer arithmetic to values that cannot overflow.
        self.ibound: dict[SSAValue, int] = {}
        self.weights: dict[str, np.ndarray] = {}

    # -- helpers ------------------------------------------------------------------------------

    def pick(self, pred=lambda v: True) -> SSAValue | None:
        cands = [v for v in self.values if pred(v)]
        if not cands:
            return None
        return self.draw(st.sampled_from(cands))

    def add(self, op, pure: bool | None = None) -> SSAValue:
        self.block.add_op(op)
        v = op.results[0]
        if pure is None:
            pure = all(self.pure_int.get(o, False) for o in op.operands) and not is_float(
                v.type.element_type
            )
        self.pure_int[v] = pure and not is_float(v.type.element_type)
        self.ibound[v] = _int_bound(op, self.ibound)
        self.values.append(v)
        return v

    def small(self, v) -> bool:
        """May v take part in integer arithmetic (always, outside the lowering fuzz)?"""
        return (
            not self.lowerable
            or is_float(v.type.element_type)
            or self.ibound.get(v, 8) <= SMALL_INT
        )

    def constant(self, shape, elt) -> SSAValue:
        specials = self.draw(st.sampled_from([0.0, 0.0, 0.3, 1.0])) if is_float(elt) else 0.0
        if is_float(elt) and self.draw(st.booleans()):
            # A splat: prints as one value, parses back as every element.
            sv = special_values(elt)
            data = np.full(shape, sv[self.draw(st.integers(0, sv.size - 1))], dtype=sv.dtype)
        else:
            data = random_data(self.rng, shape, elt, specials)
        t = TensorType(elt, shape)
        return self.add(nt.ConstantOp.from_array(data, t), pure=not is_float(elt))

    def weight(self, shape, elt) -> SSAValue:
        name = f"w{len(self.weights)}"
        # Stored as the importer stores them: float32 (or the integer dtype); the loader rounds.
        store = f32 if is_float(elt) else elt
        self.weights[name] = random_data(self.rng, shape, store, 0.1)
        return self.add(nt.WeightOp.get(name, TensorType(elt, shape)), pure=not is_float(elt))

    def source(self, shape, elt) -> SSAValue:
        """A value of exactly this type: an existing one, a constant or a weight."""
        t = TensorType(elt, shape)
        existing = [v for v in self.values if v.type == t]
        choice = self.draw(st.integers(0, 3 if existing else 2))
        if choice == 3:
            return self.draw(st.sampled_from(existing))
        if choice == 2 and shape:
            return self.weight(shape, elt)
        return self.constant(shape, elt)

    def shape_of(self, v) -> tuple[int, ...]:
        return tuple(v.type.get_shape())

    def bshape(self, shape, grow: bool = True) -> tuple[int, ...]:
        """A shape that broadcasts with `shape`: a suffix, some dims set to 1, maybe (with
        `grow`) a new leading dim."""
        k = self.draw(st.integers(0, len(shape)))
        out = [d if self.draw(st.integers(0, 2)) else 1 for d in shape[len(shape) - k :]]
        if grow and self.draw(st.integers(0, 5)) == 0 and len(shape) < 4:
            out = [self.draw(st.integers(1, 3))] + [1] * (len(shape) - k) + out
        return tuple(out)

    def partner(self, v, small: bool = False) -> SSAValue:
        """A second operand of v's element type whose shape broadcasts with v's (with `small`,
        one fit for integer arithmetic)."""
        elt = v.type.element_type
        s = self.shape_of(v)

        def ok(w):
            if w.type.element_type != elt or (small and not self.small(w)):
                return False
            try:
                from neuron_opt.dialects.shapes import broadcast

                broadcast(s, self.shape_of(w))
                return True
            except ValueError:
                return False

        if self.draw(st.booleans()):
            w = self.pick(ok)
            if w is not None:
                return w
        return self.source(self.bshape(s), elt)

    def contraction(self, cls, *operands, **props):
        """Contractions leave the result type free (acc f32, result f32 or the input type):
        take the inputs' type, as an importer does."""
        vals = [o for o in operands if o is not None]
        types = [v.type for v in vals]
        pv = {
            k: (list(v) if isinstance(v, (list, tuple)) else v)
            for k, v in props.items()
            if v is not None
        }
        rt = cls.infer_type(types, pv)
        return self.add(cls.make(*vals, result_type=rt, **props))

    def float_value(self, min_rank=0, elts=(f32,)) -> SSAValue | None:
        return self.pick(
            lambda v: v.type.element_type in elts and len(v.type.get_shape()) >= min_rank
        )

    # -- inputs -------------------------------------------------------------------------------

    def input_types(self) -> list[TensorType]:
        n = self.draw(st.integers(1, 3))
        types = []
        for _ in range(n):
            rank = self.draw(st.integers(0, 3))
            shape = tuple(self.draw(st.integers(1, 4)) for _ in range(rank))
            elt = self.draw(st.sampled_from([f32] * 6 + [f16, bf16, i32, i1]))
            types.append(TensorType(elt, shape))
        return types

    # -- ops ----------------------------------------------------------------------------------

    def op(self) -> None:
        kind = self.draw(st.sampled_from(LOWERABLE_KINDS if self.lowerable else OP_KINDS))
        getattr(self, "op_" + kind)()

    def op_unary_float(self):
        v = self.float_value(elts=(f32, f32, bf16, f16))
        if v is None:
            return
        name = self.draw(
            st.sampled_from(
                [
                    "exp",
                    "log",
                    "sqrt",
                    "rsqrt",
                    "reciprocal",
                    "tanh",
                    "sigmoid",
                    "erf",
                    "silu",
                    "relu",
                    "gelu",
                    "gelu_tanh",
                ]
            )
        )
        if name.startswith("gelu"):
            self.add(nt.GeluOp.make(v, approximate="tanh" if name == "gelu_tanh" else None))
        else:
            cls = {o.name: o for o in nt.NT_OPS}[f"nt.{name}"]
            self.add(cls.make(v))

    def op_unary_numeric(self):
        v = self.pick(lambda v: not is_bool(v.type.element_type) and self.small(v))
        if v is None:
            return
        which = self.draw(st.sampled_from(["neg", "abs", "clip"]))
        if which == "clip":
            lo = self.draw(st.sampled_from([None, -1.0, 0.0, -0.0, 1.00390625, -1e30]))
            hi = self.draw(st.sampled_from([None, 1.0, 2.5, 0.0, 6.0, 1e30]))
            if not is_float(v.type.element_type):  # integer clip bounds must be whole
                lo = None if lo is None else float(math.floor(lo))
                hi = None if hi is None else float(math.ceil(hi))
            self.add(nt.ClipOp.make(v, min=lo, max=hi))
        else:
            self.add({"neg": nt.NegOp, "abs": nt.AbsOp}[which].make(v))

    def op_binary(self):
        v = self.pick(lambda v: not is_bool(v.type.element_type) and self.small(v))
        if v is None:
            return
        elt = v.type.element_type
        name = self.draw(
            st.sampled_from(
                ["add", "sub", "mul", "max", "min", "div", "mod"]
                + (["pow"] if is_float(elt) else [])
            )
        )
        if name in ("div", "mod") and not is_float(elt):
            # integer division by zero is undefined (the simulator reports it): a divisor
            # constant without zeros
            d = self.rng.integers(1, 8, size=self.bshape(self.shape_of(v))) * self.rng.choice(
                [-1, 1]
            )
            w = self.add(
                nt.ConstantOp.from_array(d.astype(numpy_dtype(elt)), TensorType(elt, d.shape)),
                pure=True,
            )
            a, b = v, w
        else:
            w = self.partner(v, small=True)
            a, b = (v, w) if self.draw(st.booleans()) else (w, v)
        cls = {o.name: o for o in nt.NT_OPS}[f"nt.{name}"]
        fmod = name == "mod" and (is_float(elt) or self.draw(st.booleans()))
        self.add(cls.make(a, b, fmod=True if fmod else None))

    def op_cmp(self):
        v = self.pick()
        if v is None:
            return
        w = self.partner(v)
        self.add(nt.CmpOp.make(v, w, predicate=self.draw(st.sampled_from(nt.CMP_PREDICATES))))

    def boolean(self) -> SSAValue | None:
        """A bool value: an existing one, else a fresh comparison (so logical ops and where
        show up in graphs that have no bool input)."""
        v = self.pick(lambda v: is_bool(v.type.element_type))
        if v is None or self.draw(st.integers(0, 3)) == 0:
            self.op_cmp()
            v = self.values[-1] if self.values and is_bool(self.values[-1].type.element_type) else v
        return v

    def op_logical(self):
        v = self.boolean()
        if v is None:
            return
        if self.draw(st.integers(0, 3)) == 0:
            self.add(nt.NotOp.make(v))
            return
        w = self.partner(v)
        cls = self.draw(st.sampled_from([nt.AndOp, nt.OrOp, nt.XorOp]))
        self.add(cls.make(v, w))

    def op_where(self):
        c = self.boolean()
        v = self.pick(lambda v: not is_bool(v.type.element_type))
        if c is None or v is None:
            return
        from neuron_opt.dialects.shapes import ShapeError, broadcast

        w = self.partner(v)
        try:
            broadcast(self.shape_of(c), self.shape_of(v), self.shape_of(w))
        except ShapeError:
            c = self.source(self.bshape(self.shape_of(v)), i1)
            try:
                broadcast(self.shape_of(c), self.shape_of(v), self.shape_of(w))
            except ShapeError:
                return
        self.add(nt.WhereOp.make(c, v, w))

    def op_cast(self):
        v = self.pick()
        if v is None:
            return
        elt = v.type.element_type
        if is_float(elt):
            to = self.draw(st.sampled_from(list(FLOATS) * 3 + [i32, i1]))
        else:
            to = self.draw(st.sampled_from([f32, f32, bf16, f16, i64 if elt != i64 else i32]))
        sat = self.draw(st.booleans()) if to == f8E4M3 else None
        self.add(nt.CastOp.make(v, result_type=TensorType(to, self.shape_of(v)), saturate=sat))

    def op_cast_chain(self):
        """cast -> MOVE op(s) -> cast: the shapes canonicalize-casts folds (R2 chains, R6
        moves across MOVE ops) and must not fold when the rounding differs."""
        v = self.pick(lambda v: is_float(v.type.element_type))
        if v is None:
            return
        mid = self.draw(st.sampled_from(FLOATS))
        sat = self.draw(st.booleans()) if mid == f8E4M3 else None
        x = self.add(nt.CastOp.make(v, result_type=TensorType(mid, self.shape_of(v)), saturate=sat))
        for _ in range(self.draw(st.integers(0, 2))):
            kind = self.draw(
                st.sampled_from(
                    ["relu", "neg", "abs", "clip", "max", "transpose", "reshape", "pad", "slice"]
                )
            )
            s = self.shape_of(x)
            if kind in ("relu", "neg", "abs"):
                x = self.add({"relu": nt.ReluOp, "neg": nt.NegOp, "abs": nt.AbsOp}[kind].make(x))
            elif kind == "clip":
                x = self.add(
                    nt.ClipOp.make(
                        x,
                        min=self.draw(st.sampled_from([None, -0.0, -1.00390625, -300.0])),
                        max=self.draw(st.sampled_from([None, 0.0, 1.00390625, 300.0, 65520.0])),
                    )
                )
            elif kind == "max":
                x = self.add(
                    self.draw(st.sampled_from([nt.MaxOp, nt.MinOp])).make(
                        x, self.source(self.bshape(s, grow=False), mid)
                    )
                )
            elif kind == "transpose":
                x = self.add(
                    nt.TransposeOp.make(x, perm=list(self.draw(st.permutations(range(len(s))))))
                )
            elif kind == "reshape":
                x = self.add(nt.ReshapeOp.make(x, result_type=TensorType(mid, (int(np.prod(s)),))))
            elif kind == "pad":
                x = self.add(
                    nt.PadOp.make(
                        x,
                        pads=[1] * (2 * len(s)),
                        value=self.draw(st.sampled_from([None, -0.0, 1.00390625, 1e30])),
                    )
                )
            else:
                x = self.add(
                    nt.SliceOp.make(x, starts=[0] * len(s), limits=list(s), strides=[1] * len(s))
                )
        to = self.draw(st.sampled_from(FLOATS))
        sat = self.draw(st.booleans()) if to == f8E4M3 else None
        self.add(nt.CastOp.make(x, result_type=TensorType(to, self.shape_of(x)), saturate=sat))

    def op_matmul(self):
        v = self.float_value(min_rank=1, elts=(f32, f32, bf16))
        if v is None:
            return
        elt = v.type.element_type
        s = self.shape_of(v)
        kind = self.draw(st.sampled_from(["matmul", "batch_matmul", "linear"]))
        if len(s) < 2 or (kind != "batch_matmul" and len(s) != 2):
            v = self.add(
                nt.ReshapeOp.make(
                    v,
                    result_type=TensorType(
                        elt, (1, int(np.prod(s))) if len(s) < 2 else (int(np.prod(s[:-1])), s[-1])
                    ),
                )
            )
            s = self.shape_of(v)
        k, n = s[-1], self.draw(st.integers(1, 4))
        if kind == "linear":
            trans = self.draw(st.booleans())
            w = self.source((n, k) if trans else (k, n), elt)
            bias = None
            if self.draw(st.booleans()):
                bias = self.source(self.draw(st.sampled_from([(n,), (1, n), (s[0], n)])), elt)
            self.contraction(nt.LinearOp, v, w, bias, trans_b=trans or None)
            return
        if kind == "matmul":
            rhs_shape = (k, n)
        else:
            rhs_shape = (*self.bshape(s[:-2]), k, n)
        w = self.source(rhs_shape, elt)
        a, b = (v, w)
        cls = nt.MatmulOp if kind == "matmul" else nt.BatchMatmulOp
        self.contraction(cls, a, b)

    def _as_ncl(self, v, rank: int):
        """v reshaped to N x C x spatial (rank 3, 4 or 5; rank 5 with a depth that divides)."""
        elt = v.type.element_type
        n = int(np.prod(self.shape_of(v)))
        c = self.draw(st.sampled_from([d for d in (1, 2, 3, 4) if n % d == 0]))
        rest = n // c
        if rank == 5:
            depth = self.draw(st.sampled_from([d for d in (1, 2, 3) if rest % d == 0]))
            shape = (1, c, depth, 1, rest // depth)
        else:
            shape = (1, c, rest) if rank == 3 else (1, c, 1, rest)
        if self.shape_of(v) == shape:
            return v
        return self.add(nt.ReshapeOp.make(v, result_type=TensorType(elt, shape)))

    def op_conv(self):
        v = self.float_value(elts=(f32,))
        if v is None:
            return
        x = self._as_ncl(v, 4 if self.lowerable else self.draw(st.sampled_from([3, 4])))
        s = self.shape_of(x)
        c, spatial = s[1], s[2:]
        groups = (
            1 if self.lowerable else self.draw(st.sampled_from([g for g in (1, c) if c % g == 0]))
        )
        o = groups * self.draw(st.integers(1, 2))
        kern = tuple(self.draw(st.integers(1, max(1, d))) for d in spatial)
        pads = [self.draw(st.integers(0, 1)) for _ in range(2 * len(spatial))]
        strides = [self.draw(st.integers(1, 2)) for _ in spatial]
        w = self.source((o, c // groups, *kern), f32)
        bias = self.source((o,), f32) if self.draw(st.booleans()) else None
        self.contraction(
            nt.ConvOp,
            x,
            w,
            bias,
            strides=strides,
            pads=pads,
            dilations=[1] * len(spatial),
            groups=groups,
        )

    def op_pool(self):
        v = self.float_value(elts=(f32, bf16))
        if v is None:
            return
        x = self._as_ncl(v, self.draw(st.sampled_from([3, 4, 5] if self.lowerable else [3, 4])))
        spatial = self.shape_of(x)[2:]
        kern = [self.draw(st.integers(1, max(1, d))) for d in spatial]
        pads = [self.draw(st.integers(0, k - 1)) for k in kern] * 2
        strides = [self.draw(st.integers(1, 2)) for _ in spatial]
        cls = self.draw(st.sampled_from([nt.MaxPoolOp, nt.AvgPoolOp]))
        extra = (
            {"count_include_pad": self.draw(st.booleans()) or None} if cls is nt.AvgPoolOp else {}
        )
        self.add(cls.make(x, kernel=kern, strides=strides, pads=pads, **extra))

    def op_reduce(self):
        v = self.pick(lambda v: not is_bool(v.type.element_type) and self.small(v))
        if v is None:
            return
        s = self.shape_of(v)
        classes = [nt.ReduceSumOp, nt.ReduceMaxOp] + (
            [nt.ReduceMeanOp] if is_float(v.type.element_type) else []
        )
        cls = self.draw(st.sampled_from(classes))
        axes = (
            sorted(set(self.draw(st.lists(st.integers(-len(s), len(s) - 1), max_size=len(s)))))
            if s
            else []
        )
        if len({a % len(s) for a in axes}) != len(axes) if s else False:
            axes = sorted({a % len(s) for a in axes})
        self.add(cls.make(v, axes=axes or None, keepdims=self.draw(st.booleans()) or None))

    def op_softmax(self):
        v = self.float_value(min_rank=1, elts=(f32, f32, bf16))
        if v is None:
            return
        r = len(self.shape_of(v))
        cls = self.draw(st.sampled_from([nt.SoftmaxOp, nt.LogSoftmaxOp]))
        self.add(cls.make(v, axis=self.draw(st.integers(-r, r - 1))))

    def op_norm(self):
        v = self.float_value(min_rank=1, elts=(f32,))
        if v is None:
            return
        s = self.shape_of(v)
        elt = v.type.element_type
        kind = self.draw(st.sampled_from(["layer", "rms", "batch"]))
        eps = self.draw(st.sampled_from([1e-5, 1e-6, 0.0]))
        if kind == "batch":
            if len(s) < 2:
                return
            c = s[1]
            scale, bias, mean = (self.source((c,), elt) for _ in range(3))
            var = self.add(
                nt.ConstantOp.from_array(
                    np.abs(random_data(self.rng, (c,), f32, 0.2)), TensorType(elt, (c,))
                ),
                pure=False,
            )
            self.add(nt.BatchNormOp.make(v, scale, bias, mean, var, epsilon=eps))
            return
        axis = self.draw(st.integers(-len(s), len(s) - 1))
        norm = s[axis % len(s) :]
        scale = self.source(self.bshape(norm, grow=False), elt)
        if kind == "layer":
            bias = (
                self.source(self.bshape(norm, grow=False), elt)
                if self.draw(st.booleans())
                else None
            )
            self.add(nt.LayerNormOp.make(v, scale, bias, axis=axis, epsilon=eps))
        else:
            self.add(nt.RmsNormOp.make(v, scale, axis=axis, epsilon=eps))

    def op_move(self):
        v = self.pick()
        if v is None:
            return
        s = self.shape_of(v)
        elt = v.type.element_type
        kinds = ["transpose", "reshape", "broadcast", "slice", "concat", "pad"]
        kind = self.draw(st.sampled_from([*kinds, "gather", "gather_elements", "gather_nd"]))
        if kind == "transpose":
            perm = self.draw(st.permutations(range(len(s))))
            self.add(nt.TransposeOp.make(v, perm=list(perm)))
        elif kind == "reshape":
            n = int(np.prod(s))
            dims, rest = [], n
            for d in (2, 3, 2):
                if rest % d == 0 and self.draw(st.booleans()):
                    dims.append(d)
                    rest //= d
            shape = tuple(self.draw(st.permutations([*dims, rest])))
            self.add(nt.ReshapeOp.make(v, result_type=TensorType(elt, shape)))
        elif kind == "broadcast":
            shape = tuple(d if d != 1 else self.draw(st.integers(1, 3)) for d in s)
            if self.draw(st.booleans()) and len(shape) < 4:
                shape = (self.draw(st.integers(1, 3)), *shape)
            self.add(nt.BroadcastOp.make(v, result_type=TensorType(elt, shape)))
        elif kind == "slice":
            starts, limits, strides = [], [], []
            for d in s:
                if self.draw(st.integers(0, 3)) == 0 and d > 0:  # a reversed slice
                    st_ = self.draw(st.integers(0, d - 1))
                    starts.append(st_)
                    limits.append(self.draw(st.integers(-1, st_ - 1)) if st_ > 0 else -1)
                    strides.append(-self.draw(st.integers(1, 2)))
                else:
                    a = self.draw(st.integers(0, d - 1))  # never empty: later ops need elements
                    starts.append(a)
                    limits.append(self.draw(st.integers(a + 1, d)))
                    strides.append(self.draw(st.integers(1, 2)))
            self.add(nt.SliceOp.make(v, starts=starts, limits=limits, strides=strides))
        elif kind == "concat":
            if not s:
                return
            axis = self.draw(st.integers(-len(s), len(s) - 1))
            other = list(s)
            other[axis % len(s)] = self.draw(st.integers(1, 3))
            w = v if self.draw(st.booleans()) else self.source(tuple(other), elt)
            self.add(nt.ConcatOp.make(v, w, axis=axis))
        elif kind == "pad":
            mode = self.draw(st.sampled_from(["constant", "edge", "reflect"]))
            if mode == "reflect":
                pads = [self.draw(st.integers(0, max(0, d - 1))) for d in s] * 2
            else:
                pads = [self.draw(st.integers(0, 2)) for _ in range(2 * len(s))]
            value = None
            if mode == "constant" and self.draw(st.booleans()):
                value = self.draw(st.sampled_from([0.0, -0.0, 1.5, -math.inf, 1.00390625]))
                if not is_float(elt):
                    value = float(int(value)) if math.isfinite(value) else 0.0
            self.add(
                nt.PadOp.make(v, pads=pads, mode=mode if mode != "constant" else None, value=value)
            )
        elif kind == "gather":
            if not s:
                return
            axis = self.draw(st.integers(-len(s), len(s) - 1))
            d = s[axis % len(s)]
            ishape = tuple(
                self.draw(st.integers(1, 3)) for _ in range(self.draw(st.integers(0, 2)))
            )
            idx = self.rng.integers(-d, d, size=ishape).astype(np.int64)
            i = self.add(nt.ConstantOp.from_array(idx, TensorType(i64, ishape)), pure=True)
            self.add(nt.GatherOp.make(v, i, axis=axis))
        elif kind == "gather_elements":
            if not s:
                return
            axis = self.draw(st.integers(-len(s), len(s) - 1))
            a = axis % len(s)
            # Off the axis, index dims may be smaller than the data's (ONNX allows it).
            ishape = tuple(
                self.draw(st.integers(1, d)) if j != a else self.draw(st.integers(1, 3))
                for j, d in enumerate(s)
            )
            idx = self.rng.integers(-s[a], s[a], size=ishape).astype(np.int64)
            i = self.add(nt.ConstantOp.from_array(idx, TensorType(i64, ishape)), pure=True)
            self.add(nt.GatherElementsOp.make(v, i, axis=axis))
        else:  # gather_nd
            if not s:
                return
            k = self.draw(st.integers(1, len(s)))
            lead = tuple(self.draw(st.integers(1, 3)) for _ in range(self.draw(st.integers(0, 1))))
            idx = np.stack(
                [self.rng.integers(-s[j], s[j], size=lead) for j in range(k)], axis=-1
            ).astype(np.int64)
            i = self.add(nt.ConstantOp.from_array(idx, TensorType(i64, (*lead, k))), pure=True)
            self.add(nt.GatherNdOp.make(v, i))


# Each entry a builder method; repeats weight the draw. Every op class is reachable.
OP_KINDS = (
    ["unary_float"] * 3
    + ["unary_numeric"] * 2
    + ["binary"] * 4
    + ["cmp", "logical", "where"]
    + ["cast"] * 3
    + ["cast_chain"] * 3
    + ["matmul"] * 4
    + ["conv", "pool", "reduce", "softmax", "norm"]
    + ["move"] * 4
)
# The simulator fuzz draws every kind too (its conv stays 2-D and ungrouped; its pools are 1-D to 3-D).
LOWERABLE_KINDS = OP_KINDS
SMALL_INT = 1 << 15  # integer arithmetic operands: products and sums stay far from 2^31
_BIG_INT = 1 << 31


def _int_bound(op, bound: dict) -> int:
    """A bound on |result| of an op whose result is an integer tensor (8 for fresh data:
    inputs, constants and weights hold -7..7, index constants their small dims)."""
    if is_float(op.results[0].type.element_type):
        return 0
    ins = [bound.get(v, 8) for v in op.operands if not is_float(v.type.element_type)]
    if isinstance(op, (nt.CmpOp, nt.AndOp, nt.OrOp, nt.XorOp, nt.NotOp)):
        return 1
    if isinstance(op, nt.CastOp):
        return _BIG_INT if is_float(op.operands[0].type.element_type) else ins[0]
    if isinstance(op, (nt.AddOp, nt.SubOp)):
        return sum(ins)
    if isinstance(op, nt.MulOp):
        return ins[0] * ins[1]
    if isinstance(op, nt.ReduceSumOp):
        return ins[0] * int(np.prod(op.operands[0].type.get_shape()))
    if isinstance(op, nt.PadOp):
        return max([*ins, int(abs(op.prop("value") or 0))])
    if isinstance(op, (nt.GatherOp, nt.GatherElementsOp, nt.GatherNdOp)):
        return ins[0]
    return max(ins, default=8)


@st.composite
def graphs(draw, max_ops: int = 8, lowerable: bool = False) -> Graph:
    """A random graph; with `lowerable`, only ops and types lower-to-nisa covers (shapes it
    does not tile yet still occur: the simulator fuzz rejects those graphs)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    b = _Builder(draw, rng, lowerable)
    in_types = b.input_types()
    b.block = Block(arg_types=in_types)
    for a in b.block.args:
        b.values.append(a)
        b.pure_int[a] = not is_float(a.type.element_type)
    # Low-precision inputs enter f32 arithmetic through an explicit cast.
    for a in list(b.block.args):
        if a.type.element_type in (f16, bf16) and draw(st.booleans()):
            b.add(nt.CastOp.make(a, result_type=TensorType(f32, a.type.get_shape())))
    for _ in range(draw(st.integers(1, max_ops))):
        b.op()
    last = b.values[-1]
    extra = draw(st.lists(st.sampled_from(b.values), max_size=2))
    outs = [last, *extra]
    module = main_module(
        b.block, outs, WEIGHTS_FILE if b.weights else None
    )  # verified: else a generator bug
    feeds = []
    for specials in (0.0, 0.25):
        feed = {}
        for i, t in enumerate(in_types):
            a = random_data(rng, tuple(t.get_shape()), t.element_type, specials)
            # Float inputs go in as float32 (exact for f16/bf16 values): what a user's .npz holds.
            feed[f"arg{i}"] = a.astype(np.float32) if is_float(t.element_type) else a
        feeds.append(feed)
    int_outputs = [f"out{i}" for i, v in enumerate(outs) if b.pure_int.get(v, False)]
    return Graph(module, b.weights, feeds, int_outputs)

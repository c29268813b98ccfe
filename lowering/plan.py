"""The tiling plan, as attributes on the nt ops (pass `nt-plan-tiles`; `nt-to-nisa` reads
them): `nisa.fused` on an op computed tile by tile inside its consumer, `nisa.resident` on an
op whose result stays in SBUF between groups, `nisa.planned` on the function.

Which nt ops are computed tile by tile inside their consumer (fused) and which write their
result to HBM (roots). A value fuses into its consumer when it has one use, the consumer
is elementwise (or a row-wise op reading whole rows) and the shapes agree, so the producer's
tile is exactly the consumer's tile: elementwise chains, casts, and matmul epilogues then
never round-trip through HBM."""

from __future__ import annotations

from math import prod
from typing import TypeGuard

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import Float8E4M3Type, UnitAttr
from xdsl.ir import Block, Operation, SSAValue

from neuron_opt.dialects import nt
from neuron_opt.dialects.types import is_float, tensor_type_of, type_name
from neuron_opt.lowering.common import PMAX
from neuron_opt.lowering.kernel import DT_BYTES

FUSED, RESIDENT, PLANNED = "nisa.fused", "nisa.resident", "nisa.planned"
TRANSPOSED = "nisa.transposed"
RESIDENT_BYTES = 24 * 1024  # per partition: intermediates this small stay in SBUF

UNARY_ACT = {
    nt.ExpOp: "exp", nt.LogOp: "log", nt.SqrtOp: "sqrt", nt.RsqrtOp: "rsqrt",
    nt.ReciprocalOp: "reciprocal", nt.TanhOp: "tanh", nt.SigmoidOp: "sigmoid", nt.ErfOp: "erf",
    nt.SiluOp: "silu", nt.ReluOp: "relu", nt.AbsOp: "abs",
}  # fmt: skip
BINARY_ALU = {
    nt.AddOp: "add",
    nt.SubOp: "sub",
    nt.MulOp: "mul",
    nt.DivOp: "div",
    nt.MaxOp: "max",
    nt.MinOp: "min",
    nt.PowOp: "pow",
    nt.AndOp: "and",
    nt.OrOp: "or",
    nt.XorOp: "xor",
}
# Binary ops whose ALU op is a property: comparisons (the predicate) and mod (fmod or not).
BINARY = (*tuple(BINARY_ALU), nt.CmpOp, nt.ModOp)
ELEMENTWISE = (
    tuple(UNARY_ACT)
    + BINARY
    + (nt.NegOp, nt.NotOp, nt.GeluOp, nt.ClipOp, nt.CastOp, nt.WhereOp, nt.ScaledCastOp)
)
CONTRACTION = (nt.MatmulOp, nt.BatchMatmulOp, nt.LinearOp)
ROWWISE = (nt.SoftmaxOp, nt.LogSoftmaxOp, nt.LayerNormOp, nt.RmsNormOp)
RowwiseOp = nt.SoftmaxOp | nt.LogSoftmaxOp | nt.LayerNormOp | nt.RmsNormOp
TILEABLE = ELEMENTWISE + CONTRACTION + ROWWISE  # producers that can compute a tile on demand


def shape(v: SSAValue) -> tuple[int, ...]:
    """v's shape; a rank-0 value is lowered as one element of shape (1,) (broadcasting
    treats () and (1,) alike, and its HBM tensor is accessed as one element)."""
    return tuple(tensor_type_of(v).get_shape()) or (1,)


def scaled_weight(op: Operation) -> TypeGuard[nt.ScaledCastOp]:
    """A scaled cast of a weight or constant: done as the weight is loaded into HBM (an fp8
    weight with its scales) or the constant built, never on chip."""
    return isinstance(op, nt.ScaledCastOp) and isinstance(
        op.input.owner, (nt.WeightOp, nt.ConstantOp)
    )


def tileable(op: Operation) -> bool:
    """Computes a tile on demand (softmax only along the last axis: the free dim)."""
    if scaled_weight(op):
        return False
    if isinstance(op, (nt.SoftmaxOp, nt.LogSoftmaxOp)):
        rank = len(shape(op.results[0]))
        return rank > 0 and op.axis.value.data % rank == rank - 1
    return isinstance(op, TILEABLE)


# The most ops one fused group computes: every intermediate tile of a group lives in SBUF until
# the group's tile is done, and the lowering computes a group's tile recursively through its
# fused producers, so a long elementwise chain is cut into groups of this size (a 100k-op chain
# would otherwise exhaust SBUF and the Python stack).
MAX_GROUP_OPS = 32


def plan_fusion(body_ops: list[Operation], returned: set[SSAValue]) -> set[Operation]:
    """The ops whose result is computed inside its (single) consumer."""
    fused: set[Operation] = set()
    size: dict[
        Operation | Block, int
    ] = {}  # ops in the group an op computes (itself and its fused producers)
    for op in body_ops:
        size[op] = 1 + sum(size[v.owner] for v in op.operands if v.owner in fused)
        if not tileable(op) or len(op.results) != 1 or size[op] >= MAX_GROUP_OPS:
            continue
        res = op.results[0]
        if res in returned or sum(1 for _ in res.uses) != 1:
            continue
        user = next(iter(res.uses)).operation
        if isinstance(user, func.ReturnOp):
            continue
        same = shape(res) == shape(user.results[0]) if user.results else False
        if isinstance(user, ELEMENTWISE) and same:
            # a contraction or row-wise op fixes the group's tiling: at most one per group
            if isinstance(op, CONTRACTION + ROWWISE) and _has_fixed(user, fused):
                continue
            fused.add(op)
        elif (
            isinstance(user, CONTRACTION)
            and isinstance(op, (nt.CastOp, nt.ScaledCastOp))
            and res in tuple(user.operands[:2])
            and op.operands[0].owner not in fused
        ):
            # a contraction operand converted as its tiles are loaded (no cast pass over HBM)
            fused.add(op)
        elif (
            isinstance(user, nt.ConvOp)
            and isinstance(op, (nt.CastOp, nt.ScaledCastOp))
            and res in tuple(user.operands[:2])
            and _conv_cast(op, user)
            and op.operands[0].owner not in fused
        ):
            # the conv's DMAs read the cast's input and convert on the way (nisa.dma_copy casts)
            fused.add(op)
        elif (
            isinstance(user, (*ROWWISE, nt.ReduceSumOp, nt.ReduceMeanOp, nt.ReduceMaxOp))
            and tileable(user)
            and user.operands[0] is res
            and isinstance(op, ELEMENTWISE)
        ):
            fused.add(op)
    return fused


def dma_cast(op: nt.CastOp | nt.ScaledCastOp) -> bool:
    """Can a DMA do this cast? dma_copy converts float to float through fp32 with RNE, never
    saturating nor scaling: every float cast but a saturating one to fp8."""
    src, dst = (
        tensor_type_of(op.operands[0]).element_type,
        tensor_type_of(op.results[0]).element_type,
    )
    return (
        isinstance(op, nt.CastOp)
        and is_float(src)
        and is_float(dst)
        and not (op.prop("saturate") and isinstance(dst, Float8E4M3Type))
    )


def _conv_cast(op: nt.CastOp | nt.ScaledCastOp, conv: nt.ConvOp) -> bool:
    """Does the conv's loading do this cast? Every DMA cast; on the input, a saturating one to
    fp8 too (lowering/conv.py clamps the loaded tiles in place: even an im2col tile, which
    repeats values once per tap, measured faster than the cast's own pass through HBM), and a
    scaled one with one scale (the tiles load in fp32 and are scaled into fp8 tiles)."""
    src, dst = (
        tensor_type_of(op.operands[0]).element_type,
        tensor_type_of(op.results[0]).element_type,
    )
    if isinstance(op, nt.ScaledCastOp):
        return op.results[0] is conv.operands[0] and len(op.scale) == 1
    return dma_cast(op) or (op.results[0] is conv.operands[0] and is_float(src) and is_float(dst))


def _has_fixed(user: Operation, fused: set[Operation]) -> bool:
    """Does `user`'s group (its already-fused producers) hold a contraction or row-wise op?"""
    stack = [user]
    while stack:
        o = stack.pop()
        if isinstance(o, CONTRACTION + ROWWISE):
            return True
        for v in o.operands:
            p = v.owner
            if isinstance(p, Operation) and p in fused:
                stack.append(p)
    return False


def members(root: Operation, fused: set[Operation]) -> list[Operation]:
    """The root and the fused producers it computes, producers first."""
    out, stack, seen = [], [root], set()
    while stack:
        o = stack.pop()
        if o in seen:
            continue
        seen.add(o)
        out.append(o)
        for v in o.operands:
            p = v.owner
            if isinstance(p, Operation) and p in fused:
                stack.append(p)
    return out[::-1]


def one_fixed_per_group(roots: list[Operation], fused: set[Operation]) -> None:
    """A group's tiling follows its contraction or row-wise op: keep at most one per group
    (the others become roots of their own groups)."""
    work = list(roots)
    while work:
        root = work.pop()
        fixed = [o for o in members(root, fused) if isinstance(o, CONTRACTION + ROWWISE)]
        for extra in fixed[:-1] if root in fixed else fixed[1:]:
            if extra in fused:
                fused.discard(extra)
                work.append(extra)
        if len(fixed) > 1:
            work.append(root)


def resident_bytes(v: SSAValue) -> int:
    """Bytes per partition of v kept in SBUF as [rows, last dim] tiles of PMAX rows."""
    S = shape(v)
    name = type_name(tensor_type_of(v).element_type)
    if not S or name not in DT_BYTES:
        return 0
    return -(-prod(S[:-1]) // PMAX) * S[-1] * DT_BYTES[name]


def plan_residency(
    ops: list[Operation], fused: set[Operation], returned: set[SSAValue]
) -> set[Operation]:
    """Ops whose result stays in SBUF: computed by a tile group, small, not returned, and read
    only by ops that read tiles (never by DMA-only ops such as reshape or conv). Resident tiles
    hold the [rows, last dim] view, so a group with a row-wise op over another axis (tiled in
    another view) is not resident."""
    readers = (*TILEABLE, nt.ReduceSumOp, nt.ReduceMeanOp, nt.ReduceMaxOp, nt.BatchNormOp)
    out = set()
    for op in ops:
        if op in fused or not tileable(op) or op.results[0] in returned:
            continue
        if any(
            isinstance(m, ROWWISE)
            and m.axis.value.data % len(shape(m.results[0])) != len(shape(m.results[0])) - 1
            for m in members(op, fused)
        ):
            continue
        users = [u.operation for u in op.results[0].uses]
        readable = all(
            isinstance(u, readers) and (tileable(u) or not isinstance(u, TILEABLE)) for u in users
        )
        if users and readable and 0 < resident_bytes(op.results[0]) <= RESIDENT_BYTES:
            out.add(op)
    return out


def residency_last_use(ops: list[Operation], fused: set[Operation]) -> dict[SSAValue, int]:
    """Resident value -> index (in ops) of the root of the last group that reads it."""
    index = {op: i for i, op in enumerate(ops)}
    root = {}
    for op in reversed(ops):  # a fused op's root is its single user's root
        root[op] = op if op not in fused else root.get(next(iter(op.results[0].uses)).operation, op)
    return {
        op.results[0]: max(index[root[u.operation]] for u in op.results[0].uses)
        for op in ops
        if RESIDENT in op.attributes and all(u.operation in root for u in op.results[0].uses)
    }


def annotate(fn: func.FuncOp) -> None:
    """Plan fusion and residency for the function and record them as attributes."""
    body = list(fn.body.block.ops)
    ops, ret = body[:-1], body[-1]
    returned = set(ret.operands)
    for op in ops:
        for a in (FUSED, RESIDENT):
            op.attributes.pop(a, None)
    fused = plan_fusion(ops, returned)
    one_fixed_per_group([o for o in ops if o not in fused], fused)
    for op in fused:
        op.attributes[FUSED] = UnitAttr()
    resident = plan_residency(ops, fused, returned)
    for op in resident:
        op.attributes[RESIDENT] = UnitAttr()
    for op in plan_transposed(resident, fused):
        op.attributes[TRANSPOSED] = UnitAttr()
    fn.attributes[PLANNED] = UnitAttr()


def _mm2d(op: Operation) -> bool:
    """A 2-D matmul or linear (no batch dims)."""
    return isinstance(op, (nt.MatmulOp, nt.LinearOp)) and all(
        len(shape(v)) == 2 for v in op.operands[:2]
    )


def plan_transposed(resident: set[Operation], fused: set[Operation]) -> set[Operation]:
    """Layout propagation: a resident 2-D contraction group whose result only feeds 2-D
    contractions as their left operand is computed transposed, C^T = B^T A^T (stationary B,
    moving A^T): its tiles are then exactly the next contraction's A^T, so no TensorE transpose
    is inserted between them. Its epilogue's other operands must be scalars or a vector along
    the output columns (a per-partition column once transposed)."""
    out = set()
    for root in resident:
        v = root.results[0]
        # Every use the left operand: as a right operand too (x @ x^T) it would be read as stored.
        if len(shape(v)) != 2 or not all(_mm2d(u.operation) and u.index == 0 for u in v.uses):
            continue
        mem = members(root, fused)
        mms = [o for o in mem if isinstance(o, CONTRACTION)]
        if len(mms) != 1 or not _mm2d(mms[0]) or any(isinstance(o, ROWWISE) for o in mem):
            continue
        n = shape(v)[-1]
        ok = True
        for o in mem:
            if o is mms[0]:
                extra = list(o.operands[2:])  # a linear's bias
            elif isinstance(o, ELEMENTWISE):
                extra = [
                    x
                    for x in o.operands
                    if not (isinstance(x.owner, Operation) and x.owner in fused)
                ]
            else:
                ok = False
                break
            for x in extra:
                s = shape(x)
                splat = isinstance(x.owner, nt.ConstantOp) and _is_splat(x.owner)
                if not splat and not (
                    len(s) <= 2 and s[-1:] == (n,) and all(d == 1 for d in s[:-1])
                ):
                    ok = False
        if ok:
            out.add(root)
    return out


def _is_splat(op) -> bool:
    a = op.to_array().reshape(-1)
    return a.size > 0 and bool(np.all(a == a[0]))

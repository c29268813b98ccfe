"""`nt-hoist-casts`: move each narrowing cast above the reshapes, transposes and broadcasts that
feed it, cast(m(x)) -> m(cast(x)), when each moved value has no other use and the chain starts
at an op computed tile by tile (elementwise, contraction, row-wise) whose result it alone reads.

Those ops only rearrange elements, so the cast's result is bit for bit the same. On the
simulator the movement then copies the narrower type, and the cast meets the op that computes
its input, whose tile write does it (a saturating cast to fp8 adds its clamp to that group,
instead of a group of its own that loads, clamps and stores the tensor again). Widening casts
stay where they are: moved up, they would make the copies wider.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from neuron_opt.dialects import nt
from neuron_opt.dialects.types import byte_size, tensor_type_of
from neuron_opt.lowering.plan import tileable

MOVES = (nt.ReshapeOp, nt.TransposeOp, nt.BroadcastOp)


def hoist_casts(fn: func.FuncOp) -> None:
    for c in [op for op in fn.body.walk() if isinstance(op, nt.CastOp)]:
        chain = _chain(c)
        if not chain:
            continue
        top = chain[-1].operands[0]
        if not (tileable(top.owner) and len(list(top.uses)) == 1):
            continue  # nothing above would do the cast: it stays with its consumer
        for m in chain:
            x = m.operands[0]
            dst = c.result.type.element_type
            cast = nt.CastOp.create(
                operands=[x],
                result_types=[TensorType(dst, x.type.get_shape())],
                properties=dict(c.properties),
                attributes=dict(c.attributes),
            )
            move = m.__class__.create(
                operands=[cast.result],
                result_types=[TensorType(dst, m.results[0].type.get_shape())],
                properties=dict(m.properties),
                attributes=dict(m.attributes),
            )
            Rewriter.insert_op([cast, move], InsertPoint.before(m))
            c.result.replace_all_uses_with(move.results[0])
            Rewriter.erase_op(c)
            Rewriter.erase_op(m)
            c = cast


def _chain(c: nt.CastOp) -> list:
    """The movement ops above a narrowing cast, nearest first, each result used once."""
    if byte_size(c.result.type.element_type) > byte_size(tensor_type_of(c.input).element_type):
        return []
    chain, v = [], c.input
    while isinstance(v.owner, MOVES) and len(list(v.uses)) == 1:
        chain.append(v.owner)
        v = v.owner.operands[0]
    return chain


@dataclass(frozen=True)
class NtHoistCastsPass(ModulePass):
    name = "nt-hoist-casts"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for fn in op.body.block.ops:
            if isinstance(fn, func.FuncOp) and fn.body.blocks:
                hoist_casts(fn)

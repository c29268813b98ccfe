"""canonicalize-casts: remove and merge casts without changing one output bit (NaN payloads
aside), by the rules in cast_rules.py and nothing else.

One worklist over the casts of each function, then CSE and dead-cast removal; those two can
enable a weight fold (a weight left with one use), so the three repeat until nothing changes,
which is almost always after one round. The signature is never touched.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import ClassVar, TypeGuard, TypeVar

from xdsl.context import Context
from xdsl.dialects import builtin, func
from xdsl.ir import Block, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from neuron_opt.dialects import nt
from neuron_opt.dialects.types import is_float, tensor_type_of
from neuron_opt.passes import cast_rules as R

OpT = TypeVar("OpT", bound=Operation)


@dataclass(frozen=True)
class CanonicalizeCastsPass(ModulePass):
    name: ClassVar[str] = "canonicalize-casts"

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        for f in op.walk():
            if isinstance(f, func.FuncOp) and f.body.blocks:
                _BlockCanonicalizer(f.body.block).run()


def _movable(op) -> TypeGuard[nt.NtOp]:
    return (
        isinstance(op, nt.NtOp)
        and op.has_trait(nt.MoveClass)
        and not isinstance(op, (nt.CastOp, nt.ConstantOp, nt.WeightOp))
        and len(op.results) == 1
    )


class _BlockCanonicalizer:
    def __init__(self, block: Block):
        self.block = block
        self.orphans: list[Operation] = []  # non-cast ops our folds may leave dead

    def run(self) -> None:
        work = deque(op for op in self.block.ops if isinstance(op, nt.CastOp))
        while work:
            self._fold(work)
            if not (self._cse() | self._remove_dead()):
                break
            # Merging and removing casts can leave a weight or a MOVE op with one use, which
            # enables R4 or R6 for its remaining cast; nothing else can change.
            work = deque(
                op
                for op in self.block.ops
                if isinstance(op, nt.CastOp)
                and (isinstance(op.input.owner, nt.WeightOp) or _movable(op.input.owner))
            )

    # -- R1-R4, R6 ---------------------------------------------------------------------------

    def _fold(self, work: deque) -> None:
        while work:
            c = work.popleft()
            if c.parent is None or not R.float_cast(c):
                continue
            new = self._simplify(c)
            if new is None:
                continue
            users = [u.operation for u in c.result.uses]
            source = c.input
            c.result.replace_all_uses_with(new)
            Rewriter.erase_op(c)
            work.extend(u for u in users if isinstance(u, nt.CastOp))
            # One use fewer of c's input can enable R4 or R6 for the casts left on it.
            work.extend(u.operation for u in source.uses if isinstance(u.operation, nt.CastOp))
            if isinstance(new.owner, nt.CastOp):
                work.append(new.owner)

    def _simplify(self, c: nt.CastOp) -> SSAValue | None:
        """The value that replaces c's result, or None when no rule applies."""
        if R.is_identity(c):
            return c.input
        src = c.input.owner
        if isinstance(src, nt.ConstantOp):
            self.orphans.append(src)
            return self._insert(R.fold_constant(c, src), c).result
        if isinstance(src, nt.WeightOp) and R.weight_folds(c, src):
            return Rewriter.replace_value_with_new_type(src.result, c.result.type)
        if (inner := R.chain_source(c)) is not None:
            return self._cast(inner.input, c.result.type, c)
        return self._move_across(c)

    def _move_across(self, c: nt.CastOp) -> SSAValue | None:
        """R6: cast(m1(...mk(cast(x)))) -> m1(...mk(cast(x))) in the outer cast's type, when the
        two casts fold into one; each m is a single-use MOVE op with one float operand."""
        elt = c.result.type.element_type
        chain: list[tuple[nt.NtOp, int]] = []
        v = c.input
        while True:
            m = v.owner
            if not _movable(m) or m.result.uses.get_length() != 1:
                return None
            if not (
                R.attrs_exact_in(m, m.result.type.element_type)
                and R.attrs_exact_in(m, elt, R.effective_saturate(c))
            ):
                return None
            floats = [
                i for i, o in enumerate(m.operands) if is_float(tensor_type_of(o).element_type)
            ]
            if len(floats) != 1:
                return None
            chain.append((m, floats[0]))
            v = m.operands[floats[0]]
            if isinstance(v.owner, nt.CastOp):
                break
        inner = v.owner
        if not R.chain_folds(inner, c):
            return None
        x = self._cast(inner.input, R.retyped(inner.result.type, elt), c)
        for m, k in reversed(chain):
            moved = m.clone()
            moved.operands[k] = x
            Rewriter.replace_value_with_new_type(moved.result, R.retyped(m.result.type, elt))
            self._insert(moved, c)
            self.orphans.append(m)  # dead once c is replaced
            x = moved.result
        return x

    def _cast(self, x: SSAValue, t, like: nt.CastOp) -> SSAValue:
        """cast(x) to type t with like's saturate flag (x itself when that is R1)."""
        new = nt.CastOp.make(x, result_type=t, saturate=R.effective_saturate(like))
        if R.is_identity(new):
            new.drop_all_references()  # never inserted: its use of x would keep x's cast alive
            return x
        return self._insert(new, like).result

    def _insert(self, new: OpT, at: Operation) -> OpT:
        new.location = at.location
        if at.results and new.results:
            new.results[0].name_hint = at.results[0].name_hint
        Rewriter.insert_op(new, InsertPoint.before(at))
        return new

    # -- R5 and dead casts -------------------------------------------------------------------

    def _cse(self) -> bool:
        seen: dict[tuple, nt.CastOp] = {}
        changed = False
        for c in [op for op in self.block.ops if isinstance(op, nt.CastOp)]:
            key = (c.input, c.result.type, R.effective_saturate(c))
            if (first := seen.get(key)) is None:
                seen[key] = c
                continue
            c.result.replace_all_uses_with(first.result)
            Rewriter.erase_op(c)
            changed = True
        return changed

    def _remove_dead(self) -> bool:
        """Erase dead casts and the ops our folds orphaned. One backward sweep suffices: an
        op's operands are defined before it, so they are visited after it dies."""
        changed = False
        orphans = {id(o) for o in self.orphans}
        self.orphans.clear()
        op = self.block.last_op
        while op is not None:
            prev = op.prev_op
            dead = isinstance(op, nt.CastOp) or id(op) in orphans
            if dead and not any(r.uses for r in op.results):
                for v in op.operands:
                    if isinstance(v.owner, (nt.ConstantOp, nt.WeightOp)):
                        orphans.add(id(v.owner))  # only if this removal orphans them
                Rewriter.erase_op(op)
                changed = True
            op = prev
        return changed

"""`nt-plan-tiles`: decide, for `func.func @main`, which nt ops are computed tile by tile
inside their consumer (`nisa.fused`) and which results stay in SBUF between groups
(`nisa.resident`); marks the function `nisa.planned`. The IR stays nt (lowering/plan.py)."""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from neuron_opt.lowering.plan import annotate


@dataclass(frozen=True)
class NtPlanTilesPass(ModulePass):
    name = "nt-plan-tiles"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for fn in op.body.block.ops:
            if isinstance(fn, func.FuncOp):
                annotate(fn)

"""`lower-to-nisa`: the lowering pipeline, written once: nt-hoist-casts, nt-plan-tiles, then
nt-to-nisa."""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from neuron_opt.lowering.nt_hoist_casts import NtHoistCastsPass
from neuron_opt.lowering.nt_plan_tiles import NtPlanTilesPass
from neuron_opt.lowering.nt_to_nisa import NtToNisaPass, kernel_module


def lowering_pipeline() -> list[ModulePass]:
    return [NtHoistCastsPass(), NtPlanTilesPass(), NtToNisaPass()]


def lower_module(module: ModuleOp) -> ModuleOp:
    """A new nisa module for an nt module (which the passes before nt-to-nisa rewrite and
    annotate in place: the casts hoisted, the tile plan)."""
    for p in lowering_pipeline()[:-1]:
        p.apply(Context(), module)
    return kernel_module(module)


@dataclass(frozen=True)
class LowerToNisaPass(ModulePass):
    name = "lower-to-nisa"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for p in lowering_pipeline():
            p.apply(ctx, op)

"""The default cast pipeline, written once: auto-cast -> canonicalize-casts -> preserve-io."""

from __future__ import annotations

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from neuron_opt.options import (
    DEFAULT_MODE,
    DEFAULT_TYPE,
    CastTypeOption,
    ModeOption,
    normalize_mode,
)
from neuron_opt.passes.auto_cast import AutoCastPass
from neuron_opt.passes.canonicalize_casts import CanonicalizeCastsPass
from neuron_opt.passes.cast_report import CastReport
from neuron_opt.passes.precision_plan import PrecisionPlan
from neuron_opt.passes.preserve_io import PreserveIOPass


def cast_pipeline(
    mode: ModeOption = DEFAULT_MODE,
    cast_type: CastTypeOption = DEFAULT_TYPE,
    preserve_io: bool = True,
    **plan,
) -> list[ModulePass]:
    """The passes for neuronx-cc's `--auto-cast M --auto-cast-type T [--cast-io]`; `plan` holds
    auto-cast's precision-plan options (plan, op_block_list, node_block_list). `none` without
    a plan runs no pass at all ("leave all data types as defined in the model")."""
    if normalize_mode(mode) == "none" and not any(plan.values()):
        return []
    return [
        AutoCastPass(mode=mode, type=cast_type, **plan),
        CanonicalizeCastsPass(),
        PreserveIOPass(enabled=preserve_io),
    ]


def apply_cast_pipeline(
    module: ModuleOp, passes: list[ModulePass], plan: PrecisionPlan | None = None
) -> CastReport | None:
    """Apply `passes` in place; auto-cast's report (None when it did not run). `plan`, when
    given, is auto-cast's plan in place of its options' file and lists."""
    ctx = Context()
    report = None
    for p in passes:
        if isinstance(p, AutoCastPass):
            report = p.cast(ctx, module, plan)
        else:
            p.apply(ctx, module)
    return report


def run_cast_pipeline(
    module: ModuleOp,
    mode: ModeOption = DEFAULT_MODE,
    cast_type: CastTypeOption = DEFAULT_TYPE,
    preserve_io: bool = True,
) -> ModuleOp:
    """Apply the pipeline in place (and return the module)."""
    apply_cast_pipeline(module, cast_pipeline(mode, cast_type, preserve_io))
    return module

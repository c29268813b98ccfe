"""The default cast pipeline, written once: auto-cast -> canonicalize-casts -> preserve-io."""

from __future__ import annotations

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from neuron_opt.options import DEFAULT_MODE, DEFAULT_TYPE, normalize_mode
from neuron_opt.passes.auto_cast import AutoCastPass
from neuron_opt.passes.canonicalize_casts import CanonicalizeCastsPass
from neuron_opt.passes.preserve_io import PreserveIOPass


def cast_pipeline(
    mode: str = DEFAULT_MODE, cast_type: str = DEFAULT_TYPE, preserve_io: bool = True
) -> list[ModulePass]:
    """The passes for neuronx-cc's `--auto-cast M --auto-cast-type T [--cast-io]`.
    `none` runs no pass at all ("leave all data types as defined in the model")."""
    if normalize_mode(mode) == "none":
        return []
    return [
        AutoCastPass(mode=mode, type=cast_type),
        CanonicalizeCastsPass(),
        PreserveIOPass(enabled=preserve_io),
    ]


def run_cast_pipeline(
    module: ModuleOp, mode: str = DEFAULT_MODE, cast_type: str = DEFAULT_TYPE, preserve_io: bool = True
) -> ModuleOp:
    """Apply the pipeline in place (and return the module)."""
    ctx = Context()
    for p in cast_pipeline(mode, cast_type, preserve_io):
        p.apply(ctx, module)
    return module

"""The registry: every dialect and pass by name, each a lazy factory.

neuron-opt reads it, and so does xdsl-opt through the `xdsl.universe` entry point. Names must
not clash with xDSL's own (e.g. never `canonicalize`): duplicate names across universes are an
error there.
"""

from __future__ import annotations

from collections.abc import Callable

from xdsl.ir import Dialect
from xdsl.passes import ModulePass
from xdsl.universe import Universe


def _nt() -> Dialect:
    from neuron_opt.dialects.nt import NT

    return NT


def _nisa() -> Dialect:
    from neuron_opt.dialects.nisa import NISA

    return NISA


DIALECTS: dict[str, Callable[[], Dialect]] = {
    "nt": _nt,
    "nisa": _nisa,
}


def _auto_cast() -> type[ModulePass]:
    from neuron_opt.passes.auto_cast import AutoCastPass

    return AutoCastPass


def _canonicalize_casts() -> type[ModulePass]:
    from neuron_opt.passes.canonicalize_casts import CanonicalizeCastsPass

    return CanonicalizeCastsPass


def _preserve_io() -> type[ModulePass]:
    from neuron_opt.passes.preserve_io import PreserveIOPass

    return PreserveIOPass


def _example_fold_double_neg() -> type[ModulePass]:
    # docs/pass-developers.md's example, loaded from examples/passes/ of the source checkout this
    # package runs from (an editable install). An installed wheel never executes a file outside
    # itself: there the example is absent (out-of-tree passes register through an
    # `xdsl.universe` entry point, as examples/passes/pyproject.toml shows).
    import importlib.util
    import sys
    import tomllib
    from pathlib import Path

    from neuron_opt.diagnostics import CompileError

    root = Path(__file__).resolve().parents[1]
    try:
        project = tomllib.loads((root / "pyproject.toml").read_text())["project"]["name"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        project = None
    path = root / "examples" / "passes" / "fold_double_neg.py"
    if project != "neuron-opt" or not path.is_file():
        raise CompileError(
            "pass example-fold-double-neg exists in a neuron-opt source checkout "
            "only (install examples/passes to get it elsewhere)",
            "neuron-opt",
        )
    spec = importlib.util.spec_from_file_location("neuron_opt_example_fold_double_neg", path)
    if spec is None or spec.loader is None:
        raise CompileError(f"cannot load {path} as a Python module", "neuron-opt")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve string annotations through it
    spec.loader.exec_module(module)
    return module.FoldDoubleNegPass


def _lower_to_nisa() -> type[ModulePass]:
    from neuron_opt.lowering.lower_to_nisa import LowerToNisaPass

    return LowerToNisaPass


def _nt_hoist_casts() -> type[ModulePass]:
    from neuron_opt.lowering.nt_hoist_casts import NtHoistCastsPass

    return NtHoistCastsPass


def _nt_plan_tiles() -> type[ModulePass]:
    from neuron_opt.lowering.nt_plan_tiles import NtPlanTilesPass

    return NtPlanTilesPass


def _nt_to_nisa() -> type[ModulePass]:
    from neuron_opt.lowering.nt_to_nisa import NtToNisaPass

    return NtToNisaPass


PASSES: dict[str, Callable[[], type[ModulePass]]] = {
    "auto-cast": _auto_cast,
    "canonicalize-casts": _canonicalize_casts,
    "preserve-io": _preserve_io,
    "example-fold-double-neg": _example_fold_double_neg,
    "lower-to-nisa": _lower_to_nisa,
    "nt-hoist-casts": _nt_hoist_casts,
    "nt-plan-tiles": _nt_plan_tiles,
    "nt-to-nisa": _nt_to_nisa,
}

NEURON_UNIVERSE = Universe(all_dialects=DIALECTS, all_passes=PASSES)

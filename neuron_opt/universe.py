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


PASSES: dict[str, Callable[[], type[ModulePass]]] = {
    "auto-cast": _auto_cast,
    "canonicalize-casts": _canonicalize_casts,
    "preserve-io": _preserve_io,
}

NEURON_UNIVERSE = Universe(all_dialects=DIALECTS, all_passes=PASSES)

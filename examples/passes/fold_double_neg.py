"""example-fold-double-neg: nt.neg(nt.neg(x)) -> x.

The worked example of docs/pass-developers.md: one rewrite pattern on an nt op, a frozen-dataclass
pass with an option, a Universe for the `xdsl.universe` entry point. Exact: negation only flips
the sign bit, so two of them give x back bit for bit (NaN and -0 included; integers wrap, and
-(-INT_MIN) is INT_MIN again).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from xdsl.context import Context
from xdsl.dialects import builtin
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.universe import Universe

from neuron_opt.dialects import nt
from neuron_opt.dialects.types import is_float


@dataclass(frozen=True)
class FoldDoubleNeg(RewritePattern):
    only_float: bool

    @op_type_rewrite_pattern  # dispatches on the annotation: only nt.neg ops reach here
    def match_and_rewrite(self, op: nt.NegOp, rewriter: PatternRewriter) -> None:
        inner = op.input.owner
        if not isinstance(inner, nt.NegOp):
            return
        if self.only_float and not is_float(op.result.type.element_type):
            return
        rewriter.replace(op, [], [inner.input])  # uses of the outer neg now read x
        if not inner.result.uses:  # the inner neg may still feed someone else
            rewriter.erase(inner)


@dataclass(frozen=True)
class FoldDoubleNegPass(ModulePass):
    """`-p example-fold-double-neg` or `-p 'example-fold-double-neg{only_float=true}'`."""

    name: ClassVar[str] = "example-fold-double-neg"

    only_float: bool = False  # leave integer tensors alone

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        # One walk: the worklist revisits users of what changed, so neg^4 also folds to x;
        # no second whole-module sweep is needed.
        PatternRewriteWalker(
            FoldDoubleNeg(self.only_float), apply_recursively=False
        ).rewrite_module(op)


def _pass() -> type[ModulePass]:
    return FoldDoubleNegPass


# What an out-of-tree package exposes through `[project.entry-points."xdsl.universe"]`
# (see pyproject.toml beside this file).
EXAMPLE_UNIVERSE = Universe(all_passes={FoldDoubleNegPass.name: _pass})

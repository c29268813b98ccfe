"""`nt-to-nisa`: replace the module's `func.func @main` (nt ops, after the cast pipeline) by
one `nisa.kernel @main` for the NeuronCore-v2 simulator (docs/nisa.md is the contract).

Function arguments become HBM `input` tensors and results `output` tensors under their
`nt.name` (else arg0.../out0...), weights `weight` tensors under their .npz key, with the
I/O element types unchanged; the tile plan comes from `nt-plan-tiles` (made here if it has
not run) and the rest from lowering/lowerer.py. An op with no lowering, or that cannot fit on
chip, is a one-line CompileError at the op's location.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.passes import ModulePass

from neuron_opt.diagnostics import CompileError
from neuron_opt.dialects import nt
from neuron_opt.lowering.lowerer import Lowerer


def kernel_module(module: ModuleOp) -> ModuleOp:
    """A new nisa module holding the kernel for an nt module (weights attribute kept)."""
    fns = [op for op in module.body.block.ops if isinstance(op, func.FuncOp)]
    if not fns:
        raise CompileError("nt-to-nisa: the module holds no func.func to lower")
    fn = next((f for f in fns if f.sym_name.data == "main"), fns[0])
    w = module.attributes.get(nt.WEIGHTS_ATTR)
    kernel = Lowerer(fn, w.data if isinstance(w, StringAttr) else None).run()
    if (digest := module.attributes.get(nt.DIGEST_ATTR)) is not None:
        kernel.attributes[nt.DIGEST_ATTR] = digest  # the kernel reads the same weights file
    return kernel


@dataclass(frozen=True)
class NtToNisaPass(ModulePass):
    name = "nt-to-nisa"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        new = kernel_module(op)
        for old in list(op.body.block.ops):
            old.detach()
            old.erase()
        for k in list(new.body.block.ops):
            k.detach()
            op.body.block.add_op(k)

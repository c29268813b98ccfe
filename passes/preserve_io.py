"""preserve-io{enabled=true|false}: the compiled function keeps its framework's I/O types.

enabled (default): a function carrying `nt.io_types` gets that signature back: one cast per
(argument, type) at the top of the body, one per result before the return, each folded with
the casts already there when a rule of cast_rules.py allows it (never a lossy round trip);
then the attribute is dropped. A function without the attribute is left alone.

enabled=false (neuron-opt --cast-io): low precision at the boundary, for the DMA savings
("cast them in the Framework prior to compilation"): the attribute is dropped, the T signature
kept, and an f32 argument whose every use is the same non-saturating cast to T becomes T,
where T is the type auto-cast{mode=matmult} recorded in `nt.cast_type` (never a user's own
cast). Both modes drop `nt.cast_type`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from xdsl.context import Context
from xdsl.dialects import builtin, func
from xdsl.dialects.builtin import FunctionType, TensorType
from xdsl.ir import Block, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from neuron_opt.dialects import nt
from neuron_opt.passes import cast_rules as R


@dataclass(frozen=True)
class PreserveIOPass(ModulePass):
    name: ClassVar[str] = "preserve-io"

    enabled: bool = True

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        for f in op.walk():
            if not isinstance(f, func.FuncOp) or not f.body.blocks:
                continue
            cast_type = f.attributes.pop(nt.CAST_TYPE_ATTR, None)
            if self.enabled:
                _restore(f)
            else:
                f.attributes.pop(nt.IO_TYPES_ATTR, None)
                if cast_type is not None:
                    _lower_arguments(f, cast_type)


def _restore(f: func.FuncOp) -> None:
    io = f.attributes.pop(nt.IO_TYPES_ATTR, None)
    if not isinstance(io, FunctionType):
        return
    block = f.body.block
    at = InsertPoint.at_start(block)
    for arg, want in zip(list(block.args), io.inputs.data):
        if arg.type != want:
            inner_t = arg.type
            new_arg = Rewriter.replace_value_with_new_type(arg, want)
            cast = nt.CastOp.make(new_arg, result_type=inner_t)
            cast.location = f.location
            cast.result.name_hint = new_arg.name_hint
            new_arg.replace_uses_with_if(cast.result, lambda u: u.operation is not cast)
            Rewriter.insert_op(cast, at)
            at = InsertPoint.after(cast)  # keep the casts in argument order
            _fold_users(cast)
    ret = f.get_return_op()
    if ret is not None:
        made: dict[tuple[SSAValue, object], SSAValue] = {}
        for i, (v, want) in enumerate(zip(list(ret.operands), io.outputs.data)):
            if v.type != want:
                key = (v, want)
                if key not in made:
                    made[key] = _result_cast(v, want, ret)
                ret.operands[i] = made[key]
                if isinstance(v.owner, nt.CastOp) and not v.uses:
                    Rewriter.erase_op(v.owner)  # merged into the returned value
    f.update_function_type()


def _result_cast(v: SSAValue, want, ret: func.ReturnOp) -> SSAValue:
    """v cast back to the framework type `want`; when v is itself an exact widening of a value
    of type `want`, that value (R2 with C == A)."""
    src = v.owner
    if isinstance(src, nt.CastOp) and R.exact_widening(src) and src.input.type == want:
        return src.input
    cast = nt.CastOp.make(v, result_type=want)
    cast.location = ret.location
    cast.result.name_hint = v.name_hint
    Rewriter.insert_op(cast, InsertPoint.before(ret))
    return cast.result


def _fold_users(cast: nt.CastOp) -> None:
    """Merge the new boundary cast with casts of it that R2 folds into one."""
    for use in list(cast.result.uses):
        user = use.operation
        if isinstance(user, nt.CastOp) and R.chain_folds(cast, user):
            merged = nt.CastOp.make(
                cast.input, result_type=user.result.type, saturate=R.effective_saturate(user)
            )
            if R.is_identity(merged):
                replacement = cast.input
            else:
                merged.location = user.location
                Rewriter.insert_op(merged, InsertPoint.before(user))
                replacement = merged.result
            user.result.replace_all_uses_with(replacement)
            Rewriter.erase_op(user)
    if not cast.result.uses:
        Rewriter.erase_op(cast)


def _lower_arguments(f: func.FuncOp, cast_type) -> None:
    """Retype f32 arguments whose every use is the same non-saturating cast to `cast_type`."""
    block: Block = f.body.block
    for arg in list(block.args):
        if not (isinstance(arg.type, TensorType) and arg.type.element_type == builtin.f32):
            continue
        users = [u.operation for u in arg.uses]
        casts = [u for u in users if isinstance(u, nt.CastOp)]
        if not users or len(casts) != len(users):
            continue
        targets = {(u.result.type, R.effective_saturate(u)) for u in casts}
        if len(targets) != 1:
            continue
        ((t, sat),) = targets
        if sat or t.element_type != cast_type:
            continue
        new_arg = Rewriter.replace_value_with_new_type(arg, t)
        for u in casts:
            u.result.replace_all_uses_with(new_arg)
            Rewriter.erase_op(u)
    f.update_function_type()

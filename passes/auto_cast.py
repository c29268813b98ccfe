"""auto-cast{mode=none|matmult|all type=bf16|fp16|tf32|fp8_e4m3 report=false}: neuronx-cc's
--auto-cast and --auto-cast-type.

  matmult  each fp32 contraction reads T (cast operands, saturating for fp8), accumulates in
           fp32 (`acc = f32`) and keeps its f32 result; nothing else changes.
  all      every float value becomes T (bf16 for fp8_e4m3, whose fp8 is for contraction inputs
           only): ops read and write T, constants are folded to T with RNE, weights are retyped
           (loaders round them), and float arguments and results are retyped, the original
           function type kept in `nt.io_types` for preserve-io.
  none     no change.
Integer and bool tensors are never touched. One walk over each function; new ops take the
location of the op they serve.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from xdsl.context import Context
from xdsl.dialects import builtin, func
from xdsl.dialects.builtin import FunctionType, TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from neuron_opt.diagnostics import location_of
from neuron_opt.options import DEFAULT_MODE, DEFAULT_TYPE, CastTypeOption, ModeOption, normalize_mode
from neuron_opt.dialects import nt
from neuron_opt.dialects.types import is_float, round_to, type_name
from neuron_opt.passes.policy import POLICY, role_type, saturates


@dataclass
class CastReport:
    """What auto-cast did, for --cast-report (stderr, never the IR)."""

    enabled: bool = False  # per-op lines are formatted only when someone reads them
    lines: list[str] = field(default_factory=list)
    float_ops: int = 0
    converted: int = 0
    casts: int = 0
    saturated: int = 0

    def decide(self, op: Operation, text: str, converted: bool) -> None:
        self.float_ops += 1
        self.converted += converted
        if self.enabled:
            self.lines.append(f"{location_of(op) or '<unknown>'}: {op.name}: {text}")

    def summary(self) -> str:
        return (
            f"auto-cast: {self.converted} of {self.float_ops} float ops converted, "
            f"{self.casts} casts inserted, {self.saturated} constants saturated"
        )


def _has_float(op: Operation) -> bool:
    return any(is_float(getattr(v.type, "element_type", None)) for v in (*op.operands, *op.results))


@dataclass(frozen=True)
class AutoCastPass(ModulePass):
    name: ClassVar[str] = "auto-cast"

    mode: ModeOption = DEFAULT_MODE
    type: CastTypeOption = DEFAULT_TYPE  # the option's name in pipelines: `auto-cast{type=fp16}`
    report: bool = False

    def __post_init__(self):
        # The one place an alias becomes its mode, so the pass prints back as `mode=matmult`.
        object.__setattr__(self, "mode", normalize_mode(self.mode))

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        rep = CastReport(enabled=self.report)
        if self.mode != "none":
            for f in op.walk():
                if isinstance(f, func.FuncOp) and f.body.blocks:
                    _FuncCaster(self.mode, self.type, rep).run(f)
        if self.report:
            for line in rep.lines:
                print(line, file=sys.stderr)
            print(rep.summary(), file=sys.stderr)


class _FuncCaster:
    def __init__(self, mode: str, cast_type: str, report: CastReport):
        self.mode = mode
        self.cast_type = cast_type
        self.report = report
        self.act = role_type("act", cast_type)
        self.mm = role_type("matmul", cast_type)
        # One cast per (value, type): contractions sharing an operand share its cast.
        self.casts: dict[tuple[SSAValue, object], SSAValue] = {}
        self.last_arg_cast: Operation | None = None  # keeps argument casts in argument order

    def run(self, f: func.FuncOp) -> None:
        if self.mode == "all":
            self._retype_signature(f)
        else:
            # preserve-io{enabled=false} lowers arguments to this type only.
            f.attributes[nt.CAST_TYPE_ATTR] = self.mm
        for op in list(f.body.block.ops):
            if isinstance(op, func.ReturnOp) or not _has_float(op):
                continue
            if self.mode == "all" and isinstance(op, (nt.ConstantOp, nt.WeightOp)):
                self._retype_source(op)
                continue
            cls = nt.op_class(op)
            rule = POLICY.get((self.mode, cls)) if cls else None
            if rule is None:
                self.report.decide(op, "kept (not an nt op)", False)
                continue
            if self.mode == "matmult" and rule.inputs != "keep":
                self._cast_contraction(op)
            elif rule.inputs == "keep":
                self.report.decide(op, f"kept ({rule.reason})", False)
            else:
                self._cast_all(op, rule.inputs)
        if self.mode == "all":
            f.update_function_type()

    # -- matmult -----------------------------------------------------------------------------

    def _cast_contraction(self, op: Operation) -> None:
        data = op.operands[:2]
        if not all(v.type.element_type == builtin.f32 for v in data):
            self.report.decide(op, "kept (not an fp32 contraction)", False)
            return
        for i, v in enumerate(data):
            op.operands[i] = self._cast(v, self.mm, op)
        op.properties["acc"] = builtin.f32
        self.report.decide(op, f"cast to {type_name(self.mm)}", True)

    # -- all ---------------------------------------------------------------------------------

    def _retype_signature(self, f: func.FuncOp) -> None:
        ftype = f.function_type
        new_inputs = [self._act_type(t) for t in ftype.inputs.data]
        new_outputs = [self._act_type(t) for t in ftype.outputs.data]
        if new_inputs == list(ftype.inputs.data) and new_outputs == list(ftype.outputs.data):
            return
        if nt.IO_TYPES_ATTR not in f.attributes:
            f.attributes[nt.IO_TYPES_ATTR] = ftype
        for arg, t in zip(list(f.body.block.args), new_inputs):
            if arg.type != t:
                Rewriter.replace_value_with_new_type(arg, t)
        f.function_type = FunctionType.from_lists(new_inputs, new_outputs)

    def _act_type(self, t):
        if isinstance(t, TensorType) and is_float(t.element_type):
            return TensorType(self.act, t.get_shape())
        return t

    def _retype_source(self, op: nt.ConstantOp | nt.WeightOp) -> None:
        t = op.result.type
        if not is_float(t.element_type) or t.element_type == self.act:
            return
        new_t = self._act_type(t)
        if isinstance(op, nt.ConstantOp):
            data = op.to_array()
            rounded = round_to(data, self.act)
            overflow = np.isinf(rounded.astype(np.float32)) & np.isfinite(data.astype(np.float32))
            self.report.saturated += bool(overflow.any())
            op.properties["value"] = nt.DenseAttr.from_array(rounded, new_t)
        Rewriter.replace_value_with_new_type(op.result, new_t)
        self.report.decide(op, f"cast to {type_name(self.act)}", True)

    def _cast_all(self, op: Operation, inputs_role: str) -> None:
        """Operands already carry T (their producers were retyped first); contraction inputs
        additionally go to fp8 under fp8_e4m3. Then the float results become T."""
        in_type = self.mm if inputs_role == "matmul" else self.act
        if (
            isinstance(op, nt.CastOp)
            and op.result.type.element_type == self.mm
            and all(isinstance(u.operation, nt._Contraction) for u in op.result.uses)
        ):
            return  # a contraction's input cast (fp8), made by an earlier run: keep it
        if isinstance(op, nt._Contraction):
            for i, v in enumerate(op.operands[:2]):
                if v.type.element_type != in_type:
                    op.operands[i] = self._cast(v, in_type, op)
            op.properties["acc"] = builtin.f32
        # A user cast between float types becomes T -> T here (canonicalize-casts removes it);
        # an int <-> float cast keeps its integer side.
        for res in op.results:
            if res.type != (t := self._act_type(res.type)):
                Rewriter.replace_value_with_new_type(res, t)
        text = f"cast to {type_name(self.act)}"
        if isinstance(op, nt._Contraction) and in_type != self.act:
            text += f", inputs {type_name(in_type)}"
        self.report.decide(op, text, True)

    # -- shared ------------------------------------------------------------------------------

    def _cast(self, v: SSAValue, elt, user: Operation) -> SSAValue:
        key = (v, elt)
        if key in self.casts:
            return self.casts[key]
        c = nt.CastOp.make(v, result_type=TensorType(elt, v.type.get_shape()), saturate=saturates(elt))
        c.location = user.location
        c.result.name_hint = v.name_hint
        if isinstance(v.owner, Operation):
            at = InsertPoint.after(v.owner)
        elif self.last_arg_cast is not None:
            at = InsertPoint.after(self.last_arg_cast)
        else:
            at = InsertPoint.at_start(v.owner)
        if not isinstance(v.owner, Operation):
            self.last_arg_cast = c
        Rewriter.insert_op(c, at)
        self.casts[key] = c.result
        self.report.casts += 1
        return c.result

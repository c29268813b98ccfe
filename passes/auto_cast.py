"""auto-cast{mode=none|matmult|all type=bf16|fp16|tf32|fp8_e4m3 plan=FILE op_block_list=A,B
node_block_list=a,b report=false}: neuronx-cc's --auto-cast and --auto-cast-type, with a
precision plan (precision_plan.py) deciding the ops its rules match.

  matmult  each fp32 contraction reads T (cast operands, saturating for fp8), accumulates in
           fp32 (`acc = f32`) and keeps its f32 result; nothing else changes.
  all      every fp32 op reads and writes T (bf16 for fp8_e4m3, whose fp8 is for contraction
           inputs only); ops already in another float type in the model stay as they are.
           Constants are folded to T with RNE, weights retyped (loaders round them), float
           arguments retyped, the original function type kept in `nt.io_types` for preserve-io.
  none     no change (a plan's rules still apply).
A plan rule's precision P decides an op as `all` would with type P (fp32: reads and writes
f32; keep: the types of the model), except that a contraction under matmult keeps its f32
result. A fp8_e4m3 rule with amax values (scaled fp8) reads its operands through
`nt.scaled_cast` (x * 2^k, rounded once, saturating) instead of casts, and the contraction's
`unscale` undoes both scales on the fp32 accumulator. Where a value's producer and a user
disagree on its type, a cast sits between them (canonicalize-casts folds what it can). Integer
and bool tensors are never touched.

One walk decides every op, a second rewrites; new ops take the location of the op they serve.
The pass never prints: `cast()` returns a CastReport, which drivers print (--cast-report).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, TypeGuard

import numpy as np
from xdsl.context import Context
from xdsl.dialects import builtin, func
from xdsl.dialects.builtin import TensorType
from xdsl.ir import Attribute, BlockArgument, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from neuron_opt.diagnostics import CompileError, onnx_node_of, op_error
from neuron_opt.dialects import nt
from neuron_opt.dialects.types import is_float, round_to, tensor_type_of, type_name
from neuron_opt.options import (
    DEFAULT_MODE,
    DEFAULT_TYPE,
    CastTypeOption,
    ModeOption,
    normalize_mode,
)
from neuron_opt.passes.cast_report import CastReport
from neuron_opt.passes.policy import POLICY, role_type, saturates
from neuron_opt.passes.precision_plan import PlanRule, PrecisionPlan, build_plan, fp8_scale


@dataclass(frozen=True)
class AutoCastPass(ModulePass):
    name: ClassVar[str] = "auto-cast"

    mode: ModeOption = DEFAULT_MODE
    type: CastTypeOption = DEFAULT_TYPE  # the option's name in pipelines: `auto-cast{type=fp16}`
    plan: str = ""  # a precision plan (TOML)
    op_block_list: tuple[str, ...] = ()  # ONNX op types kept fp32
    node_block_list: tuple[str, ...] = ()  # ONNX node names kept fp32
    report: bool = False  # ask the driver to print the report (stderr)

    def __post_init__(self):
        # The one place an alias becomes its mode, so the pass prints back as `mode=matmult`.
        object.__setattr__(self, "mode", normalize_mode(self.mode))

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        self.cast(ctx, op)

    def cast(
        self, ctx: Context, op: builtin.ModuleOp, plan: PrecisionPlan | None = None
    ) -> CastReport:
        """Run the pass; what it decided, per op, for the driver to print or save. `plan`: a
        plan a program built (the tuner's candidates) in place of the options' file and lists."""
        if plan is None:
            plan = build_plan(self.plan, self.op_block_list, self.node_block_list)
        rep = CastReport(plan.rules)
        if self.mode != "none" or plan.rules:
            for f in op.walk():
                if isinstance(f, func.FuncOp) and f.body.blocks:
                    _FuncCaster(self.mode, self.type, plan, rep).run(f)
        return rep


@dataclass(frozen=True)
class _Target:
    """The element types an op reads and writes after the pass: `data` for a contraction's two
    inputs, `other` for its other float operands (every float operand of other ops), `result`
    for its float results."""

    data: Attribute
    other: Attribute
    result: Attribute


def _is_source(op: Operation) -> TypeGuard[nt.ConstantOp | nt.WeightOp]:
    return isinstance(op, (nt.ConstantOp, nt.WeightOp))


@dataclass(frozen=True)
class _Scales:
    """Scaled fp8 for one contraction: per operand (0, 1) its scale values and axis (None:
    one value for the tensor), from the plan rule's amax values."""

    scales: dict[int, tuple[tuple[float, ...], int | None]]


def weight_channel_axis(op: nt.Contraction) -> int:
    """The dim of the second operand that holds the output channels."""
    rank = len(tensor_type_of(op.operands[1]).get_shape())
    if isinstance(op, nt.ConvOp) or (isinstance(op, nt.LinearOp) and op.prop("trans_b")):
        return 0
    return rank - 1


def _scales_of(op: nt.Contraction, rule: PlanRule) -> _Scales:
    scales: dict[int, tuple[tuple[float, ...], int | None]] = {}
    if rule.input_amax is not None:
        scales[0] = ((fp8_scale(rule.input_amax, rule.margin),), None)
    w = rule.weight_amax
    if isinstance(w, tuple):
        axis = weight_channel_axis(op)
        n = tensor_type_of(op.operands[1]).get_shape()[axis]
        if len(w) != n:
            node = onnx_node_of(op)
            what = f"node {node[0]}" if node else op.name
            raise CompileError(
                f"{rule.label}: weight_amax has {len(w)} values, {what} has {n} output channels",
                rule.where,
            )
        scales[1] = (tuple(fp8_scale(a, rule.margin) for a in w), axis)
    elif w is not None:
        scales[1] = ((fp8_scale(w, rule.margin),), None)
    return _Scales(scales)


def _floats(values: Iterable[SSAValue]) -> list[SSAValue]:
    return [v for v in values if isinstance(v.type, TensorType) and is_float(v.type.element_type)]


def _is_fp32_op(op: Operation) -> bool:
    """What `all` converts: a contraction with f32 inputs, a cast to f32, any other op with an
    f32 operand or result. Ops the model computes in another float type stay."""
    if isinstance(op, nt.Contraction):
        return all(tensor_type_of(v).element_type == builtin.f32 for v in op.operands[:2])
    if isinstance(op, nt.CastOp):
        return op.result.type.element_type == builtin.f32
    return any(
        tensor_type_of(v).element_type == builtin.f32 for v in _floats((*op.operands, *op.results))
    )


def _converts(op: Operation, t: _Target) -> bool:
    """The op computes in another type than the model's: its result, or a contraction's
    inputs (an op only reading casts of its inputs computes as before)."""
    return any(_retyped(op, r, t) for r in _floats(op.results)) or (
        isinstance(op, nt.Contraction)
        and any(tensor_type_of(op.operands[i]).element_type != t.data for i in (0, 1))
    )


def _retyped(op: Operation, res: SSAValue, t: _Target) -> bool:
    """Whether a float result changes type (a user's cast to a low type keeps its result)."""
    if isinstance(op, nt.CastOp) and tensor_type_of(res).element_type != builtin.f32:
        return False
    return tensor_type_of(res).element_type != t.result


class _FuncCaster:
    def __init__(self, mode: str, cast_type: str, plan, report: CastReport):
        self.mode = mode
        self.cast_type = cast_type
        self.plan = plan
        self.report = report
        self.act = role_type("act", cast_type)
        # One cast per (value, type): users sharing an operand share its cast.
        self.casts: dict[
            tuple[SSAValue, Attribute] | tuple[SSAValue, tuple[float, ...], int | None], SSAValue
        ] = {}
        self.last_arg_cast: Operation | None = None  # keeps argument casts in argument order
        self.scaled: dict[Operation, _Scales] = {}  # contractions a rule gives scaled fp8

    def run(self, f: func.FuncOp) -> None:
        ops = [op for op in f.body.block.ops if not isinstance(op, func.ReturnOp)]
        targets: dict[Operation, _Target | None] = {}
        reasons: dict[Operation, str] = {}
        by_rule: set[Operation] = set()
        wanted: dict[Operation, dict[int, Attribute | None]] = {}
        for op in ops:  # decided on the model's own types: nothing is rewritten yet
            # A scaled cast stays as it is: it reads any float and writes fp8 by definition.
            if (
                not _is_source(op)
                and not isinstance(op, nt.ScaledCastOp)
                and _floats((*op.operands, *op.results))
            ):
                rule = self.plan.match(op)
                targets[op], reasons[op] = self._decide(op, rule)
                t = targets[op]
                if (
                    rule is not None
                    and rule.scaled
                    and isinstance(op, nt.Contraction)
                    and t is not None
                    and t.data == role_type("matmul", "fp8_e4m3")
                ):
                    self.scaled[op] = _scales_of(op, rule)
                wanted[op] = self._operand_types(op, targets[op])
                if rule is not None:
                    by_rule.add(op)
        for op, t in targets.items():
            if isinstance(op, nt.CastOp) and t is not None and op not in by_rule:
                # A cast to f32 the policy converts writes what its users read, as sources
                # do: one that feeds ops kept in f32 (a plan's, or an earlier run's) stays.
                targets[op] = _Target(
                    t.data, t.other, self._source_type(op.result, wanted) or builtin.f32
                )
        converts = {op: t is not None and _converts(op, t) for op, t in targets.items()}
        old_type = f.function_type
        if self.mode == "all":
            for arg in f.body.block.args:
                self._retype_source(arg, wanted)
        elif self.mode == "matmult":
            # preserve-io{enabled=false} lowers arguments to this type only.
            f.attributes[nt.CAST_TYPE_ATTR] = role_type("matmul", self.cast_type)
        for op in ops:  # in order: producers are retyped before their users look
            if _is_source(op):
                self._source(op, wanted)
            elif op in targets:
                self._report(op, targets[op], converts[op], reasons[op])
                self._rewrite(op, targets[op], wanted[op])
        f.update_function_type()
        if f.function_type != old_type and nt.IO_TYPES_ATTR not in f.attributes:
            f.attributes[nt.IO_TYPES_ATTR] = old_type

    # -- deciding ----------------------------------------------------------------------------

    def _decide(self, op: Operation, rule) -> tuple[_Target | None, str]:
        """The op's types after the pass (None: as in the model) and the reason; `rule` is the
        plan's rule that matches the op, if any."""
        if rule is not None:
            self.report.matched(rule)
            if rule.precision == "keep":
                return None, rule.describe()
            return self._target(op, rule.precision), rule.describe()
        cls = nt.op_class(op)
        policy = POLICY.get((self.mode, cls)) if cls else None
        if self.mode == "none":
            return None, "auto-cast none"
        if policy is None:
            return None, "not an nt op"
        if policy.inputs == "keep":
            return None, policy.reason
        if not _is_fp32_op(op):
            return (
                None,
                "not an fp32 contraction" if cls is nt.MatmulClass else "not fp32 in the model",
            )
        return self._target(op, self.cast_type), f"{self.mode}: {policy.reason}"

    def _target(self, op: Operation, precision: str) -> _Target:
        if precision == "fp32":
            return _Target(builtin.f32, builtin.f32, builtin.f32)
        # A rule decides an op as `all` does, except that a contraction under matmult keeps its
        # f32 result (TensorE writes fp32 PSUM).
        cls = nt.op_class(op)
        if cls is None:  # only a plan's rule reaches here with an op outside nt's classes
            raise op_error(op, f"a precision-plan rule matches {op.name}, which is not an nt op")
        policy = POLICY[
            ("matmult" if self.mode == "matmult" and cls is nt.MatmulClass else "all", cls)
        ]
        data, result = role_type(policy.inputs, precision), role_type(policy.result, precision)
        return _Target(data, result if cls is nt.MatmulClass else data, result)

    def _operand_types(self, op: Operation, t: _Target | None) -> dict[int, Attribute | None]:
        """Per float operand index, the element type the op reads (None: no constraint)."""
        floats = [i for i, v in enumerate(op.operands) if is_float(tensor_type_of(v).element_type)]
        if isinstance(op, nt.CastOp):
            # A cast reads whatever its producer writes: widening a rounded value first would
            # change nothing (see _source_type for arguments and constants).
            return dict.fromkeys(floats)
        if t is None:
            return {i: tensor_type_of(op.operands[i]).element_type for i in floats}
        data = 2 if isinstance(op, nt.Contraction) else 0
        scaled = self.scaled[op].scales if op in self.scaled else {}
        # A scaled operand reads its producer's type: the scaled cast reads any float.
        return {i: None if i in scaled else t.data if i < data else t.other for i in floats}

    def _report(self, op: Operation, t: _Target | None, changed: bool, reason: str) -> None:
        if t is None:
            self.report.decide(op, "kept", None, False, reason)
            return
        if isinstance(op, nt.Contraction) and t.data != t.result:
            text = f"{type_name(t.data)}{' scaled' if op in self.scaled else ''}, result {type_name(t.result)}"
        else:
            text = type_name(t.result)
        self.report.decide(op, text, t.result, changed, reason)

    # -- rewriting ---------------------------------------------------------------------------

    def _rewrite(
        self, op: Operation, t: _Target | None, wanted: dict[int, Attribute | None]
    ) -> None:
        for i, want in wanted.items():
            v = op.operands[i]
            if want is not None and tensor_type_of(v).element_type != want:
                op.operands[i] = self._cast(v, want, op)
        if op in self.scaled:
            self._scale_operands(op, self.scaled[op])
        if t is None:
            return
        if isinstance(op, nt.Contraction):
            op.properties["acc"] = builtin.f32
        for res in _floats(op.results):
            if _retyped(op, res, t):
                Rewriter.replace_value_with_new_type(
                    res, TensorType(t.result, tensor_type_of(res).get_shape())
                )

    def _scale_operands(self, op: Operation, sc: _Scales) -> None:
        """Scaled casts of the operands to fp8 and the contraction's unscale = 1 / (s0 * s1),
        per output channel (exact: powers of two). An operand already in fp8 (the model's,
        or an earlier run's) is read as it is."""
        fp8 = role_type("matmul", "fp8_e4m3")
        undo = np.ones(1)
        for i, (values, axis) in sc.scales.items():
            v = op.operands[i]
            if tensor_type_of(v).element_type == fp8:
                continue
            if all(x == 1.0 for x in values):
                op.operands[i] = self._cast(v, fp8, op)
                continue
            op.operands[i] = self._scaled_cast(v, values, axis, op)
            undo = undo / np.asarray(values)  # exact; (1,) broadcasts to one per channel
        if np.any(undo != 1.0):
            op.properties["unscale"] = nt.scale_array(undo.tolist())

    def _scaled_cast(
        self, v: SSAValue, values: tuple[float, ...], axis: int | None, user: Operation
    ) -> SSAValue:
        key = (v, values, axis)
        if key in self.casts:
            return self.casts[key]
        c = nt.ScaledCastOp.get(v, values, axis)
        self._insert(c, v, user)
        self.casts[key] = c.result
        return c.result

    def _source_type(self, v: SSAValue, wanted) -> Attribute | None:
        """Under all, the type an f32 argument, constant or weight takes: the one its users
        read (the activation type when they do not say, or read fp8); None when users
        disagree (casts then serve each)."""
        if getattr(v.type, "element_type", None) != builtin.f32:
            return None  # only f32 values are retyped
        types = set()
        for use in v.uses:
            user = use.operation
            if isinstance(user, func.ReturnOp):
                types.add(self.act)
            elif isinstance(user, nt.CastOp) and user.result.type.element_type != builtin.f32:
                # A user's cast to a low type stays, and reads the model's value: retyping
                # the source would round it twice.
                types.add(tensor_type_of(v).element_type)
            elif user in wanted:
                if (want := wanted[user].get(use.index)) is not None:
                    types.add(want)
                elif user in self.scaled:  # a scaled cast reads the model's value
                    types.add(tensor_type_of(v).element_type)
            else:
                types.add(tensor_type_of(v).element_type)
        t = types.pop() if len(types) == 1 else None if types else self.act
        # fp8 is for contraction inputs only: the signature and constants take the activation
        # type, and a saturating cast feeds the contraction.
        return self.act if t == role_type("matmul", "fp8_e4m3") else t

    def _retype_source(self, arg: BlockArgument, wanted) -> None:
        t = self._source_type(arg, wanted)
        if t is not None and t != tensor_type_of(arg).element_type:
            Rewriter.replace_value_with_new_type(
                arg, TensorType(t, tensor_type_of(arg).get_shape())
            )

    def _source(self, op: nt.ConstantOp | nt.WeightOp, wanted) -> None:
        res = op.result
        if not is_float(res.type.element_type):
            return
        if self.mode != "all":
            reason = (
                POLICY[("matmult", nt.MoveClass)].reason
                if self.mode == "matmult"
                else "auto-cast none"
            )
            self.report.decide(op, "kept", None, False, reason)
            return
        t = self._source_type(res, wanted)
        if t is None or t == res.type.element_type:
            reason = (
                "not fp32 in the model"
                if res.type.element_type != builtin.f32
                else "its users read several types"
                if t is None
                else f"its users read {type_name(t)}"
            )
            self.report.decide(op, "kept", None, False, reason)
            return
        new_t = TensorType(t, res.type.get_shape())
        if isinstance(op, nt.ConstantOp):
            data = op.to_array()
            rounded = round_to(data, t, saturates(t))
            overflow = np.isinf(rounded.astype(np.float32)) & np.isfinite(data.astype(np.float32))
            self.report.saturated += bool(overflow.any())
            op.properties["value"] = nt.DenseAttr.from_array(rounded, new_t)
        Rewriter.replace_value_with_new_type(res, new_t)
        self.report.decide(
            op, type_name(t), t, True, "all: constants and weights take their users' type"
        )

    def _cast(self, v: SSAValue, elt, user: Operation) -> SSAValue:
        key = (v, elt)
        if key in self.casts:
            return self.casts[key]
        c = nt.CastOp.make(
            v, result_type=TensorType(elt, tensor_type_of(v).get_shape()), saturate=saturates(elt)
        )
        self._insert(c, v, user)
        self.casts[key] = c.result
        return c.result

    def _insert(self, c: Operation, v: SSAValue, user: Operation) -> None:
        """Place a new cast of v right after v's definition, at its user's location."""
        c.location = user.location
        c.results[0].name_hint = v.name_hint
        if isinstance(v.owner, Operation):
            at = InsertPoint.after(v.owner)
        elif self.last_arg_cast is not None:
            at = InsertPoint.after(self.last_arg_cast)
        else:
            at = InsertPoint.at_start(v.owner)
        if not isinstance(v.owner, Operation):
            self.last_arg_cast = c
        Rewriter.insert_op(c, at)
        self.report.casts += 1

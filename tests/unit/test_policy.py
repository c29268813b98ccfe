"""The op policy: one op-class trait per nt op, a POLICY entry for every (mode, class), and what
auto-cast may touch: under matmult only MATMUL-class ops, never integer or bool tensors."""

from __future__ import annotations

import itertools

import pytest
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import Builtin, IntegerType, TensorType, f32
from xdsl.dialects.func import Func

from neuron_opt.dialects import nt
from neuron_opt.dialects.parse import parse_module, verify_module
from neuron_opt.dialects.types import AUTO_CAST_TYPES, bf16, is_float
from neuron_opt.options import CASTING_MODES
from neuron_opt.passes.auto_cast import AutoCastPass
from neuron_opt.passes.policy import POLICY, role_type, saturates

CTX = Context()
for _d in (Builtin, Func, nt.NT):
    CTX.load_dialect(_d)

MODES = CASTING_MODES  # `none` never reaches the table: auto-cast returns first
TYPES = tuple(AUTO_CAST_TYPES)

# One module with every nt op (checked below), float and integer/bool tensors alike.
EVERY_OP = """
builtin.module attributes {nt.weights = "unused.npz"} {
func.func @contractions(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>, %c: tensor<2x4x8xf32>, %x: tensor<1x4x9x9xf32>, %w: tensor<6x2x3x3xf32>, %bias: tensor<6xf32>, %wt: tensor<16x8xf32>) -> (tensor<4x16xf32>, tensor<2x4x16xf32>, tensor<4x16xf32>, tensor<1x6x5x5xf32>) {
  %0 = nt.matmul %a, %b : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
  %1 = nt.batch_matmul %c, %b : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> tensor<2x4x16xf32>
  %2 = nt.linear %a, %wt {trans_b} : (tensor<4x8xf32>, tensor<16x8xf32>) -> tensor<4x16xf32>
  %3 = nt.conv %x, %w, %bias {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 2 : i64} : (tensor<1x4x9x9xf32>, tensor<6x2x3x3xf32>, tensor<6xf32>) -> tensor<1x6x5x5xf32>
  func.return %0, %1, %2, %3 : tensor<4x16xf32>, tensor<2x4x16xf32>, tensor<4x16xf32>, tensor<1x6x5x5xf32>
}
func.func @elementwise(%a: tensor<4x8xf32>, %r: tensor<8xf32>, %i: tensor<4x8xi64>, %p: tensor<4x8xi1>) -> (tensor<4x8xf32>, tensor<4x8xi1>, tensor<4x8xi64>) {
  %0 = nt.add %a, %r : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  %1 = nt.sub %a, %0 : tensor<4x8xf32>
  %2 = nt.mul %a, %1 : tensor<4x8xf32>
  %3 = nt.div %i, %i : tensor<4x8xi64>
  %4 = nt.mod %a, %2 {fmod} : tensor<4x8xf32>
  %5 = nt.max %a, %4 : tensor<4x8xf32>
  %6 = nt.min %a, %5 : tensor<4x8xf32>
  %7 = nt.pow %a, %6 : tensor<4x8xf32>
  %8 = nt.cmp %a, %7 {predicate = "lt"} : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xi1>
  %9 = nt.and %p, %8 : tensor<4x8xi1>
  %10 = nt.or %p, %9 : tensor<4x8xi1>
  %11 = nt.xor %p, %10 : tensor<4x8xi1>
  %12 = nt.not %11 : tensor<4x8xi1>
  %13 = nt.where %12, %a, %r : (tensor<4x8xi1>, tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  %14 = nt.neg %13 : tensor<4x8xf32>
  %15 = nt.abs %3 : tensor<4x8xi64>
  %16 = nt.relu %14 : tensor<4x8xf32>
  %17 = nt.exp %16 : tensor<4x8xf32>
  %18 = nt.log %17 : tensor<4x8xf32>
  %19 = nt.sqrt %18 : tensor<4x8xf32>
  %20 = nt.rsqrt %19 : tensor<4x8xf32>
  %21 = nt.reciprocal %20 : tensor<4x8xf32>
  %22 = nt.tanh %21 : tensor<4x8xf32>
  %23 = nt.sigmoid %22 : tensor<4x8xf32>
  %24 = nt.erf %23 : tensor<4x8xf32>
  %25 = nt.silu %24 : tensor<4x8xf32>
  %26 = nt.gelu %25 {approximate = "tanh"} : tensor<4x8xf32>
  %27 = nt.clip %26 {min = 0.0 : f64, max = 6.0 : f64} : tensor<4x8xf32>
  %28 = nt.neg %15 : tensor<4x8xi64>
  %29 = nt.add %28, %i : tensor<4x8xi64>
  %30 = nt.cast %29 : tensor<4x8xi64> to tensor<4x8xf32>
  %31 = nt.add %27, %30 : tensor<4x8xf32>
  %32 = nt.cast %31 : tensor<4x8xf32> to tensor<4x8xi64>
  %33 = nt.cmp %i, %32 {predicate = "lt"} : (tensor<4x8xi64>, tensor<4x8xi64>) -> tensor<4x8xi1>
  func.return %31, %33, %32 : tensor<4x8xf32>, tensor<4x8xi1>, tensor<4x8xi64>
}
func.func @reductions_and_norms(%a: tensor<2x4x8xf32>, %s: tensor<8xf32>, %c: tensor<4xf32>) -> (tensor<2x1x8xf32>, tensor<2x4xf32>, tensor<f32>, tensor<2x4x8xf32>) {
  %0 = nt.reduce_sum %a {axes = array<i64: 1>, keepdims} : (tensor<2x4x8xf32>) -> tensor<2x1x8xf32>
  %1 = nt.reduce_mean %a {axes = array<i64: -1>} : (tensor<2x4x8xf32>) -> tensor<2x4xf32>
  %2 = nt.reduce_max %a : (tensor<2x4x8xf32>) -> tensor<f32>
  %3 = nt.softmax %a {axis = -1 : i64} : tensor<2x4x8xf32>
  %4 = nt.log_softmax %3 {axis = 2 : i64} : tensor<2x4x8xf32>
  %5 = nt.layer_norm %4, %s, %s {axis = 2 : i64, epsilon = 1.0e-05 : f64} : (tensor<2x4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
  %6 = nt.rms_norm %5, %s {axis = -1 : i64, epsilon = 1.0e-06 : f64} : (tensor<2x4x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
  %7 = nt.batch_norm %6, %c, %c, %c, %c {epsilon = 1.0e-05 : f64} : (tensor<2x4x8xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<2x4x8xf32>
  %8 = nt.group_norm %7, %c, %c {groups = 2 : i64, epsilon = 1.0e-05 : f64} : (tensor<2x4x8xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<2x4x8xf32>
  func.return %0, %1, %2, %8 : tensor<2x1x8xf32>, tensor<2x4xf32>, tensor<f32>, tensor<2x4x8xf32>
}
func.func @movement(%a: tensor<2x3x4xf32>, %i: tensor<5xi64>, %j: tensor<2x3x4xi64>, %k: tensor<2x1xi64>, %x: tensor<1x2x6x6xf32>, %n: tensor<2x3x4xi32>) -> (tensor<4x2x3xf32>, tensor<6x4xf32>, tensor<5x2x3x4xf32>, tensor<2x2x2xf32>, tensor<2x6x4xf32>, tensor<2x3x5xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x5x6xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<2x3x4xf8E4M3>, tensor<2x3x4xi64>, tensor<4x4xf32>, tensor<3xf32>, tensor<4x3x2xi32>, tensor<2x3x8xi32>, tensor<2x3x5xi32>, tensor<2x5x6xi32>, tensor<4x4xi64>, tensor<2x3x4xf8E4M3>) {
  %0 = nt.transpose %a {perm = array<i64: 2, 0, 1>} : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
  %1 = nt.reshape %a : (tensor<2x3x4xf32>) -> tensor<6x4xf32>
  %2 = nt.broadcast %a : (tensor<2x3x4xf32>) -> tensor<5x2x3x4xf32>
  %3 = nt.slice %a {starts = array<i64: 0, 1, 3>, limits = array<i64: 2, 3, -1>, strides = array<i64: 1, 1, -2>} : (tensor<2x3x4xf32>) -> tensor<2x2x2xf32>
  %4 = nt.concat %a, %a {axis = 1 : i64} : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x6x4xf32>
  %5 = nt.gather %a, %i {axis = 2 : i64} : (tensor<2x3x4xf32>, tensor<5xi64>) -> tensor<2x3x5xf32>
  %6 = nt.gather_elements %a, %j {axis = 0 : i64} : (tensor<2x3x4xf32>, tensor<2x3x4xi64>) -> tensor<2x3x4xf32>
  %7 = nt.gather_nd %a, %k : (tensor<2x3x4xf32>, tensor<2x1xi64>) -> tensor<2x3x4xf32>
  %8 = nt.pad %a {pads = array<i64: 0, 1, 0, 0, 1, 2>, mode = "constant", value = 0.5 : f64} : (tensor<2x3x4xf32>) -> tensor<2x5x6xf32>
  %9 = nt.max_pool %x {kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, ceil_mode} : (tensor<1x2x6x6xf32>) -> tensor<1x2x3x3xf32>
  %10 = nt.avg_pool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, count_include_pad} : (tensor<1x2x6x6xf32>) -> tensor<1x2x3x3xf32>
  %11 = nt.cast %a {saturate} : tensor<2x3x4xf32> to tensor<2x3x4xf8E4M3>
  %12 = nt.cast %a : tensor<2x3x4xf32> to tensor<2x3x4xi64>
  %13 = nt.weight @w : tensor<4x4xf32>
  %14 = nt.constant [1.0, -0.0, inf] : tensor<3xf32>
  %15 = nt.transpose %n {perm = array<i64: 2, 1, 0>} : (tensor<2x3x4xi32>) -> tensor<4x3x2xi32>
  %16 = nt.concat %n, %n {axis = 2 : i64} : (tensor<2x3x4xi32>, tensor<2x3x4xi32>) -> tensor<2x3x8xi32>
  %17 = nt.gather %n, %i {axis = 2 : i64} : (tensor<2x3x4xi32>, tensor<5xi64>) -> tensor<2x3x5xi32>
  %18 = nt.pad %n {pads = array<i64: 0, 1, 0, 0, 1, 2>} : (tensor<2x3x4xi32>) -> tensor<2x5x6xi32>
  %19 = nt.weight @ints : tensor<4x4xi64>
  %20 = nt.scaled_cast %a {scale = array<f32: 8.0>} : tensor<2x3x4xf32> to tensor<2x3x4xf8E4M3>
  func.return %0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20 : tensor<4x2x3xf32>, tensor<6x4xf32>, tensor<5x2x3x4xf32>, tensor<2x2x2xf32>, tensor<2x6x4xf32>, tensor<2x3x5xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x5x6xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<2x3x4xf8E4M3>, tensor<2x3x4xi64>, tensor<4x4xf32>, tensor<3xf32>, tensor<4x3x2xi32>, tensor<2x3x8xi32>, tensor<2x3x5xi32>, tensor<2x5x6xi32>, tensor<4x4xi64>, tensor<2x3x4xf8E4M3>
}
}
"""


def module():
    m = parse_module(CTX, EVERY_OP, "every_op.mlir")
    verify_module(m)
    return m


def snapshot(m):
    """Per original op (by identity): its operand values, result types and properties."""
    return {
        op: (list(op.operands), [r.type for r in op.results], dict(op.properties))
        for op in m.walk()
        if op.dialect_name() == "nt"
    }


def is_int_or_bool(t) -> bool:
    return isinstance(t, TensorType) and isinstance(t.element_type, IntegerType)


# ---------------------------------------------------------------------------------------------


def test_every_op_has_exactly_one_op_class():
    for op_type in nt.NT_OPS:
        classes = [t for t in op_type.traits if isinstance(t, nt.OpClass)]
        assert len(classes) == 1, (op_type.name, classes)
        assert [c for c in nt.OP_CLASSES if op_type.has_trait(c)] == [type(classes[0])], (
            op_type.name
        )


def test_the_test_module_holds_every_op():
    # So the checks below grow with the dialect: a new op must be added to EVERY_OP.
    assert {type(op) for op in module().walk() if op.dialect_name() == "nt"} == set(nt.NT_OPS)


def test_policy_covers_every_mode_and_class():
    assert set(POLICY) == set(itertools.product(MODES, nt.OP_CLASSES))
    # matmult changes contractions only; all changes every class.
    for (mode, cls), rule in POLICY.items():
        changes = rule.inputs != "keep" or rule.result != "keep"
        assert changes == (mode == "all" or cls is nt.MatmulClass), (mode, cls, rule)
        assert rule.reason


def test_roles():
    for t in TYPES:
        elt = AUTO_CAST_TYPES[t]
        assert role_type("matmul", t) == elt
        # fp8 is for TensorE inputs only: activations use bf16 under fp8_e4m3.
        assert role_type("act", t) == (bf16 if t == "fp8_e4m3" else elt)
        assert role_type("f32", t) == f32
        assert saturates(elt) == (t == "fp8_e4m3")
    with pytest.raises(ValueError, match="no type for role 'nonsense'"):
        role_type("nonsense", "bf16")


@pytest.mark.parametrize("t", TYPES)
def test_matmult_changes_only_matmul_ops(t):
    m = module()
    before = snapshot(m)
    sigs = {f.sym_name.data: f.function_type for f in m.walk() if isinstance(f, func.FuncOp)}
    AutoCastPass(mode="matmult", type=t).apply(Context(), m)
    verify_module(m)
    low = AUTO_CAST_TYPES[t]
    for op, (operands, types, props) in before.items():
        assert op.parent is not None, op.name  # nothing erased
        if op.has_trait(nt.MatmulClass):
            # f32 contraction: data operands are casts of the old values to T, acc f32, f32 result.
            for old, new in zip(operands[:2], op.operands[:2]):
                assert isinstance(new.owner, nt.CastOp) and new.owner.input is old
                assert new.type.element_type == low
                assert bool(new.owner.saturate) == (t == "fp8_e4m3")
            assert list(op.operands[2:]) == operands[2:]  # the bias is not a TensorE input
            assert [r.type for r in op.results] == types and op.properties["acc"] == f32
        else:
            assert list(op.operands) == operands, op.name
            assert [r.type for r in op.results] == types, op.name
            assert dict(op.properties) == props, op.name
    # New ops are casts feeding contractions only; signatures never change.
    new = [op for op in m.walk() if op.dialect_name() == "nt" and op not in before]
    assert new and all(isinstance(op, nt.CastOp) for op in new)
    assert all(u.operation.has_trait(nt.MatmulClass) for op in new for u in op.result.uses)
    assert {
        f.sym_name.data: f.function_type for f in m.walk() if isinstance(f, func.FuncOp)
    } == sigs


@pytest.mark.parametrize("mode,t", [(m, t) for m in MODES for t in TYPES])
def test_integer_and_bool_tensors_are_never_touched(mode, t):
    m = module()
    before = snapshot(m)
    int_args = {
        (f.sym_name.data, i): a.type
        for f in m.walk() if isinstance(f, func.FuncOp)
        for i, a in enumerate(f.body.block.args) if is_int_or_bool(a.type)
    }  # fmt: skip
    AutoCastPass(mode=mode, type=t).apply(Context(), m)
    verify_module(m)
    for op, (operands, types, _) in before.items():
        for old, new in zip(operands, op.operands):
            if is_int_or_bool(old.type):
                assert new is old, op.name  # never re-routed through a cast
        for ty, r in zip(types, op.results):
            if is_int_or_bool(ty):
                assert r.type == ty, op.name
    for f in m.walk():
        if isinstance(f, func.FuncOp):
            for i, a in enumerate(f.body.block.args):
                if (f.sym_name.data, i) in int_args:
                    assert a.type == int_args[(f.sym_name.data, i)]
    # Every cast auto-cast made is float -> float.
    for op in m.walk():
        if isinstance(op, nt.CastOp) and op not in before:
            assert is_float(op.input.type.element_type) and is_float(op.result.type.element_type)


def test_all_mode_reads_and_writes_the_activation_type():
    # The other half of the policy table: under all, every float result is T (bf16 for fp8).
    for t in TYPES:
        m = module()
        AutoCastPass(mode="all", type=t).apply(Context(), m)
        act = role_type("act", t)
        for op in m.walk():
            # Casts write their own type; a scaled cast writes fp8 by definition, and stays.
            if op.dialect_name() == "nt" and not isinstance(op, (nt.CastOp, nt.ScaledCastOp)):
                for r in op.results:
                    if is_float(r.type.element_type):
                        assert r.type.element_type == act, (t, op.name)
            if op.has_trait(nt.MatmulClass):
                assert all(v.type.element_type == AUTO_CAST_TYPES[t] for v in op.operands[:2])
        assert all(
            f.attributes.get(nt.IO_TYPES_ATTR) is not None
            for f in m.walk()
            if isinstance(f, func.FuncOp)
            and any(is_float(getattr(a.type, "element_type", None)) for a in f.body.block.args)
        )

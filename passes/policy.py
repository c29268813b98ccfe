"""The op policy: what auto-cast does to each op class under each mode, in one table.

An op's class comes from its trait (dialects/nt.py); this table is the only place that says
what a class means to a mode. Evidence for each op's class: docs/design.md §3.4.

Roles name the type a value gets: "matmul" is the --auto-cast-type (fp8 only here), "act" the
activation type (the auto-cast type, bf16 for fp8_e4m3), "f32" is fp32, "keep" no change.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.dialects.builtin import bf16, f8E4M3, f32
from xdsl.ir import Attribute

from neuron_opt.dialects.nt import FollowClass, Fp32Class, MatmulClass, MoveClass, OpClass
from neuron_opt.dialects.types import AUTO_CAST_TYPES


@dataclass(frozen=True)
class Rule:
    inputs: str  # role of the float operands
    result: str  # role of the float result
    reason: str  # why (for --cast-report when nothing changes)


KEEP_MATMULT = Rule("keep", "keep", "matmult casts contractions only")

POLICY: dict[tuple[str, type[OpClass]], Rule] = {
    # matmult: only fp32 contractions change: T operands, fp32 accumulation, f32 result
    # (TensorE writes fp32 PSUM only, so never a T result cast back).
    ("matmult", MatmulClass): Rule("matmul", "f32", "contraction"),
    ("matmult", Fp32Class): KEEP_MATMULT,
    ("matmult", FollowClass): KEEP_MATMULT,
    ("matmult", MoveClass): KEEP_MATMULT,
    # all: every float op reads and writes T; FP32-class ops still compute in fp32 inside and
    # round once (neuronx-cc's default --enable-mixed-precision-accumulation).
    ("all", MatmulClass): Rule("matmul", "act", "contraction"),
    ("all", Fp32Class): Rule("act", "act", "computes in fp32 inside"),
    ("all", FollowClass): Rule("act", "act", "follows its inputs"),
    ("all", MoveClass): Rule("act", "act", "data movement"),
}


def role_type(role: str, cast_type: str) -> Attribute:
    """The element type a role stands for under --auto-cast-type `cast_type`."""
    t = AUTO_CAST_TYPES[cast_type]
    if role == "matmul":
        return t
    if role == "act":
        return bf16 if t == f8E4M3 else t  # fp8 is for TensorE inputs only
    if role == "f32":
        return f32
    raise ValueError(f"no type for role {role!r}")


def saturates(elt: Attribute) -> bool:
    """Casts auto-cast inserts to fp8 saturate (finite overflow and +-inf -> +-240)."""
    return elt == f8E4M3

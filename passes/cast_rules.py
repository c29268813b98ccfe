"""The bit-exact cast folds, as functions shared by canonicalize-casts and preserve-io.

Each rule has its proof in tests/unit/test_cast_rules.py (exhaustive over every bf16/f16/fp8
pattern, else 10^7 random values plus every special value). Evidence: docs/design.md §3.2.

  R1 identity     cast(x: T -> T) = x                      (not for a saturating fp8 cast:
                                                             it maps +-inf to +-240)
  R2 chain        cast(cast(x: A -> B) -> C) = cast(x: A -> C) when B represents every value of
                  A exactly (the inner cast is exact, so both sides round once, from the same
                  value); with C == A this is trunc(ext(x)) = x.
  R3 constant     cast(constant) = constant rounded RNE (saturating when the cast does): the
                  same rounding the cast performs.
  R4 weight       cast(weight: f32 -> T) = weight retyped T, when the weight has no other use:
                  every loader rounds the stored data to the IR type once (RNE, saturating for
                  fp8), so only a cast that rounds the same way folds (to fp8: saturating). W
                  must be f32: the stored data (float32 or narrower, as the importer writes it)
                  is then exact in W, while a bf16 weight's load already rounds, and folding its
                  cast to fp8 would turn that double rounding into one.
  R5 CSE          two casts of one value to one type with the same saturate flag are one.
  R6 move         cast(m(cast(x: A -> B)) -> C) = m(cast(x: A -> C)) for a MOVE op m with one
                  float operand, when R2 holds for the two casts: m commutes with monotone
                  rounding (IEEE max/min order -0 < +0); float attributes of m must be exact
                  in B and in C (saturated, when the outer cast saturates) so that m uses
                  the same value in either type.
Never: ext(trunc(x)) -> x, trunc(trunc(x)) -> trunc(x) (double rounding), or pushing a trunc
into arithmetic: each changes values (docs/design.md §3.2, "Forbidden").
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import (
    BFloat16Type,
    Float8E4M3Type,
    Float16Type,
    Float32Type,
    FloatTF32Type,
    TensorType,
)
from xdsl.ir import Attribute

from neuron_opt.dialects import nt
from neuron_opt.dialects.types import is_float, round_to, tensor_type_of

# Which float types represent every value (incl. +-inf, NaN) of which: B -> {A exact in B}.
_EXACT_IN: dict[type, tuple[type, ...]] = {
    Float32Type: (Float32Type, FloatTF32Type, BFloat16Type, Float16Type, Float8E4M3Type),
    FloatTF32Type: (FloatTF32Type, BFloat16Type, Float16Type, Float8E4M3Type),
    BFloat16Type: (BFloat16Type, Float8E4M3Type),
    Float16Type: (Float16Type, Float8E4M3Type),
    Float8E4M3Type: (Float8E4M3Type,),
}


def represents(wide: Attribute, narrow: Attribute) -> bool:
    """True when float type `wide` holds every value of float type `narrow` exactly."""
    if not (is_float(wide) and is_float(narrow)):
        return False
    return isinstance(narrow, _EXACT_IN[type(wide)])


def effective_saturate(cast: nt.CastOp) -> bool:
    """saturate matters only for a cast to fp8."""
    return bool(cast.saturate) and isinstance(cast.result.type.element_type, Float8E4M3Type)


def float_cast(op) -> bool:
    return (
        isinstance(op, nt.CastOp)
        and is_float(tensor_type_of(op.input).element_type)
        and is_float(op.result.type.element_type)
    )


def is_identity(cast: nt.CastOp) -> bool:
    """R1."""
    return cast.input.type == cast.result.type and not effective_saturate(cast)


def exact_widening(cast: nt.CastOp) -> bool:
    """A float cast that changes no value (a saturating fp8 -> fp8 cast changes +-inf)."""
    return (
        float_cast(cast)
        and not effective_saturate(cast)
        and represents(cast.result.type.element_type, tensor_type_of(cast.input).element_type)
    )


def chain_folds(inner: nt.CastOp, outer: nt.CastOp) -> bool:
    """R2: outer(inner(x)) is one cast of x, because the inner cast is exact."""
    return exact_widening(inner) and float_cast(outer)


def chain_source(outer: nt.CastOp) -> nt.CastOp | None:
    """R2: the inner cast when cast(cast(x)) may become one cast of x, else None."""
    inner = outer.input.owner
    return inner if isinstance(inner, nt.CastOp) and chain_folds(inner, outer) else None


def fold_constant(cast: nt.CastOp, const: nt.ConstantOp) -> nt.ConstantOp:
    """R3: the constant the cast would compute, rounded exactly as the cast rounds."""
    t = cast.result.type
    data = round_to(const.to_array(), t.element_type, effective_saturate(cast))
    return nt.ConstantOp.from_array(data, t)


def weight_folds(cast: nt.CastOp, weight: nt.WeightOp) -> bool:
    """R4: the cast rounds as a loader of the retyped weight would."""
    if not float_cast(cast) or weight.result.uses.get_length() != 1:
        return False
    if not isinstance(weight.result.type.element_type, Float32Type):
        return False
    to_fp8 = isinstance(cast.result.type.element_type, Float8E4M3Type)
    return effective_saturate(cast) == to_fp8


def attrs_exact_in(op, elt: Attribute, saturate: bool = False) -> bool:
    """R6: the float attributes of a MOVE op round to themselves in `elt` (and survive the
    saturation of a saturating cast: an inf pad value would become 240)."""
    for name in ("min", "max", "value"):
        v = op.prop(name) if isinstance(op, nt.NtOp) else None
        if isinstance(v, float) and not np.isnan(v):
            r = float(round_to(np.array([v], dtype=np.float64), elt, saturate)[0])
            if r != v:
                return False
    return True


def retyped(t: TensorType, elt: Attribute) -> TensorType:
    return TensorType(elt, t.get_shape())

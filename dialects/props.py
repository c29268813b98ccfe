"""Property values <-> Python: what the dialects' builders take and their ops' `get` returns
(a leaf module both dialects share)."""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import (
    DenseArrayBase,
    FloatAttr,
    IntAttr,
    IntegerAttr,
    StringAttr,
    UnitAttr,
    f64,
    i64,
)
from xdsl.ir import Attribute


def to_attr(value) -> Attribute:
    """Python value -> property attribute (int -> i64, [int] -> array<i64>, float -> f64,
    True -> unit, str -> string)."""
    if isinstance(value, Attribute):
        return value
    if value is True:
        return UnitAttr()
    if isinstance(value, (int, np.integer)):
        return IntegerAttr(int(value), i64)
    if isinstance(value, (float, np.floating)):
        return FloatAttr(float(value), f64)
    if isinstance(value, str):
        return StringAttr(value)
    if isinstance(value, (list, tuple)):
        return DenseArrayBase.from_list(i64, [int(v) for v in value])
    raise TypeError(f"cannot turn {value!r} into a property")


def array_values(attr: DenseArrayBase) -> tuple[int, ...] | tuple[float, ...]:
    """The values of an `array<T: ...>` of either element kind (get_values() is typed only for
    an array known to hold integers, or floats)."""
    return attr.elt_type.unpack(attr.data.data, len(attr))


def from_attr(attr: Attribute | None):
    """The inverse of to_attr, IntAttr counting as an int too (absent -> None; any other
    attribute, e.g. an access pattern, as it is)."""
    if attr is None:
        return None
    if isinstance(attr, UnitAttr):
        return True
    if isinstance(attr, IntegerAttr):
        return attr.value.data
    if isinstance(attr, IntAttr):
        return attr.data
    if isinstance(attr, FloatAttr):
        return attr.value.data
    if isinstance(attr, StringAttr):
        return attr.data
    if isinstance(attr, DenseArrayBase):
        return list(attr.get_values())
    return attr

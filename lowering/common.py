"""What every lowering module shares (a leaf: it imports no emitter, only kernel.py): the
partition count, the errors, dtype and shape helpers.

A value's dtype is named as nisa spells it (`f32`, `bf16`, `i32`, ...); `kernel.DT_BYTES` holds
their sizes and `kernel.ON_CHIP` what each is in SBUF.
"""

from __future__ import annotations

from xdsl.ir import Operation, SSAValue

from neuron_opt.diagnostics import CompileError, location_of
from neuron_opt.dialects import ncv2
from neuron_opt.dialects.types import tensor_type_of, type_name
from neuron_opt.lowering.kernel import DT_BYTES, ON_CHIP, PSUM_BANK

PMAX = ncv2.PARTITIONS  # rows of a tile: one per SBUF partition
NMAX = PSUM_BANK // DT_BYTES["f32"]  # output columns of a matmul: fp32 words in one PSUM bank
EW_COLS = 2048  # column chunk of elementwise groups (f32: 8 KiB per partition per tile)


class NoLowering(CompileError):
    """An op or shape with no lowering yet (unlike a buffer that does not fit on chip)."""


class Unsupported(Exception):
    """An op or shape the lowering does not cover yet."""

    error = NoLowering  # what the user sees, at the op


class Internal(Exception):
    """The lowering contradicts its own plan: a bug."""

    error = CompileError


def op_err(op: Operation, msg: str, cls: type[CompileError] = CompileError) -> CompileError:
    return cls(f"{op.name}: {msg}", location_of(op))


def dt(v: SSAValue) -> str:
    name = type_name(tensor_type_of(v).element_type)
    if name not in DT_BYTES:
        raise Unsupported(f"element type {name} has no lowering to the simulator")
    return name


def on_chip(dtype: str) -> str:
    return ON_CHIP.get(dtype, dtype)


def alu_engine(*dtypes: str) -> str:
    """Where an ALU op on these dtypes runs: GpSimd for 32-bit integers (exact int32 lanes;
    VectorE's fp32 datapath is exact only to 2^24), else VectorE."""
    return "gpsimd" if any(on_chip(d) == "i32" for d in dtypes) else "vector"


def is_int(dtype: str) -> bool:
    return dtype.startswith("i")


def pad_shape(s: tuple[int, ...], n: int) -> tuple[int, ...]:
    return (1,) * (n - len(s)) + tuple(s)


def runs(seq: list[int]) -> list[tuple[int, int, int]]:
    """(dst offset, src start, length) runs of consecutive values."""
    out = []
    i = 0
    while i < len(seq):
        j = i + 1
        while j < len(seq) and seq[j] == seq[j - 1] + 1:
            j += 1
        out.append((i, seq[i], j - i))
        i = j
    return out

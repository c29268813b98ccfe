"""Casts that cost no pass of their own on the simulator, checked bit for bit against the
interpreter on values that stress them (bf16 rounding ties, values past fp8's 240 and 248,
+-inf, NaN, -0): a cast done by the DMAs of the movement that produces its input, by the DMA
that loads a contraction operand, by the eviction of an A^T transpose (saturating to fp8),
and casts hoisted over movement ops into the op that computes their input."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest
from test_lowering_windows import _ty

from neuron_opt.cli.common import make_context
from neuron_opt.dialects import nisa
from neuron_opt.dialects.parse import parse_module
from neuron_opt.lowering.lower_to_nisa import lower_module
from neuron_opt.runtime.reference import Reference
from neuron_opt.runtime.sim import simulate


def _hard_values(shape) -> np.ndarray:
    """Normal values scaled over fp8's range, with the cases a cast must keep exact."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(shape) * 100).astype(np.float32).reshape(-1)
    special = [np.inf, -np.inf, np.nan, -0.0, 240.0, 247.9, 248.0, -1e6, 1.00390625, 1.01171875]
    x[: len(special)] = special  # the last two are bf16 ties (round to even: down, then up)
    return x.reshape(shape)


def _run(body: str, args: list[tuple[str, tuple, str]], out: tuple, out_elt: str):
    """(simulator output, interpreter output, kernel) for `body` computing %y."""
    sig = ", ".join(f'%{n}: {_ty(s, e)} {{nt.name = "{n}"}}' for n, s, e in args)
    text = (
        f'builtin.module {{\n  func.func @main({sig}) -> ({_ty(out, out_elt)} {{nt.name = "y"}}) {{\n'
        f"{body}\n    func.return %y : {_ty(out, out_elt)}\n  }}\n}}\n"
    )
    inputs = {n: _hard_values(s) for n, s, _ in args}
    with tempfile.TemporaryDirectory() as d:
        ref = Reference(parse_module(make_context(), text, "t.mlir"), d).run(inputs)["y"]
        kernel = lower_module(parse_module(make_context(), text, "t.mlir"))
        sim = simulate(kernel, inputs, d).outputs["y"]
    return np.asarray(sim, np.float32), np.asarray(ref, np.float32), kernel


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    nan = np.isnan(a)
    return bool(
        np.array_equal(nan, np.isnan(b))
        and np.array_equal(a[~nan].view(np.uint32), b[~nan].view(np.uint32))
    )


def _count(kernel) -> int:
    return sum(1 for op in kernel.walk() if isinstance(op, nisa.InstrOp))


@pytest.mark.parametrize("elt", ["bf16", "f16", "f8E4M3"])
@pytest.mark.parametrize("shape", [(4, 16), (24, 40)])  # copied by DMAs / by TensorE transposes
def test_cast_done_by_the_transpose_copies(elt, shape):
    """cast(transpose(x)) returned: the transpose's copies (DMAs, or the evictions of TensorE
    transposes) write the cast's type, so the kernel has no more instructions than the
    transpose alone (no load, convert and store again); they round as the cast does, inf and
    NaN included."""
    out = shape[::-1]
    move = f"    %t = nt.transpose %x {{perm = array<i64: 1, 0>}} : ({_ty(shape)}) -> {_ty(out)}\n"
    body = move + f"    %y = nt.cast %t : {_ty(out)} to {_ty(out, elt)}"
    sim, ref, kernel = _run(body, [("x", shape, "f32")], out, elt)
    assert _same_bits(sim, ref)
    _, _, plain = _run(move.replace("%t =", "%y ="), [("x", shape, "f32")], out, "f32")
    assert _count(kernel) == _count(plain)


def _contraction(elt: str, sat: str) -> str:
    """y = cast(x) @ cast(transpose(e)), or without the casts when elt is f32."""
    t32 = _ty((32, 32))
    if elt == "f32":
        body = (
            f"    %b = nt.transpose %e {{perm = array<i64: 1, 0>}} : ({t32}) -> {t32}\n"
            f"    %y = nt.matmul %x, %b : ({t32}, {t32}) -> {t32}"
        )
    else:
        t = _ty((32, 32), elt)
        body = (
            f"    %a = nt.cast %x{sat} : {t32} to {t}\n"
            f"    %t = nt.transpose %e {{perm = array<i64: 1, 0>}} : ({t32}) -> {t32}\n"
            f"    %b = nt.cast %t{sat} : {t32} to {t}\n"
            f"    %y = nt.matmul %a, %b {{acc = f32}} : ({t}, {t}) -> {t32}"
        )
    sig = f'%x: {t32} {{nt.name = "x"}}, %e: {t32} {{nt.name = "e"}}'
    return (
        f'builtin.module {{\n  func.func @main({sig}) -> ({t32} {{nt.name = "y"}}) {{\n'
        f"{body}\n    func.return %y : {t32}\n  }}\n}}\n"
    )


@pytest.mark.parametrize("elt", ["bf16", "f8E4M3"])
def test_contraction_operand_casts_cost_no_copy(elt):
    """A = cast(x) and B = cast(transpose(e)) into a matmul with e the identity: the matmul
    returns the cast values, compared bit for bit. Without saturation both casts are done by
    DMAs (A's converting load, the transpose's own copies); saturating to fp8, A's clamp is
    the eviction of its TensorE transpose and B's one tensor_scalar per tile: no more
    instructions than the kernel without casts but that one."""
    sat = " {saturate}" if elt == "f8E4M3" else ""
    text = _contraction(elt, sat)
    inputs = {"x": _hard_values((32, 32)), "e": np.eye(32, dtype=np.float32)}
    with tempfile.TemporaryDirectory() as d:
        ref = Reference(parse_module(make_context(), text, "t.mlir"), d).run(inputs)["y"]
        kernel = lower_module(parse_module(make_context(), text, "t.mlir"))
        sim = simulate(kernel, inputs, d).outputs["y"]
    sim, ref = np.asarray(sim, np.float32), np.asarray(ref, np.float32)
    finite = np.isfinite(ref)  # 0 x inf in the identity product is NaN on both sides
    assert np.array_equal(np.isnan(sim), np.isnan(ref)) and np.array_equal(sim[finite], ref[finite])
    plain = lower_module(parse_module(make_context(), _contraction("f32", ""), "t.mlir"))
    assert _count(kernel) == _count(plain) + (1 if sat else 0)  # B's clamp: a DMA cannot saturate


def test_saturating_cast_hoisted_into_its_producer():
    """cast_fp8(reshape(transpose(gelu(x)))): the cast moves above the movement into gelu's
    group, whose tile is clamped there; the copies then move fp8."""
    body = (
        f"    %g = nt.gelu %x : {_ty((8, 4, 16))}\n"
        f"    %t = nt.transpose %g {{perm = array<i64: 1, 0, 2>}} : ({_ty((8, 4, 16))}) -> {_ty((4, 8, 16))}\n"
        f"    %r = nt.reshape %t : ({_ty((4, 8, 16))}) -> {_ty((32, 16))}\n"
        f"    %y = nt.cast %r {{saturate}} : {_ty((32, 16))} to {_ty((32, 16), 'f8E4M3')}"
    )
    sim, ref, kernel = _run(body, [("x", (8, 4, 16), "f32")], (32, 16), "f8E4M3")
    assert _same_bits(sim, ref)
    scratch = [
        op for op in kernel.walk() if isinstance(op, nisa.HbmOp) and op.role.data == "scratch"
    ]
    assert scratch and all("f8E4M3" in str(op.type) for op in scratch)

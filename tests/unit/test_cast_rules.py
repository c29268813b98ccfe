"""Each canonicalize-casts rule (passes/cast_rules.py R1-R6) proved bit-exact, and the forbidden
folds shown to change values.

The oracle for what a cast computes is numpy/ml_dtypes written here (RNE by astype, an explicit
clamp for saturating fp8, a float64 RNE for tf32), cross-checked against dialects/types.round_to,
which defines nt.cast. Domains: every bf16, f16 and fp8 (E4M3) pattern where the rule's input is
such a value; otherwise 10^7 random float32 patterns plus the special values. NaN payloads aside:
NaN positions must match, every other bit must match.
"""

from __future__ import annotations

import functools
import itertools

import ml_dtypes
import numpy as np
import pytest
from testlib import same_bits
from xdsl.context import Context
from xdsl.dialects.builtin import Builtin
from xdsl.dialects.func import Func

from neuron_opt.dialects import nt
from neuron_opt.dialects.parse import parse_module, verify_module
from neuron_opt.dialects.types import AUTO_CAST_TYPES, f32, round_to
from neuron_opt.passes import cast_rules as R
from neuron_opt.passes.canonicalize_casts import CanonicalizeCastsPass
from neuron_opt.runtime.reference import run_module

# Casting NaN to fp8 and overflow to inf raise numpy RuntimeWarnings: they are the semantics.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

CTX = Context()
for _d in (Builtin, Func, nt.NT):
    CTX.load_dialect(_d)

BF16, FP8 = ml_dtypes.bfloat16, ml_dtypes.float8_e4m3
TYPES = ("f32", "tf32", "bf16", "f16", "f8E4M3")
SMALL = ("bf16", "f16", "f8E4M3")  # domains small enough to enumerate
ELT = {"f32": f32, "tf32": AUTO_CAST_TYPES["tf32"], "bf16": AUTO_CAST_TYPES["bf16"],
       "f16": AUTO_CAST_TYPES["fp16"], "f8E4M3": AUTO_CAST_TYPES["fp8_e4m3"]}  # fmt: skip
NP = {"f32": np.float32, "tf32": np.float32, "bf16": BF16, "f16": np.float16, "f8E4M3": FP8}
WIDTH = {"f32": 32, "tf32": 19, "bf16": 16, "f16": 16, "f8E4M3": 8}
# (target, saturate) pairs: saturation only means something for fp8.
TARGETS = [(t, False) for t in TYPES] + [("f8E4M3", True)]
N_RANDOM = 10**7
CHUNK = 2 * 10**6


# ---------------------------------------------------------------------------------------------
# The oracle


def tf32_rne(x: np.ndarray) -> np.ndarray:
    """float32 -> tf32 (1+10 significant bits, f32's exponent range), RNE, in float64: the
    quotient by the ulp is exact, np.round is half-to-even, 2^128 overflows to inf."""
    with np.errstate(invalid="ignore"):
        x64 = x.astype(np.float64)
    _, e = np.frexp(x64)
    ulp = np.ldexp(1.0, np.maximum(e, -125) - 11)  # tf32 subnormals share f32's min exponent
    with np.errstate(invalid="ignore", over="ignore"):
        r = np.where(np.isfinite(x64), np.round(x64 / ulp) * ulp, x64)
        return r.astype(np.float32)


def cast(x: np.ndarray, dst: str, saturate: bool = False) -> np.ndarray:
    """What nt.cast computes: x (any float dtype) to `dst`, RNE; saturating fp8 clamps finite
    overflow and +-inf to +-240 and keeps NaN. Result in dst's numpy dtype."""
    with np.errstate(all="ignore"):
        v = np.asarray(x).astype(np.float32)  # exact: every source type is at most f32
        if dst == "f32":
            return v
        if dst == "tf32":
            return tf32_rne(v)
        if saturate and dst == "f8E4M3":
            v = np.where(np.isnan(v), v, np.minimum(np.maximum(v, -240.0), 240.0)).astype(
                np.float32
            )
        return v.astype(NP[dst])


def diff_count(a, b) -> int:
    na, nb = np.isnan(a.astype(np.float32)), np.isnan(b.astype(np.float32))
    ua = np.ascontiguousarray(a).view(f"u{a.dtype.itemsize}")
    ub = np.ascontiguousarray(b).view(f"u{b.dtype.itemsize}")
    return int(np.count_nonzero((na != nb) | (~na & ~nb & (ua != ub))))


def ieee_max(a, b):
    """IEEE 754-2019 maximum: NaN propagates, -0 < +0."""
    r = np.where(a > b, a, b)
    r = np.where((a == b) & np.signbit(b), a, r)  # equal zeros: +0 wins over -0
    return np.where(np.isnan(a) | np.isnan(b), np.float32("nan"), r).astype(a.dtype)


def ieee_min(a, b):
    r = np.where(a < b, a, b)
    r = np.where((a == b) & ~np.signbit(b), a, r)  # equal zeros: -0 wins over +0
    return np.where(np.isnan(a) | np.isnan(b), np.float32("nan"), r).astype(a.dtype)


def f32_specials() -> np.ndarray:
    fi = np.finfo(np.float32)
    vals = [0.0, -0.0, fi.smallest_subnormal, -fi.smallest_subnormal, fi.smallest_normal,
            fi.smallest_normal * (1 - 2**-23), 1e-40, -3e-39, fi.max, -fi.max, np.inf, -np.inf,
            np.nan, 1.0, -1.0, 1 + 2**-8, 1 + 2**-8 + 2**-23, 1 + 3 * 2**-8, 1 + 2**-11,
            240.0, 247.99, 248.0, 248.01, 256.0, 2**-9, 2**-10, 2**-10 * 1.001, 2**-7,
            65504.0, 65519.99, 65520.0, 6e-8, 2.9e-8, 3.3895314e38, 3.3961776e38,
            2**-133, 2**-136, 2**-137, 1e-45]  # fmt: skip
    v = np.array(vals, dtype=np.float32)
    return np.concatenate([v, -v])


@functools.cache
def _f32_chunks() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(20240509)
    return (
        f32_specials(),
        *tuple(
            rng.integers(0, 2**32, CHUNK, dtype=np.uint64).astype(np.uint32).view(np.float32)
            for _ in range(N_RANDOM // CHUNK)
        ),
    )


@functools.cache
def _tf32_chunks() -> tuple[np.ndarray, ...]:
    return tuple(tf32_rne(c) for c in _f32_chunks())


def f32_domain():
    """Chunks of float32 values: the specials, then 10^7 uniformly random bit patterns
    (generated once per session: 40 MB)."""
    yield from _f32_chunks()


def domain(t: str):
    """Every value of t (bf16, f16, fp8), or chunks of float32 / tf32 values."""
    if t == "bf16":
        yield np.arange(2**16, dtype=np.uint16).view(BF16)
    elif t == "f16":
        yield np.arange(2**16, dtype=np.uint16).view(np.float16)
    elif t == "f8E4M3":
        yield np.arange(2**8, dtype=np.uint8).view(FP8)
    elif t == "f32":
        yield from f32_domain()
    else:  # tf32 values are the f32 values rounded to tf32
        yield from _tf32_chunks()


# ---------------------------------------------------------------------------------------------
# IR helpers


def parse(body: str, args: str, results: str, module_attrs: str = ""):
    attrs = f" attributes {{{module_attrs}}}" if module_attrs else ""
    text = (
        f"builtin.module{attrs} {{\n func.func @main({args}) -> ({results}) {{\n{body}\n }}\n}}\n"
    )
    m = parse_module(CTX, text, "t.mlir")
    verify_module(m)
    return m


def canonicalize(m):
    CanonicalizeCastsPass().apply(Context(), m)
    verify_module(m)
    return m


def casts(m) -> list[nt.CastOp]:
    return [op for op in m.walk() if isinstance(op, nt.CastOp)]


def sat_attr(s: bool) -> str:
    return " {saturate}" if s else ""


# ---------------------------------------------------------------------------------------------
# The oracle agrees with round_to (the definition of nt.cast) everywhere it is used


@pytest.mark.parametrize("src", SMALL)
def test_oracle_matches_round_to_exhaustively(src):
    for x in domain(src):
        for dst, sat in TARGETS:
            assert same_bits(cast(x, dst, sat), round_to(x, ELT[dst], sat)), (src, dst, sat)


def test_oracle_matches_round_to_on_f32():
    for x in itertools.islice(f32_domain(), 2):  # specials and 2*10^6 random patterns
        for dst, sat in TARGETS:
            assert same_bits(cast(x, dst, sat), round_to(x, ELT[dst], sat)), (dst, sat)


def test_oracle_hand_values():
    # Independent anchors for the oracle itself: ties to even, overflow, saturation.
    x = np.array([1 + 2**-8, 1 + 3 * 2**-8, 248.0, 247.0, 1e6, -np.inf, np.nan], np.float32)
    assert cast(x, "bf16")[:2].astype(np.float32).tolist() == [1.0, 1 + 2**-6]
    assert cast(x, "f8E4M3")[2:5].astype(np.float32).tolist() == [np.inf, 240.0, np.inf]
    s = cast(x, "f8E4M3", True).astype(np.float32)
    assert s[2:6].tolist() == [240.0, 240.0, 240.0, -240.0] and np.isnan(s[6])
    assert tf32_rne(np.array([1 + 2**-11, 1 + 3 * 2**-11], np.float32)).tolist() == [1.0, 1 + 2**-9]


# ---------------------------------------------------------------------------------------------
# R1 identity, and which casts are exact (the `represents` table R2/R6 rely on)


@pytest.mark.parametrize("t", TYPES)
def test_r1_identity_cast_is_exact(t):
    for x in domain(t):
        assert same_bits(cast(x, t), x.astype(NP[t]))
    m = canonicalize(
        parse(
            f"  %0 = nt.cast %x : tensor<4x{t}> to tensor<4x{t}>\n  func.return %0 : tensor<4x{t}>",
            f"%x: tensor<4x{t}>",
            f"tensor<4x{t}>",
        )
    )
    assert casts(m) == []


def test_r1_saturating_fp8_identity_is_not_exact_and_is_kept():
    x = np.arange(256, dtype=np.uint8).view(FP8)
    assert diff_count(cast(x, "f8E4M3", True), x) == 2  # exactly +-inf change
    m = canonicalize(
        parse(
            "  %0 = nt.cast %x {saturate} : tensor<4xf8E4M3> to tensor<4xf8E4M3>\n"
            "  func.return %0 : tensor<4xf8E4M3>",
            "%x: tensor<4xf8E4M3>",
            "tensor<4xf8E4M3>",
        )
    )
    assert len(casts(m)) == 1


@functools.cache
def exact_pairs() -> frozenset:
    """(A, B) such that A -> B -> A is the identity on every value of A, found by the oracle."""
    out = set()
    for a, b in itertools.product(TYPES, TYPES):
        chunks = domain(a) if a in SMALL else itertools.islice(domain(a), 2)
        if all(same_bits(cast(cast(x, b), a), x.astype(NP[a])) for x in chunks):
            out.add((a, b))
    return frozenset(out)


def test_represents_table_matches_the_oracle():
    # R2 and R6 fire on cast_rules.represents: it must say "exact" exactly where the oracle does.
    found = exact_pairs()
    for a, b in itertools.product(TYPES, TYPES):
        assert R.represents(ELT[b], ELT[a]) == ((a, b) in found), (a, b)
    # Sanity: the expected widenings are there, the narrowing ones not.
    assert ("bf16", "f32") in found and ("f8E4M3", "f16") in found and ("f16", "bf16") not in found


# ---------------------------------------------------------------------------------------------
# R2 chains


@pytest.mark.parametrize("a", TYPES)
def test_r2_trunc_ext_is_identity(a):
    for b in TYPES:
        if (a, b) not in exact_pairs() or a == b:
            continue
        for x in domain(a):
            assert same_bits(cast(cast(x, b), a), x.astype(NP[a])), (a, b)


@pytest.mark.parametrize("a", TYPES)
def test_r2_chain_with_exact_first_cast_rounds_once(a):
    # A -> B (exact) -> C == A -> C for every C, with and without saturation.
    for x in domain(a):
        for b in TYPES:
            if (a, b) not in exact_pairs():
                continue
            wide = cast(x, b)
            for c, sat in TARGETS:
                assert same_bits(cast(wide, c, sat), cast(x, c, sat)), (a, b, c, sat)


@pytest.mark.parametrize(
    "a,b", [(a, b) for a in TYPES for b in TYPES if a != b and R.represents(ELT[b], ELT[a])]
)
def test_r2_pass_merges_chains(a, b):
    # The pass turns every such chain into one cast A -> C with the outer saturate flag (none
    # when that is an identity), and the merged IR computes what the oracle says on exhaustive
    # (or specials + random) input.
    for c, sat in TARGETS:
        body = (
            f"  %0 = nt.cast %x : tensor<N x{a}> to tensor<N x{b}>\n"
            f"  %1 = nt.cast %0{sat_attr(sat)} : tensor<N x{b}> to tensor<N x{c}>\n"
            f"  func.return %1 : tensor<N x{c}>"
        )
        x = next(domain(a)) if a in SMALL else np.concatenate(list(itertools.islice(domain(a), 1)))
        n = x.size
        m = canonicalize(
            parse(body.replace("N x", f"{n}x"), f"%x: tensor<{n}x{a}>", f"tensor<{n}x{c}>")
        )
        cs = casts(m)
        if c == a and not (sat and c == "f8E4M3"):
            assert cs == []
        else:
            assert len(cs) == 1 and cs[0].input.type.element_type == ELT[a]
            assert R.effective_saturate(cs[0]) == sat
        out = run_module(m, {"arg0": x.astype(np.float32)})["out0"]
        assert same_bits(out, cast(x, c, sat)), (a, b, c, sat)


# ---------------------------------------------------------------------------------------------
# Forbidden folds change values, and the pass does not apply them


def test_forbidden_ext_trunc_changes_values_and_stays():
    x = np.concatenate(list(itertools.islice(f32_domain(), 2)))
    assert diff_count(cast(cast(x, "bf16"), "f32"), x) > x.size // 2
    m = canonicalize(
        parse(
            "  %0 = nt.cast %x : tensor<4xf32> to tensor<4xbf16>\n"
            "  %1 = nt.cast %0 : tensor<4xbf16> to tensor<4xf32>\n"
            "  func.return %1 : tensor<4xf32>",
            "%x: tensor<4xf32>",
            "tensor<4xf32>",
        )
    )
    assert [(c.input.type.element_type, c.result.type.element_type) for c in casts(m)] == [
        (ELT["f32"], ELT["bf16"]),
        (ELT["bf16"], ELT["f32"]),
    ]


@pytest.mark.parametrize(
    "mid,sat", [("bf16", False), ("bf16", True), ("f16", True), ("tf32", False)]
)
def test_forbidden_double_rounding_changes_values_and_stays(mid, sat):
    x = np.concatenate(list(itertools.islice(f32_domain(), 2)))
    assert diff_count(cast(cast(x, mid), "f8E4M3", sat), cast(x, "f8E4M3", sat)) > 0
    m = canonicalize(
        parse(
            f"  %0 = nt.cast %x : tensor<4xf32> to tensor<4x{mid}>\n"
            f"  %1 = nt.cast %0{sat_attr(sat)} : tensor<4x{mid}> to tensor<4xf8E4M3>\n"
            "  func.return %1 : tensor<4xf8E4M3>",
            "%x: tensor<4xf32>",
            "tensor<4xf8E4M3>",
        )
    )
    assert len(casts(m)) == 2


def test_forbidden_trunc_into_arithmetic_changes_values_and_stays():
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((2, 10**6)).astype(np.float32)
    lhs = cast(a + b, "bf16")
    rhs = cast(cast(a, "bf16").astype(np.float32) + cast(b, "bf16").astype(np.float32), "bf16")
    assert diff_count(lhs, rhs) > 0
    m = canonicalize(
        parse(
            "  %s = nt.add %a, %b : tensor<4xf32>\n"
            "  %0 = nt.cast %s : tensor<4xf32> to tensor<4xbf16>\n"
            "  func.return %0 : tensor<4xbf16>",
            "%a: tensor<4xf32>, %b: tensor<4xf32>",
            "tensor<4xbf16>",
        )
    )
    add = [op for op in m.walk() if isinstance(op, nt.AddOp)]
    assert len(casts(m)) == 1 and add[0].result.type.element_type == ELT["f32"]


# ---------------------------------------------------------------------------------------------
# R3 constant folding


def test_r3_constant_folding_rounds_like_the_cast():
    vals = np.concatenate(
        [f32_specials(), np.random.default_rng(3).standard_normal(64).astype(np.float32) * 300]
    )
    lines, results = [], []
    for i, (dst, sat) in enumerate(TARGETS):
        lines.append(
            f"  %c{i} = nt.cast %k{sat_attr(sat)} : tensor<{vals.size}xf32> to tensor<{vals.size}x{dst}>"
        )
        results.append((f"%c{i}", f"tensor<{vals.size}x{dst}>"))
    elems = ", ".join(f"0x{v:08X}" for v in vals.view(np.uint32))
    body = (
        f"  %k = nt.constant [{elems}] : tensor<{vals.size}xf32>\n"
        + "\n".join(lines)
        + "\n  func.return "
        + ", ".join(r for r, _ in results)
        + " : "
        + ", ".join(t for _, t in results)
    )
    m = parse(body, "", ", ".join(t for _, t in results))
    assert np.array_equal(
        next(c for c in m.walk() if isinstance(c, nt.ConstantOp)).to_array().view(np.uint32),
        vals.view(np.uint32),
    )  # the hex elements parsed to these exact bits
    m = canonicalize(m)
    assert casts(m) == []
    ret = next(op for op in m.walk() if op.name == "func.return")
    for v, (dst, sat) in zip(ret.operands, TARGETS):
        assert isinstance(v.owner, nt.ConstantOp)
        assert same_bits(v.owner.to_array(), cast(vals, dst, sat)), (dst, sat)
    # No dead constant is left behind (the f32 one survives as the identity cast's result).
    assert all(op.result.uses for op in m.walk() if isinstance(op, nt.ConstantOp))


# ---------------------------------------------------------------------------------------------
# R4 weight folding


def test_r4_weight_fold_equals_the_cast(tmp_path):
    # Weights stored as float32 (as the importer stores them): a loader of the retyped weight
    # must give exactly what loading f32 and casting gives.
    vals = np.concatenate(
        [f32_specials(), np.random.default_rng(4).standard_normal(1000).astype(np.float32) * 500]
    )
    n = vals.size
    np.savez(tmp_path / "w.npz", **{f"w{i}": vals for i in range(len(TARGETS))})
    lines, rets, tys = [], [], []
    for i, (dst, sat) in enumerate(TARGETS):
        lines.append(f"  %w{i} = nt.weight @w{i} : tensor<{n}xf32>")
        lines.append(
            f"  %c{i} = nt.cast %w{i}{sat_attr(sat)} : tensor<{n}xf32> to tensor<{n}x{dst}>"
        )
        rets.append(f"%c{i}")
        tys.append(f"tensor<{n}x{dst}>")
    body = "\n".join(lines) + f"\n  func.return {', '.join(rets)} : {', '.join(tys)}"
    m = canonicalize(parse(body, "", ", ".join(tys), 'nt.weights = "w.npz"'))
    # Everything folds except the non-saturating fp8 cast (loaders saturate fp8 weights).
    left = casts(m)
    assert [(c.result.type.element_type, R.effective_saturate(c)) for c in left] == [
        (ELT["f8E4M3"], False)
    ]
    out = run_module(m, {}, base_dir=tmp_path)
    for i, (dst, sat) in enumerate(TARGETS):
        assert same_bits(out[f"out{i}"], cast(vals, dst, sat)), (dst, sat)


def test_r4_weight_with_two_uses_is_not_retyped():
    m = canonicalize(
        parse(
            "  %w = nt.weight @w : tensor<4xf32>\n"
            "  %0 = nt.cast %w : tensor<4xf32> to tensor<4xbf16>\n"
            "  func.return %0, %w : tensor<4xbf16>, tensor<4xf32>",
            "",
            "tensor<4xbf16>, tensor<4xf32>",
            'nt.weights = "w.npz"',
        )
    )
    (w,) = [op for op in m.walk() if isinstance(op, nt.WeightOp)]
    assert w.result.type.element_type == f32 and len(casts(m)) == 1


# ---------------------------------------------------------------------------------------------
# R5 CSE


def test_r5_duplicate_casts_merge_only_with_the_same_flag():
    m = canonicalize(
        parse(
            "  %0 = nt.cast %x : tensor<4xf32> to tensor<4xbf16>\n"
            "  %1 = nt.cast %x : tensor<4xf32> to tensor<4xbf16>\n"
            "  %2 = nt.cast %x {saturate} : tensor<4xf32> to tensor<4xf8E4M3>\n"
            "  %3 = nt.cast %x : tensor<4xf32> to tensor<4xf8E4M3>\n"
            "  func.return %0, %1, %2, %3 : tensor<4xbf16>, tensor<4xbf16>, tensor<4xf8E4M3>, tensor<4xf8E4M3>",
            "%x: tensor<4xf32>",
            "tensor<4xbf16>, tensor<4xbf16>, tensor<4xf8E4M3>, tensor<4xf8E4M3>",
        )
    )
    ret = next(op for op in m.walk() if op.name == "func.return")
    assert len(casts(m)) == 3 and ret.operands[0] is ret.operands[1]
    assert ret.operands[2] is not ret.operands[3]  # saturating vs not: different values on overflow


# ---------------------------------------------------------------------------------------------
# R6: MOVE ops commute with rounding (the math), exhaustively / on 10^7 f32


def relu(x):
    return ieee_max(x, np.zeros_like(x))


UNARY = {
    "relu": relu,
    "neg": np.negative,
    "abs": np.abs,
    # Bounds exact in every type here (the pass requires exact attributes).
    "clip": lambda x: ieee_min(ieee_max(x, np.full_like(x, -2.0)), np.full_like(x, 0.5)),
    "clip_zero": lambda x: ieee_min(ieee_max(x, np.full_like(x, -0.0)), np.full_like(x, 0.0)),
}


@pytest.mark.parametrize("a", TYPES)
def test_r6_unary_move_ops_commute_with_rounding(a):
    # round_C(f(x)) == f(round_C(x)) for x in A: f computed in f32 on A's values (exact for
    # these ops), then one rounding, against rounding first.
    for x in domain(a):
        x32 = x.astype(np.float32)
        fx = {name: f(x32) for name, f in UNARY.items()}
        for c, sat in TARGETS:
            if (a, c) in exact_pairs() and not sat:
                continue  # a widening cast: nothing to commute
            rc = cast(x32, c, sat).astype(np.float32)
            for name, f in UNARY.items():
                # f maps values of C to values of C, so astype here rounds nothing.
                assert same_bits(cast(fx[name], c, sat), f(rc).astype(NP[c])), (a, c, sat, name)


def _pair_domain(a):
    """(x, y) pairs: all fp8 pairs; for bf16/f16 every value against specials and randoms;
    for f32/tf32 random pairs."""
    if a == "f8E4M3":
        v = next(domain(a)).astype(np.float32)
        yield np.repeat(v, v.size), np.tile(v, v.size)
    elif a in SMALL:
        v = next(domain(a)).astype(np.float32)
        ys = np.concatenate(
            [
                cast(f32_specials(), a).astype(np.float32),
                v[np.random.default_rng(5).integers(0, v.size, 16)],
            ]
        )
        yield np.repeat(v, ys.size), np.tile(ys, v.size)
    else:
        chunks = list(itertools.islice(domain(a), 3))
        yield chunks[0], chunks[0][::-1].copy()
        yield chunks[1], chunks[2]


@pytest.mark.parametrize("a", TYPES)
def test_r6_max_min_commute_with_rounding(a):
    for x, y in _pair_domain(a):
        for c, sat in TARGETS:
            if (a, c) in exact_pairs() and not sat:
                continue
            rx, ry = cast(x, c, sat).astype(np.float32), cast(y, c, sat).astype(np.float32)
            for f in (ieee_max, ieee_min):
                assert same_bits(cast(f(x, y), c, sat), f(rx, ry).astype(NP[c])), (
                    a,
                    c,
                    sat,
                    f.__name__,
                )


def test_r6_needs_ieee_zero_order():
    # Why max/min must order -0 < +0: with np.maximum's f16 zero sign, relu(trunc x) and
    # trunc(relu x) differ at x = -1e-9 (f32 -> f16); with IEEE maximum they agree.
    x = np.array([-1e-9], np.float32)
    assert np.signbit(np.maximum(cast(x, "f16"), np.float16(0)))[0]
    assert same_bits(cast(relu(x), "f16"), cast(relu(cast(x, "f16").astype(np.float32)), "f16"))


# ---------------------------------------------------------------------------------------------
# R6 in the pass: cast(m(cast(x: A -> f32)) -> C) becomes m(cast(x: A -> C)), same bits


MOVE_OPS = {
    # name: (op text with %0 as input and X/Y as the element type, result shape, oracle)
    "relu": ("nt.relu %0 : tensor<256x256xY>", (256, 256), relu),
    "neg": ("nt.neg %0 : tensor<256x256xY>", (256, 256), np.negative),
    "abs": ("nt.abs %0 : tensor<256x256xY>", (256, 256), np.abs),
    "clip": (
        "nt.clip %0 {min = -2.0 : f64, max = 0.5 : f64} : tensor<256x256xY>",
        (256, 256),
        UNARY["clip"],
    ),
    "reduce_max": (
        "nt.reduce_max %0 {axes = array<i64: 1>} : (tensor<256x256xY>) -> tensor<256xY>",
        (256,),
        lambda x: functools.reduce(ieee_max, [x[:, j] for j in range(x.shape[1])]),
    ),
    "transpose": (
        "nt.transpose %0 {perm = array<i64: 1, 0>} : (tensor<256x256xY>) -> tensor<256x256xY>",
        (256, 256),
        lambda x: x.T,
    ),
    "reshape": (
        "nt.reshape %0 : (tensor<256x256xY>) -> tensor<65536xY>",
        (65536,),
        lambda x: x.reshape(-1),
    ),
    "slice": (
        "nt.slice %0 {starts = array<i64: 1, 0>, limits = array<i64: 256, 256>, strides = array<i64: 2, 3>}"
        " : (tensor<256x256xY>) -> tensor<128x86xY>",
        (128, 86),
        lambda x: x[1::2, ::3],
    ),
    "broadcast": (
        "nt.broadcast %0 : (tensor<256x256xY>) -> tensor<2x256x256xY>",
        (2, 256, 256),
        lambda x: np.broadcast_to(x, (2, 256, 256)),
    ),
    "pad": (
        'nt.pad %0 {pads = array<i64: 1, 0, 0, 2>, mode = "constant", value = -1.5 : f64}'
        " : (tensor<256x256xY>) -> tensor<257x258xY>",
        (257, 258),
        lambda x: np.pad(x, ((1, 0), (0, 2)), constant_values=-1.5),
    ),
}


def _fp8_tiled() -> np.ndarray:
    return np.tile(next(domain("f8E4M3")), 256)


@pytest.mark.parametrize("a", SMALL)
@pytest.mark.parametrize("op", sorted(MOVE_OPS))
def test_r6_pass_moves_casts_and_keeps_bits(a, op):
    text, shape, f = MOVE_OPS[op]
    x = next(domain(a)) if a != "f8E4M3" else _fp8_tiled()
    x = np.random.default_rng(6).permutation(x).reshape(256, 256)  # mixes every value in rows
    rshape = "x".join(map(str, shape))
    for c, sat in TARGETS:
        if c in ("f32", "tf32"):
            continue  # f32 -> f32/tf32 round nothing or commute trivially; covered above
        body = (
            f"  %0 = nt.cast %x : tensor<256x256x{a}> to tensor<256x256xf32>\n"
            f"  %1 = {text.replace('Y', 'f32')}\n"
            f"  %2 = nt.cast %1{sat_attr(sat)} : tensor<{rshape}xf32> to tensor<{rshape}x{c}>\n"
            f"  func.return %2 : tensor<{rshape}x{c}>"
        )
        m = parse(body, f"%x: tensor<256x256x{a}>", f"tensor<{rshape}x{c}>")
        before = run_module(m, {"arg0": x.astype(np.float32)})["out0"]
        m = canonicalize(m)
        cs = casts(m)
        # One cast left (A -> C, or none when C == A), and the move op now works in C.
        assert len(cs) == (0 if (c == a and not sat) else 1), (op, a, c, sat)
        moved = [o for o in m.walk() if o.name == f"nt.{op}"]
        assert moved and moved[0].results[0].type.element_type == ELT[c]
        after = run_module(m, {"arg0": x.astype(np.float32)})["out0"]
        want = cast(f(x.astype(np.float32)), c, sat)  # the oracle: compute exactly, round once
        assert same_bits(before, want), (op, a, c, sat)
        assert same_bits(after, want), (op, a, c, sat)


def test_r6_does_not_move_across_non_move_ops():
    # exp is FP32-class: moving a cast across it would round its input: must stay.
    m = canonicalize(
        parse(
            "  %0 = nt.cast %x : tensor<4xbf16> to tensor<4xf32>\n"
            "  %1 = nt.exp %0 : tensor<4xf32>\n"
            "  %2 = nt.cast %1 : tensor<4xf32> to tensor<4xbf16>\n"
            "  func.return %2 : tensor<4xbf16>",
            "%x: tensor<4xbf16>",
            "tensor<4xbf16>",
        )
    )
    assert len(casts(m)) == 2

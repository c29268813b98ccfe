"""Convolutions (dense, grouped, depthwise on each engine), pools and pads lowered to nisa and
simulated against the reference interpreter (docs/design.md tolerances: 1e-5 rel L2 without
auto-cast), at sizes that need several bands of output rows, channel blocks and queue-split
copies; and a contraction whose weights stream in N blocks beside a wide K."""

from __future__ import annotations

import math
import tempfile

import numpy as np
import pytest
from testlib import NONE_TOL, rel_l2

from neuron_opt.cli.common import make_context
from neuron_opt.dialects.parse import parse_module
from neuron_opt.lowering import conv as conv_lowering
from neuron_opt.lowering.lower_to_nisa import lower_module
from neuron_opt.runtime.reference import Reference
from neuron_opt.runtime.sim import simulate


def _ty(shape, elt="f32") -> str:
    return "tensor<" + "x".join(map(str, shape)) + f"x{elt}>"


def _check(
    body: str,
    args: list[tuple[str, tuple, str]],
    out: tuple,
    out_elt: str = "f32",
    exact: bool = False,
    positive: tuple[str, ...] = (),
):
    """Lower and simulate `body` (computing %y), compare with the interpreter; returns the
    simulation result. Inputs are standard normal (their magnitude for the `positive` ones)."""
    rng = np.random.default_rng(len(body))
    sig = ", ".join(f'%{n}: {_ty(s, e)} {{nt.name = "{n}"}}' for n, s, e in args)
    text = (
        f'builtin.module {{\n  func.func @main({sig}) -> ({_ty(out, out_elt)} {{nt.name = "y"}}) {{\n'
        f"{body}\n    func.return %y : {_ty(out, out_elt)}\n  }}\n}}\n"
    )
    mod = parse_module(make_context(), text, "t.mlir")
    inputs = {n: rng.standard_normal(s).astype(np.float32) for n, s, _ in args}
    inputs.update({n: np.abs(inputs[n]) + np.float32(0.1) for n in positive})
    with tempfile.TemporaryDirectory() as d:
        ref = Reference(mod, d).run(inputs)["y"]
        r = simulate(lower_module(mod), inputs, d)  # checks every placement rule of docs/nisa.md
    sim = r.outputs["y"]
    assert sim.shape == ref.shape
    if exact:
        assert np.array_equal(
            np.asarray(sim, np.float32).view(np.uint32), np.asarray(ref, np.float32).view(np.uint32)
        )
    else:
        assert rel_l2(sim, ref) <= NONE_TOL
    return r


def _conv(n, c, h, w, co, k, stride=1, pad=0, groups=1, dil=1, bias=False, elt="f32"):
    ho = (h + 2 * pad - dil * (k - 1) - 1) // stride + 1
    wo = (w + 2 * pad - dil * (k - 1) - 1) // stride + 1
    args = [("x", (n, c, h, w), elt), ("w", (co, c // groups, k, k), elt)] + (
        [("b", (co,), elt)] if bias else []
    )
    ops = ", ".join(f"%{a}" for a, _, _ in args)
    tys = ", ".join(_ty(s, e) for _, s, e in args)
    out = (n, co, ho, wo)
    body = (
        f"    %y = nt.conv {ops} {{strides = array<i64: {stride}, {stride}>, pads = array<i64: {pad}, {pad}, "
        f"{pad}, {pad}>, dilations = array<i64: {dil}, {dil}>, groups = {groups} : i64}} : ({tys}) -> {_ty(out)}"
    )
    return _check(body, args, out)


@pytest.mark.parametrize(
    "case",
    [
        dict(n=1, c=3, h=8, w=8, co=4, k=3),  # taps packed into one K tile (im2col)
        dict(n=2, c=8, h=10, w=9, co=6, k=3, stride=2, pad=1, bias=True),
        dict(n=1, c=40, h=9, w=9, co=20, k=3, pad=1),  # one tap per K tile, strided views
        dict(n=1, c=130, h=7, w=7, co=140, k=3, pad=1, bias=True),  # channel blocks on both sides
        dict(n=1, c=16, h=5, w=600, co=8, k=3, pad=1, dil=2),  # output rows wider than a PSUM bank
        dict(n=1, c=3, h=64, w=64, co=16, k=7, stride=2, pad=3),  # stem-like: taps over two K tiles
        dict(n=1, c=8, h=8, w=8, co=8, k=3, pad=1, groups=2),  # groups of 4 channels, one by one
        dict(n=1, c=8, h=8, w=8, co=16, k=3, pad=1, groups=8, bias=True),  # depthwise, multiplier 2
        dict(
            n=2, c=150, h=12, w=12, co=150, k=5, stride=2, pad=2, groups=150, bias=True
        ),  # depthwise blocks
        dict(n=1, c=32, h=28, w=28, co=32, k=3, pad=1, elt="bf16"),
    ],
    ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()),
)
def test_conv_against_interpreter(case):
    _conv(**case)


@pytest.mark.parametrize("engine", ["tensor", "vector"])
def test_depthwise_on_each_engine(engine, monkeypatch):
    monkeypatch.setattr(conv_lowering, "DEPTHWISE_ENGINE", engine)
    r = _conv(1, 24, 70, 70, 24, 3, pad=1, groups=24, bias=True)  # two bands of output rows
    busy = {e: r.utilization(e) for e in ("tensor", "vector")}
    assert (
        busy["tensor" if engine == "tensor" else "vector"]
        > busy["vector" if engine == "tensor" else "tensor"]
    )


def test_conv_band_of_a_large_image():
    """A 112 x 112 image in several bands of output rows (the band tile holds 48 KiB)."""
    _conv(1, 64, 112, 112, 8, 3, pad=1)


@pytest.mark.parametrize(
    "case",
    [
        dict(c=80, l=3000, co=48, k=3, pad=1),  # Whisper's front end: rows wider than a PSUM bank
        dict(c=48, l=301, co=48, k=3, stride=2, pad=1, bias=True),
        dict(c=16, l=64, co=16, k=5, pad=2, groups=16),  # depthwise 1-D
    ],
)
def test_conv1d_against_interpreter(case):
    c, l, co, k = case["c"], case["l"], case["co"], case["k"]
    s, p, g = case.get("stride", 1), case.get("pad", 0), case.get("groups", 1)
    lo = (l + 2 * p - k) // s + 1
    args = [("x", (1, c, l), "f32"), ("w", (co, c // g, k), "f32")] + (
        [("b", (co,), "f32")] if case.get("bias") else []
    )
    ops = ", ".join(f"%{a}" for a, _, _ in args)
    tys = ", ".join(_ty(sh, e) for _, sh, e in args)
    body = (
        f"    %y = nt.conv {ops} {{strides = array<i64: {s}>, pads = array<i64: {p}, {p}>, "
        f"dilations = array<i64: 1>, groups = {g} : i64}} : ({tys}) -> {_ty((1, co, lo))}"
    )
    _check(body, args, (1, co, lo))


@pytest.mark.parametrize(
    "kind,extra", [("max_pool", ""), ("avg_pool", ""), ("avg_pool", ", count_include_pad")]
)
def test_pool1d_against_interpreter(kind, extra):
    body = (
        f"    %y = nt.{kind} %x {{kernel = array<i64: 3>, strides = array<i64: 2>, pads = array<i64: 1, 1>{extra}}}"
        f" : ({_ty((2, 70, 33))}) -> {_ty((2, 70, 17))}"
    )
    _check(body, [("x", (2, 70, 33), "f32")], (2, 70, 17), exact=kind == "max_pool")


def _pool(kind, shape, k, s, p, extra=(), dil=1):
    n, c, h, w = shape
    f = math.ceil if "ceil_mode" in extra else math.floor
    ho = int(f((h + 2 * p - dil * (k - 1) - 1) / s)) + 1
    wo = int(f((w + 2 * p - dil * (k - 1) - 1) / s)) + 1
    attrs = "".join(f", {e}" for e in extra) + (
        f", dilations = array<i64: {dil}, {dil}>" if dil != 1 else ""
    )
    out = (n, c, ho, wo)
    body = (
        f"    %y = nt.{kind} %x {{kernel = array<i64: {k}, {k}>, strides = array<i64: {s}, {s}>, "
        f"pads = array<i64: {p}, {p}, {p}, {p}>{attrs}}} : ({_ty(shape)}) -> {_ty(out)}"
    )
    return _check(body, [("x", shape, "f32")], out, exact=kind == "max_pool")


@pytest.mark.parametrize(
    "kind,shape,k,s,p,extra,dil",
    [
        (
            "max_pool",
            (1, 16, 230, 230),
            3,
            2,
            1,
            (),
            1,
        ),  # several bands (the padded image is 207 KiB)
        ("max_pool", (1, 8, 11, 11), 3, 2, 1, ("ceil_mode",), 1),
        ("max_pool", (2, 70, 9, 9), 3, 1, 2, (), 2),
        ("avg_pool", (2, 70, 20, 20), 3, 1, 1, (), 1),  # partial windows: a per-position count map
        (
            "avg_pool",
            (1, 8, 11, 11),
            3,
            2,
            1,
            ("count_include_pad", "ceil_mode"),
            1,
        ),  # the overhang never counts
        ("avg_pool", (1, 8, 12, 12), 2, 2, 0, ("count_include_pad",), 1),
        ("avg_pool", (1, 200, 7, 7), 7, 1, 0, (), 1),  # global
    ],
)
def test_pool_against_interpreter(kind, shape, k, s, p, extra, dil):
    _pool(kind, shape, k, s, p, extra, dil)


@pytest.mark.parametrize(
    "shape,pads,value,elt",
    [
        ((1, 64, 56, 56), [0, 0, 1, 1, 0, 0, 1, 1], 0.0, "f32"),  # 215296 elements
        (
            (1, 3, 30, 3000),
            [0, 0, -1, 2, 0, 1, 3, -5],
            -1.5,
            "f32",
        ),  # crops, fills longer than a tile
        ((5000,), [3, 7], 2.0, "f32"),
        ((4, 6), [-4, 0, 2, 0], 1.0, "f32"),  # everything cropped: all fill
        ((1, 1, 134, 134), [0, 0, 1, 1, 0, 0, 1, 1], 0.25, "bf16"),
    ],
)
def test_pad_against_interpreter(shape, pads, value, elt):
    r = len(shape)
    out = tuple(d + pads[i] + pads[r + i] for i, d in enumerate(shape))
    body = (
        f'    %y = nt.pad %x {{pads = array<i64: {", ".join(map(str, pads))}>, mode = "constant", '
        f"value = {value} : f64}} : ({_ty(shape, elt)}) -> {_ty(out, elt)}"
    )
    _check(body, [("x", shape, elt)], out, elt, exact=True)


@pytest.mark.parametrize(
    "kind,shape,k,s,pads,extra",
    [
        ("max_pool", (1, 3, 6, 9, 9), (3, 3, 3), (2, 2, 2), (1, 1, 1, 1, 1, 1), ""),
        (
            "max_pool",
            (2, 70, 5, 8, 8),
            (2, 3, 3),
            (1, 2, 1),
            (0, 1, 0, 1, 1, 2),
            ", dilations = array<i64: 2, 1, 2>",
        ),
        (
            "avg_pool",
            (1, 4, 7, 6, 6),
            (3, 2, 2),
            (2, 1, 2),
            (1, 0, 1, 1, 1, 0),
            "",
        ),  # partial windows
        (
            "avg_pool",
            (1, 4, 7, 6, 6),
            (3, 2, 2),
            (2, 1, 2),
            (1, 0, 1, 1, 1, 0),
            ", count_include_pad",
        ),
        (
            "avg_pool",
            (1, 2, 5, 5, 5),
            (2, 2, 2),
            (2, 2, 2),
            (0, 0, 0, 0, 0, 0),
            ", ceil_mode",
        ),  # the overhang never counts
    ],
)
def test_pool3d_against_interpreter(kind, shape, k, s, pads, extra):
    dil = (
        [int(x) for x in extra.split("<i64: ")[1].rstrip(">").split(", ")]
        if "dilations" in extra
        else [1] * 3
    )
    f = math.ceil if "ceil_mode" in extra else math.floor
    out = shape[:2] + tuple(
        int(f((d + pads[i] + pads[3 + i] - dil[i] * (k[i] - 1) - 1) / s[i])) + 1
        for i, d in enumerate(shape[2:])
    )
    arr = lambda v: ", ".join(map(str, v))  # noqa: E731
    body = (
        f"    %y = nt.{kind} %x {{kernel = array<i64: {arr(k)}>, strides = array<i64: {arr(s)}>, "
        f"pads = array<i64: {arr(pads)}>{extra}}} : ({_ty(shape)}) -> {_ty(out)}"
    )
    _check(body, [("x", shape, "f32")], out, exact=kind == "max_pool")


@pytest.mark.parametrize("mode", ["edge", "reflect"])
@pytest.mark.parametrize(
    "shape,pads",
    [
        ((3, 4, 5), [1, 0, 2, 2, 3, 1]),  # every corner of the grown box
        (
            (2, 6, 7),
            [0, -1, 2, 1, 3, -2],
        ),  # crops beside growth: numpy grows from the uncropped input
        ((1, 64, 30, 30), [0, 0, 2, 2, 0, 0, 2, 2]),
    ],
)
def test_pad_edge_and_reflect_against_interpreter(mode, shape, pads):
    r = len(shape)
    out = tuple(d + pads[i] + pads[r + i] for i, d in enumerate(shape))
    body = (
        f'    %y = nt.pad %x {{pads = array<i64: {", ".join(map(str, pads))}>, mode = "{mode}"}} : '
        f"({_ty(shape)}) -> {_ty(out)}"
    )
    _check(body, [("x", shape, "f32")], out, exact=True)


def test_weights_stream_beside_a_wide_k():
    """K = 4096 in fp32: the A^T tiles of a row group take 64 KiB per partition, so B streams
    in 512-column blocks (it ran out of SBUF before)."""
    body = "    %y = nt.matmul %a, %b : (tensor<256x4096xf32>, tensor<4096x1024xf32>) -> tensor<256x1024xf32>"
    _check(body, [("a", (256, 4096), "f32"), ("b", (4096, 1024), "f32")], (256, 1024))


def test_depthwise_engine_choice():
    """The cost-model choice: TensorE for a large bf16 layer (3.3x faster simulated), VectorE
    for a 7x7 kernel over 7x7 fp32 outputs (ConvNeXt's last stage: 48 vs 57 us simulated)."""
    big = conv_lowering.Window(112, 112, 112, 112, 3, 3, 1, 1, 1, 1)
    small = conv_lowering.Window(7, 7, 7, 7, 7, 7, 1, 1, 3, 3)
    block = conv_lowering.Job(0, 128, 0, 128, diag=True)
    assert conv_lowering.depthwise_engine(big, block, 1, "bf16") == "tensor"
    assert conv_lowering.depthwise_engine(small, block, 1, "f32") == "vector"


def test_batch_norm_over_a_large_image():
    """112 x 112 positions per channel: the rows are normalized in column chunks (a whole row
    with its intermediates took 150 KiB per partition)."""
    s = (1, 64, 112, 112)
    ch = _ty((64,))
    body = (
        f"    %y = nt.batch_norm %x, %g, %b, %m, %v {{epsilon = 1.0e-05 : f64}} : ({_ty(s)}, {ch}, {ch}, {ch}, {ch})"
        f" -> {_ty(s)}"
    )
    _check(
        body,
        [
            ("x", s, "f32"),
            ("g", (64,), "f32"),
            ("b", (64,), "f32"),
            ("m", (64,), "f32"),
            ("v", (64,), "f32"),
        ],
        s,
        positive=("v",),
    )


@pytest.mark.parametrize(
    "c,groups,engine", [(3, 1, "auto"), (40, 1, "auto"), (16, 16, "tensor"), (16, 16, "vector")]
)
def test_saturating_fp8_cast_fused_into_conv(c, groups, engine, monkeypatch):
    """A saturating cast to fp8 of a conv's input is done by its loading DMAs (which round
    without saturating: overflow becomes inf) and a clamp of the loaded tiles to +-240: the
    result equals the interpreter's cast (values past 248 and infinities included)."""
    monkeypatch.setattr(conv_lowering, "DEPTHWISE_ENGINE", engine)
    co = c if groups > 1 else 8
    x_t, c8_t = _ty((1, c, 12, 12)), _ty((1, c, 12, 12), "f8E4M3")
    w_t, y_t = _ty((co, c // groups, 3, 3), "f8E4M3"), _ty((1, co, 12, 12))
    text = (
        f'builtin.module {{\n  func.func @main(%x: {x_t} {{nt.name = "x"}}, %w: {w_t} {{nt.name = "w"}}) '
        f'-> ({y_t} {{nt.name = "y"}}) {{\n'
        f"    %c = nt.cast %x {{saturate}} : {x_t} to {c8_t}\n"
        f"    %y = nt.conv %c, %w {{strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = "
        f"array<i64: 1, 1>, groups = {groups} : i64, acc = f32}} : ({c8_t}, {w_t}) -> {y_t}\n"
        f"    func.return %y : {y_t}\n  }}\n}}\n"
    )
    mod = parse_module(make_context(), text, "t.mlir")
    rng = np.random.default_rng(c + groups)
    x = (rng.standard_normal((1, c, 12, 12)) * 200).astype(np.float32)
    x.flat[::37] = np.inf
    x.flat[5::41] = -np.inf
    inputs = {"x": x, "w": rng.standard_normal((co, c // groups, 3, 3)).astype(np.float32)}
    kernel = lower_module(mod)
    assert not any(o.name == "nt.cast" for o in mod.walk() if "nisa.fused" not in o.attributes)
    with tempfile.TemporaryDirectory() as d:
        ref = Reference(mod, d).run(inputs)["y"]
        sim = simulate(kernel, inputs, d).outputs["y"]
    assert np.isfinite(ref).all() and rel_l2(sim, ref) <= NONE_TOL

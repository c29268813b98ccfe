"""Model-level checks of the cast pipeline on small nt models, for every auto-cast option:
canonicalize-casts (and preserve-io) change no output bit, as the reference interpreter
(runtime/reference.py, the oracle) computes them on random and special inputs; every pass is
idempotent and leaves a module that verifies; `--auto-cast=none` prints what no pass prints.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from testlib import same_bits
from xdsl.context import Context
from xdsl.dialects.builtin import Builtin
from xdsl.dialects.func import Func

from neuron_opt.dialects import nt
from neuron_opt.dialects.parse import parse_module, verify_module
from neuron_opt.dialects.types import round_to
from neuron_opt.options import CAST_TYPES, CASTING_MODES
from neuron_opt.passes.auto_cast import AutoCastPass
from neuron_opt.passes.canonicalize_casts import CanonicalizeCastsPass
from neuron_opt.passes.preserve_io import PreserveIOPass
from neuron_opt.runtime.reference import Reference

# Overflow to inf and NaN from inf - inf are the semantics under test, not accidents.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

CTX = Context()
for _d in (Builtin, Func, nt.NT):
    CTX.load_dialect(_d)

OPTIONS = [(m, t) for m in CASTING_MODES for t in CAST_TYPES]
RNG = np.random.default_rng(99)


def const(shape, scale=1.0, values=None) -> str:
    """An inline f32 constant, every element as its hex bit pattern (exact, incl. inf)."""
    a = (RNG.standard_normal(shape) * scale if values is None else np.asarray(values)).astype(
        np.float32
    )
    elems = ", ".join(f"0x{b:08X}" for b in a.reshape(-1).view(np.uint32))
    return f"nt.constant [{elems}] : tensor<{'x'.join(map(str, shape))}xf32>"


def mask(n) -> list[float]:
    # Causal mask: 0 on and below the diagonal, -inf above (what finfo.min masks become in bf16).
    return [0.0 if j <= i else -np.inf for i in range(n) for j in range(n)]


MODELS = {
    "mlp": f"""
func.func @main(%x: tensor<4x16xf32>) -> tensor<4x8xf32> {{
  %w1 = {const((32, 16), 0.25)}
  %b1 = {const((32,), 0.1)}
  %h = nt.linear %x, %w1, %b1 {{trans_b}} : (tensor<4x16xf32>, tensor<32x16xf32>, tensor<32xf32>) -> tensor<4x32xf32>
  %g = nt.gelu %h : tensor<4x32xf32>
  %s = {const((32,), 1.0)}
  %t = {const((32,), 0.5)}
  %n = nt.layer_norm %g, %s, %t {{axis = 1 : i64, epsilon = 1.0e-05 : f64}} : (tensor<4x32xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<4x32xf32>
  %w2 = {const((32, 8), 0.2)}
  %o = nt.matmul %n, %w2 : (tensor<4x32xf32>, tensor<32x8xf32>) -> tensor<4x8xf32>
  %r = nt.relu %o : tensor<4x8xf32>
  func.return %r : tensor<4x8xf32>
}}""",
    "attention": f"""
func.func @main(%q: tensor<2x4x8xf32>, %k: tensor<2x4x8xf32>, %v: tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {{
  %kt = nt.transpose %k {{perm = array<i64: 0, 2, 1>}} : (tensor<2x4x8xf32>) -> tensor<2x8x4xf32>
  %s = nt.batch_matmul %q, %kt : (tensor<2x4x8xf32>, tensor<2x8x4xf32>) -> tensor<2x4x4xf32>
  %c = {const((1,), values=[0.35355339])}
  %sc = nt.mul %s, %c : (tensor<2x4x4xf32>, tensor<1xf32>) -> tensor<2x4x4xf32>
  %m = {const((4, 4), values=mask(4))}
  %sm = nt.add %sc, %m : (tensor<2x4x4xf32>, tensor<4x4xf32>) -> tensor<2x4x4xf32>
  %p = nt.softmax %sm {{axis = -1 : i64}} : tensor<2x4x4xf32>
  %o = nt.batch_matmul %p, %v : (tensor<2x4x4xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
  func.return %o : tensor<2x4x8xf32>
}}""",
    "conv": f"""
func.func @main(%x: tensor<1x3x8x8xf32>) -> (tensor<1x10xf32>, tensor<1x4x3x3xf32>) {{
  %w = {const((4, 3, 3, 3), 0.3)}
  %b = {const((4,), 0.1)}
  %c = nt.conv %x, %w, %b {{strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64}} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>) -> tensor<1x4x8x8xf32>
  %bs = {const((4,), 1.0)}
  %bb = {const((4,), 0.1)}
  %bm = {const((4,), 0.1)}
  %bv = {const((4,), values=[1.0, 0.5, 2.0, 0.25])}
  %n = nt.batch_norm %c, %bs, %bb, %bm, %bv {{epsilon = 1.0e-05 : f64}} : (tensor<1x4x8x8xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x4x8x8xf32>
  %r = nt.relu %n : tensor<1x4x8x8xf32>
  %p = nt.max_pool %r {{kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>}} : (tensor<1x4x8x8xf32>) -> tensor<1x4x4x4xf32>
  %a = nt.avg_pool %r {{kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>}} : (tensor<1x4x8x8xf32>) -> tensor<1x4x3x3xf32>
  %f = nt.reshape %p : (tensor<1x4x4x4xf32>) -> tensor<1x64xf32>
  %fw = {const((10, 64), 0.1)}
  %o = nt.linear %f, %fw {{trans_b}} : (tensor<1x64xf32>, tensor<10x64xf32>) -> tensor<1x10xf32>
  func.return %o, %a : tensor<1x10xf32>, tensor<1x4x3x3xf32>
}}""",
    # User casts around data movement and monotone ops: the R2/R6 folds fire here.
    "casts": f"""
func.func @main(%x: tensor<4x6xf32>, %y: tensor<6x4xbf16>, %z: tensor<4x6xf8E4M3>) -> (tensor<4x4xf32>, tensor<24xf16>, tensor<6x4xbf16>, tensor<4x6xf8E4M3>) {{
  %a = nt.cast %x : tensor<4x6xf32> to tensor<4x6xbf16>
  %b = nt.cast %a : tensor<4x6xbf16> to tensor<4x6xf32>
  %t = nt.transpose %b {{perm = array<i64: 1, 0>}} : (tensor<4x6xf32>) -> tensor<6x4xf32>
  %tb = nt.cast %t : tensor<6x4xf32> to tensor<6x4xbf16>
  %ye = nt.cast %y : tensor<6x4xbf16> to tensor<6x4xf32>
  %yr = nt.relu %ye : tensor<6x4xf32>
  %yb = nt.cast %yr : tensor<6x4xf32> to tensor<6x4xbf16>
  %sum = nt.add %tb, %yb : tensor<6x4xbf16>
  %m = nt.matmul %x, %t : (tensor<4x6xf32>, tensor<6x4xf32>) -> tensor<4x4xf32>
  %ze = nt.cast %z : tensor<4x6xf8E4M3> to tensor<4x6xf32>
  %zr = nt.reshape %ze : (tensor<4x6xf32>) -> tensor<24xf32>
  %zn = nt.neg %zr : tensor<24xf32>
  %zh = nt.cast %zn : tensor<24xf32> to tensor<24xf16>
  %zc = nt.clip %ze {{min = -2.0 : f64, max = 2.0 : f64}} : tensor<4x6xf32>
  %z8 = nt.cast %zc {{saturate}} : tensor<4x6xf32> to tensor<4x6xf8E4M3>
  %k = {const((4, 4), values=[0.1, 1e6, -0.0, np.inf] * 4)}
  %k2 = nt.add %m, %k : tensor<4x4xf32>
  func.return %k2, %zh, %sum, %z8 : tensor<4x4xf32>, tensor<24xf16>, tensor<6x4xbf16>, tensor<4x6xf8E4M3>
}}""",
}


# A model whose weights live out of line, stored as float32 (as the ONNX importer stores them).
WEIGHTS = {"w1": (RNG.standard_normal((16, 24)) * 0.3).astype(np.float32),
           "w2": (RNG.standard_normal((24, 8)) * 0.3).astype(np.float32),
           "g": (1 + RNG.standard_normal(24) * 0.1).astype(np.float32)}  # fmt: skip
MODELS["weights"] = """
builtin.module attributes {nt.weights = "w.npz"} {
func.func @main(%x: tensor<4x16xf32>) -> tensor<4x8xf32> {
  %w1 = nt.weight @w1 : tensor<16x24xf32>
  %h = nt.matmul %x, %w1 : (tensor<4x16xf32>, tensor<16x24xf32>) -> tensor<4x24xf32>
  %g = nt.weight @g : tensor<24xf32>
  %n = nt.rms_norm %h, %g {axis = -1 : i64, epsilon = 1.0e-06 : f64} : (tensor<4x24xf32>, tensor<24xf32>) -> tensor<4x24xf32>
  %s = nt.silu %n : tensor<4x24xf32>
  %w2 = nt.weight @w2 : tensor<24x8xf32>
  %o = nt.matmul %s, %w2 : (tensor<4x24xf32>, tensor<24x8xf32>) -> tensor<4x8xf32>
  func.return %o : tensor<4x8xf32>
}
}"""


# Cases that fail today because of pass bugs reported to the lead (reproducers in
# tests/unit/pending_test_cast_pass_bugs.py, not collected until fixed):
#  - canonicalize-casts R4 folds cast(weight: bf16 -> fp8) into an fp8 weight, but the .npz
#    holds f32, so the loader rounds f32 -> fp8 once instead of f32 -> bf16 -> fp8.
#  - auto-cast{mode=all type=fp8_e4m3} is not idempotent (a second run retypes its own fp8
#    casts to bf16 and adds new ones).
@pytest.fixture(scope="module")
def base_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("weights")
    np.savez(d / "w.npz", **WEIGHTS)
    return d


def parse(text: str):
    m = parse_module(CTX, text, "model.mlir")
    verify_module(m)
    return m


def specials(dtype_of_arg) -> np.ndarray:
    fi = np.finfo(np.float32)
    return np.array(
        [
            0.0,
            -0.0,
            fi.smallest_subnormal,
            -1e-40,
            1e-39,
            fi.smallest_normal,
            fi.max,
            -fi.max,
            np.inf,
            -np.inf,
            np.nan,
            1e-6,
            65520.0,
            300.0,
            -250.0,
            6e-8,
        ],
        np.float32,
    )


def inputs(ref: Reference, with_specials: bool) -> dict[str, np.ndarray]:
    """Inputs for the model's framework signature (`ref` on the unchanged model), rounded to
    their types here, so that every later signature receives the same values."""
    out = {}
    for name, t in zip(ref.input_names, ref.func.function_type.inputs.data):
        shape = tuple(t.get_shape())
        a = (RNG.standard_normal(shape) * 2).astype(np.float32)
        if with_specials:
            flat = a.reshape(-1)
            s = specials(None)
            idx = RNG.choice(flat.size, size=min(flat.size // 3, s.size), replace=False)
            flat[idx] = s[: idx.size]
        out[name] = round_to(a, t.element_type)
    return out


def run(m, feeds_list, base_dir):
    ref = Reference(m, base_dir)
    return [ref.run(f) for f in feeds_list]


def apply(p, m):
    p.apply(Context(), m)
    verify_module(m)
    return m


CASES = [(m, mode, t) for m in sorted(MODELS) for mode, t in OPTIONS]


@pytest.mark.parametrize("model,mode,t", CASES)
def test_canonicalize_and_preserve_io_keep_every_bit(model, mode, t, base_dir):
    framework = Reference(parse(MODELS[model]), base_dir)
    feeds = [inputs(framework, False), inputs(framework, True)]
    m = apply(AutoCastPass(mode=mode, type=t), parse(MODELS[model]))
    cast_outs = run(m, feeds, base_dir)
    n_casts = sum(isinstance(op, nt.CastOp) for op in m.walk())

    apply(CanonicalizeCastsPass(), m)
    canon_outs = run(m, feeds, base_dir)
    for a, b in zip(cast_outs, canon_outs):
        for k in a:
            assert same_bits(a[k], b[k]), (model, mode, t, k)
    if model == "casts":
        # Not vacuous: the user casts here fold (R2 / R6).
        assert sum(isinstance(op, nt.CastOp) for op in m.walk()) < n_casts

    io_types = dict(
        zip(
            framework.output_names,
            (x.element_type for x in framework.func.function_type.outputs.data),
        )
    )
    apply(PreserveIOPass(), m)
    io_outs = run(m, feeds, base_dir)
    for a, b in zip(cast_outs, io_outs):
        for k in a:
            # preserve-io casts each output back to its framework type: one RNE cast.
            assert same_bits(round_to(a[k], io_types[k]), b[k]), (model, mode, t, k)
    # The framework signature is back.
    assert [f.function_type for f in m.walk() if f.name == "func.func"] == [
        framework.func.function_type
    ]


@pytest.mark.parametrize("model,mode,t", CASES)
def test_every_pass_is_idempotent_and_verifies(model, mode, t):
    m = parse(MODELS[model])
    for p in (AutoCastPass(mode=mode, type=t), CanonicalizeCastsPass(), PreserveIOPass()):
        once = str(apply(p, m))
        assert str(apply(p, m)) == once, (model, mode, t, p.name)
    # --cast-io's variant too, on a fresh auto-cast output.
    m = apply(CanonicalizeCastsPass(), apply(AutoCastPass(mode=mode, type=t), parse(MODELS[model])))
    once = str(apply(PreserveIOPass(enabled=False), m))
    assert str(apply(PreserveIOPass(enabled=False), m)) == once


def test_auto_cast_none_changes_nothing():
    for text in MODELS.values():
        assert str(apply(AutoCastPass(mode="none", type="fp8_e4m3"), parse(text))) == str(
            parse(text)
        )


def test_auto_cast_none_prints_what_no_pass_prints(tmp_path: Path):
    exe = Path(sys.executable).with_name("neuron-opt")
    for name, text in MODELS.items():
        f = tmp_path / f"{name}.mlir"
        f.write_text(text)
        plain = subprocess.run([exe, f], capture_output=True, text=True, check=True).stdout
        none = subprocess.run(
            [exe, f, "--auto-cast=none"], capture_output=True, text=True, check=True
        ).stdout
        assert plain and none == plain, name
        # And the default pipeline does change something on these models.
        default = subprocess.run(
            [exe, f, "--auto-cast=matmult"], capture_output=True, text=True, check=True
        ).stdout
        assert default != plain, name


# The example models of examples/ (imported from ONNX), for every option: canonicalize-casts
# keeps every output bit there too (issue 10's model-level proof).
EXAMPLES = sorted(p.stem for p in (Path(__file__).parents[2] / "examples").glob("*.onnx"))


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> dict[str, tuple[str, Path]]:
    from neuron_opt.importers.onnx import import_onnx

    out = {}
    for name in EXAMPLES:
        d = tmp_path_factory.mktemp(name)
        module, weights = import_onnx(
            Path(__file__).parents[2] / "examples" / f"{name}.onnx", "w.npz"
        )
        np.savez(d / "w.npz", **weights)
        out[name] = (str(module), d)
    return out


@pytest.mark.parametrize("mode,t", OPTIONS)
@pytest.mark.parametrize("example", EXAMPLES)
def test_example_models_keep_every_bit(example, mode, t, imported):
    text, d = imported[example]
    framework = Reference(parse(text), d)
    feeds = [inputs(framework, False), inputs(framework, True)]
    m = apply(AutoCastPass(mode=mode, type=t), parse(text))
    before = run(m, feeds, d)
    apply(CanonicalizeCastsPass(), m)
    after = run(m, feeds, d)
    for a, b in zip(before, after):
        for k in a:
            assert same_bits(a[k], b[k]), (example, mode, t, k)

"""The hand-written K-tiled GEMM kernel (PSUM accumulation over K) against numpy."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from sim_kernels import gemm_module

from neuron_opt.cli.common import make_context
from neuron_opt.dialects.parse import parse_module, verify_module
from neuron_opt.dialects.types import round_tf32
from neuron_opt.runtime.sim import simulate

M, K, N = 256, 256, 512
gemm = gemm_module()


def _rel_l2(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    return a, b


def _run(tmp_path, a, b, dtype, out_dtype, numerics=True):
    # B is a weight: it comes from the module's nt.weights .npz, rounded to the IR dtype.
    np.savez(tmp_path / "w.npz", b=b)
    text = gemm.gemm_kernel(M, K, N, dtype, out_dtype, b_role="weight", weights="w.npz")
    m = parse_module(make_context(), text, str(tmp_path / "g.mlir"))
    verify_module(m)
    return simulate(m, {"at": a.T.copy()}, tmp_path, numerics=numerics)


def test_fp32_matches_numpy(tmp_path, data):
    a, b = data
    r = _run(tmp_path, a, b, "f32", "f32")
    c = r.outputs["c"]
    assert c.dtype == np.float32 and c.shape == (M, N)
    assert _rel_l2(c, a.astype(np.float64) @ b.astype(np.float64)) < 1e-6
    assert r.flops == 2 * M * K * N


def test_bf16_matches_reference_rounding(tmp_path, data):
    a, b = data
    ab = a.astype(ml_dtypes.bfloat16).astype(np.float64)
    bb = b.astype(ml_dtypes.bfloat16).astype(np.float64)
    exact = ab @ bb  # bf16 products are exact in fp32; only the fp32 summation differs
    r32 = _run(tmp_path, a, b, "bf16", "f32").outputs["c"]
    assert _rel_l2(r32, exact) < 1e-6
    # bf16 output: exactly the RNE rounding of the kernel's own fp32 result...
    c = _run(tmp_path, a, b, "bf16", "bf16").outputs["c"]
    assert c.dtype == ml_dtypes.bfloat16
    assert np.array_equal(c.view(np.uint16), r32.astype(ml_dtypes.bfloat16).view(np.uint16))
    # ... which is the reference rounding except where the reordered fp32 sum sits next to
    # a rounding boundary (docs/design.md: one-ulp flips, a small share).
    ref = exact.astype(np.float32).astype(ml_dtypes.bfloat16)
    differ = np.count_nonzero(c.view(np.uint16) != ref.view(np.uint16)) / c.size
    assert differ < 0.01
    err = _rel_l2(c.astype(np.float64), exact)
    assert 1e-4 < err < 2.0**-8  # rounded (not the fp32 result) and within bf16's precision


def test_tf32_rounds_inputs(tmp_path, data):
    a, b = data
    ref = round_tf32(a).astype(np.float64) @ round_tf32(b).astype(np.float64)
    r = _run(tmp_path, a, b, "tf32", "f32")
    assert _rel_l2(r.outputs["c"], ref) < 1e-6
    assert _rel_l2(r.outputs["c"], a.astype(np.float64) @ b) > 1e-5


def test_fp32_takes_4x_tensor_time(tmp_path, data):
    a, b = data
    t16 = _run(tmp_path, a, b, "bf16", "f32", numerics=False).busy("tensor")
    t32 = _run(tmp_path, a, b, "f32", "f32", numerics=False).busy("tensor")
    t_tf = _run(tmp_path, a, b, "tf32", "f32", numerics=False).busy("tensor")
    assert t32 == pytest.approx(4 * t16)
    assert t_tf == pytest.approx(t16)  # tf32 runs at the bf16 rate


def test_timing_does_not_depend_on_numerics(tmp_path, data):
    a, b = data
    with_n = _run(tmp_path, a, b, "bf16", "bf16")
    without = _run(tmp_path, a, b, "bf16", "bf16", numerics=False)
    assert with_n.makespan_ns == without.makespan_ns
    assert without.outputs == {}

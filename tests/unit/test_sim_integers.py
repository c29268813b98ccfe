"""Integer and bool numerics of the simulator against numpy (docs/nisa.md §3): exact integer
ALU ops, the engines' exact ranges, narrowing and converting DMAs, the indirect DMA gather,
and rank-0 HBM tensors."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from sim_kernels import load_run_store, module, run

from neuron_opt.diagnostics import CompileError
from neuron_opt.runtime.sim import SimError, simulate

rng = np.random.default_rng(11)
A = rng.integers(-1000, 1000, size=(8, 16)).astype(np.int32)
B = rng.integers(-30, 30, size=(8, 16)).astype(np.int32)
B[B == 0] = 7


def _binary(engine: str, op: str, a, b, out="i32", dt="i32"):
    stream = f"""nisa.engine @{engine} {{
      nisa.tensor_tensor @ys[0:8, 0:16], @as[0:8, 0:16], @bs[0:8, 0:16] op {op} wait(@in >= 2) signal(@done)
    }}"""
    body = load_run_store({"a": f"8x16x{dt}", "b": f"8x16x{dt}"}, f"8x16x{out}", stream)
    return run(body, {"a": a, "b": b}).outputs["y"]


def _trunc_div(a, b):
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -q, q)


@pytest.mark.parametrize("op,ref", [
    ("add", np.add), ("sub", np.subtract), ("mul", np.multiply), ("div", _trunc_div),
    ("mod", np.remainder), ("fmod", np.fmod), ("max", np.maximum), ("min", np.minimum),
    ("and", np.bitwise_and), ("or", np.bitwise_or), ("xor", np.bitwise_xor),
    ("lt", np.less), ("eq", np.equal),
])  # fmt: skip
@pytest.mark.parametrize("engine", ["gpsimd", "vector"])
def test_integer_alu_is_exact(op, ref, engine):
    y = _binary(engine, op, A, B)
    assert y.dtype == np.int32 and np.array_equal(y, ref(A.astype(np.int64), B).astype(np.int32))


def test_compare_writes_bool():
    y = _binary("vector", "ge", A, B, out="i1")
    assert y.dtype == np.bool_ and np.array_equal(y, A >= B)


def test_vector_faults_beyond_fp32_exact_range_gpsimd_does_not():
    big = np.full((8, 16), (1 << 24) + 1, np.int32)
    with pytest.raises(SimError, match=r"beyond vector engine's exact range"):
        _binary("vector", "add", big, B)
    assert np.array_equal(_binary("gpsimd", "add", big, B), big.astype(np.int64) + B)


def test_int32_overflow_is_a_fault_not_a_wrap():
    big = np.full((8, 16), 1 << 30, np.int32)
    with pytest.raises(SimError, match=r"integer 2147483648 overflows GpSimd's int32"):
        _binary("gpsimd", "add", big, big)


def test_integer_division_by_zero_is_a_fault():
    with pytest.raises(SimError, match="integer division by zero"):
        _binary("gpsimd", "div", A, np.zeros_like(B))


def _convert(src_dt: str, dst_dt: str, x, engine_copy: bool):
    """HBM src_dt -> SBUF (DMA), then a converting copy (VectorE) or DMA to dst_dt."""
    on_chip = "i32" if src_dt == "i64" else src_dt
    copy = (
        """nisa.engine @vector {
      nisa.tensor_copy @ys[0:8, 0:16], @xs[0:8, 0:16] wait(@in >= 1) signal(@done)
    }"""
        if engine_copy
        else ""
    )
    body = load_run_store(
        {"x": f"8x16x{src_dt}"},
        f"8x16x{dst_dt}",
        copy,
        tiles={"xs": f"8x16x{on_chip}"},
        store="ys" if engine_copy else "xs",
        store_wait="@done >= 1" if engine_copy else "@in >= 1",
    )
    return run(body, {"x": x}).outputs["y"]


def test_dma_narrows_i64_exactly_and_faults_out_of_range():
    x = rng.integers(-(2**31), 2**31, size=(8, 16)).astype(np.int64)
    assert np.array_equal(_convert("i64", "i32", x, False), x)
    x[3, 4] = 2**31
    with pytest.raises(SimError, match=r"integer 2147483648 does not fit i32"):
        _convert("i64", "i32", x, False)


def test_float_to_int_truncates_and_saturates():
    x = (rng.standard_normal((8, 16)) * 100).astype(np.float32)
    x[0, :4] = [np.nan, np.inf, -3e9, 3e9]
    want = np.trunc(x).astype(np.float64)
    want[0, :4] = [0, 2**31 - 1, -(2**31), 2**31 - 1]
    assert np.array_equal(_convert("f32", "i32", x, True), want.astype(np.int32))


def test_int_to_bf16_rounds_once():
    # 2^24 + 2^16 + 1 is above a bf16 tie: one rounding goes up, fp32-then-bf16 would tie down
    x = np.full((8, 16), (1 << 24) + (1 << 16) + 1, np.int32)
    y = _convert("i32", "bf16", x, False)
    assert np.array_equal(y, x.astype(np.float64).astype(ml_dtypes.bfloat16))


def test_int_to_bool_is_nonzero():
    x = rng.integers(-2, 3, size=(8, 16)).astype(np.int32)
    assert np.array_equal(_convert("i32", "i1", x, True), x != 0)


GATHER = """
    nisa.hbm input @ids : tensor<6x2xi32>
    nisa.hbm input @table : tensor<20x3x4xbf16>
    nisa.hbm output @y : tensor<6x2x12xf32>
    nisa.sbuf @ix partitions 0:6 offset 0 : tensor<6x2xi32>
    nisa.sbuf @rows partitions 0:6 offset 64 : tensor<6x2x12xf32>
    nisa.semaphore @in
    nisa.semaphore @g
    nisa.dma_queue @q {
      nisa.dma_copy @ix[0:6, 0:2], @ids[0:6, 0:2] signal(@in)
      nisa.dma_copy @y[0:6, 0:2, 0:12], @rows[0:6, 0:2, 0:12] wait(@g >= 1)
    }
    nisa.dma_queue @g {
      nisa.dma_gather @rows[0:6, 0:2, 0:12], @table[5:20, 0:3, 0:4], @ix[0:6, 0:2] wait(@in >= 1) signal(@g)
    }"""


def test_dma_gather_takes_rows_counted_from_the_window():
    table = rng.standard_normal((20, 3, 4)).astype(np.float32)
    ids = rng.integers(0, 15, size=(6, 2)).astype(np.int32)
    r = run(GATHER, {"ids": ids, "table": table})
    want = table.astype(ml_dtypes.bfloat16).astype(np.float32)[5:][ids].reshape(6, 2, 12)
    assert np.array_equal(r.outputs["y"], want)
    # GpSimd builds 2 descriptors per partition (152 cycles at 1.4 GHz), then the rows move
    # as one DMA; the gather waits for the index load (another DMA) first
    gather_ns = 152 / 1.4 + 1300 + 6 * 2 * 12 * 4 / 17
    assert r.dma_bytes == 6 * 2 * 4 + 6 * 2 * 12 * 4 * 2
    assert r.makespan_ns > 1300 + gather_ns


def test_dma_gather_index_out_of_range_is_a_fault():
    ids = np.full((6, 2), 15, np.int32)
    with pytest.raises(SimError, match=r"operand index: index 15 is out of range for the 15 rows"):
        run(GATHER, {"ids": ids, "table": np.zeros((20, 3, 4), np.float32)})


def test_dma_gather_placement_rules():
    bad = GATHER.replace("@rows[0:6, 0:2, 0:12], @table", "@rows[0:6, 0:2, 0:8], @table")
    with pytest.raises(
        CompileError, match=r"expected 24 elements per partition \(2 indices x 12\)"
    ):
        module(bad)


@pytest.mark.parametrize("decl,msg", [
    ("nisa.sbuf @w partitions 0:8 offset 0 : tensor<8x4xi64>", "no 64-bit integer datapath"),
])  # fmt: skip
def test_on_chip_i64_is_rejected(decl, msg):
    with pytest.raises(CompileError, match=msg):
        module(decl)


def test_bitvec_ops_need_integer_buffers():
    body = """
    nisa.sbuf @f partitions 0:8 offset 0 : tensor<8x4xf32>
    nisa.engine @vector {
      nisa.memset @f[0:8, 0:4] value 1.0
      nisa.tensor_scalar @f[0:8, 0:4], @f[0:8, 0:4] op0 xor operand0 1.0
    }"""
    with pytest.raises(CompileError, match="bitvec ops take integer buffers"):
        module(body)


@pytest.mark.parametrize("ops", ["op0 xor operand0 1.5", "op0 add operand0 1 op1 and operand1 0.5"])
def test_bitvec_ops_need_integer_immediates(ops):
    # A fraction made the instruction inexact: the simulator looked the bitvec op up among the
    # float ALU ops and crashed.
    body = f"""
    nisa.sbuf @x partitions 0:8 offset 0 : tensor<8x4xi32>
    nisa.engine @vector {{
      nisa.memset @x[0:8, 0:4] value 1.0
      nisa.tensor_scalar @x[0:8, 0:4], @x[0:8, 0:4] {ops}
    }}"""
    with pytest.raises(
        CompileError, match=r"operand operand[01]: bitvec ops take whole numbers, found [01]\.5"
    ):
        module(body)


def test_rank0_hbm_tensors_bind_and_return_as_scalars():
    body = """
    nisa.hbm input @x : tensor<i64>
    nisa.hbm output @y : tensor<i64>
    nisa.sbuf @s partitions 0:1 offset 0 : tensor<1x1xi32>
    nisa.semaphore @in
    nisa.semaphore @done
    nisa.dma_queue @q {
      nisa.dma_copy @s[0:1, 0:1], @x[0] signal(@in)
      nisa.dma_copy @y[0], @s[0:1, 0:1] wait(@done >= 1)
    }
    nisa.engine @gpsimd {
      nisa.tensor_scalar @s[0:1, 0:1], @s[0:1, 0:1] op0 mul operand0 -3 wait(@in >= 1) signal(@done)
    }"""
    y = simulate(module(body), {"x": np.array(41, np.int64)}).outputs["y"]
    assert y.shape == () and y.dtype == np.int64 and int(y) == -123

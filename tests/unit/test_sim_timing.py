"""Single instructions take exactly the docs/nisa.md formulas; the issue model, semaphores,
ports and DMA engines behave as documented."""

from __future__ import annotations

import pytest
from sim_kernels import run

PE, DVE, ACT, POOL = 2.8, 1.12, 1.4, 1.4  # GHz
ACCESS, SEM, MIN_II = 60, 100, 64

MM_DECLS = """
    nisa.sbuf @st partitions 0:128 offset 0 : tensor<128x128x{dt}>
    nisa.sbuf @mv partitions 0:128 offset 1024 : tensor<128x512x{dt}>
    nisa.psum @ps partitions 0:128 offset 0 : tensor<128x4x512xf32>
"""


def _matmul(dt: str, m: int, n: int, count: int = 1, extra: str = "") -> str:
    lines = "\n".join(
        f"nisa.matmul @ps[0:{m}, {i % 4}, 0:{n}], @st[0:128, 0:{m}], @mv[0:128, 0:{n}] start stop"
        for i in range(count)
    )
    return MM_DECLS.format(dt=dt) + f"nisa.engine @tensor {{\n{lines}\n}}\n" + extra


@pytest.mark.parametrize(
    "dt,m,n,cycles",
    [("bf16", 128, 512, 512), ("bf16", 128, 32, 64), ("bf16", 16, 32, 32), ("f16", 128, 128, 128),
     ("f32", 128, 512, 2048), ("f32", 32, 16, 128)],
)  # fmt: skip
def test_single_matmul(dt, m, n, cycles):
    r = run(_matmul(dt, m, n), numerics=False)
    assert cycles == max(min(64, m), n) * (4 if dt == "f32" else 1)
    assert r.makespan_ns == pytest.approx((cycles + ACCESS) / PE, rel=1e-12)
    assert r.busy("tensor") == pytest.approx(max(MIN_II, cycles) / PE, rel=1e-12)
    assert r.flops == 2 * 128 * m * n


def test_issue_interval_is_cost_not_latency():
    # Three back-to-back matmuls: issue every max(64, cost), the latency only on the last.
    r = run(_matmul("bf16", 128, 512, 3), numerics=False)
    assert r.makespan_ns == pytest.approx((3 * 512 + ACCESS) / PE)
    small = run(_matmul("bf16", 16, 32, 3), numerics=False)  # cost 32 < MIN_II
    assert small.makespan_ns == pytest.approx((2 * 64 + 32 + ACCESS) / PE)


VEC = """
    nisa.sbuf @a partitions 0:128 offset 0 : tensor<128x1024x{dt}>
    nisa.sbuf @b partitions 0:128 offset 8192 : tensor<128x1024x{dt}>
    nisa.engine @vector {{
      nisa.tensor_tensor @a[0:128, 0:{n}], @a[0:128, 0:{n}], @b[0:128, 0:{n}] op {op}
    }}
"""


@pytest.mark.parametrize(
    "dt,op,n,cycles",
    [("bf16", "add", 1024, 1024), ("bf16", "mul", 512, 512), ("bf16", "max", 512, 1024),
     ("f32", "add", 512, 1024), ("f32", "add", 16, 64)],
)  # fmt: skip
def test_single_vector_op(dt, op, n, cycles):
    r = run(VEC.format(dt=dt, op=op, n=n), numerics=False)
    assert r.makespan_ns == pytest.approx((cycles + ACCESS) / DVE, rel=1e-12)
    assert r.busy("vector") == pytest.approx(max(MIN_II, cycles) / DVE, rel=1e-12)


def test_vector_reading_psum_is_one_pass():
    body = """
    nisa.sbuf @a partitions 0:128 offset 0 : tensor<128x512xf32>
    nisa.psum @p partitions 0:128 offset 0 : tensor<128x512xf32>
    nisa.engine @vector {
      nisa.tensor_tensor @a[0:128, 0:512], @a[0:128, 0:512], @p[0:128, 0:512] op add
    }
    """
    assert run(body, numerics=False).makespan_ns == pytest.approx((512 + ACCESS) / DVE)


@pytest.mark.parametrize(
    "instr,engine,clock,cycles",
    [("nisa.activation @a[0:128, 0:300], @a[0:128, 0:300] func exp", "scalar", ACT, 300),
     ("nisa.activation @a[0:128, 0:300], @a[0:128, 0:300] func exp accumulate @a[0:128, 400]",
      "scalar", ACT, 364),
     ("nisa.tensor_reduce @b[0:128, 0:1], @b[0:128, 0:512] op add", "vector", DVE, 256),
     ("nisa.tensor_reduce @a[0:128, 0:1], @a[0:128, 0:512] op add", "vector", DVE, 512),
     ("nisa.memset @b[0:128, 0:512] value 0.0", "vector", DVE, 256),
     ("nisa.memset @b[0:128, 0:512] value 1.0", "vector", DVE, 512),
     ("nisa.iota @a[0:128, 0:100]", "gpsimd", POOL, 250),
     ("nisa.bn_aggr @a[0:128, 0:2], @a[0:128, 0:30]", "vector", DVE, 130),
     ("nisa.tensor_scalar @a[0:128, 0:10], @a[0:128, 0:10] op0 mul operand0 2.0", "scalar", ACT, 64)],
)  # fmt: skip
def test_cost_formulas(instr, engine, clock, cycles):
    body = f"""
    nisa.sbuf @a partitions 0:128 offset 0 : tensor<128x1024xf32>
    nisa.sbuf @b partitions 0:128 offset 4096 : tensor<128x1024xbf16>
    nisa.engine @{engine} {{
      {instr}
    }}
    """
    r = run(body, numerics=False)
    assert r.makespan_ns == pytest.approx((cycles + ACCESS) / clock, rel=1e-12)


@pytest.mark.parametrize("dt,nbytes", [("f32", 128 * 512 * 4), ("bf16", 128 * 512 * 2)])
def test_single_dma(dt, nbytes):
    body = f"""
    nisa.hbm input @x : tensor<128x512x{dt}>
    nisa.sbuf @s partitions 0:128 offset 0 : tensor<128x512x{dt}>
    nisa.dma_queue @q {{
      nisa.dma_copy @s[0:128, 0:512], @x[0:128, 0:512]
    }}
    """
    r = run(body, numerics=False)
    assert r.makespan_ns == pytest.approx(1300 + nbytes / 17.0, rel=1e-12)
    assert r.dma_bytes == nbytes


def test_dma_cast_counts_the_wider_side():
    body = """
    nisa.hbm input @x : tensor<128x512xf32>
    nisa.sbuf @s partitions 0:128 offset 0 : tensor<128x512xbf16>
    nisa.dma_queue @q {
      nisa.dma_copy @s[0:128, 0:512], @x[0:128, 0:512]
    }
    """
    assert run(body, numerics=False).dma_bytes == 128 * 512 * 4


def test_dma_queue_pipelines_fixed_cost_and_engines_share_bandwidth():
    one = """
    nisa.hbm input @x : tensor<128x512xf32>
    nisa.sbuf @s partitions 0:128 offset 0 : tensor<128x512xf32>
    nisa.dma_queue @q0 {
      nisa.dma_copy @s[0:128, 0:512], @x[0:128, 0:512]
      nisa.dma_copy @s[0:128, 0:512], @x[0:128, 0:512]
    }
    """
    data = 128 * 512 * 4 / 17.0
    # The second transfer's fixed cost overlaps the first's data phase.
    assert run(one, numerics=False).makespan_ns == pytest.approx(1300 + 2 * data)
    # Two queues on two DMA engines run in parallel.
    two = one.replace(
        "      nisa.dma_copy @s[0:128, 0:512], @x[0:128, 0:512]\n    }",
        "    }\n    nisa.dma_queue @q1 {\n      nisa.dma_copy @s[0:128, 0:512], @x[0:128, 0:512]\n    }",
        1,
    )
    assert run(two, numerics=False).makespan_ns == pytest.approx(1300 + data)
    # Queue 16 shares DMA engine 0 with queue 0: their data phases serialize.
    queues = "\n".join(
        f"nisa.dma_queue @q{i} {{\n nisa.dma_copy @s[0:128, 0:512], @x[0:128, 0:512]\n}}"
        for i in range(17)
    )
    decls = one.split("nisa.dma_queue")[0]
    assert run(decls + queues, numerics=False).makespan_ns == pytest.approx(1300 + 2 * data)


def test_semaphore_latency_between_engines():
    body = (
        _matmul("bf16", 128, 512, 1).replace(" start stop", " start stop signal(@s)")
        + """
    nisa.semaphore @s
    nisa.sbuf @o partitions 0:128 offset 4096 : tensor<128x512xf32>
    nisa.engine @vector {
      nisa.tensor_copy @o[0:128, 0:512], @ps[0:128, 0, 0:512] wait(@s >= 1)
    }
    """
    )
    r = run(body, numerics=False)
    mm_done = (512 + ACCESS) / PE + SEM / PE
    assert r.makespan_ns == pytest.approx(mm_done + (512 + ACCESS) / DVE)


def test_vector_and_gpsimd_share_the_sbuf_port():
    body = """
    nisa.sbuf @a partitions 0:128 offset 0 : tensor<128x512xf32>
    nisa.sbuf @b partitions 0:128 offset 4096 : tensor<128x512xf32>
    nisa.psum @p partitions 0:128 offset 0 : tensor<128x512xf32>
    nisa.engine @vector {
      nisa.memset @a[0:128, 0:512] value 1.0
    }
    nisa.engine @gpsimd {
      nisa.memset @b[0:128, 0:512] value 1.0
    }
    """
    r = run(body, numerics=False)
    # Whichever goes first, the other starts after its 512 cycles.
    ends = {(512 / DVE) + (512 + ACCESS) / POOL, (512 / POOL) + (512 + ACCESS) / DVE}
    assert any(r.makespan_ns == pytest.approx(e) for e in ends)
    # ScalarE does not share SBUF with VectorE: they overlap.
    par = body.replace("nisa.engine @gpsimd", "nisa.engine @scalar").replace(
        "nisa.memset @b[0:128, 0:512] value 1.0",
        "nisa.activation @b[0:128, 0:512], @a[0:128, 0:512] func copy",
    )
    r2 = run(par, numerics=False)
    assert r2.makespan_ns == pytest.approx(max((512 + ACCESS) / DVE, (512 + ACCESS) / ACT))


def test_vector_and_scalar_share_the_psum_port():
    body = """
    nisa.sbuf @a partitions 0:128 offset 0 : tensor<128x512xf32>
    nisa.sbuf @b partitions 0:128 offset 4096 : tensor<128x512xf32>
    nisa.psum @p partitions 0:128 offset 0 : tensor<128x2x512xf32>
    nisa.engine @vector {
      nisa.memset @p[0:128, 0, 0:512] value 1.0
    }
    nisa.engine @scalar {
      nisa.activation @p[0:128, 1, 0:512], @a[0:128, 0:512] func copy
    }
    """
    r = run(body, numerics=False)
    ends = {512 / DVE + (512 + ACCESS) / ACT, 512 / ACT + (512 + ACCESS) / DVE}
    assert any(r.makespan_ns == pytest.approx(e) for e in ends)
    # The same two instructions on SBUF overlap.
    sbuf = body.replace("@p[0:128, 0, 0:512]", "@a[0:128, 0:512]").replace(
        "@p[0:128, 1, 0:512]", "@b[0:128, 0:512]"
    )
    r2 = run(sbuf, numerics=False)
    assert r2.makespan_ns == pytest.approx(max((512 + ACCESS) / DVE, (512 + ACCESS) / ACT))

"""Which accesses the kernel builder orders and the simulator calls a race: two accesses of one
buffer depend on each other only when they share an element (interleaved strided accesses do
not); accesses of aliasing buffers, when their boxes overlap."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sim_kernels import run
from test_lowering_windows import _check, _ty

from neuron_opt.dialects import ncv2
from neuron_opt.dialects.nisa import DmaCopyOp, slices_cover, slices_meet
from neuron_opt.lowering.kernel import KernelBuilder
from neuron_opt.runtime.sim import SimError

_slice = st.tuples(st.integers(0, 24), st.integers(1, 24), st.integers(1, 7)).map(
    lambda t: (t[0], t[0] + t[1], t[2])
)


def _elements(slices):
    out = {()}
    for a, b, s in slices:
        out = {(*e, i) for e in out for i in range(a, b, s)}
    return out


@given(st.lists(st.tuples(_slice, _slice), min_size=1, max_size=3))
def test_meet_and_cover_are_the_element_sets(pairs):
    x, y = [p for p, _ in pairs], [q for _, q in pairs]
    ex, ey = _elements(x), _elements(y)
    assert slices_meet(x, y) == bool(ex & ey)
    assert slices_cover(x, y) == (ey <= ex)


def _two_writes(second: tuple) -> dict:
    """The waits of a DMA writing `second` columns of an HBM tensor after another queue's
    write of the even columns."""
    kb = KernelBuilder()
    y = kb.hbm("output", "y", (4, 64), "f32")
    t = kb.sbuf(4, (32,), "f32")
    kb.inst("q0", DmaCopyOp, y.ap((0, 4), (0, 64, 2)), t.ap())
    return kb.inst("q1", DmaCopyOp, y.ap((0, 4), second), t.ap()).waits()


def test_interleaved_writes_are_not_ordered():
    assert _two_writes((1, 64, 2)) == {}  # the odd columns: disjoint, the boxes overlap
    assert _two_writes((2, 64, 4)) == {"s_q0": 1}  # every fourth column: shared elements


DECLS = """
    nisa.hbm input @x : tensor<128x512xf32>
    nisa.hbm output @y : tensor<128x512xf32>
    nisa.sbuf @a partitions 0:128 offset 0 : tensor<128x512xf32>
    nisa.semaphore @s
"""


@pytest.mark.parametrize("odd", [True, False])
def test_interleaved_writes_on_two_queues_race_only_when_they_share_elements(odd):
    second = "1:512:2" if odd else "0:512:4"
    body = (
        DECLS
        + f"""
    nisa.dma_queue @q0 {{
      nisa.dma_copy @a[0:128, 0:512], @x[0:128, 0:512] signal(@s)
      nisa.dma_copy @y[0:128, 0:512:2], @a[0:128, 0:256]
    }}
    nisa.dma_queue @q1 {{
      nisa.dma_copy @y[0:128, {second}], @a[0:128, 256:{256 + (256 if odd else 128)}] wait(@s >= 1)
    }}
    """
    )
    x = np.arange(128 * 512, dtype=np.float32).reshape(128, 512)
    if not odd:
        with pytest.raises(SimError, match="a semaphore wait is missing"):
            run(body, {"x": x})
        return
    y = run(body, {"x": x}).outputs["y"]
    assert np.array_equal(y[:, 0::2], x[:, :256]) and np.array_equal(y[:, 1::2], x[:, 256:])


def test_key_transpose_copies_run_side_by_side():
    """Attention's K^T, [1, S, H, D] -> [1, H, D, S] with S = 16: 16 DMAs (one per position)
    each writing a column of every (head, d) row. They write disjoint elements, so nothing
    orders them and the 16 queues run them at once: the whole kernel (load, copies, nothing
    else) is at most two lone DMAs of the tensor. Ordered by their overlapping boxes they took
    16 DMA latencies (21 us)."""
    shape, out = (1, 16, 2, 16), (1, 2, 16, 16)
    body = (
        f"    %y = nt.transpose %x {{perm = array<i64: 0, 2, 3, 1>}} : ({_ty(shape)}) -> {_ty(out)}"
    )
    r = _check(body, [("x", shape, "f32")], out, exact=True)
    lone = ncv2.value("DMA_FIXED_NS") + 16 * 16 * 2 * 4 / ncv2.value("DMA_ENGINE_BYTES_PER_NS")
    assert r.instructions == 16 and r.utilization("tensor") == 0
    assert r.makespan_ns <= 2 * lone

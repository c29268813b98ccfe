"""The Chrome/Perfetto trace and the result figures."""

from __future__ import annotations

import json

import numpy as np
from sim_kernels import gemm_module

from neuron_opt.cli.common import make_context
from neuron_opt.dialects.parse import parse_module, verify_module
from neuron_opt.runtime.sim import simulate

gemm = gemm_module()


def _gemm(m, k, n, dtype="bf16", numerics=False, inputs=None):
    mod = parse_module(make_context(), gemm.gemm_kernel(m, k, n, dtype), "g.mlir")
    verify_module(mod)
    return simulate(mod, inputs or {}, numerics=numerics, trace=True)


def test_trace_has_one_track_per_engine_and_queue(tmp_path):
    r = _gemm(256, 256, 512)
    path = tmp_path / "t.json"
    path.write_text(json.dumps(r.trace))
    t = json.loads(path.read_text())
    events = t["traceEvents"]
    tracks = {e["tid"]: e["args"]["name"] for e in events if e["name"] == "thread_name"}
    names = list(tracks.values())
    assert len(names) == len(set(names)) == len(r.engines)
    assert {"TensorE", "VectorE", "ScalarE"} <= set(names)
    dma_tracks = [n for n in names if n.startswith("DMA ")]
    assert len(dma_tracks) == sum(e.engine == "dma" for e in r.engines) > 16
    spans = [e for e in events if e["ph"] == "X"]
    assert len(spans) == r.instructions
    assert {e["name"] for e in spans} == {"MATMUL", "TENSOR_COPY", "ACTIVATE", "DMA"}
    by_track = {}
    for e in spans:
        by_track.setdefault(tracks[e["tid"]], []).append(e)
    # In-order streams: a track's spans start in order; MATMULs only on TensorE.
    for name, evs in by_track.items():
        starts = [e["ts"] for e in evs]
        assert starts == sorted(starts)
    assert {e["name"] for e in by_track["TensorE"]} == {"MATMUL"}
    end = max(e["ts"] + e["dur"] for e in spans)
    assert abs(end * 1000 - r.makespan_ns) < 1e-6


def test_dma_overlaps_tensor_work_in_the_double_buffered_gemm():
    r = _gemm(1024, 1024, 1024)
    spans = [e for e in r.trace["traceEvents"] if e["ph"] == "X"]
    mm = [(e["ts"], e["ts"] + e["dur"]) for e in spans if e["name"] == "MATMUL"]
    dma = [(e["ts"], e["ts"] + e["dur"]) for e in spans if e["name"] == "DMA"]
    first_mm, last_mm = mm[0][0], mm[-1][1]
    overlapping = [d for d in dma if d[0] < last_mm and d[1] > first_mm]
    assert len(overlapping) > len(dma) // 2


def test_metrics_add_up():
    r = _gemm(256, 256, 512)
    assert r.hfu == (r.flops / 91.75e12) / (r.makespan_ns * 1e-9)
    tensor = next(e for e in r.engines if e.engine == "tensor")
    assert tensor.utilization == tensor.busy_ns / r.makespan_ns
    assert r.cycles == round(r.makespan_ns * 1.4)
    m = r.metrics()
    assert json.loads(json.dumps(m))["tensor_hfu"] == r.hfu
    assert r.dma_bytes == 256 * 256 * 2 + 256 * 512 * 2 + 256 * 512 * 2  # loads + bf16 stores
    assert not np.isnan(r.makespan_ns)

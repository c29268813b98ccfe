"""Chrome / Perfetto trace JSON: one track (thread) per engine and per DMA queue.

Opcode names follow real neuron-profile output (MATMUL, ACTIVATE, TENSOR_TENSOR, DMA, ...);
each event spans issue to completion, and its args give the operands and timing.
"""

from __future__ import annotations

from neuron_opt.runtime.sim.decode import Program
from neuron_opt.runtime.sim.engines import Timeline

_TRACK_NAMES = {"tensor": "TensorE", "vector": "VectorE", "scalar": "ScalarE", "gpsimd": "GpSimdE"}


def track_name(stream) -> str:
    if stream.engine == "dma":
        return f"DMA {stream.name}"
    return _TRACK_NAMES[stream.engine]


def chrome_trace(program: Program, tl: Timeline, kernel: str) -> dict:
    events: list[dict] = [
        {"name": "process_name", "ph": "M", "pid": 0, "args": {"name": f"NeuronCore-v2 {kernel}"}}
    ]
    for tid, st in enumerate(program.streams):
        events.append(
            {
                "name": "thread_name",
                "ph": "M",
                "pid": 0,
                "tid": tid,
                "args": {"name": track_name(st)},
            }
        )
        events.append(
            {
                "name": "thread_sort_index",
                "ph": "M",
                "pid": 0,
                "tid": tid,
                "args": {"sort_index": tid},
            }
        )
    for s, ins, start, done in tl.events:
        args = {"index": ins.index, "busy_ns": round(ins.busy, 3)}
        if ins.dma_engine >= 0:
            args["transfer"], args["bytes"] = ins.args
            args["dma_engine"] = ins.dma_engine
        else:
            args["operands"] = ins.args
        if ins.flops:
            args["flops"] = ins.flops
        events.append(
            {
                "name": ins.opcode,
                "cat": program.streams[s].engine,
                "ph": "X",
                "pid": 0,
                "tid": s,
                "ts": start / 1000.0,  # Chrome traces count microseconds
                "dur": (done - start) / 1000.0,
                "args": args,
            }
        )
    return {"traceEvents": events, "displayTimeUnit": "ns"}

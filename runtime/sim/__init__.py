"""The NeuronCore-v2 simulator: runs a nisa kernel (docs/nisa.md) with timing and numerics.

    result = simulate(module, {"x": x}, weights_dir=Path("model_dir"), numerics=True)

Layers: machine (memories and bindings), cost (formulas over dialects/ncv2's one constant
table), decode (kernel -> plain objects), numerics (numpy closures), engines (the event loop),
trace (Chrome JSON), results (SimResult).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np
from xdsl.ir import Operation

from neuron_opt.blas import single_threaded
from neuron_opt.dialects.nisa import KernelOp
from neuron_opt.dialects.nisa_placement import Placement
from neuron_opt.runtime.sim import decode, engines
from neuron_opt.runtime.sim.errors import SimError
from neuron_opt.runtime.sim.machine import Machine
from neuron_opt.runtime.sim.results import EngineStats, SimResult
from neuron_opt.runtime.sim.trace import chrome_trace, track_name


def find_kernel(module: Operation) -> KernelOp:
    if isinstance(module, KernelOp):
        return module
    for op in module.walk():
        if isinstance(op, KernelOp):
            return op
    raise SimError("the module holds no nisa.kernel")


def simulate(
    module: Operation,
    inputs: Mapping[str, np.ndarray] | None = None,
    weights_dir=None,
    numerics: bool = True,
    trace: bool = False,
) -> SimResult:
    """Run the module's nisa kernel. Inputs bind HBM `input` tensors by name; `weight` tensors
    come from the module's `nt.weights` .npz (inside `weights_dir`, the IR file's directory, by
    default the cwd) or from `weights_dir` itself when it is a mapping of arrays. Raises SimError."""
    kernel = find_kernel(module)
    t0 = time.perf_counter()
    machine = None
    if numerics:
        machine = Machine(Placement(kernel))
        machine.bind(inputs or {}, weights_dir, module)
    program = decode.decode(kernel, machine)
    t1 = time.perf_counter()
    with single_threaded():
        tl = engines.run(program, numerics, record=trace)
    t2 = time.perf_counter()
    makespan = tl.makespan
    stats = [
        EngineStats(
            track_name(st), st.engine, len(st.instrs), tl.busy[i],
            tl.busy[i] / makespan if makespan else 0.0,
        )
        for i, st in enumerate(program.streams)
    ]  # fmt: skip
    result = SimResult(
        outputs=machine.outputs() if machine is not None else {},
        makespan_ns=makespan,
        engines=stats,
        flops=tl.flops,
        dma_bytes=tl.dma_bytes,
        instructions=tl.executed,
        numerics=numerics,
        timings={"decode": t1 - t0, "simulate": t2 - t1},
    )
    if trace:
        result.trace = chrome_trace(program, tl, kernel.sym_name.data)
    return result


__all__ = ["EngineStats", "SimError", "SimResult", "find_kernel", "simulate"]

"""Simulated instructions per wall second, with and without numerics.

    .venv/bin/python bench/simulator_speed.py [--m 2048 --k 2048 --n 2560] [--repeat 3]

The kernel is the hand-written double-buffered bf16 GEMM (examples/kernels/gemm.py), >= 10k
instructions. Parse, decode and the simulation loop are timed apart; the rate counts the
simulation loop only (docs/design.md's target: >= 100k instructions/s with --no-numerics).
Writes bench/results/simulator_speed.json.
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import time

import numpy as np
from bench_common import RESULTS, load_example, write_json


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--m", type=int, default=2048)
    p.add_argument("--k", type=int, default=2048)
    p.add_argument("--n", type=int, default=2560)
    p.add_argument("--repeat", type=int, default=3, help="best of N loop runs")
    a = p.parse_args(argv)

    from neuron_opt.blas import single_threaded
    from neuron_opt.cli.common import make_context
    from neuron_opt.dialects.parse import parse_module, verify_module
    from neuron_opt.runtime.sim import decode, engines, find_kernel
    from neuron_opt.runtime.sim.machine import Machine

    text = load_example("kernels/gemm.py").gemm_kernel(a.m, a.k, a.n, "bf16", "bf16")
    gc.disable()  # as neuron-opt does while parsing: xDSL builds many small objects
    t0 = time.perf_counter()
    module = parse_module(make_context(), text, "gemm.mlir")
    t1 = time.perf_counter()
    verify_module(module)
    t2 = time.perf_counter()
    gc.enable()
    kernel = find_kernel(module)

    rng = np.random.default_rng(0)
    inputs = {
        "at": rng.standard_normal((a.k, a.m)).astype(np.float32),
        "b": rng.standard_normal((a.k, a.n)).astype(np.float32),
    }
    out = {
        "kernel": f"bf16 GEMM {a.m}x{a.k}x{a.n}",
        "parse_s": t1 - t0,
        "verify_s": t2 - t1,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    for numerics in (False, True):
        td = time.perf_counter()
        machine = None
        if numerics:
            from neuron_opt.dialects.nisa_placement import Placement

            machine = Machine(Placement(kernel))
            machine.bind(inputs, None, module)
        program = decode.decode(kernel, machine)
        decode_s = time.perf_counter() - td
        n = program.instruction_count()
        best = float("inf")
        for _ in range(a.repeat if not numerics else 1):
            if numerics:  # memory starts empty each run
                machine.__init__(machine.pl)
                machine.bind(inputs, None, module)
                program = decode.decode(kernel, machine)
            with single_threaded():
                ts = time.perf_counter()
                tl = engines.run(program, numerics, record=False)
                best = min(best, time.perf_counter() - ts)
        key = "numerics" if numerics else "no_numerics"
        out[key] = {
            "instructions": n,
            "decode_s": decode_s,
            "loop_s": best,
            "instructions_per_s": n / best,
            "simulated_us": tl.makespan / 1000,
        }
    print(f"kernel: {out['kernel']}, {out['no_numerics']['instructions']} instructions")
    print(f"parse {out['parse_s']:.2f} s, verify {out['verify_s']:.2f} s (xDSL; not counted)")
    for key in ("no_numerics", "numerics"):
        r = out[key]
        print(
            f"{key:12s} decode {r['decode_s']:.3f} s, loop {r['loop_s']:.3f} s: "
            f"{r['instructions_per_s']:,.0f} instructions/s (simulated {r['simulated_us']:.1f} us)"
        )
    write_json(RESULTS / "simulator_speed.json", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The cost of a row operand broadcast across partitions: `(x + b) * g` with x [M, N] and b, g
[N] (f32), lowered by lower-to-nisa and simulated (timing only). Each row goes to the
partitions by one DMA per partition (bit copies, -0 kept), so its DMA bytes grow with the
partitions used; this prints the latency and DMA traffic per shape to watch that cost.

    .venv/bin/python bench/lowering_broadcast.py [--shape 512x2048] [--json FILE]

Writes bench/results/lowering_broadcast.json.
"""

from __future__ import annotations

import argparse
import sys

from bench_common import RESULTS, write_json

SHAPES = ((16, 64), (128, 512), (512, 2048))


def nt_bias_scale(m: int, n: int) -> str:
    x, r = f"tensor<{m}x{n}xf32>", f"tensor<{n}xf32>"
    return (
        f"func.func @main(%x: {x}, %b: {r}, %g: {r}) -> {x} {{\n"
        f"  %s = nt.add %x, %b : ({x}, {r}) -> {x}\n"
        f"  %y = nt.mul %s, %g : ({x}, {r}) -> {x}\n"
        f"  func.return %y : {x}\n}}\n"
    )


def run(m: int, n: int) -> dict:
    from neuron_opt.cli.common import make_context
    from neuron_opt.dialects.parse import parse_module
    from neuron_opt.lowering.lower_to_nisa import lower_module
    from neuron_opt.runtime.sim import simulate

    kernel = lower_module(parse_module(make_context(), nt_bias_scale(m, n), "broadcast.mlir"))
    r = simulate(kernel, {}, numerics=False)
    return {
        "m": m,
        "n": n,
        "instructions": r.instructions,
        "makespan_us": r.makespan_us,
        "dma_bytes": r.dma_bytes,
        "operand_bytes": 4 * (2 * m * n + 2 * n),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--shape", action="append", help="MxN (repeatable; default: 16x64, 128x512, 512x2048)"
    )
    p.add_argument("--json", default=str(RESULTS / "lowering_broadcast.json"))
    a = p.parse_args(argv)
    shapes = [tuple(int(d) for d in s.split("x")) for s in a.shape] if a.shape else SHAPES
    rows = [run(m, n) for m, n in shapes]
    print(f"{'shape':>10} {'instr':>6} {'latency us':>11} {'DMA MiB':>8} {'x,y,b,g MiB':>12}")
    for r in rows:
        print(
            f"{r['m']:>5}x{r['n']:<5}{r['instructions']:>6} {r['makespan_us']:>11.2f} "
            f"{r['dma_bytes'] / 2**20:>8.2f} {r['operand_bytes'] / 2**20:>12.2f}"
        )
    write_json(a.json, {"rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())

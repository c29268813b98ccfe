"""The lowering's GEMM figure: an M x K x N bf16 `nt.matmul` lowered by lower-to-nisa and
simulated (timing only unless --numerics): TensorE busy share and HFU.

    .venv/bin/python bench/lowering_gemm.py [--size 4096] [--numerics] [--json FILE]

Target (issue 12): at 4096^3, TensorE busy >= 90% and HFU >= 85%. Writes
bench/results/lowering_gemm.json.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from bench_common import RESULTS, write_json


def nt_gemm(m: int, k: int, n: int, dtype: str = "bf16", out: str = "bf16") -> str:
    return (
        "builtin.module {\n"
        f'  func.func @main(%a: tensor<{m}x{k}x{dtype}> {{nt.name = "a"}}, '
        f'%b: tensor<{k}x{n}x{dtype}> {{nt.name = "b"}}) -> (tensor<{m}x{n}x{out}> {{nt.name = "c"}}) {{\n'
        f"    %c = nt.matmul %a, %b {{acc = f32}} : (tensor<{m}x{k}x{dtype}>, tensor<{k}x{n}x{dtype}>) "
        f"-> tensor<{m}x{n}x{out}>\n"
        f"    func.return %c : tensor<{m}x{n}x{out}>\n  }}\n}}\n"
    )


def run(size: int, numerics: bool, dtype: str = "bf16") -> dict:
    from neuron_opt.cli.common import make_context
    from neuron_opt.dialects.parse import parse_module
    from neuron_opt.lowering.lower_to_nisa import lower_module
    from neuron_opt.runtime.sim import simulate

    ctx = make_context()
    t0 = time.perf_counter()
    module = parse_module(ctx, nt_gemm(size, size, size, dtype, dtype), "gemm.mlir")
    kernel = lower_module(module)
    t1 = time.perf_counter()
    inputs = {}
    if numerics:
        rng = np.random.default_rng(0)
        inputs = {
            "a": rng.standard_normal((size, size)).astype(np.float32),
            "b": rng.standard_normal((size, size)).astype(np.float32),
        }
    r = simulate(kernel, inputs, numerics=numerics)
    row = {
        "size": size, "dtype": dtype, "instructions": r.instructions,
        "makespan_us": r.makespan_us, "tensor_busy_us": r.busy("tensor") / 1000,
        "tensor_busy_share": r.utilization("tensor"), "hfu": r.hfu, "dma_bytes": r.dma_bytes,
        "lower_s": t1 - t0, "simulate_s": r.timings["simulate"],
    }  # fmt: skip
    if numerics:
        import ml_dtypes

        a = inputs["a"].astype(ml_dtypes.bfloat16).astype(np.float32)
        b = inputs["b"].astype(ml_dtypes.bfloat16).astype(np.float32)
        ref = (a @ b).astype(ml_dtypes.bfloat16).astype(np.float64)
        got = np.asarray(r.outputs["c"]).astype(np.float64)
        row["rel_l2_vs_numpy"] = float(np.linalg.norm(got - ref) / np.linalg.norm(ref))
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, action="append")
    p.add_argument("--numerics", action="store_true")
    p.add_argument("--json", default=str(RESULTS / "lowering_gemm.json"))
    a = p.parse_args(argv)
    rows = [run(s, a.numerics) for s in (a.size or [4096])]
    print(f"{'GEMM':>12} {'instr':>7} {'time us':>9} {'TensorE us':>10} {'busy':>7} {'HFU':>7}")
    for x in rows:
        print(
            f"{x['size']}^3 {x['dtype']:>5} {x['instructions']:>7} {x['makespan_us']:>9.1f} "
            f"{x['tensor_busy_us']:>10.1f} {100 * x['tensor_busy_share']:>6.1f}% {100 * x['hfu']:>6.1f}%"
            + (f"  rel L2 vs numpy {x['rel_l2_vs_numpy']:.2e}" if "rel_l2_vs_numpy" in x else "")
        )
    write_json(a.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

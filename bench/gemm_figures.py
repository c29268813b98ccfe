"""The "Must show" GEMM figures: TensorE busy share and HFU of the double-buffered GEMM.

    .venv/bin/python bench/gemm_figures.py [--numerics]

Runs examples/kernels/gemm.py at 1024^3 and 2048^3 in bf16, and 1024^3 in fp32 (A and B in
fp32 do not fit SBUF resident at 2048^3), timing only unless --numerics. Prints TensorE busy /
makespan, HFU, the fp32 / bf16 TensorE-time ratio, and writes bench/results/gemm_figures.json.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from bench_common import RESULTS, load_example, write_json


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--numerics", action="store_true")
    a = p.parse_args(argv)
    from neuron_opt.cli.common import make_context
    from neuron_opt.dialects.parse import parse_module, verify_module
    from neuron_opt.runtime.sim import simulate

    gemm = load_example("kernels/gemm.py")
    rows = []
    for size, dtype in ((1024, "bf16"), (2048, "bf16"), (1024, "f32")):
        text = gemm.gemm_kernel(size, size, size, dtype, "bf16" if dtype == "bf16" else "f32")
        module = parse_module(make_context(), text, "gemm.mlir")
        verify_module(module)
        inputs = {}
        if a.numerics:
            rng = np.random.default_rng(0)
            inputs = {
                "at": rng.standard_normal((size, size)).astype(np.float32),
                "b": rng.standard_normal((size, size)).astype(np.float32),
            }
        r = simulate(module, inputs, numerics=a.numerics)
        rows.append({
            "size": size, "dtype": dtype, "instructions": r.instructions,
            "makespan_us": r.makespan_us, "tensor_busy_us": r.busy("tensor") / 1000,
            "tensor_busy_share": r.utilization("tensor"), "hfu": r.hfu,
            "dma_bytes": r.dma_bytes,
        })  # fmt: skip
    print(
        f"{'GEMM':>14} {'instr':>6} {'time us':>9} {'TensorE us':>10} {'TensorE busy':>12} {'HFU':>6}"
    )
    for x in rows:
        print(
            f"{x['size']}^3 {x['dtype']:>6} {x['instructions']:>6} {x['makespan_us']:>9.1f} "
            f"{x['tensor_busy_us']:>10.1f} {100 * x['tensor_busy_share']:>11.1f}% {100 * x['hfu']:>5.1f}%"
        )
    ratio = rows[2]["tensor_busy_us"] / rows[0]["tensor_busy_us"]
    print(
        f"fp32 / bf16 at 1024^3: TensorE time x{ratio:.2f}, "
        f"makespan x{rows[2]['makespan_us'] / rows[0]['makespan_us']:.2f}"
    )
    write_json(RESULTS / "gemm_figures.json", {"rows": rows, "fp32_over_bf16_tensor_time": ratio})
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A deep elementwise graph end to end: an ONNX model of N chained Neg nodes on a 4x8 input,
run by `neuron-cc run` (import, lower, simulate, compare). It shows the lowering does not
recurse per op and prints the wall time and peak memory of the run; the output must be
(-1)^N x exactly.

    .venv/bin/python bench/deep_chain.py --ops 100000
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from bench_common import RESULTS, write_json
from onnx import TensorProto, helper


def chain_model(n: int, shape=(4, 8)) -> onnx.ModelProto:
    """y = Neg(Neg(...(x))), n nodes (also tests/malformed/test_hostile.py's deep graph)."""
    names = ["x"] + [f"t{i}" for i in range(n - 1)] + ["y"]
    nodes = [helper.make_node("Neg", [names[i]], [names[i + 1]], name=f"neg{i}") for i in range(n)]
    g = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=100_000)
    args = ap.parse_args()
    cli = Path(sys.executable).parent / "neuron-cc"
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        onnx.save(chain_model(args.ops), d / "chain.onnx")
        x = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
        np.savez(d / "x.npz", x=x)
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [cli, "run", "chain.onnx", "--inputs", "x.npz", "--auto-cast", "none", "-o", "y.npz"],
            cwd=d,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = proc.communicate()
        wall = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the only child
        if proc.returncode != 0:
            sys.exit(f"neuron-cc run failed: {err.decode()}")
        with np.load(d / "y.npz") as z:
            exact = bool(np.array_equal(z["y"], x if args.ops % 2 == 0 else -x))
    timing = next((ln for ln in out.decode().splitlines() if ln.startswith("wall:")), "")
    print(
        f"{args.ops}-op Neg chain: neuron-cc run {wall:.1f} s wall, peak RSS {peak_mb:.0f} MB "
        f"({timing.strip()}), output exact: {exact}"
    )
    write_json(
        RESULTS / "deep_chain.json",
        {
            "ops": args.ops,
            "wall_s": round(wall, 2),
            "peak_rss_mb": round(peak_mb),
            "sim_timings": timing.strip(),
            "output_exact": exact,
        },
    )
    if not exact:
        sys.exit("the output is not (-1)^N x")


if __name__ == "__main__":
    main()

"""Peak memory of `neuron-cc run` simulating a kernel that streams one large tensor through
SBUF (HBM input -> SBUF tiles -> HBM output), as a multiple of that tensor's size; and of an
nt module (relu of the tensor) that `run` lowers, simulates and checks against the interpreter.

    .venv/bin/python bench/sim_memory.py [--mb 256] [--dtype f32] [--kinds kernel,nt] [--json F]

Each run is a fresh `neuron-cc run KERNEL.mlir --inputs X.npz -o Y.npz` process (its peak RSS
from wait4); the same command on a 1 MB tensor is the baseline (Python, numpy, xDSL), so the
figure is (peak - baseline) / tensor bytes: what the simulator holds per byte of HBM tensor.
The input file holds the tensor, the kernel reads it and writes the output of the same size, so
the least a run can hold is the input, the HBM image of input and output, and the output.
Writes bench/results/sim_memory.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import RESULTS, write_json

NEURON_CC = Path(sys.executable).parent / "neuron-cc"
BYTES = {"f32": 4, "bf16": 2}
TILE_BYTES = 32 * 1024  # per partition: two double-buffered tiles of the SBUF's 192 KiB


def kernel_text(rows: int, cols: int, dtype: str) -> str:
    """Rows in tiles of 128 partitions: a load queue and a store queue, two SBUF slots."""
    tiles = rows // 128
    lines = [
        "builtin.module {",
        "  nisa.kernel @stream {",
        f"    nisa.hbm input @x : tensor<{rows}x{cols}x{dtype}>",
        f"    nisa.hbm output @y : tensor<{rows}x{cols}x{dtype}>",
        f"    nisa.sbuf @t partitions 0:128 offset 0 : tensor<128x2x{cols}x{dtype}>",
        "    nisa.semaphore @ld",
        "    nisa.semaphore @st",
        "    nisa.dma_queue @load {",
    ]
    for i in range(tiles):
        wait = f" wait(@st >= {i - 1})" if i >= 2 else ""  # the slot's previous store is done
        lines.append(
            f"      nisa.dma_copy @t[0:128, {i % 2}, 0:{cols}], "
            f"@x[{128 * i}:{128 * i + 128}, 0:{cols}]{wait} signal(@ld)"
        )
    lines += ["    }", "    nisa.dma_queue @store {"]
    for i in range(tiles):
        lines.append(
            f"      nisa.dma_copy @y[{128 * i}:{128 * i + 128}, 0:{cols}], "
            f"@t[0:128, {i % 2}, 0:{cols}] wait(@ld >= {i + 1}) signal(@st)"
        )
    lines += ["    }", "  }", "}"]
    return "\n".join(lines) + "\n"


def nt_text(rows: int, cols: int, dtype: str) -> str:
    """y = relu(x) as an nt module: `run` lowers it, simulates it, runs the interpreter and
    compares the two."""
    t = f"tensor<{rows}x{cols}x{dtype}>"
    return (
        "builtin.module {\n"
        f'  func.func @main(%0: {t} {{nt.name = "x"}}) -> ({t} {{nt.name = "y"}}) {{\n'
        f"    %1 = nt.relu %0 : {t}\n"
        f"    func.return %1 : {t}\n  }}\n}}\n"
    )


# Run in their own processes: a child reports the larger of its own peak and its parent's at the
# fork (Linux carries the high-water mark over fork and exec), so this process stays small.
MAKE_INPUT = """
import sys, numpy as np
rows, cols = int(sys.argv[2]), int(sys.argv[3])
np.savez(sys.argv[1], x=np.random.default_rng(0).standard_normal((rows, cols), dtype=np.float32))
"""
CHECK_OUTPUT = """
import sys, ml_dtypes, numpy as np
want = np.load(sys.argv[1])["x"]
if sys.argv[4] == "nt":
    want = np.maximum(want, 0)
if sys.argv[3] == "bf16":
    want = want.astype(ml_dtypes.bfloat16).astype(np.float32)
sys.exit(0 if np.array_equal(np.load(sys.argv[2])["y"], want) else 1)
"""


def run_one(d: Path, mb: float, dtype: str, kind: str) -> dict:
    esize = BYTES[dtype]
    cols = TILE_BYTES // esize
    rows = max(128, int(mb * 2**20) // (cols * esize) // 128 * 128)
    kernel = d / f"{kind}_{rows}.mlir"
    kernel.write_text((kernel_text if kind == "kernel" else nt_text)(rows, cols, dtype))
    inputs, out = d / f"x_{rows}.npz", d / f"y_{rows}.npz"
    subprocess.run(
        [sys.executable, "-c", MAKE_INPUT, str(inputs), str(rows), str(cols)], check=True
    )
    cmd = [str(NEURON_CC), "run", str(kernel), "--inputs", str(inputs), "-o", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{' '.join(cmd)} failed: {stderr.strip().splitlines()[-1:]}")
    if subprocess.run(
        [sys.executable, "-c", CHECK_OUTPUT, str(inputs), str(out), dtype, kind]
    ).returncode:
        raise SystemExit("the output is not the expected one")
    return {
        "tensor_bytes": rows * cols * esize,
        "peak_rss_bytes": usage.ru_maxrss * 1024,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=float, default=256, help="tensor size in MiB")
    p.add_argument("--dtype", default="f32", choices=sorted(BYTES))
    p.add_argument(
        "--kinds",
        default="kernel,nt",
        help="kernel: the nisa streaming kernel; nt: relu as an nt module (lowered, "
        "simulated, checked against the interpreter)",
    )
    p.add_argument("--json", type=Path, default=RESULTS / "sim_memory.json")
    a = p.parse_args(argv)
    rows = []
    for kind in a.kinds.split(","):
        with tempfile.TemporaryDirectory() as d:
            base = run_one(Path(d), 1, a.dtype, kind)
            big = run_one(Path(d), a.mb, a.dtype, kind)
        extra = big["peak_rss_bytes"] - base["peak_rss_bytes"]
        row = {
            "kind": kind,
            "dtype": a.dtype,
            "tensor_bytes": big["tensor_bytes"],
            "peak_rss_mb": big["peak_rss_bytes"] / 2**20,
            "baseline_rss_mb": base["peak_rss_bytes"] / 2**20,
            "peak_over_tensor": big["peak_rss_bytes"] / big["tensor_bytes"],
            "above_baseline_over_tensor": extra / big["tensor_bytes"],
            "wall_s": big["wall_s"],
            "cpu_s": big["cpu_s"],
        }
        rows.append(row)
        print(
            f"{kind:6} {a.dtype} tensor {big['tensor_bytes'] / 2**20:.0f} MiB: peak RSS "
            f"{row['peak_rss_mb']:.0f} MiB ({row['peak_over_tensor']:.1f}x the tensor), "
            f"{row['above_baseline_over_tensor']:.1f}x above the {row['baseline_rss_mb']:.0f} "
            f"MiB baseline; wall {big['wall_s']:.1f} s, CPU {big['cpu_s']:.1f} s",
            flush=True,
        )
    write_json(a.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

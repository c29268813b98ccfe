"""The matmul-bound example on the simulator: examples/make_examples.py's wide MLP (512 x 2048
activations through three 2048 x 2048 layers; --batch sets the rows), compiled with --auto-cast
none, matmult-bf16 and all-bf16, lowered by lower-to-nisa and simulated. Prints latency,
speed-up over none, TensorE utilization, HFU and DMA bytes; with --numerics also the simulator
vs interpreter rel L2.

    .venv/bin/python bench/lowering_wide_mlp.py [--batch 512] [--numerics] [--json FILE]

Issue 12's target: matmult-bf16 >= 3x over none (limit 4x). Writes
bench/results/lowering_wide_mlp.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import onnx
from bench_common import RESULTS, load_example, write_json

OPTIONS = (("none", "bf16"), ("matmult", "bf16"), ("all", "bf16"))


def _wide_mlp(out_dir: Path, batch: int) -> tuple[Path, dict]:
    model, inputs = load_example("make_examples.py").wide_mlp(batch)
    path = out_dir / "wide_mlp.onnx"
    onnx.save(model, path)
    return path, inputs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=512, help="activation rows (default 512)")
    p.add_argument("--numerics", action="store_true", help="also compute values and compare")
    p.add_argument("--json", default=str(RESULTS / "lowering_wide_mlp.json"))
    a = p.parse_args(argv)
    from neuron_opt.cli import models
    from neuron_opt.cli.metrics import agreement

    rows, ref32 = [], None
    with tempfile.TemporaryDirectory() as tmp:
        path, inputs = _wide_mlp(Path(tmp), a.batch)
        for mode, t in OPTIONS:
            c = models.compile_onnx(str(path), mode, t)
            r = models.simulate(c, inputs if a.numerics else {}, numerics=a.numerics)
            row = {"option": c.option, "batch": a.batch, **models.engine_summary(r)}
            if a.numerics:
                ref = models.reference(c, inputs)
                ref32 = ref if ref32 is None else ref32
                row["sim_vs_interpreter"] = agreement(r.outputs, ref)["y"]
                row["own_error"] = agreement(ref, ref32)["y"]["rel_l2"]  # interpreter vs fp32
            rows.append(row)
    base = rows[0]["latency_us"]
    print(
        f"{'option':<14} {'latency us':>10} {'speed-up':>8} {'TensorE':>8} {'HFU':>6} {'DMA MiB':>8}"
        + ("  sim vs interp rel L2 (option's own error)" if a.numerics else "")
    )
    for x in rows:
        x["speedup"] = base / x["latency_us"]
        print(
            f"{x['option']:<14} {x['latency_us']:>10.1f} {x['speedup']:>7.2f}x {100 * x['tensor_busy']:>7.1f}% "
            f"{100 * x['hfu']:>5.1f}% {x['dma_bytes'] / 2**20:>8.1f}"
            + (
                f"  {x['sim_vs_interpreter']['rel_l2']:.2e} ({x['own_error']:.2e})"
                if a.numerics
                else ""
            )
        )
    write_json(a.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

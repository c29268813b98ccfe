"""Scaled fp8 against plain fp8 and bf16: error vs fp32, arg-max agreement, simulated latency.

For each model: `neuron-cc calibrate` on calibration inputs, then every option evaluated on
held-out inputs. small_values: its *_inputs.npz and *_heldout_inputs.npz (64 rows each). Zoo
models (batch 1): calibration on the model's *_inputs.npz plus DRAWS - 1 seeded draws like
make_zoo's (images N(0, 1); token ids in the same range, same mask and token types), held-out
on DRAWS other draws. Per option, from the reference interpreter against its fp32 run: rel L2
of the worst output (mean over the held-out sets), arg-max agreement over the last axis (mean),
outputs flushed to zero where fp32 is not (sum); from the simulator: latency (timing only) and,
for the scaled option, its outputs against the interpreter's (rel L2, worst).

    .venv/bin/python bench/scaled_fp8.py [small_values resnet bert ...]   # table + bench/results/scaled_fp8.json
    .venv/bin/python bench/scaled_fp8.py DIR/mlp2048.torchscript.onnx    # a zoo export elsewhere (its
                                                                         # DIR/mlp2048_inputs.npz beside it)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_common import RESULTS, ROOT, write_json

from neuron_opt.cli.cc_calibrate import calibrate
from neuron_opt.cli.metrics import argmax_agreement, error_norms
from neuron_opt.cli.models import OnnxModel, reference, simulate
from neuron_opt.passes.precision_plan import format_plan

EXAMPLES = ROOT / "examples"
MODELS = {  # name: (model, calibration inputs, held-out inputs or None: drawn here)
    "small_values": (
        "small_values.onnx",
        "small_values_inputs.npz",
        "small_values_heldout_inputs.npz",
    ),
    "resnet": ("zoo/resnet.torchscript.onnx", "zoo/resnet_inputs.npz", None),
    "mobilenet_v2": ("zoo/mobilenet_v2.torchscript.onnx", "zoo/mobilenet_v2_inputs.npz", None),
    "bert": ("zoo/bert.torchscript.onnx", "zoo/bert_inputs.npz", None),
    "vit": ("zoo/vit.torchscript.onnx", "zoo/vit_inputs.npz", None),
}
OPTIONS = {  # label: (mode, type, scaled plan?)
    "matmult-bf16": ("matmult", "bf16", False),
    "matmult-fp8": ("matmult", "fp8_e4m3", False),
    "matmult-fp8 scaled": ("matmult", "bf16", True),
}
DRAWS = 4
HELD_OUT_SEED = 2026


def draw(like: dict, seed: int) -> dict:
    """Inputs like `like`'s: float inputs N(0, 1), token ids in its ids' range, other integer
    inputs (masks, token types) as they are."""
    g = np.random.default_rng(seed)
    out = {}
    for k, v in like.items():
        if v.dtype.kind == "f":
            out[k] = g.standard_normal(v.shape).astype(v.dtype)
        elif k == "input_ids":
            out[k] = g.integers(0, int(v.max()) + 1, v.shape, dtype=v.dtype)
        else:
            out[k] = v
    return out


def flushed(out, ref) -> int:
    o, r = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    return int(((o == 0) & (r != 0)).sum())


def _model(name: str) -> tuple[str, str, str | None]:
    """(model, calibration inputs, held-out inputs or None) of a name or a zoo export's path."""
    if name.endswith(".onnx"):
        p = Path(name).resolve()
        return str(p), str(p.with_name(p.name.split(".")[0] + "_inputs.npz")), None
    return MODELS[name]


def measure(name: str, tmp: Path) -> dict:
    model_rel, calib_rel, held_rel = _model(name)
    path = str(EXAMPLES / model_rel)
    model = OnnxModel(path)
    first = model.inputs(str(EXAMPLES / calib_rel))
    calib_files = [str(EXAMPLES / calib_rel)]
    if held_rel:
        tests = [model.inputs(str(EXAMPLES / held_rel))]
    else:
        for i in range(1, DRAWS):
            f = tmp / f"{name}_calib{i}.npz"
            np.savez(f, **draw(first, i))
            calib_files.append(str(f))
        tests = [draw(first, HELD_OUT_SEED + i) for i in range(DRAWS)]
    t0 = time.perf_counter()
    rules, count = calibrate(path, calib_files, 1.0)
    calib_s = time.perf_counter() - t0
    plan = tmp / f"{name}_fp8.toml"
    plan.write_text(format_plan(rules))
    fp32 = model.compile("none", "bf16")
    refs = [reference(fp32, t) for t in tests]
    base_us = simulate(fp32, tests[0], numerics=False).makespan_us
    rows = {}
    for label, (mode, type_, scaled) in OPTIONS.items():
        c = model.compile(mode, type_, plan={"plan": str(plan)} if scaled else None, label=label)
        outs = [reference(c, t) for t in tests]
        sim = simulate(c, tests[0], numerics=scaled)
        row = {
            "rel_l2": float(
                np.mean(
                    [max(error_norms(o[k], r[k])["rel_l2"] for k in o) for o, r in zip(outs, refs)]
                )
            ),
            "argmax_agreement": float(
                np.mean([min(argmax_agreement(o[k], r[k]) for k in o) for o, r in zip(outs, refs)])
            ),
            "flushed_to_zero": sum(flushed(o[k], r[k]) for o, r in zip(outs, refs) for k in o),
            "latency_us": sim.makespan_us,
        }
        if scaled:
            row["sim_vs_interpreter_rel_l2"] = max(
                error_norms(sim.outputs[k], outs[0][k])["rel_l2"] for k in outs[0]
            )
        rows[label] = row
    return {
        "model": model_rel,
        "calibration_sets": len(calib_files),
        "held_out_sets": len(tests),
        "contractions": count,
        "calibrate_s": calib_s,
        "none_latency_us": base_us,
        "options": rows,
    }


def main(names: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    t0, c0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as d:
        results = {Path(n).name.split(".")[0]: measure(n, Path(d)) for n in names}
    t = Table(
        title="scaled fp8, calibrated on some inputs and evaluated on held-out ones: vs the fp32 interpreter"
    )
    for col in (
        "model",
        "option",
        "rel L2",
        "arg-max agree",
        "flushed to 0",
        "latency µs",
        "vs bf16",
        "sim vs interp",
    ):
        t.add_column(col, justify="left" if col in ("model", "option") else "right")
    for n, r in results.items():
        bf16 = r["options"]["matmult-bf16"]["latency_us"]
        for label, row in r["options"].items():
            t.add_row(
                n,
                label,
                f"{row['rel_l2']:.3e}",
                f"{row['argmax_agreement']:.4f}",
                str(row["flushed_to_zero"]),
                f"{row['latency_us']:.2f}",
                f"{bf16 / row['latency_us']:.3f}x",
                f"{row['sim_vs_interpreter_rel_l2']:.1e}"
                if "sim_vs_interpreter_rel_l2" in row
                else "",
            )
    Console(width=160).print(t)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"wall {wall:.1f} s, CPU {cpu:.1f} s")
    write_json(RESULTS / "scaled_fp8.json", {"models": results, "wall_s": wall, "cpu_s": cpu})


if __name__ == "__main__":
    main(sys.argv[1:] or list(MODELS))

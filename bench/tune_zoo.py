"""`neuron-cc tune` on models of the tiny zoo: the plan found, its simulated latency and error
next to the best uniform option (sweep's recommendation at the same tolerance), its error on
held-out inputs, the search's wall and CPU time and evaluation count; and the same search with
`--ray local` (a Ray instance started on this machine) against the process pool.

    .venv/bin/python bench/tune_zoo.py [--models bert,gpt2,resnet,mobilenet_v2] [--tolerance 1e-2]
        [--jobs N] [--ray-models resnet] [--zoo examples/zoo] [--json FILE]

Held-out inputs are a seeded second draw shaped like the committed ones (token ids uniform over
the committed range, masks and segment ids as committed, floats normal with their mean and
spread, as the zoo draws them), written beside the results.
Each tune is a fresh `neuron-cc tune` process; CPU seconds count it and its worker processes
(Ray's workers are not children of it: their CPU is not in the `--ray` rows). Writes
bench/results/tune_zoo.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bench_common import RESULTS, ROOT, write_json

NEURON_CC = Path(sys.executable).parent / "neuron-cc"


def held_out(inputs: Path, out: Path, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    with np.load(inputs) as z:
        draw = {}
        for k in z.files:
            v = z[k]
            if v.dtype.kind in "iu" and len(np.unique(v)) <= 2:
                draw[k] = v  # masks and segment ids keep their structure
            elif v.dtype.kind in "iu":
                draw[k] = rng.integers(v.min(), v.max() + 1, size=v.shape).astype(v.dtype)
            else:
                draw[k] = rng.normal(float(v.mean()), float(v.std()) or 1.0, size=v.shape).astype(
                    v.dtype
                )
    np.savez(out, **draw)
    return out


def tune(
    model: Path, inputs: Path, validate: Path, tolerance: float, where: list[str], out: Path
) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    js, plan = out / "tune.json", out / "plan.toml"
    cmd = [
        str(NEURON_CC),
        "tune",
        str(model),
        "--inputs",
        str(inputs),
        "--validate",
        str(validate),
        "--tolerance",
        str(tolerance),
        "-o",
        str(plan),
        "--json",
        str(js),
        "--plot",
        str(out / "tune.png"),
        *where,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1], "wall_s": wall}
    rep = json.loads(js.read_text())
    rows = {r["option"]: r for r in rep["options"]}
    t, u = rows["tuned"], rows.get(rep["best_uniform"]) if rep["best_uniform"] else None
    val = rep["validate"] or {}
    return {
        "plan": plan.read_text(),
        "precision_counts": rep["precision_counts"],
        "precisions": rep["precisions"],
        "tuned_latency_us": t["latency_us"],
        "tuned_rel_l2": t["rel_l2"],
        "best_uniform": rep["best_uniform"],
        "uniform_latency_us": u["latency_us"] if u else None,
        "uniform_rel_l2": u["rel_l2"] if u else None,
        "speedup": u["latency_us"] / t["latency_us"] if u else None,
        "validate_tuned_rel_l2": val.get("tuned", {}).get("rel_l2"),
        "validate_uniform_rel_l2": val.get(rep["best_uniform"], {}).get("rel_l2") if u else None,
        "evaluations": rep["search"]["evaluations"],
        "search_wall_s": rep["search"]["wall_seconds"],
        "command_wall_s": wall,
        "command_cpu_s": cpu,
        "where": where,
    }


def _e(v) -> str:
    return "-" if v is None else f"{v:.2e}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--zoo", default=str(ROOT / "examples" / "zoo"))
    p.add_argument("--models", default="bert,gpt2,resnet,mobilenet_v2")
    p.add_argument(
        "--ray-models", default="resnet", help="models also tuned with --ray local ('' for none)"
    )
    p.add_argument("--tolerance", type=float, default=1e-2)
    p.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--json", default=str(RESULTS / "tune_zoo.json"))
    args = p.parse_args(argv)

    zoo = Path(args.zoo)
    work = RESULTS / "tune_zoo"
    rows, ray_rows = [], []
    for name in args.models.split(","):
        model, inputs = zoo / f"{name}.torchscript.onnx", zoo / f"{name}_inputs.npz"
        (work / name).mkdir(parents=True, exist_ok=True)
        validate = held_out(inputs, work / name / "validate.npz")
        r = {"model": name} | tune(
            model,
            inputs,
            validate,
            args.tolerance,
            ["--jobs", str(args.jobs)],
            work / name / "pool",
        )
        rows.append(r)
        print(
            json.dumps({k: v for k, v in r.items() if k not in ("plan", "precisions")}), flush=True
        )
        if name in args.ray_models.split(","):
            ray = tune(
                model, inputs, validate, args.tolerance, ["--ray", "local"], work / name / "ray"
            )
            ray_rows.append(
                {
                    "model": name,
                    "pool_wall_s": r.get("search_wall_s"),
                    "ray_wall_s": ray.get("search_wall_s"),
                    "pool_command_wall_s": r.get("command_wall_s"),
                    "ray_command_wall_s": ray.get("command_wall_s"),
                    "identical_plans": "plan" in ray and ray["plan"] == r.get("plan"),
                    "error": ray.get("error"),
                }
            )

    print(
        f"\ntune at rel L2 <= {args.tolerance:g} (tiny zoo, TorchScript exports, --jobs {args.jobs})"
    )
    head = (
        "model",
        "tuned plan",
        "tuned µs",
        "rel L2",
        "best uniform",
        "uniform µs",
        "rel L2",
        "speed-up",
        "held-out tuned",
        "held-out uniform",
        "evals",
        "search s",
        "cmd wall s",
        "cmd CPU s",
    )
    print(" | ".join(head))
    for r in rows:
        if "error" in r:
            print(f"{r['model']} | failed: {r['error']}")
            continue
        plan = ", ".join(f"{n} {p}" for p, n in r["precision_counts"].items())
        print(
            " | ".join(
                [
                    r["model"],
                    plan,
                    f"{r['tuned_latency_us']:.2f}",
                    _e(r["tuned_rel_l2"]),
                    str(r["best_uniform"]),
                    f"{r['uniform_latency_us']:.2f}" if r["uniform_latency_us"] else "-",
                    _e(r["uniform_rel_l2"]),
                    f"{r['speedup']:.3f}x" if r["speedup"] else "-",
                    _e(r["validate_tuned_rel_l2"]),
                    _e(r["validate_uniform_rel_l2"]),
                    str(r["evaluations"]),
                    f"{r['search_wall_s']:.1f}",
                    f"{r['command_wall_s']:.1f}",
                    f"{r['command_cpu_s']:.1f}",
                ]
            )
        )
    if ray_rows:
        print(
            "\n--ray local vs the process pool (search wall s; command wall s includes Ray's start)"
        )
        for r in ray_rows:
            print(
                f"{r['model']} | pool {r['pool_wall_s']} s | ray {r['ray_wall_s']} s | command: pool "
                f"{r['pool_command_wall_s']} s, ray {r['ray_command_wall_s']} s | identical plans: "
                f"{r['identical_plans']}" + (f" | ray failed: {r['error']}" if r["error"] else "")
            )
    write_json(
        args.json, {"tolerance": args.tolerance, "jobs": args.jobs, "models": rows, "ray": ray_rows}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

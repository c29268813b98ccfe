"""Wall time and peak memory of `neuron-cc run` with numerics, per stage (import, passes,
lowering, decode, simulate, interpreter, onnxruntime), on models of the zoo.

    .venv/bin/python bench/run_speed.py [--zoo zoo-out] [--models resnet,bert] \
        [--options none,matmult] [--json FILE]

Models come from a zoo folder's zoo.json (`make zoo` writes zoo-out/, the committed tiny zoo is
examples/zoo); the TorchScript export of each model is run. Each run is a fresh
`neuron-cc run` process, so the peak RSS is the whole command's. Writes
bench/results/run_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import RESULTS, ROOT, write_json

NEURON_CC = Path(sys.executable).parent / "neuron-cc"


def run_one(model: Path, inputs: Path, option: str) -> dict:
    mode, _, type_ = option.partition("-")
    with tempfile.TemporaryDirectory() as d:
        js = Path(d) / "run.json"
        cmd = [
            str(NEURON_CC),
            "run",
            str(model),
            "--inputs",
            str(inputs),
            "--auto-cast",
            mode,
            "--json",
            str(js),
        ] + (["--auto-cast-type", type_] if type_ else [])
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        stderr = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
        wall = time.perf_counter() - t0
        code = os.waitstatus_to_exitcode(status)
        # CPU seconds too: on a shared machine the wall time also counts other work
        row = {
            "model": model.name,
            "option": option,
            "wall_s": wall,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "exit": code,
            "peak_rss_mb": usage.ru_maxrss / 1024,
        }
        if code:
            row["error"] = (stderr.strip().splitlines() or ["?"])[-1]
            return row
        report = json.loads(js.read_text())
    stages = dict(report["wall_seconds"])
    stages.pop("simulation")  # split below into the simulator's decode and run
    row["stages_s"] = stages | report["metrics"]["wall_seconds"]
    row["latency_us"] = report["simulation"]["latency_us"]
    row["instructions"] = report["simulation"]["instructions"]
    row["sim_vs_interpreter_rel_l2"] = max(
        (m["vs_interpreter"]["rel_l2"] for m in report["outputs"].values()), default=None
    )
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--zoo", type=Path, default=ROOT / "zoo-out")
    p.add_argument("--models", help="comma-separated zoo names (default: every model)")
    p.add_argument(
        "--options", default="matmult-bf16", help="comma-separated, e.g. none,matmult-bf16"
    )
    p.add_argument("--exporter", default="torchscript")
    p.add_argument("--json", type=Path, default=RESULTS / "run_speed.json")
    a = p.parse_args(argv)
    zoo = json.loads((a.zoo / "zoo.json").read_text())
    want = set(a.models.split(",")) if a.models else None
    rows = []
    print(f"{'model':28} {'option':14} {'wall s':>7} {'CPU s':>7} {'RSS MB':>7}  stages (wall s)")
    for m in zoo["models"]:
        if m["exporter"] != a.exporter or (want and m["name"] not in want):
            continue
        for option in a.options.split(","):
            r = run_one(a.zoo / m["file"], a.zoo / m["inputs_file"], option)
            rows.append(r)
            rss = f"{r['peak_rss_mb']:.0f}"
            detail = r.get("error") or "  ".join(f"{k} {v:.1f}" for k, v in r["stages_s"].items())
            print(
                f"{m['file']:28} {option:14} {r['wall_s']:7.1f} {r['cpu_s']:7.1f} {rss:>7}  {detail}",
                flush=True,
            )
    write_json(a.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

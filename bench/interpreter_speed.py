"""Reference interpreter speed vs onnxruntime (CPU) on the example models.

For each examples/*.onnx (with its *_inputs.npz): onnxruntime's run time, and the interpreter's
run time for `--auto-cast none` (the target: within 5x of onnxruntime) and for every other
option (matmult/all x bf16/fp16/tf32/fp8_e4m3; low precision pays for rounding). Both sides
are prepared first (session creation; import, cast pipeline and weight loading), then timed as
the median of repeated runs, wall clock and process CPU time. Prints a table and writes
bench/results/interpreter_speed.json.

    .venv/bin/python bench/interpreter_speed.py [--repeat N] [--models mlp,cnn] [--wide]

--wide also builds examples/make_examples.py's matmul-bound wide_mlp (~48 MB) in a temporary
directory and times it: the small examples run in microseconds in onnxruntime, so there the
ratio measures Python's per-op overhead rather than the arithmetic.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from bench_common import RESULTS, ROOT, load_example, write_json

from neuron_opt.importers.onnx import import_onnx, save_compiled
from neuron_opt.options import CAST_TYPES, CASTING_MODES
from neuron_opt.passes.pipeline import run_cast_pipeline
from neuron_opt.runtime.reference import Reference

EXAMPLES = ROOT / "examples"
TARGET = 5.0  # none: interpreter within 5x of onnxruntime
OPTIONS = ["none"] + [f"{m}-{t}" for m in CASTING_MODES for t in CAST_TYPES]


def timed(fn, repeat: int) -> dict[str, float]:
    """Median wall and CPU seconds of `fn()` over `repeat` runs, after two warm-up runs."""
    fn()
    fn()
    wall, cpu = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return {"wall_s": statistics.median(wall), "cpu_s": statistics.median(cpu)}


def bench_model(onnx_path: Path, repeat: int, workdir: Path) -> dict:
    inputs = dict(np.load(onnx_path.with_name(onnx_path.stem + "_inputs.npz")))
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ort_t = timed(lambda: sess.run(None, inputs), repeat)
    row = {"model": onnx_path.stem, "onnxruntime": ort_t, "options": {}}
    for option in OPTIONS:
        mode, _, typ = option.partition("-")
        module, weights = import_onnx(onnx_path)
        n_ops = sum(1 for _ in module.walk()) - 2  # minus module and func
        if mode != "none":
            run_cast_pipeline(module, mode, typ)
        out = workdir / f"{onnx_path.stem}_{option}.mlir"
        save_compiled(module, weights, out)
        t0 = time.perf_counter()
        ref = Reference(module, base_dir=workdir)
        ref.run(inputs)  # first run also loads and rounds the weights
        first = time.perf_counter() - t0
        t = timed(lambda: ref.run(inputs), repeat)
        t.update(
            first_run_s=first,
            ops=n_ops,
            wall_ratio=t["wall_s"] / ort_t["wall_s"],
            cpu_ratio=t["cpu_s"] / max(ort_t["cpu_s"], 1e-9),
        )
        row["options"][option] = t
    return row


def _build_wide(out_dir: Path) -> Path:
    mod = load_example("make_examples.py")
    return mod.write("wide_mlp", mod.wide_mlp, out_dir)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=50, help="timed runs per measurement")
    ap.add_argument("--models", help="comma-separated model stems (default: every example)")
    ap.add_argument("--wide", action="store_true", help="also time the matmul-bound wide_mlp")
    args = ap.parse_args()
    paths = sorted(EXAMPLES.glob("*.onnx"))
    if args.models:
        wanted = set(args.models.split(","))
        paths = [p for p in paths if p.stem in wanted]
    paths = [p for p in paths if p.with_name(p.stem + "_inputs.npz").exists()]
    if not paths and not args.wide:
        raise SystemExit("interpreter_speed: error: no example models with inputs in examples/")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.wide:
            paths.append(_build_wide(Path(tmp)))
        for p in paths:
            rows.append(bench_model(p, args.repeat if p.stem != "wide_mlp" else 5, Path(tmp)))

    print(
        f"{'model':<14}{'option':<18}{'ops':>5}{'interp ms':>11}{'ort ms':>9}"
        f"{'wall x':>8}{'cpu x':>8}"
    )
    for row in rows:
        ort_ms = row["onnxruntime"]["wall_s"] * 1e3
        for option, t in row["options"].items():
            print(
                f"{row['model']:<14}{option:<18}{t['ops']:>5}{t['wall_s'] * 1e3:>11.3f}"
                f"{ort_ms:>9.3f}{t['wall_ratio']:>8.2f}{t['cpu_ratio']:>8.2f}"
            )
    worst = max(r["options"]["none"]["wall_ratio"] for r in rows)
    verdict = "within" if worst <= TARGET else "OVER"
    print(f"none: worst wall ratio {worst:.2f}x, {verdict} the {TARGET:.0f}x target")

    RESULTS.mkdir(exist_ok=True)
    report = {
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "onnxruntime": ort.__version__,
            "processor": platform.processor(),
        },
        "repeat": args.repeat,
        "target_none_ratio": TARGET,
        "worst_none_wall_ratio": worst,
        "models": rows,
    }
    write_json(RESULTS / "interpreter_speed.json", report)


if __name__ == "__main__":
    main()

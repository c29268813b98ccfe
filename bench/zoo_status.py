"""Which zoo models reach the simulator: every export of the model zoo (examples/zoo, or with
--real the make-zoo sizes in zoo-out/) under none, matmult-bf16, all-bf16, all-fp16 and
matmult-fp8_e4m3, taken stage by stage: import, cast pipeline, lowering, simulation,
interpreter, and the simulator against the interpreter (same option). Prints a table and the
first error of each stop, and writes bench/results/zoo_status[_real].json with, per model and
option, each stage's status, wall time and first error, the simulated latency, speed-up over
none and the simulator's rel L2 against the interpreter.

    .venv/bin/python bench/zoo_status.py [--real] [--only bert,resnet] [--jobs N] [--json FILE]

A match is rel L2 <= 1e-5 under none, else within a share of the option's own error (the
interpreter against fp32: a quarter for bf16 and fp8, all of it for fp16), with the same
outputs finite. Models run in parallel processes with --jobs (default 1: a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from bench_common import RESULTS, ROOT, write_json

sys.path.insert(0, str(ROOT / "tests"))
from testlib import sim_bound

OPTIONS = [
    ("none", "bf16"),
    ("matmult", "bf16"),
    ("all", "bf16"),
    ("all", "fp16"),
    ("matmult", "fp8_e4m3"),
]


def label(mode: str, type_: str) -> str:
    return "none" if mode == "none" else f"{mode}-{type_}"


def _message(e: BaseException) -> str:
    """One line: a CompileError as users see it, anything else (a bug) with its type and the
    innermost frame."""
    from neuron_opt.diagnostics import CompileError

    if isinstance(e, CompileError):
        return str(e).splitlines()[0]
    tb = traceback.extract_tb(e.__traceback__)
    at = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {first}{at}"


class _Stage:
    """Times one stage into `row` and records its failure (the run stops at the first)."""

    def __init__(self, row: dict, name: str):
        self.row, self.name = row, name

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, et, e, tb):
        self.row["wall_s"][self.name] = round(time.perf_counter() - self.t0, 3)
        if e is None:
            self.row["stages"][self.name] = "ok"
            return False
        if not isinstance(e, Exception):
            return False  # KeyboardInterrupt and the like end the run
        self.row["stages"][self.name] = "failed"
        self.row["stopped_at"] = self.name
        self.row["error"] = _message(e)
        return True


def measure(zoo_dir: str, record: dict, options: list[tuple[str, str]]) -> dict:
    """One export through every option: a dict for the JSON (picklable: runs in a worker)."""
    from neuron_opt.cli import models

    path = os.path.relpath(Path(zoo_dir) / record["file"])  # errors name it as given
    out = {
        "model": record["name"],
        "exporter": record["exporter"],
        "family": record["family"],
        "file": record["file"],
        "wall_s": {},
        "stages": {},
        "options": {},
    }
    with _Stage(out, "import"):
        model = models.OnnxModel(path)
        inputs = model.inputs(str(Path(zoo_dir) / record["inputs_file"]))
    if "error" in out:
        return out
    ref32 = None
    for mode, type_ in options:
        row = {"wall_s": {}, "stages": {}}
        out["options"][label(mode, type_)] = row
        with _Stage(row, "cast"):
            c = model.compile(mode, type_)
        if "error" in row:
            continue
        with _Stage(row, "lower"):
            _ = c.kernel
        if "error" in row:
            continue
        with _Stage(row, "simulate"):
            result = models.simulate(c, inputs)
            row.update(models.engine_summary(result))
        if "error" in row:
            continue
        with _Stage(row, "interpret"):
            ref = models.reference(c, inputs)
            if ref32 is None:
                ref32 = (
                    ref
                    if mode == "none"
                    else models.reference(model.compile("none", "bf16"), inputs)
                )
        if "error" in row:
            continue
        with _Stage(row, "compare"):
            row["outputs"] = _compare(result.outputs, ref, ref32, mode, type_)
            row["sim_vs_interpreter_rel_l2"] = max(o["rel_l2"] for o in row["outputs"].values())
            row["match"] = all(o["match"] for o in row["outputs"].values())
            if mode == "none" and "float64_file" in record:
                row["vs_float64"] = _vs_float64(result.outputs, ref, zoo_dir, record)
    base = out["options"].get("none", {}).get("latency_us")
    for row in out["options"].values():
        if base and "latency_us" in row:
            row["speedup"] = base / row["latency_us"]
    return out


def _vs_float64(sim: dict, ref: dict, zoo_dir: str, record: dict) -> dict:
    """fp32 runs against the model run by torch in float64 (the truth they approximate): a
    deep net's fp32 error grows with depth, and this says whose it is."""
    import numpy as np

    from neuron_opt.cli.metrics import error_norms

    exact = dict(np.load(Path(zoo_dir) / record["float64_file"]))
    ort = dict(np.load(Path(zoo_dir) / record["outputs_file"]))
    worst = lambda outs: max(error_norms(outs[k], exact[k])["rel_l2"] for k in exact)  # noqa: E731
    return {"simulator": worst(sim), "interpreter": worst(ref), "onnxruntime": worst(ort)}


def _compare(sim: dict, ref: dict, ref32: dict, mode: str, type_: str) -> dict:
    import numpy as np

    from neuron_opt.cli.metrics import agreement

    agree = agreement(sim, ref)
    res = {}
    for name, r in ref.items():
        own = agreement({name: r}, {name: ref32[name]})[name]["rel_l2"]
        bound = sim_bound(mode, type_, own)
        finite_same = bool(
            np.array_equal(
                np.isfinite(np.asarray(sim[name], np.float64)),
                np.isfinite(np.asarray(r, np.float64)),
            )
        )
        e = agree[name]
        res[name] = {
            "rel_l2": e["rel_l2"],
            "rel_max_abs": e["rel_max_abs"],
            "differing_share": e["differing_share"],
            "own_error": own,
            "bound": bound,
            "match": finite_same and e["rel_l2"] <= bound,
        }
    return res


def _cell(row: dict) -> str:
    if "error" in row:
        op = re.search(r"error: (nt\.\w+|nisa\.\w+)", row["error"])
        return f"[red]stops: {row['stopped_at']}{f' ({op.group(1)})' if op else ''}[/red]"
    mark = (
        "[green]match[/green]"
        if row["match"]
        else f"[red]MISMATCH {row['sim_vs_interpreter_rel_l2']:.1e}[/red]"
    )
    s = row.get("speedup")
    sp = "" if s is None else (f" {s:.2f}x" if s >= 1 else f" [red]{s:.2f}x[/red]")
    return f"{row['latency_us']:.2f} µs{sp} {mark}"


def print_report(results: list[dict], options: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 200))
    t = Table(
        title="zoo on the NeuronCore-v2 simulator: latency, speed-up over none, sim vs interpreter",
        title_justify="left",
    )
    t.add_column("model.exporter", no_wrap=True)
    t.add_column("import s", justify="right")
    for o in options:
        t.add_column(o, justify="right", no_wrap=True)
    t.add_column("wall s", justify="right")
    for r in results:
        wall = r["wall_s"].get("import", 0) + sum(
            sum(x["wall_s"].values()) for x in r["options"].values()
        )
        if "error" in r:
            t.add_row(
                f"{r['model']}.{r['exporter']}",
                "[red]fails[/red]",
                *[""] * len(options),
                f"{wall:.1f}",
            )
            continue
        t.add_row(
            f"{r['model']}.{r['exporter']}",
            f"{r['wall_s']['import']:.2f}",
            *[_cell(r["options"][o]) for o in options],
            f"{wall:.1f}",
        )
    console.print(t)
    console.print(
        "first stops (stage: error):"
        if any("error" in r or any("error" in x for x in r["options"].values()) for r in results)
        else "first stops: none"
    )
    for r in results:
        key = f"{r['model']}.{r['exporter']}"
        if "error" in r:
            console.print(
                f"  {key} all options: import: {r['error']}", markup=False, soft_wrap=True
            )
            continue
        stops: dict[str, list[str]] = {}
        for o in options:
            row = r["options"][o]
            if "error" in row:
                stops.setdefault(f"{row['stopped_at']}: {row['error']}", []).append(o)
        for msg, opts in stops.items():
            which = "all options" if len(opts) == len(options) else ", ".join(opts)
            console.print(f"  {key} {which}: {msg}", markup=False, soft_wrap=True)
    off = [
        r
        for r in results
        if r["options"].get("none", {}).get("match") is False
        and "vs_float64" in r["options"]["none"]
    ]
    if off:
        console.print(
            "mismatches under none, against the float64 torch run (fp32 error grows with depth):"
        )
    for r in off:
        row = r["options"]["none"]
        f = row["vs_float64"]
        console.print(
            f"  {r['model']}.{r['exporter']}: simulator vs interpreter "
            f"{row['sim_vs_interpreter_rel_l2']:.1e} > 1e-5; rel L2 to float64: "
            f"simulator {f['simulator']:.1e}, interpreter {f['interpreter']:.1e}, "
            f"onnxruntime {f['onnxruntime']:.1e}",
            markup=False,
            soft_wrap=True,
        )
    counts = summary(results, options)
    console.print(
        f"{counts['exports']} exports x {len(options)} options = {counts['runs']} runs: "
        f"{counts['imported']} exports import; {counts['simulated']} runs simulate, "
        f"{counts['matched']} match the interpreter; exports that simulate under every option: "
        f"{counts['all_options_simulate']}; stops by stage: {counts['stops']}"
    )


def summary(results: list[dict], options: list[str]) -> dict:
    stops: dict[str, int] = {}
    runs = simulated = matched = whole = 0
    for r in results:
        if "error" in r:
            stops["import"] = stops.get("import", 0) + len(options)
            runs += len(options)
            continue
        ok = 0
        for o in options:
            row = r["options"][o]
            runs += 1
            if "latency_us" in row:
                simulated += 1
                ok += 1
            if row.get("match"):
                matched += 1
            if "error" in row:
                stops[row["stopped_at"]] = stops.get(row["stopped_at"], 0) + 1
        whole += ok == len(options)
    return {
        "exports": len(results),
        "runs": runs,
        "imported": sum("error" not in r for r in results),
        "simulated": simulated,
        "matched": matched,
        "all_options_simulate": whole,
        "stops": stops,
    }


def main(argv=None) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--real", action="store_true", help="the make-zoo sizes in zoo-out/ (default: the tiny zoo)"
    )
    p.add_argument("--zoo", help="the zoo folder (default examples/zoo, or zoo-out with --real)")
    p.add_argument("--only", help="comma-separated model names (default: all)")
    p.add_argument("--exporters", help="comma-separated exporters (default: all)")
    p.add_argument(
        "--options",
        help="comma-separated options (default: " + ",".join(label(*o) for o in OPTIONS) + ")",
    )
    p.add_argument(
        "--jobs", type=int, default=1, help="models measured in parallel processes (default 1)"
    )
    p.add_argument(
        "--json", help="where the results go (default bench/results/zoo_status[_real].json)"
    )
    a = p.parse_args(argv)
    zoo = Path(a.zoo) if a.zoo else (ROOT / "zoo-out" if a.real else ROOT / "examples" / "zoo")
    manifest_path = zoo / "zoo.json"
    if not manifest_path.is_file():
        hint = " (run `make zoo` first)" if a.real else ""
        print(f"{manifest_path}: error: no zoo manifest{hint}", file=sys.stderr)
        return 1
    manifest = json.loads(manifest_path.read_text())
    records = [r for r in manifest["models"] if "error" not in r]
    for flag, key in ((a.only, "name"), (a.exporters, "exporter")):
        if flag:
            wanted = set(flag.split(","))
            unknown = wanted - {r[key] for r in manifest["models"]}
            if unknown:
                print(
                    f"zoo_status: error: no {key} {', '.join(sorted(unknown))} in {manifest_path}",
                    file=sys.stderr,
                )
                return 1
            records = [r for r in records if r[key] in wanted]
    options = OPTIONS
    if a.options:
        by_label = {label(*o): o for o in OPTIONS}
        bad = [o for o in a.options.split(",") if o not in by_label]
        if bad:
            print(
                f"zoo_status: error: unknown option {', '.join(bad)} (options: {', '.join(by_label)})",
                file=sys.stderr,
            )
            return 1
        options = [by_label[o] for o in a.options.split(",")]
    if a.jobs < 1:
        print("zoo_status: error: --jobs must be at least 1", file=sys.stderr)
        return 1
    names = [label(*o) for o in options]
    t0 = time.perf_counter()
    results = []
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    ) as prog:
        task = prog.add_task("zoo", total=len(records))

        def done(result: dict) -> None:
            results.append(result)
            prog.advance(task)
            if not console.is_terminal:  # a log gets a line per export (a --real run takes long)
                print(
                    f"{len(results)}/{len(records)} {result['model']}.{result['exporter']} measured "
                    f"({time.perf_counter() - t0:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )

        if a.jobs == 1:
            for r in records:
                prog.update(task, description=f"{r['name']}.{r['exporter']}")
                done(measure(str(zoo), r, options))
        else:
            with ProcessPoolExecutor(max_workers=a.jobs) as pool:
                futures = [pool.submit(measure, str(zoo), r, options) for r in records]
                for f in as_completed(futures):
                    done(f.result())
    order = {(r["name"], r["exporter"]): i for i, r in enumerate(records)}
    results.sort(key=lambda r: order[(r["model"], r["exporter"])])
    print_report(results, names)
    wall = time.perf_counter() - t0
    print(f"wall {wall:.0f} s with --jobs {a.jobs}")
    from neuron_opt.cli.tables import json_safe

    out = (
        Path(a.json)
        if a.json
        else RESULTS / ("zoo_status_real.json" if a.real else "zoo_status.json")
    )
    write_json(
        out,
        json_safe(
            {
                "zoo": str(zoo),
                "size": manifest.get("size"),
                "options": names,
                "jobs": a.jobs,
                "wall_s": round(wall, 1),
                "summary": summary(results, names),
                "exports_failed": [
                    {"name": r["name"], "exporter": r["exporter"], "error": r["error"]}
                    for r in manifest["models"]
                    if "error" in r
                ],
                "models": results,
            }
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

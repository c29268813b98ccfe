"""`neuron-cc sweep MODEL.onnx --inputs X.npz [--tolerance R] [--plot P.png] [--json FILE] [--jobs N]
[--ray ADDRESS]`:
every auto-cast option compiled, lowered and run on the simulator, side by side: accuracy
against the fp32 interpreter (and the simulator's agreement with the interpreter for the same
option), non-finite and range counts, simulated latency, speed-up over `none`, TensorE HFU; a
Pareto plot (latency vs rel L2); and a recommendation as neuronx-cc's advice goes: start from
the fastest option and step up in precision until the accuracy is enough, never an option with
a non-finite output. The model is imported once; the options run in --jobs worker processes
or as tasks on a Ray cluster (--ray)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from neuron_opt.cli.inputs import add_model_arguments
from neuron_opt.cli.pool import add_worker_options, check_worker_options
from neuron_opt.diagnostics import CompileError
from neuron_opt.options import SWEEP_OPTIONS, option_label
from neuron_opt.outputs import atomic_output

if TYPE_CHECKING:
    from rich.console import JustifyMethod

DEFAULT_TOLERANCE = 1e-2


def add_sweep_arguments(p: argparse.ArgumentParser, kind: str) -> None:
    """The model, its inputs, the tolerance and the plot: sweep's and tune's (`kind` names the
    default plot, NAME_KIND.png)."""
    add_model_arguments(p)
    p.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        metavar="T",
        help=f"largest acceptable rel L2 error vs fp32, over all outputs (default {DEFAULT_TOLERANCE:g})",
    )
    p.add_argument(
        "--plot",
        metavar="P.png",
        help=f"where the Pareto plot goes (default NAME_{kind}.png beside --json, else in the "
        "current directory; NAME is the model's graph name, else its file's stem, with its "
        "folder's name when the stem is generic, e.g. bert_model)",
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_sweep_arguments(p, "sweep")
    p.add_argument("--json", metavar="FILE", help="write the table and recommendation as JSON")
    add_worker_options(p)
    from neuron_opt.cli.precision import add_cast_options, add_plan_options

    plan = p.add_argument_group(
        "precision plan",
        "with --precision-plan (or a block list) one more row: the plan over "
        "--auto-cast/--auto-cast-type, next to the uniform options",
    )
    add_plan_options(plan)
    add_cast_options(plan)


def _evaluate(context: dict, option: tuple) -> dict:
    """One option on the simulator and in the interpreter (in a worker); an option is (mode,
    type), (mode, type, label) for the command line's plan row, or (mode, type, label, text) for
    a plan given as its TOML text (tune's)."""
    from neuron_opt.cli import models
    from neuron_opt.passes.precision_plan import parse_plan_text

    model, inputs = context["model"], context["inputs"]
    try:
        if len(option) == 2:
            c = model.compile(*option)
        elif len(option) == 3:
            c = model.compile(option[0], option[1], label=option[2], **context["plan"])
        else:
            c = model.compile(
                option[0], option[1], label=option[2], rules=parse_plan_text(option[3], option[2])
            )
        result = models.simulate(c, inputs)
        ref = models.reference(c, inputs)
    except CompileError as e:  # one option failing (e.g. does not fit) is a row, not a stop
        return {"error": e}
    return {"summary": models.engine_summary(result), "outputs": result.outputs, "reference": ref}


def sweep(
    model,
    inputs: dict,
    jobs: int = 1,
    plan: dict | None = None,
    ray: str | None = None,
    plans: tuple[tuple[str, str, str, str], ...] = (),
) -> list[dict]:
    """One row per option (its metrics), in SWEEP_OPTIONS order, then the plan's row when `plan`
    holds its compile options (mode, cast_type, cast_io, plan, on_report, label), then a row per
    (mode, cast_type, label, TOML text) of `plans`; `model` is a models.OnnxModel. The options
    run in `jobs` processes, or on the Ray cluster at `ray`."""
    from neuron_opt.cli.metrics import agreement, error_norms, range_counts
    from neuron_opt.cli.pool import Workers

    options: list[tuple[str, ...]] = list(SWEEP_OPTIONS)  # (mode, type[, label[, TOML text]])
    plan_options = {}
    if plan is not None:
        options.append((plan["mode"], plan["cast_type"], plan["label"]))
        plan_options = {
            k: v for k, v in plan.items() if k not in ("mode", "cast_type", "label", "on_report")
        }
        # Its report (warnings, --cast-report) is printed here, not by a worker.
        model.compile(plan["mode"], plan["cast_type"], on_report=plan["on_report"], **plan_options)
    options += plans
    context = {"model": model, "inputs": inputs, "plan": plan_options}
    with Workers(_evaluate, context, jobs, ray) as workers:
        done = dict(
            zip(
                options,
                workers.map(options, lambda o: o[2] if len(o) > 2 else option_label(*o), "sweep"),
            )
        )
    base = done[SWEEP_OPTIONS[0]]
    if "error" in base:  # every row is measured against none: nothing to compare
        raise base["error"]
    ort = model.onnxruntime(inputs)
    ref32 = base["reference"]
    rows = []
    for option in options:
        mode, type_ = option[:2]
        name = option[2] if len(option) > 2 else option_label(mode, type_)
        row = {
            "option": name,
            "auto_cast": mode,
            "auto_cast_type": None if mode == "none" else type_,
        }
        got = done[option]
        if "error" in got:
            row["error"] = str(got["error"])
            rows.append(row)
            continue
        row.update(got["summary"])
        outs = {}
        for out_name, out in got["outputs"].items():
            ref = got["reference"][out_name]
            agree = agreement({out_name: out}, {out_name: ref})[out_name]
            m = {
                "vs_fp32": error_norms(out, ref32[out_name]),
                "vs_onnxruntime": error_norms(out, ort[out_name]),
                "interpreter_vs_fp32": error_norms(ref, ref32[out_name]),
                "sim_vs_interpreter": agree,
            }
            m.update(range_counts(out, ref32[out_name], "none" if mode == "none" else type_))
            outs[out_name] = m
        row["outputs"] = outs
        row["rel_l2"] = max(m["vs_fp32"]["rel_l2"] for m in outs.values())
        row["rel_max_abs"] = max(m["vs_fp32"]["rel_max_abs"] for m in outs.values())
        row["sim_vs_interpreter_rel_l2"] = max(
            m["sim_vs_interpreter"]["rel_l2"] for m in outs.values()
        )
        row["differing_share"] = max(
            m["sim_vs_interpreter"]["differing_share"] for m in outs.values()
        )
        row["non_finite"] = sum(m["inf"] + m["nan"] for m in outs.values())
        row["overflowed"] = sum(m["overflowed"] for m in outs.values())
        row["saturated"] = sum(m["saturated"] for m in outs.values())
        row["underflowed"] = sum(m["underflowed"] for m in outs.values())
        rows.append(row)
    base = next((r for r in rows if r["option"] == "none" and "latency_us" in r), None)
    for r in rows:
        if base and "latency_us" in r:
            r["speedup"] = base["latency_us"] / r["latency_us"]
    return rows


def recommend(rows: list[dict], tolerance: float) -> dict | None:
    """The fastest option within the tolerance whose outputs are all finite."""
    ok = [
        r for r in rows if "latency_us" in r and r["non_finite"] == 0 and r["rel_l2"] <= tolerance
    ]
    return min(ok, key=lambda r: (r["latency_us"], r["rel_l2"])) if ok else None


def pareto(rows: list[dict]) -> list[str]:
    """Options no other option beats on both latency and error."""
    good = [r for r in rows if "latency_us" in r and r["non_finite"] == 0]
    front = []
    for r in good:
        if not any(
            o is not r
            and o["latency_us"] <= r["latency_us"]
            and o["rel_l2"] <= r["rel_l2"]
            and (o["latency_us"] < r["latency_us"] or o["rel_l2"] < r["rel_l2"])
            for o in good
        ):
            front.append(r["option"])
    return front


def _label(ax, points: list[tuple[float, float, str]]) -> None:
    """Name each point, moving a label to another side of its point where it would overlap a
    label already placed (options often share a latency or an error)."""
    ax.figure.canvas.draw()  # fixes the data -> pixel transform
    to_px = ax.transData.transform
    left, right = ax.bbox.x0, ax.bbox.x1
    placed: list[tuple[float, float, float, float]] = []
    for x, y, text in sorted(points, key=lambda p: (p[0], p[1])):
        px, py = to_px((x, y))
        w, h = 5.5 * len(text) + 4, 11  # about 8 pt text at 100 dpi
        boxes = [
            (dx, dy, (px + dx, py + dy, px + dx + w, py + dy + h))
            for dx, dy in ((5, 4), (5, -13), (-w - 5, 4), (-w - 5, -13), (5, 14), (5, -24))
        ]
        free = [
            c
            for c in boxes
            if left <= c[2][0]
            and c[2][2] <= right
            and not any(
                c[2][0] < b[2] and b[0] < c[2][2] and c[2][1] < b[3] and b[1] < c[2][3]
                for b in placed
            )
        ]
        dx, dy, box = (free or boxes)[0]
        placed.append(box)
        ax.annotate(text, (x, y), textcoords="offset pixels", xytext=(dx, dy), fontsize=8)


def plot(
    rows: list[dict],
    tolerance: float,
    best: dict | None,
    path: str,
    title: str,
    background: tuple[str, list[tuple[float, float]]] | None = None,
) -> None:
    """Latency vs rel L2 (log), the Pareto front joined, the tolerance and the pick marked;
    `background`: a legend label and more (latency, rel L2) points, drawn small and unnamed
    (tune's evaluated plans). Written to a temp file and renamed (atomic)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    front = set(pareto(rows))
    fig, ax = plt.subplots(figsize=(7.5, 5))
    floor = 1e-9  # `none` has 0 error vs itself: drawn at the floor of the log axis
    pts = [(r["latency_us"], max(r["rel_l2"], floor), r) for r in rows if "latency_us" in r]
    xs = [x for x, _, _ in pts] + [x for x, _ in (background[1] if background else [])]
    # A log latency axis only when the options span a decade; else plain microseconds.
    ax.set_xscale("log" if xs and max(xs) > 10 * min(xs) else "linear")
    ax.set_yscale("log")
    if background:
        ax.scatter(
            [x for x, _ in background[1]],
            [max(y, floor) for _, y in background[1]],
            s=10,
            color="tab:gray",
            alpha=0.5,
            label=background[0],
        )
    for x, y, r in pts:
        bad = r["non_finite"] > 0
        ax.scatter(
            [x],
            [y],
            marker="x" if bad else "o",
            s=60,
            color="tab:red" if bad else ("tab:green" if r["option"] in front else "tab:blue"),
        )
    fr = sorted((x, y) for x, y, r in pts if r["option"] in front)
    if fr:
        ax.plot(
            [p[0] for p in fr],
            [p[1] for p in fr],
            "--",
            color="tab:green",
            lw=1,
            label="Pareto front",
        )
    ax.axhline(tolerance, color="gray", lw=1, ls=":", label=f"tolerance {tolerance:g}")
    if best:
        ax.scatter(
            [best["latency_us"]],
            [max(best["rel_l2"], floor)],
            s=220,
            facecolors="none",
            edgecolors="black",
            label=f"recommended: {best['option']}",
        )
    ax.set_xlabel("simulated latency (µs, NeuronCore-v2)")
    ax.set_ylabel("rel L2 error vs fp32 (worst output)")
    ax.set_title(title)
    fig.tight_layout()
    # Labels last: their overlap test needs the final axis limits and layout.
    _label(
        ax,
        [(x, y, r["option"] + (" (non-finite)" if r["non_finite"] > 0 else "")) for x, y, r in pts],
    )
    ax.legend(fontsize=8, loc="best")
    try:
        with atomic_output(path, "wb") as f:
            fig.savefig(f, dpi=110, format="png")
    finally:
        plt.close(fig)


def _e(v) -> str:
    from neuron_opt.cli.tables import sci

    return sci(v, 2)


def print_table(
    rows: list[dict], best: dict | None, tolerance: float, plot_path: str, title: str, console=None
) -> None:
    from rich.table import Table

    from neuron_opt.cli.tables import console as make_console
    from neuron_opt.diagnostics import markup, printable

    console = console or make_console()
    t = Table(title=markup(title), title_justify="left")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("option", "left"),
        ("rel L2 vs fp32", "right"),
        ("rel max abs", "right"),
        ("inf/NaN", "right"),
        ("overflow", "right"),
        ("saturated", "right"),
        ("sim vs interp", "right"),
        ("differing", "right"),
        ("latency µs", "right"),
        ("speed-up", "right"),
        ("TensorE", "right"),
        ("HFU", "right"),
    )
    for col, just in columns:
        t.add_column(col, justify=just, no_wrap=True)
    failed = [r for r in rows if "error" in r]
    for r in rows:
        if "error" in r:  # the message goes below the table (a cell would wrap it into shreds)
            t.add_row(markup(r["option"]), "[red]failed (below)[/red]", *[""] * 10)
            continue
        mark = " *" if best is r else ""
        t.add_row(
            markup(r["option"]) + mark,
            _e(r["rel_l2"]),
            _e(r["rel_max_abs"]),
            str(r["non_finite"]),
            str(r["overflowed"]),
            str(r["saturated"]),
            _e(r["sim_vs_interpreter_rel_l2"]),
            f"{100 * r['differing_share']:.2f}%",
            f"{r['latency_us']:.2f}",
            f"{r.get('speedup', 0):.2f}x",
            f"{100 * r['tensor_busy']:.1f}%",
            f"{100 * r['hfu']:.1f}%",
        )
    console.print(t)
    for r in failed:
        console.print(printable(f"{r['option']}: {r['error']}"), markup=False)
    if best:
        console.print(
            f"recommendation (rel L2 <= {tolerance:g}, all outputs finite): "
            f"[bold]{markup(best['option'])}[/bold] — {best['latency_us']:.2f} µs, "
            f"{best.get('speedup', 1):.2f}x over none, rel L2 {_e(best['rel_l2'])}"
        )
    else:
        console.print(
            f"recommendation: none of the options is within rel L2 {tolerance:g} with finite outputs"
        )
    console.print(f"Pareto plot: {printable(str(plot_path))}", markup=False)


def _plan_row(args) -> dict | None:
    """The plan row's compile options, when a plan or a block list is given (the plan file is
    checked here, before the sweep starts)."""
    from neuron_opt.cli.precision import emit_report, has_plan, label_of, plan_options

    if not has_plan(args):
        return None
    return {
        "mode": args.auto_cast,
        "cast_type": args.auto_cast_type,
        "cast_io": args.cast_io,
        "plan": plan_options(args),
        "on_report": lambda r: emit_report(r, args),
        "label": label_of(args),
    }


def run(args) -> int:
    from neuron_opt.cli.models import OnnxModel
    from neuron_opt.cli.tables import check_plot, model_name, plot_file, write_json
    from neuron_opt.outputs import check_outputs

    if not args.model.endswith(".onnx"):
        raise CompileError("sweep takes an ONNX model", args.model)
    if args.tolerance <= 0:
        raise CompileError("--tolerance must be positive", "neuron-cc")
    plot_path = args.plot or plot_file(model_name(args.model), "sweep", args.json)
    check_plot(plot_path)
    check_outputs([args.json, plot_path], [args.model, args.inputs])
    check_worker_options(args)
    plan = _plan_row(args)
    model = OnnxModel(args.model)
    inputs = model.inputs(args.inputs)
    rows = sweep(model, inputs, args.jobs, plan, args.ray)
    best = recommend(rows, args.tolerance)
    plot(rows, args.tolerance, best, plot_path, f"{model.name}: latency vs error")
    print_table(
        rows,
        best,
        args.tolerance,
        plot_path,
        f"{model.name}: every auto-cast option on the NeuronCore-v2 simulator",
    )
    if args.json:
        write_json(args.json, report(args, model.name, rows, best, plot_path))
    return 0


def report(args, name: str, rows: list[dict], best: dict | None, plot_path: str) -> dict:
    """The JSON report of model `name`: the rows, the Pareto front and the recommendation."""
    return {
        "model": args.model,
        "name": name,
        "inputs": args.inputs,
        "tolerance": args.tolerance,
        "options": rows,
        "pareto": pareto(rows),
        "recommendation": best["option"] if best else None,
        "plot": plot_path,
    }

"""`neuron-cc tune MODEL.onnx --inputs X.npz --tolerance T -o plan.toml [--json F]
[--validate Y.npz] [--plot P.png] [--jobs N | --ray ADDRESS] [--max-evaluations N]`: a
precision per ONNX node that makes the simulated latency as small as the search finds with
every output's rel L2 against fp32 within T and no inf/NaN, on the given inputs
(neuron_opt/precision_search.py; docs/tune.md).

Each candidate is a precision plan (a rule per precision naming its nodes) compiled under
`--auto-cast all`, lowered and run on the simulator; its outputs are compared with the fp32
interpreter's, as sweep compares them. The candidates of a step are evaluated side by side in
--jobs processes or as Ray tasks. The plan found is written as TOML (-o), with a table and a
Pareto plot of every evaluated candidate next to sweep's uniform options, and with --json the
same as data; --validate measures the plan and the best uniform option on held-out inputs.
"""

from __future__ import annotations

import argparse
import glob
import sys
import time
from pathlib import Path

import numpy as np

from neuron_opt.diagnostics import CompileError

MODE = "all"  # every candidate sets every tunable node; `all` makes a contraction write its type


def add_arguments(p: argparse.ArgumentParser) -> None:
    from neuron_opt.cli.cc_sweep import add_sweep_arguments
    from neuron_opt.cli.pool import add_worker_options
    from neuron_opt.precision_search import DEFAULT_BUDGET

    add_sweep_arguments(p, "tune")
    p.add_argument(
        "-o",
        "--output",
        metavar="plan.toml",
        required=True,
        help="where the precision plan goes ('-': stdout)",
    )
    p.add_argument(
        "--json", metavar="FILE", help="write the table, every evaluation and the plan as JSON"
    )
    p.add_argument(
        "--validate",
        metavar="Y.npz",
        help="held-out inputs: the plan's error (and the best uniform option's) on them",
    )
    p.add_argument(
        "--max-evaluations",
        type=int,
        default=DEFAULT_BUDGET,
        metavar="N",
        help=f"stop the search after N candidates (default {DEFAULT_BUDGET}; the starting "
        "points are always evaluated)",
    )
    add_worker_options(p)


def tunable_units(model) -> list:
    """Every ONNX node that has a float op (constants and weights follow their users), in
    graph order."""
    from neuron_opt.diagnostics import onnx_node_of
    from neuron_opt.dialects import nt
    from neuron_opt.dialects.types import is_float_tensor
    from neuron_opt.precision_search import Unit

    nodes: dict[str, list] = {}
    for op in model.fp32.walk():
        if not isinstance(op, nt.NtOp) or isinstance(op, (nt.ConstantOp, nt.WeightOp)):
            continue
        if not any(is_float_tensor(v.type) for v in (*op.operands, *op.results)):
            continue
        node = onnx_node_of(op)
        if node is not None:
            entry = nodes.setdefault(node[0], [node[1], False])
            entry[1] |= isinstance(op, nt.Contraction)
    return [Unit(name, op_type, contraction) for name, (op_type, contraction) in nodes.items()]


class Planner:
    """Candidates as plan text: a rule per precision naming its nodes exactly, and for scaled
    fp8 the calibration's rule of each node (its amax values: neuron-cc calibrate's, on the
    tuning inputs)."""

    def __init__(self, units, scaled: dict[str, dict]):
        self.units, self.scaled = units, scaled  # scaled: node -> calibrated rule

    @classmethod
    def calibrated(cls, model, inputs_path: str, inputs: dict, units) -> Planner:
        from neuron_opt.cli.cc_calibrate import calibrate_model

        try:
            rules, _ = (
                calibrate_model(model, [(inputs_path, inputs)])
                if any(u.contraction for u in units)
                else ([], 0)
            )
        except CompileError as e:  # no scale for an inf/NaN: the search goes on without scaled fp8
            print(f"{e} (scaled fp8 is left out of the search)", file=sys.stderr)
            rules = []
        by_node = {r["node"]: r for r in rules}  # the rules name nodes glob-escaped
        return cls(
            units,
            {u.node: by_node[glob.escape(u.node)] for u in units if glob.escape(u.node) in by_node},
        )

    def precisions(self) -> tuple[str, ...]:
        from neuron_opt.precision_search import PRECISIONS, SCALED_FP8

        return tuple(p for p in PRECISIONS if p != SCALED_FP8 or self.scaled)

    def text(self, assignment, comments: tuple[str, ...] = ()) -> str:
        from neuron_opt.passes.precision_plan import format_plan
        from neuron_opt.precision_search import SCALED_FP8

        rules = []
        for p in self.precisions():
            nodes = [u.node for u, q in zip(self.units, assignment) if q == p]
            if p == SCALED_FP8:
                rules += [{"name": f"{SCALED_FP8} {n}"} | self.scaled[n] for n in nodes]
            elif nodes:
                rules.append(
                    {"name": f"{p} nodes", "precision": p, "node": [glob.escape(n) for n in nodes]}
                )
        return format_plan(rules, "\n".join(comments))

    def uniform(self, precision: str):
        from neuron_opt.precision_search import CONTRACTION_ONLY

        return tuple(
            precision
            if u.contraction or precision not in CONTRACTION_ONLY
            else CONTRACTION_ONLY[precision]
            for u in self.units
        )


def _measure(context: dict, item: tuple) -> dict:
    """One candidate on the simulator (in a worker): (mode, cast_type, plan text or None) ->
    latency, worst rel L2 vs fp32 and the count of inf/NaN outputs."""
    from neuron_opt.cli import models
    from neuron_opt.cli.metrics import error_norms
    from neuron_opt.passes.precision_plan import parse_plan_text

    mode, cast_type, text = item
    try:
        rules = parse_plan_text(text, "tuned plan") if text is not None else None
        c = context["model"].compile(mode, cast_type, rules=rules)
        result = models.simulate(c, context["inputs"])
    except CompileError as e:  # a candidate that cannot run (e.g. does not fit) is infeasible
        return {"error": str(e)}
    outs = result.outputs
    return {
        "latency_us": result.makespan_us,
        "rel_l2": max(error_norms(outs[n], r)["rel_l2"] for n, r in context["ref32"].items()),
        "non_finite": sum(
            int((~np.isfinite(np.asarray(o, dtype=np.float64))).sum()) for o in outs.values()
        ),
    }


def _fp32_reference(model, inputs: dict) -> dict:
    from neuron_opt.cli.models import reference
    from neuron_opt.options import DEFAULT_TYPE

    return reference(model.compile("none", DEFAULT_TYPE), inputs)


def _ranking(model, inputs: dict, planner: Planner):
    """rank(p): unit indices, largest own error with every node in p first (explain's
    attribution; inf/NaN counts as infinite), ties in graph order."""
    from neuron_opt.cli.cc_explain import attribute
    from neuron_opt.options import DEFAULT_TYPE
    from neuron_opt.passes.precision_plan import parse_plan_text
    from neuron_opt.precision_search import FP32

    units = planner.units
    index = {u.node: i for i, u in enumerate(units)}

    def rank(precision: str) -> list[int]:
        if precision == FP32:  # nothing to attribute
            return list(range(len(units)))
        rules = parse_plan_text(planner.text(planner.uniform(precision)), "uniform plan")
        worst = [0.0] * len(units)
        for row in attribute(model, inputs, MODE, DEFAULT_TYPE, rules=rules):
            i = index.get(row["node"])
            if i is not None:
                e = float("inf") if row["non_finite"] else row["own"]["rel_l2"]
                worst[i] = max(worst[i], e if np.isfinite(e) else float("inf"))
        return sorted(range(len(units)), key=lambda i: (-worst[i], i))

    return rank


def tune(
    model,
    inputs: dict,
    planner: Planner,
    tolerance: float,
    jobs: int = 1,
    ray: str | None = None,
    budget: int | None = None,
):
    """Run the search (precision_search.search) with every candidate measured on the simulator;
    its Result."""
    from neuron_opt.cli.pool import Workers
    from neuron_opt.options import DEFAULT_TYPE
    from neuron_opt.precision_search import DEFAULT_BUDGET, Measure, search

    context = {"model": model, "inputs": inputs, "ref32": _fp32_reference(model, inputs)}
    with Workers(_measure, context, jobs, ray) as workers:

        def evaluate(batch, phase):
            items = [(MODE, DEFAULT_TYPE, planner.text(a)) for a in batch]
            got = workers.map(
                items, lambda _: "candidate", f"tune ({phase}, {len(batch)} candidates)"
            )
            return [Measure(**g) for g in got]

        return search(
            planner.units,
            evaluate,
            tolerance,
            _ranking(model, inputs, planner),
            planner.precisions(),
            DEFAULT_BUDGET if budget is None else budget,
        )


def _validate(
    model, path: str, tuned_text: str, uniform: dict | None, jobs: int, ray: str | None
) -> dict:
    """The tuned plan's and the best uniform option's error on held-out inputs."""
    from neuron_opt.cli.pool import Workers
    from neuron_opt.options import DEFAULT_TYPE

    inputs = model.inputs(path)
    items: list[tuple[str, str, str | None]] = [(MODE, DEFAULT_TYPE, tuned_text)]
    if uniform is not None:
        items.append((uniform["auto_cast"], uniform["auto_cast_type"] or DEFAULT_TYPE, None))
    context = {"model": model, "inputs": inputs, "ref32": _fp32_reference(model, inputs)}
    with Workers(_measure, context, jobs, ray) as workers:
        got = workers.map(items, lambda _: "candidate", "validate")
    out = {"inputs": path, "tuned": got[0]}
    if uniform is not None:
        out[uniform["option"]] = got[1]
    return out


def _counts(assignment) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in assignment:
        counts[p] = counts.get(p, 0) + 1
    return counts


def _describe(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {p}" for p, n in counts.items())


def run(args) -> int:
    from neuron_opt.cli.cc_sweep import plot, print_table, recommend, report, sweep
    from neuron_opt.cli.models import OnnxModel
    from neuron_opt.cli.pool import check_worker_options
    from neuron_opt.cli.tables import check_plot, console, model_name, plot_file, write_json
    from neuron_opt.diagnostics import printable
    from neuron_opt.options import DEFAULT_TYPE
    from neuron_opt.outputs import atomic_output, check_outputs

    if not args.model.endswith(".onnx"):
        raise CompileError("tune takes an ONNX model", args.model)
    if not args.tolerance > 0:
        raise CompileError("--tolerance must be positive", "neuron-cc")
    if args.max_evaluations < 1:
        raise CompileError("--max-evaluations must be at least 1", "neuron-cc")
    plot_path = args.plot or plot_file(model_name(args.model), "tune", args.json)
    check_plot(plot_path)
    check_worker_options(args)
    check_outputs([args.output, args.json, plot_path], [args.model, args.inputs, args.validate])
    model = OnnxModel(args.model)
    name = model.name
    inputs = model.inputs(args.inputs)
    if args.validate:
        model.inputs(args.validate)  # checked before the search, not after it
    units = tunable_units(model)
    if not units:
        raise CompileError("no float op to tune", args.model)

    t0, c0 = time.perf_counter(), time.process_time()
    planner = Planner.calibrated(model, args.inputs, inputs, units)
    result = tune(model, inputs, planner, args.tolerance, args.jobs, args.ray, args.max_evaluations)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if result.best is None:
        raise CompileError(
            f"no candidate is within rel L2 {args.tolerance:g} with finite outputs, not even fp32",
            args.model,
        )
    best = result.best
    counts = _counts(best.assignment)
    comments = (
        f"Precision plan found by neuron-cc tune for {name} on {Path(args.inputs).name}:",
        f"rel L2 {best.measure.rel_l2:.3e} <= {args.tolerance:g}, {best.measure.latency_us:.2f} us simulated.",
        f"Use it with --auto-cast {MODE} (every tunable node has a rule; under matmult a",
        "contraction given a low precision would keep an f32 result).",
        f"{_describe(counts)}.",
    )
    text = planner.text(best.assignment, comments)
    # The table's rows: sweep's uniform options and the plan, every metric of sweep's.
    rows = sweep(
        model, inputs, args.jobs, None, args.ray, plans=((MODE, DEFAULT_TYPE, "tuned", text),)
    )
    tuned_row = rows[-1]
    uniform = recommend(rows[:-1], args.tolerance)
    validation = (
        _validate(model, args.validate, text, uniform, args.jobs, args.ray)
        if args.validate
        else None
    )

    evaluated = [
        (p.measure.latency_us, p.measure.rel_l2)
        for p in result.points
        if p.measure.error is None and p.measure.non_finite == 0
    ]
    plot(
        rows,
        args.tolerance,
        tuned_row if "latency_us" in tuned_row else None,
        plot_path,
        f"{name}: tuned plan vs uniform options",
        background=(f"evaluated plans ({len(result.points)})", evaluated),
    )
    with atomic_output(args.output) as f:
        f.write(text)
    out = console(stderr=args.output == "-")
    print_table(
        rows,
        tuned_row if "latency_us" in tuned_row else None,
        args.tolerance,
        plot_path,
        f"{name}: the tuned plan next to every auto-cast option (NeuronCore-v2 simulator)",
        out,
    )
    summary = _summary(result, tuned_row, uniform, counts, wall, cpu, args)
    lines = summary["lines"] + [
        f"on {args.validate}: {key}: "
        + (m["error"] if "error" in m else f"rel L2 {m['rel_l2']:.3e}, {m['non_finite']} inf/NaN")
        for key, m in (validation or {}).items()
        if key != "inputs"
    ]
    for line in lines:
        out.print(printable(line), markup=False)
    if args.json:
        data = report(args, name, rows, tuned_row, plot_path)
        precisions = dict(zip((u.node for u in units), best.assignment, strict=True))
        data.update(
            {
                "plan": args.output,
                "auto_cast": MODE,
                "precisions": precisions,
                "precision_counts": counts,
                "best_uniform": uniform["option"] if uniform else None,
                "search": summary["search"],
                "validate": validation,
                "evaluations": [
                    {
                        "index": p.index,
                        "phase": p.phase,
                        "label": p.label,
                        "latency_us": p.measure.latency_us,
                        "rel_l2": p.measure.rel_l2,
                        "non_finite": p.measure.non_finite,
                        "error": p.measure.error,
                        "precision_counts": _counts(p.assignment),
                    }
                    for p in result.points
                ],
            }
        )
        write_json(args.json, data)
    return 0


def _summary(
    result, tuned_row: dict, uniform: dict | None, counts: dict, wall: float, cpu: float, args
) -> dict:
    search = {
        "evaluations": len(result.points),
        "rounds": result.rounds,
        "budget_spent": result.budget_spent,
        "wall_seconds": wall,
        "cpu_seconds_main_process": cpu,
        "jobs": args.jobs,
        "ray": args.ray,
        "start": result.start.label if result.start else None,
        "latency_us": result.best.measure.latency_us,
        "rel_l2": result.best.measure.rel_l2,
    }
    lines = [f"tuned plan: {_describe(counts)} -> {args.output}"]
    if "latency_us" in tuned_row and uniform is not None:
        search["speedup_over_best_uniform"] = uniform["latency_us"] / tuned_row["latency_us"]
        lines.append(
            f"vs the best uniform option {uniform['option']} ({uniform['latency_us']:.2f} µs, rel L2 "
            f"{uniform['rel_l2']:.2e}): {search['speedup_over_best_uniform']:.3f}x"
        )
    lines.append(
        f"search: {len(result.points)} evaluations in {result.rounds} demote rounds, "
        f"{wall:.1f} s wall" + (" (evaluation budget spent)" if result.budget_spent else "")
    )
    return {"search": search, "lines": lines}

"""`neuron-cc explain MODEL.onnx --inputs X.npz [--auto-cast M] [--auto-cast-type T]
[--precision-plan plan.toml] [--op-block-list A,B] [--node-block-list a,b] [--json F]
[--plot P.png] [--top N]`: where an option's error comes from, per ONNX node.

The reference interpreter runs the model in fp32 and under the option side by side (auto-cast
only: canonicalize-casts changes no bit, preserve-io only the outputs' final cast), keeping
every op's result. Per op (named by its ONNX node):
  own          the error it adds on its own: the option's op run on the fp32 run's inputs,
               converted to the types it reads, against the fp32 op (input rounding included:
               that is what running it in low precision costs);
  accumulated  its result in the option's run against the fp32 run (everything upstream);
  and, of its own result: inf/NaN where fp32 is finite (fp16 overflow: beyond 65504), values
  flushed to zero, subnormal values, and fp8 inputs saturated at 240.
A ranked table on the terminal (largest own error first), the first op where inf/NaN appears,
every row as JSON with --json, and error along the graph as a plot with --plot.
"""

from __future__ import annotations

import argparse

import numpy as np

from neuron_opt.diagnostics import CompileError
from neuron_opt.options import CastTypeOption, ModeOption

DEFAULT_TOP = 20


def add_arguments(p: argparse.ArgumentParser) -> None:
    from neuron_opt.cli.inputs import add_model_arguments
    from neuron_opt.cli.precision import add_cast_options, add_plan_options

    add_model_arguments(p)
    add_cast_options(p)
    add_plan_options(p)
    p.add_argument("--json", metavar="FILE", help="write every op's row as JSON")
    p.add_argument("--plot", metavar="P.png", help="plot the error along the graph")
    p.add_argument(
        "--top",
        type=int,
        default=DEFAULT_TOP,
        metavar="N",
        help=f"rows in the terminal table (default {DEFAULT_TOP})",
    )


def _pairs(fp32_module, option_module) -> dict:
    """option op -> fp32 op, for a clone taken before any pass (same walk order)."""
    return dict(zip(option_module.walk(), fp32_module.walk()))


def _fp32_source(v, to_fp32: dict, args32: dict):
    """The fp32 module's value an option operand stands for, through the casts auto-cast
    inserted (ops with no fp32 counterpart), and the nearest of them (None if none)."""
    from xdsl.ir import OpResult

    from neuron_opt.dialects import nt

    nearest = None
    while True:
        owner = v.owner
        if isinstance(v, OpResult) and owner in to_fp32:
            return to_fp32[owner].results[v.index], nearest
        if not isinstance(owner, (nt.CastOp, nt.ScaledCastOp)):  # a block argument
            return args32[v], nearest
        nearest = nearest or owner
        v = owner.input


def _scaled_saturations(cast, value) -> int:
    """Finite values a scaled cast takes beyond fp8's 240."""
    from neuron_opt.dialects.types import FP8_MAX

    x = np.asarray(value).astype(np.float64)
    s = np.asarray(cast.prop("scale"), np.float64)
    if cast.axis is not None:
        shape = [1] * x.ndim
        shape[cast.prop("axis")] = s.size
        s = s.reshape(shape)
    return int((np.isfinite(x) & (np.abs(x * s) > FP8_MAX)).sum())


def _range_stats(own, ref, elt) -> dict:
    """inf/NaN where fp32 is finite, values flushed to zero, subnormal values of `elt`."""
    import ml_dtypes

    from neuron_opt.dialects.types import numpy_dtype

    o, r = np.asarray(own).astype(np.float64), np.asarray(ref).astype(np.float64)
    tiny = float(ml_dtypes.finfo(numpy_dtype(elt)).smallest_normal)
    fin = np.isfinite(r)
    return {
        "non_finite": int((fin & ~np.isfinite(o)).sum()),
        "flushed_to_zero": int((fin & (r != 0) & (o == 0)).sum()),
        "subnormal": int(((o != 0) & (np.abs(o) < tiny)).sum()),
    }


def explain(args) -> dict:
    from neuron_opt.cli.models import OnnxModel
    from neuron_opt.cli.precision import emit_report, label_of, plan_options

    plan = plan_options(args)
    model = OnnxModel(args.model)
    rows = attribute(
        model,
        model.inputs(args.inputs),
        args.auto_cast,
        args.auto_cast_type,
        plan,
        lambda r: emit_report(r, args),
    )
    first = next((r for r in rows if r["accumulated_non_finite"]), None)
    return {
        "model": args.model,
        "name": model.name,
        "option": label_of(args),
        "ops": rows,
        "first_non_finite": None
        if first is None
        else {k: first[k] for k in ("node", "op_type", "op")},
    }


def attribute(
    model,
    inputs: dict,
    mode: ModeOption,
    cast_type: CastTypeOption,
    plan: dict | None = None,
    on_report=None,
    rules=None,
) -> list[dict]:
    """A row per float result of every op under the option (auto-cast's `mode`, `cast_type`
    and plan options, or `rules`, a PrecisionPlan built by a program), in graph order: its own
    and accumulated error against fp32 and its range counts. `model` is a models.OnnxModel;
    `on_report` receives auto-cast's report."""
    from xdsl.context import Context

    from neuron_opt.cli.metrics import error_norms
    from neuron_opt.diagnostics import onnx_node_of
    from neuron_opt.dialects import nt
    from neuron_opt.dialects.types import FP8_MAX, is_float, round_to, tensor_type_of, type_name
    from neuron_opt.passes.auto_cast import AutoCastPass
    from neuron_opt.runtime.reference import Reference

    fp32 = model.fp32
    option = fp32.clone()
    to_fp32 = _pairs(fp32, option)
    report = AutoCastPass(mode=mode, type=cast_type, **(plan or {})).cast(Context(), option, rules)
    if on_report is not None:
        on_report(report)

    rec32, rec = {}, {}
    ref32, ref = Reference(fp32, model.weights), Reference(option, model.weights)
    ref32.run(inputs, record=rec32)
    ref.run(inputs, record=rec)
    # Option arguments stand for the fp32 arguments at the same position.
    args32 = dict(zip(ref.func.body.block.args, ref32.func.body.block.args))
    rows = []
    for op in ref.func.body.block.ops:
        src = to_fp32.get(op)
        if (
            src is None
            or not isinstance(op, nt.NtOp)
            or isinstance(op, (nt.ConstantOp, nt.WeightOp))
        ):
            continue
        if not any(is_float(r.type.element_type) for r in src.results):
            continue
        operands, saturated = [], 0
        for v in op.operands:
            source, cast = _fp32_source(v, to_fp32, args32)
            value = rec32[source]
            if is_float(tensor_type_of(v).element_type):  # what the option's op reads, from fp32
                if isinstance(cast, nt.ScaledCastOp):  # scaled fp8: the scale, then the cast
                    saturated += _scaled_saturations(cast, value)
                    value = ref.run_op(cast, [value])[0]
                else:
                    sat = cast is not None and bool(cast.saturate)
                    if sat:
                        f = np.asarray(value).astype(np.float64)
                        saturated += int((np.isfinite(f) & (np.abs(f) > FP8_MAX)).sum())
                    value = round_to(value, tensor_type_of(v).element_type, sat)
            operands.append(value)
        own_out = ref.run_op(op, operands)
        node = onnx_node_of(src)
        for k, (r32, r) in enumerate(zip(src.results, op.results)):
            if not is_float(r32.type.element_type):
                continue
            elt = tensor_type_of(r).element_type
            row = {
                "node": node[0] if node else None,
                "op_type": node[1] if node else None,
                "op": op.name + (f"#{k}" if len(op.results) > 1 else ""),
                "type": type_name(elt),
                "own": error_norms(own_out[k], rec32[r32]),
                "accumulated": error_norms(rec[r], rec32[r32]),
                "accumulated_non_finite": _range_stats(rec[r], rec32[r32], elt)["non_finite"],
                "fp8_saturated_inputs": saturated,
            }
            row.update(_range_stats(own_out[k], rec32[r32], elt))
            row["fp16_overflow"] = row["non_finite"] if type_name(elt) == "f16" else 0
            rows.append(row)
    return rows


NAME_WIDTH = 64


def _name(row) -> str:
    """The node and op type; a long exporter path keeps its informative end."""
    name = f"{row['node']} ({row['op_type']})" if row["node"] else row["op"]
    return name if len(name) <= NAME_WIDTH else "…" + name[-(NAME_WIDTH - 1) :]


def print_table(report: dict, top: int) -> None:
    from rich.table import Table

    from neuron_opt.cli.tables import console as make_console
    from neuron_opt.cli.tables import sci
    from neuron_opt.diagnostics import markup

    console = make_console()
    rows = sorted(report["ops"], key=lambda r: -r["own"]["rel_l2"])[:top]
    t = Table(
        title=f"{markup(report['name'])}  option {markup(report['option'])}: error per op, "
        f"largest own error first ({min(top, len(report['ops']))} of {len(report['ops'])})",
        title_justify="left",
    )
    for col in (
        "node (op type)",
        "nt op",
        "type",
        "own rel L2",
        "accum. rel L2",
        "inf/NaN",
        "fp16 overflow",
        "flushed to 0",
        "subnormal",
        "fp8 saturated",
    ):
        t.add_column(
            col,
            justify="left" if col in ("node (op type)", "nt op", "type") else "right",
            no_wrap=True,
        )
    for r in rows:
        t.add_row(
            markup(_name(r)),
            r["op"],
            r["type"],
            sci(r["own"]["rel_l2"], 2),
            sci(r["accumulated"]["rel_l2"], 2),
            str(r["non_finite"]),
            str(r["fp16_overflow"]),
            str(r["flushed_to_zero"]),
            str(r["subnormal"]),
            str(r["fp8_saturated_inputs"]),
        )
    console.print(t)
    first = report["first_non_finite"]
    if first:
        console.print(
            f"first inf/NaN: node {markup(first['node'])} ({markup(first['op_type'])}), {first['op']}"
        )
    else:
        console.print("no inf/NaN where fp32 is finite")


def plot(report: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuron_opt.outputs import atomic_output

    rows = report["ops"]
    x = np.arange(len(rows))

    own = np.array([r["own"]["rel_l2"] for r in rows], dtype=np.float64)
    acc = np.array([r["accumulated"]["rel_l2"] for r in rows], dtype=np.float64)
    # Infinite errors (inf/NaN where fp32 is finite) are drawn at the top of the axis.
    fig, ax = plt.subplots(figsize=(max(6.0, min(0.12 * len(rows), 24.0)), 4.5), dpi=100)
    top = max([v for v in np.concatenate([own, acc]) if np.isfinite(v) and v > 0], default=1.0) * 10
    ax.semilogy(
        x, np.where(np.isfinite(acc), np.maximum(acc, 1e-12), top), label="accumulated", lw=1.5
    )
    ax.semilogy(x, np.where(np.isfinite(own), np.maximum(own, 1e-12), top), ".", label="own", ms=4)
    first = report["first_non_finite"]
    if first:
        i = next(i for i, r in enumerate(rows) if r["accumulated_non_finite"])
        ax.axvline(i, color="red", ls="--", lw=1)
        ax.annotate(
            f"first inf/NaN: {first['node']}",
            (i, top),
            xytext=(4, -12),
            textcoords="offset points",
            color="red",
            fontsize=8,
        )
    ax.set_xlabel("op (graph order)")
    ax.set_ylabel("rel L2 error vs fp32")
    ax.set_title(f"{report['name']}: {report['option']}, error along the graph")
    ax.legend(loc="lower right")
    fig.tight_layout()
    with atomic_output(path, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)


def run(args) -> int:
    from neuron_opt.cli.tables import check_plot, write_json
    from neuron_opt.outputs import check_outputs

    if not args.model.endswith(".onnx"):
        raise CompileError("explain takes an ONNX model", args.model)
    if args.plot is not None:
        check_plot(args.plot)
    if args.top < 1:
        raise CompileError("--top must be at least 1", "neuron-cc")
    check_outputs([args.json, args.plot], [args.model, args.inputs])  # before the slow run
    report = explain(args)
    print_table(report, args.top)
    if args.plot:
        plot(report, args.plot)
    if args.json:
        write_json(args.json, report)
    return 0

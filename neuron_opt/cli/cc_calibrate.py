"""`neuron-cc calibrate MODEL.onnx --inputs X.npz [Y.npz ...] [--margin M] -o plan.toml`: the
amax of every contraction input over calibration samples, as a precision plan of scaled fp8
rules (docs/precision-plan.md).

The fp32 reference interpreter runs on each sample; per ONNX node with a contraction the plan
gets one rule: `input_amax`, the largest |value| of the first operand over all samples (an
activation: scaled per tensor), and `weight_amax`, of the second operand: one value per output
channel when it is a constant (a weight, read from the model itself), else one per tensor
(an activation, such as attention's keys). `--precision-plan plan.toml` then runs those
contractions in fp8 with the scales derived from these values.
"""

from __future__ import annotations

import argparse
import glob
from pathlib import Path

import numpy as np

from neuron_opt.diagnostics import CompileError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL.onnx", help="the ONNX model")
    p.add_argument(
        "--inputs",
        metavar="X.npz",
        nargs="+",
        required=True,
        help="calibration samples: one or more .npz files keyed by the model's input names",
    )
    p.add_argument(
        "--margin",
        type=float,
        default=1.0,
        metavar="M",
        help="headroom: scales map margin * amax into fp8's range (default 1)",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="plan.toml",
        required=True,
        help="the precision plan to write (- for stdout)",
    )


def _constant(v) -> bool:
    """Is v computed from weights and constants alone (through data movement)?"""
    from neuron_opt.dialects import nt

    op = v.owner
    if isinstance(op, (nt.WeightOp, nt.ConstantOp)):
        return True
    return (
        isinstance(op, nt.NtOp)
        and nt.op_class(op) is nt.MoveClass
        and bool(op.operands)
        and all(_constant(o) for o in op.operands)
    )


# An amax: one value per tensor, or one per channel.
Amax = float | np.ndarray


def _amax(x, axis: int | None = None) -> Amax:
    """|max| over x (with `axis`: per index of that dim)."""
    a = np.abs(np.asarray(x).astype(np.float32))
    if axis is None:
        return float(a.max()) if a.size else 0.0
    other = tuple(d for d in range(a.ndim) if d != axis)
    return a.max(axis=other) if a.size else np.zeros(a.shape[axis], np.float32)


def _merge(a: Amax | None, b: Amax) -> Amax:
    """The larger of two amax values: per channel when both are, else per tensor."""
    if a is None:
        return b
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape:
        return np.maximum(a, b)
    return max(float(np.max(a)), float(np.max(b)))


class _Node:
    """One ONNX node's contractions: amax so far."""

    def __init__(self, name: str, op_type: str):
        self.name, self.op_type = name, op_type
        self.input: Amax = 0.0
        self.weight: Amax | None = None

    def rule(self) -> dict:
        w = self.weight
        return {
            "node": glob.escape(self.name),
            "op_type": self.op_type,
            "precision": "fp8_e4m3",
            "input_amax": self.input,
            "weight_amax": [float(x) for x in w] if isinstance(w, np.ndarray) else w,
        }


def calibrate(
    model_path: str, sample_paths: list[str], margin: float = 1.0
) -> tuple[list[dict], int]:
    """The plan's rules (one per ONNX node with a contraction, in graph order, as dicts for
    `format_plan`) and the number of contractions they cover; `margin` goes into each rule."""
    from neuron_opt.cli.models import OnnxModel

    model = OnnxModel(model_path)
    samples = [(p, model.inputs(p)) for p in sample_paths]  # every file checked before the runs
    rules, count = calibrate_model(model, samples)
    return [r | ({"margin": margin} if margin != 1.0 else {}) for r in rules], count


def calibrate_model(model, samples: list[tuple[str, dict]]) -> tuple[list[dict], int]:
    """calibrate() on a models.OnnxModel and (name, inputs) samples (tune's)."""
    from neuron_opt.cli.tables import progress
    from neuron_opt.diagnostics import markup, onnx_node_of
    from neuron_opt.dialects import nt
    from neuron_opt.passes.auto_cast import weight_channel_axis
    from neuron_opt.runtime.reference import Reference

    ref = Reference(model.fp32, model.weights)
    contractions = [op for op in ref.func.body.block.ops if isinstance(op, nt.Contraction)]
    nodes: dict[str, _Node] = {}
    with progress() as prog:
        task = prog.add_task("calibrate", total=len(samples))
        for path, inputs in samples:
            prog.update(task, description=f"calibrate: {markup(Path(path).name)}")
            record: dict = {}
            ref.run(inputs, record=record)
            for op in contractions:
                node = onnx_node_of(op) or (op.name, op.name)
                n = nodes.setdefault(node[0], _Node(*node))
                x, w = record[op.operands[0]], record[op.operands[1]]
                n.input = max(n.input, _amax(x))
                const = _constant(op.operands[1])
                n.weight = _merge(n.weight, _amax(w, weight_channel_axis(op) if const else None))
                for what, v in (("input", n.input), ("weight", n.weight)):
                    if not np.all(np.isfinite(v)):
                        raise CompileError(
                            f"node {node[0]} ({node[1]}): its {what} holds inf or NaN "
                            "in fp32: no scale can represent it",
                            path,
                        )
            prog.advance(task)
    return [n.rule() for n in nodes.values()], len(contractions)


def run(args) -> int:
    from neuron_opt.outputs import atomic_output, check_outputs
    from neuron_opt.passes.precision_plan import format_plan

    if not args.model.endswith(".onnx"):
        raise CompileError("calibrate takes an ONNX model", args.model)
    if not (args.margin > 0 and np.isfinite(args.margin)):
        raise CompileError(f"--margin must be a positive number, found {args.margin}", "neuron-cc")
    check_outputs([args.output], [args.model, *args.inputs])
    rules, count = calibrate(args.model, args.inputs, args.margin)
    names = ", ".join(Path(p).name for p in args.inputs)
    comment = (
        f"neuron-cc calibrate {Path(args.model).name}: amax over {len(args.inputs)} sample file(s) "
        f"({names})\nscaled fp8 for {count} contractions; apply with --precision-plan"
    )
    text = format_plan(rules, comment)
    with atomic_output(args.output) as f:
        f.write(text)
    return 0

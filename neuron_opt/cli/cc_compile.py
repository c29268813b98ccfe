"""`neuron-cc compile MODEL.onnx [--auto-cast M] [--auto-cast-type T] [--cast-io] -o OUT.mlir`:
import the model, run the cast pipeline, verify, and write OUT.mlir plus OUT.npz (weights)."""

from __future__ import annotations

import argparse
from pathlib import Path

from neuron_opt.cli.precision import (
    add_cast_options,
    add_plan_options,
    add_report_option,
    emit_report,
    plan_options,
    report_file,
)
from neuron_opt.diagnostics import CompileError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL.onnx", help="the ONNX model")
    add_cast_options(p)
    add_plan_options(p)
    add_report_option(p)
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT.mlir",
        required=True,
        help="the IR to write; the weights go to OUT.npz beside it",
    )


def run(args) -> int:
    from neuron_opt.cli.models import compile_model
    from neuron_opt.importers.onnx import save_compiled
    from neuron_opt.outputs import check_outputs

    out = Path(args.output)
    if args.output == "-":
        raise CompileError(
            "-o - is not possible: compile writes two files (OUT.mlir and OUT.npz)", "neuron-cc"
        )
    if (
        out.exists() and not out.is_file() and not out.is_dir()
    ):  # /dev/null: the weights would go to /dev
        raise CompileError(
            "-o must name a file: compile writes OUT.mlir and OUT.npz beside it", args.output
        )
    if out.suffix == ".npz":  # OUT.npz is the weight file: it would overwrite the IR
        raise CompileError(
            "the output must not end in .npz (the weights are written there)", args.output
        )
    npz = out.with_suffix(".npz")
    check_outputs([out, npz, report_file(args)], [args.model])  # before the (possibly slow) import
    if npz.is_file() and not _names_weights(out, npz.name):
        raise CompileError(
            f"exists and is not the weights file of {out} (remove it or choose another -o)",
            str(npz),
        )
    module, weights = compile_model(
        args.model,
        args.auto_cast,
        args.auto_cast_type,
        args.cast_io,
        npz.name,
        plan_options(args),
        lambda report: emit_report(report, args),
    )
    save_compiled(module, weights, out)
    return 0


def _names_weights(ir_path: Path, npz_name: str) -> bool:
    """Whether an existing IR file names `npz_name` as its weights (its module attributes come
    first in the file): replacing that .npz replaces a pair, not an unrelated file."""
    import json
    import os

    from neuron_opt.npz import WEIGHTS_ATTR

    if not os.path.isfile(ir_path):  # (a FIFO is never opened)
        return False
    try:
        with open(ir_path, "rb") as f:
            head = f.read(1 << 16).decode("utf-8", "replace")
    except OSError:
        return False
    return f"{WEIGHTS_ATTR} = {json.dumps(npz_name)}" in head

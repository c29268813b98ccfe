"""`neuron-cc compile MODEL.onnx [--auto-cast M] [--auto-cast-type T] [--cast-io] -o OUT.mlir`:
import the model, run the cast pipeline, verify, and write OUT.mlir plus OUT.npz (weights).

The cast options and `compile_model` are shared with `neuron-cc eval` (and later subcommands)."""

from __future__ import annotations

import argparse
from pathlib import Path

from neuron_opt.cli.cc_precision import add_plan_options, add_report_option, emit_report, plan_options, report_file
from neuron_opt.diagnostics import CompileError
from neuron_opt.options import CAST_TYPES, DEFAULT_MODE, DEFAULT_TYPE, MODE_SPELLINGS, normalize_mode


def add_cast_options(p: argparse.ArgumentParser) -> None:
    """neuronx-cc's spellings; defaults as its mixed-precision guide documents them."""
    p.add_argument(
        "--auto-cast", type=normalize_mode, choices=MODE_SPELLINGS, default=DEFAULT_MODE,
        help=f"which ops to cast (default {DEFAULT_MODE}; neuronx-cc 2.27+ defaults to none); "
        "matmul is accepted for matmult; none runs no pass")
    p.add_argument("--auto-cast-type", choices=CAST_TYPES, default=DEFAULT_TYPE,
                   help=f"the low-precision type (default {DEFAULT_TYPE})")
    p.add_argument("--cast-io", action="store_true",
                   help="expose low-precision inputs/outputs: preserve-io{enabled=false}")


def compile_model(model_path: str, mode: str, cast_type: str, cast_io: bool, weights_name: str | None = None,
                  plan: dict | None = None, on_report=None):
    """Import + cast pipeline + verify. Returns (module, weights). ONNX problems arrive from the
    importer as `model.onnx: node NAME (OpType): error: ...`. `plan` holds auto-cast's
    precision-plan options; `on_report` receives auto-cast's report (when it ran)."""
    from neuron_opt.dialects.parse import verify_module
    from neuron_opt.importers.onnx import import_onnx
    from neuron_opt.passes.pipeline import apply_cast_pipeline, cast_pipeline

    module, weights = import_onnx(model_path, weights_name)
    report = apply_cast_pipeline(module, cast_pipeline(mode, cast_type, not cast_io, **(plan or {})))
    if on_report is not None:
        on_report(report)
    verify_module(module)
    return module, weights


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL.onnx", help="the ONNX model")
    add_cast_options(p)
    add_plan_options(p)
    add_report_option(p)
    p.add_argument("-o", "--output", metavar="OUT.mlir", required=True,
                   help="the IR to write; the weights go to OUT.npz beside it")


def run(args) -> int:
    from neuron_opt.importers.onnx import save_compiled
    from neuron_opt.outputs import check_outputs

    out = Path(args.output)
    if args.output == "-":
        raise CompileError("-o - is not possible: compile writes two files (OUT.mlir and OUT.npz)",
                           "neuron-cc")
    if out.exists() and not out.is_file() and not out.is_dir():  # /dev/null: the weights would go to /dev
        raise CompileError("-o must name a file: compile writes OUT.mlir and OUT.npz beside it", args.output)
    if out.suffix == ".npz":  # OUT.npz is the weight file: it would overwrite the IR
        raise CompileError("the output must not end in .npz (the weights are written there)", args.output)
    npz = out.with_suffix(".npz")
    check_outputs([out, npz, report_file(args)], [args.model])  # before the (possibly slow) import
    if npz.is_file() and not _names_weights(out, npz.name):
        raise CompileError(f"exists and is not the weights file of {out} (remove it or choose "
                           "another -o)", str(npz))
    module, weights = compile_model(
        args.model, args.auto_cast, args.auto_cast_type, args.cast_io, out.with_suffix(".npz").name,
        plan_options(args), lambda report: emit_report(report, args))
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

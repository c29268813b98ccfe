"""`neuron-cc compile MODEL.onnx [--auto-cast M] [--auto-cast-type T] [--cast-io] -o OUT.mlir`:
import the model, run the cast pipeline, verify, and write OUT.mlir plus OUT.npz (weights).

The cast options and `compile_model` are shared with `neuron-cc eval` (and later subcommands)."""

from __future__ import annotations

import argparse
from pathlib import Path

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


def compile_model(model_path: str, mode: str, cast_type: str, cast_io: bool, weights_name: str | None = None):
    """Import + cast pipeline + verify. Returns (module, weights). ONNX problems arrive from the
    importer as `model.onnx: node NAME (OpType): error: ...`."""
    from neuron_opt.dialects.parse import verify_module
    from neuron_opt.importers.onnx import import_onnx
    from neuron_opt.passes.pipeline import run_cast_pipeline

    module, weights = import_onnx(model_path, weights_name)
    run_cast_pipeline(module, mode, cast_type, preserve_io=not cast_io)
    verify_module(module)
    return module, weights


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL.onnx", help="the ONNX model")
    add_cast_options(p)
    p.add_argument("-o", "--output", metavar="OUT.mlir", required=True,
                   help="the IR to write; the weights go to OUT.npz beside it")


def run(args) -> int:
    from neuron_opt.importers.onnx import save_compiled

    out = Path(args.output)
    if out.suffix == ".npz":  # OUT.npz is the weight file: it would overwrite the IR
        raise CompileError("the output must not end in .npz (the weights are written there)", args.output)
    if not out.parent.is_dir():  # fail before the (possibly slow) import
        raise CompileError("cannot write: the directory does not exist", args.output)
    module, weights = compile_model(
        args.model, args.auto_cast, args.auto_cast_type, args.cast_io, out.with_suffix(".npz").name)
    save_compiled(module, weights, out)
    return 0

"""neuron-cc: the model compiler. Each subcommand lives in its own module cc_<name>.py with
`add_arguments(parser)` and `run(args) -> int`; they are imported only when used. What they
share is a library beside them: models.py (models, compiled options, simulator and
interpreter runs), inputs.py, metrics.py, precision.py (the cast and plan flags), tables.py
(console, tables, titles, JSON), pool.py (worker processes), common.py."""

from __future__ import annotations

import argparse
import importlib
import sys

from neuron_opt.cli.common import add_limit_options, apply_limit_options, run_main

SUBCOMMANDS = {
    "compile": "import an ONNX model and run the cast pipeline; writes OUT.mlir and OUT.npz",
    "eval": "run the reference interpreter for an option and for fp32, and compare",
    "run": "run MODEL (ONNX, nt or nisa) on the NeuronCore-v2 simulator, lowered to nisa first",
    "sweep": "every auto-cast option side by side: accuracy, latency, a plot, a recommendation",
    "explain": "fp32 and an option side by side in the interpreter: the error each ONNX node "
    "adds, where inf/NaN first appears, fp16 overflow, fp8 saturation, underflow",
    "calibrate": "the amax of every contraction input over calibration samples, as a "
    "precision plan of scaled fp8 rules",
    "tune": "a precision per ONNX node, as fast on the simulator as the search finds within an "
    "error tolerance: writes a precision plan, a table, a Pareto plot",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's usage dump -> one line, exit 1
        print(f"neuron-cc: error: {message}", file=sys.stderr)
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    parser = _Parser(
        prog="neuron-cc",
        description="Compile ONNX models for NeuronCore-v2, compare precision options, and run "
        "them on the simulator.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    argv = sys.argv[1:] if argv is None else argv
    chosen = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    modules = {}
    for name, help_text in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if chosen in (None, name):  # import only the subcommand in use (start-up time)
            modules[name] = importlib.import_module(f"neuron_opt.cli.cc_{name}")
            modules[name].add_arguments(p)
            add_limit_options(p)
    args = parser.parse_args(argv)

    def body():
        apply_limit_options(args)
        return modules[args.command].run(args)

    run_main("neuron-cc", body)

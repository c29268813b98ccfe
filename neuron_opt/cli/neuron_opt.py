"""neuron-opt: the pass driver on IR text, with mlir-opt conventions."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import io
import sys
import typing

from neuron_opt import __version__
from neuron_opt.cli.common import (
    add_limit_options,
    apply_limit_options,
    make_context,
    read_text,
    run_main,
)
from neuron_opt.diagnostics import CompileError
from neuron_opt.outputs import atomic_output, check_outputs

EPILOG = """\
examples:
  neuron-opt model.mlir                                   parse, verify, print (no pass)
  neuron-opt model.mlir --auto-cast=matmult --auto-cast-type=bf16
  neuron-opt model.mlir -p 'auto-cast{mode=all type=fp16},canonicalize-casts,preserve-io'

--auto-cast / --auto-cast-type run auto-cast{mode=M type=T},canonicalize-casts,preserve-io; an
omitted one takes its default (matmult, bf16: the defaults of neuronx-cc's mixed-precision
guide; neuronx-cc 2.27 and later default to none). --auto-cast=none runs no pass at all.

--verify-diagnostics keeps xDSL's meaning: an error is printed to stdout and the exit code is
0, so a test can FileCheck the message (it is not MLIR's expected-error checking).
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise CompileError(message, "neuron-opt")


def arg_parser() -> argparse.ArgumentParser:
    from neuron_opt.options import CAST_TYPES, MODE_SPELLINGS, normalize_mode

    p = _Parser(
        prog="neuron-opt",
        description="The neuron-opt pass driver: parse nt/nisa IR, run passes, print IR.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", nargs="?", default="-", help="input IR file (default: stdin)")
    p.add_argument(
        "-p", "--passes", help="pass pipeline, e.g. 'auto-cast{mode=all},canonicalize-casts'"
    )
    p.add_argument(
        "-o", "--output-file", help="write the output here (default: stdout; '-' is stdout)"
    )
    p.add_argument(
        "--auto-cast", type=normalize_mode, choices=MODE_SPELLINGS, help="neuronx-cc --auto-cast"
    )
    p.add_argument("--auto-cast-type", choices=CAST_TYPES, help="neuronx-cc --auto-cast-type")
    p.add_argument(
        "--cast-io",
        action="store_true",
        help="expose low-precision I/O: preserve-io{enabled=false}",
    )
    p.add_argument(
        "--cast-report",
        nargs="?",
        const=True,
        metavar="FILE.json",
        help="print what auto-cast decided per op to stderr (and with =FILE.json write it as JSON)",
    )
    p.add_argument(
        "--split-input-file", action="store_true", help="handle each '// -----' chunk apart"
    )
    p.add_argument(
        "--verify-diagnostics", action="store_true", help="print errors to stdout, exit 0"
    )
    p.add_argument(
        "--verify-each",
        action="store_true",
        help="verify after every pass (default: after parsing and after the pipeline)",
    )
    p.add_argument("--print-op-generic", action="store_true", help="print the generic op form")
    p.add_argument("--list-passes", action="store_true", help="list the registered passes and exit")
    add_limit_options(p)
    p.add_argument("-v", "--version", action="version", version=f"neuron-opt {__version__}")
    return p


def _pipeline(args) -> list:
    from xdsl.passes import PassPipeline
    from xdsl.utils.arg_spec import parse_pipeline
    from xdsl.utils.exceptions import ArgSpecParseError

    from neuron_opt.options import DEFAULT_MODE, DEFAULT_TYPE
    from neuron_opt.passes.auto_cast import AutoCastPass
    from neuron_opt.passes.pipeline import cast_pipeline
    from neuron_opt.universe import PASSES

    shorthand = args.auto_cast or args.auto_cast_type or args.cast_io
    if args.passes is not None and shorthand:
        raise CompileError(
            "-p cannot be combined with --auto-cast, --auto-cast-type or --cast-io", "neuron-opt"
        )
    if args.passes is not None:
        try:
            specs = list(parse_pipeline(args.passes))
        except ArgSpecParseError as e:
            detail = str(e).strip().splitlines()[-1].strip()
            raise CompileError(
                f"malformed pass pipeline '{args.passes}': {detail}", "neuron-opt"
            ) from None
        _check_duplicate_options(args.passes)
        for spec in specs:
            _check_pass_spec(spec, PASSES)
        try:
            passes = list(PassPipeline.parse_spec(PASSES, args.passes).passes)
        except Exception as e:  # xDSL reports bad option values as plain exceptions
            raise CompileError(f"bad pass pipeline '{args.passes}': {e}", "neuron-opt") from None
    elif shorthand:
        passes = cast_pipeline(
            args.auto_cast or DEFAULT_MODE, args.auto_cast_type or DEFAULT_TYPE, not args.cast_io
        )
    else:
        passes = []
    if args.cast_report:
        passes = [
            dataclasses.replace(p, report=True) if isinstance(p, AutoCastPass) else p
            for p in passes
        ]
    return passes


def _check_duplicate_options(pipeline: str) -> None:
    """xDSL keeps the last of two values given for one option (`auto-cast{mode=all mode=none}`);
    mlir-opt rejects that, and so do we."""
    import re

    for m in re.finditer(r'([\w.-]+)\{((?:"[^"]*"|[^}"])*)\}', pipeline):
        seen = set()
        inner = re.sub(r'"[^"]*"', '""', m.group(2))
        for key in re.findall(r"(?:^|\s)([A-Za-z_][\w-]*)\s*=", inner):
            key = key.replace("-", "_")
            if key in seen:
                raise CompileError(
                    f"option {key} of pass {m.group(1)} is given more than once", "neuron-opt"
                )
            seen.add(key)


def _run_pass(p, ctx, module, reports: list) -> None:
    """Apply one pass; auto-cast's report goes to stderr here (a pass never prints): its
    warnings always, its per-op lines when asked (`--cast-report` or `report=true`)."""
    from neuron_opt.passes.auto_cast import AutoCastPass

    if not isinstance(p, AutoCastPass):
        p.apply(ctx, module)
        return
    report = p.cast(ctx, module)
    for line in report.warnings() + (report.lines() if p.report else []):
        print(line, file=sys.stderr)
    reports.append(report)


def _check_pass_spec(spec, registry) -> None:
    """Name the pass, the option and the allowed values (xDSL's own messages do not)."""
    if spec.name not in registry:
        raise CompileError(
            f"unknown pass '{spec.name}' (available: {', '.join(sorted(registry))})", "neuron-opt"
        )
    cls = registry[spec.name]()
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    for key, values in spec.normalize_parameter_names().parameters.items():
        if key not in fields:
            raise CompileError(
                f"unknown option '{key}' for pass {spec.name} (options: {', '.join(fields)})",
                "neuron-opt",
            )
        hint = hints[key]
        allowed = typing.get_args(hint) if typing.get_origin(hint) is typing.Literal else ()
        if allowed and (len(values) != 1 or values[0] not in allowed):
            found = " ".join(str(v) for v in values) or "nothing"
            raise CompileError(
                f"option {key} of pass {spec.name} must be one of {', '.join(allowed)}; found '{found}'",
                "neuron-opt",
            )


def _chunks(text: str, split: bool) -> list[tuple[str, int]]:
    """(chunk, line offset) pairs; '// -----' separates chunks under --split-input-file."""
    if not split:
        return [(text, 0)]
    out, line, cur, start = [], 0, [], 0
    for ln in text.splitlines(keepends=True):
        if ln.strip() == "// -----":
            out.append(("".join(cur), start))
            cur, start = [], line + 1
        else:
            cur.append(ln)
        line += 1
    out.append(("".join(cur), start))
    return [(c, o) for c, o in out if c.strip() or len(out) == 1]


def _process(ctx, chunk: str, offset: int, filename: str, passes, args, reports: list) -> str:
    from xdsl.printer import Printer

    from neuron_opt.dialects.parse import parse_module, verify_module

    gc.disable()  # the cyclic GC costs half the time on large modules (docs/design.md §7)
    try:
        module = parse_module(ctx, chunk, filename, offset)
        verify_module(module)
        for p in passes:
            try:
                _run_pass(p, ctx, module, reports)
            except CompileError:
                raise
            except Exception as e:  # a pass bug must not surface as a traceback
                raise CompileError(
                    f"pass {p.name} failed: {type(e).__name__}: {e}", filename
                ) from None
            if args.verify_each:
                verify_module(module)
        if passes and not args.verify_each:
            # Once for the whole pipeline: verifying after each pass cost more than the passes
            # themselves (bench/compile_speed.py).
            verify_module(module)
        out = io.StringIO()
        Printer(stream=out, print_generic_format=args.print_op_generic).print_op(module)
        out.write("\n")
        return out.getvalue()
    finally:
        gc.enable()


def _main(argv: list[str] | None) -> int:
    args = arg_parser().parse_args(argv)
    if args.list_passes:
        from neuron_opt.universe import PASSES

        print("\n".join(sorted(PASSES)))
        return 0
    apply_limit_options(args)
    passes = _pipeline(args)
    check_outputs(
        [args.output_file, args.cast_report if isinstance(args.cast_report, str) else None],
        [args.input],
    )
    text = read_text(args.input)
    filename = "<stdin>" if args.input == "-" else args.input
    ctx = make_context()
    results, reports = [], []
    for chunk, offset in _chunks(text, args.split_input_file):
        try:
            results.append(_process(ctx, chunk, offset, filename, passes, args, reports))
        except CompileError as e:
            if not args.verify_diagnostics:
                raise
            results.append(str(e) + "\n")
    output = "// -----\n".join(results)
    if isinstance(args.cast_report, str):
        from neuron_opt.passes.cast_report import write_report_json

        write_report_json(args.cast_report, reports)
    if args.output_file:
        with atomic_output(args.output_file) as f:
            f.write(output)
    else:
        sys.stdout.write(output)
    return 0


def main(argv: list[str] | None = None) -> None:
    run_main("neuron-opt", lambda: _main(argv))

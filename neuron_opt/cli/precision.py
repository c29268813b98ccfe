"""Precision control on neuron-cc's commands: the cast options (`--auto-cast`,
`--auto-cast-type`, `--cast-io`), `--precision-plan plan.toml`, onnxruntime's
`--op-block-list A,B` / `--node-block-list a,b` (kept fp32), and `--cast-report[=FILE.json]`
(auto-cast's decision per ONNX node: text to stderr, JSON to the file)."""

from __future__ import annotations

import argparse
import sys

from neuron_opt.options import (
    CAST_TYPES,
    DEFAULT_MODE,
    DEFAULT_TYPE,
    MODE_SPELLINGS,
    normalize_mode,
)


def add_cast_options(p) -> None:
    """neuronx-cc's spellings; defaults as its mixed-precision guide documents them."""
    p.add_argument(
        "--auto-cast",
        type=normalize_mode,
        choices=MODE_SPELLINGS,
        default=DEFAULT_MODE,
        help=f"which ops to cast (default {DEFAULT_MODE}; neuronx-cc 2.27+ defaults to none); "
        "matmul is accepted for matmult; none runs no pass",
    )
    p.add_argument(
        "--auto-cast-type",
        choices=CAST_TYPES,
        default=DEFAULT_TYPE,
        help=f"the low-precision type (default {DEFAULT_TYPE})",
    )
    p.add_argument(
        "--cast-io",
        action="store_true",
        help="expose low-precision inputs/outputs: preserve-io{enabled=false}",
    )


def _names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected NAME[,NAME...], found '{text}'")
    return names


def add_plan_options(p: argparse._ActionsContainer) -> None:  # a parser or a group of one
    p.add_argument(
        "--precision-plan",
        metavar="plan.toml",
        default="",
        help="per-op precision rules (docs/precision-plan.md); ops no rule matches "
        "follow --auto-cast",
    )
    p.add_argument(
        "--op-block-list",
        metavar="A,B",
        type=_names,
        default=(),
        help="ONNX op types kept in fp32 (onnxruntime's op_block_list)",
    )
    p.add_argument(
        "--node-block-list",
        metavar="a,b",
        type=_names,
        default=(),
        help="ONNX node names kept in fp32 (onnxruntime's node_block_list)",
    )


def add_report_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cast-report",
        nargs="?",
        const=True,
        default=None,
        metavar="FILE.json",
        help="print auto-cast's decision per ONNX node to stderr (and with "
        "=FILE.json write it as JSON)",
    )


def report_file(args) -> str | None:
    """The FILE.json of `--cast-report=FILE.json` (None without it or with bare --cast-report)."""
    want = getattr(args, "cast_report", None)
    return want if isinstance(want, str) else None


def plan_options(args) -> dict:
    """auto-cast's plan options from the command line; the plan file is read and checked
    here, before any slow work, so that a bad file stops the command at once."""
    from neuron_opt.passes.precision_plan import build_plan

    opts = {
        "plan": getattr(args, "precision_plan", ""),
        "op_block_list": getattr(args, "op_block_list", ()),
        "node_block_list": getattr(args, "node_block_list", ()),
    }
    build_plan(opts["plan"], opts["op_block_list"], opts["node_block_list"])
    return opts


def has_plan(args) -> bool:
    return any(plan_options(args).values())


def plan_label(args) -> str:
    """`+plan` (with the file's stem) for option labels when a plan or block list is given."""
    from pathlib import Path

    if getattr(args, "precision_plan", ""):
        return f"+plan:{Path(args.precision_plan).stem}"
    return (
        "+blocklist"
        if getattr(args, "op_block_list", ()) or getattr(args, "node_block_list", ())
        else ""
    )


def label_of(args) -> str:
    """The option's label in tables and JSON: `MODE-TYPE[+cast-io][+plan:NAME]`."""
    from neuron_opt.options import option_label

    return option_label(
        normalize_mode(args.auto_cast), args.auto_cast_type, args.cast_io
    ) + plan_label(args)


def emit_report(report, args) -> None:
    """Warnings (rules that match nothing) always; the per-op lines with --cast-report; the
    JSON with --cast-report=FILE.json."""
    if report is None:
        return
    for line in report.warnings() + (report.lines() if getattr(args, "cast_report", None) else []):
        print(line, file=sys.stderr)
    if path := report_file(args):
        from neuron_opt.passes.cast_report import write_report_json

        write_report_json(path, [report])

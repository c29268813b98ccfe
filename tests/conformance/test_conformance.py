"""ONNX node-test conformance: every case of every op type the importer claims either passes
through import + the reference interpreter, or is refused with the importer's clear
`Unsupported` error (a dtype nt lacks, an attribute value it does not cover)."""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from node_cases import load_cases, run_case

from neuron_opt.importers.onnx import supported_ops


@cache
def _cases():
    return load_cases()


@cache
def _outcomes():
    return {tc.name: run_case(tc, op) for tc, op in _cases()}


def _case_names():
    return [tc.name for tc, _ in _cases()]


@pytest.mark.parametrize("name", _case_names())
def test_node_case(name):
    outcome = _outcomes()[name]
    assert outcome.status in ("pass", "unsupported"), outcome.message
    if outcome.status == "unsupported":
        # One located error naming the node and its op type (or the graph input no node reads).
        located = ": node " in outcome.message and "): error: " in outcome.message
        assert located or ": input " in outcome.message.split(": error: ")[0], outcome.message


def test_every_claimed_op_with_cases_passes_some():
    """Guards against a regression that turns whole ops into 'unsupported'."""
    by_op: dict[str, list[str]] = {}
    for name, outcome in _outcomes().items():
        by_op.setdefault(outcome.op, []).append(outcome.status)
    without = [op for op, st in by_op.items() if "pass" not in st]
    assert not without, f"claimed ops with no passing node test: {without}"
    assert set(by_op) <= set(supported_ops())


def test_dtype_refusals_name_the_missing_type():
    for outcome in _outcomes().values():
        if outcome.status == "unsupported" and "lacks" in outcome.message:
            assert any(t in outcome.message for t in (
                "DOUBLE", "UINT", "INT16", "INT4", "INT2", "FLOAT8", "FLOAT4", "STRING",
                "COMPLEX", "the type of input 1",
            )), outcome.message  # fmt: skip

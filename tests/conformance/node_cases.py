"""The ONNX backend node tests of the installed onnx, run through import + the reference
interpreter (shared by run_conformance.py and test_conformance.py).

A case belongs to the op type its test is named after (test_gather_elements_0 -> GatherElements,
expanded variants included); only op types the importer claims are run. Inputs the importer
needs as constants (a Reshape's shape, a Slice's starts, Clip's bounds, ...) are bound from the
test data. Outcomes:
  pass         every output matches (floats: rel L2 <= 1e-5 with inf/NaN at the same places
               and signs; integers and bools exactly)
  unsupported  the importer's clear `Unsupported` error (an op, dtype or attribute value nt
               does not cover), with its message
  fail         anything else: a wrong value, an invalid module, another error
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import onnx

from neuron_opt.diagnostics import CompileError
from neuron_opt.importers.onnx import Unsupported, import_onnx, static_inputs, supported_ops
from neuron_opt.runtime.reference import run_module

REL_L2 = 1e-5

# Cases whose stored expected outputs are rounded more coarsely than REL_L2 (onnx writes them
# out by hand): their expected outputs are recomputed with onnx's own reference evaluator.
EXPECTED_FROM_REFERENCE = {
    "test_averagepool_2d_ceil_last_window_starts_on_pad": "expected values given to 4 decimals",
}


@cache
def _op_keys() -> list[tuple[str, str]]:
    """(squashed name, op type) for every ONNX op, longest first, plus test-name aliases."""
    names = {
        s.name for s in onnx.defs.get_all_schemas_with_history() if s.domain in ("", "ai.onnx")
    }
    keys = [(n.lower(), n) for n in names]
    keys += [("batchnorm", "BatchNormalization"), ("instancenorm", "InstanceNormalization"),
             ("globalaveragepool", "GlobalAveragePool"), ("averagepool", "AveragePool"),
             ("logsoftmax", "LogSoftmax"), ("greaterequal", "GreaterOrEqual"),
             ("lessequal", "LessOrEqual"), ("constantpad", "Pad"), ("edgepad", "Pad"),
             ("reflectpad", "Pad"), ("wrappad", "Pad")]  # fmt: skip
    return sorted(keys, key=lambda k: -len(k[0]))


def op_of_test(name: str) -> str | None:
    squashed = name.removeprefix("test_").replace("_", "").lower()
    for key, op in _op_keys():
        if squashed.startswith(key):
            return op
    return None


@dataclass
class Outcome:
    name: str
    op: str
    status: str  # pass | unsupported | fail
    message: str = ""
    folded: bool = False  # the whole computation was folded at import (no nt compute op)


@dataclass
class OpRow:
    op: str
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)


def load_cases(ops: set[str] | None = None):
    """(test case, op type) for every node test of a claimed op (or of `ops`)."""
    from onnx.backend.test.loader import load_model_tests

    claimed = set(supported_ops()) if ops is None else ops
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        tests = load_model_tests(kind="node")
    out = []
    for tc in tests:
        op = op_of_test(tc.name)
        if op in claimed:
            out.append((tc, op))
    return sorted(out, key=lambda x: (x[1], x[0].name))


def compare(name: str, got: np.ndarray, want: np.ndarray) -> str | None:
    """None when `got` matches `want`, else what differs."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return f"{name}: shape {got.shape}, expected {want.shape}"
    if want.dtype.kind in "biu" or got.dtype.kind in "biu":
        if got.dtype.kind != want.dtype.kind and not (
            got.dtype.kind in "iu" and want.dtype.kind in "iu"
        ):
            return f"{name}: dtype {got.dtype}, expected {want.dtype}"
        bad = np.count_nonzero(got.astype(want.dtype) != want)
        return f"{name}: {bad} of {want.size} elements differ" if bad else None
    if got.dtype.kind not in "fV" and got.dtype.name != "bfloat16":
        return f"{name}: dtype {got.dtype}, expected {want.dtype}"
    a, b = got.astype(np.float64), want.astype(np.float64)
    fin = np.isfinite(b)
    if not np.array_equal(np.isnan(a), np.isnan(b)) or not np.array_equal(
        np.where(np.isinf(b), b, 0), np.where(np.isinf(a), a, 0)
    ):
        return f"{name}: inf/NaN values at other places or signs"
    both = fin & np.isfinite(a)
    num = np.linalg.norm(a[both] - b[both])
    den = np.linalg.norm(b[fin])
    rel = num / den if den > 0 else num
    return None if rel <= REL_L2 else f"{name}: rel L2 error {rel:.3g} > {REL_L2:g}"


def run_case(tc, op: str) -> Outcome:
    model = tc.model
    inits = {t.name for t in model.graph.initializer}
    input_names = [i.name for i in model.graph.input if i.name not in inits]
    output_names = [o.name for o in model.graph.output]
    try:
        static = static_inputs(model)
    except CompileError as e:
        return Outcome(tc.name, op, "unsupported" if isinstance(e, Unsupported) else "fail", str(e))
    folded = True
    for inputs, expected in tc.data_sets:
        inputs, expected = [_array(x) for x in inputs], [_array(x) for x in expected]
        if tc.name in EXPECTED_FROM_REFERENCE:
            from onnx.reference import ReferenceEvaluator

            expected = ReferenceEvaluator(model).run(None, dict(zip(input_names, inputs)))
        feeds = dict(zip(input_names, inputs))
        bind = {k: v for k, v in feeds.items() if k in static}
        try:
            module, weights = import_onnx(model, bind=bind)
            with tempfile.TemporaryDirectory() as d:
                if weights:
                    np.savez(f"{d}/model.npz", **weights)
                got = run_module(module, {k: v for k, v in feeds.items() if k not in bind}, d)
        except Unsupported as e:
            return Outcome(tc.name, op, "unsupported", str(e))
        except CompileError as e:
            return Outcome(tc.name, op, "fail", str(e))
        except Exception as e:  # an importer or interpreter bug: a failure, with its kind
            return Outcome(tc.name, op, "fail", f"{type(e).__name__}: {e}")
        folded &= _fully_folded(module)
        for name, want in zip(output_names, expected):
            if (msg := compare(name, got[name], want)) is not None:
                return Outcome(tc.name, op, "fail", msg)
    return Outcome(tc.name, op, "pass", folded=folded)


def _array(x):
    """Test data comes as numpy arrays or, for types numpy lacks (bf16), as TensorProtos."""
    if isinstance(x, onnx.TensorProto):
        from onnx import numpy_helper

        return numpy_helper.to_array(x)
    return x


def _fully_folded(module) -> bool:
    from neuron_opt.dialects.nt import ConstantOp, WeightOp

    return all(
        isinstance(op, (ConstantOp, WeightOp)) for op in module.walk() if op.name.startswith("nt.")
    )


def run_all(ops: set[str] | None = None) -> list[OpRow]:
    rows: dict[str, OpRow] = {op: OpRow(op) for op in (ops or supported_ops())}
    for tc, op in load_cases(ops):
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows[op].outcomes.append(run_case(tc, op))
    return [rows[k] for k in sorted(rows)]

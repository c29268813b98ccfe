"""ONNX backend node tests through import + lower-to-nisa + the simulator, each against the
reference interpreter (rel L2 <= 1e-5, inf/NaN in place; integers exactly). Counts the cases
the importer accepts, those that lower, and those that match; a one-line CompileError is
counted at its stage (import, interpreter, lowering, simulator) with its message; any other
exception is a crash (a bug).

    .venv/bin/python bench/lowering_conformance.py

Writes bench/results/lowering_conformance.json.
"""

from __future__ import annotations

import collections
import sys
import tempfile

import numpy as np
from bench_common import RESULTS, ROOT, write_json

sys.path.insert(0, str(ROOT / "tests" / "conformance"))


def run():
    """(counts, crashes, mismatches, error messages by count)."""
    from node_cases import _array, compare, load_cases

    from neuron_opt.diagnostics import CompileError
    from neuron_opt.importers.onnx import import_onnx, static_inputs
    from neuron_opt.lowering.lower_to_nisa import lower_module
    from neuron_opt.runtime.reference import run_module
    from neuron_opt.runtime.sim import simulate

    stats, unsupported = collections.Counter(), collections.Counter()
    crashes, mismatches = [], []
    for tc, op in load_cases():
        model = tc.model
        inits = {t.name for t in model.graph.initializer}
        input_names = [i.name for i in model.graph.input if i.name not in inits]
        stats["cases"] += 1
        stage = "import"
        try:
            static = static_inputs(model)
            feeds = dict(zip(input_names, [_array(x) for x in tc.data_sets[0][0]]))
            bind = {k: v for k, v in feeds.items() if k in static}
            module, weights = import_onnx(model, bind=bind)
            stats["accepted"] += 1
            with tempfile.TemporaryDirectory() as d:
                if weights:
                    np.savez(f"{d}/model.npz", **weights)
                free = {k: v for k, v in feeds.items() if k not in bind}
                stage = "interpreter"
                ref = run_module(module, free, d)
                stage = "lowering"
                kernel = lower_module(module)
                stats["lowered"] += 1
                stage = "simulator"
                with np.errstate(all="ignore"):
                    got = simulate(kernel, free, d).outputs
        except CompileError as e:
            stats[f"{stage}_error"] += 1
            if stage != "import":
                unsupported[f"{stage}: " + str(e).split("error: ")[-1][:90]] += 1
            continue
        except Exception as e:
            stats["crash"] += 1
            crashes.append(f"{tc.name} ({stage}): {type(e).__name__}: {e}")
            continue
        bad = next(
            (
                m
                for o in model.graph.output
                if (m := compare(o.name, got.get(o.name, np.zeros(0)), ref[o.name]))
            ),
            None,
        )
        stats["mismatched" if bad else "matched"] += 1
        if bad:
            mismatches.append(f"{tc.name}: {bad}")
    return stats, crashes, mismatches, unsupported


def main() -> int:
    stats, crashes, mismatches, unsupported = run()
    print(dict(stats))
    for title, rows in (("crashes", crashes), ("mismatches", mismatches)):
        print(f"{title}: {len(rows)}")
        for r in rows:
            print("  " + r)
    print("most common errors:")
    for msg, n in unsupported.most_common(15):
        print(f"  {n:4d}  {msg}")
    write_json(
        RESULTS / "lowering_conformance.json",
        {
            "counts": dict(stats),
            "crashes": crashes,
            "mismatches": mismatches,
            "errors": dict(unsupported.most_common()),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

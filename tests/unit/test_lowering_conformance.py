"""The ONNX backend node tests through lower-to-nisa and the simulator (bench/
lowering_conformance.py): every case the importer accepts lowers, and then matches the
reference interpreter or stops with a one-line CompileError; none crashes or computes a wrong
value."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_node_tests_match_or_fail_cleanly(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))  # as when run as a script: bench_common
    spec = importlib.util.spec_from_file_location(
        "lowering_conformance", ROOT / "bench/lowering_conformance.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    stats, crashes, mismatches, errors = mod.run()
    assert not crashes, crashes[:5]
    assert not mismatches, mismatches[:5]
    # Every accepted case lowers (3-D pools and edge/reflect pads included) and matches.
    assert not [m for m in errors if m.startswith("lowering:")], errors
    assert stats["lowered"] == stats["accepted"] - stats["interpreter_error"]
    assert stats["matched"] == stats["lowered"] - stats["simulator_error"] >= 481

"""The committed model zoo (examples/zoo, tiny configs of transformers/torch models exported by
both PyTorch exporters): every export imports, and the reference interpreter under `none`
matches onnxruntime and the float64 torch run. No torch needed: the files are committed."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from neuron_opt.dialects.parse import verify_module
from neuron_opt.importers.onnx import import_onnx
from neuron_opt.runtime.reference import Reference

ZOO = Path(__file__).resolve().parents[2] / "examples" / "zoo"
MANIFEST = json.loads((ZOO / "zoo.json").read_text())
RECORDS = {f"{r['name']}.{r['exporter']}": r for r in MANIFEST["models"]}
TOLERANCE = 1e-5  # rel L2 under `none`


def rel_l2(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def test_manifest_lists_every_model_and_exporter():
    sys.path.insert(0, str(ZOO))
    try:
        import make_zoo  # numpy only at import: torch is needed to build, not to list
    finally:
        sys.path.remove(str(ZOO))
    assert set(RECORDS) == {f"{n}.{e}" for n in make_zoo.ZOO for e in make_zoo.EXPORTERS}
    onnx_files = {p.name for p in ZOO.glob("*.onnx")}
    assert onnx_files == {r["file"] for r in RECORDS.values() if "error" not in r}


@pytest.mark.parametrize("key", sorted(k for k, r in RECORDS.items() if "error" not in r))
def test_zoo_model_imports_and_interpreter_matches(key, tmp_path):
    r = RECORDS[key]
    inputs = dict(np.load(ZOO / r["inputs_file"]))
    for name, spec in r["inputs"].items():  # inputs in the ONNX model's own dtypes
        assert (
            inputs[name].dtype == np.dtype(spec["dtype"])
            and list(inputs[name].shape) == spec["shape"]
        )
    module, weights = import_onnx(ZOO / r["file"], "weights.npz")
    verify_module(module)
    np.savez(tmp_path / "weights.npz", **weights)
    got = Reference(module, str(tmp_path)).run(inputs)
    ort = dict(np.load(ZOO / r["outputs_file"]))
    exact = dict(np.load(ZOO / r["float64_file"])) if "float64_file" in r else {}
    assert set(got) == set(ort) == set(r["outputs"])
    for name, want in ort.items():
        assert got[name].dtype == want.dtype and got[name].shape == want.shape, name
        if want.dtype.kind != "f":
            np.testing.assert_array_equal(got[name], want, err_msg=name)
            continue
        assert np.isfinite(want).all() and np.isfinite(got[name]).all(), name
        if name in exact:
            # The float64 run is the truth both fp32 runs approximate; onnxruntime's own
            # distance to it (up to 2e-5 on a deep CNN) widens the bound against onnxruntime.
            assert rel_l2(got[name], exact[name]) <= TOLERANCE, name
            assert rel_l2(got[name], want) <= TOLERANCE + rel_l2(want, exact[name]), name
        else:
            assert rel_l2(got[name], want) <= TOLERANCE, name


def test_zoo_status_measures_stage_by_stage(monkeypatch):
    """bench/zoo_status.py: a model that runs passes every stage and matches; one that stops
    records the stage and a one-line error, and nothing after it."""
    root = ZOO.parents[1]
    monkeypatch.syspath_prepend(str(root / "bench"))  # as when run as a script: bench_common
    spec = importlib.util.spec_from_file_location("zoo_status", root / "bench" / "zoo_status.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    options = [("none", "bf16"), ("matmult", "bf16")]
    mlp = mod.measure(str(ZOO), RECORDS["mlp.torchscript"], options)
    for name, row in mlp["options"].items():
        assert list(row["stages"]) == ["cast", "lower", "simulate", "interpret", "compare"], name
        assert set(row["stages"].values()) == {"ok"} and row["match"] and row["latency_us"] > 0, (
            name
        )
    assert mlp["options"]["none"]["speedup"] == 1.0
    bert = mod.measure(str(ZOO), RECORDS["bert.dynamo"], options[:1])["options"]["none"]
    if "error" in bert:  # today the token-embedding gather has no lowering
        assert bert["stages"][bert["stopped_at"]] == "failed" and "\n" not in bert["error"]
        assert list(bert["stages"])[-1] == bert["stopped_at"] and "latency_us" not in bert
    else:
        assert bert["match"]

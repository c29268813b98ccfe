"""neuron-cc run (ONNX, nt .mlir) and neuron-cc sweep. Oracles: the reference interpreter and
onnxruntime, computed here; the CLI's JSON is checked against them."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from testlib import EXAMPLES, example_inputs, run_neuron_cc

from neuron_opt.cli.models import compile_model
from neuron_opt.runtime.reference import Reference


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize(
    "opts", [["--auto-cast", "none"], ["--auto-cast", "all", "--auto-cast-type", "fp16"]]
)
def test_run_onnx_reports_errors_latency_and_saves_outputs(opts, tmp_path, capsys):
    out, js, tr = tmp_path / "o.npz", tmp_path / "m.json", tmp_path / "t.json"
    code, stdout, err = run_neuron_cc(
        [
            "run",
            EXAMPLES / "fp16_io.onnx",
            "--inputs",
            EXAMPLES / "fp16_io_inputs.npz",
            *opts,
            "-o",
            out,
            "--json",
            js,
            "--trace",
            tr,
        ],
        capsys,
    )
    assert code == 0, err
    assert "simulator vs interpreter" in stdout and "HFU" in stdout
    inputs = example_inputs("fp16_io")
    sess = ort.InferenceSession(str(EXAMPLES / "fp16_io.onnx"), providers=["CPUExecutionProvider"])
    want = sess.run(None, inputs)[0]
    with np.load(out) as z:
        got = z["probs16"]
    assert got.dtype == np.float16  # the model's output type is preserved
    report = json.loads(js.read_text())
    m = report["outputs"]["probs16"]
    assert m["vs_onnxruntime"]["rel_l2"] == pytest.approx(_rel(got, want), rel=1e-6, abs=1e-12)
    assert report["simulation"]["latency_us"] > 0
    assert json.loads(tr.read_text())["traceEvents"]


def test_run_nt_module_matches_interpreter(tmp_path, capsys):
    out = tmp_path / "o.npz"
    code, _, err = run_neuron_cc(
        ["run", EXAMPLES / "mlp.mlir", "--inputs", EXAMPLES / "mlp_inputs.npz", "-o", out], capsys
    )
    assert code == 0, err
    m, _w = compile_model(str(EXAMPLES / "mlp.onnx"), "none", "bf16", False, "mlp.npz")
    ref = Reference(m, str(EXAMPLES)).run(example_inputs("mlp"))
    with np.load(out) as z:
        assert _rel(z["logits"], ref["logits"]) <= 1e-5


def test_run_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "g.mlir"
    bad.write_text(
        "builtin.module {\n  func.func @main(%x: tensor<2x4xi64>) -> tensor<2x4xi64> {\n"
        "    %c = nt.constant 1099511627776 : tensor<2x4xi64>\n"
        "    %y = nt.add %x, %c : tensor<2x4xi64>\n"
        "    func.return %y : tensor<2x4xi64>\n  }\n}\n"
    )
    code, _, err = run_neuron_cc(["run", bad, "--no-numerics"], capsys)
    assert code == 1 and err.strip().count("\n") == 0
    assert "g.mlir:4:5: error: nt.add: an integer constant holding 1099511627776" in err
    code, _, err = run_neuron_cc(
        ["run", EXAMPLES / "cnn.onnx", "--inputs", EXAMPLES / "mlp_inputs.npz"], capsys
    )
    assert code == 1 and "missing" in err and "Traceback" not in err


def test_sweep_table_plot_and_recommendation(tmp_path, capsys):
    png, js = tmp_path / "p.png", tmp_path / "s.json"
    code, stdout, err = run_neuron_cc(
        [
            "sweep",
            EXAMPLES / "mlp.onnx",
            "--inputs",
            EXAMPLES / "mlp_inputs.npz",
            "--tolerance",
            "0.02",
            "--plot",
            png,
            "--json",
            js,
        ],
        capsys,
    )
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads(js.read_text())
    rows = {r["option"]: r for r in report["options"]}
    assert list(rows) == [
        "none",
        "matmult-bf16",
        "all-bf16",
        "matmult-fp16",
        "all-fp16",
        "matmult-tf32",
        "all-tf32",
        "matmult-fp8_e4m3",
        "all-fp8_e4m3",
    ]
    # the option errors vs fp32, recomputed with the interpreter here
    inputs = example_inputs("mlp")
    m32, w = compile_model(str(EXAMPLES / "mlp.onnx"), "none", "bf16", False, "weights.npz")
    np.savez(tmp_path / "weights.npz", **w)
    ref32 = Reference(m32, str(tmp_path)).run(inputs)["logits"]
    for opt in ("all-bf16", "matmult-fp8_e4m3"):
        mode, t = opt.split("-", 1)
        mo, _ = compile_model(str(EXAMPLES / "mlp.onnx"), mode, t, False, "weights.npz")
        own = _rel(Reference(mo, str(tmp_path)).run(inputs)["logits"], ref32)
        # the simulator's error vs fp32 is the interpreter's, within the DESIGN tolerance
        assert rows[opt]["rel_l2"] == pytest.approx(own, rel=0.25, abs=1e-6)
    # the recommendation: the fastest finite option within the tolerance
    ok = [r for r in report["options"] if r["non_finite"] == 0 and r["rel_l2"] <= 0.02]
    # (equal latencies: the more accurate one)
    assert (
        report["recommendation"] == min(ok, key=lambda r: (r["latency_us"], r["rel_l2"]))["option"]
    )
    assert rows["none"]["speedup"] == pytest.approx(1.0)
    assert "recommendation" in stdout and str(png) in stdout.replace("\n", "")


def test_sweep_table_lists_a_failed_option_with_its_error(capsys):
    from neuron_opt.cli.cc_sweep import print_table

    ok = {
        "option": "none",
        "rel_l2": 0.0,
        "rel_max_abs": 0.0,
        "non_finite": 0,
        "overflowed": 0,
        "saturated": 0,
        "sim_vs_interpreter_rel_l2": 0.0,
        "differing_share": 0.0,
        "latency_us": 5.0,
        "speedup": 1.0,
        "tensor_busy": 0.1,
        "hfu": 0.01,
    }
    bad = {
        "option": "all-fp8_e4m3",
        "error": "m.onnx: node big (MatMul): error: nt.matmul: does not fit on chip",
    }
    print_table([ok, bad], ok, 0.01, "p.png", "m.onnx")
    out = capsys.readouterr().out
    assert "failed (below)" in out
    assert (
        "all-fp8_e4m3: m.onnx: node big (MatMul): error: nt.matmul: does not fit on chip"
        in out.replace("\n", " ")
    )


def test_sweep_in_worker_processes_gives_the_same_rows(tmp_path, capsys):
    rows = {}
    for jobs in ("1", "2"):
        js = tmp_path / f"s{jobs}.json"
        code, _, err = run_neuron_cc(
            [
                "sweep",
                EXAMPLES / "mlp.onnx",
                "--inputs",
                EXAMPLES / "mlp_inputs.npz",
                "--plot",
                tmp_path / "p.png",
                "--json",
                js,
                "--jobs",
                jobs,
            ],
            capsys,
        )
        assert code == 0, err
        rows[jobs] = [
            (r["option"], r["latency_us"], r["rel_l2"], r["instructions"])
            for r in json.loads(js.read_text())["options"]
        ]
    assert rows["1"] == rows["2"]


def test_run_imports_once_and_lowers_only_the_simulated_option(monkeypatch, capsys):
    from neuron_opt.cli import models
    from neuron_opt.importers import onnx as onnx_importer

    calls = {"lower": 0, "import": 0}
    lower, import_onnx = models.lower, onnx_importer.import_onnx

    def counting_lower(m):
        calls["lower"] += 1
        return lower(m)

    def counting_import(*a, **k):
        calls["import"] += 1
        return import_onnx(*a, **k)

    monkeypatch.setattr(models, "lower", counting_lower)
    monkeypatch.setattr(onnx_importer, "import_onnx", counting_import)
    code, stdout, err = run_neuron_cc(
        [
            "run",
            EXAMPLES / "mlp.onnx",
            "--inputs",
            EXAMPLES / "mlp_inputs.npz",
            "--auto-cast",
            "matmult",
        ],
        capsys,
    )
    assert code == 0, err
    assert calls == {"lower": 1, "import": 1}  # the fp32 baseline runs in the interpreter only
    assert "wall: import" in stdout.replace("\n", " ") and "lowering" in stdout

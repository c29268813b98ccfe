"""neuron-cc compile and eval. Oracles: onnxruntime on the ONNX model and numpy computed here,
never the metrics code's own output (whose JSON is checked against them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from testlib import EXAMPLES, example_inputs, run_neuron_cc

from neuron_opt.cli.common import load_module
from neuron_opt.cli.metrics import argmax_agreement, error_norms, range_counts
from neuron_opt.dialects import nt
from neuron_opt.options import CASTING_MODES
from neuron_opt.runtime.reference import run_module

MODELS = ["mlp", "transformer", "cnn", "fp16_io"]


def _onnxruntime(name):
    sess = ort.InferenceSession(str(EXAMPLES / f"{name}.onnx"), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, example_inputs(name))))


def _rel_l2(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# --------------------------------------------------------------------------------------------
# compile


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(
    "opts",
    [["--auto-cast", "none"], ["--auto-cast", "all", "--auto-cast-type", "fp16", "--cast-io"]],
)
def test_compile_writes_ir_and_weights(name, opts, tmp_path, capsys):
    out = tmp_path / "sub" / "model_out.mlir"
    out.parent.mkdir()
    code, _, err = run_neuron_cc(["compile", EXAMPLES / f"{name}.onnx", *opts, "-o", out], capsys)
    assert code == 0, err
    module = load_module(str(out))  # parses and verifies
    assert module.attributes[nt.WEIGHTS_ATTR].data == "model_out.npz"
    weight_ops = [op for op in module.walk() if isinstance(op, nt.WeightOp)]
    with np.load(out.with_suffix(".npz")) as z:
        stored = {k: z[k] for k in z.files}
    # Every weight the IR names is in OUT.npz with its shape, and each is one of the model's
    # initializers (folded constants may derive new ones: those at least have the IR's shape).
    for op in weight_ops:
        assert tuple(stored[op.sym_name.data].shape) == tuple(op.result.type.get_shape())
    inits = {
        t.name: onnx.numpy_helper.to_array(t)
        for t in onnx.load(EXAMPLES / f"{name}.onnx").graph.initializer
    }
    for key, arr in stored.items():
        if key in inits:
            np.testing.assert_array_equal(arr, inits[key])
    if opts[1] == "none":
        # The files on disk are the whole model: run from them, compare with onnxruntime.
        got = run_module(module, example_inputs(name), base_dir=out.parent)
        for k, ref in _onnxruntime(name).items():
            assert _rel_l2(got[k], ref) <= 1e-5


def test_compile_matmul_alias_and_default(tmp_path, capsys):
    a, b = tmp_path / "a.mlir", tmp_path / "b.mlir"
    assert (
        run_neuron_cc(["compile", EXAMPLES / "mlp.onnx", "--auto-cast", "matmul", "-o", a], capsys)[
            0
        ]
        == 0
    )
    assert (
        run_neuron_cc(["compile", EXAMPLES / "mlp.onnx", "-o", b], capsys)[0] == 0
    )  # default matmult-bf16
    text_a = a.read_text().replace("a.npz", "X")
    assert text_a == b.read_text().replace("b.npz", "X")
    assert "bf16" in text_a


# --------------------------------------------------------------------------------------------
# eval


@pytest.mark.parametrize("name", MODELS)
def test_eval_none_matches_onnxruntime(name, tmp_path, capsys):
    out, js = tmp_path / "o.npz", tmp_path / "m.json"
    code, _stdout, err = run_neuron_cc(
        [
            "eval",
            EXAMPLES / f"{name}.onnx",
            "--inputs",
            EXAMPLES / f"{name}_inputs.npz",
            "--auto-cast",
            "none",
            "-o",
            out,
            "--json",
            js,
        ],
        capsys,
    )
    assert code == 0, err
    ref = _onnxruntime(name)
    with np.load(out) as z:
        got = {k: z[k] for k in z.files}
    assert list(got) == list(ref)  # keys = the model's output names, in order
    report = json.loads(js.read_text())
    for k in ref:
        assert got[k].dtype == ref[k].dtype
        rel = _rel_l2(got[k], ref[k])
        assert rel <= 1e-5, (name, k, rel)
        assert report["outputs"][k]["vs_onnxruntime"]["rel_l2"] == pytest.approx(
            rel, rel=1e-6, abs=1e-12
        )
        assert report["outputs"][k]["vs_fp32"]["rel_l2"] == 0.0


@pytest.mark.parametrize("mode", CASTING_MODES)
def test_eval_mlp_bf16_errors_printed(mode, tmp_path, capsys):
    out, js = tmp_path / "o.npz", tmp_path / "m.json"
    code, stdout, err = run_neuron_cc(
        [
            "eval",
            EXAMPLES / "mlp.onnx",
            "--inputs",
            EXAMPLES / "mlp_inputs.npz",
            "--auto-cast",
            mode,
            "--auto-cast-type",
            "bf16",
            "-o",
            out,
            "--json",
            js,
        ],
        capsys,
    )
    assert code == 0, err
    ref = _onnxruntime("mlp")["logits"]
    with np.load(out) as z:
        got = z["logits"]
    rel = _rel_l2(got, ref)
    # bf16 has 8 significant bits (2^-9 ~ 2e-3 per rounding): a visible but small error.
    assert 1e-4 < rel < 3e-2, rel
    m = json.loads(js.read_text())["outputs"]["logits"]
    assert m["vs_onnxruntime"]["rel_l2"] == pytest.approx(rel, rel=1e-6)
    assert m["vs_onnxruntime"]["max_abs"] == pytest.approx(float(np.abs(got - ref).max()), rel=1e-5)
    assert m["vs_onnxruntime"]["rel_max_abs"] == pytest.approx(
        float(np.abs(got - ref).max() / np.abs(ref).max()), rel=1e-5
    )
    # fp32 and onnxruntime agree to ~1e-7, so the error vs fp32 is the same figure.
    assert m["vs_fp32"]["rel_l2"] == pytest.approx(rel, rel=1e-3)
    assert m["vs_fp32"]["rel_l2"] > 0
    assert f"{m['vs_fp32']['rel_l2']:.3e}" in stdout and "option vs fp32" in stdout
    agree = float(np.mean(np.argmax(got, -1) == np.argmax(ref, -1)))
    assert m["argmax_agreement"] == agree
    assert "argmax agree" in stdout  # `logits` looks like class scores
    assert {"inf", "nan", "overflowed", "underflowed", "saturated"} <= set(m)
    assert m["inf"] == m["nan"] == 0


def test_eval_argmax_only_for_class_scores_and_tables_not_wrapped(capsys):
    """transformer's output `y` (1x16x32 hidden states) is not class scores: no arg-max; the
    piped table keeps every title and cell on one line, however long."""
    code, stdout, err = run_neuron_cc(
        [
            "eval",
            EXAMPLES / "transformer.onnx",
            "--inputs",
            EXAMPLES / "transformer_inputs.npz",
            "--auto-cast",
            "all",
            "--auto-cast-type",
            "fp8_e4m3",
            "--cast-io",
        ],
        capsys,
    )
    assert code == 0, err
    assert "argmax" not in stdout
    assert "option all-fp8_e4m3+cast-io" in stdout.splitlines()[0]
    assert any(line.startswith("inf 0  NaN 0") for line in stdout.splitlines())


def test_model_names_and_plot_files():
    from neuron_opt.cli.tables import model_name, plot_file

    assert model_name("zoo/bert/model.onnx") == "bert/model"
    assert model_name("zoo/bert/model.onnx", "main_graph") == "bert/model"  # an exporter's default
    assert model_name("x/mlp.onnx") == "mlp"
    assert model_name("x/model.onnx", "resnet18") == "resnet18"
    assert plot_file("bert/model", "sweep", "out/r.json") == "out/bert_model_sweep.png"
    assert plot_file("mlp", "sweep", None) == "mlp_sweep.png"


def test_run_help_names_its_argument_model(capsys):
    """run takes ONNX models, nt modules and nisa kernels: its argument is MODEL, not KERNEL.mlir."""
    code, out, _ = run_neuron_cc(["run", "--help"], capsys)
    assert code == 0
    usage = " ".join(out.split("\n\n")[0].split())
    assert usage.startswith("usage: neuron-cc run") and usage.endswith("MODEL"), usage
    assert (
        "KERNEL" not in out
        and "an ONNX model (.onnx), an nt module or a nisa kernel (.mlir)" in " ".join(out.split())
    )


def _renamed_model(path: Path, graph_name: str) -> Path:
    model = onnx.load(EXAMPLES / "mlp.onnx")
    model.graph.name = graph_name
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path


def test_titles_and_plot_named_after_the_model(tmp_path, capsys, monkeypatch):
    """Two models both called model.onnx: tables and plots say bert/model (the folder, as the
    graph name is an exporter's default), sweep's plot is bert_model_sweep.png beside --json,
    not model_sweep.png in the current folder (where every model.onnx would overwrite it)."""
    monkeypatch.chdir(tmp_path)
    bert = _renamed_model(tmp_path / "bert" / "model.onnx", "main_graph")
    code, stdout, err = run_neuron_cc(
        ["eval", bert, "--inputs", EXAMPLES / "mlp_inputs.npz"], capsys
    )
    assert code == 0, err
    assert stdout.startswith("bert/model: logits  8x10 float32  option matmult-bf16"), stdout
    (tmp_path / "out").mkdir()
    code, stdout, err = run_neuron_cc(
        [
            "sweep",
            bert,
            "--inputs",
            EXAMPLES / "mlp_inputs.npz",
            "--json",
            tmp_path / "out" / "r.json",
            "--jobs",
            "1",
        ],
        capsys,
    )
    assert code == 0, err
    assert stdout.startswith("bert/model: every auto-cast option on the NeuronCore-v2 simulator")
    plot = tmp_path / "out" / "bert_model_sweep.png"
    assert plot.read_bytes().startswith(b"\x89PNG") and not (tmp_path / "model_sweep.png").exists()
    report = json.loads((tmp_path / "out" / "r.json").read_text())
    assert report["name"] == "bert/model" and report["plot"] == str(plot)
    # A graph that has a name of its own is called by it.
    gpt = _renamed_model(tmp_path / "gpt" / "model.onnx", "gpt_small")
    code, stdout, err = run_neuron_cc(
        ["explain", gpt, "--inputs", EXAMPLES / "mlp_inputs.npz"], capsys
    )
    assert code == 0, err
    assert stdout.startswith("gpt_small  option matmult-bf16: error per op"), stdout


def test_piped_sweep_table_is_never_cut(capsys):
    """Not a terminal (capsys): every option name, the recommendation's mark and every figure
    stay whole on one line, however many columns (a fixed width cut "matmult-fp8_e4m3+cast-io *")."""
    from neuron_opt.cli.cc_sweep import print_table
    from neuron_opt.options import SWEEP_OPTIONS, option_label

    names = [option_label(*o) for o in SWEEP_OPTIONS] + [
        option_label(*o, cast_io=True) for o in SWEEP_OPTIONS[1:]
    ]
    rows = [
        {
            "option": n,
            "rel_l2": 1.2345e-3 * i,
            "rel_max_abs": 2.5e-2,
            "non_finite": 0,
            "overflowed": 1234567,
            "saturated": 7654321,
            "sim_vs_interpreter_rel_l2": 3.25e-7,
            "differing_share": 0.8,
            "latency_us": 12345.67 - i,
            "speedup": 1.25,
            "tensor_busy": 0.5,
            "hfu": 0.25,
        }
        for i, n in enumerate(names)
    ]
    print_table(
        rows, rows[-1], 0.01, "p.png", "a-model-with-a-rather-long-name: every auto-cast option"
    )
    lines = capsys.readouterr().out.splitlines()
    assert "…" not in "\n".join(lines)
    for i, r in enumerate(rows):
        line = next(x for x in lines if f" {r['option']}{' *' if i == len(rows) - 1 else ''} " in x)
        assert f"{r['latency_us']:.2f}" in line and "25.0%" in line and "1234567" in line
    assert lines[0].startswith("a-model-with-a-rather-long-name: every auto-cast option")


@pytest.mark.parametrize("kind", ["onnx", "nisa"])
def test_run_without_inputs_names_no_numerics(kind, tmp_path, capsys):
    """Without --inputs, run says what to give or that --no-numerics runs for timing only (a
    nisa kernel reported its first input missing); with --no-numerics it runs."""
    if kind == "onnx":
        model = EXAMPLES / "mlp.onnx"
    else:
        from sim_kernels import gemm_module

        model = tmp_path / "g.mlir"
        model.write_text(gemm_module().gemm_kernel(128, 128, 128, "bf16", "bf16"))
    code, out, err = run_neuron_cc(["run", model], capsys)
    assert (code, out) == (1, "")
    assert (
        err
        == "neuron-cc: error: --inputs X.npz is needed to compute outputs (or --no-numerics for timing only)\n"
    )
    code, out, err = run_neuron_cc(["run", model, "--no-numerics"], capsys)
    assert code == 0, err
    assert "NeuronCore-v2 simulation (timing only)" in out


def test_looks_like_logits():
    from neuron_opt.cli.metrics import looks_like_logits

    scores = np.zeros((2, 10), np.float32)
    assert looks_like_logits("logits", scores, "Gemm")
    assert looks_like_logits("output_0", scores, "Softmax")
    assert not looks_like_logits("hidden", scores, "Add")
    assert not looks_like_logits("logits", np.zeros((2, 1), np.float32), "Gemm")  # one class
    assert not looks_like_logits("class_ids", np.zeros((2, 10), np.int64), "ArgMax")


def test_eval_cast_io_widens_outputs(tmp_path, capsys):
    out, js = tmp_path / "o.npz", tmp_path / "m.json"
    code, _, err = run_neuron_cc(
        [
            "eval",
            EXAMPLES / "mlp.onnx",
            "--inputs",
            EXAMPLES / "mlp_inputs.npz",
            "--auto-cast",
            "all",
            "--cast-io",
            "-o",
            out,
            "--json",
            js,
        ],
        capsys,
    )
    assert code == 0, err
    assert json.loads(js.read_text())["outputs"]["logits"]["dtype"] == "bfloat16"
    with np.load(out) as z:
        got = z["logits"]
    assert got.dtype == np.float32
    import ml_dtypes

    np.testing.assert_array_equal(got.astype(ml_dtypes.bfloat16).astype(np.float32), got)  # exact


# --------------------------------------------------------------------------------------------
# metrics on hand values


def test_error_norms_hand_values():
    e = error_norms(np.array([1.0, 2.0, 4.0], np.float32), np.array([1.0, 2.0, 3.0]))
    assert e["max_abs"] == 1.0
    assert e["rel_max_abs"] == pytest.approx(1 / 3)
    assert e["rel_l2"] == pytest.approx(1 / np.sqrt(14))
    # Matching non-finite values are no error; a mismatch is an infinite one.
    assert error_norms([np.inf, np.nan, 1.0], [np.inf, np.nan, 1.0])["rel_l2"] == 0.0
    assert error_norms([np.inf, 1.0], [-np.inf, 1.0])["max_abs"] == np.inf


def test_range_counts_fp8():
    ref = np.array([300.0, -500.0, 1e-4, 5.0, 0.0, 250.0])
    out = np.array([240.0, -np.inf, 0.0, 5.0, 0.0, np.nan], np.float32)
    c = range_counts(out, ref, "fp8_e4m3")
    # 250 -> NaN counts too: a non-finite value where fp32 is finite is an overflow.
    assert c == {"inf": 1, "nan": 1, "overflowed": 3, "underflowed": 1, "saturated": 1}
    assert range_counts(np.float16([np.inf]), [7e4], "fp16")["overflowed"] == 1


def test_range_counts_intermediate_overflow():
    """Outputs within range whose computation overflowed on the way (an activation > 65504
    under fp16) are inf or NaN while fp32 is finite: overflows, not 0."""
    out = np.float16([np.inf, -np.inf, np.nan, 2.0])
    c = range_counts(out, [100.0, -3.0, 1.0, 2.0], "fp16")
    assert c["overflowed"] == 3 and c["inf"] == 2 and c["nan"] == 1
    assert range_counts(np.float16([np.inf]), [np.inf], "fp16")["overflowed"] == 0


def test_argmax_agreement_rows():
    ref = np.array([[0, 1, 2], [3, 2, 1]], np.float32)
    assert argmax_agreement(np.array([[0, 3, 2], [3, 2, 1]]), ref) == 0.5


# --------------------------------------------------------------------------------------------
# bad input: one line, exit 1


def _unsupported_model(path):
    g = helper.make_graph(
        [helper.make_node("Hardmax", ["x"], ["y"], name="hm")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
    )
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


def _bad_inputs(tmp_path, kind):
    x = example_inputs("mlp")["x"]
    arrays = {"shape": {"x": x[:4]}, "dtype": {"x": x.astype(np.int32)}, "missing": {}}[kind]
    p = tmp_path / f"{kind}.npz"
    np.savez(p, **arrays)
    return p


@pytest.mark.parametrize(
    "case,expect",
    [
        ("missing", "input x: error: missing"),
        ("shape", "input x: error: expected shape 8x64, found 4x64"),
        ("dtype", "input x: error: expected dtype float32 (the model's input type), found int32"),
    ],
)
def test_eval_bad_inputs(case, expect, tmp_path, capsys):
    code, out, err = run_neuron_cc(
        ["eval", EXAMPLES / "mlp.onnx", "--inputs", _bad_inputs(tmp_path, case)], capsys
    )
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and expect in err, err


def test_float64_inputs_are_rounded_with_a_note(tmp_path, capsys):
    """numpy's default dtype for a float32 input: rounded RNE (as astype does), one note."""
    x = example_inputs("mlp")["x"].astype(np.float64) + 1e-9  # not float32 values
    np.savez(tmp_path / "x64.npz", x=x)
    np.savez(tmp_path / "x32.npz", x=x.astype(np.float32))
    got = {}
    for name in ("x64", "x32"):
        code, _, err = run_neuron_cc(
            [
                "eval",
                EXAMPLES / "mlp.onnx",
                "--inputs",
                tmp_path / f"{name}.npz",
                "-o",
                tmp_path / f"{name}_out.npz",
            ],
            capsys,
        )
        assert code == 0, err
        got[name] = (err, np.load(tmp_path / f"{name}_out.npz")["logits"])
    assert (
        got["x64"][0]
        == f"{tmp_path / 'x64.npz'}: input x: note: float64 rounded to the model's float32 (nearest-even)\n"
    )
    assert got["x32"][0] == ""
    assert np.array_equal(got["x64"][1], got["x32"][1])


def test_errors_files_and_ops(tmp_path, capsys):
    bad = tmp_path / "hm.onnx"
    _unsupported_model(bad)
    cases = [
        (["compile", bad, "-o", tmp_path / "o.mlir"], f"{bad}: node hm (Hardmax): error:"),
        (
            ["eval", bad, "--inputs", EXAMPLES / "mlp_inputs.npz"],
            f"{bad}: node hm (Hardmax): error:",
        ),
        (
            ["compile", tmp_path / "nope.onnx", "-o", tmp_path / "o.mlir"],
            f"{tmp_path / 'nope.onnx'}: error:",
        ),
        (
            ["eval", EXAMPLES / "mlp.onnx", "--inputs", tmp_path / "nope.npz"],
            f"{tmp_path / 'nope.npz'}: error:",
        ),
        (
            ["compile", EXAMPLES / "mlp.onnx", "-o", tmp_path / "no" / "o.mlir"],
            f"{tmp_path / 'no' / 'o.mlir'}: error:",
        ),
        (
            [
                "eval",
                EXAMPLES / "mlp.onnx",
                "--inputs",
                EXAMPLES / "mlp_inputs.npz",
                "-o",
                tmp_path / "no" / "o.npz",
            ],
            f"{tmp_path / 'no' / 'o.npz'}: error:",
        ),
        (
            [
                "compile",
                EXAMPLES / "mlp.onnx",
                "--auto-cast-type",
                "fp4",
                "-o",
                tmp_path / "o.mlir",
            ],
            "neuron-cc: error:",
        ),
    ]
    for argv, expect in cases:
        code, _out, err = run_neuron_cc(argv, capsys)
        assert code == 1, argv
        assert err.count("\n") == 1 and err.startswith(expect), (argv, err)
    assert list(tmp_path.iterdir()) == [bad]  # nothing written by a failed run


def test_console_script_no_traceback(tmp_path):
    x = example_inputs("mlp")["x"]
    np.savez(tmp_path / "bad.npz", x=x[:, :3])
    exe = Path(sys.executable).parent / "neuron-cc"
    r = subprocess.run(
        [str(exe), "eval", str(EXAMPLES / "mlp.onnx"), "--inputs", str(tmp_path / "bad.npz")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "expected shape 8x64, found 8x3" in r.stderr

"""neuron-cc tune end to end on a small attention head whose scores overflow fp16, and --ray
against the process pool. Oracles: the plan file run again through `neuron-cc run` (the
simulator) and `neuron-cc eval` (the interpreter) must reproduce the measured point; the
sweep's uniform rows bound the plan's latency."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from testlib import EXAMPLES, example_inputs, run_neuron_cc

from neuron_opt.passes.precision_plan import load_plan

MODEL = EXAMPLES / "fp16_overflow.onnx"
INPUTS = EXAMPLES / "fp16_overflow_inputs.npz"
TOL = "1e-3"


def _tune(tmp, capsys, *extra, plot: bool = True) -> tuple[dict, str, str]:
    """Without `plot`, the default plot: NAME_tune.png beside --json."""
    plan, js = tmp / "plan.toml", tmp / "tune.json"
    png = tmp / ("tune.png" if plot else "fp16_overflow_tune.png")
    code, out, err = run_neuron_cc(
        [
            "tune",
            MODEL,
            "--inputs",
            INPUTS,
            "--tolerance",
            TOL,
            "-o",
            plan,
            "--json",
            js,
            *(["--plot", png] if plot else []),
            *extra,
        ],
        capsys,
    )
    assert code == 0, err
    assert png.stat().st_size > 0
    return json.loads(js.read_text()), plan.read_text(), out


def test_tune_finds_a_plan_the_other_commands_reproduce(tmp_path, capsys):
    tuned = tmp_path
    rng = np.random.default_rng(7)  # held-out inputs: a seeded second draw around the first
    held = {
        k: (v * (1 + 0.05 * rng.standard_normal(v.shape))).astype(v.dtype)
        for k, v in example_inputs("fp16_overflow").items()
    }
    np.savez(tuned / "held.npz", **held)
    report, _text, out = _tune(
        tuned, capsys, "--jobs", "2", "--validate", tuned / "held.npz", plot=False
    )
    assert report["name"] == "fp16_overflow" and report["plot"] == str(
        tuned / "fp16_overflow_tune.png"
    )
    assert out.startswith("fp16_overflow: the tuned plan next to every auto-cast option")
    rows = {r["option"]: r for r in report["options"]}
    t = rows["tuned"]
    # Within the tolerance, finite, and at least as fast as every feasible uniform option.
    assert t["rel_l2"] <= float(TOL) and t["non_finite"] == 0
    feasible = [
        r
        for name, r in rows.items()
        if name != "tuned" and r["non_finite"] == 0 and r["rel_l2"] <= float(TOL)
    ]
    assert t["latency_us"] <= min(r["latency_us"] for r in feasible)
    assert (
        report["best_uniform"]
        == min(feasible, key=lambda r: (r["latency_us"], r["rel_l2"]))["option"]
    )
    # fp16 overflows in the scores: the plan keeps them out of fp16.
    assert report["precisions"]["/attn/scores/MatMul"] != "fp16"
    # The plan names every node, the search's JSON agrees with the file, and the count adds up.
    plan = load_plan(str(tuned / "plan.toml"))
    named = {n for r in plan.rules for n in r.node}
    assert named == set(report["precisions"])
    assert report["search"]["evaluations"] == len(report["evaluations"]) > 0
    assert report["recommendation"] == "tuned" and "tuned plan:" in out
    # Held-out inputs: the plan and the best uniform option measured there.
    v = report["validate"]
    assert set(v) == {"inputs", "tuned", report["best_uniform"]} and v["tuned"]["non_finite"] == 0

    # The file through `run` (simulator) gives the tuned row's latency and error again ...
    js = tuned / "run.json"
    code, _, err = run_neuron_cc(
        [
            "run",
            MODEL,
            "--inputs",
            INPUTS,
            "--auto-cast",
            "all",
            "--precision-plan",
            tuned / "plan.toml",
            "--json",
            js,
        ],
        capsys,
    )
    assert code == 0, err
    got = json.loads(js.read_text())
    assert got["simulation"]["latency_us"] == pytest.approx(t["latency_us"])
    assert max(o["vs_fp32"]["rel_l2"] for o in got["outputs"].values()) == pytest.approx(
        t["rel_l2"]
    )
    # ... and the interpreter (eval) agrees that it is finite and close to fp32.
    code, out, err = run_neuron_cc(
        [
            "eval",
            MODEL,
            "--inputs",
            INPUTS,
            "--auto-cast",
            "all",
            "--precision-plan",
            tuned / "plan.toml",
        ],
        capsys,
    )
    assert code == 0, err
    assert "NaN 0" in out


def _ray():
    return pytest.importorskip("ray", reason="Ray is not installed (pip install 'neuron-opt[ray]')")


@pytest.fixture(scope="module")
def local_ray():
    ray = _ray()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_and_the_process_pool_give_the_same_plan(local_ray, tmp_path, capsys):
    plans = {}
    for name, extra in (
        ("pool", ["--jobs", "2"]),
        ("ray", ["--ray", "auto"]),
        ("serial", ["--jobs", "1"]),
    ):
        d = tmp_path / name
        d.mkdir()
        report, text, _ = _tune(d, capsys, *extra)
        plans[name] = (text, report["precisions"], [e["latency_us"] for e in report["evaluations"]])
    assert plans["ray"] == plans["pool"] == plans["serial"]


def test_sweep_on_ray_gives_the_rows_of_the_pool(local_ray, tmp_path, capsys):
    rows = {}
    for name, extra in (("pool", ["--jobs", "2"]), ("ray", ["--ray", "auto"])):
        js = tmp_path / f"{name}.json"
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
                *extra,
            ],
            capsys,
        )
        assert code == 0, err
        rows[name] = [
            (r["option"], r["latency_us"], r["rel_l2"])
            for r in json.loads(js.read_text())["options"]
        ]
    assert rows["ray"] == rows["pool"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--inputs", "missing.npz"], "missing.npz: error:"),
        (["--inputs", INPUTS, "--tolerance", "0"], "--tolerance must be positive"),
        (["--inputs", INPUTS, "--jobs", "0"], "--jobs must be at least 1"),
        (["--inputs", INPUTS, "--max-evaluations", "0"], "--max-evaluations must be at least 1"),
        (["--inputs", INPUTS, "--plot", "p.svg"], "the plot must be a .png file"),
        (["--inputs", INPUTS, "--validate", "nope.npz"], "nope.npz: error:"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _out, err = run_neuron_cc(
        ["tune", MODEL, *argv, "-o", "plan.toml", "--json", "t.json"], capsys
    )
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_the_plan_may_not_overwrite_the_model_and_ray_must_be_installed(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_neuron_cc(["tune", MODEL, "--inputs", INPUTS, "-o", MODEL], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    code, _, err = run_neuron_cc(
        ["tune", MODEL, "--inputs", INPUTS, "-o", "p.toml", "--ray", "auto"], capsys
    )
    assert code == 1 and "--ray needs Ray" in err and list(tmp_path.iterdir()) == []

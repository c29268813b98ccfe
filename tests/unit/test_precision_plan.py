"""Precision plans, block lists, --cast-report and `neuron-cc explain` on imported ONNX models:
rules match the user's node names and op types; several low-precision types in one graph keep
canonicalize-casts bit-exact and preserve-io's signature; a bad plan is one located error; a
rule matching nothing a warning; ops the model computes in f16 stay under all-bf16."""

from __future__ import annotations

import json

import pytest
from testlib import EXAMPLES, example_inputs, run_neuron_cc, same_bits
from xdsl.context import Context
from xdsl.dialects import func

from neuron_opt.diagnostics import CompileError, onnx_node_of
from neuron_opt.dialects import nt
from neuron_opt.dialects.parse import verify_module
from neuron_opt.dialects.types import type_name
from neuron_opt.importers.onnx import import_onnx, save_compiled
from neuron_opt.passes.auto_cast import AutoCastPass
from neuron_opt.passes.canonicalize_casts import CanonicalizeCastsPass
from neuron_opt.passes.precision_plan import load_plan
from neuron_opt.passes.preserve_io import PreserveIOPass
from neuron_opt.runtime.reference import run_module


def write(tmp_path, text: str, name: str = "plan.toml") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def plan_file(tmp_path, *rules: dict) -> str:
    """A plan of these rules, a blank line between them, one key a line (each value as JSON
    writes it: TOML reads strings and lists of strings the same)."""
    return write(
        tmp_path,
        "\n".join(
            "[[rule]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in r.items()) for r in rules
        ),
    )


def node_types(module) -> dict[str, set[str]]:
    """ONNX node name -> the element types its nt ops write."""
    out: dict[str, set[str]] = {}
    for op in module.walk():
        if (
            (node := onnx_node_of(op)) is not None
            and op.results
            and hasattr(op.results[0].type, "element_type")
        ):
            out.setdefault(node[0], set()).add(type_name(op.results[0].type.element_type))
    return out


# ---------------------------------------------------------------------------------------------
# Plan files


@pytest.mark.parametrize(
    "text,where,message",
    [
        ("[[rule]\nop_type = 'Softmax'\n", ":1:", "invalid TOML"),
        (
            "[[rule]]\nop_type = 'Softmax'\nprecision = 'fp64'\n",
            ":3:",
            "precision must be one of fp32, bf16, fp16",
        ),
        ("[[rule]]\nop_type = 'Softmax'\n", ":1:", "rule 1: no precision"),
        (
            "[[rule]]\nprecision = 'fp32'\n",
            ":1:",
            "rule 1: matches nothing: give at least one of node",
        ),
        (
            "[[rule]]\nop_type = 'A'\nprecision = 'fp32'\n\n[[rule]]\nnode_regex = '('\nprecision = 'fp32'\n",
            ":6:",
            "rule 2: node_regex '('",
        ),
        (
            "[[rule]]\nnt_op = 'softmaxx'\nprecision = 'fp32'\n",
            ":2:",
            "nt_op: unknown op 'nt.softmaxx'",
        ),
        (
            "[[rule]]\nop_class = 'FAST'\nprecision = 'fp32'\n",
            ":2:",
            "op_class must be one of MATMUL, FP32",
        ),
        (
            "[[rule]]\nop_type = []\nprecision = 'fp32'\n",
            ":2:",
            "op_type must be a non-empty string",
        ),
        ("[[rule]]\nop_typ = 'Softmax'\nprecision = 'fp32'\n", ":2:", "unknown key 'op_typ'"),
        ("mode = 'all'\n", ":1:", "unknown key 'mode'"),
    ],
)
def test_bad_plan_is_one_located_error(tmp_path, text, where, message):
    path = write(tmp_path, text)
    with pytest.raises(CompileError) as e:
        load_plan(path)
    assert str(e.value).startswith(f"{path}{where}") and ": error: " in str(e.value), str(e.value)
    assert message in str(e.value), str(e.value)


def test_bad_plan_on_the_command_line_exits_1_with_one_line(tmp_path, capsys):
    path = write(tmp_path, "[[rule]]\nop_type = 'Softmax'\nprecision = 'half'\n")
    code, _out, err = run_neuron_cc(
        ["compile", EXAMPLES / "mlp.onnx", "--precision-plan", path, "-o", tmp_path / "m.mlir"],
        capsys,
    )
    assert code == 1 and err.count("\n") == 1 and err.startswith(f"{path}:3: error: rule 1:"), err
    assert not (tmp_path / "m.mlir").exists()
    code, _, err = run_neuron_cc(
        [
            "compile",
            EXAMPLES / "mlp.onnx",
            "--precision-plan",
            tmp_path / "none.toml",
            "-o",
            tmp_path / "m.mlir",
        ],
        capsys,
    )
    assert code == 1 and err.count("\n") == 1 and "none.toml: error:" in err, err


# ---------------------------------------------------------------------------------------------
# Matching ONNX names


def test_rules_match_node_globs_regexes_op_types_and_classes_first_rule_wins(tmp_path):
    plan = plan_file(
        tmp_path,
        {
            "name": "q projection",
            "node": "MatMul_1?",
            "node_regex": "^MatMul_(10|14)$",
            "precision": "fp16",
        },
        {"op_type": ["Softmax", "LayerNormalization"], "precision": "fp32"},
        {"op_class": "MATMUL", "precision": "keep"},
        {"name": "typo", "op_type": "Softmx", "precision": "fp32"},
    )
    module, _ = import_onnx(EXAMPLES / "transformer.onnx")
    report = AutoCastPass(mode="all", type="bf16", plan=plan).cast(Context(), module)
    verify_module(module)
    types = node_types(module)
    assert types["MatMul_10"] == types["MatMul_14"] == {"f16"}  # rule 1: glob and regex both
    assert types["MatMul_18"] == {"f32"}  # rule 3 (MatMul_18 is not in rule 1's regex)
    assert types["Softmax_21"] == types["LayerNormalization_1"] == {"f32"}
    assert types["Add_7"] == {"bf16"}  # no rule: the policy
    by_node = {d.node: d for d in report.decisions if d.node}
    assert by_node["MatMul_10"].reason.startswith("rule 1 'q projection' at ")
    assert by_node["Softmax_21"].op_type == "Softmax" and by_node["Softmax_21"].reason.startswith(
        "rule 2"
    )
    assert [r.label for r in report.unmatched()] == ["rule 4 'typo'"]
    assert report.warnings() == [
        f"{plan}:15: warning: rule 4 'typo' matches no op"
    ]  # its [[rule]] line


@pytest.mark.parametrize("mode", ["matmult", "all"])
def test_several_low_precision_types_keep_canonicalize_exact_and_preserve_io(tmp_path, mode):
    """fp32, fp16, bf16 and fp8 contraction inputs in one graph: canonicalize-casts changes no
    output bit (interpreter before and after), preserve-io gives back the framework signature."""
    plan = plan_file(
        tmp_path,
        {"op_type": "Softmax", "precision": "fp32"},
        {"op_type": "Gelu", "precision": "fp16"},
        {"node": ["MatMul_29", "MatMul_32"], "precision": "fp8_e4m3"},
        {"op_type": "LayerNormalization", "precision": "keep"},
    )
    module, weights = import_onnx(EXAMPLES / "transformer.onnx", "w.npz")
    framework = next(op for op in module.walk() if isinstance(op, func.FuncOp)).function_type
    save_compiled(module, weights, tmp_path / "m.mlir")
    feeds = example_inputs("transformer")
    AutoCastPass(mode=mode, type="bf16", plan=plan).apply(Context(), module)
    verify_module(module)
    elts = {
        type_name(v.type.element_type)
        for op in module.walk()
        for v in op.results
        if hasattr(v.type, "element_type")
    }
    assert {"f32", "f16", "bf16", "f8E4M3"} <= elts
    before = run_module(module, feeds, tmp_path)
    casts = sum(isinstance(op, nt.CastOp) for op in module.walk())
    CanonicalizeCastsPass().apply(Context(), module)
    verify_module(module)
    if mode == "matmult":  # not vacuous: the weights' casts fold (all retypes them itself)
        assert sum(isinstance(op, nt.CastOp) for op in module.walk()) < casts
    after = run_module(module, feeds, tmp_path)
    assert all(same_bits(before[k], after[k]) for k in before)
    PreserveIOPass().apply(Context(), module)
    verify_module(module)
    assert (
        next(op for op in module.walk() if isinstance(op, func.FuncOp)).function_type == framework
    )


def test_f16_ops_stay_under_all_bf16():
    """neuronx-cc's all casts FP32 operations: the model's own f16 MatMul and Exp stay f16."""
    module, _ = import_onnx(EXAMPLES / "f16_part.onnx")
    AutoCastPass(mode="all", type="bf16").apply(Context(), module)
    verify_module(module)
    types = node_types(module)
    assert types["/f16/MatMul"] == types["/f16/Exp"] == types["/f16/Cast_in"] == {"f16"}
    assert types["MatMul_1"] == types["Relu_3"] == {"bf16"}
    f16_matmul = next(
        op
        for op in module.walk()
        if isinstance(op, nt.MatmulOp) and onnx_node_of(op)[0] == "/f16/MatMul"
    )
    assert [type_name(v.type.element_type) for v in f16_matmul.operands] == ["f16", "f16"]
    assert "acc" not in f16_matmul.properties  # untouched


# ---------------------------------------------------------------------------------------------
# The command line


def test_block_lists_and_cast_report_json(tmp_path, capsys):
    report = tmp_path / "report.json"
    code, _, err = run_neuron_cc(
        [
            "compile",
            EXAMPLES / "transformer.onnx",
            "--auto-cast",
            "all",
            "--auto-cast-type",
            "fp16",
            "--op-block-list",
            "Softmax,Conv",
            "--node-block-list",
            "LayerNormalization_1",
            f"--cast-report={report}",
            "-o",
            tmp_path / "t.mlir",
        ],
        capsys,
    )
    assert code == 0, err
    assert "warning: --op-block-list entry 'Conv' matches no op" in err
    lines = err.splitlines()
    assert any(
        ": node Softmax_21 (Softmax): nt.softmax: kept f32 (--op-block-list entry 'Softmax')" in ln
        for ln in lines
    ), err
    assert lines[-1].startswith("auto-cast: ")
    data = json.loads(report.read_text())
    rows = {r["node"]: r for r in data["ops"] if r["node"]}
    assert rows["LayerNormalization_1"]["precision"] == "f32"
    assert (
        rows["LayerNormalization_1"]["reason"] == "--node-block-list entry 'LayerNormalization_1'"
    )
    assert rows["LayerNormalization_28"] == {
        **rows["LayerNormalization_28"],
        "precision": "f16",
        "op_type": "LayerNormalization",
        "converted": True,
    }
    assert data["unmatched_rules"] == [{"rule": "--op-block-list entry 'Conv'", "where": ""}]


def test_explain_names_the_first_overflow_and_a_one_rule_plan_fixes_it(tmp_path, capsys):
    model, inputs = EXAMPLES / "fp16_overflow.onnx", EXAMPLES / "fp16_overflow_inputs.npz"
    js, png = tmp_path / "e.json", tmp_path / "e.png"
    code, out, err = run_neuron_cc(
        [
            "explain",
            model,
            "--inputs",
            inputs,
            "--auto-cast",
            "all",
            "--auto-cast-type",
            "fp16",
            "--json",
            js,
            "--plot",
            png,
        ],
        capsys,
    )
    assert code == 0, err
    assert "first inf/NaN: node /attn/scores/MatMul (MatMul)" in out
    data = json.loads(js.read_text())
    assert data["first_non_finite"]["node"] == "/attn/scores/MatMul"
    rows = {r["node"]: r for r in data["ops"]}
    assert (
        rows["/attn/scores/MatMul"]["fp16_overflow"] > 0
        and rows["/attn/q/MatMul"]["fp16_overflow"] == 0
    )
    assert float(rows["/attn/q/MatMul"]["own"]["rel_l2"]) < 1e-3
    assert png.read_bytes().startswith(b"\x89PNG")
    plan = EXAMPLES / "fp16_overflow_plan.toml"
    code, out, err = run_neuron_cc(
        [
            "explain",
            model,
            "--inputs",
            inputs,
            "--auto-cast",
            "all",
            "--auto-cast-type",
            "fp16",
            "--precision-plan",
            plan,
        ],
        capsys,
    )
    assert code == 0 and "no inf/NaN where fp32 is finite" in out, out + err
    code, out, err = run_neuron_cc(
        [
            "eval",
            model,
            "--inputs",
            inputs,
            "--auto-cast",
            "all",
            "--auto-cast-type",
            "fp16",
            "--precision-plan",
            plan,
            "--json",
            js,
        ],
        capsys,
    )
    assert code == 0, err
    y = json.loads(js.read_text())["outputs"]["y"]
    assert y["inf"] == y["nan"] == y["overflowed"] == 0

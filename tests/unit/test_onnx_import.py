"""The ONNX importer: example models and single-op models against onnxruntime (through the
reference interpreter), the IR it builds, its weights file, and every error kind."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from neuron_opt.cli.common import load_module
from neuron_opt.diagnostics import CompileError
from neuron_opt.dialects import nt
from neuron_opt.dialects.parse import verify_module
from neuron_opt.importers.onnx import Unsupported, import_onnx, save_compiled
from neuron_opt.outputs import save_outputs
from neuron_opt.runtime.reference import run_module

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RNG = np.random.default_rng(7)


def rel_l2(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def ort_run(model: onnx.ModelProto, feeds: dict) -> dict:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


def nt_run(model, feeds: dict, tmp_path: Path, bind=None) -> tuple[dict, object]:
    module, weights = import_onnx(model, bind=bind)
    verify_module(module)
    save_compiled(module, weights, tmp_path / "m.mlir")
    return run_module(module, feeds, tmp_path), module


def ops_of(module) -> list[str]:
    return [op.name for op in module.walk() if op.name.startswith("nt.")]


# ---------------------------------------------------------------------------------------------
# Example models


@pytest.mark.parametrize("name", ["mlp", "transformer", "cnn", "fp16_io"])
def test_example_matches_onnxruntime(name, tmp_path):
    path = EXAMPLES / f"{name}.onnx"
    feeds = dict(np.load(EXAMPLES / f"{name}_inputs.npz"))
    got, _module = nt_run(path, feeds, tmp_path)
    want = ort_run(onnx.load(path), feeds)
    assert set(got) == set(want)
    for k in want:
        assert got[k].dtype == want[k].dtype and got[k].shape == want[k].shape
        assert rel_l2(got[k], want[k]) <= 1e-5, k


def test_fp16_io_keeps_its_signature():
    module, _ = import_onnx(EXAMPLES / "fp16_io.onnx")
    func = next(op for op in module.walk() if op.name == "func.func")
    assert str(func.function_type) == "(tensor<4x32xf16>) -> tensor<4x16xf16>"
    casts = [op for op in module.walk() if isinstance(op, nt.CastOp)]
    assert len(casts) == 2


def test_transformer_shape_chain_is_folded_and_mask_kept():
    module, weights = import_onnx(EXAMPLES / "transformer.onnx")
    names = set(ops_of(module))
    # Shape/Gather/Unsqueeze/Concat on shapes are computed at import: only data movement stays.
    assert "nt.gather" not in names and "nt.concat" not in names
    assert np.isneginf(weights["causal_mask"]).sum() == 16 * 15 // 2


def test_committed_mlp_mlir_is_the_importers_output(tmp_path):
    module, weights = import_onnx(EXAMPLES / "mlp.onnx")
    save_compiled(module, weights, tmp_path / "mlp.mlir")
    assert (tmp_path / "mlp.mlir").read_text() == (EXAMPLES / "mlp.mlir").read_text()
    saved = np.load(EXAMPLES / "mlp.npz")
    assert sorted(saved.files) == sorted(weights)
    for k in weights:
        np.testing.assert_array_equal(saved[k], weights[k])


def test_save_compiled_round_trip(tmp_path):
    module, weights = import_onnx(EXAMPLES / "cnn.onnx", weights_name="ignored.npz")
    out = tmp_path / "cnn.mlir"
    save_compiled(module, weights, out)
    assert 'nt.weights = "cnn.npz"' in out.read_text()
    stored = np.load(tmp_path / "cnn.npz")
    assert all(stored[k].dtype == np.float32 for k in stored.files)  # plain numpy dtypes
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    reparsed = load_module(str(out))
    feeds = dict(np.load(EXAMPLES / "cnn_inputs.npz"))
    a = run_module(reparsed, feeds, tmp_path)["logits"]
    b = run_module(module, feeds, tmp_path)["logits"]
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["file", "allow_pickle"])
def test_weights_and_outputs_named_like_savez_arguments(name, tmp_path):
    """np.savez takes array names as keyword arguments: `file` broke it, `allow_pickle` was
    dropped. Both are ordinary ONNX names."""
    w = RNG.standard_normal((64, 64)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", name], [name + "_out"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 64])],
        [helper.make_tensor_value_info(name + "_out", TensorProto.FLOAT, [2, 64])],
        [numpy_helper.from_array(w, name)],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    feeds = {"x": RNG.standard_normal((2, 64)).astype(np.float32)}
    module, weights = import_onnx(model)
    save_compiled(module, weights, tmp_path / "m.mlir")
    assert list(np.load(tmp_path / "m.npz").keys()) == [name]
    got = run_module(load_module(str(tmp_path / "m.mlir")), feeds, tmp_path)
    np.testing.assert_allclose(
        got[name + "_out"], ort_run(model, feeds)[name + "_out"], rtol=1e-5, atol=1e-5
    )
    save_outputs(tmp_path / "out.npz", {name: w})
    np.testing.assert_array_equal(np.load(tmp_path / "out.npz")[name], w)


def test_small_initializers_inline_large_ones_out_of_line():
    module, weights = import_onnx(EXAMPLES / "cnn.onnx")
    consts = [op for op in module.walk() if isinstance(op, nt.ConstantOp)]
    ws = {op.sym_name.data for op in module.walk() if isinstance(op, nt.WeightOp)}
    assert ws == set(weights) == {"conv1.weight", "conv2.weight", "fc.weight"}
    assert all(op.to_array().size <= 16 for op in consts)


# ---------------------------------------------------------------------------------------------
# Single-op models against onnxruntime


def model(nodes, inputs, outputs, opset=18, inits=()):
    g = helper.make_graph(nodes, "t", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    if any(not o.type.tensor_type.HasField("shape") for o in m.graph.output):
        try:  # outputs declared without a shape get onnx's inferred one (the checker wants it)
            m = onnx.shape_inference.infer_shapes(m)
        except Exception:
            pass
    return m


def vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


CASES = {
    "gemm_alpha_beta_transA": (
        [helper.make_node("Gemm", ["a", "b", "c"], ["y"], alpha=0.5, beta=2.0, transA=1, transB=1)],
        {"a": randn(5, 3), "b": randn(4, 5), "c": randn(4)},
        [vi("y", [3, 4])],
        13,
    ),
    "matmul_1d_both": (
        [helper.make_node("MatMul", ["a", "b"], ["y"])],
        {"a": randn(6), "b": randn(6)},
        [vi("y", [])],
        13,
    ),
    "matmul_1d_lhs_batched": (
        [helper.make_node("MatMul", ["a", "b"], ["y"])],
        {"a": randn(6), "b": randn(2, 6, 3)},
        [vi("y", [2, 3])],
        13,
    ),
    "conv_groups_dilation_pads": (
        [
            helper.make_node(
                "Conv",
                ["x", "w", "b"],
                ["y"],
                group=2,
                dilations=[2, 1],
                strides=[2, 1],
                pads=[1, 0, 2, 1],
            )
        ],
        {"x": randn(1, 4, 9, 7), "w": randn(6, 2, 3, 2), "b": randn(6)},
        [vi("y", None)],
        13,
    ),
    "conv_same_lower_1d": (
        [helper.make_node("Conv", ["x", "w"], ["y"], strides=[2], auto_pad="SAME_LOWER")],
        {"x": randn(2, 3, 10), "w": randn(4, 3, 4)},
        [vi("y", None)],
        13,
    ),
    "softmax_opset11_coerces_2d": (
        [helper.make_node("Softmax", ["x"], ["y"], axis=1)],
        {"x": randn(2, 3, 4)},
        [vi("y", [2, 3, 4])],
        11,
    ),
    "logsoftmax_opset13_axis": (
        [helper.make_node("LogSoftmax", ["x"], ["y"], axis=1)],
        {"x": randn(2, 3, 4)},
        [vi("y", [2, 3, 4])],
        13,
    ),
    "maxpool_ceil_pads": (
        [
            helper.make_node(
                "MaxPool",
                ["x"],
                ["y"],
                kernel_shape=[3, 3],
                strides=[2, 2],
                pads=[1, 1, 0, 0],
                ceil_mode=1,
            )
        ],
        {"x": randn(1, 2, 8, 8)},
        [vi("y", None)],
        13,
    ),
    "avgpool_count_include_pad": (
        [
            helper.make_node(
                "AveragePool",
                ["x"],
                ["y"],
                kernel_shape=[3, 3],
                pads=[1, 1, 1, 1],
                count_include_pad=1,
            )
        ],
        {"x": randn(1, 2, 5, 5)},
        [vi("y", None)],
        13,
    ),
    "avgpool_maxpool_ceil_window_past_the_input": (  # HF EfficientNet's pooler: kernel 1280 on 7x7
        [
            helper.make_node(
                "AveragePool", ["x"], ["a"], kernel_shape=[5, 7], strides=[5, 7], ceil_mode=1
            ),
            helper.make_node(
                "AveragePool",
                ["x"],
                ["b"],
                kernel_shape=[4, 7],
                strides=[4, 7],
                ceil_mode=1,
                pads=[1, 0, 0, 1],
                count_include_pad=1,
            ),
            helper.make_node(
                "MaxPool", ["x"], ["m"], kernel_shape=[3, 5], strides=[2, 3], ceil_mode=1
            ),
        ],
        {"x": randn(1, 2, 2, 3)},
        [vi("a", None), vi("b", None), vi("m", None)],
        17,
    ),
    "isnan": (
        [helper.make_node("IsNaN", ["x"], ["y"])],
        {"x": np.array([[np.nan, 0.0, -0.0, np.inf], [-np.inf, 1.5, -np.nan, 3e38]], np.float32)},
        [vi("y", [2, 4], TensorProto.BOOL)],
        13,
    ),
    "instance_norm": (
        [helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=1e-3)],
        {"x": randn(2, 3, 4, 5), "s": randn(3), "b": randn(3)},
        [vi("y", [2, 3, 4, 5])],
        13,
    ),
    "group_norm": (
        [
            helper.make_node(
                "GroupNormalization", ["x", "s", "b"], ["y"], num_groups=2, epsilon=1e-3
            )
        ],
        {"x": randn(2, 4, 3, 5) * 2 + 1, "s": randn(4), "b": randn(4)},
        [vi("y", [2, 4, 3, 5])],
        21,
    ),
    "clip_opset6_attrs": (
        [helper.make_node("Clip", ["x"], ["y"], min=-0.5, max=0.25)],
        {"x": randn(3, 4)},
        [vi("y", [3, 4])],
        6,
    ),
    "pow_integer_exponent": (
        [helper.make_node("Pow", ["x", "e"], ["y"])],
        {"x": randn(3, 4)},
        [vi("y", [3, 4])],
        15,
        [init("e", np.array(3, np.int64))],
    ),
    "mod_int_and_float_fmod": (
        [
            helper.make_node("Mod", ["a", "b"], ["y"]),
            helper.make_node("Mod", ["c", "d"], ["z"], fmod=1),
        ],
        {
            "a": RNG.integers(-20, 20, (4, 5)).astype(np.int32),
            "b": np.array([3, -3, 7, -7, 5], np.int32),
            "c": randn(4, 5) * 5,
            "d": randn(5),
        },
        [vi("y", [4, 5], TensorProto.INT32), vi("z", [4, 5])],
        13,
    ),
    "where_neg_inf_mask": (
        [
            helper.make_node("Less", ["a", "b"], ["m"]),
            helper.make_node("Where", ["m", "a", "ninf"], ["y"]),
        ],
        {"a": randn(3, 4), "b": randn(4)},
        [vi("y", [3, 4])],
        13,
        [init("ninf", np.array(-np.inf, np.float32))],
    ),
    "layernorm_axis1": (
        [helper.make_node("LayerNormalization", ["x", "s", "b"], ["y"], axis=1)],
        {"x": randn(2, 3, 4), "s": randn(3, 4), "b": randn(3, 4)},
        [vi("y", [2, 3, 4])],
        17,
    ),
    "batchnorm": (
        [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])],
        {"x": randn(2, 3, 4)},
        [vi("y", [2, 3, 4])],
        15,
        [
            init("s", randn(3)),
            init("b", randn(3)),
            init("m", randn(3)),
            init("v", np.abs(randn(3)) + 0.5),
        ],
    ),
    "gelu_tanh": (
        [helper.make_node("Gelu", ["x"], ["y"], approximate="tanh")],
        {"x": randn(3, 4)},
        [vi("y", [3, 4])],
        20,
    ),
    "gather_negative_indices_elements_nd": (
        [
            helper.make_node("Gather", ["x", "i"], ["g"], axis=1),
            helper.make_node("GatherElements", ["x", "j"], ["ge"], axis=0),
            helper.make_node("GatherND", ["x", "k"], ["gn"]),
        ],
        {"x": randn(3, 4)},
        [vi("g", None), vi("ge", None), vi("gn", None)],
        13,
        [
            init("i", np.array([[-1, 0], [2, 1]], np.int64)),
            init("j", np.array([[2, 0, 1, 0]], np.int64)),
            init("k", np.array([[0, 1], [2, 3]], np.int64)),
        ],
    ),
    "reduce_opset13_attr_and_opset18_input": (
        [
            helper.make_node("ReduceMean", ["x"], ["m"], axes=[1], keepdims=0),
            helper.make_node("ReduceMax", ["x"], ["mx"], axes=[-1]),
            helper.make_node("ReduceSum", ["x", "ax"], ["s"], keepdims=0),
        ],
        {"x": randn(2, 3, 4)},
        [vi("m", None), vi("mx", None), vi("s", None)],
        13,
        [init("ax", np.array([0, 2], np.int64))],
    ),
    "reshape_zero_and_minus_one_flatten_expand": (
        [
            helper.make_node("Reshape", ["x", "shp"], ["r"]),
            helper.make_node("Flatten", ["r"], ["f"], axis=-1),
            helper.make_node("Expand", ["f", "es"], ["y"]),
        ],
        {"x": randn(2, 3, 4)},
        [vi("y", None)],
        14,
        [init("shp", np.array([0, -1, 2], np.int64)), init("es", np.array([3, 1, 1], np.int64))],
    ),
    "slice_negative_steps_split_concat": (
        [
            helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["s"]),
            helper.make_node("Split", ["x", "sz"], ["p", "q"], axis=1),
            helper.make_node("Concat", ["q", "p"], ["y"], axis=1),
        ],
        {"x": randn(4, 6)},
        [vi("s", None), vi("y", None)],
        13,
        [
            init("st", np.array([-1, 5], np.int64)),
            init("en", np.array([-100, 0], np.int64)),
            init("ax", np.array([0, 1], np.int64)),
            init("sp", np.array([-2, -2], np.int64)),
            init("sz", np.array([2, 4], np.int64)),
        ],
    ),
    "squeeze_unsqueeze_transpose_pad_negative": (
        [
            helper.make_node("Unsqueeze", ["x"], ["u"], axes=[0, 3]),
            helper.make_node("Squeeze", ["u"], ["s"], axes=[0]),
            helper.make_node("Transpose", ["s"], ["t"], perm=[2, 0, 1]),
            helper.make_node("Pad", ["t"], ["y"], pads=[0, 1, -1, 0, -1, 2], mode="edge"),
        ],
        {"x": randn(3, 4)},
        [vi("y", [1, 3, 5])],
        10,
    ),
    "cast_compare_and_not_int_arith": (
        [
            helper.make_node("Cast", ["x"], ["xi"], to=TensorProto.INT32),
            helper.make_node("Mul", ["xi", "xi"], ["sq"]),
            helper.make_node("Greater", ["x", "z"], ["pos"]),
            helper.make_node("Not", ["pos"], ["npos"]),
            helper.make_node("And", ["npos", "pos"], ["none"]),
        ],
        {"x": randn(3, 4) * 4},
        [
            vi("sq", None, TensorProto.INT32),
            vi("npos", None, TensorProto.BOOL),
            vi("none", None, TensorProto.BOOL),
        ],
        13,
        [init("z", np.array(0, np.float32))],
    ),
    "variadic_max_min_sum_mean": (
        [
            helper.make_node("Max", ["a", "b", "c"], ["mx"]),
            helper.make_node("Min", ["a", "b"], ["mn"]),
            helper.make_node("Sum", ["a", "b", "c"], ["s"]),
            helper.make_node("Mean", ["a", "c"], ["me"]),
        ],
        {"a": randn(3, 4), "b": randn(4), "c": randn(3, 1)},
        [vi("mx", None), vi("mn", None), vi("s", None), vi("me", None)],
        13,
    ),
    "torchscript_shape_chain": (
        [
            helper.make_node("Shape", ["x"], ["shp"]),
            helper.make_node("Gather", ["shp", "zero"], ["n"], axis=0),
            helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
            helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
            helper.make_node("Reshape", ["x", "target"], ["y"]),
            helper.make_node(
                "ConstantOfShape",
                ["shp"],
                ["ones"],
                value=numpy_helper.from_array(np.array([1.0], np.float32)),
            ),
            helper.make_node("Add", ["x", "ones"], ["z"]),
        ],
        {"x": randn(2, 3, 4)},
        [vi("y", [2, 12]), vi("z", [2, 3, 4])],
        13,
        [
            init("zero", np.array(0, np.int64)),
            init("ax0", np.array([0], np.int64)),
            init("minus1", np.array([-1], np.int64)),
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_single_op_model_matches_onnxruntime(name, tmp_path):
    nodes, feeds, outputs, opset, *rest = CASES[name]
    inits = rest[0] if rest else []
    inputs = [
        vi(k, list(v.shape), helper.np_dtype_to_tensor_dtype(v.dtype)) for k, v in feeds.items()
    ]
    m = model(nodes, inputs, outputs, opset, inits)
    onnx.checker.check_model(m)
    want = ort_run(m, feeds)
    got, _module = nt_run(m, feeds, tmp_path)
    for k, w in want.items():
        assert got[k].shape == w.shape and got[k].dtype == w.dtype, k
        if w.dtype.kind == "f":
            assert np.array_equal(np.isinf(got[k]), np.isinf(w)), k
            fin = np.isfinite(w)
            assert rel_l2(got[k][fin], w[fin]) <= 1e-5, k
        else:
            np.testing.assert_array_equal(got[k], w, err_msg=k)


def test_float_mod_takes_the_divisors_sign(tmp_path):
    # ONNX Mod with fmod=0 on floats (opset 28 allows it; onnxruntime does not yet): numpy's mod.
    a, b = randn(6, 5) * 5, np.array([2.5, -2.5, 0.75, -3.0, 1.0], np.float32)
    m = model(
        [helper.make_node("Mod", ["a", "b"], ["y"])],
        [vi("a", [6, 5]), vi("b", [5])],
        [vi("y", [6, 5])],
        28,
    )
    got, _ = nt_run(m, {"a": a, "b": b}, tmp_path)
    np.testing.assert_allclose(got["y"], np.mod(a, b), rtol=1e-6, atol=1e-6)


def test_shape_chain_leaves_only_the_reshape():
    nodes, _feeds, outputs, opset, inits = CASES["torchscript_shape_chain"]
    m = model(nodes, [vi("x", [2, 3, 4])], outputs, opset, inits)
    module, _ = import_onnx(m)
    assert ops_of(module) == ["nt.reshape", "nt.constant", "nt.add"]


def test_bound_inputs_become_constants(tmp_path):
    m = model(
        [helper.make_node("Reshape", ["x", "s"], ["y"])],
        [vi("x", [2, 6]), vi("s", [2], TensorProto.INT64)],
        [vi("y", [3, 4])],
        13,
    )
    got, module = nt_run(m, {"x": randn(2, 6)}, tmp_path, bind={"s": np.array([3, -1], np.int64)})
    assert got["y"].shape == (3, 4)
    func = next(op for op in module.walk() if op.name == "func.func")
    assert len(func.body.block.args) == 1


def test_dispatch_follows_the_models_opset():
    x = vi("x", [1, 3, 1])
    old = model([helper.make_node("Squeeze", ["x"], ["y"], axes=[0])], [x], [vi("y", None)], 11)
    new = model(
        [helper.make_node("Squeeze", ["x", "a"], ["y"])],
        [x],
        [vi("y", None)],
        13,
        [init("a", np.array([2], np.int64))],
    )

    def shape(m):
        return (
            next(op for op in import_onnx(m)[0].walk() if op.name == "func.return").operands[0].type
        )

    assert shape(old).get_shape() == (3, 1)
    assert shape(new).get_shape() == (1, 3)


# ---------------------------------------------------------------------------------------------
# Errors: one CompileError, located at the node


def add_model(**kw):
    return model(
        [helper.make_node("Add", ["x", "w"], ["y"], name="add0")],
        kw.get("inputs", [vi("x", [2, 3])]),
        [vi("y", None)],
        13,
        kw.get("inits", [init("w", randn(2, 3))]),
    )


def test_error_unsupported_op():
    m = model(
        [helper.make_node("Hardmax", ["x"], ["y"], name="hm")],
        [vi("x", [2, 3])],
        [vi("y", None)],
        13,
    )
    with pytest.raises(Unsupported) as e:
        import_onnx(m)
    assert str(e.value).startswith("model.onnx: node hm (Hardmax): error: Hardmax is not supported")


def test_error_custom_domain_op():
    node = helper.make_node("FusedGemm", ["x"], ["y"], name="fg", domain="com.microsoft")
    m = model([node], [vi("x", [2, 3])], [vi("y", None)], 13)
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(Unsupported, match=r"node fg \(FusedGemm\): error: .*custom domain"):
        import_onnx(m)


def test_error_dynamic_dim():
    m = add_model(inputs=[vi("x", ["batch", 3])])
    with pytest.raises(Unsupported) as e:
        import_onnx(m)
    assert "model.onnx: node add0 (Add): error: input 'x' has a dynamic dim 0 ('batch')" in str(
        e.value
    )


def test_error_runtime_computed_shape():
    m = model(
        [helper.make_node("Reshape", ["x", "s"], ["y"], name="rs")],
        [vi("x", [2, 6]), vi("s", [2], TensorProto.INT64)],
        [vi("y", [3, 4])],
        13,
    )
    with pytest.raises(
        Unsupported,
        match=r"node rs \(Reshape\): error: input 1 \('s', the shape\) must be a constant",
    ):
        import_onnx(m)


def test_error_missing_initializer():
    with pytest.raises(CompileError) as e:
        import_onnx(add_model(inits=[]))
    assert str(e.value).startswith("model.onnx: node add0 (Add): error: input 'w' is not")
    assert "missing initializer" in str(e.value)


@pytest.mark.parametrize(
    "elem,label",
    [
        (TensorProto.DOUBLE, "DOUBLE"),
        (TensorProto.UINT8, "UINT8"),
        (TensorProto.INT16, "INT16"),
        (TensorProto.FLOAT8E4M3FN, "FLOAT8E4M3FN"),
    ],
)
def test_error_unsupported_dtype(elem, label):
    m = model(
        [helper.make_node("Identity", ["x"], ["y"], name="id")],
        [vi("x", [2], elem)],
        [vi("y", None, elem)],
        19,
    )
    with pytest.raises(Unsupported) as e:
        import_onnx(m)
    assert str(e.value).startswith(
        f"model.onnx: node id (Identity): error: input 'x' has element type {label}"
    )


def test_error_unsupported_dtype_of_an_initializer():
    m = add_model(inits=[init("w", np.ones((2, 3)))])  # float64
    m.graph.input[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    with pytest.raises(Unsupported, match=r"node add0 \(Add\): error: .*DOUBLE"):
        import_onnx(m)


def test_error_invalid_model_names_the_node():
    m = model(
        [helper.make_node("Add", ["x"], ["y"], name="half_add")], [vi("x", [2])], [vi("y", [2])], 13
    )
    with pytest.raises(CompileError) as e:
        import_onnx(m)
    assert str(e.value).startswith("model.onnx: node half_add (Add): error: invalid model:")


def test_error_not_an_onnx_file(tmp_path):
    bad = tmp_path / "notes.onnx"
    bad.write_text("this is not a protobuf\n" * 20)
    with pytest.raises(CompileError) as e:
        import_onnx(bad)
    assert str(e.value).startswith(f"{bad}: error: not an ONNX model")
    with pytest.raises(CompileError, match="No such file"):
        import_onnx(tmp_path / "absent.onnx")


def test_error_path_label_is_the_file(tmp_path):
    p = tmp_path / "model_x.onnx"
    onnx.save(add_model(inits=[]), p)
    with pytest.raises(CompileError) as e:
        import_onnx(p)
    assert str(e.value).startswith(f"{p}: node add0 (Add): error:")


def test_error_unused_training_output():
    m = model(
        [helper.make_node("MaxPool", ["x"], ["y", "idx"], name="mp", kernel_shape=[2])],
        [vi("x", [1, 1, 4])],
        [vi("y", None), vi("idx", None, TensorProto.INT64)],
        13,
    )
    with pytest.raises(
        Unsupported, match=r"node mp \(MaxPool\): error: output 1 \('idx', the argmax indices\)"
    ):
        import_onnx(m)


def test_opset6_legacy_broadcast_aligns_at_axis(tmp_path):
    # Before opset 7, Add(A, B, broadcast=1, axis=1) lines B's dims up with A's from dim 1.
    a, b = randn(2, 3, 4), randn(3)
    m = model(
        [helper.make_node("Add", ["a", "b"], ["y"], broadcast=1, axis=1)],
        [vi("a", [2, 3, 4]), vi("b", [3])],
        [vi("y", [2, 3, 4])],
        6,
    )
    got, _ = nt_run(m, {"a": a, "b": b}, tmp_path)
    np.testing.assert_array_equal(got["y"], a + b[:, None])


def test_error_opset_newer_than_onnx():
    m = add_model()
    m.opset_import[0].version = onnx.defs.onnx_opset_version() + 1
    with pytest.raises(Unsupported, match="is newer than this onnx supports"):
        import_onnx(m)


@pytest.mark.parametrize("op_type", ["InstanceNormalization", "GroupNormalization"])
def test_norm_is_one_op_rounded_once_under_all_fp16(op_type, tmp_path):
    """One FP32-class op, so auto-cast all rounds its result once: the output is the exact
    normalization of the fp16-rounded input, rounded once to fp16 (its pieces, each rounded,
    gave 10x that error)."""
    from neuron_opt.passes.pipeline import run_cast_pipeline

    x = RNG.normal(3, 0.5, (1, 2, 16, 8)).astype(np.float32)  # 128 values per channel
    s, b = np.float32([1.5, 0.5]), np.float32([0.25, -1.0])
    attrs = {"num_groups": 2} if op_type == "GroupNormalization" else {}
    m = model(
        [helper.make_node(op_type, ["x", "s", "b"], ["y"], **attrs)],
        [vi("x", list(x.shape))],
        [vi("y", list(x.shape))],
        21,
        [init("s", s), init("b", b)],
    )
    module, weights = import_onnx(m)
    assert [n for n in ops_of(module) if n not in ("nt.constant", "nt.weight")] == ["nt.group_norm"]
    run_cast_pipeline(module, "all", "fp16")
    verify_module(module)
    save_compiled(module, weights, tmp_path / "m.mlir")
    y = run_module(module, {"x": x}, tmp_path)["y"]
    x64 = x.astype(np.float16).astype(np.float64)
    mean = x64.mean((2, 3), keepdims=True)
    d = x64 - mean
    exact = d / np.sqrt((d * d).mean((2, 3), keepdims=True) + np.float64(np.float32(1e-5)))
    exact = exact * s.reshape(1, 2, 1, 1) + b.reshape(1, 2, 1, 1)
    np.testing.assert_array_equal(y, exact.astype(np.float16).astype(np.float32))

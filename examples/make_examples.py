"""Build the example models with onnx.helper and seeded random weights, each with a seeded
inputs .npz (keys = the model's input names), and import mlp.onnx to mlp.mlir + mlp.npz.

    python examples/make_examples.py          # the small models (committed)
    python examples/make_examples.py --wide   # also wide_mlp.onnx (~48 MB: made on demand)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
OPSET = 20  # Gelu is an ONNX op from opset 20


class Builder:
    """A graph under construction: initializers from a seeded generator, nodes by name."""

    def __init__(self, name: str, seed: int):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def weight(self, name: str, shape, scale: float | None = None) -> str:
        fan_in = shape[0] if len(shape) < 4 else int(np.prod(shape[1:]))
        s = scale if scale is not None else 1.0 / np.sqrt(fan_in)
        return self.const(name, (self.rng.standard_normal(shape) * s).astype(np.float32))

    def const(self, name: str, array: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op_type: str, inputs, n_out: int = 1, name: str | None = None, **attrs):
        self._n += 1
        outs = [
            f"{op_type.lower()}_{self._n}" + (f"_{k}" if n_out > 1 else "") for k in range(n_out)
        ]
        self.nodes.append(
            helper.make_node(
                op_type, list(inputs), outs, name=name or f"{op_type}_{self._n}", **attrs
            )
        )
        return outs[0] if n_out == 1 else outs

    def linear(self, x: str, name: str, k: int, n: int) -> str:
        y = self.node("MatMul", [x, self.weight(f"{name}.weight", (k, n))])
        return self.node("Add", [y, self.const(f"{name}.bias", np.zeros(n, np.float32) + 0.01)])

    def layer_norm(self, x: str, name: str, d: int) -> str:
        scale = self.const(
            f"{name}.scale", (1 + 0.1 * self.rng.standard_normal(d)).astype(np.float32)
        )
        bias = self.const(f"{name}.bias", (0.1 * self.rng.standard_normal(d)).astype(np.float32))
        return self.node("LayerNormalization", [x, scale, bias], axis=-1, epsilon=1e-5)

    def model(self, inputs, outputs) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.name, inputs, outputs, self.inits)
        m = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="neuron-opt examples",
        )
        m.ir_version = 9
        onnx.checker.check_model(m)
        return m


def tensor(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, list(shape))


def mlp():
    b = Builder("mlp", seed=1)
    h = b.linear("x", "fc1", 64, 128)
    h = b.node("Gelu", [b.layer_norm(h, "ln1", 128)])
    b.linear(h, "fc2", 128, 10)
    b.nodes[-1].output[0] = "logits"
    model = b.model(
        [tensor("x", TensorProto.FLOAT, (8, 64))], [tensor("logits", TensorProto.FLOAT, (8, 10))]
    )
    return model, {"x": np.random.default_rng(101).standard_normal((8, 64)).astype(np.float32)}


def transformer():
    """Pre-norm block: causal attention with a -inf mask, then a GELU MLP; the head split uses
    a TorchScript-style Shape/Gather/Concat chain the importer folds."""
    S, D, H = 16, 64, 4
    dh = D // H
    b = Builder("transformer", seed=2)
    x = "x"
    h = b.layer_norm(x, "ln1", D)
    batch = b.node("Gather", [b.node("Shape", [h]), b.const("zero", np.array(0, np.int64))], axis=0)
    heads_shape = b.node(
        "Concat",
        [
            b.node("Unsqueeze", [batch, b.const("axes0", np.array([0], np.int64))]),
            b.const("heads_tail", np.array([S, H, dh], np.int64)),
        ],
        axis=0,
    )

    def heads(t, perm):
        return b.node("Transpose", [b.node("Reshape", [t, heads_shape])], perm=perm)

    q = heads(b.linear(h, "attn.q", D, D), [0, 2, 1, 3])
    k = heads(b.linear(h, "attn.k", D, D), [0, 2, 3, 1])
    v = heads(b.linear(h, "attn.v", D, D), [0, 2, 1, 3])
    scores = b.node(
        "Div", [b.node("MatMul", [q, k]), b.const("sqrt_dh", np.array(np.sqrt(dh), np.float32))]
    )
    mask = np.triu(np.full((S, S), -np.inf, np.float32), k=1)
    probs = b.node("Softmax", [b.node("Add", [scores, b.const("causal_mask", mask)])], axis=-1)
    ctx = b.node("Transpose", [b.node("MatMul", [probs, v])], perm=[0, 2, 1, 3])
    ctx = b.node("Reshape", [ctx, b.const("model_shape", np.array([1, S, D], np.int64))])
    x = b.node("Add", [x, b.linear(ctx, "attn.out", D, D)])
    h = b.node("Gelu", [b.linear(b.layer_norm(x, "ln2", D), "mlp.fc1", D, 4 * D)])
    b.node("Add", [x, b.linear(h, "mlp.fc2", 4 * D, D)])
    b.nodes[-1].output[0] = "y"
    model = b.model(
        [tensor("x", TensorProto.FLOAT, (1, S, D))], [tensor("y", TensorProto.FLOAT, (1, S, D))]
    )
    return model, {"x": np.random.default_rng(102).standard_normal((1, S, D)).astype(np.float32)}


def cnn():
    b = Builder("cnn", seed=3)
    h = b.node(
        "Conv",
        [
            "image",
            b.weight("conv1.weight", (8, 3, 3, 3)),
            b.const("conv1.bias", np.zeros(8, np.float32)),
        ],
        kernel_shape=[3, 3],
        pads=[1, 1, 1, 1],
    )
    bn = [
        b.const(f"bn1.{n}", v)
        for n, v in (
            ("scale", (1 + 0.1 * b.rng.standard_normal(8)).astype(np.float32)),
            ("bias", (0.1 * b.rng.standard_normal(8)).astype(np.float32)),
            ("mean", (0.1 * b.rng.standard_normal(8)).astype(np.float32)),
            ("var", (1 + 0.1 * b.rng.random(8)).astype(np.float32)),
        )
    ]
    h = b.node("Relu", [b.node("BatchNormalization", [h, *bn], epsilon=1e-5)])
    h = b.node("MaxPool", [h], kernel_shape=[2, 2], strides=[2, 2])
    h = b.node(
        "Conv",
        [h, b.weight("conv2.weight", (16, 8, 3, 3))],
        kernel_shape=[3, 3],
        strides=[2, 2],
        pads=[1, 1, 1, 1],
    )
    h = b.node("Relu", [h])
    h = b.node("AveragePool", [h], kernel_shape=[2, 2], strides=[2, 2])
    h = b.node("Flatten", [b.node("GlobalAveragePool", [h])], axis=1)
    b.node(
        "Gemm",
        [
            h,
            b.weight("fc.weight", (10, 16), scale=0.25),
            b.const("fc.bias", np.zeros(10, np.float32)),
        ],
        transB=1,
    )
    b.nodes[-1].output[0] = "logits"
    model = b.model(
        [tensor("image", TensorProto.FLOAT, (2, 3, 32, 32))],
        [tensor("logits", TensorProto.FLOAT, (2, 10))],
    )
    return model, {
        "image": np.random.default_rng(103).standard_normal((2, 3, 32, 32)).astype(np.float32)
    }


def fp16_io():
    """fp16 in and out: a Cast widens the input, the body is fp32, a Cast narrows the result."""
    b = Builder("fp16_io", seed=4)
    h = b.node("Cast", ["x16"], to=TensorProto.FLOAT)
    h = b.node("Relu", [b.linear(h, "fc1", 32, 64)])
    h = b.node("Softmax", [b.linear(h, "fc2", 64, 16)], axis=-1)
    b.node("Cast", [h], to=TensorProto.FLOAT16)
    b.nodes[-1].output[0] = "probs16"
    model = b.model(
        [tensor("x16", TensorProto.FLOAT16, (4, 32))],
        [tensor("probs16", TensorProto.FLOAT16, (4, 16))],
    )
    return model, {"x16": np.random.default_rng(104).standard_normal((4, 32)).astype(np.float16)}


def fp16_overflow():
    """Attention whose scores q.k exceed fp16's 65504 before the 1/sqrt(d) scale brings them back
    (the classic fp16 overflow): under all-fp16 the output is NaN, in fp32 finite. Node names
    are hierarchical, as exporters write them, so one glob rule can keep the block in fp32."""
    S, D = 32, 64
    b = Builder("fp16_overflow", seed=6)
    q = b.node("MatMul", ["x", b.weight("q.weight", (D, D))], name="/attn/q/MatMul")
    k = b.node("MatMul", ["x", b.weight("k.weight", (D, D))], name="/attn/k/MatMul")
    v = b.node("MatMul", ["x", b.weight("v.weight", (D, D))], name="/attn/v/MatMul")
    kt = b.node("Transpose", [k], perm=[1, 0], name="/attn/k/Transpose")
    scores = b.node("MatMul", [q, kt], name="/attn/scores/MatMul")
    scores = b.node(
        "Mul",
        [scores, b.const("inv_sqrt_d", np.array(1 / np.sqrt(D), np.float32))],
        name="/attn/scores/Mul",
    )
    probs = b.node("Softmax", [scores], axis=-1, name="/attn/Softmax")
    b.node("MatMul", [probs, v], name="/attn/out/MatMul")
    b.nodes[-1].output[0] = "y"
    model = b.model(
        [tensor("x", TensorProto.FLOAT, (S, D))], [tensor("y", TensorProto.FLOAT, (S, D))]
    )
    # Activations of magnitude ~60 (un-normalized embeddings): q.k reaches about 1e5.
    return model, {
        "x": (60 * np.random.default_rng(106).standard_normal((S, D))).astype(np.float32)
    }


def f16_part():
    """An fp32 model with a part the model itself computes in fp16 (Cast in, f16 MatMul and Exp,
    Cast out): auto-cast all casts the fp32 ops only and leaves that part alone."""
    b = Builder("f16_part", seed=7)
    h = b.node("Relu", [b.linear("x", "fc1", 32, 64)])
    h16 = b.node("Cast", [h], to=TensorProto.FLOAT16, name="/f16/Cast_in")
    w16 = b.const("f16.weight", (b.rng.standard_normal((64, 64)) / 8).astype(np.float16))
    h16 = b.node("Exp", [b.node("MatMul", [h16, w16], name="/f16/MatMul")], name="/f16/Exp")
    h = b.node("Cast", [h16], to=TensorProto.FLOAT, name="/f16/Cast_out")
    b.linear(h, "fc2", 64, 16)
    b.nodes[-1].output[0] = "y"
    model = b.model(
        [tensor("x", TensorProto.FLOAT, (8, 32))], [tensor("y", TensorProto.FLOAT, (8, 16))]
    )
    return model, {"x": np.random.default_rng(107).standard_normal((8, 32)).astype(np.float32)}


def instance_norm():
    """One InstanceNormalization of 256 values N(3, 0.5^2) per channel: one op, rounded once."""
    b = Builder("instance_norm", seed=8)
    b.node(
        "InstanceNormalization",
        [
            "x",
            b.const("in.scale", np.float32([1.0, 0.5])),
            b.const("in.bias", np.float32([0.0, 0.25])),
        ],
        epsilon=1e-5,
    )
    b.nodes[-1].output[0] = "y"
    model = b.model(
        [tensor("x", TensorProto.FLOAT, (1, 2, 16, 16))],
        [tensor("y", TensorProto.FLOAT, (1, 2, 16, 16))],
    )
    return model, {
        "x": (3 + 0.5 * np.random.default_rng(108).standard_normal((1, 2, 16, 16))).astype(
            np.float32
        )
    }


def wide_mlp(batch: int = 512):
    """Matmul-bound: `batch` x 2048 activations through three 2048 x 2048 layers.

    A bf16 layer's 2*M*K*N FLOPs at 91.75 TFLOPS take as long as its 2*K*N weight bytes at
    the simulated 272 GB/s of DMA when M = 337: at 512 rows TensorE bounds matmult-bf16, at
    256 rows loading the weights does."""
    b = Builder("wide_mlp", seed=5)
    h = b.node("Gelu", [b.linear("x", "fc1", 2048, 2048)])
    h = b.node("Relu", [b.linear(h, "fc2", 2048, 2048)])
    b.linear(h, "fc3", 2048, 2048)
    b.nodes[-1].output[0] = "y"
    model = b.model(
        [tensor("x", TensorProto.FLOAT, (batch, 2048))],
        [tensor("y", TensorProto.FLOAT, (batch, 2048))],
    )
    return model, {
        "x": np.random.default_rng(105).standard_normal((batch, 2048)).astype(np.float32)
    }


def small_values(seed: int = 109):
    """One MatMul of small activations (|x| ~ 1e-3) and weights: in plain fp8 most products
    round to E4M3's subnormals or to zero; scaled fp8 (neuron-cc calibrate) keeps them.
    small_values_heldout_inputs.npz is a second draw, for evaluating a calibrated plan."""
    b = Builder("small_values", seed=9)
    b.node("MatMul", ["x", b.weight("w", (256, 64))], name="/mm/MatMul")
    b.nodes[-1].output[0] = "y"
    model = b.model(
        [tensor("x", TensorProto.FLOAT, (64, 256))], [tensor("y", TensorProto.FLOAT, (64, 64))]
    )
    return model, {
        "x": (1e-3 * np.random.default_rng(seed).standard_normal((64, 256))).astype(np.float32)
    }


SMALL = {
    "mlp": mlp,
    "transformer": transformer,
    "cnn": cnn,
    "fp16_io": fp16_io,
    "fp16_overflow": fp16_overflow,
    "f16_part": f16_part,
    "instance_norm": instance_norm,
    "small_values": small_values,
}


def write(name: str, make, out_dir: Path) -> Path:
    model, inputs = make()
    path = out_dir / f"{name}.onnx"
    onnx.save(model, path)
    np.savez(out_dir / f"{name}_inputs.npz", **inputs)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wide", action="store_true", help="also write wide_mlp.onnx (~48 MB)")
    ap.add_argument("--out", type=Path, default=HERE, help="output directory (default: examples/)")
    args = ap.parse_args()
    for name, make in SMALL.items():
        print("wrote", write(name, make, args.out))
    np.savez(args.out / "small_values_heldout_inputs.npz", **small_values(seed=110)[1])
    if args.wide:
        print("wrote", write("wide_mlp", wide_mlp, args.out))
    from neuron_opt.importers.onnx import import_onnx, save_compiled

    module, weights = import_onnx(args.out / "mlp.onnx")
    save_compiled(module, weights, args.out / "mlp.mlir")
    print("wrote", args.out / "mlp.mlir", "and", args.out / "mlp.npz")


if __name__ == "__main__":
    main()

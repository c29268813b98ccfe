"""neuron-cc's matmult-bf16 error vs an EMULATION of PyTorch bf16 autocast (torch is not
installed; this is numpy, not torch).

Emulated autocast semantics (PyTorch's `lower_precision_fp` list holds matmul/linear/conv):
every MatMul rounds both inputs to bf16 (RNE), accumulates in fp32 and rounds its OUTPUT to bf16;
every other op runs in fp32 on whatever values reach it. Real torch also keeps bf16 through
ops whose inputs are all bf16 (type promotion), so this is a mild lower bound on its error.

The emulator is a small numpy evaluator of the ONNX graph; its fp32 run is checked against
onnxruntime first. Errors are rel L2 = ||a - b|| / ||b|| against the fp32 run.

    .venv/bin/python bench/autocast_compare.py [mlp transformer]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import ml_dtypes
import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from scipy.special import erf

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _bf16(x):
    return np.asarray(x, np.float32).astype(ml_dtypes.bfloat16).astype(np.float32)


def _layer_norm(x, scale, bias=None, axis=-1, epsilon=1e-5):
    axes = tuple(range(axis % x.ndim, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + np.float32(epsilon)) * scale
    return y + bias if bias is not None else y


def _gelu(x, approximate="none"):
    if approximate == "tanh":
        return (
            0.5
            * x
            * (1 + np.tanh(np.float32(np.sqrt(2 / np.pi)) * (x + np.float32(0.044715) * x**3)))
        )
    return (0.5 * x * (1 + erf(x / np.float32(np.sqrt(2))))).astype(np.float32)


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _reshape(x, shape):
    shape = [x.shape[i] if d == 0 else int(d) for i, d in enumerate(shape)]  # 0 copies the dim
    return x.reshape(shape)


def evaluate(model: onnx.ModelProto, inputs: dict, autocast: bool) -> dict:
    """Run the graph in numpy (float32); with `autocast`, MatMuls as PyTorch bf16 autocast."""
    env = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    env.update(inputs)
    for node in model.graph.node:
        a = {x.name: onnx.helper.get_attribute_value(x) for x in node.attribute}
        a = {k: v.decode() if isinstance(v, bytes) else v for k, v in a.items()}
        xs = [env[n] if n else None for n in node.input]
        op = node.op_type
        if op == "MatMul":
            if autocast:
                y = _bf16(np.matmul(_bf16(xs[0]), _bf16(xs[1])))  # fp32 accumulate, bf16 out
            else:
                y = np.matmul(xs[0], xs[1])
        elif op in ("Add", "Sub", "Mul", "Div"):
            y = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op](*xs)
        elif op == "LayerNormalization":
            y = _layer_norm(*xs, **a)
        elif op == "Gelu":
            y = _gelu(xs[0], **a)
        elif op == "Softmax":
            y = _softmax(xs[0], **a)
        elif op == "Relu":
            y = np.maximum(xs[0], 0)
        elif op == "Transpose":
            y = np.transpose(xs[0], a.get("perm"))
        elif op == "Reshape":
            y = _reshape(xs[0], xs[1])
        elif op == "Shape":
            y = np.array(xs[0].shape, np.int64)
        elif op == "Gather":
            y = np.take(xs[0], xs[1], axis=a.get("axis", 0))
        elif op == "Unsqueeze":
            y = np.expand_dims(xs[0], tuple(int(i) for i in xs[1]))
        elif op == "Concat":
            y = np.concatenate(xs, axis=a["axis"])
        else:
            raise SystemExit(f"autocast_compare: op {op} is not emulated")
        y = np.asarray(y)
        env[node.output[0]] = y.astype(np.float32) if y.dtype.kind == "f" else y
    return {o.name: env[o.name] for o in model.graph.output}


def rel_l2(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def neuron_cc_rel_l2(name: str, mode: str) -> dict:
    """rel L2 vs fp32 per output, as `neuron-cc eval` reports it (its --json)."""
    with tempfile.TemporaryDirectory() as tmp:
        js = Path(tmp) / "m.json"
        cmd = [
            str(Path(sys.executable).parent / "neuron-cc"),
            "eval",
            str(EXAMPLES / f"{name}.onnx"),
            "--inputs",
            str(EXAMPLES / f"{name}_inputs.npz"),
            "--auto-cast",
            mode,
            "--auto-cast-type",
            "bf16",
            "--json",
            str(js),
        ]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return {k: v["vs_fp32"]["rel_l2"] for k, v in json.loads(js.read_text())["outputs"].items()}


def main(names: list[str]) -> None:
    print(
        "model        output  emulator-vs-ort  torch-autocast-emul  neuron-cc matmult-bf16  ratio"
    )
    for name in names:
        model = onnx.load(EXAMPLES / f"{name}.onnx")
        with np.load(EXAMPLES / f"{name}_inputs.npz") as z:
            inputs = {k: z[k] for k in z.files}
        fp32 = evaluate(model, inputs, autocast=False)
        emul = evaluate(model, inputs, autocast=True)
        sess = ort.InferenceSession(
            str(EXAMPLES / f"{name}.onnx"), providers=["CPUExecutionProvider"]
        )
        ort_out = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, inputs)))
        ours = neuron_cc_rel_l2(name, "matmult")
        for out in fp32:
            check = rel_l2(fp32[out], ort_out[out])  # the emulator itself, in fp32
            torch_like = rel_l2(emul[out], fp32[out])
            print(
                f"{name:12s} {out:7s} {check:15.2e}  {torch_like:19.3e}  {ours[out]:22.3e}  "
                f"{ours[out] / torch_like:5.2f}"
            )


if __name__ == "__main__":
    main(sys.argv[1:] or ["mlp", "transformer"])

"""Real-size models through neuron-cc's compile and the simulator: ResNet-50 and MobileNetV2 at
224 x 224 (batch 1; their structure, seeded random weights) and MLPs of 2048- and 4096-wide
fp32 layers at batch 512, built with onnx.helper. Per model and option (none, matmult-bf16):
the wall time of importing with the cast passes, of lowering and of simulating, the simulated
latency and the instruction count; with --numerics the simulator computes values and is compared
with the reference interpreter (rel L2).

    .venv/bin/python bench/lowering_sizes.py [--model resnet50] [--numerics] [--json FILE]

Writes bench/results/lowering_sizes.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from bench_common import RESULTS, load_example, write_json
from onnx import TensorProto

mk = load_example("make_examples.py")


def _conv_bn(
    b,
    x: str,
    name: str,
    cin: int,
    cout: int,
    k: int,
    stride: int = 1,
    groups: int = 1,
    act: str | None = "Relu",
) -> str:
    w = b.weight(f"{name}.weight", (cout, cin // groups, k, k))
    h = b.node(
        "Conv",
        [x, w],
        kernel_shape=[k, k],
        strides=[stride, stride],
        pads=[k // 2] * 4,
        group=groups,
    )
    bn = [
        b.const(f"{name}.bn.{n}", v)
        for n, v in (
            ("scale", (1 + 0.1 * b.rng.standard_normal(cout)).astype(np.float32)),
            ("bias", (0.1 * b.rng.standard_normal(cout)).astype(np.float32)),
            ("mean", (0.1 * b.rng.standard_normal(cout)).astype(np.float32)),
            ("var", (1 + 0.1 * b.rng.random(cout)).astype(np.float32)),
        )
    ]
    h = b.node("BatchNormalization", [h, *bn], epsilon=1e-5)
    if act == "Relu":
        return b.node("Relu", [h])
    if act == "Relu6":
        return b.node(
            "Clip",
            [
                h,
                b.const(f"{name}.lo", np.array(0, np.float32)),
                b.const(f"{name}.hi", np.array(6, np.float32)),
            ],
        )
    return h


def _head(b, h: str, c: int, classes: int = 1000):
    h = b.node("Flatten", [b.node("GlobalAveragePool", [h])], axis=1)
    b.node(
        "Gemm",
        [h, b.weight("fc.weight", (classes, c)), b.const("fc.bias", np.zeros(classes, np.float32))],
        transB=1,
    )
    b.nodes[-1].output[0] = "logits"
    return b.model(
        [mk.tensor("image", TensorProto.FLOAT, (1, 3, 224, 224))],
        [mk.tensor("logits", TensorProto.FLOAT, (1, classes))],
    )


def resnet50():
    b = mk.Builder("resnet50", seed=50)
    h = _conv_bn(b, "image", "stem", 3, 64, 7, 2)
    h = b.node("MaxPool", [h], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for stage, (width, blocks, stride) in enumerate(
        ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))
    ):
        for i in range(blocks):
            s = stride if i == 0 else 1
            name = f"l{stage}.{i}"
            y = _conv_bn(b, h, f"{name}.a", cin, width, 1)
            y = _conv_bn(b, y, f"{name}.b", width, width, 3, s)
            y = _conv_bn(b, y, f"{name}.c", width, 4 * width, 1, act=None)
            sc = _conv_bn(b, h, f"{name}.down", cin, 4 * width, 1, s, act=None) if i == 0 else h
            h = b.node("Relu", [b.node("Add", [y, sc])])
            cin = 4 * width
    return _head(b, h, cin), _image()


def mobilenet_v2():
    b = mk.Builder("mobilenet_v2", seed=2)
    h = _conv_bn(b, "image", "stem", 3, 32, 3, 2, act="Relu6")
    cin = 32
    for t, c, n, s in (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ):
        for i in range(n):
            name = f"b{c}.{i}"
            hid = cin * t
            y = _conv_bn(b, h, f"{name}.expand", cin, hid, 1, act="Relu6") if t != 1 else h
            y = _conv_bn(
                b, y, f"{name}.dw", hid, hid, 3, s if i == 0 else 1, groups=hid, act="Relu6"
            )
            y = _conv_bn(b, y, f"{name}.project", hid, c, 1, act=None)
            h = b.node("Add", [y, h]) if (i > 0 or s == 1) and cin == c else y
            cin = c
    h = _conv_bn(b, h, "last", cin, 1280, 1, act="Relu6")
    return _head(b, h, 1280), _image()


def _image():
    return {
        "image": np.random.default_rng(224).standard_normal((1, 3, 224, 224)).astype(np.float32)
    }


def mlp(width: int, batch: int = 512, layers: int = 3):
    b = mk.Builder(f"mlp{width}", seed=width)
    h = "x"
    for i in range(layers):
        h = b.linear(h, f"fc{i}", width, width)
        if i < layers - 1:
            h = b.node("Relu", [h])
    b.nodes[-1].output[0] = "y"
    model = b.model(
        [mk.tensor("x", TensorProto.FLOAT, (batch, width))],
        [mk.tensor("y", TensorProto.FLOAT, (batch, width))],
    )
    return model, {
        "x": np.random.default_rng(width).standard_normal((batch, width)).astype(np.float32)
    }


MODELS = {
    "resnet50": resnet50,
    "mobilenet_v2": mobilenet_v2,
    "mlp2048": lambda: mlp(2048),
    "mlp4096": lambda: mlp(4096),
}


def measure(name: str, numerics: bool) -> list[dict]:
    from neuron_opt.cli import models
    from neuron_opt.cli.metrics import agreement

    model, inputs = MODELS[name]()
    rows, ref32 = [], None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.onnx"
        onnx.save(model, path)
        for mode in ("none", "matmult"):
            t0 = time.perf_counter()
            c = models.compile_onnx(str(path), mode, "bf16")
            t1 = time.perf_counter()
            c.kernel  # lowered on first use
            t2 = time.perf_counter()
            r = models.simulate(c, inputs if numerics else {}, numerics=numerics)
            t3 = time.perf_counter()
            row = {
                "model": name,
                "option": c.option,
                "compile_s": t1 - t0,
                "lower_s": t2 - t1,
                "simulate_s": t3 - t2,
                "numerics": numerics,
                "latency_us": r.makespan_us,
                "instructions": r.instructions,
            }
            if numerics:
                ref = models.reference(c, inputs)
                ref32 = ref if ref32 is None else ref32
                out = next(iter(ref))
                row["sim_vs_interpreter"] = agreement(r.outputs, ref)[out]["rel_l2"]
                row["own_error"] = agreement(ref, ref32)[out]["rel_l2"]
            rows.append(row)
            print(
                f"{name:<13} {c.option:<13} import+passes {row['compile_s']:5.1f} s  lower {row['lower_s']:5.1f} s  "
                f"simulate {row['simulate_s']:6.1f} s  "
                f"latency {row['latency_us']:9.1f} us  {row['instructions']:>7} instr"
                + (
                    f"  sim vs interpreter {row['sim_vs_interpreter']:.1e} (own error {row['own_error']:.1e})"
                    if numerics
                    else ""
                ),
                flush=True,
            )
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--model", action="append", choices=sorted(MODELS), help="repeatable (default: all)"
    )
    p.add_argument(
        "--numerics",
        action="store_true",
        help="also compute values and compare with the interpreter",
    )
    p.add_argument("--json", default=str(RESULTS / "lowering_sizes.json"))
    a = p.parse_args(argv)
    rows = [r for m in (a.model or MODELS) for r in measure(m, a.numerics)]
    write_json(a.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

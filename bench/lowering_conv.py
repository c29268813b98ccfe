"""Depthwise convolution on TensorE vs VectorE: the depthwise layers of MobileNetV2 (3x3),
EfficientNet-B0 (5x5) and ConvNeXt-T (7x7) at 224x224 input, batch 1, lowered by
lower-to-nisa with each depthwise engine and simulated (timing only), without auto-cast (fp32)
and as auto-cast matmult-bf16 leaves them (bf16 operands cast by the loading DMAs, fp32
result). Prints both latencies, which engine wins, and the latency of the lowering's own
choice (DEPTHWISE_ENGINE "auto": a cost-model estimate per block of channels; docs/lowering.md).

    .venv/bin/python bench/lowering_conv.py [--json FILE]

Writes bench/results/lowering_conv.json.
"""

from __future__ import annotations

import argparse
import sys

from bench_common import RESULTS, write_json

# (model, channels, input size, kernel, stride)
LAYERS = (
    ("MobileNetV2", 32, 112, 3, 1), ("MobileNetV2", 96, 112, 3, 2), ("MobileNetV2", 144, 56, 3, 1),
    ("MobileNetV2", 192, 28, 3, 1), ("MobileNetV2", 384, 14, 3, 1), ("MobileNetV2", 960, 7, 3, 1),
    ("EfficientNet-B0", 240, 28, 5, 2), ("EfficientNet-B0", 672, 14, 5, 1),
    ("ConvNeXt-T", 96, 56, 7, 1), ("ConvNeXt-T", 192, 28, 7, 1), ("ConvNeXt-T", 384, 14, 7, 1),
    ("ConvNeXt-T", 768, 7, 7, 1),
)  # fmt: skip
ENGINES = ("tensor", "vector", "auto")


def nt_depthwise(c: int, h: int, k: int, s: int, bf16: bool) -> str:
    p = k // 2
    o = (h + 2 * p - k) // s + 1
    x, w, y = (
        f"tensor<1x{c}x{h}x{h}xf32>",
        f"tensor<{c}x1x{k}x{k}xf32>",
        f"tensor<1x{c}x{o}x{o}xf32>",
    )
    attrs = (
        f"strides = array<i64: {s}, {s}>, pads = array<i64: {p}, {p}, {p}, {p}>, "
        f"dilations = array<i64: 1, 1>, groups = {c} : i64"
    )
    if not bf16:
        body = f"  %y = nt.conv %x, %w {{{attrs}}} : ({x}, {w}) -> {y}\n"
    else:
        xb, wb = x.replace("xf32>", "xbf16>"), w.replace("xf32>", "xbf16>")
        body = (
            f"  %xb = nt.cast %x : {x} to {xb}\n  %wb = nt.cast %w : {w} to {wb}\n"
            f"  %y = nt.conv %xb, %wb {{{attrs}, acc = f32}} : ({xb}, {wb}) -> {y}\n"
        )
    return f"func.func @main(%x: {x}, %w: {w}) -> {y} {{\n{body}  func.return %y : {y}\n}}\n"


def run(text: str, engine: str) -> dict:
    from neuron_opt.cli.common import make_context
    from neuron_opt.dialects.parse import parse_module
    from neuron_opt.lowering import conv
    from neuron_opt.lowering.lower_to_nisa import lower_module
    from neuron_opt.runtime.sim import simulate

    saved, conv.DEPTHWISE_ENGINE = conv.DEPTHWISE_ENGINE, engine
    try:
        kernel = lower_module(parse_module(make_context(), text, "depthwise.mlir"))
    finally:
        conv.DEPTHWISE_ENGINE = saved
    r = simulate(kernel, {}, numerics=False)
    return {
        "latency_us": r.makespan_us,
        "instructions": r.instructions,
        "busy": {e: r.utilization(e) for e in ("tensor", "vector", "scalar")},
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", default=str(RESULTS / "lowering_conv.json"))
    a = p.parse_args(argv)
    rows = []
    print(
        f"{'model':<16} {'layer':<16} {'option':<13} {'TensorE us':>10} {'VectorE us':>10} {'ratio':>6}  faster   auto us"
    )
    for model, c, h, k, s in LAYERS:
        for option in ("none", "matmult-bf16"):
            text = nt_depthwise(c, h, k, s, option != "none")
            res = {e: run(text, e) for e in ENGINES}
            t, v, c_ = (res[e]["latency_us"] for e in ENGINES)
            row = {
                "model": model,
                "channels": c,
                "size": h,
                "kernel": k,
                "stride": s,
                "option": option,
                **{e: res[e] for e in ENGINES},
                "faster": "tensor" if t <= v else "vector",
            }
            row["auto_is_faster"] = c_ <= min(t, v) * 1.001
            rows.append(row)
            layer = f"{c}x{h}x{h} {k}x{k}/{s}"
            print(
                f"{model:<16} {layer:<16} {option:<13} {t:>10.1f} {v:>10.1f} {v / t:>5.2f}x  {row['faster']:<7} "
                f"{c_:>8.1f}"
            )
    wins = {e: sum(r["faster"] == e for r in rows) for e in ENGINES[:2]}
    right = sum(r["auto_is_faster"] for r in rows)
    print(
        f"TensorE faster on {wins['tensor']} of {len(rows)}, VectorE on {wins['vector']}; "
        f"the lowering's own choice (auto) is the faster one on {right}"
    )
    write_json(a.json, {"rows": rows, "wins": wins, "auto_is_faster": right})
    return 0


if __name__ == "__main__":
    sys.exit(main())

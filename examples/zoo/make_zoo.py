"""Build the model zoo: transformers and torch models from configs with seeded random weights
(never a hub download), each exported with both PyTorch exporters (TorchScript at opset 17,
dynamo at opset 18), with seeded inputs and onnxruntime's outputs as the reference.

    python examples/zoo/make_zoo.py                 # tiny configs into examples/zoo/ (committed)
    python examples/zoo/make_zoo.py --real          # realistic sizes into zoo-out/ (make zoo)
    python examples/zoo/make_zoo.py --only bert,resnet

Needs the `zoo` extra (torch==2.13.0 CPU, transformers, onnxscript). Writes per model
NAME_inputs.npz (keys = the ONNX input names, in their ONNX dtypes) and NAME_float64.npz (the
torch model run in float64), per exporter NAME.EXPORTER.onnx and NAME.EXPORTER_outputs.npz
(onnxruntime's), and zoo.json: the manifest listing each export (file, exporter, opset,
inputs, outputs, family, onnxruntime's rel L2 to float64) and each export that failed, with
why. The committed tiny zoo is checked by tests/unit/test_zoo.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # configs only: nothing may reach a model hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
EXPORTERS = {"torchscript": 17, "dynamo": 18}  # exporter -> opset


@dataclass(frozen=True)
class Sizes:
    """Config keyword arguments of a tiny (committed) and a realistic (make zoo) model, plus
    `seq` or `image`; a config class's defaults are its standard size (BertConfig() is
    BERT-base), so a realistic size often gives only what differs."""

    tiny: dict
    real: dict


@dataclass(frozen=True)
class Entry:
    family: str
    build: object  # (config dict) -> (torch module, {input name: array}, [output names])
    sizes: Sizes
    about: str  # what the realistic size is


# ---------------------------------------------------------------------------------------------
# Inputs (seeded numpy, in the dtypes the ONNX model takes)


def _tokens(seed: int, vocab: int, seq: int, with_types: bool = False) -> dict[str, np.ndarray]:
    """Token ids and an attention mask whose last quarter is padding (masks must matter)."""
    g = np.random.default_rng(seed)
    mask = np.ones((1, seq), np.int64)
    mask[:, seq - seq // 4 :] = 0
    out = {"input_ids": g.integers(0, vocab, (1, seq), dtype=np.int64), "attention_mask": mask}
    if with_types:
        types = np.zeros((1, seq), np.int64)
        types[:, seq // 2 :] = 1
        out["token_type_ids"] = types
    return out


def _image(seed: int, size: int, batch: int = 1) -> dict[str, np.ndarray]:
    g = np.random.default_rng(seed)
    return {"pixel_values": g.standard_normal((batch, 3, size, size)).astype(np.float32)}


def _selecting(model, input_names: list[str], output_attrs: list[str]):
    """The model as a module that takes positional tensors and returns the named outputs."""
    import torch

    class Select(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *args):
            out = self.model(**dict(zip(input_names, args)))
            return tuple(getattr(out, a) for a in output_attrs)

    return Select()


def _text(model_cls: str, config_cls: str, seed: int, with_types: bool = False, **fixed):
    """A transformers text model's builder (classes by name: transformers loads lazily)."""

    def build(cfg: dict):
        import transformers

        cfg = dict(cfg, **fixed)
        seq = cfg.pop("seq")
        config = getattr(transformers, config_cls)(**cfg)
        inputs = _tokens(seed, config.vocab_size, seq, with_types)
        out = ["last_hidden_state"]
        return _selecting(getattr(transformers, model_cls)(config), list(inputs), out), inputs, out

    return build


def _calibrate_batch_norm(model, pixel_values: np.ndarray) -> None:
    """Give each BatchNorm unit scale and shift and set its running statistics to those of a
    batch of images, as training would: with the init's statistics (mean 0, variance 1) and
    scales (EfficientNet's are N(0, 0.02)), a deep random CNN's activations shrink layer by
    layer (tiny MobileNetV2 and EfficientNet logits came out near 1e-28 and 1e-23)."""
    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    model.eval()
    for m in norms:
        m.reset_parameters()
        m.momentum = None  # a plain average over the calibration batch
        m.train()
    with torch.no_grad():
        model(pixel_values=torch.from_numpy(pixel_values))
    model.eval()


def _vision(model_cls: str, config_cls: str, seed: int):
    """A transformers image classifier's builder: logits of one seeded image."""

    def build(cfg: dict):
        import transformers

        cfg = dict(cfg)
        size = cfg.pop("image")
        model = getattr(transformers, model_cls)(getattr(transformers, config_cls)(**cfg))
        _calibrate_batch_norm(model, _image(seed + 100, size, batch=8)["pixel_values"])
        return _selecting(model, ["pixel_values"], ["logits"]), _image(seed, size), ["logits"]

    return build


# ---------------------------------------------------------------------------------------------
# The models


def whisper_encoder(cfg):
    """Whisper's encoder: two Conv1d (the second stride 2) + GELU over log-mel frames, then
    sinusoidal positions and pre-norm transformer layers."""
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    config = WhisperConfig(**cfg)
    frames = 2 * config.max_source_positions  # the encoder takes exactly this many frames
    g = np.random.default_rng(31)
    inputs = {
        "input_features": g.standard_normal((1, config.num_mel_bins, frames)).astype(np.float32)
    }
    model = WhisperEncoder(config)
    return (
        _selecting(model, ["input_features"], ["last_hidden_state"]),
        inputs,
        ["last_hidden_state"],
    )


def mlp(cfg):
    """A plain torch MLP: Linear + GELU layers of one width."""
    import torch

    width, depth, batch = cfg["width"], cfg["depth"], cfg["batch"]
    layers = []
    for k in range(depth):
        layers.append(torch.nn.Linear(width, width))
        if k < depth - 1:
            layers.append(torch.nn.GELU())
    model = torch.nn.Sequential(*layers)
    inputs = {"x": np.random.default_rng(41).standard_normal((batch, width)).astype(np.float32)}
    return model, inputs, ["y"]


ZOO: dict[str, Entry] = {
    "bert": Entry(
        "transformer",
        _text("BertModel", "BertConfig", 11, with_types=True),
        Sizes(
            dict(
                vocab_size=128,
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=64,
                max_position_embeddings=64,
                seq=16,
            ),
            dict(seq=128),
        ),
        "BERT-base (12 layers, 768 wide), sequence 128",
    ),
    "distilbert": Entry(
        "transformer",
        _text("DistilBertModel", "DistilBertConfig", 12),
        Sizes(
            dict(
                vocab_size=128,
                dim=32,
                n_layers=2,
                n_heads=2,
                hidden_dim=64,
                max_position_embeddings=64,
                seq=16,
            ),
            dict(seq=128),
        ),
        "DistilBERT-base (6 layers, 768 wide), sequence 128",
    ),
    "gpt2": Entry(
        "transformer",
        _text("GPT2Model", "GPT2Config", 13, use_cache=False),
        Sizes(
            dict(
                vocab_size=128,
                n_embd=32,
                n_layer=2,
                n_head=2,
                n_positions=64,
                bos_token_id=0,
                eos_token_id=0,
                seq=16,
            ),
            dict(seq=128),
        ),
        "GPT-2 small (12 layers, 768 wide), sequence 128",
    ),
    "llama": Entry(
        "transformer",
        _text("LlamaModel", "LlamaConfig", 14, use_cache=False),
        Sizes(
            dict(
                vocab_size=128,
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                intermediate_size=64,
                max_position_embeddings=64,
                seq=16,
            ),
            dict(
                vocab_size=32000,
                hidden_size=768,
                num_hidden_layers=12,
                num_attention_heads=12,
                num_key_value_heads=4,
                intermediate_size=2048,
                max_position_embeddings=2048,
                seq=128,
            ),
        ),
        "a LLaMA of GPT-2 small's size (12 layers, 768 wide, 4 KV heads, vocab 32000), sequence 128",
    ),
    "t5_encoder": Entry(
        "transformer",
        _text("T5EncoderModel", "T5Config", 15, use_cache=False),
        Sizes(
            dict(vocab_size=128, d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2, seq=16),
            dict(
                vocab_size=32128,
                d_model=512,
                d_kv=64,
                d_ff=2048,
                num_layers=6,
                num_heads=8,
                seq=128,
            ),
        ),
        "T5-small's encoder (6 layers, 512 wide), sequence 128",
    ),
    "vit": Entry(
        "vision-transformer",
        _vision("ViTForImageClassification", "ViTConfig", 21),
        Sizes(
            dict(
                image_size=32,
                patch_size=8,
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=64,
                num_labels=10,
                image=32,
            ),
            dict(num_labels=1000, image=224),
        ),
        "ViT-B/16 at 224",
    ),
    "swin": Entry(
        "vision-transformer",
        _vision("SwinForImageClassification", "SwinConfig", 22),
        Sizes(
            dict(
                image_size=32,
                patch_size=2,
                embed_dim=16,
                depths=[1, 1],
                num_heads=[2, 2],
                window_size=4,
                num_labels=10,
                image=32,
            ),
            dict(num_labels=1000, image=224),
        ),
        "Swin-T at 224",
    ),
    "resnet": Entry(
        "cnn",
        _vision("ResNetForImageClassification", "ResNetConfig", 23),
        Sizes(
            dict(
                embedding_size=8,
                hidden_sizes=[8, 16],
                depths=[1, 1],
                layer_type="bottleneck",
                num_labels=10,
                image=32,
            ),
            dict(
                embedding_size=64,
                hidden_sizes=[256, 512, 1024, 2048],
                depths=[3, 4, 6, 3],
                layer_type="bottleneck",
                num_labels=1000,
                image=224,
            ),
        ),
        "ResNet-50 at 224",
    ),
    "mobilenet_v2": Entry(
        "cnn",
        _vision("MobileNetV2ForImageClassification", "MobileNetV2Config", 24),
        Sizes(
            dict(
                depth_multiplier=0.1,
                finegrained_output=False,
                image_size=32,
                num_labels=10,
                image=32,
            ),
            dict(num_labels=1000, image=224),
        ),
        "MobileNetV2 1.0 at 224",
    ),
    "efficientnet": Entry(
        "cnn",
        _vision("EfficientNetForImageClassification", "EfficientNetConfig", 25),
        Sizes(
            dict(
                width_coefficient=0.25,
                depth_coefficient=0.25,
                image_size=32,
                hidden_dim=320,
                kernel_sizes=[3, 3, 5, 3],
                in_channels=[32, 16, 24, 40],
                out_channels=[16, 24, 40, 80],
                strides=[1, 2, 2, 2],
                num_block_repeats=[1, 2, 2, 3],
                expand_ratios=[1, 6, 6, 6],
                num_labels=10,
                image=32,
            ),
            dict(
                width_coefficient=1.0,
                depth_coefficient=1.0,
                image_size=224,
                hidden_dim=1280,
                num_labels=1000,
                image=224,
            ),
        ),
        "EfficientNet-B0 at 224",
    ),
    "convnext": Entry(
        "cnn",
        _vision("ConvNextForImageClassification", "ConvNextConfig", 26),
        Sizes(
            dict(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, num_labels=10, image=32),
            dict(num_labels=1000, image=224),
        ),
        "ConvNeXt-T at 224",
    ),
    "poolformer": Entry(
        "cnn",
        _vision("PoolFormerForImageClassification", "PoolFormerConfig", 27),
        Sizes(
            dict(
                hidden_sizes=[8, 16],
                depths=[1, 1],
                num_encoder_blocks=2,
                num_labels=10,
                patch_sizes=[7, 3],
                strides=[4, 2],
                padding=[2, 1],
                image=32,
            ),
            dict(num_labels=1000, image=224),
        ),
        "PoolFormer-S12 at 224",
    ),
    "whisper_encoder": Entry(
        "audio-transformer",
        whisper_encoder,
        Sizes(
            dict(
                num_mel_bins=16,
                d_model=32,
                encoder_layers=2,
                encoder_attention_heads=2,
                encoder_ffn_dim=64,
                max_source_positions=32,
            ),
            dict(
                num_mel_bins=80,
                d_model=384,
                encoder_layers=4,
                encoder_attention_heads=6,
                encoder_ffn_dim=1536,
                max_source_positions=1500,
            ),
        ),
        "Whisper-tiny's encoder: 80 mel bins x 3000 frames",
    ),
    "mlp": Entry(
        "mlp",
        mlp,
        Sizes(dict(width=64, depth=3, batch=8), dict(width=4096, depth=3, batch=512)),
        "3 layers 4096 wide at batch 512",
    ),
}


# ---------------------------------------------------------------------------------------------
# Export


def _first_line(e: BaseException) -> str:
    """The first line of the root cause (torch.onnx wraps the exporter's error in its own)."""
    while e.__cause__ is not None:
        e = e.__cause__
    text = str(e).strip()
    for line in text.splitlines():
        if line.strip():
            return f"{type(e).__name__}: {line.strip()}"[:400]
    return type(e).__name__


def export(model, inputs: dict, output_names: list[str], path: Path, exporter: str) -> None:
    """Export with one exporter; the file is written whole (one .onnx, weights inside).
    Node metadata (the dynamo exporter's stack traces, two thirds of a tiny model's file) is
    dropped: it is debug text that no consumer reads."""
    import logging

    import onnx
    import torch

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed"
    args = tuple(torch.from_numpy(a) for a in inputs.values())
    tmp = path.with_suffix(".tmp.onnx")
    kwargs = dict(
        input_names=list(inputs), output_names=output_names, opset_version=EXPORTERS[exporter]
    )
    if exporter == "dynamo":
        kwargs.update(dynamo=True, external_data=False, verbose=False)
    else:
        kwargs.update(dynamo=False)
    model.eval()  # the TorchScript exporter puts back the mode it found: set it every time
    try:
        with torch.no_grad():
            torch.onnx.export(model, args, str(tmp), **kwargs)
        proto = onnx.load(str(tmp))
        for node in proto.graph.node:
            del node.metadata_props[:]
        onnx.save(proto, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def onnx_io(path: Path) -> tuple[dict, dict]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    inits = {t.name for t in model.graph.initializer}

    def describe(v):
        tt = v.type.tensor_type
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)).name
        return {"dtype": dtype, "shape": [d.dim_value for d in tt.shape.dim]}

    return (
        {i.name: describe(i) for i in model.graph.input if i.name not in inits},
        {o.name: describe(o) for o in model.graph.output},
    )


def onnxruntime_outputs(path: Path, inputs: dict) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, inputs)))


def float64_outputs(model, inputs: dict, output_names: list[str]) -> dict[str, np.ndarray]:
    """The model run by torch in float64: the exact answer that fp32 engines (onnxruntime, the
    interpreter) approximate. A deep net's fp32 error grows with depth (the tiny MobileNetV2,
    52 convolutions, is 1-2e-5 off in onnxruntime), so tests measure against this."""
    import copy

    import torch

    m64 = copy.deepcopy(model).double().eval()
    args = [
        torch.from_numpy(a.astype(np.float64) if a.dtype.kind == "f" else a)
        for a in inputs.values()
    ]
    with torch.no_grad():
        outs = m64(*args)
    outs = (outs,) if torch.is_tensor(outs) else outs
    return {n: o.numpy() for n, o in zip(output_names, outs)}


def rel_l2(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def _save_npz(path: Path, arrays: dict) -> None:
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def build_one(name: str, real: bool, out: Path, exporters, log) -> list[dict]:
    """Build one model, export it with each exporter, run onnxruntime on each export.
    Returns one manifest record per exporter (with "error" where that exporter failed)."""
    import torch

    entry = ZOO[name]
    cfg = entry.sizes.real if real else entry.sizes.tiny

    def record(exporter: str, **more) -> dict:
        rec = {
            "name": name,
            "family": entry.family,
            "exporter": exporter,
            "opset": EXPORTERS[exporter],
            "size": "real" if real else "tiny",
            **more,
        }
        return rec | {"about": entry.about} if real else rec

    def build():
        torch.manual_seed(1000 + list(ZOO).index(name))
        return entry.build(cfg)

    try:
        model, inputs, output_names = build()
    except Exception as e:  # a config the library rejects: recorded for both exporters
        log(f"{name}: build failed: {_first_line(e)}")
        return [record(x, error=f"build failed: {_first_line(e)}") for x in exporters]
    inputs_file = f"{name}_inputs.npz"
    _save_npz(out / inputs_file, inputs)
    exact_file = f"{name}_float64.npz"
    try:
        exact = float64_outputs(model, inputs, output_names)
        _save_npz(out / exact_file, exact)
    except Exception as e:  # some models do not run in float64: compare with onnxruntime only
        exact, exact_file = None, None
        log(f"{name}: no float64 reference ({_first_line(e)})")
    records = []
    for exporter in exporters:
        rec = record(exporter, inputs_file=inputs_file)
        path = out / f"{name}.{exporter}.onnx"
        try:
            # The same seeded model, fresh for each exporter: TorchScript tracing can change a
            # module (Swin keeps a traced tensor as its last stage's window size), which the
            # dynamo exporter then fails on.
            model = build()[0] if records else model
            export(model, inputs, output_names, path, exporter)
        except Exception as e:  # the exporter's own failure: recorded, not hidden
            rec["error"] = f"export failed: {_first_line(e)}"
            path.unlink(missing_ok=True)
            records.append(rec)
            log(f"{name} {exporter}: {rec['error']}")
            continue
        try:
            ref = onnxruntime_outputs(path, inputs)
        except Exception as e:
            rec["error"] = f"onnxruntime cannot run the export: {_first_line(e)}"
            records.append(rec)
            log(f"{name} {exporter}: {rec['error']}")
            continue
        outputs_file = f"{name}.{exporter}_outputs.npz"
        _save_npz(out / outputs_file, ref)
        ins, outs = onnx_io(path)
        rec.update(
            file=path.name,
            outputs_file=outputs_file,
            inputs=ins,
            outputs=outs,
            bytes=path.stat().st_size,
        )
        if exact is not None:
            rec["float64_file"] = exact_file
            rec["onnxruntime_vs_float64"] = {k: rel_l2(ref[k], exact[k]) for k in ref}
        records.append(rec)
    return records


def main(argv=None) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", action="store_true", help="realistic sizes (default: tiny configs)")
    ap.add_argument(
        "--out", type=Path, help="output folder (default: examples/zoo, or zoo-out with --real)"
    )
    ap.add_argument("--only", help="comma-separated model names (default: all)")
    ap.add_argument(
        "--exporters",
        default=",".join(EXPORTERS),
        help="comma-separated exporters (default: torchscript,dynamo)",
    )
    args = ap.parse_args(argv)
    out = args.out or (ROOT / "zoo-out" if args.real else HERE)
    names = args.only.split(",") if args.only else list(ZOO)
    exporters = args.exporters.split(",")
    for n in names:
        if n not in ZOO:
            print(
                f"make_zoo: error: unknown model '{n}' (models: {', '.join(ZOO)})", file=sys.stderr
            )
            return 1
    for e in exporters:
        if e not in EXPORTERS:
            print(
                f"make_zoo: error: unknown exporter '{e}' (exporters: {', '.join(EXPORTERS)})",
                file=sys.stderr,
            )
            return 1
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "zoo.json"
    # A partial rebuild (--only) keeps the other models' records.
    kept = []
    if manifest_path.exists() and args.only:
        kept = [
            r for r in json.loads(manifest_path.read_text())["models"] if r["name"] not in names
        ]
    console = Console(stderr=True)
    records: list[dict] = []
    t_start = time.perf_counter()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as prog:
        task = prog.add_task("zoo", total=len(names))
        for n in names:
            prog.update(
                task, description=f"{n}: build, export ({', '.join(exporters)}), onnxruntime"
            )
            records += build_one(
                n,
                args.real,
                out,
                exporters,
                lambda m: prog.console.print(m, markup=False, soft_wrap=True),
            )
            prog.advance(task)
    import onnx
    import onnxruntime
    import torch
    import transformers

    manifest = {
        "size": "real" if args.real else "tiny",
        "made_by": "examples/zoo/make_zoo.py" + (" --real" if args.real else ""),
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
        "models": sorted(kept + records, key=lambda r: (list(ZOO).index(r["name"]), r["exporter"])),
    }
    tmp = manifest_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, manifest_path)
    ok = sum("error" not in r for r in records)
    console.print(
        f"{ok} of {len(records)} exports written to {out} in {time.perf_counter() - t_start:.0f} s; "
        f"manifest {manifest_path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

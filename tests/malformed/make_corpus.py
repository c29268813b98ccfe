"""Write the binary members of the malformed-input corpus (tests/malformed/corpus/): ONNX
models built with onnx.helper, .npz input files and binary garbage. The .mlir members are
plain text, committed as written. Deterministic: rerunning rewrites the same bytes.

    .venv/bin/python tests/malformed/make_corpus.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

CORPUS = Path(__file__).resolve().parent / "corpus"
OUT = CORPUS  # where main() writes; test_malformed.py points it elsewhere to compare


def _model(nodes, inputs, outputs, initializers=(), check=True) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if check:
        onnx.checker.check_model(model)
    return model


def _save(model: onnx.ModelProto, name: str) -> None:
    (OUT / name).write_bytes(model.SerializeToString())


def _npz(name: str, **arrays) -> None:
    # np.savez adds a timestamp-free zip, so the bytes are stable run to run.
    with open(OUT / name, "wb") as f:
        np.savez(f, **arrays)


def main(out: Path | None = None) -> None:
    global OUT
    OUT = Path(out) if out is not None else CORPUS
    OUT.mkdir(exist_ok=True)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])

    # A valid model for the .npz cases (neuron-cc eval) and the output-path cases.
    _save(_model([helper.make_node("Relu", ["x"], ["y"], name="relu_0")], [x], [y]), "good.onnx")

    # An op the importer does not support (Sin is an ONNX op; nt has no sin).
    _save(_model([helper.make_node("Sin", ["x"], ["y"], name="sin_0")], [x], [y]), "unsupported_op.onnx")

    # A model the importer takes and the target cannot run: int64 arithmetic on a value beyond
    # the 32-bit integers of the NC-v2 engines. run/sweep name the node.
    c = helper.make_tensor("c", TensorProto.INT64, [2, 4], np.full(8, 2**40, np.int64))
    _save(_model([helper.make_node("Cast", ["x"], ["xi"], name="cast_0", to=TensorProto.INT64),
                  helper.make_node("Add", ["xi", "c"], ["s"], name="add_0"),
                  helper.make_node("Cast", ["s"], ["y"], name="cast_1", to=TensorProto.FLOAT)],
                 [x], [y], [c]),
          "no_lowering.onnx")

    # A dynamic batch dimension.
    xd = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    yd = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    _save(_model([helper.make_node("Relu", ["x"], ["y"], name="relu_0")], [xd], [yd]), "dynamic_dim.onnx")

    # A node reading an initializer that is not there (the checker rejects this; the importer
    # must say which node and which name).
    _save(_model([helper.make_node("Add", ["x", "bias"], ["y"], name="add_bias")], [x], [y], check=False),
          "missing_initializer.onnx")

    # Not ONNX: text and random bytes named .onnx.
    (OUT / "not_onnx.onnx").write_bytes(b"this is not a protobuf\n")
    (OUT / "garbage.onnx").write_bytes(np.random.default_rng(7).integers(0, 256, 512, dtype=np.uint8).tobytes())

    # Binary garbage given to neuron-opt: NUL bytes, and bytes that are not UTF-8.
    (OUT / "garbage.mlir").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    (OUT / "latin1.mlir").write_bytes("func.func @main() { // caf\xe9\n}\n".encode("latin-1"))

    # Inputs for good.onnx (x: float32 2x4): wrong shape, wrong dtype, missing, not an npz.
    _npz("inputs_ok.npz", x=np.zeros((2, 4), np.float32))
    _npz("inputs_wrong_shape.npz", x=np.zeros((4, 2), np.float32))
    _npz("inputs_wrong_dtype.npz", x=np.zeros((2, 4), np.float64))
    _npz("inputs_missing.npz", z=np.zeros((2, 4), np.float32))
    _npz("inputs_extra.npz", x=np.zeros((2, 4), np.float32), x2=np.zeros((2, 4), np.float32))
    (OUT / "inputs_not_npz.npz").write_bytes(b"x = [1, 2, 3]\n")


if __name__ == "__main__":
    main()

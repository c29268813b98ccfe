"""Write the binary members of the malformed-input corpus (tests/malformed/corpus/): ONNX
models built with onnx.helper, .npz input files and binary garbage. The .mlir members are
plain text, committed as written. Deterministic: rerunning rewrites the same bytes.

    .venv/bin/python tests/malformed/make_corpus.py
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, external_data_helper, helper, numpy_helper

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


def _zip(name: str, members: dict[str, bytes]) -> None:
    """A zip written member by member (fixed timestamps: the bytes are stable run to run)."""
    with zipfile.ZipFile(OUT / name, "w", zipfile.ZIP_DEFLATED) as z:
        for member, data in members.items():
            z.writestr(zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0)), data)


def _npy(
    array: np.ndarray | None = None, *, shape=None, dtype="<f4", data: bytes | None = None
) -> bytes:
    """.npy bytes: an array's, or a header declaring `shape` followed by `data` (a lying file)."""
    f = io.BytesIO()
    if array is not None:
        np.lib.format.write_array(f, array, allow_pickle=True)
        return f.getvalue()
    np.lib.format.write_array_header_1_0(
        f, {"descr": dtype, "fortran_order": False, "shape": shape}
    )
    return f.getvalue() + (data or b"")


def main(out: Path | None = None) -> None:
    global OUT
    OUT = Path(out) if out is not None else CORPUS
    OUT.mkdir(exist_ok=True)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])

    # A valid model for the .npz cases (neuron-cc eval) and the output-path cases.
    _save(_model([helper.make_node("Relu", ["x"], ["y"], name="relu_0")], [x], [y]), "good.onnx")

    # An op the importer does not support (Sin is an ONNX op; nt has no sin).
    _save(
        _model([helper.make_node("Sin", ["x"], ["y"], name="sin_0")], [x], [y]),
        "unsupported_op.onnx",
    )

    # A model the importer takes and the target cannot run: int64 arithmetic on a value beyond
    # the 32-bit integers of the NC-v2 engines. run/sweep name the node.
    c = helper.make_tensor("c", TensorProto.INT64, [2, 4], np.full(8, 2**40, np.int64))
    _save(
        _model(
            [
                helper.make_node("Cast", ["x"], ["xi"], name="cast_0", to=TensorProto.INT64),
                helper.make_node("Add", ["xi", "c"], ["s"], name="add_0"),
                helper.make_node("Cast", ["s"], ["y"], name="cast_1", to=TensorProto.FLOAT),
            ],
            [x],
            [y],
            [c],
        ),
        "no_lowering.onnx",
    )

    # A dynamic batch dimension.
    xd = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    yd = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    _save(
        _model([helper.make_node("Relu", ["x"], ["y"], name="relu_0")], [xd], [yd]),
        "dynamic_dim.onnx",
    )

    # A node reading an initializer that is not there (the checker rejects this; the importer
    # must say which node and which name).
    _save(
        _model(
            [helper.make_node("Add", ["x", "bias"], ["y"], name="add_bias")], [x], [y], check=False
        ),
        "missing_initializer.onnx",
    )

    # Not ONNX: text and random bytes named .onnx.
    (OUT / "not_onnx.onnx").write_bytes(b"this is not a protobuf\n")
    (OUT / "garbage.onnx").write_bytes(
        np.random.default_rng(7).integers(0, 256, 512, dtype=np.uint8).tobytes()
    )

    # Binary garbage given to neuron-opt: NUL bytes, and bytes that are not UTF-8.
    (OUT / "garbage.mlir").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    (OUT / "latin1.mlir").write_bytes("func.func @main() { // caf\xe9\n}\n".encode("latin-1"))

    # Inputs for good.onnx (x: float32 2x4): wrong shape, wrong dtype, missing, not an npz.
    _npz("inputs_ok.npz", x=np.zeros((2, 4), np.float32))
    _npz("inputs_wrong_shape.npz", x=np.zeros((4, 2), np.float32))
    _npz("inputs_wrong_dtype.npz", x=np.zeros((2, 4), np.int32))
    _npz("inputs_missing.npz", z=np.zeros((2, 4), np.float32))
    _npz("inputs_extra.npz", x=np.zeros((2, 4), np.float32), x2=np.zeros((2, 4), np.float32))
    (OUT / "inputs_not_npz.npz").write_bytes(b"x = [1, 2, 3]\n")

    # -- hostile inputs (.npz/.npy given as --inputs or named as weights) ----------------------
    ok = np.zeros((2, 4), np.float32)
    (OUT / "inputs_plain.npy").write_bytes(_npy(ok))  # a .npy where an .npz belongs
    _zip("inputs_huge_header.npz", {"x.npy": _npy(shape=(10**13,))})  # 236 bytes, 40 TB declared
    _zip("inputs_non_npy_member.npz", {"x.npy": _npy(ok), "notes.txt": b"hello\n"})
    _zip("inputs_object.npz", {"x.npy": _npy(np.array([[1, "a"], [None, 2.0]], dtype=object))})
    _zip("inputs_truncated_member.npz", {"x.npy": _npy(shape=(2, 4), data=b"\0" * 8)})
    _zip("inputs_trailing_data.npz", {"x.npy": _npy(ok) + b"\0" * 8})
    _npz("weights_ok.npz", w=np.ones((2, 4), np.float32))
    _zip("weights_object.npz", {"w.npy": _npy(np.array([[1, "a"], [None, 2.0]], dtype=object))})
    _zip("weights_truncated.npz", {"w.npy": _npy(shape=(2, 4), data=b"\0" * 16)})

    # -- hostile ONNX models ------------------------------------------------------------------
    big = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [70000, 70000])]
    shape = numpy_helper.from_array(np.array([70000, 70000], np.int64), "s")
    _save(
        _model(
            [
                helper.make_node("ConstantOfShape", ["s"], ["c"], name="cos"),
                helper.make_node("Add", ["x", "c"], ["y"], name="add"),
            ],
            big,
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [70000, 70000])],
            [shape],
        ),
        "constant_of_shape_huge.onnx",
    )
    bounds = [
        numpy_helper.from_array(np.array(v, np.int64), n)
        for v, n in ((0, "start"), (3_000_000_000, "limit"), (1, "delta"))
    ]
    r = helper.make_tensor_value_info("r", TensorProto.INT64, [3_000_000_000])
    _save(
        _model(
            [helper.make_node("Range", ["start", "limit", "delta"], ["r"], name="range")],
            [x],
            [r],
            bounds,
            check=False,
        ),
        "range_huge.onnx",
    )
    w = numpy_helper.from_array(np.ones((2, 4), np.float32), "w")
    w.raw_data = w.raw_data + b"\0" * 8
    _save(
        _model(
            [helper.make_node("Add", ["x", "w"], ["y"], name="add_w")], [x], [y], [w], check=False
        ),
        "raw_data_longer.onnx",
    )
    for name, location, offset in (
        ("external_missing.onnx", "nowhere.bin", None),
        ("external_outside.onnx", "../../../etc/passwd", None),
        ("external_bad_offset.onnx", "inputs_ok.npz", 1 << 40),
    ):
        e = onnx.TensorProto(
            name="w", data_type=TensorProto.FLOAT, dims=[2, 4], raw_data=b"\0" * 32
        )
        external_data_helper.set_external_data(e, location, offset=offset, length=32)
        e.data_location = TensorProto.EXTERNAL
        e.ClearField("raw_data")
        _save(
            _model(
                [helper.make_node("Add", ["x", "w"], ["y"], name="add_w")],
                [x],
                [y],
                [e],
                check=False,
            ),
            name,
        )
    # If nodes whose then-branches nest 200 deep, encoded by hand: onnx.helper cannot build
    # past protobuf's decode limit of 100, and the importer must not recurse per level.
    _write_nested_ifs(200, "deep_subgraphs.onnx")
    # A node name that would forge a line and drive the terminal if echoed raw.
    _save(
        _model(
            [helper.make_node("Sin", ["x"], ["y"], name="sin\nfake.onnx:\x1b]0;pwned\x07")],
            [x],
            [y],
        ),
        "control_chars.onnx",
    )


def _field(num: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _write_nested_ifs(depth: int, name: str) -> None:
    vi = helper.make_tensor_value_info
    leaf = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["y"], name="neg")],
        "leaf",
        [],
        [vi("y", TensorProto.FLOAT, [2])],
    ).SerializeToString()
    out_y = vi("y", TensorProto.FLOAT, [2]).SerializeToString()
    graph_attr = _varint(20 << 3) + _varint(onnx.AttributeProto.GRAPH)  # AttributeProto.type
    g = leaf
    for i in range(depth):  # GraphProto{node: If{then_branch: g, else_branch: leaf}, output: y}
        node = (
            _field(1, b"c")
            + _field(2, b"y")
            + _field(3, f"if{i}".encode())
            + _field(4, b"If")
            + _field(5, _field(1, b"then_branch") + _field(6, g) + graph_attr)
            + _field(5, _field(1, b"else_branch") + _field(6, leaf) + graph_attr)
        )
        g = _field(1, node) + _field(2, f"g{i}".encode()) + _field(12, out_y)
    g += _field(11, vi("c", TensorProto.BOOL, []).SerializeToString())
    model = helper.make_model(
        helper.make_graph([], "g", [], []), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    model.ClearField("graph")
    (OUT / name).write_bytes(model.SerializeToString() + _field(7, g))  # ModelProto.graph = 7


if __name__ == "__main__":
    main()

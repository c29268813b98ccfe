"""ONNX -> nt: `import_onnx` builds `func.func @main` from an ONNX model, and `save_compiled`
writes the IR and its weights (.npz) atomically.

Every problem with the model is one CompileError located at `MODEL: node NAME (OpType)`:
unsupported ops, dtypes or attribute values (`Unsupported`), dynamic shapes, missing
initializers, models onnx.checker rejects, and files that are not ONNX at all.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import cast

import numpy as np
import onnx
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, ModuleOp, StringAttr
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Block, Region
from xdsl.printer import Printer

from neuron_opt import memory
from neuron_opt.diagnostics import CompileError, onnx_node_where
from neuron_opt.dialects.nt import NAME_ATTR, WEIGHTS_ATTR
from neuron_opt.dialects.types import type_name
from neuron_opt.importers.onnx_fold import NOT_FOLDABLE, Env, fold, fold_budget
from neuron_opt.importers.onnx_node import NodeCtx, Unsupported, Value
from neuron_opt.importers.onnx_ops import lookup, supported_ops
from neuron_opt.importers.onnx_types import (
    SUPPORTED_NAMES,
    declared_bytes,
    initializer_array,
    nt_element,
    onnx_type_name,
    tensor_type,
)
from neuron_opt.npz import DIGEST_ATTR, file_digest, read_bounded, write_npz
from neuron_opt.outputs import atomic_output

__all__ = [
    "Unsupported",
    "import_onnx",
    "load_model",
    "save_compiled",
    "static_inputs",
    "supported_ops",
]

_DEFAULT_DOMAINS = ("", "ai.onnx")


def load_model(
    model_or_path, label: str | None = None, validate: bool = False
) -> tuple[onnx.ModelProto, str]:
    """The model and the label its errors use (the path as given, else `label` or
    `model.onnx` for a ModelProto). With `validate`, also the checks `import_onnx` starts
    with (pass it `validated=True` then)."""
    if isinstance(model_or_path, onnx.ModelProto):
        model, label = model_or_path, label or "model.onnx"
        if validate:
            _validate(model, label)
        return model, label
    path = os.fspath(model_or_path)
    data = read_bounded(path, "model", regular=True)  # onnxruntime opens it again by name
    try:
        model = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf's DecodeError and friends
        if "depth" in str(e).lower():  # protobuf's own nesting limit (graphs inside If/Loop nodes)
            raise CompileError(
                "the model nests subgraphs deeper than protobuf reads (100 levels)", path
            ) from None
        raise CompileError(f"not an ONNX model ({type(e).__name__})", path) from None
    if not model.ir_version or not model.HasField("graph"):
        raise CompileError("not an ONNX model (no IR version or graph)", path)
    external = [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        _check_external(external, Path(path).parent, path)
        try:
            onnx.load_external_data_for_model(model, str(Path(path).parent))
        except Exception as e:  # OSError, onnx's ValidationError, ValueError on bad offsets...
            detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CompileError(f"cannot read external weights: {detail}", path) from None
    if validate:
        # onnx.checker takes a serialized model: the file's own bytes, unless external data
        # was loaded into the model (serializing a large model back costs more than reading it)
        _validate(model, path, None if external else data)
    return model, path


def _validate(model: onnx.ModelProto, label: str, data: bytes | None = None) -> None:
    """Ops known at the model's opset, inputs defined (located at their node), then
    onnx.checker (on `data`, the model serialized, when given)."""
    opset = model_opset(model, label)
    _prescan(model, opset, label)
    _check(model if data is None else data, label)


def _check_external(tensors, base: Path, label: str) -> None:
    """Before onnx reads external data: each file lies in the model's directory and is a regular
    file (a FIFO would hang), and each tensor fits the memory budget."""
    root = base.resolve()
    for t in tensors:
        where = f"{label}: initializer {t.name}"
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        target = (root / loc).resolve()
        if not loc or not target.is_relative_to(root) or target == root:
            raise CompileError(
                f"external data location '{loc}' is not a file in the model's directory", where
            )
        try:
            st = target.stat()
        except OSError as e:
            raise CompileError(
                f"cannot read external weights '{loc}': {e.strerror}", where
            ) from None
        if not stat.S_ISREG(st.st_mode):
            raise CompileError(f"cannot read external weights '{loc}': not a regular file", where)
        memory.check(declared_bytes(t), f"initializer {t.name}", where)


def _where(label: str, node: onnx.NodeProto) -> str:
    return onnx_node_where(
        label, node.name or (node.output[0] if node.output else "?"), node.op_type
    )


def model_opset(model: onnx.ModelProto, label: str) -> int:
    for imp in model.opset_import:
        if imp.domain in _DEFAULT_DOMAINS:
            latest = onnx.defs.onnx_opset_version()
            if imp.version > latest:
                raise Unsupported(
                    f"opset {imp.version} is newer than this onnx supports ({latest})", label
                )
            return int(imp.version)
    raise CompileError("the model imports no default-domain ONNX opset", label)


def _since_version(node: onnx.NodeProto, opset: int, where: str) -> int:
    if node.domain not in _DEFAULT_DOMAINS:
        raise Unsupported(
            f"op {node.domain}.{node.op_type} is not supported (custom domain)", where
        )
    try:
        return onnx.defs.get_schema(node.op_type, opset, "").since_version
    except onnx.defs.SchemaError:
        raise Unsupported(f"{node.op_type} is not an ONNX op at opset {opset}", where) from None


def _prescan(model: onnx.ModelProto, opset: int, label: str) -> None:
    """Unknown ops and undefined inputs, located at their node (onnx.checker would report
    these less precisely)."""
    g = model.graph
    defined = {t.name for t in g.initializer} | {i.name for i in g.input}
    defined |= {t.values.name for t in g.sparse_initializer}
    for node in g.node:
        where = _where(label, node)
        _since_version(node, opset, where)
        for name in node.input:
            if name and name not in defined:
                raise CompileError(
                    f"input '{name}' is not a graph input, an initializer or an earlier node's "
                    "output (a missing initializer?)",
                    where,
                )
        defined.update(n for n in node.output if n)


def _check(model: onnx.ModelProto | bytes, label: str) -> None:
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        text = str(e)
        first = text.strip().splitlines()[0] if text.strip() else "invalid model"
        m = re.search(r"Name: (\S*) OpType: (\S+)", text)
        where = f"{label}: node {m.group(1) or '?'} ({m.group(2)})" if m else label
        raise CompileError(f"invalid model: {first}", where) from None
    except ValueError as e:  # e.g. a proto over 2 GB, which the checker cannot take in memory
        if "2GB" not in str(e) and "2 GB" not in str(e):
            raise CompileError(f"invalid model: {e}", label) from None


def _input_type(inp: onnx.ValueInfoProto, where: str):
    t = inp.type
    if t.WhichOneof("value") != "tensor_type":
        raise Unsupported(f"input '{inp.name}' is not a tensor ({t.WhichOneof('value')})", where)
    code = t.tensor_type.elem_type
    elt = nt_element(code)
    if elt is None:
        raise Unsupported(
            f"input '{inp.name}' has element type {onnx_type_name(code)}, which nt lacks "
            f"(it has {SUPPORTED_NAMES})",
            where,
        )
    if not t.tensor_type.HasField("shape"):
        raise Unsupported(f"input '{inp.name}' has no shape (nt needs static shapes)", where)
    dims = []
    for i, d in enumerate(t.tensor_type.shape.dim):
        if d.HasField("dim_value") and d.dim_value >= 0:
            dims.append(d.dim_value)
        else:
            sym = f" ('{d.dim_param}')" if d.dim_param else ""
            raise Unsupported(
                f"input '{inp.name}' has a dynamic dim {i}{sym}: nt needs static shapes "
                "(export with fixed sizes)",
                where,
            )
    return tensor_type(elt, dims)


def static_inputs(model: onnx.ModelProto) -> set[str]:
    """Names the importer needs as constants (shapes, axes, pads, bounds, ...): graph inputs
    among them must be bound (e.g. from test data) for the model to import."""
    opset = model_opset(model, "model.onnx")
    names: set[str] = set()
    for node in model.graph.node:
        try:
            since = onnx.defs.get_schema(node.op_type, opset, "").since_version
        except onnx.defs.SchemaError:
            continue
        entry = lookup(node.op_type, since)
        if entry is not None:
            names.update(node.input[i] for i in entry[1] if i < len(node.input) and node.input[i])
    return names


def import_onnx(
    model_or_path,
    weights_name: str | None = None,
    *,
    bind: dict[str, np.ndarray] | None = None,
    label: str | None = None,
    validated: bool = False,
) -> tuple[ModuleOp, dict[str, np.ndarray]]:
    """Import an ONNX model (a ModelProto or a path) into a module holding `func.func @main`.

    Returns the module and the weights to save in the .npz its `nt.weights` attribute names
    (`weights_name`, by default the model's stem + .npz). Graph inputs named in `bind` become
    constants instead of arguments. `label` names a ModelProto in errors (its file's path).
    `validated`: the ModelProto comes from `load_model(..., validate=True)`.
    """
    model, label = load_model(model_or_path, label, validate=not validated)
    opset = model_opset(model, label)
    g = model.graph
    bind = bind or {}

    first_use: dict[str, onnx.NodeProto] = {}
    for node in g.node:
        for name in node.input:
            first_use.setdefault(name, node)

    def where_of(name: str) -> str:
        node = first_use.get(name)
        return _where(label, node) if node is not None else f"{label}: input {name}"

    if g.sparse_initializer:
        raise Unsupported("sparse initializers", where_of(g.sparse_initializer[0].values.name))
    inits = {t.name: t for t in g.initializer}
    arg_names, arg_types = [], []
    for inp in g.input:
        if inp.name in inits or inp.name in bind:
            continue  # IR < 4 also lists initializers as inputs: they stay constants
        arg_names.append(inp.name)
        arg_types.append(_input_type(inp, where_of(inp.name)))

    block = Block(arg_types=arg_types)
    env = Env(block)
    env.used = {n for node in g.node for n in node.input if n} | {o.name for o in g.output}
    for name, arg in zip(arg_names, block.args):
        env.set_value(name, cast(Value, arg))  # typed by _input_type: a tensor
    for name, t in inits.items():
        env.set_array(name, initializer_array(t, where_of(name)))
    for name, arr in bind.items():
        env.set_array(name, np.asarray(arr))

    for node in g.node:
        _import_node(node, env, opset, _where(label, node))

    results, res_names = [], []
    for out in g.output:
        producer = next((n for n in g.node if out.name in n.output), None)
        where = _where(label, producer) if producer is not None else f"{label}: output {out.name}"
        v = env.ssa(out.name, lambda msg, w=where: (_ for _ in ()).throw(Unsupported(msg, w)))
        _check_declared(out, v.type, where)
        results.append(v)
        res_names.append(out.name)
    block.add_op(ReturnOp(*results))

    def names_attr(names):
        return ArrayAttr([DictionaryAttr({NAME_ATTR: StringAttr(n)}) for n in names])

    func = FuncOp(
        "main",
        (arg_types, [v.type for v in results]),
        Region(block),
        arg_attrs=names_attr(arg_names),
        res_attrs=names_attr(res_names),
    )
    module = ModuleOp([func])
    if env.weights:
        default = Path(label).stem + ".npz" if label != "model.onnx" else "model.npz"
        module.attributes[WEIGHTS_ATTR] = StringAttr(weights_name or default)
    return module, env.weights


def _import_node(node: onnx.NodeProto, env: Env, opset: int, where: str) -> None:
    since = _since_version(node, opset, where)
    entry = lookup(node.op_type, since)
    present = [n for n in node.input if n]
    if node.op_type not in NOT_FOLDABLE and all(env.known(n) is not None for n in present):
        fold_budget(node, [env.known(n) if n else None for n in node.input], where)
        try:
            outs = fold(node, opset, [env.known(n) if n else None for n in node.input])
        except Exception as e:  # the reference rejects it: the handler (if any) decides
            if entry is None:
                raise Unsupported(
                    f"{node.op_type} on constants could not be evaluated at import: {e}", where
                ) from None
        else:
            for name, arr in zip(node.output, outs):
                if name:
                    memory.check(arr.nbytes, f"{node.op_type}'s output", where)
                    env.set_array(name, arr)
            return
    if entry is None:
        raise Unsupported(f"{node.op_type} is not supported by the nt importer", where)
    handler, _static = entry
    fold_budget(node, [env.known(n) if n else None for n in node.input], where)
    outs = handler(NodeCtx(node, where, env, opset, since))
    for k, name in enumerate(node.output):
        if not name:
            continue
        r = outs[k] if k < len(outs) else None
        if r is None:
            if name in env.used:
                raise Unsupported(
                    f"output {k} ('{name}') of {node.op_type} is not supported", where
                )
            continue
        if isinstance(r, np.ndarray):
            env.set_array(name, r)
        else:
            env.set_value(name, r)


def _check_declared(out: onnx.ValueInfoProto, t, where: str) -> None:
    """The model's declared output type, where it gives one, must be what was built."""
    tt = out.type.tensor_type if out.type.WhichOneof("value") == "tensor_type" else None
    if tt is None:
        return
    if tt.elem_type:
        elt = nt_element(tt.elem_type)
        if elt is None:
            raise Unsupported(
                f"output '{out.name}' has element type {onnx_type_name(tt.elem_type)}, which nt "
                f"lacks (it has {SUPPORTED_NAMES})",
                where,
            )
        if elt != t.element_type:
            raise CompileError(
                f"output '{out.name}' is declared {onnx_type_name(tt.elem_type)} but computes "
                f"{type_name(t.element_type)}",
                where,
            )
    if tt.HasField("shape"):
        dims = tt.shape.dim
        got = t.get_shape()
        if len(dims) != len(got) or any(
            d.HasField("dim_value") and d.dim_value != g for d, g in zip(dims, got)
        ):
            declared = [
                d.dim_value if d.HasField("dim_value") else d.dim_param or "?" for d in dims
            ]
            raise CompileError(
                f"output '{out.name}' is declared with shape {declared} but computes {list(got)}",
                where,
            )


def save_compiled(module: ModuleOp, weights: dict[str, np.ndarray], out_mlir_path) -> None:
    """Write OUT.mlir and OUT.npz (the weights) atomically; the module's `nt.weights` is set to
    the .npz's name, which loaders resolve relative to the IR file, and `nt.weights_digest` to
    the .npz's sha256, so that a loader can tell a pair written by two compiles apart."""
    out = Path(out_mlir_path)
    npz = out.with_suffix(".npz")
    module.attributes[WEIGHTS_ATTR] = StringAttr(npz.name)
    # Both are written before either is renamed (the weights first), so a failure in either
    # leaves neither; a kill or a concurrent compile between the two renames can pair new
    # weights with other IR, which the digest then reports.
    with atomic_output(out) as ir, atomic_output(npz, "wb") as w:
        write_npz(w, weights)
        w.flush()
        module.attributes[DIGEST_ATTR] = StringAttr(file_digest(w.fileno()))
        Printer(stream=ir).print_op(module)
        ir.write("\n")

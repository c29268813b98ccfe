"""The reference interpreter for `nt` modules: the project's numerical oracle.

Built on xDSL's interpreter framework (one `@impl` per op, `func` from xDSL's own FuncFunctions),
with numpy + ml_dtypes. Values are held in their dtype (tf32 as float32 with 13 low mantissa bits
clear); every op upcasts its inputs exactly, computes at float32 precision or better and rounds
its result once, RNE, to the result element type: contractions are numpy float32 matmuls;
reductions, softmax and the norms compute in float64 inside (reference_nn.py). It shares no code
with what it checks except `dialects/` and the package root's leaves.

    outputs = run_module(module, {"x": x}, base_dir="model_dir")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from xdsl.dialects.builtin import Float8E4M3Type, FloatTF32Type, ModuleOp, TensorType
from xdsl.dialects.func import FuncOp
from xdsl.interpreter import (
    Interpreter,
    InterpreterFunctions,
    OpImplResult,
    PythonValues,
    ReturnedValues,
    impl,
    register_impls,
)
from xdsl.interpreters.func import FuncFunctions
from xdsl.ir import Attribute, Operation, Region

from neuron_opt.dialects import nt
from neuron_opt.dialects.io_names import input_names, output_names
from neuron_opt.dialects.types import is_bool, is_float, numpy_dtype, round_to, type_name
from neuron_opt.blas import single_threaded
from neuron_opt.diagnostics import CompileError, op_error
from neuron_opt.npz import open_weights
from neuron_opt.runtime import reference_elementwise as ew
from neuron_opt.runtime import reference_move as mv
from neuron_opt.runtime import reference_nn as nn

__all__ = ["Reference", "input_names", "output_names", "run_module", "to_element_type"]


# ---------------------------------------------------------------------------------------------
# Values coming in from outside (inputs, weights) -> the IR element type


def to_element_type(value: Any, elt: Attribute, where: str, saturate: bool = False) -> np.ndarray:
    """`value` as an array of `elt`: floats rounded RNE (saturating for fp8 when asked),
    integers range-checked. Raises CompileError at `where` when the dtype cannot be cast."""
    arr = np.asarray(value)
    want = type_name(elt)
    if ew.is_float_array(arr):
        if not is_float(elt):
            raise CompileError(f"expected {want} data, found {arr.dtype} (floats would be truncated)", where)
        if arr.dtype == numpy_dtype(elt) and not saturate and not isinstance(elt, FloatTF32Type):
            return arr  # already of the type (op impls never write into their operands)
        return round_to(arr, elt, saturate)
    if arr.dtype.kind == "V":
        raise CompileError(
            f"expected {want} data, found raw {arr.dtype} (np.savez drops ml_dtypes types: "
            "store bf16/fp8 data as float32)", where)
    if arr.dtype.kind not in "biu":
        raise CompileError(f"expected {want} data, found {arr.dtype}", where)
    if is_float(elt):
        return round_to(arr.astype(np.float64), elt)  # exact below 2^53, then one rounding
    dt = numpy_dtype(elt)
    if is_bool(elt):
        if arr.dtype != np.bool_ and arr.size and not np.isin(arr, (0, 1)).all():
            raise CompileError(f"expected {want} data (0 or 1), found other {arr.dtype} values", where)
        return arr.astype(np.bool_)
    info = np.iinfo(dt)
    if arr.size and (arr.min() < info.min or arr.max() > info.max):
        raise CompileError(f"{arr.dtype} values out of range for {want}", where)
    return arr.astype(dt)


def _check_shape(arr: np.ndarray, t: TensorType, where: str) -> None:
    want = tuple(t.get_shape())
    if tuple(arr.shape) != want:
        raise CompileError(
            f"expected shape {'x'.join(map(str, want)) or 'scalar'} ({type_name(t)}), "
            f"found {'x'.join(map(str, arr.shape)) or 'scalar'}", where)


class Weights:
    """The module's weight file: opened lazily, each weight rounded to its IR type once.
    `source` is the IR file's directory (the .npz must lie inside it) or a mapping of arrays."""

    def __init__(self, module: ModuleOp, source):
        self.module = module
        self.source = source
        self._npz = None
        self._cache: dict[tuple[str, Attribute], np.ndarray] = {}
        self._by_op: dict[Operation, np.ndarray] = {}  # skips property lookups on later runs

    def get(self, op: nt.WeightOp) -> np.ndarray:
        if (hit := self._by_op.get(op)) is not None:
            return hit
        self._by_op[op] = value = self._load(op)
        return value

    def _load(self, op: nt.WeightOp) -> np.ndarray:
        name, t = op.sym_name.data, op.result.type
        if (hit := self._cache.get((name, t))) is not None:
            return hit
        if self._npz is None:
            if not isinstance(self.source, Mapping) and nt.WEIGHTS_ATTR not in self.module.attributes:
                raise op_error(op, f"weight @{name}: the module has no {nt.WEIGHTS_ATTR} attribute")
            self._npz = open_weights(self.module, self.source)
        if name not in self._npz:
            raise op_error(op, f"weight @{name} is not in {self._npz.path}")
        where = f"{self._npz.path}: weight {name}"
        arr = self._npz[name]
        _check_shape(arr, t, where)
        elt = t.element_type
        value = to_element_type(arr, elt, where, saturate=isinstance(elt, Float8E4M3Type))
        self._cache[(name, t)] = value
        return value


# ---------------------------------------------------------------------------------------------
# Op implementations: one line per op; the semantics live in reference_*.py.


def _elt(op: Operation) -> Attribute:
    return op.results[0].type.element_type


def _shape(op: Operation) -> tuple[int, ...]:
    return tuple(op.results[0].type.get_shape())


def _impl(op_type, fn):
    """An `@impl` for an op with one result computed by `fn(op, *operand_values)`."""

    @impl(op_type)
    def run(self, interpreter, op, args):
        return (fn(op, *args),)

    return run


def _binary(kind):
    return lambda op, a, b: ew.binary(kind, a, b, _elt(op))


def _unary(kind):
    return lambda op, x: ew.unary(kind, x, _elt(op))


def _window(op):
    p = op.props()
    k = p["kernel"]
    return k, p["strides"], p["pads"], p.get("dilations") or [1] * len(k), _shape(op)[2:]


@register_impls
class NtFunctions(InterpreterFunctions):
    # Contractions
    run_matmul = _impl(nt.MatmulOp, lambda op, a, b: ew.finish(nn.matmul(a, b, op.prop("unscale")), _elt(op)))
    run_batch_matmul = _impl(nt.BatchMatmulOp, lambda op, a, b: ew.finish(
        nn.matmul(a, b, op.prop("unscale")), _elt(op)))
    run_linear = _impl(nt.LinearOp, lambda op, x, w, b=None: ew.finish(
        nn.linear(x, w, b, bool(op.prop("trans_b")), op.prop("unscale")), _elt(op)))
    run_conv = _impl(nt.ConvOp, lambda op, x, w, b=None: ew.finish(nn.conv(
        x, w, b, op.prop("strides"), op.prop("pads"), op.prop("dilations"), op.prop("groups"),
        _shape(op)[2:], op.prop("unscale")), _elt(op)))

    # Elementwise
    run_add = _impl(nt.AddOp, _binary("add"))
    run_sub = _impl(nt.SubOp, _binary("sub"))
    run_mul = _impl(nt.MulOp, _binary("mul"))
    run_div = _impl(nt.DivOp, _binary("div"))
    run_max = _impl(nt.MaxOp, _binary("max"))
    run_min = _impl(nt.MinOp, _binary("min"))
    run_pow = _impl(nt.PowOp, _binary("pow"))
    run_mod = _impl(nt.ModOp, lambda op, a, b: ew.mod(a, b, bool(op.prop("fmod")), _elt(op)))
    run_cmp = _impl(nt.CmpOp, lambda op, a, b: ew.compare(op.prop("predicate"), a, b))
    run_and = _impl(nt.AndOp, lambda op, a, b: np.logical_and(a, b))
    run_or = _impl(nt.OrOp, lambda op, a, b: np.logical_or(a, b))
    run_xor = _impl(nt.XorOp, lambda op, a, b: np.logical_xor(a, b))
    run_not = _impl(nt.NotOp, lambda op, x: np.logical_not(x))
    run_where = _impl(nt.WhereOp, lambda op, c, a, b: np.where(c, a, b))
    run_neg = _impl(nt.NegOp, _unary("neg"))
    run_abs = _impl(nt.AbsOp, _unary("abs"))
    run_relu = _impl(nt.ReluOp, _unary("relu"))
    run_exp = _impl(nt.ExpOp, _unary("exp"))
    run_log = _impl(nt.LogOp, _unary("log"))
    run_sqrt = _impl(nt.SqrtOp, _unary("sqrt"))
    run_rsqrt = _impl(nt.RsqrtOp, _unary("rsqrt"))
    run_reciprocal = _impl(nt.ReciprocalOp, _unary("reciprocal"))
    run_tanh = _impl(nt.TanhOp, _unary("tanh"))
    run_sigmoid = _impl(nt.SigmoidOp, _unary("sigmoid"))
    run_erf = _impl(nt.ErfOp, _unary("erf"))
    run_silu = _impl(nt.SiluOp, _unary("silu"))
    run_gelu = _impl(nt.GeluOp, lambda op, x: ew.unary(
        "gelu_" + (op.prop("approximate") or "none"), x, _elt(op)))
    run_clip = _impl(nt.ClipOp, lambda op, x: ew.clip(x, op.prop("min"), op.prop("max"), _elt(op)))

    # Reductions and normalizations
    run_reduce_sum = _impl(nt.ReduceSumOp, lambda op, x: ew.finish(
        nn.reduce_sum(x, op.prop("axes"), bool(op.prop("keepdims"))), _elt(op)))
    run_reduce_mean = _impl(nt.ReduceMeanOp, lambda op, x: ew.finish(
        nn.reduce_mean(x, op.prop("axes"), bool(op.prop("keepdims"))), _elt(op)))
    run_reduce_max = _impl(nt.ReduceMaxOp, lambda op, x: ew.finish(
        nn.reduce_max(x, op.prop("axes"), bool(op.prop("keepdims"))), _elt(op)))
    run_softmax = _impl(nt.SoftmaxOp, lambda op, x: ew.finish(
        nn.softmax(x, op.prop("axis")), _elt(op)))
    run_log_softmax = _impl(nt.LogSoftmaxOp, lambda op, x: ew.finish(
        nn.log_softmax(x, op.prop("axis")), _elt(op)))
    run_layer_norm = _impl(nt.LayerNormOp, lambda op, x, s, b=None: ew.finish(
        nn.layer_norm(x, s, b, op.prop("axis"), op.prop("epsilon")), _elt(op)))
    run_rms_norm = _impl(nt.RmsNormOp, lambda op, x, s: ew.finish(
        nn.rms_norm(x, s, op.prop("axis"), op.prop("epsilon")), _elt(op)))
    run_group_norm = _impl(nt.GroupNormOp, lambda op, x, s, b: ew.finish(
        nn.group_norm(x, s, b, op.prop("groups"), op.prop("epsilon")), _elt(op)))
    run_batch_norm = _impl(nt.BatchNormOp, lambda op, x, s, b, m, v: ew.finish(
        nn.batch_norm(x, s, b, m, v, op.prop("epsilon")), _elt(op)))

    # Data movement
    run_transpose = _impl(nt.TransposeOp, lambda op, x: np.transpose(x, op.prop("perm")))
    run_reshape = _impl(nt.ReshapeOp, lambda op, x: x.reshape(_shape(op)))
    run_broadcast = _impl(nt.BroadcastOp, lambda op, x: np.broadcast_to(x, _shape(op)))
    run_slice = _impl(nt.SliceOp, lambda op, x: mv.slice_(
        x, op.prop("starts"), op.prop("limits"), op.prop("strides")))
    run_concat = _impl(nt.ConcatOp, lambda op, *xs: np.concatenate(xs, axis=op.prop("axis")))
    run_gather = _impl(nt.GatherOp, lambda op, d, i: mv.gather(d, i, op.prop("axis")))
    run_gather_elements = _impl(nt.GatherElementsOp, lambda op, d, i: mv.gather_elements(
        d, i, op.prop("axis")))
    run_gather_nd = _impl(nt.GatherNdOp, lambda op, d, i: mv.gather_nd(
        d, i, op.prop("batch_dims") or 0))
    run_pad = _impl(nt.PadOp, lambda op, x: mv.pad(
        x, op.prop("pads"), op.prop("mode") or "constant", op.prop("value"), _elt(op)))
    run_max_pool = _impl(nt.MaxPoolOp, lambda op, x: ew.finish(nn.max_pool(x, *_window(op)), _elt(op)))
    run_avg_pool = _impl(nt.AvgPoolOp, lambda op, x: ew.finish(
        nn.avg_pool(x, *_window(op), bool(op.prop("count_include_pad"))), _elt(op)))

    # Casts, constants, weights
    run_cast = _impl(nt.CastOp, lambda op, x: ew.cast(x, _elt(op), bool(op.prop("saturate"))))
    run_scaled_cast = _impl(nt.ScaledCastOp, lambda op, x: ew.scaled_cast(
        x, op.prop("scale"), op.prop("axis"), _elt(op)))
    run_constant = _impl(nt.ConstantOp, lambda op: op.to_array())

    @impl(nt.WeightOp)
    def run_weight(self, interpreter: _NtInterpreter, op: nt.WeightOp, args: PythonValues):
        return (interpreter.weights.get(op),)


# ---------------------------------------------------------------------------------------------
# Driver


@dataclass
class _NtInterpreter(Interpreter):
    """xDSL's Interpreter with one-line located errors: the stock one wraps any exception in a
    diagnostic holding a generic print of the whole module."""

    weights: Weights | None = field(default=None)
    record: dict | None = field(default=None)  # every op result by SSA value, when set

    def _run_op(self, op: Operation, inputs: PythonValues) -> OpImplResult:
        entry = self._impls._impl_dict.get(type(op))  # xDSL 0.74's dispatch table (private)
        if entry is None:
            raise op_error(op, f"the reference interpreter cannot run {op.name}")
        ft, fn = entry
        try:
            result = fn(ft, self, op, inputs)
        except CompileError:
            raise
        except (ValueError, IndexError, TypeError) as e:
            raise op_error(op, f"cannot evaluate: {e}") from None
        if len(result.values) != len(op.results):
            raise op_error(op, f"interpreter returned {len(result.values)} values for "
                           f"{len(op.results)} results")
        return result

    def run_ssacfg_region(self, region: Region, args: PythonValues, name: str = "unknown"):
        """xDSL's region walk, minus its per-op assertion message (an f-string built eagerly
        for every op, about half of the per-op overhead on small models)."""
        results: PythonValues = ()
        initial_scope = self._ctx
        block = region.blocks.first
        while block is not None:
            self.push_scope(name)
            env = self._ctx
            self.set_values(zip(block.args, args))
            op = block.first_op
            block = None
            while op is not None:
                result = self._run_op(op, tuple(env[v] for v in op.operands))
                for r, v in zip(op.results, result.values):
                    env[r] = v
                if self.record is not None:
                    self.record.update(zip(op.results, result.values))
                if (term := result.terminator_value) is not None:
                    if isinstance(term, ReturnedValues):
                        results = term.values
                    else:  # Successor
                        block, args = term
                    break
                op = op.next_op
        self._ctx = initial_scope
        return results


def _find_func(module: ModuleOp, name: str) -> FuncOp:
    for op in module.ops:
        if isinstance(op, FuncOp) and op.sym_name.data == name:
            return op
    raise CompileError(f"the module has no func.func @{name}")


class Reference:
    """A module prepared for repeated runs (the weights are loaded and rounded once)."""

    def __init__(self, module: ModuleOp, base_dir=None, func: str = "main"):
        self.module = module
        self.func = _find_func(module, func)
        self.input_names = input_names(self.func)
        self.output_names = output_names(self.func)
        self._interp = _NtInterpreter(
            module, weights=Weights(module, base_dir))
        self._interp.register_implementations(FuncFunctions())
        self._interp.register_implementations(NtFunctions())

    def run_op(self, op: Operation, args) -> tuple:
        """One op of the module on the given operand values: its results, in its types."""
        with np.errstate(all="ignore"):
            return tuple(self._interp._run_op(op, tuple(args)).values)

    def run(self, inputs: dict[str, np.ndarray], record: dict | None = None) -> dict[str, np.ndarray]:
        """Outputs by name; with `record`, also every argument and op result, by SSA value."""
        args = []
        for name, t in zip(self.input_names, self.func.function_type.inputs.data):
            if name not in inputs:
                raise CompileError(f"missing input (expected {type_name(t)})", name)
            if not isinstance(t, TensorType):
                raise CompileError(f"expected a tensor argument, found {type_name(t)}", name)
            arr = np.asarray(inputs[name])
            _check_shape(arr, t, name)
            args.append(to_element_type(arr, t.element_type, name))
        if record is not None:
            record.update(zip(self.func.body.block.args, args))
        self._interp.record = record
        # Overflow to inf, NaN from inf - inf and 0/0 are the semantics, not accidents.
        # One BLAS thread: the same bits, without threads spinning on a busy machine.
        try:
            with np.errstate(all="ignore"), single_threaded():
                results = self._interp.call_op(self.func, tuple(args))
        finally:
            self._interp.record = None
        out = {}
        for name, t, value in zip(self.output_names, self.func.function_type.outputs.data, results):
            # A fresh array: results may be views of inputs, broadcasts or cached weights.
            # (Not ascontiguousarray: it turns rank-0 results into shape (1,).)
            out[name] = np.array(value, dtype=numpy_dtype(t.element_type), order="C", copy=True)
        return out


def run_module(
    module: ModuleOp,
    inputs: dict[str, np.ndarray],
    base_dir=None,
    func: str = "main",
) -> dict[str, np.ndarray]:
    """Run `func` of `module` on `inputs` (keyed by input name); outputs keyed by output name,
    each in the numpy dtype of its result type. Weights come from the .npz named by the module
    attribute `nt.weights`, inside `base_dir` (the IR file's directory; default the cwd), or
    from `base_dir` itself when it is a mapping of arrays."""
    return Reference(module, base_dir, func).run(inputs)

"""The reference interpreter for `nt` modules: the project's numerical oracle.

Built on xDSL's interpreter (its scopes, and `func` from xDSL's own FuncFunctions; one line per nt
op in a dispatch table), with numpy + ml_dtypes. Values are held in their dtype (tf32 as float32
with 13 low mantissa bits clear); every op upcasts its inputs exactly, computes at float32
precision or better and rounds its result once, RNE, to the result element type: contractions are
numpy float32 matmuls; reductions, softmax and the norms compute in float64 inside
(reference_nn.py). It shares no code with what it checks except `dialects/` and the package root's
leaves.

    outputs = run_module(module, {"x": x}, base_dir="model_dir")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from xdsl.dialects.builtin import Float8E4M3Type, FloatTF32Type, ModuleOp, TensorType
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.interpreter import Interpreter, OpImplResult, PythonValues, ReturnedValues
from xdsl.interpreters.func import FuncFunctions
from xdsl.ir import Attribute, Operation, Region

from neuron_opt.blas import single_threaded
from neuron_opt.diagnostics import CompileError, op_error
from neuron_opt.dialects import nt
from neuron_opt.dialects.io_names import input_names, output_names
from neuron_opt.dialects.types import (
    element_type,
    is_bool,
    is_float,
    numpy_dtype,
    round_to,
    tensor_type_of,
    type_name,
)
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
            raise CompileError(
                f"expected {want} data, found {arr.dtype} (floats would be truncated)", where
            )
        if arr.dtype == numpy_dtype(elt) and not saturate and not isinstance(elt, FloatTF32Type):
            return arr  # already of the type (op impls never write into their operands)
        return round_to(arr, elt, saturate)
    if arr.dtype.kind == "V":
        raise CompileError(
            f"expected {want} data, found raw {arr.dtype} (np.savez drops ml_dtypes types: "
            "store bf16/fp8 data as float32)",
            where,
        )
    if arr.dtype.kind not in "biu":
        raise CompileError(f"expected {want} data, found {arr.dtype}", where)
    if is_float(elt):
        return round_to(arr.astype(np.float64), elt)  # exact below 2^53, then one rounding
    dt = numpy_dtype(elt)
    if is_bool(elt):
        if arr.dtype != np.bool_ and arr.size and not np.isin(arr, (0, 1)).all():
            raise CompileError(
                f"expected {want} data (0 or 1), found other {arr.dtype} values", where
            )
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
            f"found {'x'.join(map(str, arr.shape)) or 'scalar'}",
            where,
        )


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
            if (
                not isinstance(self.source, Mapping)
                and nt.WEIGHTS_ATTR not in self.module.attributes
            ):
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
# Op implementations: one line per op, `fn(op, *operand values)` -> the op's one result; the
# semantics live in reference_*.py. Weights and func.return need the interpreter (_NtInterpreter).


def _elt(op: Operation) -> Attribute:
    return tensor_type_of(op.results[0]).element_type


def _shape(op: Operation) -> tuple[int, ...]:
    return tuple(tensor_type_of(op.results[0]).get_shape())


def _binary(kind):
    return lambda op, a, b: ew.binary(kind, a, b, _elt(op))


def _unary(kind):
    return lambda op, x: ew.unary(kind, x, _elt(op))


def _window(op):
    p = op.props()
    k = p["kernel"]
    return k, p["strides"], p["pads"], p.get("dilations") or [1] * len(k), _shape(op)[2:]


_RUNNERS: dict[type[Operation], Callable[..., Any]] = {
    # Contractions
    nt.MatmulOp: lambda op, a, b: ew.finish(nn.matmul(a, b, op.prop("unscale")), _elt(op)),
    nt.BatchMatmulOp: lambda op, a, b: ew.finish(nn.matmul(a, b, op.prop("unscale")), _elt(op)),
    nt.LinearOp: lambda op, x, w, b=None: ew.finish(
        nn.linear(x, w, b, bool(op.prop("trans_b")), op.prop("unscale")), _elt(op)
    ),
    nt.ConvOp: lambda op, x, w, b=None: ew.finish(
        nn.conv(
            x,
            w,
            b,
            op.prop("strides"),
            op.prop("pads"),
            op.prop("dilations"),
            op.prop("groups"),
            _shape(op)[2:],
            op.prop("unscale"),
        ),
        _elt(op),
    ),
    # Elementwise
    nt.AddOp: _binary("add"),
    nt.SubOp: _binary("sub"),
    nt.MulOp: _binary("mul"),
    nt.DivOp: _binary("div"),
    nt.MaxOp: _binary("max"),
    nt.MinOp: _binary("min"),
    nt.PowOp: _binary("pow"),
    nt.ModOp: lambda op, a, b: ew.mod(a, b, bool(op.prop("fmod")), _elt(op)),
    nt.CmpOp: lambda op, a, b: ew.compare(op.prop("predicate"), a, b),
    nt.AndOp: lambda op, a, b: np.logical_and(a, b),
    nt.OrOp: lambda op, a, b: np.logical_or(a, b),
    nt.XorOp: lambda op, a, b: np.logical_xor(a, b),
    nt.NotOp: lambda op, x: np.logical_not(x),
    nt.WhereOp: lambda op, c, a, b: np.where(c, a, b),
    nt.NegOp: _unary("neg"),
    nt.AbsOp: _unary("abs"),
    nt.ReluOp: _unary("relu"),
    nt.ExpOp: _unary("exp"),
    nt.LogOp: _unary("log"),
    nt.SqrtOp: _unary("sqrt"),
    nt.RsqrtOp: _unary("rsqrt"),
    nt.ReciprocalOp: _unary("reciprocal"),
    nt.TanhOp: _unary("tanh"),
    nt.SigmoidOp: _unary("sigmoid"),
    nt.ErfOp: _unary("erf"),
    nt.SiluOp: _unary("silu"),
    nt.GeluOp: lambda op, x: ew.unary("gelu_" + (op.prop("approximate") or "none"), x, _elt(op)),
    nt.ClipOp: lambda op, x: ew.clip(x, op.prop("min"), op.prop("max"), _elt(op)),
    # Reductions and normalizations
    nt.ReduceSumOp: lambda op, x: ew.finish(
        nn.reduce_sum(x, op.prop("axes"), bool(op.prop("keepdims"))), _elt(op)
    ),
    nt.ReduceMeanOp: lambda op, x: ew.finish(
        nn.reduce_mean(x, op.prop("axes"), bool(op.prop("keepdims"))), _elt(op)
    ),
    nt.ReduceMaxOp: lambda op, x: ew.finish(
        nn.reduce_max(x, op.prop("axes"), bool(op.prop("keepdims"))), _elt(op)
    ),
    nt.SoftmaxOp: lambda op, x: ew.finish(nn.softmax(x, op.prop("axis")), _elt(op)),
    nt.LogSoftmaxOp: lambda op, x: ew.finish(nn.log_softmax(x, op.prop("axis")), _elt(op)),
    nt.LayerNormOp: lambda op, x, s, b=None: ew.finish(
        nn.layer_norm(x, s, b, op.prop("axis"), op.prop("epsilon")), _elt(op)
    ),
    nt.RmsNormOp: lambda op, x, s: ew.finish(
        nn.rms_norm(x, s, op.prop("axis"), op.prop("epsilon")), _elt(op)
    ),
    nt.GroupNormOp: lambda op, x, s, b: ew.finish(
        nn.group_norm(x, s, b, op.prop("groups"), op.prop("epsilon")), _elt(op)
    ),
    nt.BatchNormOp: lambda op, x, s, b, m, v: ew.finish(
        nn.batch_norm(x, s, b, m, v, op.prop("epsilon")), _elt(op)
    ),
    # Data movement
    nt.TransposeOp: lambda op, x: np.transpose(x, op.prop("perm")),
    nt.ReshapeOp: lambda op, x: x.reshape(_shape(op)),
    nt.BroadcastOp: lambda op, x: np.broadcast_to(x, _shape(op)),
    nt.SliceOp: lambda op, x: mv.slice_(
        x, op.prop("starts"), op.prop("limits"), op.prop("strides")
    ),
    nt.ConcatOp: lambda op, *xs: np.concatenate(xs, axis=op.prop("axis")),
    nt.GatherOp: lambda op, d, i: mv.gather(d, i, op.prop("axis")),
    nt.GatherElementsOp: lambda op, d, i: mv.gather_elements(d, i, op.prop("axis")),
    nt.GatherNdOp: lambda op, d, i: mv.gather_nd(d, i, op.prop("batch_dims") or 0),
    nt.PadOp: lambda op, x: mv.pad(
        x, op.prop("pads"), op.prop("mode") or "constant", op.prop("value"), _elt(op)
    ),
    nt.MaxPoolOp: lambda op, x: ew.finish(nn.max_pool(x, *_window(op)), _elt(op)),
    nt.AvgPoolOp: lambda op, x: ew.finish(
        nn.avg_pool(x, *_window(op), bool(op.prop("count_include_pad"))), _elt(op)
    ),
    # Casts, constants, weights
    nt.CastOp: lambda op, x: ew.cast(x, _elt(op), bool(op.prop("saturate"))),
    nt.ScaledCastOp: lambda op, x: ew.scaled_cast(x, op.prop("scale"), op.prop("axis"), _elt(op)),
    nt.ConstantOp: lambda op: op.to_array(),
}


# ---------------------------------------------------------------------------------------------
# Driver


@dataclass
class _NtInterpreter(Interpreter):
    """xDSL's Interpreter (its scopes, and FuncFunctions to call the function) with nt ops
    dispatched through _RUNNERS: xDSL's own dispatch has no public lookup and wraps any error
    in a diagnostic holding a generic print of the whole module; ours are one located line."""

    weights: Weights | None = field(default=None)
    record: dict | None = field(default=None)  # every op result by SSA value, when set

    def step(self, op: Operation, inputs: PythonValues) -> OpImplResult:
        """One op on its operand values."""
        fn = _RUNNERS.get(type(op))
        try:
            if fn is not None:
                return OpImplResult((fn(op, *inputs),), None)
            if isinstance(op, nt.WeightOp) and self.weights is not None:
                return OpImplResult((self.weights.get(op),), None)
        except CompileError:
            raise
        except (ValueError, IndexError, TypeError) as e:
            raise op_error(op, f"cannot evaluate: {e}") from None
        if isinstance(op, ReturnOp):
            return OpImplResult((), ReturnedValues(inputs))
        raise op_error(op, f"the reference interpreter cannot run {op.name}")

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
                result = self.step(op, tuple(env[v] for v in op.operands))
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
        self._interp = _NtInterpreter(module, weights=Weights(module, base_dir))
        self._interp.register_implementations(FuncFunctions())

    def run_op(self, op: Operation, args) -> tuple:
        """One op of the module on the given operand values: its results, in its types."""
        with np.errstate(all="ignore"):
            return tuple(self._interp.step(op, tuple(args)).values)

    def run(
        self, inputs: Mapping[str, np.ndarray], record: dict | None = None
    ) -> dict[str, np.ndarray]:
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
            out[name] = np.array(value, dtype=numpy_dtype(element_type(t)), order="C", copy=True)
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

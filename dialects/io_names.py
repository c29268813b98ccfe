"""The names of a function's inputs and outputs, as .npz keys and user-facing labels.

IR convention: an arg/result attribute `nt.name` (the framework's tensor name), else `arg0`,
`arg1`, ... for inputs and `out0`, ... for outputs. Shared by the interpreter, the simulator and
the CLIs so that they all key inputs and outputs the same way.
"""

from __future__ import annotations

from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, StringAttr
from xdsl.dialects.func import FuncOp

from neuron_opt.dialects.nt import NAME_ATTR


def _names(attrs: ArrayAttr[DictionaryAttr] | None, count: int, prefix: str) -> list[str]:
    names = []
    for i in range(count):
        name = None
        if attrs is not None and i < len(attrs.data):
            value = attrs.data[i].data.get(NAME_ATTR)
            if isinstance(value, StringAttr):
                name = value.data
        names.append(name if name is not None else f"{prefix}{i}")
    return names


def input_names(func: FuncOp) -> list[str]:
    """One name per function argument: its `nt.name`, else `argI`."""
    return _names(func.arg_attrs, len(func.function_type.inputs.data), "arg")


def output_names(func: FuncOp) -> list[str]:
    """One name per function result: its `nt.name`, else `outI`."""
    return _names(func.res_attrs, len(func.function_type.outputs.data), "out")

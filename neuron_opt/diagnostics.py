"""User-facing errors: one line, a location, exit code 1 (a leaf module anything may import)."""

from __future__ import annotations

from xdsl.dialects.builtin import FileLineColLoc, NameLoc
from xdsl.ir import Operation


class CompileError(Exception):
    """One error a user sees as `WHERE: error: MESSAGE`.

    `where` is `file:line:col` for IR, `neuron-opt` for options, a path for files and
    `model.onnx: node NAME (OpType)` for ONNX nodes.
    """

    def __init__(self, message: str, where: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: error: {self.message}" if self.where else f"error: {self.message}"


def location_of(op: Operation) -> str | None:
    """`file:line:col` of an op parsed from text (or created in its place), the ONNX node an
    imported op came from (`model.onnx: node NAME (OpType)`, a NameLoc), else None."""
    loc = op.location
    if isinstance(loc, FileLineColLoc):
        return f"{loc.filename.data}:{loc.line.data}:{loc.column.data}"
    if isinstance(loc, NameLoc):
        return loc.desc.data
    return None


def op_error(op: Operation, message: str) -> CompileError:
    """An error at `op`, falling back to naming the op when it has no location."""
    where = location_of(op)
    return CompileError(message if where else f"{op.name}: {message}", where)

"""User-facing errors: one line, a location, exit code 1 (a leaf module anything may import)."""

from __future__ import annotations

import re

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
        # Names and text from the input are escaped: a newline or an escape sequence in them
        # must not forge a second line or drive the terminal.
        msg = printable(self.message)
        return f"{printable(self.where)}: error: {msg}" if self.where else f"error: {msg}"


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """Text shown on a terminal with its control characters (and other unprintable ones) as
    escapes: `\\n`, `\\x1b`, `\\u202e`."""
    if text.isprintable():
        return text
    return "".join(
        c
        if c.isprintable()
        else _ESCAPES.get(c)
        or (
            f"\\x{ord(c):02x}"
            if ord(c) < 0x100
            else f"\\u{ord(c):04x}"
            if ord(c) < 0x10000
            else f"\\U{ord(c):08x}"
        )
        for c in text
    )


def markup(text: str) -> str:
    """Text from the input (a node, output or file name) placed in rich markup (tables, progress
    bars): printable, and its `[...]` shown, not read as a style."""
    # rich costs ~15 ms to import and every CLI start loads this module: only tables and
    # progress bars, which load rich anyway, pay it.
    from rich.markup import escape

    return escape(printable(text))


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


def onnx_node_where(label: str, name: str, op_type: str) -> str:
    """`model.onnx: node NAME (OpType)`: where an ONNX node's errors point, and the NameLoc
    every op imported from the node carries (so reports name the user's node)."""
    return f"{label}: node {name} ({op_type})"


_NODE_WHERE = re.compile(r": node (.*) \((\w+)\)$", re.DOTALL)  # a name may hold a newline


def onnx_node_of(op: Operation) -> tuple[str, str] | None:
    """(node name, ONNX op type) of an op imported from an ONNX node, else None."""
    loc = op.location
    if isinstance(loc, NameLoc) and (m := _NODE_WHERE.search(loc.desc.data)):
        return m.group(1), m.group(2)
    return None

"""Parsing and verifying IR text with located errors (`file:line:col: error: ...`).

xDSL sets an op's location only for `loc(...)` in the text, reports verifier errors without a
line, and does not check SSA dominance; this module fills those three gaps.
"""

from __future__ import annotations

import bisect

from xdsl.context import Context
from xdsl.dialects.builtin import FileLineColLoc, IntAttr, ModuleOp, StringAttr, UnknownLoc
from xdsl.ir import Block, Operation, SSAValue
from xdsl.parser import Parser
from xdsl.utils.exceptions import ParseError, VerifyException

from neuron_opt.diagnostics import CompileError, op_error


class LocatingParser(Parser):
    """A Parser that gives every op a FileLineColLoc of its first token (line:col computed by
    bisecting a line-start table: Span.get_location() would rescan the file per op)."""

    def __init__(self, ctx: Context, text: str, filename: str, line_offset: int = 0):
        super().__init__(ctx, text, filename)
        self._file = StringAttr(filename)
        self._line_starts = [0]
        self._line_offset = line_offset
        find = text.find
        i = find("\n")
        while i != -1:
            self._line_starts.append(i + 1)
            i = find("\n", i + 1)

    def parse_operation(self) -> Operation:
        start = self._current_token.span.start
        op = super().parse_operation()
        if isinstance(op.location, UnknownLoc):
            line = bisect.bisect_right(self._line_starts, start)
            col = start - self._line_starts[line - 1] + 1
            op.location = FileLineColLoc(self._file, IntAttr(line + self._line_offset), IntAttr(col))
        return op


def parse_error(e: ParseError, line_offset: int = 0) -> CompileError:
    """xDSL's multi-line parse error -> one located line."""
    span = e.span
    _, line, col = span.get_location()
    msg = str(e.msg) if hasattr(e, "msg") else str(e)
    return CompileError(msg.strip().splitlines()[-1], f"{span.input.name}:{line + line_offset}:{col}")


def parse_module(ctx: Context, text: str, filename: str, line_offset: int = 0) -> ModuleOp:
    """Parse IR text into a module; raises CompileError with the location on any problem."""
    if not text.strip():
        raise CompileError("empty input: expected a module", f"{filename}:1:1")
    try:
        parser = LocatingParser(ctx, text, filename, line_offset)
        module = parser.parse_module()
    except ParseError as e:
        raise parse_error(e, line_offset) from None
    except VerifyException as e:
        # A constraint failed while building an op or type mid-parse: blame the current token.
        _, line, col = parser._current_token.span.get_location()
        raise CompileError(str(e), f"{filename}:{line + line_offset}:{col}") from None
    return module


def verify_module(module: Operation) -> None:
    """Verify every op (located errors) and SSA dominance within blocks."""
    _verify_dominance(module)
    for op in module.walk():
        try:
            op.verify(verify_nested_ops=False)
        except VerifyException as e:
            raise op_error(op, str(e).strip().splitlines()[0]) from None


def _verify_dominance(root: Operation) -> None:
    """Every operand is a block argument of an enclosing block or defined earlier in its
    block or an enclosing one (xDSL's verify() does not check this)."""
    defined: set[SSAValue] = set()

    def walk_block(block: Block) -> None:
        added = list(block.args)
        defined.update(added)
        for op in block.ops:
            for i, v in enumerate(op.operands):
                if v not in defined:
                    name = f"%{v.name_hint}" if v.name_hint else f"operand {i}"
                    raise op_error(op, f"{name} is used before it is defined")
            for region in op.regions:
                for b in region.blocks:
                    walk_block(b)
            defined.update(op.results)
            added.extend(op.results)
        defined.difference_update(added)

    for region in root.regions:
        for b in region.blocks:
            walk_block(b)

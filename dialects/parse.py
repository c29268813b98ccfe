"""Parsing and verifying IR text with located errors (`file:line:col: error: ...`).

xDSL sets an op's location only for `loc(...)` in the text, reports verifier errors without a
line, and does not check SSA dominance; this module fills those three gaps.
"""

from __future__ import annotations

import bisect

from xdsl.context import Context
from xdsl.dialects.builtin import (
    FileLineColLoc,
    IntAttr,
    ModuleOp,
    StringAttr,
    TensorType,
    UnknownLoc,
)
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Block, Operation, SSAValue
from xdsl.parser import Parser
from xdsl.traits import SymbolOpInterface
from xdsl.utils.exceptions import ParseError, VerifyException

from neuron_opt import memory
from neuron_opt.diagnostics import CompileError, op_error
from neuron_opt.dialects.io_names import input_names, output_names
from neuron_opt.dialects.types import ELEMENT_TYPE_SPELLINGS, byte_size, type_name


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

    def line_col(self, pos: int | None = None) -> tuple[int, int]:
        """The file's line and column (from 1) of offset `pos`, by default the next token's."""
        pos = self.pos if pos is None else pos
        line = bisect.bisect_right(self._line_starts, pos)
        return line + self._line_offset, pos - self._line_starts[line - 1] + 1

    def parse_operation(self) -> Operation:
        start = self.pos
        op = super().parse_operation()
        if isinstance(op.location, UnknownLoc):
            line, col = self.line_col(start)
            op.location = FileLineColLoc(self._file, IntAttr(line), IntAttr(col))
        return op


def parse_error(e: ParseError, line_offset: int = 0) -> CompileError:
    """xDSL's multi-line parse error -> one located line, saying what was wrong where xDSL only
    says what it expected."""
    span = e.span
    _, line, col = span.get_location()
    msg = (str(e.msg) if hasattr(e, "msg") else str(e)).strip().splitlines()[-1]
    tok = span.text
    if not span.input.content[span.start :].strip() and msg.startswith("Expected"):
        msg = f"unexpected end of input (is the file truncated?): {msg}"
    elif msg == "Expected shape type.":
        if tok.startswith("-"):
            msg = "a tensor dimension must be a non-negative integer"
        elif tok[:1].isalpha():
            msg = f"unknown element type '{tok}' (nt has {ELEMENT_TYPE_SPELLINGS})"
    return CompileError(msg, f"{span.input.name}:{line + line_offset}:{col}")


def parse_module(ctx: Context, text: str, filename: str, line_offset: int = 0) -> ModuleOp:
    """Parse IR text into a module; raises CompileError with the location on any problem."""
    if all(not ln.strip() or ln.lstrip().startswith("//") for ln in text.splitlines()):
        comments = " (the file holds only comments)" if text.strip() else ""
        raise CompileError("empty input: expected a module" + comments, f"{filename}:1:1")
    try:
        parser = LocatingParser(ctx, text, filename, line_offset)
    except ParseError as e:  # the first token
        raise parse_error(e, line_offset) from None
    try:
        module = parser.parse_module()
    except ParseError as e:
        raise parse_error(e, line_offset) from None
    except VerifyException as e:
        # A constraint failed while building an op or type mid-parse: blame the current token.
        line, col = parser.line_col()
        raise CompileError(str(e), f"{filename}:{line}:{col}") from None
    except OverflowError:
        # xDSL packs `array<f32: 1e39>` with struct, which cannot hold it: blame the token.
        line, col = parser.line_col()
        raise CompileError(
            "a value out of range for its type (array<f32: ...> holds finite f32 values only)",
            f"{filename}:{line}:{col}",
        ) from None
    except RecursionError:
        # xDSL's parser recurses per nesting level; the CLIs allow thousands of levels
        # (run_main raises Python's limit), so this is hostile input: say where it got too deep.
        line, col = parser.line_col()
        raise CompileError(
            "nested too deeply (attributes, types or regions) for the parser",
            f"{filename}:{line}:{col}",
        ) from None
    return module


# Beyond this a shape is a typo, not a model (2^40 elements: 4 TiB of f32).
MAX_ELEMENTS = 1 << 40


def verify_module(module: Operation) -> None:
    """Verify every op (located errors), SSA dominance within blocks, unique symbols, tensor
    types (static, within the memory budget) and functions (a body that returns, unique I/O
    names)."""
    _verify_dominance(module)
    checked: set[TensorType] = set()
    for op in module.walk():
        _verify_symbols_and_sizes(op, checked)
        if isinstance(op, FuncOp):
            _verify_func(op, checked)
    for op in module.walk():
        try:
            op.verify(verify_nested_ops=False)
        except VerifyException as e:
            raise op_error(op, str(e).strip().splitlines()[0]) from None


def _verify_symbols_and_sizes(op: Operation, checked: set) -> None:
    for t in (
        [r.type for r in op.results]
        + [a.type for region in op.regions for b in region.blocks for a in b.args]
        + [p for p in op.properties.values() if isinstance(p, TensorType)]
    ):
        if isinstance(t, TensorType) and t not in checked:
            _verify_tensor_type(op, t)
            checked.add(t)
    for region in op.regions:
        for block in region.blocks:
            seen: set[str] = set()
            for child in block.ops:
                name = child.properties.get("sym_name") or child.attributes.get("sym_name")
                if isinstance(name, StringAttr) and child.has_trait(SymbolOpInterface):
                    if name.data in seen:
                        raise op_error(child, f'redefinition of symbol "{name.data}"')
                    seen.add(name.data)


def _verify_tensor_type(op: Operation, t: TensorType) -> None:
    """Static shapes only, and no tensor larger than the memory budget: everything downstream
    (the interpreter, the lowering, the simulator) would allocate it."""
    if any(d < 0 for d in t.get_shape()):
        raise op_error(op, f"{type_name(t)} has a dynamic dimension: nt needs static shapes")
    if (n := _numel(t)) > MAX_ELEMENTS:
        raise op_error(op, f"tensor type with {n} elements exceeds the limit of 2^40")
    elt = t.element_type
    try:
        size = n * byte_size(elt)
    except ValueError:  # not an nt element type: the op's own verifier says so
        return
    if size > memory.limit():
        raise op_error(
            op,
            f"{type_name(t)} needs {memory.fmt(size)}, over the memory budget of "
            f"{memory.fmt(memory.limit())} (--max-memory)",
        )


def _verify_func(fn: FuncOp, checked: set) -> None:
    """A function with a body ends in func.return (an empty body returns nothing), and its
    inputs and its outputs each have distinct names (they key .npz files)."""
    for t in fn.function_type.outputs.data:
        if isinstance(t, TensorType) and t not in checked:
            _verify_tensor_type(fn, t)
            checked.add(t)
    if fn.body.blocks:
        last = fn.body.blocks[-1].last_op
        if not isinstance(last, ReturnOp):
            raise op_error(
                last or fn,
                f"func @{fn.sym_name.data} must end in func.return"
                + ("" if last else " (its body is empty)"),
            )
    for what, names in (("input", input_names(fn)), ("output", output_names(fn))):
        seen = set()
        for n in names:
            if n in seen:
                raise op_error(fn, f"two {what}s are named '{n}' (nt.name keys the .npz files)")
            seen.add(n)


def _numel(t: TensorType) -> int:
    n = 1
    for d in t.get_shape():
        n *= max(d, 0)
    return n


def _verify_dominance(root: Operation) -> None:
    """Every operand is a block argument of an enclosing block or defined earlier in its
    block or an enclosing one (xDSL's verify() does not check this)."""
    defined: set[SSAValue] = set()

    def walk_block(block: Block) -> None:
        added: list[SSAValue] = list(block.args)
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

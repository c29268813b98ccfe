"""The simulator's one error type: one line naming the engine, instruction and operand."""

from __future__ import annotations

from neuron_opt.diagnostics import CompileError


class SimError(CompileError):
    """A run-time error of a kernel (or of its inputs): `WHERE: error: MESSAGE`."""


class Fault(Exception):
    """Raised inside an instruction; the engine loop adds the stream, index and location."""

    def __init__(self, operand: str | None, message: str):
        super().__init__(message)
        self.operand = operand
        self.message = message

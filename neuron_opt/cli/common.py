"""What every command-line tool shares: one-line errors with exit 1, reading inputs."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable

from neuron_opt.diagnostics import CompileError, printable


def run_main(tool: str, body: Callable[[], int | None]) -> None:
    """Run `body`; any CompileError (or bad file) becomes one line on stderr and exit 1."""
    # xDSL's parser and printer recurse per nesting level of the IR (about 6 frames per level):
    # allow thousands of levels; deeper input is a located parse error.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))
    if sys.stdin is None:  # started with the descriptor closed (`<&-`): an error where it is used
        sys.stdin = _Closed("<stdin>", "cannot read: stdin is closed")
    if sys.stdout is None:
        sys.stdout = _Closed("<stdout>", "cannot write: stdout is closed")
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _terminated)  # unwind like Ctrl-C: temp files are removed
    try:
        code = body()
    except CompileError as e:
        print(str(e) if e.where else f"{tool}: error: {printable(e.message)}", file=sys.stderr)
        sys.exit(1)
    except MemoryError:  # the budget checks come first; this is the last line of defence
        print(
            f"{tool}: error: out of memory (the --max-memory budget is too high for this machine)",
            file=sys.stderr,
        )
        sys.exit(1)
    except RecursionError:
        print(f"{tool}: error: the input is nested too deeply", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"{tool}: error: interrupted", file=sys.stderr)
        sys.exit(1)
    except Terminated:
        print(f"{tool}: error: terminated (SIGTERM)", file=sys.stderr)
        sys.exit(1)
    except BrokenPipeError:
        sys.exit(1)
    sys.exit(code or 0)


class _Closed:
    """sys.stdin or sys.stdout when that descriptor was closed at start: any use is one error."""

    def __init__(self, where: str, message: str):
        self._where, self._message = where, message

    def flush(self) -> None:  # (the interpreter flushes stdout at exit)
        pass

    def __getattr__(self, attr):
        raise CompileError(self._message, self._where)


class Terminated(BaseException):
    """SIGTERM, raised where the program is (like KeyboardInterrupt for SIGINT)."""


def _terminated(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise Terminated


def add_limit_options(p) -> None:
    """--max-memory, wherever input is read."""
    p.add_argument(
        "--max-memory",
        metavar="SIZE",
        help="memory budget for what the input asks to allocate, e.g. 4G or 512M "
        "(default: half the RAM); larger tensors, constants and arrays are errors",
    )


def apply_limit_options(args) -> None:
    from neuron_opt import memory

    memory.set_limit(memory.parse_size(args.max_memory) if args.max_memory else None)


def read_text(path: str) -> str:
    """Read an input file ('-' is stdin) or raise `PATH: error: ...`."""
    from neuron_opt.npz import read_bounded

    return read_bounded(path, "input", text=True)


def make_context():
    """A context with builtin, func and every registered dialect (loaded lazily)."""
    from xdsl.context import Context
    from xdsl.dialects.builtin import Builtin
    from xdsl.dialects.func import Func

    from neuron_opt.universe import DIALECTS

    ctx = Context()
    ctx.load_dialect(Builtin)
    ctx.load_dialect(Func)
    for name, factory in DIALECTS.items():
        ctx.register_dialect(name, factory)
    return ctx


def load_module(path: str, verify: bool = True):
    """Parse (and verify) an IR file; `-` reads stdin. Errors are located CompileErrors."""
    from neuron_opt.dialects.parse import parse_module, verify_module

    text = read_text(path)
    module = parse_module(make_context(), text, "<stdin>" if path == "-" else path)
    if verify:
        verify_module(module)
    return module


def load_npz(path: str):
    """The arrays of an .npz file (a Mapping: each read when first used), or
    `PATH: error: ...`."""
    from neuron_opt.npz import NpzFile

    return NpzFile(path)

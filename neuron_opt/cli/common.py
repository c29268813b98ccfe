"""What every command-line tool shares: one-line errors with exit 1, reading inputs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from neuron_opt.diagnostics import CompileError


def run_main(tool: str, body: Callable[[], int | None]) -> None:
    """Run `body`; any CompileError (or bad file) becomes one line on stderr and exit 1."""
    try:
        code = body()
    except CompileError as e:
        print(str(e) if e.where else f"{tool}: error: {e.message}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"{tool}: error: interrupted", file=sys.stderr)
        sys.exit(1)
    except BrokenPipeError:
        sys.exit(1)
    sys.exit(code or 0)


def read_text(path: str) -> str:
    """Read an input file ('-' is stdin) or raise `PATH: error: ...`."""
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as e:
        raise CompileError(e.strerror or str(e), path) from None
    path = "<stdin>" if path == "-" else path
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CompileError(f"not a text file: invalid UTF-8 at byte {e.start}", path) from None
    if "\0" in text:
        raise CompileError(f"not a text file: NUL byte at offset {text.index(chr(0))}", path)
    return text


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


def load_npz(path: str) -> dict:
    """The arrays of an .npz file, or `PATH: error: ...`."""
    import zipfile

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except OSError as e:
        raise CompileError(e.strerror or "cannot read the file", path) from None
    except (ValueError, EOFError, zipfile.BadZipFile) as e:
        raise CompileError(f"not an .npz file ({e})", path) from None

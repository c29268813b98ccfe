"""Writing outputs atomically (a leaf module: the CLIs and the importer both write files).

A temp file in the target directory is renamed over the target only when writing succeeded,
so an error or a kill never leaves a partial file."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from neuron_opt.diagnostics import CompileError


@contextmanager
def atomic_output(path: str | os.PathLike, mode: str = "w"):
    """Open a temp file beside `path`; rename it over `path` only if the block succeeds, so a
    failure or a kill never leaves a partial file."""
    target = Path(path)
    if not target.parent.is_dir():
        raise CompileError("cannot write: the directory does not exist", str(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())  # the data reaches the disk before the name does
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_outputs(path: str | os.PathLike, outputs: dict) -> None:
    """Outputs to an .npz, atomically. np.savez cannot store ml_dtypes' bf16/fp8 (dtype kind
    'V'), so those are widened to float32, which holds them exactly."""
    import numpy as np

    with atomic_output(path, "wb") as f:
        np.savez(f, **{k: v.astype(np.float32) if v.dtype.kind == "V" else v for k, v in outputs.items()})

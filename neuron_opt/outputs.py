"""Writing outputs the way trusted tools do (the CLIs and the importer write every file through it).

- `-` is stdout; a device, FIFO or other non-regular file (/dev/null, /dev/stdout) is written
  through, never replaced.
- A symlink is resolved and its target written; the link stays a link.
- A regular file is replaced atomically: the data goes to an anonymous file in the target's
  directory (O_TMPFILE, which vanishes if the process is killed), and only when writing
  succeeded is it given a name and renamed over the target, so an error, a kill or a full disk
  never leaves a partial file. Where the OS has no O_TMPFILE a hidden named temp file is used,
  removed on any error, Ctrl-C or SIGTERM (only kill -9 can leave it).
- An existing file keeps its mode, and one the user may not write is not replaced.
- `check_outputs` refuses, before any work, an output that is one of the inputs (the same file,
  whatever its name) or two outputs that are one file, and outputs that cannot be written.
"""

from __future__ import annotations

import ctypes
import errno
import os
import secrets
import stat
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import IO, BinaryIO, Literal, TextIO, overload

import numpy as np

from neuron_opt.diagnostics import CompileError
from neuron_opt.npz import write_npz

STDOUT = "-"


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def check_outputs(outputs, inputs=()) -> None:
    """Before the work starts: every output can be written (its directory exists and is
    writable, it is not a directory), no output is one of the inputs, and no two outputs are
    the same file. Special files (/dev/null, FIFOs) are written through and exempt from the
    sameness rules; `-` is stdout."""
    in_stats = []
    for p in inputs:
        if p is None or os.fspath(p) == STDOUT:
            continue
        try:
            in_stats.append((os.fspath(p), os.stat(p)))
        except OSError:
            pass  # reading it will report the problem
    seen: dict[object, str] = {}
    for p in outputs:
        if p is None or os.fspath(p) == STDOUT:
            continue
        path = os.fspath(p)
        real, st, parent = _resolve(path)
        if st is not None and not stat.S_ISREG(st.st_mode):
            continue  # written through: /dev/null twice or a FIFO clobbers nothing
        _check_writable(path, real, st, parent)
        if st is not None:
            for name, ist in in_stats:
                if _same(st, ist):
                    other = (
                        ""
                        if name == path
                        else f" {name}"
                        + (
                            ""
                            if os.path.realpath(name) == real
                            else " (the same file by another name)"
                        )
                    )
                    raise CompileError(f"the output would overwrite the input{other}", path)
            key: object = (st.st_dev, st.st_ino)
        else:
            key = real
        if key in seen:
            raise CompileError(f"two outputs are one file ({seen[key]} and {path})", path)
        seen[key] = path


def _resolve(name: str) -> tuple[str, os.stat_result | None, str]:
    """(the path to write, its stat or None if absent, its directory) of an output: a special
    file keeps its own name (/dev/stdout leads through /proc to a pipe that has no path), a
    regular or new file is its path with symlinks resolved. A directory, a missing parent or an
    unreadable path is `NAME: error: ...`."""
    try:
        st = os.stat(name)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise CompileError(f"cannot write: {e.strerror}", name) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise CompileError("cannot write: it is a directory", name)
    if name.endswith(("/", os.sep)):
        raise CompileError("cannot write: the name ends in '/' (a directory)", name)
    if st is not None and not stat.S_ISREG(st.st_mode):
        return name, st, ""
    real = os.path.realpath(name)
    parent = os.path.dirname(real) or "."
    if st is None and not os.path.isdir(parent):
        raise CompileError("cannot write: the directory does not exist", name)
    return real, st, parent


def _check_writable(name: str, real: str, st: os.stat_result | None, parent: str) -> None:
    """A regular output is replaced through a temp file in its directory, which must be
    writable; an existing file must be writable too (replacing a file the user may not write
    would bypass its permissions; root may write any file on a writable file system)."""
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CompileError(f"cannot write: {_why(parent)} (the directory is not writable)", name)
    if st is not None and not os.access(real, os.W_OK):
        raise CompileError(f"cannot write: {_why(real)} (the file is not writable)", name)


def _why(path: str) -> str:
    return (
        "read-only file system" if os.statvfs(path).f_flag & os.ST_RDONLY else "permission denied"
    )


@overload
def atomic_output(
    path: str | os.PathLike, mode: Literal["w"] = "w"
) -> AbstractContextManager[TextIO]: ...
@overload
def atomic_output(
    path: str | os.PathLike, mode: Literal["wb"]
) -> AbstractContextManager[BinaryIO]: ...
@contextmanager
def atomic_output(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """A file object for the output `path` (see the module docstring); an OSError while writing
    becomes `PATH: error: cannot write: ...`."""
    name = os.fspath(path)
    if name == STDOUT:
        stream = sys.stdout.buffer if "b" in mode else sys.stdout
        yield stream
        stream.flush()
        return
    real, st, parent = _resolve(name)
    if st is not None and not stat.S_ISREG(st.st_mode):
        with _writing(name):
            f = open(real, mode)
        with _writing(name), f:  # (f closes first: a flush that fails is reported too)
            yield f
        return
    _check_writable(name, real, st, parent)
    perm = stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask()
    # The temp file's name is chosen before anything is created, so that an error, Ctrl-C or
    # SIGTERM at any moment removes whatever exists under it (O_TMPFILE data has no name
    # until just before the rename; a named temp file has it from the start).
    tmp = os.path.join(
        parent, f".{os.path.basename(real)[:48]}.{secrets.token_hex(8)}.tmp"
    )  # (a long name fits)
    try:
        with _writing(name):
            fd, named = _temp_file(parent, tmp)
        with _writing(name), os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fchmod(fd, perm)
            if st is not None and os.geteuid() == 0:
                os.fchown(fd, st.st_uid, st.st_gid)  # root replacing a user's file keeps its owner
            os.fsync(fd)  # the data reaches the disk before the name does
            if not named:
                _link_anonymous(fd, tmp)
        with _writing(name):
            os.replace(tmp, real)
    except BaseException:
        with suppress(OSError):  # it may never have been created
            os.unlink(tmp)
        raise


@contextmanager
def _writing(name: str):
    try:
        yield
    except OSError as e:
        if isinstance(e, BrokenPipeError):
            raise
        raise CompileError(f"cannot write: {e.strerror or e}", name) from None


def _temp_file(parent: str, tmp: str) -> tuple[int, bool]:
    """(fd, False) for an anonymous O_TMPFILE file in `parent`, else (fd, True) for a new file
    named `tmp`."""
    flag = getattr(os, "O_TMPFILE", 0)
    if flag:
        try:
            return os.open(parent, flag | os.O_RDWR | os.O_CLOEXEC, 0o600), False
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
                raise
    return os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), True


def _link_anonymous(fd: int, tmp: str) -> None:
    """Give the O_TMPFILE file `fd` the name `tmp` (renamed over the target next; linkat cannot
    replace a file)."""
    try:  # unprivileged: linkat through /proc with AT_SYMLINK_FOLLOW
        os.link(f"/proc/self/fd/{fd}", tmp, follow_symlinks=True)
        return
    except OSError:
        pass
    libc = ctypes.CDLL(None, use_errno=True)  # AT_EMPTY_PATH: needs privilege on most kernels
    if libc.linkat(fd, b"", _AT_FDCWD, os.fsencode(tmp), _AT_EMPTY_PATH) == 0:
        return
    out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)  # copy the data
    try:
        os.fchmod(out, os.fstat(fd).st_mode)
        pos = 0
        while chunk := os.pread(fd, 1 << 20, pos):
            os.write(out, chunk)
            pos += len(chunk)
        os.fsync(out)
    finally:
        os.close(out)


_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_outputs(path: str | os.PathLike, outputs: dict) -> None:
    """Outputs to an .npz, atomically. An .npz cannot hold ml_dtypes' bf16/fp8 (dtype kind 'V'),
    so those are widened to float32, which holds them exactly."""
    with atomic_output(path, "wb") as f:
        write_npz(
            f, {k: v.astype(np.float32) if v.dtype.kind == "V" else v for k, v in outputs.items()}
        )

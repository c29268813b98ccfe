"""Reading .npz files that users and IR name (inputs, weights), defensively (a leaf module):

- regular files only (a FIFO would hang, /dev/zero would never end), opened once;
- a member is read only when asked for, after its .npy header's dtype and shape are checked
  against the memory budget and against the member's size (truncated or trailing data), so an
  unused key (a zip bomb) is never decompressed; object arrays are refused (no pickle is read);
- weights are resolved inside the IR file's directory only (or a root given with
  `--weights-root`), and when the IR carries `nt.weights_digest` the file must match it: the IR
  and the .npz written by one compile belong together.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import stat
import sys
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Literal, Protocol, cast, overload

import numpy as np
from xdsl.dialects.builtin import StringAttr

from neuron_opt import memory
from neuron_opt.diagnostics import CompileError

WEIGHTS_ATTR = "nt.weights"  # module: the .npz holding nt.weight data, relative to the IR
DIGEST_ATTR = "nt.weights_digest"  # module: sha256 of that .npz, written by compile

_NPY_MAGIC = b"\x93NUMPY"
_weights_root: Path | None = None


def open_regular(path: str | os.PathLike, what: str = "file"):
    """A binary file object for a regular file, or `PATH: error: ...` (never blocks on a FIFO)."""
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        detail = e.strerror or str(e)
        raise CompileError(
            f"cannot read weights: {detail}" if what == "weights" else detail, name
        ) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        if stat.S_ISDIR(st.st_mode):
            raise CompileError("Is a directory", name)
        raise CompileError(f"cannot read {what}: not a regular file", name)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


@overload
def read_bounded(
    path: str, what: str = ..., text: Literal[False] = False, regular: bool = ...
) -> bytes: ...
@overload
def read_bounded(path: str, what: str, text: Literal[True], regular: bool = ...) -> str: ...
def read_bounded(
    path: str, what: str = "file", text: bool = False, regular: bool = False
) -> str | bytes:
    """All of an input file ('-' is stdin; pipes and FIFOs are fine), refusing one larger than
    the memory budget before it is held (so /dev/zero ends in an error, not an endless read).
    With `text`, the UTF-8 text (a NUL byte or invalid UTF-8 stops the read where it occurs);
    with `regular`, only a regular file (opening a FIFO still waits for a writer)."""
    where = "<stdin>" if path == "-" else path
    decoder = codecs.getincrementaldecoder("utf-8")() if text else None
    chunks, total = [], 0
    try:
        if regular:
            f = open_regular(path, f"this {what}")  # never waits on a FIFO
        else:
            f = open(sys.stdin.fileno(), "rb", closefd=False) if path == "-" else open(path, "rb")
        with f:
            st = os.fstat(f.fileno())
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(21, "Is a directory")
            step = 1 << 20
            if stat.S_ISREG(st.st_mode):
                memory.check(st.st_size, f"reading this {what}", where)
                if decoder is None:  # a binary regular file in one read: no copy to join
                    step = max(step, st.st_size)
            while chunk := f.read(step):
                memory.check(total + len(chunk), f"reading this {what}", where)
                size = len(chunk)
                if decoder is not None:
                    try:
                        chunk = decoder.decode(chunk)
                    except UnicodeDecodeError as e:
                        raise CompileError(
                            f"not a text file: invalid UTF-8 at byte {total + e.start}", where
                        ) from None
                    if (nul := chunk.find("\0")) >= 0:
                        raise CompileError(
                            f"not a text file: NUL byte at offset {total + nul}", where
                        )
                total += size
                chunks.append(chunk)
            if decoder is not None:
                try:
                    chunks.append(decoder.decode(b"", final=True))
                except UnicodeDecodeError as e:
                    raise CompileError(
                        f"not a text file: invalid UTF-8 at byte {total + e.start}", where
                    ) from None
    except OSError as e:
        raise CompileError(e.strerror or str(e), where) from None
    return "".join(chunks) if text else b"".join(chunks)


class NpzFile(Mapping):
    """The arrays of an .npz, read one at a time on demand (a Mapping: keys are cheap)."""

    def __init__(self, path: str | os.PathLike, what: str = "the .npz file"):
        self.path = self.file = os.fspath(path)
        self._f = open_regular(self.path, what)
        head = self._f.read(len(_NPY_MAGIC))
        self._f.seek(0)
        if head == _NPY_MAGIC:
            self._f.close()
            raise CompileError("a .npy file, not an .npz archive (np.savez writes one)", self.path)
        try:
            self._zip = zipfile.ZipFile(self._f)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
            self._f.close()
            raise CompileError(f"not an .npz file ({e})", self.path) from None
        self._members: dict[str, zipfile.ZipInfo] = {}
        for info in self._zip.infolist():
            if info.is_dir():
                continue
            if not info.filename.endswith(".npy"):
                self.close()
                raise CompileError(f"member '{info.filename}' is not a .npy array", self.path)
            self._members[info.filename[:-4]] = info
        self._cache: dict[str, np.ndarray] = {}

    def close(self) -> None:
        self._zip.close()
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, key) -> bool:
        return key in self._members

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._cache:
            self._cache[key] = self._read(key, header_only=False)
        return self._cache[key]

    def header(self, key: str) -> tuple[tuple[int, ...], np.dtype]:
        """(shape, dtype) of a member from its .npy header alone (its data is not read)."""
        return self._read(key, header_only=True)

    @overload
    def _read(self, key: str, header_only: Literal[False]) -> np.ndarray: ...
    @overload
    def _read(self, key: str, header_only: Literal[True]) -> tuple[tuple[int, ...], np.dtype]: ...
    def _read(self, key: str, header_only: bool) -> np.ndarray | tuple[tuple[int, ...], np.dtype]:
        info = self._members[key]
        where = f"{self.path}: {key}"
        try:
            with self._zip.open(info) as m:
                return _read_npy(m, info.file_size, where, header_only)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as e:
            raise CompileError(f"corrupt member ({e})", where) from None

    def digest(self) -> str:
        return file_digest(self._f.fileno())


def _read_npy(
    m, member_size: int, where: str, header_only: bool = False
) -> np.ndarray | tuple[tuple[int, ...], np.dtype]:
    """One .npy stream: header checked (dtype, budget, size) before the data is read."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(m)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(m)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(m)
        else:
            # 3.0: numpy has no public reader (the private one is what np.load uses)
            shape, fortran, dtype = fmt._read_array_header(m, version)  # pyright: ignore[reportAttributeAccessIssue]
    except (ValueError, SyntaxError, TypeError, EOFError) as e:
        raise CompileError(f"not a .npy array ({str(e).splitlines()[0]})", where) from None
    if dtype.hasobject:
        raise CompileError(
            f"an object array ({dtype}): refused, pickled data is never loaded", where
        )
    count = 1
    for d in shape:
        count *= d
    nbytes = count * dtype.itemsize
    memory.check(
        nbytes, f"an array of shape {'x'.join(map(str, shape)) or 'scalar'} {dtype}", where
    )
    data_size = member_size - m.tell()
    if data_size < nbytes:
        raise CompileError(f"truncated data: {data_size} bytes for a {nbytes}-byte array", where)
    if data_size > nbytes:
        raise CompileError(f"{data_size - nbytes} bytes of data beyond the array's shape", where)
    if header_only:
        return tuple(shape), dtype
    buf = bytearray(nbytes)
    view, got = memoryview(buf), 0
    while got < nbytes:  # a zip member's readinto reads a temporary copy: 16 MiB at a time
        n = m.readinto(view[got : got + (1 << 24)])
        if not n:
            raise CompileError("truncated data", where)
        got += n
    arr = np.frombuffer(buf, dtype=dtype, count=count)
    return arr.reshape(shape[::-1]).transpose() if fortran else arr.reshape(shape)


def write_npz(f: IO[bytes], arrays: Mapping[str, np.ndarray]) -> None:
    """What `np.savez(f, **arrays)` writes (one NAME.npy per array, stored), for any names:
    savez takes them as keyword arguments, so an array named `file` or `allow_pickle` (an
    ONNX initializer or output may be) breaks it or is dropped."""
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        for name, arr in arrays.items():
            with z.open(f"{name}.npy", "w", force_zip64=True) as m:
                np.lib.format.write_array(m, np.asanyarray(arr), allow_pickle=False)


def file_digest(fd: int) -> str:
    """sha256 of a whole open file (read with pread: the file position is left alone)."""
    h = hashlib.sha256()
    pos = 0
    while chunk := os.pread(fd, 1 << 20, pos):
        h.update(chunk)
        pos += len(chunk)
    return "sha256:" + h.hexdigest()


def load_npz(path: str, what: str = "the .npz file") -> dict[str, np.ndarray]:
    """Every array of an .npz file (each checked as NpzFile does)."""
    with NpzFile(path, what) as z:
        return {k: z[k] for k in z}


def set_weights_root(path: str | os.PathLike | None) -> None:
    """Allow weights under another directory than the IR file's (`--weights-root`)."""
    global _weights_root
    _weights_root = Path(path).resolve() if path is not None else None


class Weights(Protocol):
    """Arrays by name with a `path` that messages name them by (an NpzFile, or weights held in
    memory)."""

    path: str

    def __contains__(self, key: object, /) -> bool: ...
    def __getitem__(self, key: str, /) -> np.ndarray: ...


def open_weights(module, source) -> Weights:
    """The weights of `module`: `source` is a mapping of arrays (a compile held in memory) or
    the directory the IR file lies in, inside which (or the --weights-root) the module's
    `nt.weights` must resolve. Raises CompileError; returns a Mapping with a `path` label."""
    if isinstance(source, Mapping):
        return (
            cast(Weights, source) if hasattr(source, "path") else _InMemory(source)
        )  # path: checked
    attr = module.attributes.get(WEIGHTS_ATTR)
    if not isinstance(attr, StringAttr):
        raise CompileError(f"the module has weights but no '{WEIGHTS_ATTR}' attribute")
    base = Path(source if source is not None else Path.cwd()).resolve()
    shown = str(Path(source if source is not None else ".") / attr.data)
    target = (base / attr.data).resolve()
    roots = [base] + ([_weights_root] if _weights_root is not None else [])
    if not any(target.is_relative_to(r) for r in roots):
        # Said of any such path, existing or not: the message reveals nothing about the file.
        raise CompileError(
            f"the weights path '{attr.data}' leads outside the IR file's "
            "directory (allow another directory with --weights-root)",
            shown,
        )
    z = NpzFile(target, "weights")
    z.path, z.file = shown, target
    digest = module.attributes.get(DIGEST_ATTR)
    if isinstance(digest, StringAttr) and z.digest() != digest.data:
        z.close()
        raise CompileError(
            "the weights do not match the IR (another compile wrote this pair's "
            f"other half: its {DIGEST_ATTR} differs); compile again",
            shown,
        )
    return z


class _InMemory(dict):
    path = "the compiled weights"

"""The memory budget (a leaf module): every size that input controls (tensor types, ONNX
constants folded at import, .npz/.npy members, the simulator's working set) is checked against
it before anything is allocated, so a small hostile file cannot exhaust the machine.

The budget is `--max-memory SIZE`, by default half of the machine's RAM (or of the address-space
limit, `ulimit -v`, when that is lower)."""

from __future__ import annotations

import os
import re
import resource

from neuron_opt.diagnostics import CompileError

_limit: int | None = None

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """`4G`, `512M`, `1.5GiB`, `100000` (bytes) -> bytes; binary units."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([kmgt]?)(?:i?b)?\s*", text, re.IGNORECASE)
    if not m or float(m.group(1)) <= 0:
        raise CompileError(
            f"--max-memory: expected a size such as 4G, 512M or 100000; found '{text}'"
        )
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def default_limit() -> int:
    ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        ram = min(ram, soft)
    return ram // 2


def set_limit(nbytes: int | None) -> None:
    global _limit
    _limit = nbytes


def limit() -> int:
    return _limit if _limit is not None else default_limit()


def fmt(nbytes: int) -> str:
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"


def check(nbytes: int, what: str, where: str | None) -> None:
    """Raise `WHERE: error: WHAT needs N, over the memory budget ...` if nbytes is over it."""
    if nbytes > limit():
        raise CompileError(
            f"{what} needs {fmt(nbytes)}, over the memory budget of {fmt(limit())} (--max-memory)",
            where,
        )

"""Keep numpy's OpenBLAS on one thread while the simulator or the reference interpreter runs.

Simulated tiles are small (at most 128 x 512): BLAS threads buy nothing there, and on a busy
2-core machine their spin-waiting made one 128x128 matmul take 5-30 ms instead of 30 us. The
interpreter's whole-model matmuls fare no better: a model's many small attention products
(12 heads of 128x64 @ 64x128) took 0.4 s each instead of 1 ms, and one BERT-base run 7 s of
CPU instead of 0.7 s. The thread count does not change results: OpenBLAS splits a product's
output among threads, never its sum over K, so each element is accumulated in the same order.
numpy bundles OpenBLAS, so its thread count is set through the library's own entry point.
"""

from __future__ import annotations

import ctypes
import glob
import os
from contextlib import contextmanager

import numpy as np

_LIB = None
_SEARCHED = False


def _openblas():
    global _LIB, _SEARCHED
    if not _SEARCHED:
        _SEARCHED = True
        libs_dir = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
        for path in glob.glob(os.path.join(libs_dir, "*openblas*.so*")):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for prefix in ("scipy_openblas", "openblas"):
                for suffix in ("64_", ""):
                    get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                    put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                    if get is not None and put is not None:
                        get.restype = ctypes.c_int
                        _LIB = (get, put)
                        return _LIB
    return _LIB


@contextmanager
def single_threaded():
    lib = _openblas()
    if lib is None:  # another BLAS build: leave it alone
        yield
        return
    get, put = lib
    before = get()
    put(1)
    try:
        yield
    finally:
        put(before)

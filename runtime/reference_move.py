"""Data movement of the reference interpreter. Moving values is exact, so these work on the
values' own dtype (keeping NaN payloads) instead of a float32 round trip."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from xdsl.ir import Attribute

from neuron_opt.dialects.nt import PadMode
from neuron_opt.dialects.types import is_bool, is_float, numpy_dtype, round_to


class IndexOutOfRange(ValueError):
    """An index operand holds a value outside its dim: a data error, reported at the op."""


def slice_(x: np.ndarray, starts, limits, strides) -> np.ndarray:
    # A limit of -1 with a negative stride means "through index 0".
    idx = tuple(
        slice(s, None if (k < 0 and e == -1) else e, k) for s, e, k in zip(starts, limits, strides)
    )
    return x[idx]


def _normalize(idx: np.ndarray, dim: int, what: str) -> np.ndarray:
    idx = idx.astype(np.int64, copy=False)
    if idx.size and (idx.min() < -dim or idx.max() >= dim):
        bad = idx[(idx < -dim) | (idx >= dim)].reshape(-1)[0]
        raise IndexOutOfRange(f"{what} index {bad} is out of range for a dim of size {dim}")
    return np.where(idx < 0, idx + dim, idx)


def gather(data: np.ndarray, indices: np.ndarray, axis: int) -> np.ndarray:
    a = axis % data.ndim
    return np.take(data, _normalize(indices, data.shape[a], "gather"), axis=a)


def gather_elements(data: np.ndarray, indices: np.ndarray, axis: int) -> np.ndarray:
    a = axis % data.ndim
    # Off the axis, indices may be shorter than data (ONNX allows it): those dims are a prefix.
    data = data[tuple(slice(None) if i == a else slice(0, n) for i, n in enumerate(indices.shape))]
    return np.take_along_axis(data, _normalize(indices, data.shape[a], "gather_elements"), axis=a)


def gather_nd(data: np.ndarray, indices: np.ndarray, batch_dims: int) -> np.ndarray:
    b = batch_dims
    k = indices.shape[-1]
    batch = data.shape[:b]
    nb = int(np.prod(batch, dtype=np.int64))
    d = data.reshape((nb, *data.shape[b:]))
    idx = indices.reshape(nb, -1, k)
    cols = [_normalize(idx[..., j], data.shape[b + j], "gather_nd") for j in range(k)]
    rows = np.arange(nb)[:, None]
    out = d[(rows, *cols)]  # (nb, n_index_tuples, rest...)
    return out.reshape(tuple(indices.shape[:-1]) + tuple(data.shape[b + k :]))


def pad(x: np.ndarray, pads: Sequence[int], mode: PadMode, value: float | None, elt: Attribute):
    """Pad (all begins, then all ends); negative pads crop, as ONNX Pad allows."""
    n = x.ndim
    begins, ends = pads[:n], pads[n:]
    grow = [(max(p, 0), max(q, 0)) for p, q in zip(begins, ends)]
    if any(p or q for p, q in grow):
        if mode == "constant":
            x = np.pad(x, grow, mode="constant", constant_values=_fill(value or 0.0, elt))
        else:
            x = np.pad(x, grow, mode=mode)
    crop = tuple(
        slice(-min(p, 0), x.shape[i] + min(q, 0)) for i, (p, q) in enumerate(zip(begins, ends))
    )
    return x[crop]


def _fill(value: float, elt: Attribute):
    """The pad value as a value of the element type (RNE for floats)."""
    if is_float(elt):
        return round_to(np.float64(value), elt)
    if is_bool(elt):
        return np.bool_(value != 0)
    return numpy_dtype(elt).type(int(value))

"""Contractions, windows (conv, pooling), reductions and normalizations of the reference
interpreter. Everything computes in float32 from exactly upcast inputs; callers round the
result once (`finish`). Contractions are numpy float32 matmuls (fp32 accumulation)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from neuron_opt.runtime.reference_elementwise import F32, ieee_max, up

# ---------------------------------------------------------------------------------------------
# Contractions


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.matmul(up(a), up(b))


def linear(x, w, bias, trans_b: bool) -> np.ndarray:
    w = up(w)
    y = np.matmul(up(x), w.T if trans_b else w)
    # The bias joins the fp32 accumulator before the one rounding of the result.
    return y if bias is None else y + up(bias)


def _kernel_slices(
    kpos: Sequence[int], out: Sequence[int], strides: Sequence[int], dilations: Sequence[int]
) -> tuple[slice, ...]:
    """Per spatial dim, the inputs (of the padded input) that kernel position `kpos` meets
    across all output positions."""
    return tuple(
        slice(k * d, k * d + (o - 1) * s + 1, s)
        for k, o, s, d in zip(kpos, out, strides, dilations)
    )


def _pad_spatial(x: np.ndarray, pads: Sequence[int], extra: Sequence[int], value) -> np.ndarray:
    """Pad the spatial dims of N x C x spatial: `pads` (begins, ends) plus `extra` at the ends
    (ceil_mode windows that run past the end pad)."""
    n = len(extra)
    ends = [pads[n + i] + extra[i] for i in range(n)]
    if not any(pads[:n]) and not any(ends):
        return x
    # Fill and copy in: several times faster than np.pad on small tensors.
    shape = x.shape[:2] + tuple(d + pads[i] + ends[i] for i, d in enumerate(x.shape[2:]))
    out = np.full(shape, value, dtype=x.dtype)
    out[(slice(None), slice(None)) + tuple(slice(pads[i], pads[i] + d) for i, d in enumerate(x.shape[2:]))] = x
    return out


def _extra_end(spatial, pads, kernel, strides, dilations, out) -> list[int]:
    n = len(spatial)
    extra = []
    for i in range(n):
        need = (out[i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1
        have = spatial[i] + pads[i] + pads[n + i]
        extra.append(max(0, need - have))
    return extra


def conv(x, w, bias, strides, pads, dilations, groups: int, out: Sequence[int]) -> np.ndarray:
    """N-D convolution as one f32 matmul over an im2col matrix (a loop over kernel positions
    builds it; no loop over elements)."""
    xf, wf = up(x), up(w)
    n, c = xf.shape[:2]
    o, cg = wf.shape[:2]
    kernel = wf.shape[2:]
    xp = _pad_spatial(xf, pads, [0] * len(kernel), F32(0))
    cols = [
        xp[(slice(None), slice(None)) + _kernel_slices(kpos, out, strides, dilations)]
        for kpos in itertools.product(*(range(k) for k in kernel))
    ]
    kp = len(cols)
    p = int(np.prod(out, dtype=np.int64))
    # (N, C, Kp, P) -> (N, G, Cg*Kp, P): the row order (c, kernel position) matches w's layout.
    col = np.stack(cols, axis=2).reshape(n, groups, cg * kp, p)
    wm = wf.reshape(groups, o // groups, cg * kp)
    y = np.matmul(wm[None], col).reshape((n, o) + tuple(out))
    if bias is not None:
        y = y + up(bias).reshape((1, o) + (1,) * len(out))
    return y


# ---------------------------------------------------------------------------------------------
# Pooling


def max_pool(x, kernel, strides, pads, dilations, out) -> np.ndarray:
    """IEEE maximum over the window; padding never wins (it is -inf, or the integer minimum)."""
    xf = x if x.dtype.kind in "iu" else up(x)
    low = -np.inf if xf.dtype.kind == "f" else np.iinfo(xf.dtype).min
    extra = _extra_end(xf.shape[2:], pads, kernel, strides, dilations, out)
    xp = _pad_spatial(xf, pads, extra, low)
    r = None
    for kpos in itertools.product(*(range(k) for k in kernel)):
        v = xp[(slice(None), slice(None)) + _kernel_slices(kpos, out, strides, dilations)]
        r = v if r is None else ieee_max(r, v)
    return r


def avg_pool(x, kernel, strides, pads, dilations, out, count_include_pad: bool) -> np.ndarray:
    """Window sum in f32 over the window's count: the real inputs it covers, or with
    `count_include_pad` also the explicit pads (never the ceil_mode overhang)."""
    xf = up(x)
    spatial = xf.shape[2:]
    extra = _extra_end(spatial, pads, kernel, strides, dilations, out)
    xp = _pad_spatial(xf, pads, extra, F32(0))
    total = None
    for kpos in itertools.product(*(range(k) for k in kernel)):
        v = xp[(slice(None), slice(None)) + _kernel_slices(kpos, out, strides, dilations)]
        total = v if total is None else total + v
    # The window is a box: its count is a product of per-dim counts.
    n = len(spatial)
    count = np.ones((), F32)
    for i in range(n):
        pos = np.arange(out[i])[:, None] * strides[i] + np.arange(kernel[i])[None, :] * dilations[i]
        lo, hi = (0, spatial[i] + pads[i] + pads[n + i]) if count_include_pad else (
            pads[i], pads[i] + spatial[i])
        per_dim = ((pos >= lo) & (pos < hi)).sum(axis=1).astype(F32)
        count = np.multiply.outer(count, per_dim)
    return total / count


# ---------------------------------------------------------------------------------------------
# Reductions


def _axes(axes, rank: int) -> tuple[int, ...]:
    return tuple(a % rank for a in axes) if axes else tuple(range(rank))


def reduce_sum(x, axes, keepdims: bool) -> np.ndarray:
    ax = _axes(axes, x.ndim)
    if x.dtype.kind in "iu":
        return np.sum(x, axis=ax, keepdims=keepdims, dtype=x.dtype)
    return np.sum(up(x), axis=ax, keepdims=keepdims, dtype=F32)


def reduce_mean(x, axes, keepdims: bool) -> np.ndarray:
    ax = _axes(axes, x.ndim)
    return np.mean(up(x), axis=ax, keepdims=keepdims, dtype=F32)


def reduce_max(x, axes, keepdims: bool) -> np.ndarray:
    ax = _axes(axes, x.ndim)
    if x.dtype.kind in "iu":
        return np.max(x, axis=ax, keepdims=keepdims)
    xf = up(x)
    r = np.max(xf, axis=ax, keepdims=keepdims, initial=-np.inf)  # NaN propagates
    # IEEE maximum: a zero result is +0 if any +0 was reduced, else -0.
    pos_zero = np.any((xf == 0) & ~np.signbit(xf), axis=ax, keepdims=keepdims)
    zero = r == 0
    return np.where(zero, np.where(pos_zero, F32(0), F32(-0.0)), r).astype(F32)


def softmax(x, axis: int) -> np.ndarray:
    xf = up(x)
    e = np.exp(xf - np.max(xf, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True, dtype=F32)


def log_softmax(x, axis: int) -> np.ndarray:
    xf = up(x)
    shifted = xf - np.max(xf, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True, dtype=F32))


# ---------------------------------------------------------------------------------------------
# Normalizations (mean and variance in f32)


def layer_norm(x, scale, bias, axis: int, eps: float) -> np.ndarray:
    xf = up(x)
    ax = tuple(range(axis % xf.ndim, xf.ndim))
    mean = np.mean(xf, axis=ax, keepdims=True, dtype=F32)
    d = xf - mean
    var = np.mean(d * d, axis=ax, keepdims=True, dtype=F32)
    y = d / np.sqrt(var + F32(eps)) * up(scale)
    return y if bias is None else y + up(bias)


def rms_norm(x, scale, axis: int, eps: float) -> np.ndarray:
    xf = up(x)
    ax = tuple(range(axis % xf.ndim, xf.ndim))
    ms = np.mean(xf * xf, axis=ax, keepdims=True, dtype=F32)
    return xf / np.sqrt(ms + F32(eps)) * up(scale)


def batch_norm(x, scale, bias, mean, var, eps: float) -> np.ndarray:
    """Inference batch norm over channel dim 1."""
    xf = up(x)
    shape = (1, xf.shape[1]) + (1,) * (xf.ndim - 2)

    def ch(v):
        return up(v).reshape(shape)

    return (xf - ch(mean)) / np.sqrt(ch(var) + F32(eps)) * ch(scale) + ch(bias)

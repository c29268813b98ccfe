"""Contractions, windows (conv, pooling), reductions and normalizations of the reference
interpreter. Contractions are numpy float32 matmuls of exactly upcast inputs (fp32
accumulation). Reductions, average pooling, softmax and the norms compute in float64 inside:
a plain fp32 evaluation loses ulps to cancellation (x - mean, y * scale + bias), and as the
oracle the result should be the correctly rounded one as often as possible. Callers round the
result once (`finish`) to the result type."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import numpy as np

from neuron_opt.runtime.reference_elementwise import F32, ieee_max, up

F64 = np.float64


def up64(x) -> np.ndarray:
    """Float data upcast to float64 (exact)."""
    return np.asarray(x).astype(F64)


def _eps(eps: float) -> np.float64:
    # ONNX stores epsilon as float32: that value, exactly.
    return F64(np.float32(eps))


# ---------------------------------------------------------------------------------------------
# Contractions


def unscale(y: np.ndarray, u, axis: int) -> np.ndarray:
    """Scaled fp8: the fp32 accumulator times u (one value, or one per index of `axis`), in
    fp32."""
    if u is None:
        return y
    u = np.asarray(u, dtype=np.float32)
    shape = [1] * y.ndim
    if u.size > 1:
        shape[axis] = u.size
    return y * u.reshape(shape)


def matmul(a: np.ndarray, b: np.ndarray, u=None) -> np.ndarray:
    y = np.matmul(up(a), up(b))
    return unscale(y, u, y.ndim - 1)


def linear(x, w, bias, trans_b: bool, u=None) -> np.ndarray:
    w = up(w)
    y = unscale(np.matmul(up(x), w.T if trans_b else w), u, 1)
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


def _windows(
    xp: np.ndarray,
    kernel: Sequence[int],
    out: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
) -> Iterator[np.ndarray]:
    """Per kernel position, the inputs of padded `xp` it meets at every output position."""
    for kpos in itertools.product(*(range(k) for k in kernel)):
        yield xp[(slice(None), slice(None), *_kernel_slices(kpos, out, strides, dilations))]


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
    out[
        (
            slice(None),
            slice(None),
            *tuple(slice(pads[i], pads[i] + d) for i, d in enumerate(x.shape[2:])),
        )
    ] = x
    return out


def _extra_end(spatial, pads, kernel, strides, dilations, out) -> list[int]:
    n = len(spatial)
    extra = []
    for i in range(n):
        need = (out[i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1
        have = spatial[i] + pads[i] + pads[n + i]
        extra.append(max(0, need - have))
    return extra


def conv(
    x, w, bias, strides, pads, dilations, groups: int, out: Sequence[int], u=None
) -> np.ndarray:
    """N-D convolution as one f32 matmul over an im2col matrix (a loop over kernel positions
    builds it; no loop over elements)."""
    xf, wf = up(x), up(w)
    n, _c = xf.shape[:2]
    o, cg = wf.shape[:2]
    kernel = wf.shape[2:]
    xp = _pad_spatial(xf, pads, [0] * len(kernel), F32(0))
    cols = list(_windows(xp, kernel, out, strides, dilations))
    kp = len(cols)
    p = int(np.prod(out, dtype=np.int64))
    # (N, C, Kp, P) -> (N, G, Cg*Kp, P): the row order (c, kernel position) matches w's layout.
    col = np.stack(cols, axis=2).reshape(n, groups, cg * kp, p)
    wm = wf.reshape(groups, o // groups, cg * kp)
    y = unscale(np.matmul(wm[None], col).reshape((n, o, *tuple(out))), u, 1)
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
    windows = _windows(xp, kernel, out, strides, dilations)
    r = next(windows)
    for v in windows:
        r = ieee_max(r, v)
    return r


def avg_pool(x, kernel, strides, pads, dilations, out, count_include_pad: bool) -> np.ndarray:
    """Window sum in f32 over the window's count: the real inputs it covers, or with
    `count_include_pad` also the explicit pads (never the ceil_mode overhang)."""
    xf = up64(x)
    spatial = xf.shape[2:]
    extra = _extra_end(spatial, pads, kernel, strides, dilations, out)
    xp = _pad_spatial(xf, pads, extra, F64(0))
    windows = _windows(xp, kernel, out, strides, dilations)
    total = next(windows)
    for v in windows:
        total = total + v
    # The window is a box: its count is a product of per-dim counts.
    n = len(spatial)
    count = np.ones((), F64)
    for i in range(n):
        pos = np.arange(out[i])[:, None] * strides[i] + np.arange(kernel[i])[None, :] * dilations[i]
        lo, hi = (
            (0, spatial[i] + pads[i] + pads[n + i])
            if count_include_pad
            else (pads[i], pads[i] + spatial[i])
        )
        per_dim = ((pos >= lo) & (pos < hi)).sum(axis=1).astype(F64)
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
    return np.sum(up64(x), axis=ax, keepdims=keepdims)


def reduce_mean(x, axes, keepdims: bool) -> np.ndarray:
    ax = _axes(axes, x.ndim)
    return np.mean(up64(x), axis=ax, keepdims=keepdims)


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
    xf = up64(x)
    e = np.exp(xf - np.max(xf, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis: int) -> np.ndarray:
    xf = up64(x)
    shifted = xf - np.max(xf, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


# ---------------------------------------------------------------------------------------------
# Normalizations (float64 inside)


def _normalize(xf: np.ndarray, ax: tuple[int, ...], eps: float) -> np.ndarray:
    mean = np.mean(xf, axis=ax, keepdims=True)
    d = xf - mean
    var = np.mean(d * d, axis=ax, keepdims=True)
    return d / np.sqrt(var + _eps(eps))


def layer_norm(x, scale, bias, axis: int, eps: float) -> np.ndarray:
    xf = up64(x)
    y = _normalize(xf, tuple(range(axis % xf.ndim, xf.ndim)), eps) * up64(scale)
    return y if bias is None else y + up64(bias)


def rms_norm(x, scale, axis: int, eps: float) -> np.ndarray:
    xf = up64(x)
    ax = tuple(range(axis % xf.ndim, xf.ndim))
    ms = np.mean(xf * xf, axis=ax, keepdims=True)
    return xf / np.sqrt(ms + _eps(eps)) * up64(scale)


def group_norm(x, scale, bias, groups: int, eps: float) -> np.ndarray:
    """Each (n, group) of N x C x spatial normalized over its C/groups channels and spatial
    dims, then scaled and shifted per channel."""
    xf = up64(x)
    n, c = xf.shape[:2]
    grouped = xf.reshape(n, groups, -1)
    y = _normalize(grouped, (2,), eps).reshape(xf.shape)
    ch = (1, c) + (1,) * (xf.ndim - 2)
    return y * up64(scale).reshape(ch) + up64(bias).reshape(ch)


def batch_norm(x, scale, bias, mean, var, eps: float) -> np.ndarray:
    """Inference batch norm over channel dim 1."""
    xf = up64(x)
    shape = (1, xf.shape[1]) + (1,) * (xf.ndim - 2)

    def ch(v):
        return up64(v).reshape(shape)

    return (xf - ch(mean)) / np.sqrt(ch(var) + _eps(eps)) * ch(scale) + ch(bias)

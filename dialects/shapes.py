"""Static shape rules shared by the nt verifiers, the importer and the lowering.

Each rule returns the result shape or raises ShapeError saying what was expected and found.
"""

from __future__ import annotations

from collections.abc import Sequence

Shape = tuple[int, ...]


class ShapeError(ValueError):
    pass


def broadcast(*shapes: Sequence[int]) -> Shape:
    """numpy/ONNX multidirectional broadcasting."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(rank):
        dims = {s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0}
        dims.discard(1)
        if len(dims) > 1:
            raise ShapeError(
                "operand shapes do not broadcast: "
                + " vs ".join("x".join(map(str, s)) or "scalar" for s in shapes)
            )
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def normalize_axis(axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ShapeError(f"axis {axis} is out of range for rank {rank}")
    return axis % max(rank, 1)


def matmul(lhs: Shape, rhs: Shape) -> Shape:
    """[..., M, K] @ [..., K, N] with broadcast batch dims (rank >= 2 each)."""
    if len(lhs) < 2 or len(rhs) < 2:
        raise ShapeError(f"expected operands of rank >= 2, found ranks {len(lhs)} and {len(rhs)}")
    if lhs[-1] != rhs[-2]:
        raise ShapeError(f"contracting dims differ: {lhs[-1]} vs {rhs[-2]}")
    return (*broadcast(lhs[:-2], rhs[:-2]), lhs[-2], rhs[-1])


def reduce(shape: Shape, axes: Sequence[int], keepdims: bool) -> Shape:
    axes_n = {normalize_axis(a, len(shape)) for a in axes} if axes else set(range(len(shape)))
    if keepdims:
        return tuple(1 if i in axes_n else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes_n)


def window(
    spatial: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    ceil_mode: bool = False,
) -> Shape:
    """Output spatial size of a conv or pooling window (ONNX rules; pads = begins + ends)."""
    n = len(spatial)
    for name, v in (("kernel", kernel), ("strides", strides), ("dilations", dilations)):
        if len(v) != n:
            raise ShapeError(f"expected {n} {name} values, found {len(v)}")
        if any(x <= 0 for x in v):
            raise ShapeError(f"{name} must be positive, found {list(v)}")
    if len(pads) != 2 * n:
        raise ShapeError(f"expected {2 * n} pads, found {len(pads)}")
    if any(p < 0 for p in pads):
        raise ShapeError(f"pads must be non-negative, found {list(pads)}")
    out = []
    for i in range(n):
        extent = (kernel[i] - 1) * dilations[i] + 1
        span = spatial[i] + pads[i] + pads[n + i] - extent
        if span < 0:
            raise ShapeError(
                f"window of extent {extent} does not fit spatial dim {i} of size "
                f"{spatial[i]} with pads {pads[i]}+{pads[n + i]}"
            )
        size = -(-span // strides[i]) + 1 if ceil_mode else span // strides[i] + 1
        # ONNX: with ceil_mode the last window must start inside the input or its begin pad.
        if ceil_mode and (size - 1) * strides[i] >= spatial[i] + pads[i]:
            size -= 1
        out.append(size)
    return tuple(out)


def conv(
    x: Shape,
    w: Shape,
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    groups: int,
) -> Shape:
    """NC[spatial] input, O(C/groups)[kernel] weight -> NO[spatial']."""
    if len(x) < 3 or len(w) != len(x):
        raise ShapeError(
            f"expected input N x C x spatial and weight of the same rank, found ranks "
            f"{len(x)} and {len(w)}"
        )
    if groups <= 0 or x[1] % groups or w[0] % groups:
        raise ShapeError(
            f"groups {groups} must divide input channels {x[1]} and output channels {w[0]}"
        )
    if w[1] * groups != x[1]:
        raise ShapeError(
            f"weight expects {w[1] * groups} input channels ({w[1]} x {groups} groups), "
            f"found {x[1]}"
        )
    return (x[0], w[0], *window(x[2:], w[2:], strides, pads, dilations))


def transpose(shape: Shape, perm: Sequence[int]) -> Shape:
    if sorted(perm) != list(range(len(shape))):
        raise ShapeError(f"perm {list(perm)} is not a permutation of {len(shape)} dims")
    return tuple(shape[p] for p in perm)


def slice_(
    shape: Shape, starts: Sequence[int], limits: Sequence[int], strides: Sequence[int]
) -> Shape:
    """Normalized static slice: per dim 0 <= start, stride != 0 (limit may be -1 for negative
    strides, meaning "through index 0")."""
    if not len(starts) == len(limits) == len(strides) == len(shape):
        raise ShapeError(
            f"expected {len(shape)} starts, limits and strides, found "
            f"{len(starts)}, {len(limits)} and {len(strides)}"
        )
    out = []
    for d, s, e, k in zip(shape, starts, limits, strides):
        if k == 0:
            raise ShapeError("slice stride must not be 0")
        if (k > 0 and not (0 <= s <= e <= d)) or (k < 0 and not (-1 <= e <= s < d or (d == 0))):
            raise ShapeError(f"slice [{s}:{e}:{k}] is out of range for a dim of size {d}")
        out.append(max(0, -(-(e - s) // k)))
    return tuple(out)


def concat(shapes: Sequence[Shape], axis: int) -> Shape:
    if not shapes:
        raise ShapeError("expected at least one operand")
    rank = len(shapes[0])
    a = normalize_axis(axis, rank)
    for s in shapes[1:]:
        if len(s) != rank or any(x != y for i, (x, y) in enumerate(zip(s, shapes[0])) if i != a):
            raise ShapeError(
                f"operands must agree except on axis {a}: "
                + " vs ".join("x".join(map(str, t)) for t in shapes)
            )
    return (*shapes[0][:a], sum(s[a] for s in shapes), *shapes[0][a + 1 :])


def gather(data: Shape, indices: Shape, axis: int) -> Shape:
    a = normalize_axis(axis, len(data))
    return data[:a] + tuple(indices) + data[a + 1 :]


def gather_nd(data: Shape, indices: Shape, batch_dims: int) -> Shape:
    if not indices:
        raise ShapeError("gather_nd indices must have rank >= 1")
    k = indices[-1]
    if batch_dims + k > len(data):
        raise ShapeError(
            f"index depth {k} plus {batch_dims} batch dims exceeds data rank {len(data)}"
        )
    if tuple(data[:batch_dims]) != tuple(indices[:batch_dims]):
        raise ShapeError("gather_nd batch dims of data and indices differ")
    return tuple(indices[:-1]) + tuple(data[batch_dims + k :])


def pad(shape: Shape, pads: Sequence[int]) -> Shape:
    n = len(shape)
    if len(pads) != 2 * n:
        raise ShapeError(f"expected {2 * n} pads, found {len(pads)}")
    out = tuple(d + pads[i] + pads[n + i] for i, d in enumerate(shape))
    if any(d < 0 for d in out):
        raise ShapeError(f"pads {list(pads)} remove more than the dims {list(shape)}")
    return out


def numel(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n

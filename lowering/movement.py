"""Data movement between HBM tensors by DMA (reshape, transpose, broadcast, slice, concat,
pad) and inline constants (built in SBUF with memsets, then stored). A DMA copies elements
in the row-major order of each access, so a reshape is one copy and a transpose is one copy
per index of the output dims outside the largest set of dims the permutation keeps in order
(or, for a swap of two blocks of dims, TensorE transposes)."""

from __future__ import annotations

import itertools
from math import prod

import numpy as np

from neuron_opt.dialects import nisa, nt
from neuron_opt.dialects.types import round_to
from neuron_opt.lowering import hbm as H
from neuron_opt.lowering import plan as P
from neuron_opt.lowering.common import PMAX, Unsupported, alu_engine, dt, is_int
from neuron_opt.lowering.kernel import ANY_QUEUE

MAX_DMAS = 4096
CONST_MAX = 16384  # elements of an inline constant built with memsets


def constant(lw, op) -> None:
    v = op.result
    a = np.asarray(op.to_array()).reshape(-1)
    n = a.size
    if n > CONST_MAX:
        raise Unsupported(f"an inline constant of {n} elements (at most {CONST_MAX}; use a weight)")
    if a.dtype.kind in "fV":
        vals = a.astype(np.float32)
        bits = vals.view(np.uint32)
    else:
        big = np.abs(a.astype(np.int64)) >= 2**31
        if big.any():
            raise Unsupported(
                f"an integer constant holding {int(a[big][0])}: constants are built by "
                "the engines, which compute integers in at most 32 bits"
            )
        vals = bits = a.astype(np.int64)
    dst = lw.new_home(v)
    stage = lw.kb.sbuf(1, (n,), dt(v))
    # built where it does not wait behind compute (32-bit integers: GpSimd's exact lanes)
    eng = alu_engine(dt(v)) if alu_engine(dt(v)) == "gpsimd" else ("vector", "gpsimd")
    i = 0
    while i < n:  # one memset per run of equal values (on partition 0: start rules)
        j = i + 1
        while j < n and bits[j] == bits[i]:
            j += 1
        acc = stage.ap((0, 1), (i, j))
        lw.kb.inst(eng, nisa.MemsetOp, acc, value=float(vals[i]))
        i = j
    H.store(lw.kb, lambda a_, b_, w0, w1: stage.ap((a_, b_), (w0, w1)), dst, 0, 0, 1, 0, n)
    lw.kb.free(stage)


def scaled_constant(lw, op) -> None:
    """nt.scaled_cast of an inline constant: the fp8 constant fp8(x * scale), computed here
    (fp32 product, one saturating rounding) and built as any constant is."""
    x = np.asarray(op.input.owner.to_array()).astype(np.float32)
    s = np.asarray(op.prop("scale"), np.float32)
    if op.axis is not None:
        shape = [1] * x.ndim
        shape[op.prop("axis")] = s.size
        s = s.reshape(shape)
    t = op.result.type
    folded = nt.ConstantOp.from_array(round_to(x * s, t.element_type, saturate=True), t)
    constant(lw, folded)
    lw.home[op.result] = lw.home.pop(folded.result)


def empty_operands(lw, op) -> None:
    """An op with zero-size operands or results: an empty result needs no work (its HBM
    tensor has a 0 dim and is never accessed); a reduction of an empty set is its identity
    (the interpreter's: 0 for sums, -inf for a float max, NaN for a mean); a concat skips
    its empty pieces."""
    out = op.results[0]
    if 0 in P.shape(out):
        lw.new_home(out)
        return
    if isinstance(op, nt.ConcatOp):
        return concat(lw, op)
    if isinstance(op, (nt.ReduceSumOp, nt.ReduceMaxOp, nt.ReduceMeanOp)):
        if isinstance(op, nt.ReduceSumOp):
            value = 0.0
        elif is_int(dt(out)):
            raise Unsupported("the maximum or mean of an empty set of integers (undefined)")
        else:
            value = -np.inf if isinstance(op, nt.ReduceMaxOp) else np.nan
        dst = lw.new_home(out)
        return fill_hbm(lw, dst, [(0, d) for d in dst.shape], value, dt(out))
    raise Unsupported(f"{op.name} of an empty tensor into a non-empty one")


def reshape(lw, op) -> None:
    src = lw.home_of(op.operands[0])
    dst = lw.new_home(op.results[0])
    H.copy_hbm(lw.kb, dst.ap(), src.ap())


def transpose(lw, op) -> None:
    perm = list(op.prop("perm")) or [0]  # rank 0: one element, held as shape (1,)
    permute(lw, lw.home_of(op.operands[0]), lw.new_home(op.results[0]), perm)


def permuted_scratch(lw, src, perm):
    """A scratch HBM tensor holding src with its dims permuted (dst dim i = src dim perm[i])."""
    dst = lw.kb.hbm("scratch", lw.kb.fresh("h"), [src.shape[p] for p in perm], src.dtype)
    permute(lw, src, dst, perm)
    return dst


def permute(lw, src, dst, perm) -> None:
    """dst = src with its dims permuted. A DMA copies each access in its own row-major order,
    so one DMA can move whole ranges of any dims whose order the permutation keeps: the
    lowering loops over the other output dims, choosing the kept set with the most elements
    (heads merged back, [S, H, D] <- [H, S, D], are H DMAs, not S). A swap of two blocks of
    dims that would still take many DMAs runs as TensorE transposes instead."""
    So = dst.shape
    n = len(perm)
    keep = max(
        (m for m in range(1 << n) if _increasing([perm[i] for i in range(n) if m >> i & 1])),
        key=lambda m: prod(So[i] for i in range(n) if m >> i & 1),
    )
    loops = [i for i in range(n) if not keep >> i & 1]
    count = prod(So[i] for i in loops)
    swap = _block_swap(perm)
    if swap is not None and count > SWAP_DMAS and src.dtype in FLOAT_DTYPES:
        return _swap_on_tensor(lw, src, dst, *swap)
    if count > MAX_DMAS:
        raise Unsupported(f"a transpose needing {count} DMAs (at most {MAX_DMAS})")
    for idx in itertools.product(*(range(So[i]) for i in loops)):
        d_sl: list[int | tuple[int, int]] = [(0, d) for d in So]  # an index keeps its dim
        for i, v in zip(loops, idx):
            d_sl[i] = v
        s_sl: list[int | tuple[int, int] | None] = [None] * n
        for i, p in enumerate(perm):
            s_sl[p] = d_sl[i]
        H.copy_hbm(lw.kb, dst.ap(*d_sl), src.ap(*s_sl))


def _increasing(seq) -> bool:
    return all(a < b for a, b in itertools.pairwise(seq))


SWAP_DMAS = 16  # above this many DMAs a block swap goes through TensorE transposes
SWAP_COLS = 4096  # columns of a source tile in a block swap
FLOAT_DTYPES = ("f32", "tf32", "bf16", "f16", "f8E4M3")


def _block_swap(perm) -> tuple[int, int] | None:
    """(b, j) when perm keeps dims [0, b) and swaps the blocks [b, j) and [j, n) (each kept
    in order): the permute is a batch of 2-D transposes."""
    n = len(perm)
    b = 0
    while b < n and perm[b] == b:
        b += 1
    if b == n:
        return None
    j = perm[b]
    if list(perm[b:]) != list(range(j, n)) + list(range(b, j)):
        return None
    return b, j


def _swap_on_tensor(lw, src, dst, b: int, j: int) -> None:
    """dst[p, c, a] = src[p, a, c] (p: dims before b, a: dims [b, j), c: the rest) by
    PMAX x PMAX TensorE transposes: a tile of rows a (partitions) and columns c is loaded,
    each PMAX-column block transposed into PSUM (a bit copy for finite and non-finite values
    alike on the simulator), evicted in dst's dtype and stored as rows c of dst."""
    kb = lw.kb
    S = src.shape
    n_p, n_a, n_c = prod(S[:b]), prod(S[b:j]), prod(S[j:])
    kd = b + len(S) - j  # dst split: rows (p, c), columns a
    for p in range(n_p):
        for a0 in range(0, n_a, PMAX):
            a1 = min(n_a, a0 + PMAX)
            for w0 in range(0, n_c, SWAP_COLS):
                w1 = min(n_c, w0 + SWAP_COLS)
                t = kb.sbuf(a1 - a0, (w1 - w0,), src.dtype)
                H.load(
                    kb,
                    lambda r0, r1, c0, c1: t.ap((r0, r1), (c0, c1)),
                    src,
                    j,
                    p * n_a + a0,
                    p * n_a + a1,
                    w0,
                    w1,
                )
                for c0 in range(w0, w1, PMAX):
                    c1 = min(w1, c0 + PMAX)
                    ps = kb.psum(c1 - c0, (a1 - a0,))
                    kb.inst(
                        "tensor", nisa.TransposeOp, ps.ap(), t.ap((0, a1 - a0), (c0 - w0, c1 - w0))
                    )
                    o = kb.sbuf(c1 - c0, (a1 - a0,), dst.dtype)
                    lw.evict(o.ap(), ps.ap())
                    kb.free(ps)
                    H.store(
                        kb,
                        lambda r0, r1, x0, x1, o=o: o.ap((r0, r1), (x0, x1)),
                        dst,
                        kd,
                        p * n_c + c0,
                        p * n_c + c1,
                        a0,
                        a1,
                    )
                    kb.free(o)
                kb.free(t)


def broadcast(lw, op) -> None:
    x = op.operands[0]
    broadcast_into(
        lw, lw.home_of(x), P.shape(x), lw.new_home(op.results[0]), P.shape(op.results[0])
    )


def broadcast_into(lw, src, sx, dst, So) -> None:
    """HBM dst (shape So) = HBM src (shape sx) broadcast as numpy does: one DMA per index of
    the output dims up to the last broadcast one."""
    pad = len(So) - len(sx)
    sp = (1,) * pad + sx
    bdims = [i for i in range(len(So)) if sp[i] != So[i]]
    j = (bdims[-1] + 1) if bdims else 0
    if prod(So[:j]) > MAX_DMAS:
        raise Unsupported(f"a broadcast needing {prod(So[:j])} DMAs")
    for idx in itertools.product(*(range(d) for d in So[:j])):
        d_sl = list(idx) + [(0, d) for d in So[j:]]
        s_full = [(0 if sp[i] == 1 else idx[i]) if i < j else (0, sp[i]) for i in range(len(So))]
        H.copy_hbm(lw.kb, dst.ap(*d_sl), src.ap(*s_full[pad:]))


def slice_(lw, op) -> None:
    src = lw.home_of(op.operands[0])
    dst = lw.new_home(op.results[0])
    starts, limits = list(op.prop("starts")), list(op.prop("limits"))
    strides = list(op.prop("strides") or [1] * len(starts))
    # A DMA access steps forward only: a dim read backwards takes one DMA per index of it.
    back = [i for i, s in enumerate(strides) if s < 0]
    if prod(dst.shape[i] for i in back) > MAX_DMAS:
        raise Unsupported(
            f"a reversed slice needing {prod(dst.shape[i] for i in back)} DMAs (at most {MAX_DMAS})"
        )
    for idx in itertools.product(*(range(dst.shape[i]) for i in back)):
        at = dict(zip(back, idx))
        d_sl = [at[i] if i in at else (0, n) for i, n in enumerate(dst.shape)]
        s_sl = [
            starts[i] + at[i] * strides[i] if i in at else (starts[i], limits[i], strides[i])
            for i in range(len(starts))
        ]
        H.copy_hbm(lw.kb, dst.ap(*d_sl), src.ap(*s_sl))


def concat(lw, op) -> None:
    dst = lw.new_home(op.results[0])
    axis = op.prop("axis") % len(dst.shape)
    off = 0
    for v in op.operands:
        s = P.shape(v)
        if 0 in s:
            continue
        sl = [(0, d) for d in s]
        sl[axis] = (off, off + s[axis])
        H.copy_hbm(lw.kb, dst.ap(*sl), lw.home_of(v).ap())
        off += s[axis]


def pad(lw, op) -> None:
    """Constant pad (negative pads crop): the kept box of the input is one HBM -> HBM copy, and
    the border slabs around it are filled from a memset SBUF tile (fill_hbm). Edge and reflect
    pads grow the input as numpy does, then crop: the input is copied into the middle, and each
    border slab, dim by dim, is a copy of one slab inside dim i's middle (the one at the edge, or
    the mirrored one), taken over the dims before i whole and the dims after i's middle, so the
    corners come out as in numpy (which pads one axis after the other)."""
    mode = op.prop("mode") or "constant"
    pads = list(op.prop("pads")) or [0, 0]  # rank 0: one element, held as shape (1,)
    src = lw.home_of(op.operands[0])
    dst = lw.new_home(op.results[0])
    if mode != "constant":
        return _pad_copies(lw, src, dst, pads, mode)
    rank = len(src.shape)
    lo = [max(0, p) for p in pads[:rank]]  # kept box in dst
    keep = [d - max(0, -b) - max(0, -e) for d, b, e in zip(src.shape, pads[:rank], pads[rank:])]
    value = float(op.prop("value") or 0.0)
    if min(keep) <= 0:
        fill_hbm(lw, dst, [(0, d) for d in dst.shape], value, dt(op.results[0]))
        return
    hi = [a + k for a, k in zip(lo, keep)]
    for i in range(rank):  # slabs: dims before i inside the box, dim i outside it, the rest whole
        for a, b in ((0, lo[i]), (hi[i], dst.shape[i])):
            if a < b:
                box = (
                    [(lo[j], hi[j]) for j in range(i)]
                    + [(a, b)]
                    + [(0, d) for d in dst.shape[i + 1 :]]
                )
                fill_hbm(lw, dst, box, value, dt(op.results[0]))
    s_sl = [(max(0, -b), max(0, -b) + k) for b, k in zip(pads[:rank], keep)]
    H.copy_hbm(lw.kb, dst.ap(*[(a, b) for a, b in zip(lo, hi)]), src.ap(*s_sl))


def _pad_copies(lw, src, dst, pads, mode: str) -> None:
    """Edge / reflect pad of src into dst: grown in dst itself, or in a scratch tensor that a
    crop (negative pads) then copies from."""
    rank = len(src.shape)
    lo = [max(0, p) for p in pads[:rank]]
    up = [max(0, p) for p in pads[rank:]]
    for n, a, b in zip(src.shape, lo, up):
        if mode == "reflect" and max(a, b) > n - 1:
            raise Unsupported(
                f"a reflect pad of {max(a, b)} on a dim of {n} (numpy reflects again; "
                "at most the dim minus one)"
            )
    grown_shape = [n + a + b for n, a, b in zip(src.shape, lo, up)]
    crop = grown_shape != list(dst.shape)
    g = lw.kb.hbm("scratch", lw.kb.fresh("h"), grown_shape, src.dtype) if crop else dst
    hi = [a + n for a, n in zip(lo, src.shape)]
    H.copy_hbm(lw.kb, g.ap(*[(a, b) for a, b in zip(lo, hi)]), src.ap())
    for i in range(rank):
        box = (
            [(0, d) for d in grown_shape[:i]]
            + [None]
            + [(lo[j], hi[j]) for j in range(i + 1, rank)]
        )
        for p in list(range(lo[i])) + list(range(hi[i], grown_shape[i])):
            edge = lo[i] if p < lo[i] else hi[i] - 1
            q = edge if mode == "edge" else 2 * edge - p
            H.copy_hbm(lw.kb, g.ap(*box[:i], p, *box[i + 1 :]), g.ap(*box[:i], q, *box[i + 1 :]))
    if crop:
        s_sl = [
            (max(0, -b), d - max(0, -e)) for d, b, e in zip(grown_shape, pads[:rank], pads[rank:])
        ]
        H.copy_hbm(lw.kb, dst.ap(), g.ap(*s_sl))


FILL_COLS = 2048  # free size of the memset tile a fill is stored from
# The ops whose result is written only by copies (DMAs, or TensorE transposes evicted in the
# result's type) from exact values, never read back: a float cast that is the result's only
# use is done by those writes (the lowerer gives them the cast's home).
COPIES = (reshape, transpose, broadcast, slice_, concat, pad)


def fill_hbm(lw, dst, box: list[tuple[int, int]], value: float, dtype: str) -> None:
    """Write `value` into the box (one (start, stop) per dim) of HBM tensor dst: DMAs of
    [<= PMAX rows, inner] from one memset tile, where inner is the box's trailing dims (a run
    of the last dim when that alone is longer than FILL_COLS)."""
    ext = [b - a for a, b in box]
    if ext[-1] > FILL_COLS:
        for c in range(box[-1][0], box[-1][1], FILL_COLS):
            fill_hbm(lw, dst, [*box[:-1], (c, min(box[-1][1], c + FILL_COLS))], value, dtype)
        return
    j = len(ext) - 1
    while j > 0 and prod(ext[j - 1 :]) <= FILL_COLS:
        j -= 1
    inner = prod(ext[j:])
    lead = prod(ext[:j])
    kb = lw.kb
    t = kb.sbuf(min(PMAX, lead), (inner,), dtype)
    kb.inst("vector", nisa.MemsetOp, t.ap(), value=value)
    for r0 in range(0, lead, PMAX):
        for sl, f in H.boxes(tuple(ext[:j]), r0, min(lead, r0 + PMAX)):
            n = prod(b - a for a, b in sl) if sl else 1
            d = [(box[i][0] + a, box[i][0] + b) for i, (a, b) in enumerate(sl)] + box[j:]
            kb.inst(ANY_QUEUE, nisa.DmaCopyOp, dst.ap(*d), t.ap((0, n), (0, inner)))
    kb.free(t)

"""DMAs between HBM tensors and SBUF tiles.

A tensor of shape (d0, ..., dn-1) is seen as a matrix: rows = d0..d(k-1), columns = dk..dn-1
(row-major). A tile request is a block of rows and columns of that matrix; since an access
has one slice per dimension, a block becomes a few boxes (mixed-radix ranges) and one DMA
per box pair.
"""

from __future__ import annotations

from math import prod

from neuron_opt.dialects.nisa import DmaCopyOp
from neuron_opt.lowering.kernel import ANY_QUEUE, DMA_QUEUES, Access, Buf, KernelBuilder

DMA_SPLIT_BYTES = 64 * 1024  # above this a tile load is spread over several queues


def boxes(dims: tuple[int, ...], lo: int, hi: int) -> list[tuple[list[tuple[int, int]], int]]:
    """Cover the flat row-major range [lo, hi) of `dims` by boxes: (slices, flat start)."""
    if lo >= hi:
        return []
    if not dims:
        return [([], lo)]
    inner = prod(dims[1:])
    a0, a1 = lo // inner, (hi - 1) // inner
    if a0 == a1:
        return [
            ([(a0, a0 + 1), *s], f + a0 * inner)
            for s, f in boxes(dims[1:], lo - a0 * inner, hi - a0 * inner)
        ]
    out = []
    if lo % inner:
        out += boxes(dims, lo, (a0 + 1) * inner)
        a0 += 1
    full_end = hi // inner
    if full_end > a0:
        out.append(([(a0, full_end)] + [(0, d) for d in dims[1:]], a0 * inner))
    if hi % inner and full_end >= a0:
        out += boxes(dims, full_end * inner, hi)
    return out


def _split_rows(r0: int, r1: int, nbytes_per_row: int) -> list[tuple[int, int]]:
    total = (r1 - r0) * nbytes_per_row
    parts = max(1, min(r1 - r0, 8, total // DMA_SPLIT_BYTES))
    step = -(-(r1 - r0) // parts)
    return [(a, min(a + step, r1)) for a in range(r0, r1, step)]


def block_dmas(hbm: Buf, k: int, r0: int, r1: int, c0: int, c1: int):
    """(hbm access, row offset, rows, col offset, cols) pieces of the block."""
    rdims, cdims = hbm.shape[:k], hbm.shape[k:]
    cb = boxes(cdims, c0, c1) if cdims else [([], 0)]
    out = []
    for rs, rf in boxes(rdims, r0, r1) if rdims else [([], 0)]:
        nr = prod(b - a for a, b in rs) if rs else 1
        for cs, cf in cb:
            nc = prod(b - a for a, b in cs) if cs else 1
            out.append((hbm.ap(*rs, *cs), rf - r0, nr, cf - c0, nc))
    return out


def load(
    kb: KernelBuilder, tile_ap_fn, hbm: Buf, k: int, r0: int, r1: int, c0: int, c1: int
) -> None:
    """DMA rows [r0, r1) x cols [c0, c1) of `hbm` (matrix view split at k) into a tile;
    `tile_ap_fn(p0, p1, w0, w1)` gives the tile's access for that sub-block."""
    row_bytes = (c1 - c0) * hbm.esize
    for a, b in _split_rows(r0, r1, row_bytes):
        for src, ro, nr, co, nc in block_dmas(hbm, k, a, b, c0, c1):
            dst = tile_ap_fn(a - r0 + ro, a - r0 + ro + nr, co, co + nc)
            kb.inst(ANY_QUEUE, DmaCopyOp, dst, src)


def store(
    kb: KernelBuilder, tile_ap_fn, hbm: Buf, k: int, r0: int, r1: int, c0: int, c1: int
) -> None:
    row_bytes = (c1 - c0) * hbm.esize
    for a, b in _split_rows(r0, r1, row_bytes):
        for dst, ro, nr, co, nc in block_dmas(hbm, k, a, b, c0, c1):
            src = tile_ap_fn(a - r0 + ro, a - r0 + ro + nr, co, co + nc)
            kb.inst(ANY_QUEUE, DmaCopyOp, dst, src)


def copy_hbm(kb: KernelBuilder, dst: Access, src: Access, parts: int | None = None) -> None:
    """dst = src (equal element counts). A large copy between boxes of the same extents (dims
    of one element aside) is split over several queues along its outer dims, so the pieces
    write disjoint elements (the builder orders only writes that share an element)."""
    ext_d = [-(-(b - a) // s) for a, b, s in dst.slices]
    ext_s = [-(-(b - a) // s) for a, b, s in src.slices]
    if parts is None:
        parts = min(DMA_QUEUES, prod(ext_d) * max(dst.buf.esize, src.buf.esize) // DMA_SPLIT_BYTES)
    nd = [i for i, e in enumerate(ext_d) if e > 1]
    ns = [i for i, e in enumerate(ext_s) if e > 1]
    if parts < 2 or not nd or [ext_d[i] for i in nd] != [ext_s[i] for i in ns]:
        kb.inst(ANY_QUEUE, DmaCopyOp, dst, src)
        return
    i, k, e = nd[0], ns[0], ext_d[nd[0]]
    step = -(-e // min(parts, e))
    for k0 in range(0, e, step):
        k1 = min(e, k0 + step)
        copy_hbm(
            kb, _sub(dst, i, k0, k1), _sub(src, k, k0, k1), -(-parts // e) if k1 - k0 == 1 else 1
        )


def _sub(acc: Access, i: int, k0: int, k1: int) -> Access:
    """Elements [k0, k1) of dim i of an access."""
    a, _, s = acc.slices[i]
    sl = list(acc.slices)
    sl[i] = (a + k0 * s, a + (k1 - 1) * s + 1, s)
    return Access(acc.buf, tuple(sl))

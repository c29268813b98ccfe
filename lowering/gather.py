"""Gathers (nt.gather, nt.gather_elements, nt.gather_nd) as NC-v2 does them: indices are
loaded into SBUF, turned into row numbers of the data by exact int32 arithmetic on GpSimd
(negative indices wrap, out-of-range ones are made to fault), and one indirect DMA per tile
(`nisa.dma_gather` on a DMA queue, descriptors built by GpSimd) brings the rows onto the
partitions; the tile is then stored like any other.

The indirect DMA indexes the first dim of an HBM tensor, so the data is seen as a matrix
[rows, row elements]; when its own shape is not that matrix it is first copied (one DMA) into
a scratch tensor that is."""

from __future__ import annotations

from math import prod

from neuron_opt.dialects import nisa
from neuron_opt.lowering import hbm as H
from neuron_opt.lowering import plan as P
from neuron_opt.lowering.common import PMAX, runs
from neuron_opt.lowering.kernel import ANY_QUEUE, Buf

ROW_BYTES = 16 * 1024  # per partition of a gathered tile; wider rows are gathered in pieces
IDX = "i32"  # what indices are on chip (i64 is narrowed by the DMA, exactly or not at all)
GP = "gpsimd"  # exact int32 arithmetic


def _table(lw, v, rows: int, width: int) -> Buf:
    """v's data as an HBM matrix [rows, width] (its home when it already has that shape)."""
    src = lw.home_of(v)
    if src.shape == (rows, width) or (width == 1 and src.shape == (rows,)):
        return src
    t = lw.kb.hbm("scratch", lw.kb.fresh("h"), (rows, width), src.dtype)
    H.copy_hbm(lw.kb, t.ap(), src.ap())
    return t


class _Tile:
    """Scratch SBUF buffers of one tile, freed together."""

    def __init__(self, lw):
        self.lw, self.bufs = lw, []

    def new(self, parts: int, free: int, dtype: str = IDX) -> Buf:
        b = self.lw.kb.sbuf(parts, (free,), dtype)
        self.bufs.append(b)
        return b

    def free(self) -> None:
        self.lw.kb.free(*self.bufs)


def _wrap(lw, tl: _Tile, idx, dim: int):
    """idx (an [P, N] access of i32) += dim where negative (ONNX's negative indices)."""
    neg = tl.new(idx.partitions, idx.free).ap()
    lw.kb.inst(GP, nisa.TensorScalarOp, neg, idx, op0="lt", operand0=0, op1="mul", operand1=dim)
    lw.kb.inst(GP, nisa.TensorTensorOp, idx, idx, neg, op="add")
    return neg


def _wrap_and_check(lw, tl: _Tile, idx, dim: int, good):
    """_wrap, then a 1/0 mask of idx in [0, dim): a new one, or AND-ed into `good`."""
    kb = lw.kb
    p, n = idx.partitions, idx.free
    neg = _wrap(lw, tl, idx, dim)
    ok = tl.new(p, n).ap()
    kb.inst(GP, nisa.TensorScalarOp, ok, idx, op0="ge", operand0=0)
    kb.inst(GP, nisa.TensorScalarOp, neg, idx, op0="lt", operand0=dim)
    kb.inst(GP, nisa.TensorTensorOp, ok, ok, neg, op="and")
    if good is not None:
        kb.inst(GP, nisa.TensorTensorOp, good, good, ok, op="and")
        return good
    return ok


def _fault_where_bad(lw, rows, good) -> None:
    """Rows of out-of-range indices become -1, which the indirect DMA reports."""
    lw.kb.inst(GP, nisa.SelectOp, rows, good, rows, -1)


def _gather_rows(lw, tl: _Tile, dst: Buf, table: Buf, rows_idx, width: int, store) -> None:
    """dma_gather table rows (row numbers in rows_idx [P, K]) in column pieces, each stored by
    store(tile, c0, c1)."""
    p, k = rows_idx.partitions, rows_idx.free
    esize = dst.esize
    w = max(1, min(width, ROW_BYTES // (esize * k)))
    nrows = table.shape[0]
    for c0 in range(0, width, w):
        c1 = min(width, c0 + w)
        t = tl.new(p, k * (c1 - c0), dst.dtype)
        src = table.ap((0, nrows), (c0, c1)) if len(table.shape) == 2 else table.ap((0, nrows))
        lw.kb.inst(ANY_QUEUE, nisa.DmaGatherOp, t.ap(), src, rows_idx)
        store(t, c0, c1)


def gather(lw, op) -> None:
    """out[a, j, b] = data[a, idx[j], b] (data as [A, D, B], idx flat of n): output row
    q = a * n + j is table row a * D + idx[j]."""
    data, indices = op.operands
    out = op.results[0]
    Ds = P.shape(data)
    axis = op.prop("axis") % len(Ds)
    A, D, B = prod(Ds[:axis]), Ds[axis], prod(Ds[axis + 1 :])
    ihome = lw.home_of(indices)
    n = prod(ihome.shape)
    table = _table(lw, data, A * D, B)
    dst = lw.new_home(out)
    k_out = axis + len(indices.type.get_shape())  # the out dims before B's
    for r0 in range(0, A * n, PMAX):
        r1 = min(r0 + PMAX, A * n)
        p = r1 - r0
        tl = _Tile(lw)
        idx = tl.new(p, 1)
        js = [q % n for q in range(r0, r1)]
        for off, s0, cnt in runs(js):
            for acc, ro, nr, _, _ in H.block_dmas(ihome, len(ihome.shape), s0, s0 + cnt, 0, 1):
                lw.kb.inst(
                    ANY_QUEUE, nisa.DmaCopyOp, idx.ap((off + ro, off + ro + nr), (0, 1)), acc
                )
        if A == 1:  # the indirect DMA itself checks the range [0, D)
            _wrap(lw, tl, idx.ap(), D)
        else:  # + a * D, a = q // n; out-of-range indices must fault, not read row a +- 1
            good = _wrap_and_check(lw, tl, idx.ap(), D, None)
            base = tl.new(p, 1).ap()
            lw.kb.inst(GP, nisa.IotaOp, base, base=r0, channel=1, step=0)
            lw.kb.inst(
                GP, nisa.TensorScalarOp, base, base, op0="div", operand0=n, op1="mul", operand1=D
            )
            lw.kb.inst(GP, nisa.TensorTensorOp, idx.ap(), idx.ap(), base, op="add")
            _fault_where_bad(lw, idx.ap(), good)

        def store(t, c0, c1, r0=r0, r1=r1):
            H.store(lw.kb, lambda a, b, w0, w1: t.ap((a, b), (w0, w1)), dst, k_out, r0, r1, c0, c1)

        _gather_rows(lw, tl, dst, table, idx.ap(), B, store)
        tl.free()


def gather_elements(lw, op) -> None:
    """out[i] = data[i with i_axis -> idx[i]]: one element per index, gathered from the data
    seen as a column [numel, 1]; the flat offset of each element is computed on GpSimd."""
    data, indices = op.operands
    out = op.results[0]
    Ds, Is = P.shape(data), P.shape(indices)
    r = len(Ds)
    axis = op.prop("axis") % r
    strides = [prod(Ds[j + 1 :]) for j in range(r)]
    table = _table(lw, data, prod(Ds), 1)
    ihome = lw.home_of(indices)
    dst = lw.new_home(out)
    R, C = prod(Is[:-1]), Is[-1]
    W = min(C, 2048)
    kb = lw.kb
    for r0 in range(0, R, PMAX):
        r1 = min(r0 + PMAX, R)
        p = r1 - r0
        for c0 in range(0, C, W):
            c1 = min(C, c0 + W)
            w = c1 - c0
            tl = _Tile(lw)
            idx = tl.new(p, w)
            H.load(kb, lambda a, b, w0, w1: idx.ap((a, b), (w0, w1)), ihome, r - 1, r0, r1, c0, c1)
            good = _wrap_and_check(lw, tl, idx.ap(), Ds[axis], None)
            flat = idx.ap()
            if strides[axis] != 1:
                kb.inst(GP, nisa.TensorScalarOp, flat, flat, op0="mul", operand0=strides[axis])
            if axis != r - 1:  # + the last coordinate's offset, f * stride (stride 1)
                col = tl.new(p, w).ap()
                kb.inst(GP, nisa.IotaOp, col, base=c0, channel=0, step=1)
                kb.inst(GP, nisa.TensorTensorOp, flat, flat, col, op="add")
            rowbase = _row_offsets(lw, tl, r0, p, Is[:-1], strides[:-1], skip=axis)
            if rowbase is not None:
                kb.inst(GP, nisa.TensorScalarOp, flat, flat, op0="add", operand0=rowbase)
            _fault_where_bad(lw, flat, good)
            res = tl.new(p, w, dst.dtype)
            rows = table.ap((0, table.shape[0]), *([(0, 1)] * (len(table.shape) - 1)))
            kb.inst(ANY_QUEUE, nisa.DmaGatherOp, res.ap(), rows, flat)
            H.store(kb, lambda a, b, w0, w1: res.ap((a, b), (w0, w1)), dst, r - 1, r0, r1, c0, c1)
            tl.free()


def _row_offsets(lw, tl: _Tile, r0: int, p: int, lead: tuple, strides: list, skip: int):
    """A [p, 1] column: for the rows r0.. of the index matrix (leading dims `lead`), the
    data offset sum_j c_j * strides[j] over the leading coordinates c_j (j != skip)."""
    dims = [j for j in range(len(lead)) if j != skip and lead[j] > 1]
    if not dims:
        return None
    kb = lw.kb
    q = tl.new(p, 1).ap()
    kb.inst(GP, nisa.IotaOp, q, base=r0, channel=1, step=0)
    acc = tl.new(p, 1).ap()
    t = tl.new(p, 1).ap()
    first = True
    for j in dims:
        inner = prod(lead[j + 1 :])
        kb.inst(
            GP, nisa.TensorScalarOp, t, q, op0="div", operand0=inner, op1="mod", operand1=lead[j]
        )
        if first:
            kb.inst(GP, nisa.TensorScalarOp, acc, t, op0="mul", operand0=strides[j])
            first = False
        else:
            kb.inst(GP, nisa.TensorScalarOp, t, t, op0="mul", operand0=strides[j])
            kb.inst(GP, nisa.TensorTensorOp, acc, acc, t, op="add")
    return acc


def gather_nd(lw, op) -> None:
    """out[t, ...] = data[b, idx[t, 0], ..., idx[t, k-1], ...]: tuple t gathers one slab of
    the data seen as [prod(D[:b+k]), prod(D[b+k:])]."""
    data, indices = op.operands
    out = op.results[0]
    Ds, Is = P.shape(data), P.shape(indices)
    b = op.prop("batch_dims") or 0
    k = Is[-1]
    T = prod(Is[:-1])
    width = prod(Ds[b + k :])
    table = _table(lw, data, prod(Ds[: b + k]), width)
    ihome = lw.home_of(indices)
    dst = lw.new_home(out)
    per_batch = T // max(1, prod(Ds[:b]))
    mult = [prod(Ds[b + j + 1 : b + k]) for j in range(k)]
    kb = lw.kb
    for r0 in range(0, T, PMAX):
        r1 = min(r0 + PMAX, T)
        p = r1 - r0
        tl = _Tile(lw)
        idx = tl.new(p, k)
        H.load(
            kb, lambda a, b_, w0, w1: idx.ap((a, b_), (w0, w1)), ihome, len(Is) - 1, r0, r1, 0, k
        )
        row = tl.new(p, 1).ap()
        good = None
        for j in range(k):
            c = idx.ap((0, p), (j, j + 1))
            good = _wrap_and_check(lw, tl, c, Ds[b + j], good)
            if j == 0:
                kb.inst(GP, nisa.TensorScalarOp, row, c, op0="mul", operand0=mult[j])
            else:
                kb.inst(GP, nisa.TensorScalarOp, c, c, op0="mul", operand0=mult[j])
                kb.inst(GP, nisa.TensorTensorOp, row, row, c, op="add")
        if b:
            base = tl.new(p, 1).ap()
            kb.inst(GP, nisa.IotaOp, base, base=r0, channel=1, step=0)
            kb.inst(
                GP,
                nisa.TensorScalarOp,
                base,
                base,
                op0="div",
                operand0=per_batch,
                op1="mul",
                operand1=prod(Ds[b : b + k]),
            )
            kb.inst(GP, nisa.TensorTensorOp, row, row, base, op="add")
        _fault_where_bad(lw, row, good)
        k_out = len(Is) - 1

        def store(t, c0, c1, r0=r0, r1=r1):
            H.store(kb, lambda a, b_, w0, w1: t.ap((a, b_), (w0, w1)), dst, k_out, r0, r1, c0, c1)

        _gather_rows(lw, tl, dst, table, row, width, store)
        tl.free()

"""Contractions (matmul, batch_matmul, linear) as TensorE tiles.

`nisa.matmul` computes stationary.T @ moving with K on the partitions of both. The output
row tile [Mt <= PMAX, N] puts M on PSUM partitions, so the stationary operand is A^T [K, Mt]
(A's row tile transposed on TensorE, once per row tile and kept for all N) and the moving
operand is B [K, Nc <= NMAX] as stored (rows of B are K: no transpose). K is tiled by PMAX
and accumulated in one PSUM bank per NMAX columns; a linear bias joins the same accumulation group
as a K=1 matmul with a row of ones. B tiles stay in SBUF for the whole group when they fit,
else N is blocked (N-block outer, row tiles inner) so each B block is loaded once.
"""

from __future__ import annotations

from math import prod

import numpy as np

from neuron_opt.dialects import nisa, nt
from neuron_opt.dialects.types import FP8_MAX
from neuron_opt.lowering import plan as P
from neuron_opt.lowering.common import NMAX, PMAX, dt, pad_shape
from neuron_opt.lowering.kernel import DT_BYTES, SBUF_BYTES, Buf
from neuron_opt.lowering.rowwise import column

M_GROUP = 4  # row tiles sharing each B chunk in a pass
B_BUDGET = 128 * 1024  # bytes per partition of resident B tiles (of 176 KiB usable)
STEP_RESERVE = 32 * 1024  # per partition: a step's output, epilogue and staging tiles


def operands(op):
    a, b = op.operands[0], op.operands[1]
    bias = op.operands[2] if len(op.operands) > 2 else None
    trans_b = isinstance(op, nt.LinearOp) and bool(op.prop("trans_b"))
    return a, b, bias, trans_b


def dims(op):
    a, _b, _bias, _trans_b = operands(op)
    S = P.shape(op.results[0])
    K = P.shape(a)[-1]
    return S, S[-2], K, S[-1]


def tiling(lw, op):
    """(r0, r1, c0, c1) steps of the output matrix [batch*M, N], each one PSUM bank wide.

    Order: N blocks (B resident per block) > groups of M_GROUP row tiles > 512-column chunks >
    row tiles. While the first row group streams in a block's B, each B chunk then feeds
    M_GROUP row tiles of compute (DMA and TensorE rates balance); the group's A^T tiles stay
    cached across the chunks."""
    _a, b, _, _ = operands(op)
    S, M, K, N = dims(op)
    batches = prod(S[:-2])
    kt = -(-K // PMAX)
    esz = DT_BYTES[dt(b)]
    per_col = kt * esz * (batches if len(P.shape(b)) > 2 else 1)
    u = op.prop("unscale")
    per_column_unscale = u is not None and len(u) > 1
    per_col += 4 if per_column_unscale else 0  # its per-column unscale row (fp32)
    nb = _block_cols(lw, op, per_col, N)
    rows = [
        (bi * M + m0, bi * M + min(m0 + PMAX, M))
        for bi in range(batches)
        for m0 in range(0, M, PMAX)
    ]
    for c0 in range(0, N, nb):
        c1 = min(c0 + nb, N)
        lw.mm_block = (c0, c1)
        if per_column_unscale:  # scaled fp8's unscale rows load beside the weights
            for n0 in range(c0, c1, NMAX):
                _unscale_row(lw, op, n0, min(n0 + NMAX, c1))
        _prefetch_block(lw, op, rows[:M_GROUP], batches)
        for g in range(0, len(rows), M_GROUP):
            for n0 in range(c0, c1, NMAX):
                for r0, r1 in rows[g : g + M_GROUP]:
                    yield r0, r1, n0, min(n0 + NMAX, c1)


def _block_cols(lw, op, per_col: int, N: int) -> int:
    """Columns of B kept in SBUF per N block: what fits beside the cached A^T tiles of a row
    group, an A row tile (and the fp32 row a fused cast converts), the values kept resident
    and a step's own tiles (a wide K leaves less room: the weights stream in narrower
    blocks)."""
    _S, _M, K, _ = dims(op)
    esz = DT_BYTES[dt(op.operands[0])]
    a_side = M_GROUP * -(-K // PMAX) * PMAX * esz + K * (esz + 4)  # + an fp32 row staged for a cast
    budget = min(B_BUDGET, SBUF_BYTES - a_side - lw.res_bytes - STEP_RESERVE)
    if per_col * N <= budget:
        return N
    return max(NMAX, (budget // per_col) // NMAX * NMAX)


def _batch_index(shape_v, out_batch, bi) -> int:
    sv = pad_shape(shape_v, len(out_batch))
    idx = np.unravel_index(bi, out_batch) if out_batch else ()
    flat = 0
    for i, (do, dv) in enumerate(zip(out_batch, sv)):
        flat = flat * dv + (int(idx[i]) if dv == do else 0)
    return flat


def tile(lw, op, r0: int, r1: int, c0: int, c1: int, func: str = "copy", odt: str | None = None):
    """The output tile rows [r0, r1) x cols [c0, c1); with `func`, the PSUM eviction applies
    that ScalarE function on the way (an activation epilogue) and writes dtype `odt`."""
    a, b, bias, trans_b = operands(op)
    S, M, K, N = dims(op)
    kb = lw.kb
    bi, _m0 = divmod(r0, M)
    mt = r1 - r0
    bb = _batch_index(P.shape(b)[:-2], S[:-2], bi)
    mdt = dt(a)
    kt = -(-K // PMAX)
    _drop_other_blocks(lw, *getattr(lw, "mm_block", (0, N)))
    at = _row_at(lw, op, r0, r1)
    odt = odt or dt(op.results[0])
    out = kb.sbuf(mt, (c1 - c0,), odt)
    for n0 in range(c0, c1, NMAX):
        n1 = min(n0 + NMAX, c1)
        ps = kb.psum(mt, (n1 - n0,))
        steps = []
        for kk in range(kt):
            bt = _b_tile(lw, b, bb, kk, K, n0, n1, trans_b, mdt)
            kc = min(PMAX, K - kk * PMAX)
            steps.append((at[kk].ap((0, kc), (0, mt)), bt.ap((0, kc), (0, n1 - n0))))
        row_bias = bias is not None and _is_row(P.shape(bias), N)
        if row_bias:
            steps.append(_bias_step(lw, bias, n0, n1, mt, op))
        for i, (st, mv) in enumerate(steps):
            kb.inst(
                "tensor", nisa.MatmulOp, ps.ap(), st, mv, start=i == 0, stop=i == len(steps) - 1
            )
        dst = out.ap((0, mt), (n0 - c0, n1 - c0))
        if bias is not None and not row_bias:
            _add_bias_evicting(lw, op, dst, ps.ap(), bias, S, r0, r1, n0, n1, func)
        else:
            _evict_unscaled(lw, op, dst, ps.ap(), n0, n1, mt, func)
        kb.free(ps)
    return out


def _evict_unscaled(lw, op, dst, ps, n0: int, n1: int, mt: int, func: str) -> None:
    """The PSUM eviction, times a scaled-fp8 contraction's unscale: one value is the
    instruction's scale; one per output column multiplies by a row of them held on every
    partition (one VectorE instruction; the activation, if any, follows)."""
    u = op.prop("unscale")
    if u is None or len(u) == 1:
        lw.evict(dst, ps, func, None if u is None else u[0])
        return
    row = _unscale_row(lw, op, n0, n1).ap((0, mt))
    if func == "copy":
        lw.kb.inst("vector", nisa.TensorTensorOp, dst, ps, row, op="mul")
        return
    tmp = lw.kb.sbuf(mt, (n1 - n0,), "f32")
    lw.kb.inst("vector", nisa.TensorTensorOp, tmp.ap(), ps, row, op="mul")
    lw.kb.inst("scalar", nisa.ActivationOp, dst, tmp.ap(), func=func)
    lw.kb.free(tmp)


def _is_row(s: tuple[int, ...], n: int) -> bool:
    """A bias that is one value per output column (added by a ones-row matmul)."""
    return prod(s[:-1]) == 1 and s[-1] == n


def _unscale_row(lw, op, n0: int, n1: int) -> Buf:
    """A per-column unscale's values [n0, n1) on every partition, built once per group."""
    key = ("urow", op, n0, n1)
    if key not in lw.group_cache:
        lw.group_cache[key] = lw.const_row(op.prop("unscale"), n0, n1, PMAX)
    return lw.group_cache[key]


def _add_bias_evicting(lw, op, dst, ps, bias, S, r0, r1, n0, n1, func: str) -> None:
    """Any other broadcasting bias (a scalar, a column, a full matrix): added in fp32 as the
    PSUM result is evicted (after the unscale of scaled fp8), then the epilogue's function:
    one rounding, as the interpreter."""
    kind, x = lw.operand(bias, S, len(S) - 1, r0, r1, n0, n1)
    kb = lw.kb
    if op.unscale is not None:
        unscaled = kb.sbuf(r1 - r0, (n1 - n0,), "f32")
        lw.tile_cache[("tmp", id(unscaled))] = unscaled
        _evict_unscaled(lw, op, unscaled.ap(), ps, n0, n1, r1 - r0, "copy")
        ps = unscaled.ap()
    tgt = dst if func == "copy" else lw.kb.sbuf(r1 - r0, (n1 - n0,), "f32").ap()
    if kind == "tile":
        kb.inst("vector", nisa.TensorTensorOp, tgt, ps, x, op="add")
    else:
        kb.inst("vector", nisa.TensorScalarOp, tgt, ps, op0="add", operand0=x)
    if func != "copy":
        kb.inst("scalar", nisa.ActivationOp, dst, tgt, func=func)
        kb.free(tgt.buf)


def _row_at(lw, op, r0: int, r1: int):
    """The A^T tiles of output rows [r0, r1) of [batch*M, N]."""
    a = op.operands[0]
    S, M, K, _N = dims(op)
    bi, m0 = divmod(r0, M)
    return _at_tiles(lw, a, _batch_index(P.shape(a)[:-2], S[:-2], bi), m0, r1 - r0, M, K, dt(a))


def _prefetch_block(lw, op, rows, batches: int) -> None:
    """Emit the loads of an N block [lw.mm_block) up front: the first row group's A^T tiles,
    then all the block's B tiles. In program order they precede the block's stores, so no load
    queues behind a store that waits for compute, and a layer's weights stream in (each tile
    waiting only for its SBUF space) while the previous layer computes."""
    a, b, _, trans_b = operands(op)
    S, _M, K, _N = dims(op)
    c0, c1 = lw.mm_block
    _drop_other_blocks(lw, c0, c1)
    saved = lw.tile_cache

    def staged():  # what a load stages (an A row, a cast's input) dies after its transposes/cast
        lw.kb.free(*set(lw.tile_cache.values()))
        lw.tile_cache = {}

    lw.tile_cache = {}
    for r0, r1 in rows:
        _row_at(lw, op, r0, r1)
        staged()
    for bb in sorted({_batch_index(P.shape(b)[:-2], S[:-2], bi) for bi in range(batches)}):
        for n0 in range(c0, c1, NMAX):
            for kk in range(-(-K // PMAX)):
                _b_tile(lw, b, bb, kk, K, n0, min(n0 + NMAX, c1), trans_b, dt(a))
                staged()
    lw.tile_cache = saved


def _at_tiles(lw, a, ba, m0, mt, M, K, mdt):
    """A^T tiles [Kc, Mt], one per K tile, cached for the M_GROUP row tiles of the current pass
    (the oldest row tile's are dropped first). A computed transposed (nisa.transposed) is read
    as stored: no transpose at all."""
    key = ("AT", a, ba, m0, mt)
    at = lw.group_cache.get(key)
    if at is not None:
        return at
    cached = [k_ for k_ in lw.group_cache if k_[0] == "AT"]
    while len(cached) >= M_GROUP:
        lw.kb.free(*lw.group_cache.pop(cached.pop(0)))
    ra = len(P.shape(a)) - 1
    if a in lw.transposed:
        at = [lw.tile(a, 1, k0, min(K, k0 + PMAX), m0, m0 + mt) for k0 in range(0, K, PMAX)]
    elif a in lw.resident:  # transpose straight out of the produced tiles (views, no copy)
        at = [
            _transpose_blocks(
                lw,
                lw.tile(a, ra, ba * M + m0, ba * M + m0 + mt, k0, min(K, k0 + PMAX)),
                mt,
                min(PMAX, K - k0),
                mdt,
            )[0]
            for k0 in range(0, K, PMAX)
        ]
    else:
        x, clamp = _saturated(lw, a)
        rows = lw.tile(x, ra, ba * M + m0, ba * M + m0 + mt, 0, K)
        at = _transpose_blocks(lw, rows, mt, K, mdt, clamp)
    lw.group_cache[key] = at
    return at


def _saturated(lw, a):
    """(x, True) when A is a fused saturating cast of x to fp8: its transposes then read x
    (exact in PSUM) and the evictions clamp to +-240 and round, so the cast costs no pass of
    its own; else (a, False)."""
    p = a.owner
    if (
        isinstance(p, nt.CastOp)
        and p in lw.fused
        and not P.dma_cast(p)
        and P.shape(p.operands[0]) == P.shape(a)
    ):
        return p.operands[0], True
    return a, False


def tiling_t(lw, op):
    """(n0, n1, m0, m1) steps of C^T [N, M] in PMAX x PMAX tiles, N blocks as in `tiling`."""
    _S, M, K, N = dims(op)
    b = op.operands[1]
    per_col = -(-K // PMAX) * DT_BYTES[dt(b)]
    nb = _block_cols(lw, op, per_col, N)
    for c0 in range(0, N, nb):
        lw.mm_block = (c0, min(N, c0 + nb))
        _prefetch_block(lw, op, [(m0, min(m0 + PMAX, M)) for m0 in range(0, M, PMAX)][:M_GROUP], 1)
        for n0 in range(c0, min(N, c0 + nb), PMAX):
            for m0 in range(0, M, PMAX):
                yield n0, min(n0 + PMAX, N), m0, min(m0 + PMAX, M)


def tile_t(lw, op, n0: int, n1: int, m0: int, m1: int, func: str = "copy", odt: str | None = None):
    """The tile [n0:n1, m0:m1] of C^T (2-D): stationary = a B column slice [Kc, n], moving =
    A^T [Kc, m]; a bias along N is a per-partition column, fused into the eviction."""
    a, b, bias, trans_b = operands(op)
    _S, M, K, N = dims(op)
    kb = lw.kb
    mdt = dt(a)
    _drop_other_blocks(lw, *getattr(lw, "mm_block", (0, N)))
    at = _at_tiles(lw, a, 0, m0, m1 - m0, M, K, mdt)
    nc0 = n0 // NMAX * NMAX
    nc1 = min(N, nc0 + NMAX, getattr(lw, "mm_block", (0, N))[1])
    out = kb.sbuf(n1 - n0, (m1 - m0,), odt or dt(op.results[0]))
    ps = kb.psum(n1 - n0, (m1 - m0,))
    kt = -(-K // PMAX)
    for kk in range(kt):
        kc = min(PMAX, K - kk * PMAX)
        st = _b_tile(lw, b, 0, kk, K, nc0, nc1, trans_b, mdt).ap((0, kc), (n0 - nc0, n1 - nc0))
        mv = at[kk].ap((0, kc), (0, m1 - m0))
        kb.inst("tensor", nisa.MatmulOp, ps.ap(), st, mv, start=kk == 0, stop=kk == kt - 1)
    u = op.prop("unscale")  # scaled fp8: one value, or one per output column (a partition here)
    scale = None
    if u is not None and len(u) == 1:
        scale = u[0]
    elif u is not None:
        key = ("ucol", op, n0, n1)
        if key not in lw.group_cache:
            lw.group_cache[key] = lw.const_column(u, n0, n1)
        scale = lw.group_cache[key].ap()
    if bias is not None:
        col = column(lw, bias, list(range(n0, n1)))
        kb.inst(
            "scalar",
            nisa.ActivationOp,
            out.ap(),
            ps.ap(),
            func=func,
            bias=col,
            **({} if scale is None else {"scale": scale}),
        )
    else:
        lw.evict(out.ap(), ps.ap(), func, scale)
    kb.free(ps)
    return out


def _drop_other_blocks(lw, c0, c1) -> None:
    """Free the B tiles of N blocks other than [c0, c1): each block is loaded once."""
    for key in [k_ for k_ in lw.group_cache if k_[0] in ("B", "bias") and not c0 <= k_[-2] < c1]:
        lw.kb.free(lw.group_cache.pop(key))


def _transpose_blocks(lw, rows, parts: int, width: int, mdt: str, clamp: bool = False):
    """[parts, width] SBUF tile -> list of [Kc, parts] SBUF tiles (TensorE transposes); with
    `clamp`, each eviction saturates to fp8's range on the way."""
    kb = lw.kb
    out = []
    for k0 in range(0, width, PMAX):
        kc = min(PMAX, width - k0)
        ps = kb.psum(kc, (parts,))
        src = rows.ap((0, parts), (k0, k0 + kc))
        kb.inst("tensor", nisa.TransposeOp, ps.ap(), src)
        t = kb.sbuf(kc, (parts,), mdt)
        if clamp:
            kb.inst(
                "vector",
                nisa.TensorScalarOp,
                t.ap(),
                ps.ap(),
                op0="max",
                operand0=-FP8_MAX,
                op1="min",
                operand1=FP8_MAX,
            )
        else:
            lw.evict(t.ap(), ps.ap())
        kb.free(ps)
        out.append(t)
    return out


def _b_tile(lw, b, bb, kk, K, n0, n1, trans_b, mdt):
    key = ("B", b, bb, kk, n0, n1)
    t = lw.group_cache.get(key)
    if t is not None:
        return t
    kb = lw.kb
    k0, k1 = kk * PMAX, min(K, (kk + 1) * PMAX)
    rb = len(P.shape(b)) - 1
    if not trans_b:
        t = lw.tile(b, rb, bb * K + k0, bb * K + k1, n0, n1, long=True)
        lw.tile_cache.pop((b, rb, bb * K + k0, bb * K + k1, n0, n1), None)
    else:  # W [N, K]: rows n are loaded and transposed on TensorE
        t = kb.sbuf(k1 - k0, (n1 - n0,), mdt, long=True)
        for s0 in range(n0, n1, PMAX):
            s1 = min(s0 + PMAX, n1)
            rows = lw.tile(b, rb, s0, s1, k0, k1)
            ps = kb.psum(k1 - k0, (s1 - s0,))
            src = rows.ap()
            kb.inst("tensor", nisa.TransposeOp, ps.ap(), src)
            lw.evict(t.ap((0, k1 - k0), (s0 - n0, s1 - n0)), ps.ap())
            kb.free(ps)
    lw.group_cache[key] = t
    return t


def _bias_step(lw, bias, n0, n1, mt, op):
    """(stationary, moving) of the bias matmul: ones[1, Mt].T @ bias[1, Nc] adds the bias row.
    Under scaled fp8 the row is bias / unscale (exact: powers of two), so that the eviction's
    unscale gives acc * unscale + bias."""
    s = P.shape(bias)
    bdt = dt(bias)
    key = ("bias", bias, n0, n1)
    row = lw.group_cache.get(key)
    if row is None:
        row = lw.tile(bias, len(s) - 1, 0, 1, n0, n1)
        lw.tile_cache.pop((bias, len(s) - 1, 0, 1, n0, n1), None)
        if (u := op.prop("unscale")) is not None:
            row = _divided(lw, row, [1.0 / x for x in u], n0, n1)
        lw.group_cache[key] = row
    ones = lw.ones("f32" if bdt == "tf32" else bdt)
    return ones.ap((0, 1), (0, mt)), row.ap((0, 1), (0, n1 - n0))


def _divided(lw, row, inverse: list[float], n0: int, n1: int):
    """The bias row [1, Nc] times `inverse` (one value, or one per column), in its dtype."""
    kb = lw.kb
    out = kb.sbuf(1, (n1 - n0,), row.dtype)
    if len(inverse) == 1:
        kb.inst("vector", nisa.TensorScalarOp, out.ap(), row.ap(), op0="mul", operand0=inverse[0])
    else:
        inv = lw.const_row(inverse, n0, n1)
        kb.inst("vector", nisa.TensorTensorOp, out.ap(), row.ap(), inv.ap(), op="mul")
        kb.free(inv)
    kb.free(row)
    return out

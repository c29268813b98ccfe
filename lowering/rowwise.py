"""Row-wise ops with the reduced axes on the free dim (rows on partitions): softmax,
log_softmax, layer_norm (bn_stats/bn_aggr), rms_norm, trailing-axes reductions, inference
batch_norm (one channel per row) and group_norm (one (sample, group) per row). Intermediates
stay fp32 and each result is rounded once, as the interpreter does."""

from __future__ import annotations

from math import prod

from neuron_opt.dialects import nisa, nt
from neuron_opt.lowering import hbm as H
from neuron_opt.lowering import plan as P
from neuron_opt.lowering.common import EW_COLS, PMAX, alu_engine, dt, runs
from neuron_opt.lowering.kernel import ANY_QUEUE
from neuron_opt.lowering.movement import permute, permuted_scratch

BN_FMAX = 512
REDUCE_COLS = 8192  # free size of one tensor_reduce (rows longer than this reduce in chunks)


def _scratch(lw, parts, width, dtype="f32"):
    t = lw.kb.sbuf(parts, (width,), dtype)
    lw.tile_cache[("scratch", id(t))] = t
    return t


def tile(lw, op, k, r0, r1, c0, c1):
    S = P.shape(op.results[0])
    C = prod(S[k:])
    p = r1 - r0
    kb = lw.kb
    x = lw.tile(op.operands[0], k, r0, r1, 0, C).ap()
    out = kb.sbuf(p, (C,), dt(op.results[0]))
    if isinstance(op, (nt.SoftmaxOp, nt.LogSoftmaxOp)):
        _softmax(lw, out.ap(), x, p, C, isinstance(op, nt.LogSoftmaxOp))
        return out
    o = out.ap()
    eps = op.prop("epsilon")
    if isinstance(op, nt.LayerNormOp):
        mean, var = _mean_var(lw, x, p, C)
    else:  # rms_norm: mean of squares
        sq = _scratch(lw, p, C).ap()
        ssum = _scratch(lw, p, 1).ap()
        kb.inst("scalar", nisa.ActivationOp, sq, x, func="square", accumulate=ssum)
        var = _scratch(lw, p, 1).ap()
        kb.inst("vector", nisa.TensorScalarOp, var, ssum, op0="div", operand0=C)
        mean = None
    sd = _scratch(lw, p, 1).ap()
    eps_col = lw.const_col(float(eps), p)
    kb.inst("scalar", nisa.ActivationOp, sd, var, func="sqrt", bias=eps_col)
    y = _scratch(lw, p, C).ap()
    if mean is not None:
        kb.inst(
            "vector", nisa.TensorScalarOp, y, x, op0="sub", operand0=mean, op1="div", operand1=sd
        )
    else:
        kb.inst("vector", nisa.TensorScalarOp, y, x, op0="div", operand0=sd)
    scale = op.operands[1]
    bias = op.operands[2] if len(op.operands) > 2 else None
    kind, sc = lw.operand(scale, S, k, r0, r1, 0, C)
    last = o if bias is None else _scratch(lw, p, C).ap()
    _apply(lw, last, y, "mul", kind, sc)
    if bias is not None:
        kind, bv = lw.operand(bias, S, k, r0, r1, 0, C)
        _apply(lw, o, last, "add", kind, bv)
    return out


def _softmax(lw, o, x, p: int, C: int, log: bool) -> None:
    """Softmax (or log-softmax) of the rows of tile x into o, along the free dim."""
    kb = lw.kb
    nmax = _scratch(lw, p, 1).ap()
    kb.inst("vector", nisa.TensorReduceOp, nmax, x, op="max", negate=True)
    e = _scratch(lw, p, C).ap()
    s = _scratch(lw, p, 1).ap()
    kb.inst("scalar", nisa.ActivationOp, e, x, func="exp", bias=nmax, accumulate=s)
    if not log:
        kb.inst("vector", nisa.TensorScalarOp, o, e, op0="div", operand0=s)
    else:
        ls = _scratch(lw, p, 1).ap()
        kb.inst("scalar", nisa.ActivationOp, ls, s, func="log")
        kb.inst(
            "vector", nisa.TensorScalarOp, o, x, op0="add", operand0=nmax, op1="sub", operand1=ls
        )


def softmax_any_axis(lw, op) -> None:
    """Softmax over a non-last axis: that axis is moved last by DMA, the rows are normalized
    along the free dim, and the result is moved back."""
    x, out = op.operands[0], op.results[0]
    S = P.shape(x)
    rank = len(S)
    axis = op.prop("axis") % rank
    perm = [a for a in range(rank) if a != axis] + [axis]
    src = permuted_scratch(lw, lw.home_of(x), perm)
    tmp = lw.kb.hbm("scratch", lw.kb.fresh("h"), src.shape, dt(out))
    R, C = prod(src.shape[:-1]), src.shape[-1]
    for r0 in range(0, R, PMAX):
        r1 = min(r0 + PMAX, R)
        lw.tile_cache = {}
        t = _scratch(lw, r1 - r0, C, src.dtype)
        H.load(lw.kb, lambda a, b, w0, w1: t.ap((a, b), (w0, w1)), src, rank - 1, r0, r1, 0, C)
        res = _scratch(lw, r1 - r0, C, dt(out))
        _softmax(lw, res.ap(), t.ap(), r1 - r0, C, isinstance(op, nt.LogSoftmaxOp))
        H.store(lw.kb, lambda a, b, w0, w1: res.ap((a, b), (w0, w1)), tmp, rank - 1, r0, r1, 0, C)
        lw.kb.free(*lw.tile_cache.values())
        lw.tile_cache = {}
    inverse = [perm.index(a) for a in range(rank)]
    permute(lw, tmp, lw.new_home(out), inverse)


def _apply(lw, dst, src, alu, kind, val):
    if kind in ("imm", "col"):
        lw.kb.inst("vector", nisa.TensorScalarOp, dst, src, op0=alu, operand0=val)
    else:
        lw.kb.inst("vector", nisa.TensorTensorOp, dst, src, val, op=alu)


def reduce(lw, op):
    x = op.operands[0]
    Sx = P.shape(x)
    rank = len(Sx)
    axes = sorted(a % rank for a in (op.prop("axes") or range(rank)))
    kx = rank - len(axes)
    src = None
    if axes != list(range(kx, rank)):
        # move the reduced axes last by DMA (the kept ones keep their order, so the result's
        # element order is unchanged), then reduce along the free dim
        perm = [a for a in range(rank) if a not in axes] + axes
        src = permuted_scratch(lw, lw.home_of(x), perm)
        Sx = tuple(Sx[p] for p in perm)
    out = op.results[0]
    So = P.shape(out)
    dst = lw.new_home(out)
    R, C = prod(Sx[:kx]), prod(Sx[kx:])
    alu = "max" if isinstance(op, nt.ReduceMaxOp) else "add"
    chunks = [(c0, min(C, c0 + REDUCE_COLS)) for c0 in range(0, C, REDUCE_COLS)]
    for r0 in range(0, R, PMAX):
        r1 = min(r0 + PMAX, R)
        lw.tile_cache = {}
        res = lw.kb.sbuf(r1 - r0, (1,), dt(out))
        mean = isinstance(op, nt.ReduceMeanOp)
        exact = alu_engine(dt(out)) == "gpsimd"  # 32-bit integers: exactly, on GpSimd

        def reduce_into(acc, t):
            if exact:
                _int32_reduce(lw, acc, t, alu)
            else:
                lw.kb.inst("vector", nisa.TensorReduceOp, acc, t, op=alu)

        total = _scratch(lw, r1 - r0, 1).ap() if mean else res.ap()
        # rows longer than a chunk: one partial per chunk (fp32, or the integers' own type),
        # then a reduce of the partials
        part = (
            _scratch(lw, r1 - r0, len(chunks), dt(out) if exact else "f32")
            if len(chunks) > 1
            else None
        )
        for i, (c0, c1) in enumerate(chunks):
            kept, lw.tile_cache = lw.tile_cache, {}
            if src is None:
                t = lw.tile(x, kx, r0, r1, c0, c1).ap()
            else:
                tb = _scratch(lw, r1 - r0, c1 - c0, src.dtype)
                H.load(lw.kb, lambda a, b, w0, w1: tb.ap((a, b), (w0, w1)), src, kx, r0, r1, c0, c1)
                t = tb.ap()
            acc = part.ap((0, r1 - r0), (i, i + 1)) if part is not None else total
            reduce_into(acc, t)
            lw.kb.free(*lw.tile_cache.values())
            lw.tile_cache = kept
        if part is not None:
            reduce_into(total, part.ap())
        if mean:
            lw.kb.inst("vector", nisa.TensorScalarOp, res.ap(), total, op0="div", operand0=C)
        H.store(lw.kb, lambda a, b, w0, w1: res.ap((a, b), (w0, w1)), dst, len(So), r0, r1, 0, 1)
        lw.kb.free(res, *lw.tile_cache.values())
        lw.tile_cache = {}


def _int32_reduce(lw, res, t, alu: str) -> None:
    """A free-dim reduction of 32-bit integers, exactly: a tree of GpSimd tensor_tensor ops
    halving the width (VectorE's tensor_reduce goes through fp32, exact only to 2^24)."""
    p, width = t.partitions, t.free
    cur = t.buf
    while width > 1:
        half = width // 2
        nxt = _scratch(lw, p, half, cur.dtype) if half > 1 else None
        out = nxt.ap() if nxt is not None else res
        lo, hi = cur.ap((0, p), (0, half)), cur.ap((0, p), (half, 2 * half))
        lw.kb.inst("gpsimd", nisa.TensorTensorOp, out, lo, hi, op=alu)
        if width % 2:  # the odd column folds into the first
            first = out if nxt is None else nxt.ap((0, p), (0, 1))
            lw.kb.inst(
                "gpsimd",
                nisa.TensorTensorOp,
                first,
                first,
                cur.ap((0, p), (width - 1, width)),
                op=alu,
            )
        if nxt is None:  # the last step wrote res
            return
        cur, width = nxt, half
    lw.kb.inst("gpsimd", nisa.TensorCopyOp, res, cur.ap((0, p), (0, 1)))  # a single column: a copy


def column(lw, v, rows: list[int]):
    """A [len(rows), 1] SBUF column of v's elements at flat indices `rows`."""
    src = lw.home_of(v)
    t = _scratch(lw, len(rows), 1, src.dtype)
    for off, s0, n in runs(rows):
        for acc, ro, nr, _, _ in H.block_dmas(src, len(src.shape), s0, s0 + n, 0, 1):
            d = t.ap((off + ro, off + ro + nr), (0, 1))
            lw.kb.inst(ANY_QUEUE, nisa.DmaCopyOp, d, acc)
    return t.ap()


def _mean_var(lw, x, p: int, C: int):
    """Per-row mean and (biased) variance of tile x [p, C] along the free dim, by bn_stats
    over chunks of at most BN_FMAX and bn_aggr."""
    kb = lw.kb
    g = -(-C // BN_FMAX)
    st = _scratch(lw, p, 3 * g).ap()
    for i in range(g):
        a, b = i * BN_FMAX, min(C, (i + 1) * BN_FMAX)
        kb.inst(
            "vector",
            nisa.BnStatsOp,
            st.buf.ap((0, p), (3 * i, 3 * i + 3)),
            x.buf.ap((0, p), (a, b)),
        )
    mv = _scratch(lw, p, 2)
    kb.inst("vector", nisa.BnAggrOp, mv.ap(), st)
    return mv.ap((0, p), (0, 1)), mv.ap((0, p), (1, 2))


def group_norm(lw, op):
    """Rows are (sample, group) pairs over the group's channels and spatial dims: x's layout
    [N, C, spatial] is [N*groups, C/groups*spatial] row-major. With a group per channel
    (InstanceNormalization) each row is one channel and scale/bias are per-row scalars; else
    the fp32 normalized rows go to an HBM scratch and a second pass over (sample, channel)
    rows applies scale and bias. Everything stays fp32 until the one rounding of the result."""
    x, scale, bias = op.operands
    S = P.shape(x)
    Ch, G = S[1], op.prop("groups")
    W = prod(S[2:]) * (Ch // G)
    out = op.results[0]
    dst = lw.new_home(out)
    eps = float(op.prop("epsilon"))
    kb = lw.kb
    per_row = G == Ch
    ynorm = None if per_row else kb.hbm("scratch", kb.fresh("h"), S, "f32")
    for r0 in range(0, S[0] * G, PMAX):
        r1 = min(r0 + PMAX, S[0] * G)
        p = r1 - r0
        lw.tile_cache = {}
        if per_row:
            t = lw.tile(x, 2, r0, r1, 0, W).ap()
        else:  # row (n, g) is columns [g*W, (g+1)*W) of row n in the [N, C*spatial] view
            tb = _scratch(lw, p, W, lw.home_of(x).dtype)
            for r in range(r0, r1):
                n, g = divmod(r, G)
                H.load(
                    kb,
                    lambda a, b, w0, w1, q=r - r0: tb.ap((q + a, q + b), (w0, w1)),
                    lw.home_of(x),
                    1,
                    n,
                    n + 1,
                    g * W,
                    (g + 1) * W,
                )
            t = tb.ap()
        mean, var = _mean_var(lw, t, p, W)
        sd = _scratch(lw, p, 1).ap()
        kb.inst("scalar", nisa.ActivationOp, sd, var, func="sqrt", bias=lw.const_col(eps, p))
        y = _scratch(lw, p, W).ap()
        kb.inst(
            "vector", nisa.TensorScalarOp, y, t, op0="sub", operand0=mean, op1="div", operand1=sd
        )
        if ynorm is None:  # per row
            ch = [r % Ch for r in range(r0, r1)]
            sc, b = column(lw, scale, ch), column(lw, bias, ch)
            res = kb.sbuf(p, (W,), dt(out))
            kb.inst(
                "vector",
                nisa.TensorScalarOp,
                res.ap(),
                y,
                op0="mul",
                operand0=sc,
                op1="add",
                operand1=b,
            )
            H.store(kb, lambda a, b_, w0, w1: res.ap((a, b_), (w0, w1)), dst, 2, r0, r1, 0, W)
            kb.free(res)
        else:
            for r in range(r0, r1):
                n, g = divmod(r, G)
                H.store(
                    kb,
                    lambda a, b_, w0, w1, q=r - r0: y.buf.ap((q + a, q + b_), (w0, w1)),
                    ynorm,
                    1,
                    n,
                    n + 1,
                    g * W,
                    (g + 1) * W,
                )
        kb.free(*lw.tile_cache.values())
        lw.tile_cache = {}
    if ynorm is not None:
        _scale_bias_rows(lw, ynorm, scale, bias, dst)


def _scale_bias_rows(lw, y, scale, bias, dst) -> None:
    """dst = y * scale + bias per channel, over (sample, channel) rows of y [N, C, spatial], in
    column chunks (any spatial size)."""
    kb = lw.kb
    S = y.shape
    Ch, C = S[1], prod(S[2:])
    for r0 in range(0, S[0] * Ch, PMAX):
        r1 = min(r0 + PMAX, S[0] * Ch)
        p = r1 - r0
        lw.tile_cache = {}
        ch = [r % Ch for r in range(r0, r1)]
        sc, b = column(lw, scale, ch), column(lw, bias, ch)
        columns = list(lw.tile_cache.values())
        for c0 in range(0, C, EW_COLS):
            c1 = min(C, c0 + EW_COLS)
            t = kb.sbuf(p, (c1 - c0,), "f32")
            H.load(kb, lambda a, b_, w0, w1: t.ap((a, b_), (w0, w1)), y, 2, r0, r1, c0, c1)
            res = kb.sbuf(p, (c1 - c0,), dst.dtype)
            kb.inst(
                "vector",
                nisa.TensorScalarOp,
                res.ap(),
                t.ap(),
                op0="mul",
                operand0=sc,
                op1="add",
                operand1=b,
            )
            H.store(kb, lambda a, b_, w0, w1: res.ap((a, b_), (w0, w1)), dst, 2, r0, r1, c0, c1)
            kb.free(t, res)
        kb.free(*columns)
        lw.tile_cache = {}


def batch_norm(lw, op):
    x, scale, bias, mean, var = op.operands
    S = P.shape(x)
    Ch = S[1]
    out = op.results[0]
    dst = lw.new_home(out)
    R, C = prod(S[:2]), prod(S[2:])
    eps = float(op.prop("epsilon"))
    kb = lw.kb
    for r0 in range(0, R, PMAX):
        r1 = min(r0 + PMAX, R)
        p = r1 - r0
        lw.tile_cache = {}
        ch = [r % Ch for r in range(r0, r1)]
        m, vv, sc, b = (column(lw, v, ch) for v in (mean, var, scale, bias))
        sd = _scratch(lw, p, 1).ap()
        kb.inst("scalar", nisa.ActivationOp, sd, vv, func="sqrt", bias=lw.const_col(eps, p))
        columns = list(lw.tile_cache.values())  # per-row values, kept for every column chunk
        for c0 in range(0, C, EW_COLS):  # any spatial size: chunks of the free dim
            c1 = min(C, c0 + EW_COLS)
            lw.tile_cache = {}
            t = lw.tile(x, 2, r0, r1, c0, c1).ap()
            y = _scratch(lw, p, c1 - c0).ap()
            kb.inst(
                "vector", nisa.TensorScalarOp, y, t, op0="sub", operand0=m, op1="div", operand1=sd
            )
            res = kb.sbuf(p, (c1 - c0,), dt(out))
            kb.inst(
                "vector",
                nisa.TensorScalarOp,
                res.ap(),
                y,
                op0="mul",
                operand0=sc,
                op1="add",
                operand1=b,
            )
            H.store(kb, lambda a, b_, w0, w1: res.ap((a, b_), (w0, w1)), dst, 2, r0, r1, c0, c1)
            kb.free(res, *lw.tile_cache.values())
        kb.free(*columns)
        lw.tile_cache = {}

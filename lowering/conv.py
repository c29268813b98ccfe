"""2-D convolution as tiled matmuls, and pooling on VectorE.

conv: out[n, co, :] = W[co, (ci, dy, dx)] @ patches[(ci, dy, dx), (oy, ox)]. The patch rows
(im2col) are built by strided DMAs straight from the input in HBM into a zeroed SBUF tile
[K, Ho, Wo], so padding costs a memset; W^T [K, Cout] (stationary) is transposed on TensorE
once. Cout lands on PSUM partitions, which matches NCHW rows; the bias is a per-partition
column fused into the eviction (activation copy + bias).

pools: rows (n, c) on partitions; each window offset is a strided view of one padded SBUF
tile, folded with tensor_tensor max/add."""

from __future__ import annotations


from neuron_opt.lowering import hbm as H
from neuron_opt.lowering import plan as P
from neuron_opt.dialects import nisa
from neuron_opt.lowering.kernel import ANY_QUEUE

PMAX = 128
NMAX = 512


def _unsupported(msg):
    from neuron_opt.lowering.lowerer import Unsupported

    return Unsupported(msg)


def _range(o_count, start_off, stride, size):
    """Output positions o (0..o_count) whose input coordinate o*stride + start_off is in range."""
    lo = max(0, -(-(-start_off) // stride)) if start_off < 0 else 0
    hi = min(o_count, (size - 1 - start_off) // stride + 1) if size - 1 - start_off >= 0 else 0
    return lo, max(lo, hi)


def _source(lw, v):
    """(HBM tensor to load, SBUF tile dtype) of a conv operand: a cast fused into the conv
    (plan.dma_cast) is done by the loading DMAs, from the cast's input."""
    from neuron_opt.lowering.lowerer import dt

    p = v.owner
    if p in lw.fused:
        return lw.home_of(p.operands[0]), dt(v)
    src = lw.home_of(v)
    return src, src.dtype


def conv(lw, op) -> None:
    from neuron_opt.lowering.lowerer import dt
    from neuron_opt.lowering.matmul import _transpose_blocks

    x, w = op.operands[0], op.operands[1]
    bias = op.operands[2] if len(op.operands) > 2 else None
    Sx, Sw, So = P.shape(x), P.shape(w), P.shape(op.results[0])
    if len(Sx) != 4:
        raise _unsupported("only 2-D convolution has a lowering")
    if op.prop("groups") != 1:
        raise _unsupported("grouped convolution has no lowering yet")
    N, Ci, Hh, Ww = Sx
    Co, _, kh, kw = Sw
    _, _, Ho, Wo = So
    sy, sx = op.prop("strides")
    pt, pl = op.prop("pads")[0], op.prop("pads")[1]
    dy_, dx_ = op.prop("dilations")
    if Wo > NMAX:
        raise _unsupported(f"output width {Wo} > {NMAX}")
    K = Ci * kh * kw
    kb = lw.kb
    mdt = dt(x)
    (xs, xdt), (ws, wdt) = _source(lw, x), _source(lw, w)
    dst = lw.new_home(op.results[0])
    # W^T tiles per Cout chunk: [Kc, Coc]
    wt = {}
    for m0 in range(0, Co, PMAX):
        m1 = min(m0 + PMAX, Co)
        rows = kb.sbuf(m1 - m0, (K,), wdt)
        # W seen as [Cout, Cin*kh*kw] (split at dim 1): rows of output channels
        H.load(kb, lambda a, b, c0, c1: rows.ap((a, b), (c0, c1)), ws, 1, m0, m1, 0, K)
        wt[m0] = _transpose_blocks(lw, rows, m1 - m0, K, mdt)
        kb.free(rows)
    bcol = {}
    if bias is not None:
        bs = lw.home_of(bias)
        for m0 in range(0, Co, PMAX):
            m1 = min(m0 + PMAX, Co)
            t = kb.sbuf(m1 - m0, (1,), bs.dtype)
            H.load(kb, lambda a, b, c0, c1: t.ap((a, b), (c0, c1)), bs, 1, m0, m1, 0, 1)
            bcol[m0] = t
    rows_per = max(1, NMAX // Wo)
    kt = -(-K // PMAX)
    for n in range(N):
        patches = []
        for kk in range(kt):
            k0, k1 = kk * PMAX, min(K, (kk + 1) * PMAX)
            pt_ = kb.sbuf(k1 - k0, (Ho, Wo), xdt)
            kb.inst("vector", nisa.MemsetOp, pt_.ap(), value=0.0)
            for kr in range(k0, k1):
                ci, rem = divmod(kr, kh * kw)
                dy, dx = divmod(rem, kw)
                oy0, oy1 = _range(Ho, dy * dy_ - pt, sy, Hh)
                ox0, ox1 = _range(Wo, dx * dx_ - pl, sx, Ww)
                if oy0 >= oy1 or ox0 >= ox1:
                    continue
                y0, x0 = oy0 * sy + dy * dy_ - pt, ox0 * sx + dx * dx_ - pl
                src = xs.ap(n, ci, (y0, y0 + (oy1 - oy0 - 1) * sy + 1, sy), (x0, x0 + (ox1 - ox0 - 1) * sx + 1, sx))
                d = pt_.ap((kr - k0, kr - k0 + 1), (oy0, oy1), (ox0, ox1))
                kb.inst(ANY_QUEUE, nisa.DmaCopyOp, d, src)
            patches.append(pt_)
        for m0 in range(0, Co, PMAX):
            m1 = min(m0 + PMAX, Co)
            mt = m1 - m0
            out = kb.sbuf(mt, (Ho * Wo,), dst.dtype)
            for oy in range(0, Ho, rows_per):
                oy1 = min(Ho, oy + rows_per)
                ps = kb.psum(mt, ((oy1 - oy) * Wo,))
                for kk in range(kt):
                    kc = min(PMAX, K - kk * PMAX)
                    st = wt[m0][kk].ap((0, kc), (0, mt))
                    mv = patches[kk].ap((0, kc), (oy, oy1), (0, Wo))
                    kb.inst("tensor", nisa.MatmulOp, ps.ap(), st, mv, start=kk == 0, stop=kk == kt - 1)
                d = out.ap((0, mt), (oy * Wo, oy1 * Wo))
                if bias is not None:
                    b = bcol[m0].ap()
                    kb.inst("scalar", nisa.ActivationOp, d, ps.ap(), func="copy", bias=b)
                else:
                    lw.evict(d, ps.ap())
                kb.free(ps)
            r0 = n * Co + m0
            H.store(kb, lambda a, b, c0, c1: out.ap((a, b), (c0, c1)), dst, 2, r0, r0 + mt, 0, Ho * Wo)
            kb.free(out)
        kb.free(*patches)
    for ts in wt.values():
        kb.free(*ts)
    kb.free(*bcol.values())


def pool(lw, op) -> None:
    from neuron_opt.dialects import nt
    from neuron_opt.lowering.lowerer import dt

    x = op.operands[0]
    Sx, So = P.shape(x), P.shape(op.results[0])
    if len(Sx) != 4:
        raise _unsupported("only 2-D pooling has a lowering")
    N, C, Hh, Ww = Sx
    _, _, Ho, Wo = So
    kh, kw = op.prop("kernel")
    sy, sx = op.prop("strides")
    pads = list(op.prop("pads"))
    dil = list(op.prop("dilations") or [1, 1])
    is_max = isinstance(op, nt.MaxPoolOp)
    hp = max(Hh + pads[0] + pads[2], (Ho - 1) * sy + (kh - 1) * dil[0] + 1)
    wp = max(Ww + pads[1] + pads[3], (Wo - 1) * sx + (kw - 1) * dil[1] + 1)
    padded = (hp, wp) != (Hh, Ww)
    if not is_max and padded and not (op.prop("count_include_pad") and hp == Hh + pads[0] + pads[2]
                                      and wp == Ww + pads[1] + pads[3]):
        if any(pads) or hp != Hh or wp != Ww:
            raise _unsupported("average pooling with a partial window count has no lowering yet")
    xs = lw.home_of(x)
    dst = lw.new_home(op.results[0])
    kb = lw.kb
    R = N * C
    for r0 in range(0, R, PMAX):
        r1 = min(R, r0 + PMAX)
        p = r1 - r0
        t = kb.sbuf(p, (hp, wp), xs.dtype)
        if padded:
            kb.inst("vector", nisa.MemsetOp, t.ap(), value=float("-inf") if is_max else 0.0)
        H.load(kb, lambda a, b, c0, c1: _rows_box(t, a, b, pads, Hh, Ww), xs, 2, r0, r1, 0, Hh * Ww)
        acc = kb.sbuf(p, (Ho, Wo), "f32")
        first = True
        for dy in range(kh):
            for dx in range(kw):
                ys, xs_ = dy * dil[0], dx * dil[1]
                v = t.ap((0, p), (ys, ys + (Ho - 1) * sy + 1, sy), (xs_, xs_ + (Wo - 1) * sx + 1, sx))
                if first:
                    kb.inst("vector", nisa.TensorCopyOp, acc.ap(), v)
                    first = False
                else:
                    kb.inst("vector", nisa.TensorTensorOp, acc.ap(), acc.ap(), v, op="max" if is_max else "add")
        out = kb.sbuf(p, (Ho, Wo), dt(op.results[0]))
        if is_max:
            kb.inst("vector", nisa.TensorCopyOp, out.ap(), acc.ap())
        else:
            kb.inst("vector", nisa.TensorScalarOp, out.ap(), acc.ap(), op0="div", operand0=kh * kw)
        H.store(kb, lambda a, b, c0, c1: out.ap((a, b)), dst, 2, r0, r1, 0, Ho * Wo)
        kb.free(t, acc, out)


def _rows_box(t, a, b, pads, Hh, Ww):
    # the DMA pieces cover whole rows (all H*W columns): place them inside the padding
    return t.ap((a, b), (pads[0], pads[0] + Hh), (pads[1], pads[1] + Ww))

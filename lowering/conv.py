"""1-D and 2-D convolution (implicit GEMM on TensorE; depthwise also on VectorE) and pooling
(VectorE), both in bands of output rows, so any image size fits on chip (a 1-D op is a 2-D one
with a single row).

conv: out[n, co, oy, ox] = sum over taps t = (ty, tx) and input channels ci of
W[co, ci, ty, tx] * xpad[n, ci, oy*sy + ty*dy, ox*sx + tx*dx]. Contraction rows are ordered
tap-major, (t, ci), and cut into K tiles of <= PMAX rows, each a run of taps over a block of
input channels. Per band of output rows, the input rows the band needs (with its halo) are
loaded once per block of PMAX channels into an SBUF tile [ci, rows, padded width] whose pad
strips are memset to zero. With more than PACK_CI input channels a K tile is one tap and its
moving operand is a strided view of that tile (no copy); with fewer, several taps share a
K tile so the PE rows fill up, and their rows are gathered into an im2col tile by one
strided DMA per tap. The stationary operands W_t^T [K tile, Cout <= PMAX] are transposed on
TensorE once per conv (per job: see below) from weight rows loaded tap-major, one DMA per tap.
Cout lands on PSUM partitions (NCHW rows); a bias is a per-partition column fused into the
eviction.

Grouped convolution: a depthwise conv (one input channel per group) runs per block of
channels either on TensorE, each tap a diagonal stationary diag(w[:, t]) (block-diagonal
selection matrices when a group has several outputs) accumulated in PSUM over the taps, or
on VectorE/ScalarE, channels on partitions, one multiply-accumulate per tap with the tap's
weights as a per-partition scalar (ScalarE multiplies, VectorE adds). DEPTHWISE_ENGINE is
the faster of the two on the simulator (bench/lowering_conv.py; docs/lowering.md). Other
grouped convs run group by group as dense convs on TensorE.

pools: rows (n, c) on partitions; per band of output rows, one padded input tile (pads
-inf or 0), each window offset a strided view of it, folded with tensor_tensor max/add; an
average divides by the window's count, a per-position count map where windows are partial.
"""

from __future__ import annotations

from dataclasses import dataclass

from neuron_opt.dialects import ncv2, nisa, nt
from neuron_opt.dialects.types import FP8_MAX
from neuron_opt.lowering import hbm as H
from neuron_opt.lowering import plan as P
from neuron_opt.lowering.common import NMAX, PMAX, Unsupported, dt
from neuron_opt.lowering.kernel import ANY_QUEUE, DT_BYTES, AllocError, Buf

VCOLS = 2048  # free size of a VectorE step
BAND_BYTES = 48 * 1024  # per partition: the input tiles of one band of output rows
WEIGHT_BYTES = 64 * 1024  # per partition: the stationary tiles of one job
POOL_BYTES = 64 * 1024  # per partition: a pool band (input, accumulator, count map, result)
PACK_CI = 32  # at most this many input channels: several taps share a K tile (im2col)
DEPTHWISE_ENGINE = "auto"  # or "tensor" / "vector" (bench/lowering_conv.py forces each)


def _range(o_count, start_off, stride, size):
    """Output positions o (0..o_count) whose input coordinate o*stride + start_off is in range."""
    lo = max(0, -(-(-start_off) // stride)) if start_off < 0 else 0
    hi = min(o_count, (size - 1 - start_off) // stride + 1) if size - 1 - start_off >= 0 else 0
    return lo, max(lo, hi)


def _source(lw, v):
    """(HBM tensor to load, SBUF tile dtype, what finishes a loaded tile) of a conv operand: a
    cast fused into the conv is done by the loading DMAs, from the cast's input; a saturating
    one to fp8 also by a clamp of the loaded tile to +-240 (True: the DMA rounds to fp8 without
    saturating: what overflows is inf, which the clamp turns into +-240; NaN stays NaN); a
    scaled one (the op) loads fp32 tiles, scaled and clamped into fp8 tiles."""
    p = v.owner
    if p in lw.fused and isinstance(p, nt.ScaledCastOp):
        return lw.home_of(p.operands[0]), "f32", p
    if p in lw.fused:
        return lw.home_of(p.operands[0]), dt(v), not P.dma_cast(p)
    src = lw.home_of(v)
    return src, src.dtype, False


def _finish(kb, t, how):
    """A loaded tile as the conv reads it (see _source): as is, clamped in place, or scaled
    into a new fp8 tile (fp32 x * s, max -240, then min 240 as it is written: one rounding)."""
    if how is True:
        _saturate(kb, t)
    elif how:
        kb.inst(
            "vector",
            nisa.TensorScalarOp,
            t.ap(),
            t.ap(),
            op0="mul",
            operand0=how.prop("scale")[0],
            op1="max",
            operand1=-FP8_MAX,
        )
        t8 = kb.sbuf(t.shape[0], t.shape[1:], "f8E4M3")
        kb.inst("vector", nisa.TensorScalarOp, t8.ap(), t.ap(), op0="min", operand0=FP8_MAX)
        kb.free(t)
        return t8
    return t


def _saturate(kb, t) -> None:
    kb.inst(
        ("vector", "gpsimd"),
        nisa.TensorScalarOp,
        t.ap(),
        t.ap(),
        op0="max",
        operand0=-FP8_MAX,
        op1="min",
        operand1=FP8_MAX,
    )


@dataclass(frozen=True)
class Window:
    """A 2-D window op's geometry: output rows oy read padded input rows oy*sy + ty*dy."""

    H: int
    W: int
    Ho: int
    Wo: int
    kh: int
    kw: int
    sy: int
    sx: int
    pt: int  # top pad
    pl: int  # left pad
    dy: int = 1
    dx: int = 1

    @property
    def taps(self) -> int:
        return self.kh * self.kw

    @property
    def wp(self) -> int:
        """Columns of padded input the windows read."""
        return (self.Wo - 1) * self.sx + (self.kw - 1) * self.dx + 1

    def rows_in(self, r: int) -> int:
        """Padded input rows that r consecutive output rows read."""
        return (r - 1) * self.sy + (self.kh - 1) * self.dy + 1

    def band_rows(self, step: int, need, budget: int) -> int:
        """The most output rows per band (a multiple of `step` when above it) whose tiles,
        need(rows) bytes per partition, fit the budget; at least one row, else the op does
        not fit on chip."""
        best = 0
        for r in range(1, self.Ho + 1):
            if r >= step and r % step and r != self.Ho:
                continue
            if need(r) > budget:
                break
            best = r
        if best == 0:
            raise AllocError(need(1))
        return best

    def chunks(self, b0: int, b1: int, cols: int):
        """(oy0, oy1, ox0, ox1) pieces of output rows [b0, b1) of at most `cols` positions."""
        if self.Wo <= cols:
            r = max(1, cols // self.Wo)
            return [(y, min(b1, y + r), 0, self.Wo) for y in range(b0, b1, r)]
        return [
            (y, y + 1, x, min(self.Wo, x + cols))
            for y in range(b0, b1)
            for x in range(0, self.Wo, cols)
        ]

    def view(
        self, t, parts: int, ty: int, tx: int, b0: int, oy0: int, oy1: int, ox0: int, ox1: int
    ):
        """The window offset (ty, tx) of band tile t (band from output row b0) for outputs
        [oy0, oy1) x [ox0, ox1)."""
        r = (oy0 - b0) * self.sy + ty * self.dy
        c = ox0 * self.sx + tx * self.dx
        return t.ap(
            (0, parts),
            (r, r + (oy1 - oy0 - 1) * self.sy + 1, self.sy),
            (c, c + (ox1 - ox0 - 1) * self.sx + 1, self.sx),
        )


def _as_2d(shape) -> tuple[int, ...]:
    """(N, C, L) as (N, C, 1, L): a 1-D window op is a 2-D one with one row."""
    return tuple(shape) if len(shape) == 4 else (shape[0], shape[1], 1, shape[2])


def _attrs_2d(op, spatial: int, *names) -> list[list[int]]:
    """Window attributes in 2-D form: kernel/strides/dilations (1, d) and pads
    (0, begin, 0, end) for a 1-D op, the height and width ones of a 3-D op; dilations and
    strides default to 1, pads to 0."""
    out = []
    for name in names:
        v = list(
            op.prop(name)
            or [0 if name == "pads" else 1] * (2 * spatial if name == "pads" else spatial)
        )
        if spatial == 1:
            v = [0, v[0], 0, v[1]] if name == "pads" else [1, v[0]]
        elif spatial == 3:  # the height and width dims (the depth: _depth_attrs)
            v = [v[1], v[2], v[4], v[5]] if name == "pads" else v[1:]
        out.append(v)
    return out


class _Rank3:
    """A rank-3 (N, C, L) HBM tensor addressed as (N, C, 1, L) (its row index dropped)."""

    def __init__(self, buf):
        self.buf, self.dtype = buf, buf.dtype

    def ap(self, *slices):
        return self.buf.ap(*slices[:2], *slices[3:])


def _split(total: int, nbytes: int) -> list[tuple[int, int]]:
    """[0, total) in up to 8 parts when a transfer is large (spread over DMA queues)."""
    parts = max(1, min(total, 8, nbytes // H.DMA_SPLIT_BYTES))
    step = -(-total // parts)
    return [(a, min(a + step, total)) for a in range(0, total, step)]


def load_band(kb, g: Window, xs, t, lead: list, b0: int, b1: int, fill: float) -> None:
    """Fill band tile t [P, rows_in, wp] with the padded input rows of output rows [b0, b1):
    `lead` are (tile partition, HBM index prefix, count) runs of partitions (each prefix
    indexes the dims before the two spatial ones, the last of them a range of `count`);
    the pad strips get `fill`."""
    rows = g.rows_in(b1 - b0)
    top = b0 * g.sy - g.pt  # input row of tile row 0
    y0, y1 = max(0, top), min(g.H, top + rows)
    x0, x1 = max(0, -g.pl), min(g.W, g.wp - g.pl)
    parts = t.shape[0]
    strips = [
        ((0, y0 - top), (0, g.wp)),
        ((y1 - top, rows), (0, g.wp)),
        ((y0 - top, y1 - top), (0, x0 + g.pl)),
        ((y0 - top, y1 - top), (x1 + g.pl, g.wp)),
    ]
    for (ra, rb), (ca, cb) in strips:
        if ra < rb and ca < cb:
            kb.inst("vector", nisa.MemsetOp, t.ap((0, parts), (ra, rb), (ca, cb)), value=fill)
    if y0 >= y1 or x0 >= x1:
        return
    for p0, prefix, count in lead:
        esz = DT_BYTES[xs.dtype]
        for a, b in _split(count, count * (y1 - y0) * (x1 - x0) * esz):
            *head, (s0, _) = prefix
            src = xs.ap(*head, (s0 + a, s0 + b), (y0, y1), (x0, x1))
            dst = t.ap((p0 + a, p0 + b), (y0 - top, y1 - top), (x0 + g.pl, x1 + g.pl))
            kb.inst(ANY_QUEUE, nisa.DmaCopyOp, dst, src)


# ---------------------------------------------------------------------------------------------
# Convolution


@dataclass
class Job:
    """A dense conv on a slice of the channels: inputs [ci0, ci0 + cin) (weight columns
    [0, cin)), outputs [co0, co0 + cout); `diag`: a depthwise block (cout = mult * cin)."""

    ci0: int
    cin: int
    co0: int
    cout: int
    diag: bool = False
    mult: int = 1


def _jobs(Ci: int, Co: int, groups: int) -> list[Job]:
    a, b = Ci // groups, Co // groups
    if groups == 1:
        return [Job(0, Ci, 0, Co)]
    if a == 1 and b <= PMAX:  # depthwise (channel multiplier b): blocks of channels
        cb = PMAX // b
        return [
            Job(c, min(cb, Ci - c), c * b, min(cb, Ci - c) * b, True, b) for c in range(0, Ci, cb)
        ]
    return [Job(g * a, a, g * b, b) for g in range(groups)]


def _ktiles(job: Job, taps: int) -> list[list[tuple[int, int, int]]]:
    """K tiles as lists of (tap, c0, c1) pieces, tap-major."""
    if job.diag or job.cin > PACK_CI:
        return [
            [(t, c0, min(job.cin, c0 + PMAX))]
            for t in range(taps)
            for c0 in range(0, job.cin, PMAX)
        ]
    per = PMAX // job.cin
    return [[(t, 0, job.cin) for t in range(t0, min(taps, t0 + per))] for t0 in range(0, taps, per)]


def conv(lw, op) -> None:
    x, w = op.operands[0], op.operands[1]
    bias = op.operands[2] if len(op.operands) > 2 else None
    Sx, Sw, So = P.shape(x), P.shape(w), P.shape(op.results[0])
    flat = len(Sx) == 3
    if len(Sx) not in (3, 4):
        raise Unsupported("only 1-D and 2-D convolution have a lowering")
    N, Ci, Hh, Ww = _as_2d(Sx)
    Co, _, kh, kw = _as_2d(Sw)
    strides, pads, dil = _attrs_2d(op, len(Sx) - 2, "strides", "pads", "dilations")
    g = Window(
        Hh,
        Ww,
        _as_2d(So)[2],
        So[-1],
        kh,
        kw,
        strides[0],
        strides[1],
        pads[0],
        pads[1],
        dil[0],
        dil[1],
    )
    (xs, xdt, xsat), (ws, wdt, _) = _source(lw, x), _source(lw, w)  # plan: w's casts never saturate
    if flat:
        xs, ws = _Rank3(xs), _Rank3(ws)
    mdt = dt(x)
    dst = lw.new_home(op.results[0])
    bs = lw.home_of(bias) if bias is not None else None
    for job in _jobs(Ci, Co, op.prop("groups")):
        if job.diag and job.mult == 1 and depthwise_engine(g, job, N, mdt) == "vector":
            _depthwise_vector(lw, g, job, N, Co, xs, xdt, xsat, ws, wdt, bs, dst)
            continue
        kt = _ktiles(job, g.taps)
        obs = [(m, min(job.cout, m + PMAX)) for m in range(0, job.cout, PMAX)]
        per_ob = len(kt) * PMAX * DT_BYTES[mdt]  # stationary bytes per partition of one out block
        step = max(1, WEIGHT_BYTES // per_ob)
        for i in range(0, len(obs), step):  # out blocks whose stationaries fit together
            _conv_job(
                lw, g, job, kt, obs[i : i + step], N, Co, xs, xdt, xsat, ws, wdt, mdt, bs, dst
            )


def depthwise_engine(g: Window, job: Job, images: int, mdt: str) -> str:
    """DEPTHWISE_ENGINE, or with "auto" the engine the cost model (dialects/ncv2.py) charges
    less for this block of channels: on TensorE the diagonal builds (split between ScalarE
    and VectorE; they precede the block's matmuls) plus the tap matmuls; on VectorE the
    busier of VectorE (the adds) and ScalarE (the multiplies). bench/lowering_conv.py checks
    the choice against both simulated latencies."""
    if DEPTHWISE_ENGINE != "auto":
        return DEPTHWISE_ENGINE
    clk, ii = ncv2.CLOCK_GHZ, ncv2.value("MIN_II")
    fp32 = ncv2.value("MATMUL_FP32_FACTOR") if mdt == "f32" else 1
    mm = sum(
        g.taps * max(min(64, job.cin), (b - a) * (d - c)) * fp32
        for a, b, c, d in g.chunks(0, g.Ho, NMAX)
    )
    tensor = (
        g.taps * max(ii, job.cin) / (clk["scalar"] + clk["vector"]) + images * mm / clk["tensor"]
    )
    vec = sca = 0.0
    for a, b, c, d in g.chunks(0, g.Ho, VCOLS):
        n = (b - a) * (d - c)
        vec += 2 * max(ii, n) + (g.taps - 1) * max(ii, 2 * n)
        sca += (g.taps - 1) * max(ii, n)
    vector = images * max(vec / clk["vector"], sca / clk["scalar"])
    return "vector" if vector < tensor else "tensor"


def _conv_job(
    lw, g: Window, job: Job, kt, obs, N, Co, xs, xdt, xsat, ws, wdt, mdt, bs, dst
) -> None:
    kb = lw.kb
    st = {}  # (K tile, out block start) -> stationary [K rows, cout block]
    for m0, m1 in obs:
        tiles = (
            _diag_stationaries(lw, g, job, ws, wdt, mdt)
            if job.diag
            else _stationaries(lw, g, job, kt, ws, wdt, mdt, m0, m1)
        )
        for k, t in enumerate(tiles):
            st[k, m0] = t
    bcol = (
        {m0: _bias_col(kb, bs, job.co0 + m0, job.co0 + m1) for m0, m1 in obs}
        if bs is not None
        else {}
    )
    ucol = {m0: _unscale(lw, job.co0 + m0, job.co0 + m1) for m0, m1 in obs}
    view = job.diag or job.cin > PACK_CI
    esz = DT_BYTES[xdt]
    cblocks = [(c0, min(job.cin, c0 + PMAX)) for c0 in range(0, job.cin, PMAX)]
    if view:
        need = lambda r: len(cblocks) * g.rows_in(r) * g.wp * esz  # noqa: E731
    else:
        need = lambda r: len(kt) * r * g.Wo * esz  # noqa: E731
    R = g.band_rows(max(1, NMAX // g.Wo), need, BAND_BYTES)
    for n in range(N):
        for b0 in range(0, g.Ho, R):
            b1 = min(g.Ho, b0 + R)
            if view:
                ins = []
                for c0, c1 in cblocks:
                    t = kb.sbuf(c1 - c0, (g.rows_in(b1 - b0), g.wp), xdt)
                    load_band(
                        kb, g, xs, t, [(0, (n, (job.ci0 + c0, job.ci0 + c1)), c1 - c0)], b0, b1, 0.0
                    )
                    ins.append(t)
            else:
                ins = [_im2col(kb, g, xs, xdt, job, pieces, n, b0, b1) for pieces in kt]
            ins = [_finish(kb, t, xsat) for t in ins]
            for m0, m1 in obs:
                out = kb.sbuf(m1 - m0, (b1 - b0, g.Wo), dst.dtype)
                for oy0, oy1, ox0, ox1 in g.chunks(b0, b1, NMAX):
                    ps = kb.psum(m1 - m0, ((oy1 - oy0) * (ox1 - ox0),))
                    steps = []
                    for k, pieces in enumerate(kt):
                        t, c0, c1 = pieces[0]
                        if view:
                            ty, tx = divmod(t, g.kw)
                            j = c0 // PMAX
                            mv = g.view(ins[j], c1 - c0, ty, tx, b0, oy0, oy1, ox0, ox1)
                            rows = c1 - c0
                        else:
                            rows = len(pieces) * job.cin
                            mv = ins[k].ap((0, rows), (oy0 - b0, oy1 - b0), (ox0, ox1))
                        steps.append((st[k, m0].ap((0, rows), (0, m1 - m0)), mv))
                    for i, (s, mv) in enumerate(steps):
                        kb.inst(
                            "tensor",
                            nisa.MatmulOp,
                            ps.ap(),
                            s,
                            mv,
                            start=i == 0,
                            stop=i == len(steps) - 1,
                        )
                    d = out.ap((0, m1 - m0), (oy0 - b0, oy1 - b0), (ox0, ox1))
                    if bs is not None:
                        kb.inst(
                            "scalar",
                            nisa.ActivationOp,
                            d,
                            ps.ap(),
                            func="copy",
                            bias=bcol[m0].ap(),
                            **_scale_kw(ucol[m0]),
                        )
                    else:
                        lw.evict(d, ps.ap(), scale=_scale_of(ucol[m0]))
                    kb.free(ps)
                r0 = n * Co + job.co0 + m0
                _store_rows(kb, out, dst, r0, r0 + m1 - m0, b0, b1, g.Wo)
                kb.free(out)
            kb.free(*ins)
    kb.free(*st.values(), *bcol.values(), *(u for u in ucol.values() if isinstance(u, Buf)))


def _unscale(lw, c0: int, c1: int):
    """Scaled fp8: the conv's unscale for output channels [c0, c1): None, one number, or a
    per-partition column (channels are on the partitions of the PSUM tile)."""
    u = lw.op.prop("unscale")
    if u is None or len(u) == 1:
        return None if u is None else u[0]
    return lw.const_column(u, c0, c1)


def _scale_of(u):
    return u.ap() if isinstance(u, Buf) else u


def _scale_kw(u) -> dict:
    return {} if u is None else {"scale": _scale_of(u)}


def _store_rows(kb, out, dst, r0: int, r1: int, b0: int, b1: int, wo: int) -> None:
    """Store tile out [rows, b1 - b0, wo] to rows [r0, r1) of dst seen as [N*C, Ho*Wo]."""
    H.store(
        kb,
        lambda a, b, c0, c1: out.ap((a, b), (c0 // wo, c1 // wo)),
        dst,
        2,
        r0,
        r1,
        b0 * wo,
        b1 * wo,
    )


def _bias_col(kb, bs, c0: int, c1: int):
    t = kb.sbuf(c1 - c0, (1,), bs.dtype)
    H.load(kb, lambda a, b, w0, w1: t.ap((a, b), (w0, w1)), bs, 1, c0, c1, 0, 1)
    return t


def _im2col(kb, g: Window, xs, xdt, job: Job, pieces, n: int, b0: int, b1: int):
    """The K tile's rows (tap, ci) for output rows [b0, b1): one strided DMA per tap from HBM
    into a zeroed [rows, b1 - b0, Wo] tile."""
    rows = len(pieces) * job.cin
    t = kb.sbuf(rows, (b1 - b0, g.Wo), xdt)
    boxes = []
    for t_, _, _ in pieces:
        ty, tx = divmod(t_, g.kw)
        oy0, oy1 = _range(g.Ho, ty * g.dy - g.pt, g.sy, g.H)
        ox0, ox1 = _range(g.Wo, tx * g.dx - g.pl, g.sx, g.W)
        boxes.append((max(oy0, b0), min(oy1, b1), ox0, ox1, ty, tx))
    if any((a, b, c, d) != (b0, b1, 0, g.Wo) for a, b, c, d, _, _ in boxes):
        kb.inst("vector", nisa.MemsetOp, t.ap(), value=0.0)
    for i, (oy0, oy1, ox0, ox1, ty, tx) in enumerate(boxes):
        if oy0 >= oy1 or ox0 >= ox1:
            continue
        y0, x0 = oy0 * g.sy + ty * g.dy - g.pt, ox0 * g.sx + tx * g.dx - g.pl
        for a, b in _split(job.cin, job.cin * (oy1 - oy0) * (ox1 - ox0) * DT_BYTES[xdt]):
            src = xs.ap(
                n,
                (job.ci0 + a, job.ci0 + b),
                (y0, y0 + (oy1 - oy0 - 1) * g.sy + 1, g.sy),
                (x0, x0 + (ox1 - ox0 - 1) * g.sx + 1, g.sx),
            )
            d = t.ap((i * job.cin + a, i * job.cin + b), (oy0 - b0, oy1 - b0), (ox0, ox1))
            kb.inst(ANY_QUEUE, nisa.DmaCopyOp, d, src)
    return t


def _stationaries(lw, g: Window, job: Job, kt, ws, wdt, mdt, m0: int, m1: int):
    """W^T tiles [K tile rows, m1 - m0] of out block [m0, m1) of the job: the weight rows are
    loaded tap-major [cout, tap, cin] (one DMA per tap) and each K tile's columns transposed
    on TensorE."""
    kb = lw.kb
    mb = m1 - m0
    rows = kb.sbuf(mb, (g.taps, job.cin), wdt)
    c0 = job.co0 + m0
    for t in range(g.taps):
        ty, tx = divmod(t, g.kw)
        for a, b in _split(mb, mb * job.cin * DT_BYTES[wdt]):
            kb.inst(
                ANY_QUEUE,
                nisa.DmaCopyOp,
                rows.ap((a, b), t, (0, job.cin)),
                ws.ap((c0 + a, c0 + b), (0, job.cin), ty, tx),
            )
    out = []
    for pieces in kt:
        t0, ca, cb = pieces[0]
        t1 = pieces[-1][0] + 1
        src = rows.ap((0, mb), (t0, t1), (ca, cb))
        k = (t1 - t0) * (cb - ca)
        ps = kb.psum(k, (mb,))
        kb.inst("tensor", nisa.TransposeOp, ps.ap(), src)
        s = kb.sbuf(k, (mb,), mdt, long=True)
        lw.evict(s.ap(), ps.ap())
        kb.free(ps)
        out.append(s)
    kb.free(rows)
    return out


def _diag_stationaries(lw, g: Window, job: Job, ws, wdt, mdt):
    """Per tap, the depthwise stationary [cin, cout]: entry (c, c*mult + j) = W[c*mult + j, 0, t],
    zero elsewhere; built on VectorE from 0/1 selection matrices (GpSimd affine_select)."""
    kb = lw.kb
    cb, m = job.cin, job.mult
    wt = kb.sbuf(cb, (m * g.taps,), wdt)
    kb.inst(
        ANY_QUEUE,
        nisa.DmaCopyOp,
        wt.ap(),
        ws.ap((job.co0, job.co0 + job.cout), 0, (0, g.kh), (0, g.kw)),
    )
    sel = [_selection(lw, cb, m, j) for j in range(m)]
    out = []
    for t in range(g.taps):
        s = kb.sbuf(cb, (cb * m,), mdt, long=True)
        for j in range(m):
            col = wt.ap((0, cb), (j * g.taps + t, j * g.taps + t + 1))
            if j == 0 and m == 1 and t % 2:  # ScalarE takes every other diagonal (same product)
                kb.inst("scalar", nisa.ActivationOp, s.ap(), sel[j].ap(), func="copy", scale=col)
            elif j == 0:
                kb.inst("vector", nisa.TensorScalarOp, s.ap(), sel[j].ap(), op0="mul", operand0=col)
            else:  # disjoint supports: the sum is exact
                tmp = kb.sbuf(cb, (cb * m,), mdt)
                kb.inst(
                    "vector", nisa.TensorScalarOp, tmp.ap(), sel[j].ap(), op0="mul", operand0=col
                )
                kb.inst("vector", nisa.TensorTensorOp, s.ap(), s.ap(), tmp.ap(), op="add")
                kb.free(tmp)
        out.append(s)
    kb.free(wt)
    return out


def _selection(lw, cb: int, m: int, j: int):
    """[cb, cb*m] f32: 1 where column == m*partition + j (the identity for m = 1), kept for
    the kernel."""
    key = ("sel", cb, m, j)
    if key not in lw.consts:
        kb = lw.kb
        ones = kb.sbuf(cb, (cb * m,), "f32")
        kb.inst("gpsimd", nisa.MemsetOp, ones.ap(), value=1.0)
        s = kb.sbuf(cb, (cb * m,), "f32", long=True)
        kb.inst(
            "gpsimd",
            nisa.AffineSelectOp,
            s.ap(),
            ones.ap(),
            base=-j,
            channel=-m,
            step=1,
            cmp="eq",
            fill=0.0,
        )
        kb.free(ones)
        lw.consts[key] = s
    return lw.consts[key]


def _depthwise_vector(lw, g: Window, job: Job, N, Co, xs, xdt, xsat, ws, wdt, bs, dst) -> None:
    """Depthwise block on VectorE: channels on partitions; per tap, ScalarE multiplies the
    shifted view by the channel's weight (a per-partition scale) and VectorE adds it into an
    fp32 accumulator."""
    kb = lw.kb
    cb = job.cin
    wt = kb.sbuf(cb, (g.taps,), wdt)
    kb.inst(
        ANY_QUEUE, nisa.DmaCopyOp, wt.ap(), ws.ap((job.co0, job.co0 + cb), 0, (0, g.kh), (0, g.kw))
    )
    bcol = _bias_col(kb, bs, job.co0, job.co0 + cb) if bs is not None else None
    ucol = _unscale(lw, job.co0, job.co0 + cb)
    esz = DT_BYTES[xdt]
    R = g.band_rows(max(1, VCOLS // g.Wo), lambda r: g.rows_in(r) * g.wp * esz, BAND_BYTES)
    for n in range(N):
        for b0 in range(0, g.Ho, R):
            b1 = min(g.Ho, b0 + R)
            t = kb.sbuf(cb, (g.rows_in(b1 - b0), g.wp), xdt)
            load_band(kb, g, xs, t, [(0, (n, (job.ci0, job.ci0 + cb)), cb)], b0, b1, 0.0)
            t = _finish(kb, t, xsat)
            out = kb.sbuf(cb, (b1 - b0, g.Wo), dst.dtype)
            for oy0, oy1, ox0, ox1 in g.chunks(b0, b1, VCOLS):
                shape = (oy1 - oy0, ox1 - ox0)
                acc = kb.sbuf(cb, shape, "f32")
                for tap in range(g.taps):
                    ty, tx = divmod(tap, g.kw)
                    v = g.view(t, cb, ty, tx, b0, oy0, oy1, ox0, ox1)
                    col = wt.ap((0, cb), (tap, tap + 1))
                    if tap == 0:
                        kb.inst("vector", nisa.TensorScalarOp, acc.ap(), v, op0="mul", operand0=col)
                        continue
                    prod_ = kb.sbuf(cb, shape, "f32")
                    kb.inst("scalar", nisa.ActivationOp, prod_.ap(), v, func="copy", scale=col)
                    kb.inst("vector", nisa.TensorTensorOp, acc.ap(), acc.ap(), prod_.ap(), op="add")
                    kb.free(prod_)
                d = out.ap((0, cb), (oy0 - b0, oy1 - b0), (ox0, ox1))
                if bcol is not None:
                    kb.inst(
                        "scalar",
                        nisa.ActivationOp,
                        d,
                        acc.ap(),
                        func="copy",
                        bias=bcol.ap(),
                        **_scale_kw(ucol),
                    )
                elif ucol is not None:
                    kb.inst(
                        "vector",
                        nisa.TensorScalarOp,
                        d,
                        acc.ap(),
                        op0="mul",
                        operand0=_scale_of(ucol),
                    )
                else:
                    kb.inst("vector", nisa.TensorCopyOp, d, acc.ap())
                kb.free(acc)
            r0 = n * Co + job.co0
            _store_rows(kb, out, dst, r0, r0 + cb, b0, b1, g.Wo)
            kb.free(t, out)
    kb.free(wt, bcol, *([ucol] if isinstance(ucol, Buf) else []))


# ---------------------------------------------------------------------------------------------
# Pooling


def _counts(o: int, k: int, s: int, d: int, lo: int, hi: int) -> list[int]:
    """Per output position, how many of its k window taps fall in padded coordinates [lo, hi)."""
    return [sum(1 for t in range(k) if lo <= i * s + t * d < hi) for i in range(o)]


def _equal_runs(vals: list[int]) -> list[tuple[int, int, int]]:
    """(start, stop, value) runs of equal values."""
    out, i = [], 0
    while i < len(vals):
        j = i
        while j < len(vals) and vals[j] == vals[i]:
            j += 1
        out.append((i, j, vals[i]))
        i = j
    return out


def pool(lw, op) -> None:
    """Max / average pooling, 1-D to 3-D: rows (n, c) on partitions; per output depth, the
    band tiles of the input depths its window reads (a 1-D or 2-D pool has one), each
    window offset a strided view, folded into one fp32 accumulator; an average divides by
    its window count (depth x rows x columns)."""
    x = op.operands[0]
    Sx, So = P.shape(x), P.shape(op.results[0])
    if len(Sx) not in (3, 4, 5):
        raise Unsupported("only 1-D, 2-D and 3-D pooling have a lowering")
    spatial = len(Sx) - 2
    D, Do, (kd, sd, dd, pd0, pd1) = (
        (Sx[2], So[2], _depth_attrs(op)) if spatial == 3 else (1, 1, (1, 1, 1, 0, 0))
    )
    N, C, Hh, Ww = _as_2d(Sx[:2] + Sx[-(min(spatial, 2)) :])
    kernel, strides, pads, dil = _attrs_2d(op, spatial, "kernel", "strides", "pads", "dilations")
    g = Window(
        Hh,
        Ww,
        _as_2d(So[:2] + So[-(min(spatial, 2)) :])[2],
        So[-1],
        kernel[0],
        kernel[1],
        strides[0],
        strides[1],
        pads[0],
        pads[1],
        dil[0],
        dil[1],
    )
    is_max = isinstance(op, nt.MaxPoolOp)
    cd: list[int] = []  # window counts per output depth, row, column (average pooling)
    cy: list[int] = []
    cx: list[int] = []
    if not is_max:  # window counts: explicit pads count with count_include_pad, the overhang never
        inc = bool(op.prop("count_include_pad"))
        lo_y, hi_y = (0, Hh + pads[0] + pads[2]) if inc else (pads[0], pads[0] + Hh)
        lo_x, hi_x = (0, Ww + pads[1] + pads[3]) if inc else (pads[1], pads[1] + Ww)
        cd = _counts(Do, kd, sd, dd, *((0, D + pd0 + pd1) if inc else (pd0, pd0 + D)))
        cy = _counts(g.Ho, g.kh, g.sy, g.dy, lo_y, hi_y)
        cx = _counts(g.Wo, g.kw, g.sx, g.dx, lo_x, hi_x)
    uniform = not is_max and len(set(cy)) == 1 and len(set(cx)) == 1
    xs = lw.home_of(x)
    odt = dt(op.results[0])
    dst = lw.new_home(op.results[0])
    kb = lw.kb
    esz, oes = DT_BYTES[xs.dtype], DT_BYTES[odt]
    per_out = 4 + oes + (4 if not is_max and not uniform else 0)
    R = g.band_rows(1, lambda r: g.rows_in(r) * g.wp * esz + r * g.Wo * per_out, POOL_BYTES)
    R_ = N * C
    fill = float("-inf") if is_max else 0.0
    for r0 in range(0, R_, PMAX):
        r1 = min(R_, r0 + PMAX)
        p = r1 - r0
        lead = [(ro, (n_, (c_[0], c_[1])), c_[1] - c_[0]) for (n_, c_), ro in _nc_runs(r0, r1, C)]
        for od in range(Do):
            # the input depths of the window (a pad depth adds nothing: -inf to a max, 0 to a sum)
            depths = [d for d in (od * sd - pd0 + t * dd for t in range(kd)) if 0 <= d < D]
            for b0 in range(0, g.Ho, R):
                b1 = min(g.Ho, b0 + R)
                acc = kb.sbuf(p, (b1 - b0, g.Wo), "f32")
                if not depths:
                    kb.inst("vector", nisa.MemsetOp, acc.ap(), value=fill)
                for i, d in enumerate(depths):
                    t = kb.sbuf(p, (g.rows_in(b1 - b0), g.wp), xs.dtype)
                    load_band(kb, g, _pool_source(xs, spatial, d), t, lead, b0, b1, fill)
                    for tap in range(g.taps):
                        ty, tx = divmod(tap, g.kw)
                        v = g.view(t, p, ty, tx, b0, b0, b1, 0, g.Wo)
                        if i == 0 and tap == 0:
                            kb.inst("vector", nisa.TensorCopyOp, acc.ap(), v)
                        else:
                            kb.inst(
                                "vector",
                                nisa.TensorTensorOp,
                                acc.ap(),
                                acc.ap(),
                                v,
                                op="max" if is_max else "add",
                            )
                    kb.free(t)
                out = kb.sbuf(p, (b1 - b0, g.Wo), odt)
                if is_max:
                    kb.inst("vector", nisa.TensorCopyOp, out.ap(), acc.ap())
                elif uniform:
                    kb.inst(
                        "vector",
                        nisa.TensorScalarOp,
                        out.ap(),
                        acc.ap(),
                        op0="div",
                        operand0=float(cd[od] * cy[0] * cx[0]),
                    )
                else:
                    cnt = kb.sbuf(p, (b1 - b0, g.Wo), "f32")
                    for ya, yb, vy in _equal_runs(cy[b0:b1]):
                        for xa, xb, vx in _equal_runs(cx):
                            kb.inst(
                                "vector",
                                nisa.MemsetOp,
                                cnt.ap((0, p), (ya, yb), (xa, xb)),
                                value=float(cd[od] * vy * vx),
                            )
                    kb.inst("vector", nisa.TensorTensorOp, out.ap(), acc.ap(), cnt.ap(), op="div")
                    kb.free(cnt)
                _store_rows(kb, out, dst, r0, r1, od * g.Ho + b0, od * g.Ho + b1, g.Wo)
                kb.free(acc, out)


def _depth_attrs(op) -> tuple[int, int, int, int, int]:
    """(kernel, stride, dilation, pad begin, pad end) of a 3-D window op's depth dim."""
    k = list(op.prop("kernel"))
    s = list(op.prop("strides") or [1] * 3)
    d = list(op.prop("dilations") or [1] * 3)
    pads = list(op.prop("pads") or [0] * 6)
    return k[0], s[0], d[0], pads[0], pads[3]


def _pool_source(xs, spatial: int, d: int):
    """The input as the (N, C, H, W) tensor load_band reads: depth d of a 3-D pool's input,
    a 1-D pool's with one row, a 2-D pool's as it is."""
    if spatial == 3:
        return _DepthSlice(xs, d)
    return _Rank3(xs) if spatial == 1 else xs


class _DepthSlice:
    """Depth d of an (N, C, D, H, W) HBM tensor addressed as (N, C, H, W)."""

    def __init__(self, buf, d: int):
        self.buf, self.dtype, self.d = buf, buf.dtype, d

    def ap(self, *slices):
        return self.buf.ap(*slices[:2], self.d, *slices[2:])


def _nc_runs(r0: int, r1: int, C: int):
    """Rows [r0, r1) of [N*C] as ((n, (c0, c1)), tile row) runs within one image each."""
    out = []
    r = r0
    while r < r1:
        n, c = divmod(r, C)
        e = min(r1, (n + 1) * C)
        out.append(((n, (c, c + e - r)), r - r0))
        r = e
    return out

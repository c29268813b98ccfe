"""The nt -> nisa lowering engine: value homes in HBM, tile-by-tile computation of fused
groups, and the dispatch to the per-op emitters (elementwise here; contractions in
matmul.py, row-wise ops in rowwise.py, data movement in movement.py, conv/pools in conv.py).

Layout: a value is seen as a matrix [rows, cols] split at a dimension k (rows = the leading
dims). A tile is rows [r0, r1) (<= PMAX, one per partition) x cols [c0, c1) in SBUF.
"""

from __future__ import annotations

from math import prod

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue

from neuron_opt.dialects import nisa, nt
from neuron_opt.dialects.io_names import input_names, output_names
from neuron_opt.dialects.types import FP8_MAX, is_float, numpy_dtype, tensor_type_of
from neuron_opt.lowering import conv, gather, matmul, movement, rowwise
from neuron_opt.lowering import hbm as H
from neuron_opt.lowering import plan as P
from neuron_opt.lowering.common import (
    EW_COLS,
    PMAX,
    Internal,
    NoLowering,
    Unsupported,
    alu_engine,
    dt,
    is_int,
    on_chip,
    op_err,
    pad_shape,
    runs,
)
from neuron_opt.lowering.kernel import ANY_QUEUE, DT_BYTES, Access, AllocError, Buf, KernelBuilder

RESIDENT_BYTES = P.RESIDENT_BYTES


def operand_kind(s: tuple[int, ...], out: tuple[int, ...], k: int) -> str | None:
    """How an operand of shape s broadcasts into out split at k: full | row | col | None."""
    s = pad_shape(s, len(out))
    if s == out:
        return "full"
    if s[k:] == out[k:]:
        return "row"  # the same columns, rows repeated
    if all(d == 1 for d in s[k:]):
        return "col"  # one value per row
    return None


def row_map(s: tuple[int, ...], out: tuple[int, ...], k: int, r0: int, r1: int) -> list[int]:
    """For output rows r0..r1, the operand's row (operand seen at the same split)."""
    s = pad_shape(s, len(out))
    lead_o, lead_s = out[:k], s[:k]
    rows = np.arange(r0, r1)
    idx = np.unravel_index(rows, lead_o) if lead_o else ()
    src = np.zeros_like(rows)
    for i, (d_o, d_s) in enumerate(zip(lead_o, lead_s)):
        src = src * d_s + (idx[i] if d_s == d_o else 0)
    return src.tolist()


class Lowerer:
    def __init__(self, fn: func.FuncOp, weights: str | None):
        self.fn = fn
        self.kb = KernelBuilder()
        self.weights = weights
        self.home: dict[SSAValue, Buf] = {}
        self.no_home: dict[SSAValue, str] = {}  # arguments an op may not read, and why
        self.group_cache: dict[tuple, Buf] = {}  # tiles that live for one group (weights, A^T)
        self.tile_cache: dict[tuple, Buf] = {}  # tiles that live for one tile step
        self.consts: dict[tuple, Buf] = {}  # kernel-lifetime SBUF constants (ones, eps columns)
        self.broadcasts: dict[tuple, Buf] = {}  # (value, shape) -> its broadcast copy in HBM
        self.evict_rr = 0
        self.written_cast: dict[
            SSAValue, Operation
        ] = {}  # a movement's result -> the cast its DMAs do
        self.done: set[Operation] = set()  # casts done by their producer's DMAs
        self.out_long = False  # elementwise results go to the long-lived arena (tile(long=True))
        self.op: Operation | None = None

    # -- driver -----------------------------------------------------------------------------
    def run(self) -> ModuleOp:
        body = list(self.fn.body.block.ops)
        ret = body[-1]
        assert isinstance(ret, func.ReturnOp)
        for name, arg in zip(input_names(self.fn), self.fn.body.block.args):
            try:  # an argument of a dtype without a lowering is an error only where it is used
                self.home[arg] = self.kb.hbm(
                    "input", name, tensor_type_of(arg).get_shape(), dt(arg)
                )
            except Unsupported as e:
                self.no_home[arg] = str(e)
        if P.PLANNED not in self.fn.attributes:  # nt-plan-tiles has not run: plan now
            P.annotate(self.fn)
        self.fused = {o for o in body[:-1] if P.FUSED in o.attributes}
        self.transposed = {o.results[0] for o in body[:-1] if P.TRANSPOSED in o.attributes}
        self.tmode = False  # lowering a group computed transposed (tiles of C^T)
        # results that are returned get output tensors as their homes
        self.outputs: dict[SSAValue, list[str]] = {}
        for name, v in zip(output_names(self.fn), ret.operands):
            self.outputs.setdefault(v, []).append(name)
        self.resident: dict[SSAValue, list] = {}  # value -> [(r0, r1, c0, c1, tile)]
        self.res_last = P.residency_last_use(body[:-1], self.fused)
        self.res_bytes = 0
        for i, op in enumerate(body[:-1]):
            if op in self.fused or op in self.done:
                continue
            self.op = op
            self._constants_first(P.members(op, self.fused))
            try:
                self.lower_root(op)
            except AllocError as e:
                raise op_err(
                    op,
                    f"does not fit on chip: a buffer of {e.args[0]} bytes per partition "
                    f"cannot be allocated (SBUF in use {self.kb.sbuf_in_use()} B)",
                ) from None
            except (Unsupported, Internal) as e:
                raise op_err(op, str(e), e.error) from None
            for v in [v for v, last in self.res_last.items() if last == i and v in self.resident]:
                self._drop_resident(v)
        for v, outs in list(self.outputs.items()):  # returned args/constants/duplicates: copy
            outs = list(outs)
            try:
                src = self.home_of(v)  # a returned constant takes its first output as home
            except (Unsupported, Internal) as e:
                raise op_err(ret, str(e), e.error) from None
            for name in outs:
                dst = self.kb.hbm("output", name, tensor_type_of(v).get_shape(), self._dt(v, ret))
                if 0 in dst.shape:  # nothing to copy
                    continue
                if dst.role != "output":
                    raise op_err(
                        ret,
                        f"output '{name}' has the name of an HBM {dst.role} tensor "
                        "(nisa names HBM tensors by their .npz key)",
                    )
                if src is not dst:
                    H.copy_hbm(self.kb, dst.ap(), src.ap())
        return self.kb.module(self.weights)

    def _constants_first(self, group: list[Operation]) -> None:
        """Build the constants a group reads as tensors before its first instruction: they
        depend on nothing, so their memsets and stores run while the group's inputs load.
        Built where first read, they queued in an engine's in-order stream behind the group's
        instructions that wait for data. One that cannot be built is left to the op that
        reads it, which reports it."""
        for v in {v: None for o in group for v in o.operands}:
            if (
                not isinstance(v.owner, nt.ConstantOp)
                or v in self.home
                or 0 in P.shape(v)
                or self.splat(v) is not None
            ):
                continue
            try:
                movement.constant(self, v.owner)
            except Unsupported:
                pass

    def _drop_resident(self, v) -> None:
        for *_, t in self.resident.pop(v):
            self.kb.free(t)
        S = P.shape(v)
        self.res_bytes -= -(-prod(S[:-1]) // PMAX) * S[-1] * DT_BYTES[dt(v)]

    def _dt(self, v, op):
        try:
            return dt(v)
        except Unsupported as e:
            raise op_err(op, str(e), NoLowering) if op is not None else NoLowering(str(e)) from None

    def home_of(self, v: SSAValue) -> Buf:
        """v's HBM tensor, computing a fused value's whole result first if needed."""
        if v in self.home:
            return self.home[v]
        if v in self.no_home:
            raise Unsupported(self.no_home[v])
        if v in self.transposed:
            raise Internal("internal: a value computed transposed has an HBM reader")
        if v in self.resident:  # an unexpected HBM reader: store the tiles once
            dst = self.new_home(v)
            k = len(P.shape(v)) - 1
            for r0, r1, c0, c1, t in self.resident[v]:
                H.store(
                    self.kb,
                    lambda a, b, w0, w1, t=t: t.ap((a, b), (w0, w1)),
                    dst,
                    k,
                    r0,
                    r1,
                    c0,
                    c1,
                )
            return dst
        op = v.owner
        if isinstance(op, nt.ConstantOp):
            movement.constant(self, op)
            return self.home[v]
        if isinstance(op, Operation) and op in self.fused:
            self.fused.discard(op)
            saved, self.op = self.op, op
            saved_tile = self.tile_cache
            self.tile_cache = {}
            self.lower_root(op)
            self.tile_cache, self.op = saved_tile, saved
            return self.home[v]
        raise Internal(f"internal: no home for a value of {getattr(op, 'name', 'an argument')}")

    def new_home(self, v: SSAValue) -> Buf:
        c = self.written_cast.pop(v, None)
        if c is not None:  # the movement's DMAs write the cast's type: the cast is done
            self.fused.discard(c)
            self.done.add(c)
            return self.new_home(c.results[0])
        if v in self.outputs:
            name = self.outputs[v].pop(0)
            buf = self.kb.hbm("output", name, tensor_type_of(v).get_shape(), dt(v))
            if buf.role != "output":
                raise Unsupported(
                    f"output '{name}' has the name of an HBM {buf.role} tensor "
                    "(nisa names HBM tensors by their .npz key)"
                )
            if not self.outputs[v]:
                del self.outputs[v]
            else:
                self.outputs[v].insert(0, name)  # copied from this home at the end
        else:
            buf = self.kb.hbm("scratch", self.kb.fresh("h"), tensor_type_of(v).get_shape(), dt(v))
        self.home[v] = buf
        return buf

    def lower_root(self, op: Operation) -> None:
        if isinstance(op, nt.WeightOp):
            if op.result.uses and all(P.scaled_weight(u.operation) for u in op.result.uses):
                return  # only read scaled: each scaled cast declares its fp8 copy
            key = op.sym_name.data
            clash = any(key in names for names in self.outputs.values())  # an output's name
            self.home[op.result] = self.kb.hbm(
                "weight",
                self.kb.fresh("w") if clash else key,
                op.result.type.get_shape(),
                dt(op.result),
                key=key if clash else None,
            )
            return
        if isinstance(op, nt.ConstantOp):
            return  # materialized in HBM on first use as a tensor (splats become immediates)
        if P.scaled_weight(op) and isinstance(op.input.owner, nt.ConstantOp):
            movement.scaled_constant(self, op)
            return
        if P.scaled_weight(op) and isinstance(w := op.input.owner, nt.WeightOp):
            # scaled as it is loaded into HBM: fp8(w * scale)
            attrs = {"scale": op.scale} | ({"axis": op.axis} if op.axis is not None else {})
            self.home[op.result] = self.kb.hbm(
                "weight",
                self.kb.fresh("w"),
                op.result.type.get_shape(),
                "f8E4M3",
                key=w.sym_name.data,
                attrs=attrs,
            )
            return
        if any(0 in P.shape(v) for v in list(op.operands) + list(op.results)):
            return movement.empty_operands(self, op)
        if isinstance(op, (nt.SoftmaxOp, nt.LogSoftmaxOp)) and not P.tileable(op):
            return rowwise.softmax_any_axis(self, op)
        if isinstance(op, P.TILEABLE):
            return self.lower_group(op)
        handler = {
            nt.ReduceSumOp: rowwise.reduce,
            nt.ReduceMeanOp: rowwise.reduce,
            nt.ReduceMaxOp: rowwise.reduce,
            nt.BatchNormOp: rowwise.batch_norm,
            nt.GroupNormOp: rowwise.group_norm,
            nt.ReshapeOp: movement.reshape,
            nt.TransposeOp: movement.transpose,
            nt.BroadcastOp: movement.broadcast,
            nt.SliceOp: movement.slice_,
            nt.ConcatOp: movement.concat,
            nt.PadOp: movement.pad,
            nt.ConvOp: conv.conv,
            nt.MaxPoolOp: conv.pool,
            nt.AvgPoolOp: conv.pool,
            nt.GatherOp: gather.gather,
            nt.GatherElementsOp: gather.gather_elements,
            nt.GatherNdOp: gather.gather_nd,
        }.get(type(op))
        if handler is None:
            raise Unsupported("no lowering to nisa for this op")
        for r in op.results:
            dt(r)
        if handler in movement.COPIES:
            c = self._only_cast(op.results[0])
            if c is not None:
                self.written_cast[op.results[0]] = c
        handler(self, op)

    def _only_cast(self, v: SSAValue) -> Operation | None:
        """The cast that is v's only use, when a DMA can do it (and v is not returned)."""
        uses = list(v.uses)
        if v in self.outputs or len(uses) != 1:
            return None
        c = uses[0].operation
        return c if isinstance(c, nt.CastOp) and self._cast_folds(c) else None

    # -- groups -----------------------------------------------------------------------------
    def lower_group(self, root: Operation) -> None:
        out = root.results[0]
        S = P.shape(out)
        mem = P.members(root, self.fused)
        fixed = [o for o in mem if isinstance(o, P.CONTRACTION + P.ROWWISE)]
        dst = None
        if out in self.res_last:
            S_ = P.shape(out)
            need = -(-prod(S_[:-1]) // PMAX) * S_[-1] * DT_BYTES[dt(out)]
            if self.res_bytes + need <= 2 * RESIDENT_BYTES:
                self.resident[out] = []
                self.res_bytes += need
        if out not in self.resident:
            dst = self.new_home(out)
        self.group_cache = {}
        if out in self.transposed and out in self.resident:
            self.tmode = True
            try:
                for r0, r1, c0, c1 in matmul.tiling_t(self, fixed[0]):
                    self._tile_step(out, 1, r0, r1, c0, c1, dst)
            finally:
                self.tmode = False
        elif fixed and isinstance(fixed[0], P.CONTRACTION):
            for r0, r1, c0, c1 in matmul.tiling(self, fixed[0]):
                self._tile_step(out, len(S) - 1, r0, r1, c0, c1, dst)
        else:
            if fixed and isinstance(fixed[0], P.ROWWISE):  # what fixes a tiling but a contraction
                k = self.rowwise_k(fixed[0])
            elif out in self.resident:
                k = len(S) - 1  # resident tiles are stored in the [rows, last dim] view
            else:
                k = self.choose_k(mem, S)
            R, C = prod(S[:k]), prod(S[k:])
            W = C if fixed else min(C, EW_COLS)
            for r0 in range(0, R, PMAX):
                for c0 in range(0, C, W):
                    self._tile_step(out, k, r0, min(r0 + PMAX, R), c0, min(c0 + W, C), dst)
        for b in self.group_cache.values():
            self.kb.free(*(b if isinstance(b, list) else [b]))
        self.group_cache = {}

    def _tile_step(self, v, k, r0, r1, c0, c1, dst: Buf | None) -> None:
        """Compute one tile of v and store it in dst (None: keep it resident)."""
        self.tile_cache = {}
        op = v.owner
        if (
            dst is not None
            and isinstance(op, nt.CastOp)
            and self._cast_folds(op)
            and not (op.operands[0].owner in self.fused and dt(op.operands[0]) == "f32")
        ):
            # the store converts (an f32 producer writes the cast's type itself, in compute)
            t = self.tile(op.operands[0], k, r0, r1, c0, c1)
        else:
            t = self.compute(op, k, r0, r1, c0, c1)
        if dst is None:
            self.resident[v].append((r0, r1, c0, c1, t))
        else:
            H.store(self.kb, lambda a, b, w0, w1: t.ap((a, b), (w0, w1)), dst, k, r0, r1, c0, c1)
        for b in set(self.tile_cache.values()) | ({t} if dst is not None else set()):
            if b is not t:
                self.kb.free(b)
        if dst is not None:
            self.kb.free(t)
        self.tile_cache = {}

    def rowwise_k(self, op: P.RowwiseOp) -> int:
        rank = len(P.shape(op.results[0]))
        axis = op.axis.value.data % rank
        if isinstance(op, (nt.SoftmaxOp, nt.LogSoftmaxOp)) and axis != rank - 1:
            raise Unsupported(f"softmax over axis {axis} (not the last) has no lowering yet")
        return axis

    def choose_k(self, mem: list[Operation], S: tuple[int, ...]) -> int:
        rank = len(S)
        valid = []
        for k in range(rank + 1 if rank == 0 else rank):
            ok = True
            for o in mem:
                for v in o.operands:
                    p = v.owner
                    if isinstance(p, Operation) and p in self.fused:
                        continue
                    if self.splat(v) is None and operand_kind(P.shape(v), S, k) is None:
                        ok = False
            if ok:
                valid.append(k)
        if not valid:  # the operands no split fits are broadcast in HBM (operand)
            return rank - 1
        big = [k for k in valid if prod(S[:k]) >= PMAX]
        return big[0] if big else valid[-1]

    # -- tiles ------------------------------------------------------------------------------
    def tile(
        self, v: SSAValue, k: int, r0: int, r1: int, c0: int, c1: int, long: bool = False
    ) -> Buf:
        """An SBUF tile [r1-r0, c1-c0] of v (matrix view split at k), v's dtype."""
        key = (v, k, r0, r1, c0, c1)
        if key in self.tile_cache:
            return self.tile_cache[key]
        op = v.owner
        if isinstance(op, Operation) and op in self.fused:
            saved, self.out_long = self.out_long, long  # a long-lived tile (a B block) computed
            t = self.compute(op, k, r0, r1, c0, c1)
            self.out_long = saved
        elif v in self.resident and k == len(P.shape(v)) - 1:
            t = self._from_resident(v, r0, r1, c0, c1)
        elif v not in self.home and self.splat(v) is not None:  # a memset, not a trip through HBM
            t = self.kb.sbuf(r1 - r0, (c1 - c0,), on_chip(dt(v)), long=long)
            eng = alu_engine(dt(v))
            self.kb.inst(
                eng if eng == "gpsimd" else ("vector", "gpsimd"),
                nisa.MemsetOp,
                t.ap(),
                value=self.splat(v),
            )
        else:
            src = self.home_of(v)
            t = self.kb.sbuf(r1 - r0, (c1 - c0,), src.dtype, long=long)
            H.load(self.kb, lambda a, b, w0, w1: t.ap((a, b), (w0, w1)), src, k, r0, r1, c0, c1)
        self.tile_cache[key] = t
        return t

    def _from_resident(self, v, r0, r1, c0, c1) -> Buf:
        """A view of the produced tile that holds the block (same first row), else a copy
        assembled by SBUF -> SBUF DMAs (DMAs may move data across partitions)."""
        tiles = self.resident[v]
        for a0, a1, b0, b1, t in tiles:
            if a0 == r0 and r1 <= a1 and b0 <= c0 and c1 <= b1:
                return self.kb.view(t, r1 - r0, c0 - b0, c1 - c0)
        out = self.kb.sbuf(r1 - r0, (c1 - c0,), tiles[0][4].dtype)
        for a0, a1, b0, b1, t in tiles:
            lo_r, hi_r, lo_c, hi_c = max(a0, r0), min(a1, r1), max(b0, c0), min(b1, c1)
            if lo_r < hi_r and lo_c < hi_c:
                src = t.ap((lo_r - a0, hi_r - a0), (lo_c - b0, hi_c - b0))
                dst = out.ap((lo_r - r0, hi_r - r0), (lo_c - c0, hi_c - c0))
                self.kb.inst("dma", nisa.DmaCopyOp, dst, src)
        return out

    def compute(self, op: Operation, k, r0, r1, c0, c1) -> Buf:
        if isinstance(op, P.CONTRACTION):
            if self.tmode:
                return matmul.tile_t(self, op, r0, r1, c0, c1)
            return matmul.tile(self, op, r0, r1, c0, c1)
        if isinstance(op, P.ROWWISE):
            return rowwise.tile(self, op, k, r0, r1, c0, c1)
        return self.elementwise(op, k, r0, r1, c0, c1)

    def splat(self, v: SSAValue) -> float | None:
        """The one value of a constant whose elements all have the same bits, as an immediate
        (an integer only when 32 bits hold it: the engines have no wider integers)."""
        op = v.owner
        if isinstance(op, nt.ConstantOp):
            a = op.to_array().reshape(-1)
            if not a.size:
                return None
            if a.dtype.kind in "fV":
                bits = np.ascontiguousarray(a).view(f"u{a.dtype.itemsize}")
                if np.all(bits == bits[0]):
                    return float(np.asarray(a[0]).astype(np.float32))
            elif np.all(a == a[0]) and abs(int(a[0])) < 2**31:
                return float(int(a[0]))
        return None

    def operand(self, v: SSAValue, out: tuple[int, ...], k: int, r0, r1, c0, c1):
        """("imm", x) | ("col", access [P,1]) | ("tile", access [P,W]) for an elementwise operand."""
        x = self.splat(v)
        if x is not None:
            return ("imm", x)
        if self.tmode and not (isinstance(v.owner, Operation) and v.owner in self.fused):
            # transposed tiles: a vector along the output columns is one value per partition
            return ("col", rowwise.column(self, v, list(range(r0, r1))))
        s = P.shape(v)
        kind = operand_kind(s, out, k)
        vs_k = k - (len(out) - len(s))  # the split in v's own dims (the padded ones are 1)
        if kind == "full":
            t = self.tile(v, max(vs_k, 0), r0, r1, c0, c1)
            return ("tile", t.ap())
        if kind is None:  # no split shows it as rows or columns: broadcast it in HBM first
            return ("tile", self._broadcast_tile(v, out, k, r0, r1, c0, c1).ap())
        key = ("bcast", v, k, r0, r1, c0, c1)
        if key in self.tile_cache:
            t = self.tile_cache[key]
            return ("col" if kind == "col" else "tile", t.ap())
        src = self.home_of(v)
        rows = row_map(s, out, k, r0, r1)
        if kind == "col":
            t = self.kb.sbuf(r1 - r0, (1,), src.dtype)
            for off, s0, n in runs(rows):
                # v's elements in row order are its flat order (its trailing dims are all 1)
                for acc, ro, nr, _, _ in H.block_dmas(src, len(src.shape), s0, s0 + n, 0, 1):
                    dst = t.ap((off + ro, off + ro + nr), (0, 1))
                    self.kb.inst(ANY_QUEUE, nisa.DmaCopyOp, dst, acc)
        else:
            W = c1 - c0
            if len(set(rows)) == 1 and r1 - r0 > 1:
                t = self.row_broadcast(v, src, vs_k, rows[0], c0, c1, r1 - r0)
            else:
                t = self.kb.sbuf(r1 - r0, (W,), src.dtype)
                for off, s0, n in runs(rows):
                    H.load(
                        self.kb,
                        lambda a, b, w0, w1, off=off: t.ap((off + a, off + b), (w0, w1)),
                        src,
                        max(vs_k, 0),
                        s0,
                        s0 + n,
                        c0,
                        c1,
                    )
        self.tile_cache[key] = t
        return ("col" if kind == "col" else "tile", t.ap())

    def _broadcast_tile(self, v, out, k, r0, r1, c0, c1) -> Buf:
        """A tile of v broadcast to `out`, loaded from a broadcast copy of v in HBM (made once
        per kernel)."""
        key = ("bfull", v, k, r0, r1, c0, c1)
        if key in self.tile_cache:
            return self.tile_cache[key]
        full = self.broadcasts.get((v, out))
        if full is None:
            full = self.kb.hbm("scratch", self.kb.fresh("h"), out, dt(v))
            movement.broadcast_into(self, self.home_of(v), P.shape(v), full, out)
            self.broadcasts[(v, out)] = full
        t = self.kb.sbuf(r1 - r0, (c1 - c0,), full.dtype)
        H.load(self.kb, lambda a, b, w0, w1: t.ap((a, b), (w0, w1)), full, k, r0, r1, c0, c1)
        self.tile_cache[key] = t
        return t

    def row_broadcast(self, v, src: Buf, k: int, row: int, c0: int, c1: int, parts: int) -> Buf:
        """Row `row` of v on `parts` partitions, one DMA per partition. Not a TensorE ones
        matmul: its accumulator starts at +0, so a -0 would come out +0 (rsqrt, division
        and max/min then differ); the DMAs are bit copies, spread over the queues, and
        measured faster on the examples (they keep TensorE and the evictions free)."""
        key = ("rowb", v, row, c0, c1, parts)
        if key in self.group_cache:
            return self.group_cache[key]
        t = self.kb.sbuf(parts, (c1 - c0,), src.dtype)
        for p in range(parts):
            H.load(
                self.kb,
                lambda a, b, w0, w1, p=p: t.ap((p + a, p + b), (w0, w1)),
                src,
                max(k, 0),
                row,
                row + 1,
                c0,
                c1,
            )
        self.group_cache[key] = t
        return t

    def ones(self, dtype: str) -> Buf:
        key = ("ones", dtype)
        if key not in self.consts:
            b = self.kb.sbuf(1, (PMAX,), dtype)
            self.kb.inst("vector", nisa.MemsetOp, b.ap(), value=1.0)
            self.consts[key] = b
        return self.consts[key]

    def const_col(self, value: float, parts: int) -> Access:
        """A [parts, 1] f32 column holding `value` (ScalarE bias must be a tensor on NC-v2)."""
        key = ("col", value)
        if key not in self.consts:
            b = self.kb.sbuf(PMAX, (1,), "f32")
            self.kb.inst("vector", nisa.MemsetOp, b.ap(), value=value)
            self.consts[key] = b
        return self.consts[key].ap((0, parts))

    def evict(self, dst, src, func: str = "copy", scale=None) -> None:
        """PSUM -> SBUF, alternating VectorE and ScalarE (they share the PSUM port); `scale`
        (a number or a per-partition column) multiplies on the way: scaled fp8's unscale."""
        self.evict_rr += 1
        if func == "copy" and self.evict_rr % 2:
            if scale is None:
                self.kb.inst("vector", nisa.TensorCopyOp, dst, src)
            else:
                self.kb.inst("vector", nisa.TensorScalarOp, dst, src, op0="mul", operand0=scale)
        else:
            self.kb.inst(
                "scalar",
                nisa.ActivationOp,
                dst,
                src,
                func=func,
                **({} if scale is None else {"scale": scale}),
            )

    def const_column(self, values, c0: int, c1: int) -> Buf:
        """A [c1 - c0, 1] f32 column of values[c0:c1], by DMAs from an HBM const."""
        src = self.kb.const(values)
        t = self.kb.sbuf(c1 - c0, (1,), "f32")
        for acc, ro, nr, _, _ in H.block_dmas(src, 1, c0, c1, 0, 1):
            self.kb.inst(ANY_QUEUE, nisa.DmaCopyOp, t.ap((ro, ro + nr), (0, 1)), acc)
        return t

    def const_row(self, values, c0: int, c1: int, parts: int = 1) -> Buf:
        """values[c0:c1] as an f32 tile on `parts` partitions, loaded from an HBM const that
        holds them `parts` times (one load; a ones-matmul broadcast measured slower)."""
        src = self.kb.const(values, parts)
        t = self.kb.sbuf(parts, (c1 - c0,), "f32")
        H.load(self.kb, lambda a, b, w0, w1: t.ap((a, b), (w0, w1)), src, 1, 0, parts, c0, c1)
        return t

    # -- elementwise ------------------------------------------------------------------------
    def elementwise(self, op: Operation, k, r0, r1, c0, c1, odt: str | None = None) -> Buf:
        """The op's tile, written in `odt` (default: its result type) by its last instruction."""
        out = op.results[0]
        S = P.shape(out)
        odt = odt or dt(out)
        if isinstance(op, nt.CastOp) and self._cast_folds(op):
            folded = self._folded_cast(op, k, r0, r1, c0, c1, odt)
            if folded is not None:
                return folded
        epilogue = self._epilogue(op)
        if epilogue is not None:  # the activation is applied as the matmul result leaves PSUM
            mm = matmul.tile_t if self.tmode else matmul.tile
            return mm(self, op.operands[0].owner, r0, r1, c0, c1, func=epilogue, odt=odt)
        try:
            ops = [self.operand(v, S, k, r0, r1, c0, c1) for v in op.operands]
        except Unsupported as e:  # at this op, not its group's root: it reads the operand
            raise op_err(op, str(e), e.error) from None
        t = self.kb.sbuf(r1 - r0, (c1 - c0,), odt, long=self.out_long)
        d = t.ap()
        kb = self.kb
        idt = dt(op.operands[0])
        eng = alu_engine(idt, odt)
        if isinstance(op, P.BINARY):
            if isinstance(op, nt.CmpOp):
                alu = op.prop("predicate")
            elif isinstance(op, nt.ModOp):
                alu = "fmod" if op.prop("fmod") else "mod"
            else:
                alu = P.BINARY_ALU[type(op)]
            a, b = ops
            if a[0] == "tile" and b[0] == "tile":
                if a[1].buf.mem == "psum" and b[1].buf.mem == "psum":
                    raise Unsupported("both operands in PSUM")
                kb.inst(eng, nisa.TensorTensorOp, d, a[1], b[1], op=alu)
            elif a[0] == "tile":
                kb.inst(eng, nisa.TensorScalarOp, d, a[1], op0=alu, operand0=b[1])
            elif b[0] == "tile":
                kb.inst(eng, nisa.TensorScalarOp, d, b[1], op0=alu, operand0=a[1], reverse0=True)
            else:  # column (op) column/imm: per-row values broadcast along the free dim
                col = a if a[0] == "col" else b
                other = b if col is a else a
                tmp = self.spread(col, idt, r1 - r0, c1 - c0)
                kb.inst(
                    eng,
                    nisa.TensorScalarOp,
                    d,
                    tmp,
                    op0=alu,
                    operand0=other[1],
                    reverse0=col is not a,
                )
            return t
        if isinstance(op, nt.WhereOp):
            return self._where(op, ops, t, r1 - r0, c1 - c0)
        (a,) = ops
        src = a[1] if a[0] == "tile" else self.spread(a, idt, r1 - r0, c1 - c0)
        if is_int(idt) and isinstance(op, (nt.NegOp, nt.AbsOp)):  # exact, no fp32 detour
            kb.inst(eng, nisa.TensorScalarOp, d, src, op0="mul", operand0=-1)
            if isinstance(op, nt.AbsOp):
                kb.inst(eng, nisa.TensorTensorOp, d, d, src, op="max")
        elif isinstance(op, tuple(P.UNARY_ACT)):
            kb.inst("scalar", nisa.ActivationOp, d, src, func=P.UNARY_ACT[type(op)])
        elif isinstance(op, nt.GeluOp):
            f = "gelu_tanh" if op.prop("approximate") == "tanh" else "gelu"
            kb.inst("scalar", nisa.ActivationOp, d, src, func=f)
        elif isinstance(op, nt.NegOp):
            kb.inst("vector", nisa.TensorScalarOp, d, src, op0="mul", operand0=-1.0)
        elif isinstance(op, nt.NotOp):
            kb.inst("vector", nisa.TensorScalarOp, d, src, op0="xor", operand0=1)
        elif isinstance(op, nt.ClipOp):
            bounds = [
                (alu, x)
                for alu, x in (("max", op.prop("min")), ("min", op.prop("max")))
                if x is not None
            ]
            if is_int(idt):  # whole bounds within the type, as the interpreter takes them
                info = np.iinfo(numpy_dtype(tensor_type_of(out).element_type))
                bounds = [
                    (
                        alu,
                        float(
                            min(
                                max(np.ceil(x) if alu == "max" else np.floor(x), info.min), info.max
                            )
                        ),
                    )
                    for alu, x in bounds
                ]
            if not bounds:
                kb.inst(eng, nisa.TensorCopyOp, d, src)
            else:
                kws = {}
                for i, (alu, x) in enumerate(bounds):
                    kws[f"op{i}"], kws[f"operand{i}"] = alu, x
                kb.inst(eng, nisa.TensorScalarOp, d, src, **kws)
        elif isinstance(op, nt.ScaledCastOp):
            # fp32 x * s, then the clamp to +-240 (the write rounds once, RNE)
            tmp = self.kb.sbuf(r1 - r0, (c1 - c0,), "f32")
            self.tile_cache[("tmp", id(tmp))] = tmp
            s = self._scale_operand(op, S, k, r0, r1, c0, c1)
            if isinstance(s, Buf):  # one scale per column: a row of them on every partition
                kb.inst("vector", nisa.TensorTensorOp, tmp.ap(), src, s.ap((0, r1 - r0)), op="mul")
                kb.inst(
                    "vector",
                    nisa.TensorScalarOp,
                    d,
                    tmp.ap(),
                    op0="max",
                    operand0=-FP8_MAX,
                    op1="min",
                    operand1=FP8_MAX,
                )
            else:
                kb.inst(
                    "vector",
                    nisa.TensorScalarOp,
                    tmp.ap(),
                    src,
                    op0="mul",
                    operand0=s,
                    op1="max",
                    operand1=-FP8_MAX,
                )
                kb.inst("vector", nisa.TensorScalarOp, d, tmp.ap(), op0="min", operand0=FP8_MAX)
        elif isinstance(op, nt.CastOp):
            if op.prop("saturate") and odt == "f8E4M3":
                eng = "vector" if src.buf.mem == "psum" else ("vector", "gpsimd")
                kb.inst(
                    eng,
                    nisa.TensorScalarOp,
                    d,
                    src,
                    op0="max",
                    operand0=-FP8_MAX,
                    op1="min",
                    operand1=FP8_MAX,
                )
            elif is_int(idt) or is_int(odt):  # exact integer conversions (docs/nisa.md §3)
                kb.inst(eng if src.buf.mem != "psum" else "vector", nisa.TensorCopyOp, d, src)
            else:
                self.copy(d, src)
        else:
            raise Unsupported("no lowering to nisa for this op")
        return t

    def _scale_operand(self, op: nt.ScaledCastOp, S, k: int, r0, r1, c0, c1):
        """A scaled cast's scale for the tile [r0, r1) x [c0, c1) of S split at k: a number, a
        per-partition column (the axis among the row dims), or a row tile (the axis is the
        last dim and the only column dim)."""
        scale = nt.scale_values(op.scale)
        if len(scale) == 1:
            return scale[0]
        assert op.axis is not None  # the verifier's: several scales need an axis
        axis = op.axis.value.data
        if axis < k:
            inner = prod(S[axis + 1 : k])
            per_row = [scale[(r // inner) % S[axis]] for r in range(r0, r1)]
            col = self.const_column(per_row, 0, r1 - r0)
            self.tile_cache[("tmp", id(col))] = col
            return col.ap()
        if axis == len(S) - 1 and k == axis and not self.tmode:
            row = self.const_row(scale, c0, c1, PMAX)
            self.tile_cache[("tmp", id(row))] = row
            return row
        raise Unsupported(
            f"a scaled cast along dim {axis} of a computed value in this tiling has no lowering"
        )

    def _cast_folds(self, op: nt.CastOp) -> bool:
        """A float -> float cast that a converting write can do: engines and DMAs round to
        their destination's type (RNE), but do not saturate to fp8's range."""
        src, res = op.input, op.result
        return (
            not self.tmode
            and is_float(tensor_type_of(src).element_type)
            and is_float(res.type.element_type)
            and not (op.prop("saturate") and dt(res) == "f8E4M3")
            and P.shape(src) == P.shape(res)
        )

    def _folded_cast(self, op: nt.CastOp, k, r0, r1, c0, c1, odt: str) -> Buf | None:
        """A cast with no pass of its own: a fused f32 producer writes `odt` (one rounding from
        fp32, as producer-then-cast rounds); an input in HBM is converted by the DMA that loads
        it (dma_copy rounds through fp32, RNE: the cast's rounding). Measured on the zoo, the
        converting load beats load + engine copy under matmult-bf16 on every model."""
        x = op.operands[0]
        p = x.owner
        if not (isinstance(p, Operation) and p in self.fused):
            if x in self.resident or x in self.transposed:
                return None
            src = self.home_of(x)
            t = self.kb.sbuf(r1 - r0, (c1 - c0,), odt, long=self.out_long)
            H.load(self.kb, lambda a, b, w0, w1: t.ap((a, b), (w0, w1)), src, k, r0, r1, c0, c1)
            return t
        if dt(x) != "f32":
            return None
        if isinstance(p, P.CONTRACTION):
            return matmul.tile(self, p, r0, r1, c0, c1, odt=odt)
        if isinstance(p, P.ELEMENTWISE):
            return self.elementwise(p, k, r0, r1, c0, c1, odt=odt)
        return None

    def spread(self, x, dtype: str, parts: int, width: int):
        """A [parts, width] tile of an immediate (a memset) or of a column broadcast along the
        free dim: integers as 0 + x; floats as max(-inf, x), which keeps -0 and NaN."""
        tmp = self.kb.sbuf(parts, (width,), dtype)
        self.tile_cache[("tmp", id(tmp))] = tmp
        eng = alu_engine(dtype)
        if x[0] == "imm":
            self.kb.inst(eng, nisa.MemsetOp, tmp.ap(), value=x[1])
            return tmp.ap()
        fill, alu = (0.0, "add") if is_int(dtype) else (-np.inf, "max")
        self.kb.inst(eng, nisa.MemsetOp, tmp.ap(), value=fill)
        self.kb.inst(eng, nisa.TensorScalarOp, tmp.ap(), tmp.ap(), op0=alu, operand0=x[1])
        return tmp.ap()

    def _where(self, op, ops, t: Buf, parts: int, width: int) -> Buf:
        """select(pred, on_true, on_false): a full predicate and on_true tile; on_false may
        stay a column or an immediate. A constant condition picks its operand."""
        c, a, b = ops
        ddt = dt(op.results[0])
        if c[0] == "imm":
            x = a if c[1] else b
            if x[0] == "tile":
                self.kb.inst(alu_engine(ddt), nisa.TensorCopyOp, t.ap(), x[1])
            else:
                self.kb.inst(
                    alu_engine(ddt), nisa.TensorCopyOp, t.ap(), self.spread(x, ddt, parts, width)
                )
            return t
        pred = c[1] if c[0] == "tile" else self.spread(c, "i1", parts, width)
        if a[0] != "tile" and b[0] == "tile":  # select the other way round
            inv = self.kb.sbuf(parts, (width,), "i1")
            self.tile_cache[("tmp", id(inv))] = inv
            self.kb.inst("vector", nisa.TensorScalarOp, inv.ap(), pred, op0="eq", operand0=0)
            pred, a, b = inv.ap(), b, a
        on_true = a[1] if a[0] == "tile" else self.spread(a, ddt, parts, width)
        self.kb.inst("vector", nisa.SelectOp, t.ap(), pred, on_true, b[1])
        return t

    def _epilogue(self, op: Operation) -> str | None:
        """The ScalarE function of a unary activation applied to a fused f32 contraction result
        (f32: the PSUM value is the rounded result, so fusing changes no bit)."""
        if isinstance(op, tuple(P.UNARY_ACT)):
            f = P.UNARY_ACT[type(op)]
        elif isinstance(op, nt.GeluOp):
            f = "gelu_tanh" if op.prop("approximate") == "tanh" else "gelu"
        else:
            return None
        src = op.operands[0]
        prod_op = src.owner
        if (
            isinstance(prod_op, P.CONTRACTION)
            and prod_op in self.fused
            and dt(src) == "f32"
            and src not in self.resident
        ):
            return f
        return None

    def copy(self, dst, src) -> None:
        """A converting copy, alternating VectorE / ScalarE (GpSimd cannot read PSUM)."""
        self.evict_rr += 1
        if self.evict_rr % 2:
            self.kb.inst("vector", nisa.TensorCopyOp, dst, src)
        else:
            self.kb.inst("scalar", nisa.ActivationOp, dst, src, func="copy")

"""KernelBuilder: the nisa kernel being emitted: declarations, SBUF/PSUM allocation, per-engine
instruction streams, and the semaphores between them.

Lowering code emits instructions in one sequential program order and names what each one
reads and writes; the builder turns cross-stream dependencies (read-after-write, write-after-read,
write-after-write on a common element) into `wait`s on a per-stream counting semaphore. Every
instruction waits only on instructions emitted before it, and each stream runs in emission
order, so the result cannot deadlock. Memory is tracked physically (SBUF/PSUM bytes, HBM
tensors), so reusing freed memory is synchronised like any other dependency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from xdsl.dialects.builtin import DenseArrayBase, ModuleOp, StringAttr, TensorType, f32
from xdsl.ir import Operation

from neuron_opt.dialects import ncv2, nisa
from neuron_opt.dialects import ncv2_cost as cost
from neuron_opt.dialects.types import element_type_named
from neuron_opt.npz import WEIGHTS_ATTR

SBUF_BYTES = ncv2.SBUF_PARTITION_BYTES
LONG_ARENA = 128 * 1024  # SBUF bytes [0, LONG_ARENA) for long-lived tiles (matmul B blocks)
PSUM_BYTES = ncv2.PSUM_PARTITION_BYTES
PSUM_BANK = ncv2.PSUM_BANK_BYTES
DMA_QUEUES = ncv2.DMA_ENGINES  # one queue per DMA engine
ANY_QUEUE = "dma"  # the stream of a transfer for which `emit` picks the queue where it starts first
# Timing (ns, from the cost model) to place each DMA on the queue where it can start first: a
# queue runs in order, so a store waiting for compute must not sit in front of a load that
# could go now.
_CLOCK = ncv2.CLOCK_GHZ
DT_BYTES = {
    "f32": 4,
    "tf32": 4,
    "bf16": 2,
    "f16": 2,
    "f8E4M3": 1,
    "i1": 1,
    "i8": 1,
    "i16": 2,
    "i32": 4,
    "i64": 8,
}
# What each dtype is on chip: the NC-v2 engines have no 64-bit integers, so i64 tensors live in
# HBM as i64 and in SBUF as i32 (the DMAs narrow and widen exactly, or report the value).
ON_CHIP = {"i64": "i32"}
_BUCKET = 4096  # bytes per tracking bucket (fewer entries to scan per access)
_WRITTEN = ("dst", "accumulate")  # the operands an instruction writes


class AllocError(Exception):
    """SBUF or PSUM is full (the caller names the op)."""


@dataclass(eq=False)
class Buf:
    name: str
    mem: str  # sbuf | psum | hbm
    shape: tuple[int, ...]  # on-chip: (partitions, free...)
    dtype: str
    offset: int = 0
    role: str = "scratch"
    view: bool = False  # a window into another buffer: freeing it frees nothing

    @property
    def esize(self) -> int:
        return DT_BYTES[self.dtype]

    @property
    def free_bytes(self) -> int:
        n = self.esize
        for d in self.shape[1:]:
            n *= d
        return n

    def ap(self, *slices) -> Access:
        """An access; each slice is an int, (a, b) or (a, b, step); missing trailing dims are
        taken whole."""
        full = []
        for i, d in enumerate(self.shape):
            s = slices[i] if i < len(slices) else (0, d)
            if isinstance(s, int):
                s = (s, s + 1, 1)
            elif len(s) == 2:
                s = (s[0], s[1], 1)
            full.append(s)
        return Access(self, tuple(full))


@dataclass(frozen=True, eq=False)
class Access:
    buf: Buf
    slices: tuple[tuple[int, int, int], ...]

    def attr(self) -> nisa.AccessAttr:
        return nisa.AccessAttr.get(self.buf.name, self.slices)

    @property
    def partitions(self) -> int:
        a, b, s = self.slices[0]
        return -(-(b - a) // s)

    @property
    def free(self) -> int:
        n = 1
        for a, b, s in self.slices[1:]:
            n *= -(-(b - a) // s)
        return n

    @cached_property
    def box(self) -> tuple[str, int, int, int, int]:
        """(memory key, p0, p1, byte0, byte1): the bounding box the simulator's race check uses."""
        buf = self.buf
        dims = buf.shape if buf.mem == "hbm" else buf.shape[1:]
        sl = self.slices if buf.mem == "hbm" else self.slices[1:]
        strides, acc = [], 1
        for d in reversed(dims):
            strides.append(acc)
            acc *= d
        strides.reverse()
        lo = sum(a * st for (a, _, _), st in zip(sl, strides))
        hi = sum((a + (-(-(b - a) // s) - 1) * s) * st for (a, b, s), st in zip(sl, strides))
        if buf.mem == "hbm":
            return (f"hbm:{buf.name}", 0, 1, lo * buf.esize, (hi + 1) * buf.esize)
        a, b, _ = self.slices[0]
        return (buf.mem, a, b, buf.offset + lo * buf.esize, buf.offset + (hi + 1) * buf.esize)

    @cached_property
    def dense(self) -> bool:
        """Whether the access touches every byte of its box (in each of its partitions)."""
        _, _, _, b0, b1 = self.box
        n = self.free * (self.partitions if self.buf.mem == "hbm" else 1)
        return b1 - b0 == n * self.buf.esize

    def meets(self, name: str, slices) -> bool:
        """Whether the access touches an element of a box-overlapping access (`name`,
        `slices`): exactly within one buffer, by the box across aliasing buffers."""
        return name != self.buf.name or nisa.slices_meet(self.slices, slices)

    def covers(self, name: str, slices) -> bool:
        """Whether the access touches every element of an access its box contains."""
        return self.dense or (name == self.buf.name and nisa.slices_cover(self.slices, slices))


class _Allocator:
    """Next-fit over the bytes of every partition: allocation continues after the last block, so
    freed memory is reused as late as possible (a ring: natural double/multi-buffering)."""

    def __init__(self, size: int, bank: int | None = None, base: int = 0):
        self.size, self.bank, self.base = size, bank, base  # offsets [base, size)
        self.used: list[tuple[int, int]] = []  # sorted (start, end)
        self.cursor = base

    def _fits(self, start: int, n: int) -> bool:
        if start < self.base or start + n > self.size:
            return False
        if self.bank and start // self.bank != (start + n - 1) // self.bank:
            return False
        return all(e <= start or s >= start + n for s, e in self.used)

    def alloc(self, n: int, align: int) -> int:
        n = max(n, align)
        cands = sorted(
            {self.base, self.cursor}
            | {e for _, e in self.used}
            | ({k * self.bank for k in range(self.size // self.bank)} if self.bank else set())
        )
        cands = [-(-c // align) * align for c in cands]
        order = [c for c in cands if c >= self.cursor] + [c for c in cands if c < self.cursor]
        for c in order:
            if self._fits(c, n):
                self.used.append((c, c + n))
                self.used.sort()
                self.cursor = c + n
                return c
        raise AllocError(n)

    def free(self, start: int) -> None:
        self.used = [u for u in self.used if u[0] != start]

    def in_use(self) -> int:
        return sum(e - s for s, e in self.used)


@dataclass
class _Entry:
    p0: int
    p1: int
    b0: int
    b1: int
    stream: str
    idx: int
    write: bool
    name: str  # the buffer and slices, for the exact test of box-overlapping accesses
    slices: tuple


@dataclass
class KernelBuilder:
    name: str = "main"
    decls: list[Operation] = field(default_factory=list)
    streams: dict[str, list[nisa.InstrOp]] = field(default_factory=dict)
    sbuf_budget: int = SBUF_BYTES

    def __post_init__(self):
        # Two arenas: long-lived tiles (matmul B blocks, constants) rotate through the low
        # part, step-by-step tiles through the high part, so a block's memory is next reused
        # by the next block (whose load then waits only for the older block's readers), never
        # by the churn of small tiles in between.
        self._long = _Allocator(LONG_ARENA)
        self._sbuf = _Allocator(self.sbuf_budget, base=LONG_ARENA)
        self._psum = _Allocator(PSUM_BYTES, PSUM_BANK)
        self._decl_names: dict[tuple, str] = {}
        self._hbm: dict[str, Buf] = {}
        self._consts: dict[tuple, str] = {}
        self._track: dict[tuple, tuple[list[_Entry], list[_Entry]]] = {}  # (reads, writes)
        self._waited: dict[str, dict[str, int]] = {}
        self._count: dict[str, int] = {}
        self._end: dict[str, list[float]] = {}
        self._free: dict[str, float] = {}
        self._n = 0

    # -- declarations -----------------------------------------------------------------------
    def hbm(
        self, role: str, name: str, shape, dtype: str, key: str | None = None, attrs=None
    ) -> Buf:
        """An HBM tensor; `key`: the .npz key of an input or weight, when not `name`; `attrs`:
        a scaled weight's scale and axis, a const's value."""
        if name in self._hbm:
            return self._hbm[name]
        t = TensorType(element_type_named(dtype), list(shape))
        decl = nisa.HbmOp.get(name, role, t)
        if key is not None:
            decl.attributes["key"] = StringAttr(key)
        decl.attributes.update(attrs or {})
        self.decls.append(decl)
        buf = Buf(name, "hbm", nisa.hbm_shape(t), dtype, role=role)  # rank 0: one element
        self._hbm[name] = buf
        return buf

    def const(self, values, rows: int = 0) -> Buf:
        """An f32 HBM tensor holding `values` (1-D), or with `rows` that many copies of them
        ([rows, len(values)]); one per set of values and shape."""
        values = tuple(float(v) for v in values)
        key = (values, rows)
        name = self._consts.get(key)
        if name is None:
            name = self._consts[key] = self.fresh("c")
        shape = (rows, len(values)) if rows else (len(values),)
        return self.hbm(
            "const",
            name,
            shape,
            "f32",
            attrs={"value": DenseArrayBase.from_list(f32, list(values) * max(rows, 1))},
        )

    def fresh(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def _onchip(self, mem: str, parts: int, free: tuple[int, ...], dtype: str, offset: int) -> Buf:
        key = (mem, parts, free, dtype, offset)
        name = self._decl_names.get(key)
        if name is None:
            name = f"{'t' if mem == 'sbuf' else 'p'}{len(self._decl_names)}"
            self._decl_names[key] = name
            cls = nisa.SbufOp if mem == "sbuf" else nisa.PsumOp
            self.decls.append(
                cls.get(name, 0, offset, TensorType(element_type_named(dtype), [parts, *free]))
            )
        return Buf(name, mem, (parts, *free), dtype, offset)

    def sbuf(self, parts: int, free, dtype: str, long: bool = False) -> Buf:
        free = tuple(free)
        dtype = ON_CHIP.get(dtype, dtype)
        n = DT_BYTES[dtype]
        for d in free:
            n *= d
        first, second = (self._long, self._sbuf) if long else (self._sbuf, self._long)
        try:
            off = first.alloc(n, max(4, DT_BYTES[dtype]))
        except AllocError:
            off = second.alloc(n, max(4, DT_BYTES[dtype]))
        return self._onchip("sbuf", parts, free, dtype, off)

    def psum(self, parts: int, free) -> Buf:
        free = tuple(free)
        n = 4
        for d in free:
            n *= d
        if n > PSUM_BANK:
            raise AllocError(n)
        off = self._psum.alloc(n, 512 if n <= 512 else PSUM_BANK)
        return self._onchip("psum", parts, free, "f32", off)

    def free(self, *bufs: Buf | None) -> None:
        for b in bufs:
            if b is None or b.mem == "hbm" or b.view:
                continue
            if b.mem == "psum":
                self._psum.free(b.offset)
            else:
                (self._long if b.offset < LONG_ARENA else self._sbuf).free(b.offset)

    def view(self, buf: Buf, parts: int, col0: int, cols: int) -> Buf:
        """Partitions [0, parts) x columns [col0, col0 + cols) of a 2-D SBUF tile, as a tile."""
        v = self._onchip(buf.mem, parts, (cols,), buf.dtype, buf.offset + col0 * buf.esize)
        v.view = True
        return v

    def sbuf_in_use(self) -> int:
        return self._sbuf.in_use() + self._long.in_use()

    # -- instructions -----------------------------------------------------------------------
    def _need(self, stream: str | None, reads, writes) -> dict[str, int]:
        """Per other stream, how many of its instructions must have completed: every earlier
        access overlapping these bytes where either side writes."""
        need: dict[str, int] = {}
        for accs, is_write in ((reads, False), (writes, True)):
            for acc in accs:
                _, q0, q1, c0, c1 = box = acc.box
                for k in range(c0 // _BUCKET, (c1 - 1) // _BUCKET + 1):
                    track = self._track.get((box[0], k))
                    if track is None:
                        continue
                    # a read conflicts with writes only; a write with reads too
                    for lst in (track[1], track[0]) if is_write else (track[1],):
                        for e in lst:
                            if (
                                e.stream != stream
                                and e.p0 < q1
                                and q0 < e.p1
                                and e.b0 < c1
                                and c0 < e.b1
                                and need.get(e.stream, 0) <= e.idx
                                and acc.meets(e.name, e.slices)
                            ):
                                need[e.stream] = e.idx + 1
        return need

    def _ready(self, need: dict[str, int]) -> float:
        return max((self._end[s][n - 1] for s, n in need.items()), default=0.0)

    @staticmethod
    def _cost(stream: str, cls: type[nisa.InstrOp], reads, writes) -> tuple[float, float]:
        """(latency, occupancy) in ns from the simulator's cost model, taken coarsely: every
        ALU op at VectorE's rate on its slow path (tensor_tensor 2N, others N), a matmul or
        transpose by its output tile, a transfer by its largest access."""
        if stream.startswith("q"):
            if cls is nisa.DmaGatherOp:  # what it writes; descriptors built on GpSimd first
                nbytes = writes[0].partitions * writes[0].free * writes[0].buf.esize
                setup = cost.gpsimd(reads[-1].free) / _CLOCK["gpsimd"]
                return setup + cost.dma_total_ns(nbytes), cost.dma_data_ns(nbytes)
            nbytes = max(
                [
                    a.partitions * a.free * a.buf.esize
                    for a in list(reads) + list(writes)
                    if isinstance(a, Access)
                ]
                or [0]
            )
            return cost.dma_total_ns(nbytes), cost.dma_data_ns(nbytes)
        w = writes[0] if writes else None
        n = w.free if w is not None else cost.MIN_II
        if w is not None and cls in (nisa.MatmulOp, nisa.TransposeOp):
            f32 = any(isinstance(a, Access) and a.buf.dtype == "f32" for a in reads)
            cyc = max(cost.MIN_II, cost.matmul(w.partitions, n, f32))
        elif cls is nisa.TensorTensorOp:
            cyc = cost.tensor_tensor("vector", n, fast=False)
        else:
            cyc = cost.one_pass(n)
        return (cyc + cost.ACCESS_LATENCY) / _CLOCK[stream], cyc / _CLOCK[stream]

    def inst(
        self, stream: str | tuple[str, ...], cls: type[nisa.InstrOp], *positional, **keywords
    ) -> nisa.InstrOp:
        """Append one `cls` instruction to `stream` with the waits its accesses need and a
        signal; operands as in the class's syntax() (lowering `Access`es, numbers,
        words, True for flags). Its `dst` and `accumulate` accesses are what it writes, every
        other access what it reads. A stream of ANY_QUEUE means the DMA queue where the
        transfer can start first; a tuple of engines, the one of them where it can."""
        named = dict(zip((f.name for f in cls.syntax().positional), positional)) | keywords
        reads = [v for n, v in named.items() if isinstance(v, Access) and n not in _WRITTEN]
        writes = [v for n, v in named.items() if isinstance(v, Access) and n in _WRITTEN]
        if isinstance(stream, tuple):
            # Of these engines, where it can start first (the first on a tie): an engine runs
            # in order, so one still busy at the time the inputs are ready would delay it, and
            # putting it on an idle engine that another stream's later work needs costs nothing
            # only when it starts no later there.
            ready = self._ready(self._need(None, reads, writes))
            stream = min(stream, key=lambda s: max(ready, self._free.get(s, 0.0)))
        elif stream == ANY_QUEUE:
            # Loads and stores alike: matmul blocks emit their loads before their stores
            # (matmul._prefetch_block), so a store rarely holds up a load behind it.
            ready = self._ready(self._need(None, reads, writes))
            stream = min(
                (f"q{i}" for i in range(DMA_QUEUES)),
                key=lambda q: (max(ready, self._free.get(q, 0.0)), self._free.get(q, 0.0)),
            )
        need = self._need(stream, reads, writes)
        waited = self._waited.setdefault(stream, {})
        waits = {}
        for s, n in sorted(need.items()):
            if waited.get(s, 0) < n:
                waited[s] = n
                waits[f"s_{s}"] = n
        idx = self._count.get(stream, 0)
        self._count[stream] = idx + 1
        lat, occ = self._cost(stream, cls, reads, writes)
        start = max(self._ready(need), self._free.get(stream, 0.0))
        self._free[stream] = start + occ
        self._end.setdefault(stream, []).append(start + lat)
        for acc in reads:
            self._record(acc, stream, idx, False)
        for acc in writes:
            self._record(acc, stream, idx, True)
        args = [v.attr() if isinstance(v, Access) else v for v in positional]
        kws = {n: v.attr() if isinstance(v, Access) else v for n, v in keywords.items()}
        op = cls.make(*args, wait=waits, signal=[f"s_{stream}"], **kws)
        self.streams.setdefault(stream, []).append(op)
        return op

    def _record(self, acc: Access, stream: str, idx: int, write: bool) -> None:
        """Track the access (per 4 KiB bucket: reads and writes apart). A write drops every
        entry it covers (a later access that overlaps one overlaps the write, which waited for
        it); a read drops the stream's own reads it covers (their index is lower)."""
        key, p0, p1, b0, b1 = acc.box
        entry = _Entry(p0, p1, b0, b1, stream, idx, write, acc.buf.name, acc.slices)
        for k in range(b0 // _BUCKET, (b1 - 1) // _BUCKET + 1):
            track = self._track.get((key, k))
            if track is None:
                track = self._track[(key, k)] = ([], [])
            reads, writes = track
            if write:
                for lst in track:
                    if lst:
                        lst[:] = [
                            e
                            for e in lst
                            if not (
                                p0 <= e.p0
                                and e.p1 <= p1
                                and b0 <= e.b0
                                and e.b1 <= b1
                                and acc.covers(e.name, e.slices)
                            )
                        ]
                writes.append(entry)
            else:
                if reads:
                    reads[:] = [
                        e
                        for e in reads
                        if not (
                            e.stream == stream
                            and p0 <= e.p0
                            and e.p1 <= p1
                            and b0 <= e.b0
                            and e.b1 <= b1
                            and acc.covers(e.name, e.slices)
                        )
                    ]
                reads.append(entry)

    # -- the kernel -------------------------------------------------------------------------
    def module(self, weights: str | None = None) -> ModuleOp:
        """The kernel as a nisa module (the builder's declarations and streams move into it)."""
        order = ["tensor", "vector", "scalar", "gpsimd"]
        names = [s for s in order if s in self.streams]
        names += sorted((s for s in self.streams if s not in order), key=lambda q: int(q[1:]))
        body: list[Operation] = list(self.decls)
        body += [nisa.SemaphoreOp.get(f"s_{s}") for s in names]
        for s in names:
            stream_cls = nisa.EngineOp if s in order else nisa.DmaQueueOp
            body.append(stream_cls(s, self.streams[s]))
        module = ModuleOp([nisa.KernelOp(self.name, body)])
        if weights:
            module.attributes[WEIGHTS_ATTR] = StringAttr(weights)
        return module

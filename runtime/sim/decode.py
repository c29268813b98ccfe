"""Decoding: a nisa kernel -> plain Python objects the engine loop runs without touching xDSL.

Everything static is computed here once: costs in ns, semaphore indices, port slots, PSUM
accumulation-group bookkeeping, FLOPs, DMA bytes and (with numerics) the numpy closure.
"""

from __future__ import annotations

from collections.abc import Callable

from xdsl.dialects.builtin import BFloat16Type, Float16Type, Float32Type
from xdsl.utils.exceptions import VerifyException

from neuron_opt.diagnostics import location_of
from neuron_opt.dialects import ncv2, nisa
from neuron_opt.dialects import ncv2_cost as cost
from neuron_opt.dialects.nisa_placement import Placement, check_kernel
from neuron_opt.dialects.types import byte_size
from neuron_opt.runtime.sim.errors import Fault, SimError
from neuron_opt.runtime.sim.machine import psum_bank_span, psum_banks_touched
from neuron_opt.runtime.sim.numerics import build

# (writes, memory, row0, row1, byte0, byte1, operand, access text, buckets, buffer, slices):
# one operand's access as the race check sees it (Instr.regions says why each part).
Region = tuple[
    bool,
    str,
    int,
    int,
    int,
    int,
    str,
    str,
    tuple[tuple[str, int], ...],
    str,
    tuple[tuple[int, int, int], ...],
]

# Port slots: (engine, memory) pairs that exclude the other engine of the same memory.
VECTOR_SBUF, GPSIMD_SBUF, VECTOR_PSUM, SCALAR_PSUM = range(4)
_PORTS = {
    ("vector", "SBUF"): (VECTOR_SBUF, GPSIMD_SBUF),  # (own slot, the slot it must wait for)
    ("gpsimd", "SBUF"): (GPSIMD_SBUF, VECTOR_SBUF),
    ("vector", "PSUM"): (VECTOR_PSUM, SCALAR_PSUM),
    ("scalar", "PSUM"): (SCALAR_PSUM, VECTOR_PSUM),
}


class Instr:
    """One decoded instruction. Times are ns."""

    __slots__ = (
        "args",
        "busy",
        "cost",
        "dma_engine",
        "done",
        "flops",
        "fn",
        "index",
        "nbytes",
        "op",
        "opcode",
        "pre",
        "ps",
        "pw",
        "regions",
        "setup",
        "sig_delay",
        "signals",
        "waits",
    )  # fmt: skip

    def __init__(self):
        self.pre: Callable[[], None] | None = None
        self.fn: Callable[[], None] | None = None
        self.flops = 0
        self.nbytes = 0
        self.dma_engine = -1
        self.setup = 0.0  # ns before a DMA's fixed cost starts (GpSimd building descriptors)
        self.pw = ()
        self.ps = ()
        # (writes, memory, row0, row1, byte0, byte1, operand, access text, buckets, buffer,
        # slices) per operand: the bounding box the race check compares (numerics mode), the
        # 4 KiB buckets it is filed under so a check only looks at nearby in-flight accesses,
        # and the buffer and slices that decide exactly whether two accesses of one buffer
        # whose boxes overlap share an element.
        self.regions: tuple[Region, ...] = ()


class Stream:
    __slots__ = ("engine", "instrs", "label", "name")

    def __init__(self, name: str, label: str, engine: str, instrs: list[Instr]):
        self.name, self.label, self.engine, self.instrs = name, label, engine, instrs


class Program:
    def __init__(self, streams: list[Stream], semaphores: list[str], groups: list[int]):
        self.streams = streams
        self.semaphores = semaphores
        self.groups = groups  # PSUM accumulation groups, shared by the decoded closures

    def reset(self) -> None:
        self.groups[:] = [0] * len(self.groups)

    def instruction_count(self) -> int:
        return sum(len(s.instrs) for s in self.streams)


def decode(kernel: nisa.KernelOp, machine=None) -> Program:
    """Check the kernel's placement rules (the verifier's, with the same messages), then
    decode it. With `machine`, also build each instruction's numpy closure."""
    try:
        pl = check_kernel(kernel)
    except VerifyException as e:
        raise SimError(str(e).strip().splitlines()[0]) from None
    sems = sorted(pl.semaphores)
    sem_index = {s: i for i, s in enumerate(sems)}
    groups = [0] * ncv2.PSUM_BANKS  # open accumulation groups: a partition bitmask per bank
    streams: list[Stream] = []
    queue_no = 0
    boxes = _Boxes(pl)
    for st in pl.streams:
        if isinstance(st, nisa.EngineOp):
            engine = st.sym_name.data
            dma_engine = -1
        else:
            engine = "dma"
            dma_engine = queue_no % ncv2.DMA_ENGINES
            queue_no += 1
        label = st.label()
        instrs = []
        for index, op in enumerate(st.instructions()):  # check_kernel checked them
            try:
                ins = _decode_one(pl, boxes, engine, op, sem_index, groups)
                ins.index = index
                ins.dma_engine = dma_engine
                if machine is not None:
                    ins.fn = build(op, machine)
            except Fault as f:
                raise SimError(
                    f"{label} instruction {index} ({op.name}): operand {f.operand}: {f.message}",
                    location_of(op),
                ) from None
            instrs.append(ins)
        streams.append(Stream(st.sym_name.data, label, engine, instrs))
    return Program(streams, sems, groups)


def _is(pl, ap, cls) -> bool:
    return isinstance(pl.decls[ap.memory.data].type.element_type, cls)


def _free(ap: nisa.AccessAttr) -> int:
    return nisa.free_size(ap.shape())


def _decode_one(
    pl: Placement, boxes: _Boxes, engine: str, op: nisa.InstrOp, sem_index, groups
) -> Instr:
    ins = Instr()
    ins.op = op
    ins.opcode = op.OPCODE
    ins.waits = tuple((sem_index[s], n) for s, n in op.waits().items())
    ins.signals = tuple(sem_index[s] for s in op.signals())
    accesses = dict(op.accesses())
    mems = {k: pl.memory_of(pl.decls[ap.memory.data]) for k, ap in accesses.items()}
    ins.regions = tuple(boxes.region(name, ap) for name, ap in accesses.items())
    if engine == "dma":
        src, dst = accesses["src"], accesses["dst"]
        n = 1
        for d in dst.shape():  # a gather moves what it writes
            n *= d
        src_b = n * byte_size(pl.decls[src.memory.data].type.element_type)
        dst_b = n * byte_size(pl.decls[dst.memory.data].type.element_type)
        ins.nbytes = max(src_b, dst_b)
        ins.busy = cost.dma_data_ns(ins.nbytes)
        ins.cost = ins.busy
        ins.done = cost.dma_total_ns(ins.nbytes)
        ins.sig_delay = 0.0
        ins.args = (f"{src.text()} -> {dst.text()}", ins.nbytes)
        if isinstance(op, nisa.DmaGatherOp):
            ins.setup = cost.gpsimd(_free(op.index)) / ncv2.CLOCK_GHZ["gpsimd"]
            ins.done += ins.setup
        return ins

    cycles = _cycles(pl, engine, op, accesses, mems)
    clock = ncv2.CLOCK_GHZ[engine]
    ins.cost = cycles / clock
    ins.busy = max(cost.MIN_II, cycles) / clock
    ins.done = (cycles + cost.ACCESS_LATENCY) / clock
    ins.sig_delay = cost.SEMAPHORE_LATENCY / clock
    pw, ps = [], []
    for mem in set(mems.values()):
        slots = _PORTS.get((engine, mem))
        if slots:
            ps.append(slots[0])
            pw.append(slots[1])
    ins.ps, ins.pw = tuple(ps), tuple(pw)
    ins.args = ", ".join(f"{k}={ap.text()}" for k, ap in accesses.items())

    if isinstance(op, nisa.MatmulOp):
        k = op.stationary.shape()[0]
        ins.flops = 2 * k * _free(op.stationary) * _free(op.moving)
        ins.pre = _matmul_group(pl.decls[op.dst.memory.data], op, groups)
    elif mems.get("dst") == "PSUM":
        dst = accesses["dst"]
        ins.pre = _close_groups(pl.decls[dst.memory.data], dst, groups)
    return ins


def _span(shape, esize: int, slices, offset: int) -> tuple[int, int]:
    """Byte span [lo, hi) of the slices of the dims after the first, row-major."""
    strides = [1] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        strides[i] = strides[i + 1] * shape[i + 1]
    lo = hi = 0
    for (a, b, st), stride in zip(slices, strides):
        lo += a * stride
        hi += (a + ((b - 1 - a) // st) * st) * stride
    return offset + lo * esize, offset + (hi + 1) * esize


BUCKET_SHIFT = 12  # 4 KiB


class _Boxes:
    """The bounding box of each access, per access attribute (a kernel repeats them) from
    per-buffer facts computed once."""

    def __init__(self, pl: Placement):
        self.pl = pl
        self._decls: dict[str, tuple] = {}
        self._boxes: dict[int, tuple] = {}

    def _decl(self, name: str) -> tuple:
        hit = self._decls.get(name)
        if hit is None:
            decl = self.pl.decls[name]
            esize = byte_size(decl.type.element_type)
            if isinstance(decl, nisa.HbmOp):
                hit = (True, "HBM:" + name, nisa.hbm_shape(decl.type), esize, 0, 0)
            else:
                hit = (
                    False,
                    self.pl.memory_of(decl),
                    tuple(decl.type.get_shape()),
                    esize,
                    decl.partition.data,
                    decl.offset.data,
                )
            self._decls[name] = hit
        return hit

    def box(self, ap: nisa.AccessAttr) -> tuple:
        """(memory, row0, row1, byte0, byte1, buckets, ap)."""
        hit = self._boxes.get(id(ap))
        if hit is None:
            hbm, mem, shape, esize, p0, offset = self._decl(ap.memory.data)
            sl = ap.slices()
            if hbm and len(shape) == 1:
                lo, hi = _span(shape, esize, sl, 0)
                r0, r1 = 0, 1
            else:
                lo, hi = _span(shape[1:], esize, sl[1:], offset)
                r0, r1 = p0 + sl[0][0], p0 + sl[0][1]
            keys = tuple(
                (mem, b) for b in range(lo >> BUCKET_SHIFT, ((hi - 1) >> BUCKET_SHIFT) + 1)
            )
            hit = self._boxes[id(ap)] = (mem, r0, r1, lo, hi, keys, ap)  # ap: keeps the id valid
        return hit

    def region(self, name: str, ap: nisa.AccessAttr) -> Region:
        mem, r0, r1, lo, hi, keys, _ = self.box(ap)
        return (
            name in ("dst", "accumulate"),
            mem,
            r0,
            r1,
            lo,
            hi,
            name,
            ap.text(),
            keys,
            ap.memory.data,
            ap.slices(),
        )


def _cycles(pl, engine, op, acc, mems) -> float:
    if isinstance(op, nisa.MatmulOp):
        fp32 = _is(pl, op.stationary, Float32Type) or _is(pl, op.moving, Float32Type)
        return cost.matmul(_free(op.stationary), _free(op.moving), fp32)
    if isinstance(op, nisa.TransposeOp):
        return cost.transpose(op.src.shape()[0], _free(op.src), _is(pl, op.src, Float32Type))
    if isinstance(op, nisa.ActivationOp):
        return cost.activation(_free(op.src), op.accumulate is not None)
    if isinstance(op, nisa.TensorTensorOp):
        in_psum = "PSUM" in (mems["lhs"], mems["rhs"])
        bf16 = all(_is(pl, acc[k], BFloat16Type) for k in ("dst", "lhs", "rhs"))
        unit = all(acc[k].slices()[-1][2] == 1 for k in ("dst", "lhs", "rhs"))
        fast = in_psum or (bf16 and unit and op.op.data in ("add", "sub", "mul"))
        return cost.tensor_tensor(engine, _free(op.dst), fast)
    if isinstance(op, (nisa.TensorScalarOp, nisa.TensorCopyOp, nisa.BnStatsOp)):
        return cost.one_pass(_free(op.src))
    if isinstance(op, nisa.TensorReduceOp):
        bf16 = _is(pl, op.src, BFloat16Type) and _is(pl, op.dst, BFloat16Type)
        return cost.tensor_reduce(_free(op.src), bf16 and op.op.data in ("add", "max"))
    if isinstance(op, nisa.MemsetOp):
        half = _is(pl, op.dst, (BFloat16Type, Float16Type)) and op.value.value.data == 0.0
        return cost.memset(_free(op.dst), half)
    if isinstance(op, (nisa.IotaOp, nisa.AffineSelectOp)):
        return cost.gpsimd(_free(op.dst))
    if isinstance(op, nisa.SelectOp):
        tensors = [k for k in ("pred", "on_true", "on_false") if k in mems]
        return cost.select(engine, _free(op.dst), any(mems[k] == "PSUM" for k in tensors))
    if isinstance(op, nisa.BnAggrOp):
        return cost.bn_aggr(_free(op.src))
    raise AssertionError(op.name)


def _matmul_group(decl, op: nisa.MatmulOp, groups: list[int]):
    """PSUM accumulation-group rules of a matmul, checked in both modes (cheap bitmasks)."""
    bank, mask = psum_bank_span(decl, op.dst)
    start, stop = op.start is not None, op.stop is not None
    p0, p1 = (
        decl.partition.data + op.dst.slices()[0][0],
        decl.partition.data + op.dst.slices()[0][1],
    )

    def pre():
        if start:
            groups[bank] |= mask
        elif groups[bank] & mask != mask:
            raise Fault(
                "dst",
                f"accumulate into PSUM bank {bank} partitions {p0}:{p1}, whose accumulation "
                "group was not started by a matmul with 'start'",
            )
        if stop:
            groups[bank] &= ~mask

    return pre


def _close_groups(decl, ap, groups: list[int]):
    """A non-matmul write into PSUM ends the accumulation groups it touches."""
    spans = psum_banks_touched(decl, ap)

    def pre():
        for bank, mask in spans:
            groups[bank] &= ~mask

    return pre

"""Placement: where a nisa kernel's buffers and semaphores live, and every placement rule of
docs/nisa.md checked against it (which engine may run an instruction, which memories it may
touch, partition starts, bounds, shapes, PSUM banks).

The kernel verifier runs these rules (each instruction's error located at its line) and the
simulator runs them again before it decodes a kernel.
"""

from __future__ import annotations

import math
from typing import cast

from xdsl.dialects.builtin import Float32Type, FloatTF32Type, StringAttr
from xdsl.utils.exceptions import VerifyException

from neuron_opt.dialects import ncv2
from neuron_opt.dialects.nisa_ops import (
    BITVEC_OPS,
    AccessAttr,
    ActivationOp,
    AffineSelectOp,
    BnAggrOp,
    BnStatsOp,
    DmaCopyOp,
    DmaGatherOp,
    EngineOp,
    HbmOp,
    InstrOp,
    KernelOp,
    MatmulOp,
    OnChipOp,
    PsumOp,
    SbufOp,
    SelectOp,
    SemaphoreOp,
    StreamOp,
    TensorCopyOp,
    TensorReduceOp,
    TensorScalarOp,
    TensorTensorOp,
    TransposeOp,
    free_size,
    hbm_shape,
)
from neuron_opt.dialects.types import byte_size, is_float, is_integer, type_name


def access_bytes(decl: OnChipOp, ap: AccessAttr) -> tuple[int, int]:
    """The byte span [lo, hi) within each partition that `ap` touches."""
    shape = decl.type.get_shape()
    esize = byte_size(decl.type.element_type)
    strides = [1] * len(shape)
    for i in range(len(shape) - 2, 0, -1):
        strides[i] = strides[i + 1] * shape[i + 1]
    lo = hi = 0
    for (a, b, s), st in zip(ap.slices()[1:], strides[1:]):
        last = a + ((b - 1 - a) // s) * s
        lo += a * st
        hi += last * st
    return decl.offset.data + lo * esize, decl.offset.data + (hi + 1) * esize


class Placement:
    """Where a kernel's symbols live (buffers, semaphores by name; its streams): built once per
    check, also used by the simulator."""

    def __init__(self, kernel: KernelOp):
        self.decls: dict[str, HbmOp | OnChipOp] = {}
        self.semaphores: dict[str, SemaphoreOp] = {}
        self.streams: list[StreamOp] = []
        for op in kernel.body.block.ops:
            if isinstance(op, StreamOp):
                self.streams.append(op)
                continue
            if isinstance(op, SemaphoreOp):
                if op.sym_name.data in self.semaphores or op.sym_name.data in self.decls:
                    raise VerifyException(f"@{op.sym_name.data} is declared twice")
                self.semaphores[op.sym_name.data] = op
                continue
            if isinstance(op, (HbmOp, SbufOp, PsumOp)):
                if op.sym_name.data in self.decls or op.sym_name.data in self.semaphores:
                    raise VerifyException(f"@{op.sym_name.data} is declared twice")
                self.decls[op.sym_name.data] = op
                continue
            raise VerifyException(f"{op.name} may not appear directly in a nisa.kernel")

        seen: set[tuple[type, str]] = set()
        for stream in self.streams:
            key = (type(stream), stream.sym_name.data)
            if key in seen:
                raise VerifyException(f"{stream.label()} has two streams")
            seen.add(key)
        self.kernel = kernel
        self.block = kernel.body.block

    def declares(self, instr: InstrOp) -> bool:
        """Whether every symbol `instr` names is declared in the kernel as this placement says:
        the declaration found is still the kernel's and still has that name."""
        block, decls, sems = self.block, self.decls, self.semaphores
        # properties["sym_name"] rather than the IRDL accessor, per instruction for speed: the
        # declarations' verifiers checked it is a StringAttr.
        for v in instr.properties.values():
            if type(v) is AccessAttr:  # exactly: isinstance's ABC check costs more, per instruction
                name = v.memory.data
                decl = decls.get(name)
                if (
                    decl is None
                    or decl.parent is not block
                    or cast(StringAttr, decl.properties["sym_name"]).data != name
                ):
                    return False
        return all(
            (s := sems.get(n)) is not None
            and s.parent is block
            and cast(StringAttr, s.properties["sym_name"]).data == n
            for n in [*instr.waits(), *instr.signals()]
        )

    @staticmethod
    def memory_of(decl) -> str:
        return {HbmOp: "HBM", SbufOp: "SBUF", PsumOp: "PSUM"}[type(decl)]


# A kernel's placement is kept in the kernel op's own __dict__ between the kernel's verifier
# and its instructions' (one build per kernel instead of one per instruction). There it lives
# and dies with the kernel (a module-level cache, even a WeakKeyDictionary, would keep the last
# kernel alive: the placement refers to the kernel's ops, and they to the kernel). The kernel
# verifier always rebuilds it, and an instruction uses it only if every symbol the instruction
# names is still declared as it says (else it is rebuilt), so an edited kernel never sees a
# stale one.
_KEY = "_nisa_placement"


def verify_kernel(kernel: KernelOp) -> None:
    """The kernel-level rules (declarations, streams); keeps the placement for its instructions."""
    vars(kernel)[_KEY] = Placement(kernel)


def verify_instruction(instr: InstrOp) -> None:
    """The placement rules of one instruction inside a kernel (an instruction elsewhere has no
    placement to check against)."""
    stream = instr.parent_op()
    kernel = stream.parent_op() if stream is not None else None
    if not isinstance(stream, StreamOp) or not isinstance(kernel, KernelOp):
        return
    pl = vars(kernel).get(_KEY)
    if not isinstance(pl, Placement) or not pl.declares(instr):
        pl = vars(kernel)[_KEY] = Placement(kernel)
    engine = stream.sym_name.data if isinstance(stream, EngineOp) else "dma"
    try:
        check_instruction(pl, engine, instr)
    except VerifyException as e:
        index = next(i for i, op in enumerate(stream.body.block.ops) if op is instr)
        raise VerifyException(f"{stream.label()} instruction {index} ({instr.name}): {e}") from None


def check_kernel(kernel: KernelOp) -> Placement:
    """Every placement rule of docs/nisa.md; errors name the engine, the instruction index and
    the operand. Returns the placement (the simulator decodes with it)."""
    pl = Placement(kernel)
    for stream in pl.streams:
        stream.verify_()
        engine = stream.sym_name.data if isinstance(stream, EngineOp) else "dma"
        for index, instr in enumerate(stream.body.block.ops):
            try:
                if not isinstance(instr, InstrOp):
                    raise VerifyException(f"{instr.name} is not a nisa instruction")
                instr.verify_properties()
                check_instruction(pl, engine, instr)
            except VerifyException as e:
                raise VerifyException(
                    f"{stream.label()} instruction {index} ({instr.name}): {e}"
                ) from None
    return pl


def check_instruction(pl: Placement, engine: str, instr: InstrOp) -> None:
    if engine not in instr.ENGINES:
        where = "a dma queue" if engine == "dma" else f"the {engine} engine"
        allowed = ", ".join(instr.ENGINES)
        raise VerifyException(f"{instr.name} cannot run on {where} (it runs on: {allowed})")
    for sem in list(instr.waits()) + instr.signals():
        if sem not in pl.semaphores:
            raise VerifyException(f"@{sem} is not a declared semaphore")
    mems: dict[str, str] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for opname, ap in instr.accesses():
        decl = pl.decls.get(ap.memory.data)
        if decl is None:
            raise VerifyException(f"operand {opname}: @{ap.memory.data} is not a declared buffer")
        t = decl.type
        shape = hbm_shape(t) if isinstance(decl, HbmOp) else t.get_shape()
        sl = ap.slices()
        if len(sl) != len(shape):
            raise VerifyException(
                f"operand {opname}: {ap.text()} has {len(sl)} indices for a "
                f"{len(shape)}-d buffer {type_name(t)}"
            )
        for d, ((a, b, _), n) in enumerate(zip(sl, shape)):
            if b > n:
                raise VerifyException(
                    f"operand {opname}: {ap.text()} is out of bounds in dimension {d} "
                    f"({a}:{b} of {n})"
                )
        mem = pl.memory_of(decl)
        mems[opname] = mem
        shapes[opname] = ap.shape()
        if isinstance(instr, DmaGatherOp):
            want = "HBM" if opname == "src" else "SBUF"
            if mem != want:
                raise VerifyException(
                    f"operand {opname}: dma_gather's {opname} is in {want}, found {mem}"
                )
        else:
            _check_engine_memory(engine, instr, opname, mem)
        if not isinstance(decl, HbmOp):  # on chip
            if sl[0][2] != 1:
                raise VerifyException(f"operand {opname}: no striding along the partition dim")
            p = decl.partition.data + sl[0][0]
            count = sl[0][1] - sl[0][0]
            if engine != "dma" and not ncv2.partition_start_ok(p, count):
                raise VerifyException(
                    f"operand {opname}: {count} partitions starting at {p}: "
                    f"{ncv2.partition_start_rule(count)}"
                )
            if engine in ("vector", "scalar", "gpsimd"):
                n = free_size(ap.shape())
                limit = ncv2.VECTOR_FREE_MAX_PSUM if mem == "PSUM" else ncv2.VECTOR_FREE_MAX_SBUF
                if n > limit:
                    raise VerifyException(
                        f"operand {opname}: free size {n} exceeds {limit} elements in {mem}"
                    )
    _check_shapes(pl, instr, mems, shapes)


def _check_engine_memory(engine: str, instr: InstrOp, opname: str, mem: str) -> None:
    if engine == "tensor":
        want = "PSUM" if opname == "dst" else "SBUF"
        if mem != want:
            verb = "writes" if opname == "dst" else "reads"
            raise VerifyException(f"operand {opname}: TensorE {verb} {want} only, found {mem}")
    elif engine == "dma":
        if mem == "PSUM":
            raise VerifyException(f"operand {opname}: DMA cannot access PSUM")
    elif engine == "gpsimd":
        if mem != "SBUF":
            raise VerifyException(f"operand {opname}: GpSimd accesses SBUF only, found {mem}")
    elif mem == "HBM":
        raise VerifyException(f"operand {opname}: the {engine} engine cannot access HBM")


def _elt(pl: Placement, ap: AccessAttr):
    return pl.decls[ap.memory.data].type.element_type


def _on_chip(pl: Placement, ap: AccessAttr) -> OnChipOp:
    """A TensorE operand's buffer: _check_engine_memory has put it in SBUF or PSUM."""
    return cast(OnChipOp, pl.decls[ap.memory.data])


def _check_shapes(pl: Placement, instr: InstrOp, mems, shapes) -> None:
    def fail(msg):
        raise VerifyException(msg)

    def same_partitions(a: str, b: str):
        if shapes[a][0] != shapes[b][0]:
            fail(f"operand {b}: {shapes[b][0]} partitions, but {a} has {shapes[a][0]}")

    def same_free(a: str, b: str):
        if free_size(shapes[a]) != free_size(shapes[b]):
            fail(
                f"operand {b}: {free_size(shapes[b])} elements per partition, "
                f"but {a} has {free_size(shapes[a])}"
            )

    def column(name: str):
        if name in shapes:
            same_partitions("dst", name)
            if free_size(shapes[name]) != 1:
                fail(
                    f"operand {name}: expected a [P, 1] column, found {free_size(shapes[name])} per partition"
                )

    if isinstance(instr, (TensorTensorOp, TensorScalarOp)):
        ops = [instr.get(k) for k in ("op", "op0", "op1")]
        if any(o in BITVEC_OPS for o in ops if o):
            for name, ap in instr.accesses():
                if not is_integer(_elt(pl, ap)):
                    fail(
                        f"operand {name}: bitvec ops take integer buffers, found "
                        f"{type_name(_elt(pl, ap))}"
                    )
            for name in ("operand0", "operand1"):  # and whole numbers: they run exact
                v = instr.get(name)
                if isinstance(v, float) and not v.is_integer():
                    fail(f"operand {name}: bitvec ops take whole numbers, found {v!r}")
    if isinstance(instr, (MatmulOp, TransposeOp)):
        dst = instr.dst
        dst_elt = _elt(pl, dst)
        if not isinstance(dst_elt, Float32Type):
            fail(f"operand dst: PE array output is f32 on NC-v2, found {type_name(dst_elt)}")
        lo, hi = access_bytes(_on_chip(pl, dst), dst)
        bank = ncv2.PSUM_BANK_BYTES
        if lo // bank != (hi - 1) // bank:
            fail(f"operand dst: bytes {lo}:{hi} cross a PSUM bank boundary (banks are {bank} B)")
    if isinstance(instr, MatmulOp):
        k, m = shapes["stationary"][0], free_size(shapes["stationary"])
        k2, n = shapes["moving"][0], free_size(shapes["moving"])
        if k != k2:
            fail(f"operand moving: contraction {k2} partitions, stationary has {k}")
        if k > ncv2.CONTRACTION_MAX:
            fail(f"operand stationary: contraction {k} > {ncv2.CONTRACTION_MAX}")
        if m > ncv2.STATIONARY_FREE_MAX:
            fail(f"operand stationary: free size {m} > {ncv2.STATIONARY_FREE_MAX}")
        if n > ncv2.MOVING_FREE_MAX:
            fail(f"operand moving: free size {n} > {ncv2.MOVING_FREE_MAX}")
        ps = _on_chip(pl, instr.stationary).partition.data + instr.stationary.slices()[0][0]
        pm = _on_chip(pl, instr.moving).partition.data + instr.moving.slices()[0][0]
        if ps != pm:
            fail(f"operand moving: starts at partition {pm}, stationary at {ps} (rows must align)")
        if shapes["dst"][0] != m or free_size(shapes["dst"]) != n:
            fail(
                f"operand dst: expected [{m}, {n}], found [{shapes['dst'][0]}, {free_size(shapes['dst'])}]"
            )
        es, em = _elt(pl, instr.stationary), _elt(pl, instr.moving)
        wide = (Float32Type, FloatTF32Type)
        for name, e in (("stationary", es), ("moving", em)):
            if not is_float(e):
                fail(f"operand {name}: TensorE takes float inputs, found {type_name(e)}")
        if isinstance(es, wide) != isinstance(em, wide):
            fail("fp32/tf32 operands pair only with fp32/tf32 operands")
    elif isinstance(instr, TransposeOp):
        p, f = shapes["src"][0], free_size(shapes["src"])
        if f > ncv2.STATIONARY_FREE_MAX:
            fail(f"operand src: free size {f} > {ncv2.STATIONARY_FREE_MAX}")
        if shapes["dst"][0] != f or free_size(shapes["dst"]) != p:
            fail(
                f"operand dst: expected [{f}, {p}], found [{shapes['dst'][0]}, {free_size(shapes['dst'])}]"
            )
    elif isinstance(instr, DmaCopyOp):
        a, b = shapes["dst"], shapes["src"]
        if math.prod(a) != math.prod(b):
            fail(f"operand src: {math.prod(b)} elements, dst has {math.prod(a)}")
    elif isinstance(instr, DmaGatherOp):
        same_partitions("dst", "index")
        index = _elt(pl, instr.index)
        if not is_integer(index) or index.width.data == 1:
            fail(f"operand index: expected an integer buffer, found {type_name(index)}")
        if instr.src.slices()[0][2] != 1:
            fail("operand src: the indexed (first) dim takes no step")
        row = math.prod(shapes["src"][1:])
        want = free_size(shapes["index"]) * row
        if free_size(shapes["dst"]) != want:
            fail(
                f"operand dst: expected {want} elements per partition ({free_size(shapes['index'])} "
                f"indices x {row}), found {free_size(shapes['dst'])}"
            )
    elif isinstance(instr, TensorTensorOp):
        for name in ("lhs", "rhs"):
            same_partitions("dst", name)
            same_free("dst", name)
        if mems["lhs"] == "PSUM" and mems["rhs"] == "PSUM":
            fail("operand rhs: tensor_tensor inputs may not both be in PSUM")
    elif isinstance(instr, (TensorCopyOp, ActivationOp, TensorScalarOp, AffineSelectOp)):
        same_partitions("dst", "src")
        same_free("dst", "src")
        for name in ("bias", "accumulate", "operand0", "operand1", "scale"):
            column(name)
        acc = instr.properties.get("accumulate")
        if isinstance(instr, ActivationOp) and isinstance(acc, AccessAttr):  # in shapes
            if not is_float(_elt(pl, acc)):
                fail("operand accumulate: expected a float buffer")
    elif isinstance(instr, SelectOp):
        for name in ("pred", "on_true"):
            same_partitions("dst", name)
            same_free("dst", name)
        if "on_false" in shapes and free_size(shapes["on_false"]) != 1:
            same_partitions("dst", "on_false")
            same_free("dst", "on_false")
        elif "on_false" in shapes:
            column("on_false")
    elif isinstance(instr, TensorReduceOp):
        same_partitions("dst", "src")
        src = shapes["src"][1:]
        axes = len(src) if instr.axes is None else instr.axes.data
        if not 1 <= axes <= len(src):
            fail(f"axes {axes}: src has {len(src)} free dims")
        keep = math.prod(src[: len(src) - axes])
        if free_size(shapes["dst"]) != keep:
            fail(
                f"operand dst: expected {keep} elements per partition, found {free_size(shapes['dst'])}"
            )
    elif isinstance(instr, BnStatsOp):
        same_partitions("dst", "src")
        if free_size(shapes["src"]) > ncv2.BN_STATS_FREE_MAX:
            fail(
                f"operand src: bn_stats takes at most {ncv2.BN_STATS_FREE_MAX} elements per partition"
            )
        if free_size(shapes["dst"]) != 3:
            fail("operand dst: bn_stats writes 3 values (count, mean, variance) per partition")
    elif isinstance(instr, BnAggrOp):
        same_partitions("dst", "src")
        if free_size(shapes["src"]) % 3:
            fail("operand src: bn_aggr reads (count, mean, variance) triples")
        if free_size(shapes["dst"]) != 2:
            fail("operand dst: bn_aggr writes 2 values (mean, variance) per partition")

"""The NeuronCore-v2's memories: SBUF and PSUM as bytes per partition, HBM as typed tensors.

On-chip memory is raw bytes because the allocator overlaps buffers by liveness: a buffer is a
typed numpy view of its bytes. Each memory has a byte-level "written" mask so a read of memory
never written is an error, not a silent zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from math import prod
from typing import cast

import numpy as np
from xdsl.dialects.builtin import DenseArrayBase, Float8E4M3Type, IntegerAttr, StringAttr, f32

from neuron_opt import memory
from neuron_opt.dialects import ncv2
from neuron_opt.dialects.nisa import AccessAttr, HbmOp, PsumOp, SbufOp, hbm_shape
from neuron_opt.dialects.nisa_placement import Placement, access_bytes
from neuron_opt.dialects.props import array_values
from neuron_opt.dialects.types import numpy_dtype, round_to, type_name
from neuron_opt.npz import open_weights
from neuron_opt.runtime.sim.errors import SimError


def _scales(decl: HbmOp, rank: int) -> np.ndarray:
    """A scaled weight's scales, shaped to broadcast along its axis."""
    # HbmOp's verifier checked them: scale an array, axis an integer within the rank.
    s = np.asarray(array_values(cast(DenseArrayBase, decl.attributes["scale"])), np.float32)
    if "axis" in decl.attributes:
        shape = [1] * rank
        shape[cast(IntegerAttr, decl.attributes["axis"]).value.data] = s.size
        s = s.reshape(shape)
    return s


STORE_CHUNK = 1 << 22  # elements rounded at a time into the HBM image


class Machine:
    """Memory contents of one run (numerics mode only)."""

    def __init__(self, pl: Placement):
        self.pl = pl
        self.sbuf = np.zeros((ncv2.PARTITIONS, ncv2.SBUF_PARTITION_BYTES), np.uint8)
        self.psum = np.zeros((ncv2.PARTITIONS, ncv2.PSUM_PARTITION_BYTES), np.uint8)
        self.sbuf_written = np.zeros(self.sbuf.shape, np.bool_)
        self.psum_written = np.zeros(self.psum.shape, np.bool_)
        self.hbm: dict[str, np.ndarray] = {}
        self.hbm_written: dict[str, np.ndarray] = {}
        self._views: dict[int, tuple] = {}
        # HBM tensors and their written masks (a byte per element), checked before allocation
        need = sum(
            prod(d.type.get_shape()) * (numpy_dtype(d.type.element_type).itemsize + 1)
            for d in pl.decls.values()
            if isinstance(d, HbmOp)
        )
        memory.check(need, "the simulator's HBM image", None)
        for name, decl in pl.decls.items():
            if isinstance(decl, HbmOp):
                t = decl.type  # a rank-0 tensor is held as one element (accessed @x[0])
                self.hbm[name] = np.zeros(hbm_shape(t), numpy_dtype(t.element_type))
                self.hbm_written[name] = np.zeros(hbm_shape(t), np.bool_)

    def view(self, ap: AccessAttr) -> tuple[np.ndarray, np.ndarray]:
        """(values, written-mask) views of an access. The mask of an on-chip access has one
        extra trailing axis: the bytes of each element."""
        # Access attributes are interned and a kernel repeats them (3 uses each on BERT), so
        # the views are built once per attribute; the entry keeps the attribute alive.
        hit = self._views.get(id(ap))
        if hit is None:
            hit = self._views[id(ap)] = (ap, *self._view(ap))
        return hit[1], hit[2]

    def _view(self, ap: AccessAttr) -> tuple[np.ndarray, np.ndarray]:
        decl = self.pl.decls[ap.memory.data]
        sl = tuple(slice(a, b, s) for a, b, s in ap.slices())
        if isinstance(decl, HbmOp):
            return self.hbm[ap.memory.data][sl], self.hbm_written[ap.memory.data][sl]
        mem, mask = (
            (self.sbuf, self.sbuf_written)
            if isinstance(decl, SbufOp)
            else (self.psum, self.psum_written)
        )
        t = decl.type
        shape = t.get_shape()
        dt = numpy_dtype(t.element_type)
        p0, p1 = decl.partitions()
        off = decl.offset.data
        nbytes = decl.free_bytes()
        raw = mem[p0:p1, off : off + nbytes]
        values = raw.view(dt).reshape(shape)[sl]
        written = mask[p0:p1, off : off + nbytes].reshape(*shape, dt.itemsize)[sl]
        return values, written

    def bind(self, inputs: Mapping[str, np.ndarray], weights, module) -> None:
        """Load inputs (by symbol name) and weights (from the module's nt.weights .npz), each
        rounded RNE to its declared dtype. `weights` is the IR file's directory or a mapping."""
        for name, decl in self.pl.decls.items():
            if not isinstance(decl, HbmOp):
                continue
            role = decl.role.data
            key_attr = decl.attributes.get("key", StringAttr(name))
            if not isinstance(key_attr, StringAttr):
                raise SimError(f"@{name}: key must be a string, found {key_attr}")
            key = key_attr.data
            if role == "input":
                if key not in inputs:
                    have = ", ".join(sorted(inputs)) or "none"
                    raise SimError(f"input '{key}' is missing from the inputs (keys: {have})")
                self._store(name, decl, np.asarray(inputs[key]), "input")
            elif role == "weight":
                if not hasattr(weights, "path"):
                    weights = open_weights(module, weights)
                if key not in weights:
                    raise SimError(f"weight '{key}' is not in {weights.path}")
                self._store(name, decl, weights[key], "weight")
            elif role == "const":
                self._store(
                    name,
                    decl,
                    # HbmOp's verifier checked a const's value is an array of its size
                    np.asarray(
                        array_values(cast(DenseArrayBase, decl.attributes["value"])), np.float32
                    ).reshape(decl.type.get_shape()),
                    "const",
                )

    def _store(self, name: str, decl: HbmOp, arr: np.ndarray, what: str) -> None:
        t = decl.type
        if tuple(arr.shape) != tuple(t.get_shape()):
            want = "x".join(map(str, t.get_shape()))
            got = "x".join(map(str, arr.shape)) or "scalar"
            raise SimError(f"{what} '{name}': expected shape {want}, found {got}")
        if arr.dtype.kind not in "fiub" and arr.dtype != numpy_dtype(t.element_type):
            raise SimError(
                f"{what} '{name}': cannot read dtype {arr.dtype} as {type_name(t.element_type)}"
            )
        sat = isinstance(t.element_type, Float8E4M3Type) and what == "weight"
        if "scale" in decl.attributes:  # a scaled fp8 weight: fp8(fp32(w) * scale)
            arr = round_to(arr, f32).astype(np.float32) * _scales(decl, arr.ndim)
        # Rounded a piece at a time straight into the HBM image (rounding is elementwise):
        # a whole-tensor rounding held a second copy of the tensor and its temporaries.
        dst, src = self.hbm[name].reshape(-1), arr.reshape(-1)
        for i in range(0, dst.size, STORE_CHUNK):
            dst[i : i + STORE_CHUNK] = round_to(
                src[i : i + STORE_CHUNK], t.element_type, saturate=sat
            )
        self.hbm_written[name][...] = True

    def outputs(self) -> dict[str, np.ndarray]:
        out = {}
        for name, decl in self.pl.decls.items():
            if isinstance(decl, HbmOp) and decl.role.data == "output":
                missing = int(
                    self.hbm_written[name].size - np.count_nonzero(self.hbm_written[name])
                )
                if missing:
                    raise SimError(
                        f"output '{name}': {missing} of {self.hbm_written[name].size} elements "
                        "were never written"
                    )
                # The HBM image itself, not a copy: a run's machine is not used after it
                out[name] = self.hbm[name].reshape(decl.type.get_shape())
        return out


def psum_bank_span(decl: PsumOp, ap: AccessAttr) -> tuple[int, int]:
    """(bank, partition mask) of a PSUM access that lies within one bank."""
    lo, _ = access_bytes(decl, ap)
    bank = lo // ncv2.PSUM_BANK_BYTES
    p0 = decl.partition.data + ap.slices()[0][0]
    p1 = decl.partition.data + ap.slices()[0][1]
    return bank, ((1 << (p1 - p0)) - 1) << p0


def psum_banks_touched(decl: PsumOp, ap: AccessAttr) -> list[tuple[int, int]]:
    """Every (bank, partition mask) an access to PSUM touches."""
    lo, hi = access_bytes(decl, ap)
    p0 = decl.partition.data + ap.slices()[0][0]
    p1 = decl.partition.data + ap.slices()[0][1]
    mask = ((1 << (p1 - p0)) - 1) << p0
    first, last = lo // ncv2.PSUM_BANK_BYTES, (hi - 1) // ncv2.PSUM_BANK_BYTES
    return [(b, mask) for b in range(first, last + 1)]

"""NeuronCore-v2 hardware constants: the ONE table, each value with its source.

The nisa verifier (memory sizes, operand limits) and the simulator (clocks, costs, latencies)
both read this table, so a limit the verifier enforces is the limit the simulator models.
Sources are AWS Neuron documentation topics ("NC2 §N", listed in docs/design.md §6) and tags:
[doc] AWS documentation, [doc-old] an older documentation version, [inf] an inference.
Nothing here imports the rest of the package (a leaf, like types.py).
"""

from __future__ import annotations

from typing import NamedTuple


class Constant(NamedTuple):
    value: float
    unit: str
    source: str


TABLE: dict[str, Constant] = {
    # Geometry -------------------------------------------------------------------------------
    "PARTITIONS": Constant(128, "partitions", "NC2 §2 on-chip memory, §6 [doc]"),
    "SBUF_PARTITION_BYTES": Constant(192 * 1024, "B/partition", "NC2 §2 SBUF 128 x 192 KiB [doc]"),
    "PSUM_PARTITION_BYTES": Constant(16 * 1024, "B/partition", "NC2 §2 PSUM 128 x 16 KiB [doc]"),
    "PSUM_BANKS": Constant(8, "banks", "NC2 §2 PSUM 8 banks x 2 KiB [doc]"),
    "PSUM_BANK_BYTES": Constant(2 * 1024, "B/partition", "NC2 §2 one bank = 512 fp32 [doc]"),
    "STATIONARY_FREE_MAX": Constant(128, "elements", "NC2 §2 TensorE operand limits [doc]"),
    "MOVING_FREE_MAX": Constant(512, "elements", "NC2 §2 TensorE operand limits [doc]"),
    "CONTRACTION_MAX": Constant(128, "partitions", "NC2 §2 TensorE operand limits [doc]"),
    "VECTOR_FREE_MAX_SBUF": Constant(65536, "elements", "NC2 §2 per-instruction free size [doc]"),
    "VECTOR_FREE_MAX_PSUM": Constant(4096, "elements", "NC2 §2 per-instruction free size [doc]"),
    "BN_STATS_FREE_MAX": Constant(512, "elements", "NC2 §2 bn_stats limit [doc]"),
    # Clocks ---------------------------------------------------------------------------------
    "CLOCK_TENSOR_GHZ": Constant(2.8, "GHz", "NC2 §2 engines, §6 clocks [doc]"),
    "CLOCK_VECTOR_GHZ": Constant(1.12, "GHz", "NC2 §2 engines, §6 clocks [doc]"),
    "CLOCK_SCALAR_GHZ": Constant(1.4, "GHz", "NC2 §2 engines, §6 clocks [doc]"),
    "CLOCK_GPSIMD_GHZ": Constant(1.4, "GHz", "NC2 §2 engines, §6 clocks [doc]"),
    "CLOCK_CORE_GHZ": Constant(1.4, "GHz", "NC2 §6 SBUF interface clock [doc]; used for 'cycles'"),
    # Instruction costs (engine cycles) ------------------------------------------------------
    "MIN_II": Constant(64, "cycles", "NC2 §3 minimum initiation interval ~64 [doc]"),
    "MATMUL_FP32_FACTOR": Constant(4, "x", "NC2 §3 nc_matmul cost 4x for fp32 [doc-old 2.22]"),
    "GPSIMD_START": Constant(150, "cycles", "NC2 §3 iota/affine_select 150 + N [doc-old 2.22]"),
    "ACT_READ_ACCUMULATOR": Constant(64, "cycles", "NC2 §3 activation_reduce + MIN_II [doc-old]"),
    "BN_AGGR_NUM": Constant(13, "", "NC2 §3 bn_aggr max(MIN_II, 13N/3) [doc-old 2.22]"),
    "BN_AGGR_DEN": Constant(3, "", "NC2 §3 bn_aggr max(MIN_II, 13N/3) [doc-old 2.22]"),
    # Latencies (not issue time: docs/design.md issue model) ----------------------------------
    "ACCESS_LATENCY": Constant(
        60, "cycles", "NC2 §2 static ~60-cycle SBUF/PSUM access start [doc]"
    ),
    "SEMAPHORE_LATENCY": Constant(
        100,
        "cycles",
        "NC2 §3 'static instruction overhead of 100 engine cycles' for instructions that depend "
        "on another's output [doc]; charged once per cross-engine signal [inf]",
    ),
    # DMA ------------------------------------------------------------------------------------
    "DMA_ENGINES": Constant(16, "engines", "NC2 §2 DMA: 16 per NC [doc]"),
    "DMA_ENGINE_BYTES_PER_NS": Constant(
        17.0, "B/ns", "NC2 §2 DMA numbers: 17 B/ns sustainable per engine on TRN1 [doc]"
    ),
    "DMA_FIXED_NS": Constant(1300.0, "ns", "NC2 §2 DMA fixed cost ~1.3 us per transfer [doc]"),
    "HBM_BYTES_PER_NS": Constant(
        410.0,
        "B/ns",
        "NC2 §2 820 GB/s per chip / 2 cores [inf]; never binds: 16 x 17 = 272 B/ns < 410",
    ),
    # Peaks ----------------------------------------------------------------------------------
    "TENSOR_PEAK_FLOPS": Constant(
        91.75e12, "FLOP/s", "NC2 §2 128x128 MAC x 2 x 2.8 GHz = 91.75 TFLOPS bf16 [inf, doc 92]"
    ),
}


def value(name: str) -> float:
    return TABLE[name].value


PARTITIONS = int(value("PARTITIONS"))
SBUF_PARTITION_BYTES = int(value("SBUF_PARTITION_BYTES"))
PSUM_PARTITION_BYTES = int(value("PSUM_PARTITION_BYTES"))
PSUM_BANKS = int(value("PSUM_BANKS"))
PSUM_BANK_BYTES = int(value("PSUM_BANK_BYTES"))
STATIONARY_FREE_MAX = int(value("STATIONARY_FREE_MAX"))
MOVING_FREE_MAX = int(value("MOVING_FREE_MAX"))
CONTRACTION_MAX = int(value("CONTRACTION_MAX"))
VECTOR_FREE_MAX_SBUF = int(value("VECTOR_FREE_MAX_SBUF"))
VECTOR_FREE_MAX_PSUM = int(value("VECTOR_FREE_MAX_PSUM"))
BN_STATS_FREE_MAX = int(value("BN_STATS_FREE_MAX"))
DMA_ENGINES = int(value("DMA_ENGINES"))

# Engine clocks in GHz (cycles per ns), by engine name as nisa spells it.
CLOCK_GHZ = {
    "tensor": value("CLOCK_TENSOR_GHZ"),
    "vector": value("CLOCK_VECTOR_GHZ"),
    "scalar": value("CLOCK_SCALAR_GHZ"),
    "gpsimd": value("CLOCK_GPSIMD_GHZ"),
}


def partition_start_ok(start: int, count: int) -> bool:
    """NC2 §2: >64 partitions start at 0; 33-64 at 0 or 64; <=32 at 0, 32, 64 or 96."""
    if count > 64:
        return start == 0
    if count > 32:
        return start in (0, 64)
    return start in (0, 32, 64, 96)


def partition_start_rule(count: int) -> str:
    if count > 64:
        return "must start at partition 0"
    if count > 32:
        return "must start at partition 0 or 64"
    return "must start at partition 0, 32, 64 or 96"

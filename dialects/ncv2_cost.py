"""The NeuronCore-v2 cost model: what an instruction costs in its engine's cycles, and a DMA
in ns (docs/nisa.md §4-5). The simulator charges it; the lowering plans with it.

Every number comes from the one constant table, neuron_opt.dialects.ncv2 (its sources are
there). Costs depend only on shapes, dtypes and memories, so the simulator computes each once
when it decodes a kernel, never in its loop.
"""

from __future__ import annotations

from neuron_opt.dialects import ncv2

MIN_II = int(ncv2.value("MIN_II"))  # cycles: a whole number
GPSIMD_START = ncv2.value("GPSIMD_START")
FP32_FACTOR = ncv2.value("MATMUL_FP32_FACTOR")
ACT_ACC = ncv2.value("ACT_READ_ACCUMULATOR")
ACCESS_LATENCY = ncv2.value("ACCESS_LATENCY")
SEMAPHORE_LATENCY = ncv2.value("SEMAPHORE_LATENCY")
DMA_FIXED_NS = ncv2.value("DMA_FIXED_NS")
DMA_BYTES_PER_NS = ncv2.value("DMA_ENGINE_BYTES_PER_NS")
BN_AGGR = ncv2.value("BN_AGGR_NUM") / ncv2.value("BN_AGGR_DEN")


def matmul(m: int, n: int, fp32: bool) -> float:
    """nc_matmul: max(min(64, M), N) TensorE cycles, x4 when an input is fp32."""
    c = max(min(64, m), n)
    return c * FP32_FACTOR if fp32 else c


def transpose(p: int, f: int, fp32: bool) -> float:
    """TensorE transpose (a matmul with the identity): max(P, min(64, F)), x4 for fp32."""
    c = max(p, min(64, f))
    return c * FP32_FACTOR if fp32 else c


def activation(n: int, accumulate: bool) -> float:
    return max(MIN_II, n) + (ACT_ACC if accumulate else 0)


def tensor_tensor(engine: str, n: int, fast: bool) -> float:
    """Vector: N when an input is in PSUM or on the bf16 add/sub/mul path, else 2N."""
    if engine == "gpsimd":
        return GPSIMD_START + 2 * n
    return max(MIN_II, n if fast else 2 * n)


def one_pass(n: int) -> float:
    """tensor_scalar, tensor_copy, bn_stats: max(MIN_II, N)."""
    return max(MIN_II, n)


def tensor_reduce(n: int, fast: bool) -> float:
    """N / 2 for bf16 in and out with add/max, else N."""
    return n / 2 if fast else n


def memset(n: int, fast: bool) -> float:
    """max(MIN_II, N/2) for a zero fill of bf16/fp16, else max(MIN_II, N)."""
    return max(MIN_II, n / 2 if fast else n)


def gpsimd(n: int) -> float:
    """iota, affine_select and GpSimd select: start-up + N."""
    return GPSIMD_START + n


def select(engine: str, n: int, fast: bool) -> float:
    if engine == "gpsimd":
        return GPSIMD_START + n
    return max(MIN_II, n if fast else 2 * n)


def bn_aggr(n: int) -> float:
    return max(MIN_II, BN_AGGR * n)


def dma_data_ns(nbytes: int) -> float:
    """The data phase of one transfer on one DMA engine."""
    return nbytes / DMA_BYTES_PER_NS


def dma_total_ns(nbytes: int) -> float:
    """A lone transfer: fixed cost + bytes / bandwidth."""
    return DMA_FIXED_NS + dma_data_ns(nbytes)

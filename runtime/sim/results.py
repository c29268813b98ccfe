"""What a simulation returns: outputs and the figures of docs/nisa.md §4."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neuron_opt.dialects import ncv2


@dataclass
class EngineStats:
    name: str  # track name: TensorE, VectorE, ..., "DMA q0"
    engine: str  # tensor, vector, scalar, gpsimd, dma
    instructions: int
    busy_ns: float
    utilization: float  # busy / makespan


@dataclass
class SimResult:
    outputs: dict[str, np.ndarray]
    makespan_ns: float
    engines: list[EngineStats]
    flops: int
    dma_bytes: int
    instructions: int
    numerics: bool
    trace: dict | None = None
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds: decode, simulate

    @property
    def makespan_us(self) -> float:
        return self.makespan_ns / 1000.0

    @property
    def cycles(self) -> int:
        """Makespan in 1.4 GHz core cycles."""
        return round(self.makespan_ns * ncv2.value("CLOCK_CORE_GHZ"))

    @property
    def hfu(self) -> float:
        """TensorE hardware FLOPs utilization: (FLOPs / 91.75 TFLOPS) / makespan."""
        if self.makespan_ns <= 0:
            return 0.0
        return (self.flops / ncv2.value("TENSOR_PEAK_FLOPS")) / (self.makespan_ns * 1e-9)

    def busy(self, engine: str) -> float:
        """Summed busy ns of an engine (or of all DMA queues for 'dma')."""
        return sum(e.busy_ns for e in self.engines if e.engine == engine)

    def utilization(self, engine: str) -> float:
        return self.busy(engine) / self.makespan_ns if self.makespan_ns else 0.0

    def metrics(self) -> dict:
        """JSON-ready figures (for --json)."""
        return {
            "makespan_ns": self.makespan_ns,
            "makespan_us": self.makespan_us,
            "cycles_1p4ghz": self.cycles,
            "instructions": self.instructions,
            "flops": self.flops,
            "tensor_hfu": self.hfu,
            "dma_bytes": self.dma_bytes,
            "numerics": self.numerics,
            "engines": [
                {
                    "track": e.name,
                    "engine": e.engine,
                    "instructions": e.instructions,
                    "busy_ns": e.busy_ns,
                    "utilization": e.utilization,
                }
                for e in self.engines
            ],
            "wall_seconds": self.timings,
        }

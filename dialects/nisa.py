"""The `nisa` instruction dialect: one NeuronCore-v2 kernel as per-engine instruction streams.

A kernel declares its memories and semaphores, then holds one in-order stream per engine
(tensor, vector, scalar, gpsimd) and per DMA queue:

    nisa.kernel @gemm {
      nisa.hbm input @a : tensor<256x128xbf16>
      nisa.sbuf @at partitions 0:128 offset 0 : tensor<128x256xbf16>
      nisa.psum @acc partitions 0:128 offset 0 : tensor<128x512xf32>
      nisa.semaphore @loaded
      nisa.dma_queue @q0 {
        nisa.dma_copy @at[0:128, 0:256], @a[0:128, 0:256] signal(@loaded)
      }
      nisa.engine @tensor {
        nisa.matmul @acc[0:128, 0:512], @at[0:128, 0:128], @b[0:128, 0:512] start stop wait(@loaded >= 1)
      }
    }

Instructions name memory by symbol with an access pattern `@buf[a:b, c:d:step, i]`; the
first index of an SBUF/PSUM buffer is the partition. Nothing is an SSA value: instructions
are ordered by their stream, and engines synchronise only through semaphores
(`wait(@s >= n)` before issue, `signal(@s)` = +1 when the instruction completes).
docs/nisa.md is the contract: operands, dtypes, semantics and cost of every instruction.

Layers: dialects/nisa_ops.py defines the attributes and operations; dialects/nisa_placement.py,
the placement rules, reads them; this module sets those rules into the kernel's and the
instructions' verifiers and exports the classes, so `nisa.SbufOp` is nisa_ops.SbufOp.
"""

from neuron_opt.dialects import nisa_placement
from neuron_opt.dialects.nisa_ops import *  # noqa: F403  (the dialect's classes, as nisa.X)
from neuron_opt.dialects.nisa_ops import PLACEMENT_RULES

PLACEMENT_RULES.verify_kernel = nisa_placement.verify_kernel
PLACEMENT_RULES.verify_instruction = nisa_placement.verify_instruction

"""A hand-written, double-buffered GEMM kernel in nisa: C[M, N] = A[M, K] @ B[K, N].

    python examples/kernels/gemm.py 2048 2048 2048 --dtype bf16 -o gemm.mlir

HBM takes A already transposed (`at`, [K, M], the layout NKI kernels use) so that plain DMAs
land K on the partitions. A and B stay resident in SBUF (each loaded once, in the order the
TensorE first needs them, over 16 DMA queues); TensorE walks [128 x 128] output tiles in
growing squares, accumulating the K tiles in PSUM (4 tiles per bank, all 8 banks in
rotation); VectorE and ScalarE take turns evicting a finished tile into one of 8 SBUF staging
tiles (casting to the output dtype), and 16 store queues each write 8 of its partitions
back (the queues share the 16 DMA engines with the loads). Semaphores carry every dependency: loads -> matmul, matmul -> evict,
evict -> store, and the reverse ones that let a bank or a staging tile be reused.
"""

from __future__ import annotations

import argparse
import sys

TILE_K = 128
TILE_M = 128
TILE_N = 128  # matmul cost is max(min(64, M), N): any N >= 64 runs at full rate, and a
# narrow tile lets TensorE start after 2 x 32 KiB of loads instead of a whole 512-wide block
PSUM_SLOTS = 32  # [128, 128] f32 tiles: 4 per 2 KiB bank, all 8 banks
STAGES = 8  # SBUF staging tiles between eviction and store
LOAD_QUEUES = 16
LOAD_PARTS = 2  # DMAs per loaded tile
STORE_QUEUES = 16
SBUF_BYTES = 192 * 1024
DT_BYTES = {"bf16": 2, "f16": 2, "f32": 4, "tf32": 4}


def shell_order(mt: int, nt: int) -> list[tuple[int, int]]:
    """Output tiles (i, j) by growing squares max(i, j) = 0, 1, ...: each new shell needs one
    new A strip and one new B block while its compute grows, so loads stay ahead after a
    short fill (a row-by-row order would need all of B before the second row)."""
    order = []
    for s in range(max(mt, nt)):
        for i in range(min(s, mt)):
            if s < nt:
                order.append((i, s))
        if s < mt:
            for j in range(min(s + 1, nt)):
                order.append((s, j))
    return order


def gemm_kernel(
    m: int,
    k: int,
    n: int,
    dtype: str = "bf16",
    out_dtype: str = "bf16",
    b_role: str = "input",
    name: str = "gemm",
    weights: str | None = None,
    tile_n: int = TILE_N,
) -> str:
    """The kernel as nisa IR text. m, k multiples of 128; n a multiple of tile_n."""
    if m % TILE_M or k % TILE_K or n % tile_n or not 64 <= tile_n <= 512 or 512 % tile_n:
        raise ValueError("M and K must be multiples of 128, N of the tile width (64..512)")
    kt, mt, nt = k // TILE_K, m // TILE_M, n // tile_n
    eb, ob = DT_BYTES[dtype], DT_BYTES[out_dtype]
    a_bytes = kt * m * eb
    b_bytes = kt * n * eb
    o_bytes = STAGES * tile_n * ob
    if a_bytes + b_bytes + o_bytes > SBUF_BYTES:
        raise ValueError(
            f"A and B do not fit SBUF resident: {a_bytes + b_bytes + o_bytes} B per partition"
        )
    per_bank = 512 // tile_n
    slots = 8 * per_bank
    L: list[str] = []
    emit = L.append
    attrs = f' attributes {{nt.weights = "{weights}"}}' if weights else ""
    emit(f"builtin.module{attrs} {{")
    emit(f"  nisa.kernel @{name} {{")
    emit(f"    nisa.hbm input @at : tensor<{k}x{m}x{dtype}>")
    emit(f"    nisa.hbm {b_role} @b : tensor<{k}x{n}x{dtype}>")
    emit(f"    nisa.hbm output @c : tensor<{m}x{n}x{out_dtype}>")
    emit(f"    nisa.sbuf @a_sb partitions 0:128 offset 0 : tensor<128x{kt}x{m}x{dtype}>")
    emit(f"    nisa.sbuf @b_sb partitions 0:128 offset {a_bytes} : tensor<128x{kt}x{n}x{dtype}>")
    emit(
        f"    nisa.sbuf @o_sb partitions 0:128 offset {a_bytes + b_bytes} : "
        f"tensor<128x{STAGES}x{tile_n}x{out_dtype}>"
    )
    emit(f"    nisa.psum @ps partitions 0:128 offset 0 : tensor<128x{slots}x{tile_n}xf32>")
    sems = ["mm", "ev_vector", "ev_scalar"]
    sems += [f"ld{q}" for q in range(LOAD_QUEUES)] + [f"st{q}" for q in range(STORE_QUEUES)]
    for s in sems:
        emit(f"    nisa.semaphore @{s}")

    order = shell_order(mt, nt)
    # Loads in order of first use; each remembers (queue, running count) for the waits.
    loads: list[list[str]] = [[] for _ in range(LOAD_QUEUES)]
    where_a: dict[tuple[int, int], list[tuple[int, int]]] = {}
    where_b: dict[tuple[int, int], list[tuple[int, int]]] = {}
    rr = 0

    def load(dst: str, dst_cols: str, src: str, row0: int, src_cols: str) -> list[tuple[int, int]]:
        """One [128, w] tile as LOAD_PARTS DMAs on consecutive queues: a tile arrives in
        1/LOAD_PARTS of the time one DMA engine would take (the first matmul waits less)."""
        nonlocal rr
        rows = TILE_K // LOAD_PARTS
        out = []
        for part in range(LOAD_PARTS):
            q = rr % LOAD_QUEUES
            rr += 1
            r0 = part * rows
            loads[q].append(
                f"nisa.dma_copy @{dst}[{r0}:{r0 + rows}, {dst_cols}], "
                f"@{src}[{row0 + r0}:{row0 + r0 + rows}, {src_cols}] signal(@ld{q})"
            )
            out.append((q, len(loads[q])))
        return out

    for i, j in order:
        for kk in range(kt):
            if (kk, i) not in where_a:
                cols = f"{i * TILE_M}:{(i + 1) * TILE_M}"
                where_a[kk, i] = load("a_sb", f"{kk}, {cols}", "at", kk * TILE_K, cols)
            if (kk, j) not in where_b:
                cols = f"{j * tile_n}:{(j + 1) * tile_n}"
                where_b[kk, j] = load("b_sb", f"{kk}, {cols}", "b", kk * TILE_K, cols)

    tensor: list[str] = []
    evict = {"vector": [], "scalar": []}
    stores: list[list[str]] = [[] for _ in range(STORE_QUEUES)]
    waited = [0] * LOAD_QUEUES  # TensorE has already waited for this many loads per queue
    rows = TILE_M // STORE_QUEUES
    for t, (i, j) in enumerate(order):
        slot, stage = t % slots, t % STAGES
        for kk in range(kt):
            waits = []
            for q, c in where_a[kk, i] + where_b[kk, j]:
                if c > waited[q]:
                    waited[q] = c
                    waits.append(f"@ld{q} >= {c}")
            if kk == 0 and t >= slots:  # the slot's previous tile must be evicted
                prev = t - slots
                eng = "vector" if prev % 2 == 0 else "scalar"
                waits.append(f"@ev_{eng} >= {prev // 2 + 1}")
            flags = (" start" if kk == 0 else "") + (" stop" if kk == kt - 1 else "")
            sync = f" wait({', '.join(waits)})" if waits else ""
            sync += " signal(@mm)" if kk == kt - 1 else ""
            tensor.append(
                f"nisa.matmul @ps[0:128, {slot}, 0:{tile_n}], "
                f"@a_sb[0:128, {kk}, {i * TILE_M}:{(i + 1) * TILE_M}], "
                f"@b_sb[0:128, {kk}, {j * tile_n}:{(j + 1) * tile_n}]{flags}{sync}"
            )
        eng = "vector" if t % 2 == 0 else "scalar"
        waits = [f"@mm >= {t + 1}"]
        if t >= STAGES:  # the staging tile's previous store must be done
            waits += [f"@st{q} >= {t - STAGES + 1}" for q in range(STORE_QUEUES)]
        dst = f"@o_sb[0:128, {stage}, 0:{tile_n}]"
        src = f"@ps[0:128, {slot}, 0:{tile_n}]"
        sync = f" wait({', '.join(waits)}) signal(@ev_{eng})"
        if eng == "vector":
            evict[eng].append(f"nisa.tensor_copy {dst}, {src}{sync}")
        else:
            evict[eng].append(f"nisa.activation {dst}, {src} func copy{sync}")
        for q in range(STORE_QUEUES):
            r0 = q * rows
            stores[q].append(
                f"nisa.dma_copy @c[{i * TILE_M + r0}:{i * TILE_M + r0 + rows}, "
                f"{j * tile_n}:{(j + 1) * tile_n}], @o_sb[{r0}:{r0 + rows}, {stage}, 0:{tile_n}] "
                f"wait(@ev_{eng} >= {t // 2 + 1}) signal(@st{q})"
            )

    def stream(head: str, body: list[str]) -> None:
        if not body:
            return
        emit(f"    {head} {{")
        for line in body:
            emit(f"      {line}")
        emit("    }")

    for q in range(LOAD_QUEUES):
        stream(f"nisa.dma_queue @load{q}", loads[q])
    stream("nisa.engine @tensor", tensor)
    stream("nisa.engine @vector", evict["vector"])
    stream("nisa.engine @scalar", evict["scalar"])
    for q in range(STORE_QUEUES):
        stream(f"nisa.dma_queue @store{q}", stores[q])
    emit("  }")
    emit("}")
    return "\n".join(L) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("m", type=int)
    p.add_argument("k", type=int)
    p.add_argument("n", type=int)
    p.add_argument("--dtype", default="bf16", choices=sorted(DT_BYTES))
    p.add_argument("--out-dtype", default="bf16", choices=sorted(DT_BYTES))
    p.add_argument("--tile-n", type=int, default=TILE_N)
    p.add_argument("-o", "--output", default="-")
    a = p.parse_args(argv)
    try:
        text = gemm_kernel(a.m, a.k, a.n, a.dtype, a.out_dtype, tile_n=a.tile_n)
    except ValueError as e:
        print(f"gemm.py: error: {e}", file=sys.stderr)
        return 1
    if a.output == "-":
        sys.stdout.write(text)
    else:
        with open(a.output, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Helpers shared by the simulator tests: build small nisa kernels from text and run them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from neuron_opt.cli.common import make_context
from neuron_opt.dialects.parse import parse_module, verify_module
from neuron_opt.runtime.sim import simulate

ROOT = Path(__file__).resolve().parents[2]


def module(body: str, verify: bool = True, attrs: str = ""):
    """`body` is the inside of a nisa.kernel (declarations and streams)."""
    text = f"builtin.module{attrs} {{\n  nisa.kernel @k {{\n{body}\n  }}\n}}\n"
    m = parse_module(make_context(), text, "test.mlir")
    if verify:
        verify_module(m)
    return m


def run(body: str, inputs=None, numerics=True, verify=True, **kw):
    return simulate(module(body, verify), inputs or {}, numerics=numerics, **kw)


def _whole(t: str) -> str:
    """The access of a whole tensor of type text `t`: `8x16xi32` -> `[0:8, 0:16]`."""
    return "[" + ", ".join(f"0:{d}" for d in t.split("x")[:-1]) + "]"


def load_run_store(
    inputs: dict[str, str],
    output: str,
    streams: str,
    tiles: dict[str, str] | None = None,
    store: str = "ys",
    store_wait: str = "@done >= 1",
    extra: str = "",
) -> str:
    """A kernel body that loads each HBM input @n (of type text `inputs[n]`, as `8x16xi32`)
    whole into SBUF tile @ns on queue @q, each load signalling @in; runs `streams` (which wait
    on @in and signal @done); and stores tile @`store` into the HBM output @y (type `output`)
    once `store_wait` holds. Tiles are 256 bytes apart on their partitions, each of its input's
    type (@ys: the output's) unless `tiles` says otherwise; `extra` declares more."""
    tiles = {f"{n}s": t for n, t in inputs.items()} | {"ys": output} | (tiles or {})
    lines = [f"nisa.hbm input @{n} : tensor<{t}>" for n, t in inputs.items()]
    lines.append(f"nisa.hbm output @y : tensor<{output}>")
    lines += [
        f"nisa.sbuf @{n} partitions 0:{t.split('x')[0]} offset {256 * i} : tensor<{t}>"
        for i, (n, t) in enumerate(tiles.items())
    ]
    lines += [extra, "nisa.semaphore @in", "nisa.semaphore @done", "nisa.dma_queue @q {"]
    lines += [
        f"  nisa.dma_copy @{n}s{_whole(t)}, @{n}{_whole(t)} signal(@in)" for n, t in inputs.items()
    ]
    lines += [
        f"  nisa.dma_copy @y{_whole(output)}, @{store}{_whole(output)} wait({store_wait})",
        "}",
        streams,
    ]
    return "\n".join(lines)


def gemm_module():
    """examples/kernels/gemm.py (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gemm_example", ROOT / "examples/kernels/gemm.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

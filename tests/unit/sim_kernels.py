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


def gemm_module():
    """examples/kernels/gemm.py (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gemm_example", ROOT / "examples/kernels/gemm.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

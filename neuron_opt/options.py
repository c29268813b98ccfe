"""The auto-cast option vocabulary, spelled once: modes, types, the `matmul` alias, defaults.

neuronx-cc's `--auto-cast` / `--auto-cast-type` words as the pass options
(`auto-cast{mode=M type=T}`), both drivers' flags, sweep's option list and the tables' labels
use them. A leaf (no imports from the package): dialects, passes and the CLI all read it.
"""

from __future__ import annotations

from typing import Literal, get_args

# As users may write them; `matmul` is accepted for `matmult` and printed as `matmult`.
ModeOption = Literal["none", "matmult", "matmul", "all"]
CastTypeOption = Literal["bf16", "fp16", "tf32", "fp8_e4m3"]

MODE_ALIASES = {"matmul": "matmult"}
MODE_SPELLINGS: tuple[str, ...] = get_args(ModeOption)
MODES: tuple[str, ...] = tuple(m for m in MODE_SPELLINGS if m not in MODE_ALIASES)
CASTING_MODES: tuple[str, ...] = tuple(m for m in MODES if m != "none")
CAST_TYPES: tuple[str, ...] = get_args(CastTypeOption)

# neuronx-cc's mixed-precision guide; its releases from 2.27 on default to `none`.
DEFAULT_MODE: ModeOption = "matmult"
DEFAULT_TYPE: CastTypeOption = "bf16"

# Every option a sweep compares: `none` once, then each type under each casting mode.
SWEEP_OPTIONS: tuple[tuple[str, str], ...] = (
    ("none", DEFAULT_TYPE),
    *((m, t) for t in CAST_TYPES for m in CASTING_MODES),
)


def normalize_mode(mode: str) -> str:
    """The mode as printed: aliases resolved (`matmul` -> `matmult`)."""
    return MODE_ALIASES.get(mode, mode)


def option_label(mode: str, cast_type: str, cast_io: bool = False) -> str:
    """`none`, or `MODE-TYPE[+cast-io]`, as tables and JSON name an option (`mode` normalized)."""
    if mode == "none":
        return "none"
    return f"{mode}-{cast_type}" + ("+cast-io" if cast_io else "")

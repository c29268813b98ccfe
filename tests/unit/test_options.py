"""The auto-cast vocabulary (neuron_opt/options.py) is what every reader of it accepts: the pass
options, both drivers' flags, the element-type table, and the `matmul` alias resolved once."""

import argparse
import typing

import pytest

from neuron_opt.cli.neuron_opt import arg_parser
from neuron_opt.cli.precision import add_cast_options
from neuron_opt.dialects.types import AUTO_CAST_TYPES, bf16, f8E4M3, f16, tf32
from neuron_opt.options import (
    CAST_TYPES,
    CASTING_MODES,
    MODE_SPELLINGS,
    MODES,
    SWEEP_OPTIONS,
    normalize_mode,
    option_label,
)
from neuron_opt.passes.auto_cast import AutoCastPass


def test_the_vocabulary():
    assert MODE_SPELLINGS == ("none", "matmult", "matmul", "all")
    assert MODES == ("none", "matmult", "all")
    assert CASTING_MODES == ("matmult", "all")
    assert CAST_TYPES == ("bf16", "fp16", "tf32", "fp8_e4m3")
    assert AUTO_CAST_TYPES == {"bf16": bf16, "fp16": f16, "tf32": tf32, "fp8_e4m3": f8E4M3}
    assert len(SWEEP_OPTIONS) == 1 + len(CASTING_MODES) * len(CAST_TYPES)
    assert SWEEP_OPTIONS[0][0] == "none"


def test_the_pass_options_are_the_vocabulary():
    hints = typing.get_type_hints(AutoCastPass)
    assert typing.get_args(hints["mode"]) == MODE_SPELLINGS
    assert typing.get_args(hints["type"]) == CAST_TYPES


@pytest.mark.parametrize("spelling", MODE_SPELLINGS)
def test_matmul_is_read_as_matmult_everywhere(spelling):
    mode = "matmult" if spelling == "matmul" else spelling
    assert normalize_mode(spelling) == mode
    assert AutoCastPass(mode=spelling).mode == mode
    assert arg_parser().parse_args(["x.mlir", f"--auto-cast={spelling}"]).auto_cast == mode
    p = argparse.ArgumentParser()
    add_cast_options(p)
    assert p.parse_args(["--auto-cast", spelling]).auto_cast == mode


def test_labels():
    assert option_label("none", "fp16") == "none"
    assert option_label("all", "fp8_e4m3", cast_io=True) == "all-fp8_e4m3+cast-io"
    assert option_label("matmult", "bf16") == "matmult-bf16"

"""neuron-opt's contract for bad input: one located line on stderr, exit 1, no traceback, no
module dump, and no partial -o file."""

import subprocess
import sys

import pytest

GOOD = """func.func @main(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>) -> tensor<4x16xf32> {
  %m = nt.matmul %a, %b : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
  func.return %m : tensor<4x16xf32>
}
"""

CASES = {
    "malformed": (GOOD.replace("-> tensor<4x16xf32> {", "-> tensor<4x16xf32>"), [], "bad.mlir:"),
    "truncated": (GOOD[:60], [], "bad.mlir:1:"),
    "unknown_op": (GOOD.replace("nt.matmul", "nt.matmull"), [], "bad.mlir:2:"),
    "shape": (
        GOOD.replace("tensor<4x16xf32>", "tensor<4x15xf32>"),
        [],
        "bad.mlir:2:3: error: expected result shape 4x16, found 4x15",
    ),
    "use_before_def": (
        GOOD.replace("%m = nt.matmul %a", "%m = nt.matmul %z").replace(
            "func.return %m", "%z = nt.exp %a : tensor<4x8xf32>\n  func.return %m"
        ),
        [],
        "bad.mlir:2:3: error:",
    ),
    "bad_option": (
        GOOD,
        ["-p", "auto-cast{type=int4}"],
        "neuron-opt: error: option type of pass auto-cast",
    ),
    "bad_pass": (GOOD, ["-p", "cse-everything"], "neuron-opt: error: unknown pass"),
    "empty": ("", [], "bad.mlir:1:1: error: empty input"),
    "binary": ("\x00\x01ELF", [], "bad.mlir: error: not a text file"),
    "huge_dim": (GOOD.replace("4x8", "99999999999999999999x8"), [], "bad.mlir:"),
    "negative_dim": (GOOD.replace("4x8", "-4x8"), [], "bad.mlir:1:"),
}


def _run(args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "neuron_opt.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_located_line(name, tmp_path):
    text, extra, expected = CASES[name]
    (tmp_path / "bad.mlir").write_text(text)
    out = tmp_path / "out.mlir"
    res = _run(["bad.mlir", "-o", str(out), *extra], tmp_path)
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert expected in lines[0]
    assert "Traceback" not in res.stderr and res.stdout == ""
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.mlir"]  # no temp file left behind


def test_good_input_writes_output(tmp_path):
    (tmp_path / "ok.mlir").write_text(GOOD)
    res = _run(["ok.mlir", "--auto-cast=matmult", "-o", "out.mlir"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "acc = f32" in (tmp_path / "out.mlir").read_text()

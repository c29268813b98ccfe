"""The nisa syntax is fixed: every nisa line written anywhere in the repository (docs, README,
tests, examples, FileCheck patterns) prints back byte for byte, whole kernels print as a fixed
point, and the parser's and verifier's messages stay as documented."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from testlib import EXAMPLES
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

from neuron_opt.cli.common import make_context
from neuron_opt.diagnostics import CompileError
from neuron_opt.dialects import nisa
from neuron_opt.dialects.parse import parse_module

ROOT = Path(__file__).resolve().parents[2]
# Malformed on purpose (it pins where syntax errors are reported): not a text that prints back.
MALFORMED = ROOT / "tests/filecheck/dialects/nisa/invalid_syntax.mlir"
TEXTS = [
    *sorted(ROOT.glob("docs/*.md")),
    ROOT / "README.md",
    *sorted(p for p in ROOT.glob("tests/**/*.mlir") if p != MALFORMED),
    *sorted(ROOT.glob("examples/**/*.mlir")),
]
# One nisa op on a line (ops with a region excepted), possibly as a FileCheck pattern and
# followed by a comment.
_LINE = re.compile(
    r"^(?://\s*[A-Z-]+:\s*)?(nisa\.(?!kernel\b|engine\b|dma_queue\b)\w+ .*?)\s*(?://.*)?$"
)
_FILECHECK_VAR = re.compile(r"\[\[(\w+)(?::.*?)?\]\]")  # [[X:regex]] and [[X]] -> X


def _print(op) -> str:
    out = io.StringIO()
    Printer(stream=out).print_op(op)
    return out.getvalue()


def _nisa_lines() -> list[tuple[str, str]]:
    lines = []
    for path in TEXTS:
        for no, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            m = _LINE.match(line.strip())
            # Patterns with a regex, elisions and patterns that stop mid-op match a part only.
            if (
                m is None
                or "{{" in line
                or "..." in line
                or re.search(r" (wait|signal)$", m.group(1))
            ):
                continue
            lines.append((f"{path.relative_to(ROOT)}:{no}", _FILECHECK_VAR.sub(r"\1", m.group(1))))
    return lines


def test_every_nisa_line_in_the_repository_prints_back_byte_for_byte():
    ctx = make_context()
    lines = _nisa_lines()
    assert len(lines) > 150  # docs, ops.mlir, invalid.mlir and the lowering tests all count
    wrong = []
    for where, text in lines:
        printed = _print(Parser(ctx, text).parse_op())
        # An attribute dictionary is xDSL's to print (array<f32: 2.0> as 2.000000e+00): such a
        # line must reach a fixed point after one print instead.
        want = _print(Parser(ctx, printed).parse_op()) if "{" in text else text
        if printed != want:
            wrong.append(f"{where}\n  wrote   {text}\n  printed {printed}")
    assert not wrong, "\n".join(wrong)


def _kernel_texts() -> list[tuple[str, str]]:
    out = []
    for path in TEXTS:
        if path.suffix == ".mlir" and "nisa.kernel" in (text := path.read_text(errors="replace")):
            # Each part with a kernel, except generic-form ops the verifier refuses (invalid
            # .mlir): the custom syntax has no spelling for them.
            out += [
                (f"{path.relative_to(ROOT)}#{i}", part)
                for i, part in enumerate(text.split("// -----"))
                if "nisa.kernel" in part and not ('"nisa.' in part and "error:" in part)
            ]
    gemm = EXAMPLES / "kernels" / "gemm.py"
    namespace: dict = {"__name__": "gemm"}
    exec(compile(gemm.read_text(), str(gemm), "exec"), namespace)
    out.append(("gemm 256x256x512", namespace["gemm_kernel"](256, 256, 512, "bf16", "f32")))
    return out


@pytest.mark.parametrize("where,text", _kernel_texts(), ids=lambda v: v if "\n" not in v else "")
def test_kernels_print_as_a_fixed_point(where, text):
    ctx = make_context()
    once = _print(parse_module(ctx, text, where))
    assert _print(parse_module(ctx, once, where)) == once


# What each mistake reads as, where: a bad value or a repeated keyword at its own token, a
# missing property at the op's name, a value missing at the end of the line just after the
# line's last token (never at the next line's first).
BAD_SYNTAX = [
    (
        "nisa.tensor_tensor @d[0:1, 0:1], @a[0:1, 0:1], @b[0:1, 0:1] op plus",
        "3:68: error: nisa.tensor_tensor: 'op' expects one of add, sub, mul, div, mod, fmod, max, min, pow, eq, "
        "ne, ge, gt, le, lt, and, or, xor",
    ),
    (
        "nisa.tensor_reduce @d[0:1, 0:1], @a[0:1, 0:1] op mul",
        "3:54: error: nisa.tensor_reduce: 'op' expects one of add, max, min",
    ),
    (
        "nisa.tensor_tensor @d[0:1, 0:1], @a[0:1, 0:1], @b[0:1, 0:1]",
        "3:5: error: nisa.tensor_tensor needs 'op'",
    ),
    (
        "nisa.memset @d[0:1, 0:1] value 1.0 value 2.0",
        "3:40: error: nisa.memset: 'value' given twice",
    ),
    (
        "nisa.tensor_copy @d[0:1, 0:1], 3.0",
        "3:36: error: nisa.tensor_copy: 'src' expects an access pattern @buf[...]",
    ),
    ("nisa.memset @d[0:1, 0:1] value none", "3:36: error: nisa.memset: 'value' expects a number"),
    ("nisa.iota @d[0:1, 0:1] base 1.5", "3:33: error: nisa.iota: 'base' expects an integer"),
    (
        "nisa.activation @d[0:1, 0:1], @s[0:1, 0:1] func cube",
        "3:53: error: nisa.activation: 'func' expects one of copy, exp, log, tanh, sigmoid, erf, gelu, gelu_tanh, "
        "silu, relu, rsqrt, sqrt, reciprocal, square, abs, neg",
    ),
    (
        "nisa.tensor_copy @d[0:1, 0:1] @s[0:1, 0:1]",
        "3:35: error: Expected ',' before operand 'src' of nisa.tensor_copy",
    ),
    (
        "nisa.tensor_tensor @d[0:1, 0:1], @a[0:1, 0:1], @b[0:1, 0:1] op",
        "3:67: error: nisa.tensor_tensor: 'op' expects one of add, sub, mul, div, mod, fmod, max, "
        "min, pow, eq, ne, ge, gt, le, lt, and, or, xor",
    ),
    ("nisa.iota @d[0:1, 0:1] base", "3:32: error: nisa.iota: 'base' expects an integer"),
    (
        "nisa.tensor_copy @d[0:1, 0:1]",
        "3:34: error: Expected ',' before operand 'src' of nisa.tensor_copy",
    ),
    (
        "nisa.tensor_copy @d[0:1, 0:1],",
        "3:35: error: nisa.tensor_copy: 'src' expects an access pattern @buf[...]",
    ),
]


@pytest.mark.parametrize("text,message", BAD_SYNTAX)
def test_syntax_errors_say_what_was_expected(text, message):
    with pytest.raises(CompileError) as e:
        parse_module(
            make_context(),
            f"nisa.kernel @k {{\n  nisa.engine @vector {{\n    {text}\n  }}\n}}\n",
            "t.mlir",
        )
    assert str(e.value) == "t.mlir:" + message


def test_verifier_and_builder_name_the_allowed_words():
    full = [(0, 1), (0, 1)]
    bad_word = nisa.TensorTensorOp.make(("d", full), ("a", full), ("b", full), op="plus")
    with pytest.raises(
        VerifyException,
        match=r"nisa\.tensor_tensor: 'op' must be one of add, sub, mul, div, "
        r"mod, fmod, max, min, pow, eq, ne, ge, gt, le, lt, and, or, xor\n",
    ):
        bad_word.verify()
    with pytest.raises(TypeError, match=r"nisa\.memset: unknown keywords \['fill'\]"):
        nisa.MemsetOp.make(("d", full), fill=1.0)

"""The README's console examples print what the README shows, as doctests do for docstrings.

Every ```console block holds commands (lines starting with `$ `), each followed by its expected
output: stdout and stderr as one stream, run from the repository root. A line `...` stands for
any number of lines (an explicit elision); every other line must match exactly.
"""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent
ELISION = "..."


def console_examples(text: str) -> list[tuple[str, list[str]]]:
    examples: list[tuple[str, list[str]]] = []
    for block in re.findall(r"^```console\n(.*?)^```$", text, re.M | re.S):
        lines = block.splitlines()
        assert lines and lines[0].startswith("$ "), f"a console block without a command:\n{block}"
        for line in lines:
            if line.startswith("$ "):
                examples.append((line[2:], []))
            else:
                examples[-1][1].append(line)
    return examples


def matches(expected: list[str], actual: list[str]) -> bool:
    pattern = "".join(
        r"(?:[^\n]*\n)*?" if line == ELISION else re.escape(line) + r"\n" for line in expected
    )
    return re.fullmatch(pattern, "".join(line + "\n" for line in actual)) is not None


EXAMPLES = console_examples(README)


def test_the_readme_has_console_examples():
    assert len(EXAMPLES) >= 3


def test_elision_matches_only_what_it_stands_for():
    assert matches(["a", ELISION, "d"], ["a", "b", "c", "d"])
    assert matches(["a", ELISION], ["a"])
    assert not matches(["a", "d"], ["a", "b", "d"])
    assert not matches(["a", ELISION, "d"], ["a", "b", "c"])


@pytest.mark.parametrize("command, expected", EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_console_example(command: str, expected: list[str]):
    argv = shlex.split(command)
    tool = BIN / argv[0]
    assert tool.is_file(), f"{argv[0]} is not installed beside {sys.executable}"
    run = subprocess.run(
        [str(tool), *argv[1:]],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    actual = run.stdout.rstrip("\n").splitlines()
    assert matches(expected, actual), (
        f"$ {command}\nREADME shows:\n"
        + "\n".join(expected)
        + "\nbut it prints:\n"
        + "\n".join(actual)
    )

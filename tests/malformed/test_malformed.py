"""Walk the malformed-input corpus (manifest.toml): every bad input gets exactly one located
error line on stderr, exit code 1, no traceback, no hang, and leaves no output file behind.
Every case runs under an address-space limit (`ulimit -v`), so an input that makes a tool
allocate without checking its size fails the test instead of passing on a large machine."""

from __future__ import annotations

import importlib.util
import re
import resource
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
CASES = tomllib.loads((HERE / "manifest.toml").read_text())["case"]
BIN = Path(sys.executable).parent
TIMEOUT = 60  # seconds; a hang is a failure, not a slow pass
MEMORY_CAP = 2 << 30  # bytes of address space (a run of the good model needs about 1.2 GiB)


def cap_memory() -> None:
    """In the child: `ulimit -v` (the tools' default budget becomes half of it)."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


# The location form of each kind of problem (docs/design.md, "Bad input").
LOCATION = {
    "ir": r"^(\S+\.mlir|<stdin>):\d+:\d+: error: ",
    "option": r"^neuron-(opt|cc): error: ",
    "onnx": r"^\S+\.onnx: node \S+ \(\w+\): error: ",
}


def _subst(s: str, tmp: Path) -> str:
    return s.replace("{tmp}", str(tmp))


def test_manifest_and_corpus_agree():
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names)), "duplicate case names"
    for c in CASES:
        assert c["tool"] in ("neuron-opt", "neuron-cc") and c["kind"] in (*LOCATION, "file"), c[
            "name"
        ]
        assert c["expect"].strip(), c["name"]
        assert c["kind"] != "file" or "path" in c, c["name"]
    # Every corpus file is used by some case (no dead files), and every file a case names exists.
    named = [a for c in CASES for a in c["args"] + [c.get("stdin", "")] + c.get("uses", [])]
    used = {
        (CORPUS / a).resolve().name
        for a in named
        if (CORPUS / a).is_file() and (CORPUS / a).resolve().parent == CORPUS
    }
    assert used == {p.name for p in CORPUS.iterdir()}
    for c in CASES:
        if "stdin" in c:
            assert (CORPUS / c["stdin"]).is_file(), c["name"]


def test_binary_members_are_what_make_corpus_writes(tmp_path):
    spec = importlib.util.spec_from_file_location("make_corpus", HERE / "make_corpus.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main(tmp_path)
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written, "make_corpus.py wrote nothing"
    for name in written:
        assert (CORPUS / name).read_bytes() == (tmp_path / name).read_bytes(), name


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_one_located_error(case, tmp_path):
    before = sorted(p.name for p in CORPUS.iterdir())
    args = [_subst(a, tmp_path) for a in case["args"]]
    stdin = (CORPUS / case["stdin"]).open("rb") if "stdin" in case else subprocess.DEVNULL
    try:
        res = subprocess.run(
            [BIN / case["tool"], *args],
            cwd=CORPUS,
            stdin=stdin,
            capture_output=True,
            timeout=TIMEOUT,
            preexec_fn=cap_memory,
        )
    finally:
        if stdin is not subprocess.DEVNULL:
            stdin.close()
    err = res.stderr.decode("utf-8", "replace")
    out = res.stdout.decode("utf-8", "replace")
    assert "Traceback" not in err and "Traceback" not in out, err
    assert res.returncode == 1, (res.returncode, err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    expect = _subst(case["expect"], tmp_path)
    assert expect in line, line
    if case["kind"] == "file":
        assert line.startswith(_subst(case["path"], tmp_path) + ": error: "), line
    else:
        assert re.match(LOCATION[case["kind"]], line), line
    # An IR error prints no module; nothing is written anywhere.
    assert "builtin.module" not in out and "func.func" not in out
    assert sorted(p.name for p in CORPUS.iterdir()) == before
    assert list(tmp_path.iterdir()) == []

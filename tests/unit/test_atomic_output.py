"""Outputs are written to an anonymous temp file (O_TMPFILE) in the target's directory, named
and renamed over the target only when complete (neuron_opt/outputs.atomic_output), so an error or
a kill never leaves a partial target, never spoils an existing one, and leaves no temp file
behind (the kernel frees an unnamed file when the process dies). Special files, symlinks and
modes are covered by tests/malformed/test_hostile.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from neuron_opt.diagnostics import CompileError
from neuron_opt.outputs import atomic_output

BIN = Path(sys.executable).parent
SENTINEL = b"previous output, must survive\n"


# -- the context manager ----------------------------------------------------------------------


def test_success_replaces_the_target_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.mlir"
    target.write_bytes(SENTINEL)
    with atomic_output(target) as f:
        f.write("new ")
        f.flush()
        # Mid-write the target still holds the old content; the data goes to an unnamed file.
        assert target.read_bytes() == SENTINEL
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mlir"]
        f.write("content\n")
    assert target.read_text() == "new content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mlir"]


def test_binary_mode_npz(tmp_path):
    target = tmp_path / "out.npz"
    with atomic_output(target, "wb") as f:
        np.savez(f, y=np.arange(5, dtype=np.float32))
    with np.load(target) as z:
        assert z["y"].tolist() == [0, 1, 2, 3, 4]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz"]


@pytest.mark.parametrize(
    "exc", [RuntimeError("boom"), KeyboardInterrupt(), CompileError("bad", "x")]
)
def test_an_error_mid_write_keeps_the_old_target_and_removes_the_temp(tmp_path, exc):
    target = tmp_path / "out.json"
    target.write_bytes(SENTINEL)
    with pytest.raises(type(exc)):
        with atomic_output(target) as f:
            f.write("{" * 100_000)  # half a document, flushed past any buffer
            f.flush()
            raise exc
    assert target.read_bytes() == SENTINEL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_an_error_mid_write_creates_no_target(tmp_path):
    target = tmp_path / "trace.json"
    with pytest.raises(ValueError, match="no"):
        with atomic_output(target) as f:
            f.write("[")
            raise ValueError("no")
    assert list(tmp_path.iterdir()) == []


def test_missing_directory_is_a_file_error(tmp_path):
    with pytest.raises(CompileError) as e:
        with atomic_output(tmp_path / "missing" / "out.mlir"):
            pass
    assert (
        str(e.value)
        == f"{tmp_path / 'missing' / 'out.mlir'}: error: cannot write: the directory does not exist"
    )


# -- without O_TMPFILE: a named temp file, removed on any failure ------------------------------


@pytest.fixture
def no_tmpfile(monkeypatch):
    """An OS (or file system) without O_TMPFILE: atomic_output falls back to a named temp file."""
    monkeypatch.delattr(os, "O_TMPFILE", raising=False)


def test_named_temp_is_visible_while_writing_and_renamed_at_the_end(tmp_path, no_tmpfile):
    target = tmp_path / "out.mlir"
    target.write_bytes(SENTINEL)
    with atomic_output(target) as f:
        f.write("new\n")
        f.flush()
        temps = [p.name for p in tmp_path.iterdir() if p.name != "out.mlir"]
        assert len(temps) == 1 and temps[0].startswith(".out.mlir.")  # the fallback is in use
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mlir"]


@pytest.mark.parametrize(
    "exc", [RuntimeError("boom"), KeyboardInterrupt(), SystemExit(1), CompileError("bad", "x")]
)
def test_named_temp_is_removed_on_any_exception(tmp_path, no_tmpfile, exc):
    target = tmp_path / "out.json"
    target.write_bytes(SENTINEL)
    with pytest.raises(type(exc)):
        with atomic_output(target) as f:
            f.write("{" * 100_000)
            f.flush()
            raise exc
    assert target.read_bytes() == SENTINEL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


_WRITER = """
import os, sys, time
del os.O_TMPFILE  # the named-temp fallback
from neuron_opt.cli.common import run_main
from neuron_opt.outputs import atomic_output

def body():
    with atomic_output(sys.argv[1]) as f:
        f.write("partial" * 10000)
        f.flush()
        print("writing", flush=True)
        time.sleep(120)

run_main("writer", body)
"""


def test_named_temp_is_removed_on_sigterm(tmp_path):
    """SIGTERM unwinds like Ctrl-C (run_main's handler): the temp file goes, the old output
    stays, one error line, exit 1."""
    target = tmp_path / "out.mlir"
    target.write_bytes(SENTINEL)
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(target)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline() == "writing\n", proc.stderr.read()
        assert len(list(tmp_path.iterdir())) == 2  # the target and the named temp file
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1 and err == "writer: error: terminated (SIGTERM)\n", err
    assert target.read_bytes() == SENTINEL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mlir"]


def test_link_fallback_copies_into_the_named_temp(tmp_path, monkeypatch):
    """Where neither linkat route names the O_TMPFILE data, it is copied to the temp name."""
    import ctypes

    def no_link(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    class NoLibc:
        def __init__(self, *args, **kwargs):
            pass

        def linkat(self, *args):
            return -1

    monkeypatch.setattr(os, "link", no_link)
    monkeypatch.setattr(ctypes, "CDLL", NoLibc)
    target = tmp_path / "out.bin"
    target.write_bytes(SENTINEL)
    target.chmod(0o640)
    data = os.urandom(3 << 20)
    with atomic_output(target, "wb") as f:
        f.write(data)
    assert target.read_bytes() == data and (target.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


# -- the tools: failures keep an existing output ---------------------------------------------


GOOD = """func.func @main(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>) -> tensor<4x16xf32> {
  %m = nt.matmul %a, %b : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
  func.return %m : tensor<4x16xf32>
}
"""


def test_neuron_opt_failure_keeps_an_existing_output(tmp_path):
    (tmp_path / "bad.mlir").write_text(GOOD.replace("4x16xf32>", "4x15xf32>"))
    out = tmp_path / "out.mlir"
    out.write_bytes(SENTINEL)
    res = subprocess.run(
        [BIN / "neuron-opt", "bad.mlir", "-o", "out.mlir", "--auto-cast=all"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 1 and res.stderr.startswith("bad.mlir:2:3: error:"), res.stderr
    assert out.read_bytes() == SENTINEL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mlir", "out.mlir"]


def _onnx_model(path: Path, k: int, n: int) -> None:
    """y = x @ W with a K x N float32 initializer: the weights make the .npz big."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((k, n)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, n])],
        initializer=[numpy_helper.from_array(w, "W")],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)


def test_neuron_cc_eval_failure_keeps_existing_outputs(tmp_path):
    _onnx_model(tmp_path / "m.onnx", 4, 3)
    np.savez(tmp_path / "x.npz", x=np.zeros((2, 5), np.float32))  # wrong shape
    for name in ("out.npz", "m.json"):
        (tmp_path / name).write_bytes(SENTINEL)
    res = subprocess.run(
        [
            BIN / "neuron-cc",
            "eval",
            "m.onnx",
            "--inputs",
            "x.npz",
            "-o",
            "out.npz",
            "--json",
            "m.json",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 1 and "x.npz: input x: error: expected shape 2x4" in res.stderr, (
        res.stderr
    )
    assert (tmp_path / "out.npz").read_bytes() == SENTINEL
    assert (tmp_path / "m.json").read_bytes() == SENTINEL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.onnx", "out.npz", "x.npz"]


# -- the tools: SIGKILL mid-way --------------------------------------------------------------


def _big_module(n: int) -> str:
    """A chain of n matmul/add/exp blocks: several seconds of parse, auto-cast and print."""
    lines = ["func.func @main(%x0: tensor<8x8xf32>, %w: tensor<8x8xf32>) -> tensor<8x8xf32> {"]
    for i in range(n):
        lines.append(
            f"  %m{i} = nt.matmul %x{i}, %w : (tensor<8x8xf32>, tensor<8x8xf32>) -> tensor<8x8xf32>"
        )
        lines.append(f"  %a{i} = nt.add %m{i}, %x{i} : tensor<8x8xf32>")
        lines.append(f"  %x{i + 1} = nt.tanh %a{i} : tensor<8x8xf32>")
    lines += [f"  func.return %x{n} : tensor<8x8xf32>", "}", ""]
    return "\n".join(lines)


def test_neuron_opt_killed_mid_run_leaves_the_old_output(tmp_path):
    (tmp_path / "big.mlir").write_text(_big_module(6000))
    out = tmp_path / "out.mlir"
    out.write_bytes(SENTINEL)
    proc = subprocess.Popen(
        [BIN / "neuron-opt", "big.mlir", "--auto-cast=all", "-o", "out.mlir"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(1.5)  # well into parsing/passes (the whole run takes several seconds)
        assert proc.poll() is None, "the run finished before the kill: make the module bigger"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert out.read_bytes() == SENTINEL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.mlir", "out.mlir"]  # no temp left

    # And a run to completion replaces it with a whole module.
    res = subprocess.run(
        [BIN / "neuron-opt", "big.mlir", "--auto-cast=all", "-o", "out.mlir"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    text = out.read_text()
    assert text.startswith("builtin.module") and text.rstrip().endswith("}")
    assert text.count("nt.matmul") == 6000


def test_neuron_cc_compile_killed_while_writing_leaves_no_partial_file(tmp_path):
    """Kill compiles writing ~64 MB of weights at times spread over the run: OUT.npz and
    OUT.mlir are each either the old file or a whole new one, and no temp file remains (the
    data is written to unnamed O_TMPFILE files; a name exists only between link and rename)."""
    _onnx_model(tmp_path / "m.onnx", 4096, 4096)
    keep = {"m.onnx", "out.npz", "out.mlir"}
    cmd = [BIN / "neuron-cc", "compile", "m.onnx", "--auto-cast", "none", "-o", "out.mlir"]
    t0 = time.monotonic()
    res = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    full = time.monotonic() - t0
    assert res.returncode == 0, res.stderr
    old = {n: (tmp_path / n).read_bytes() for n in ("out.npz", "out.mlir")}  # a run's own pair
    for frac in (0.5, 0.7, 0.8, 0.9, 0.95):
        for name, data in old.items():
            (tmp_path / name).unlink()
            (tmp_path / name).write_bytes(data)  # a fresh inode: a rename is seen as new content
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            time.sleep(full * frac)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)
        for name, data in old.items():  # the compile is deterministic: old and new are equal
            assert (tmp_path / name).read_bytes() == data, name

    # A complete run afterwards writes both outputs whole.
    res = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    with np.load(tmp_path / "out.npz") as z:
        assert z["W"].shape == (4096, 4096)
    assert "nt.weight @W" in (tmp_path / "out.mlir").read_text()

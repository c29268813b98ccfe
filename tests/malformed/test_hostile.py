"""Hostile input whose right answer is not one error line, or that needs a setup the manifest
cannot express (FIFOs, symlinks, modes, concurrent runs): the special file stays special, the
symlink stays a link, the mode is kept, nothing is clobbered, deep input gives the right result.
None of these needs root; all run under the corpus's address-space cap."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_malformed import BIN, CORPUS, cap_memory

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from deep_chain import chain_model

GOOD = (CORPUS / "good.mlir").read_text()


def tool(*args, cwd, stdin=None, timeout=120):
    return subprocess.run(
        [BIN / args[0], *map(str, args[1:])],
        cwd=cwd,
        capture_output=True,
        timeout=timeout,
        preexec_fn=cap_memory,
        input=stdin,
    )


def one_error(res, expect: str) -> str:
    err = res.stderr.decode()
    assert res.returncode == 1 and "Traceback" not in err, err
    assert len(err.splitlines()) == 1 and expect in err, err
    return err


def ok(res):
    assert res.returncode == 0, res.stderr.decode()
    return res


# -- outputs ----------------------------------------------------------------------------------


def test_dash_is_stdout(tmp_path):
    (tmp_path / "g.mlir").write_text(GOOD)
    res = ok(tool("neuron-opt", "g.mlir", "-o", "-", cwd=tmp_path))
    assert res.stdout.decode().startswith("builtin.module")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.mlir"]  # no file named '-'


@pytest.mark.skipif(not os.access("/dev/null", os.W_OK), reason="/dev/null not writable here")
def test_dev_null_stays_a_device(tmp_path):
    (tmp_path / "g.mlir").write_text(GOOD)
    before = os.stat("/dev/null")
    ok(tool("neuron-opt", "g.mlir", "-o", "/dev/null", cwd=tmp_path))
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (
        before.st_ino,
        before.st_rdev,
    )


def test_dev_stdout_into_a_pipe_is_written_through(tmp_path):
    """/dev/stdout leads through /proc to a pipe that has no path: it is opened by its own name."""
    (tmp_path / "g.mlir").write_text(GOOD)
    res = ok(tool("neuron-opt", "g.mlir", "-o", "/dev/stdout", cwd=tmp_path))
    assert res.stdout.decode().startswith("builtin.module")


def test_a_name_at_the_length_limit_is_written(tmp_path):
    """The temp file's name (the target's plus a suffix) must not be what makes it too long."""
    (tmp_path / "g.mlir").write_text(GOOD)
    name = "a" * 250 + ".mlir"
    ok(tool("neuron-opt", "g.mlir", "-o", name, cwd=tmp_path))
    assert (tmp_path / name).read_text().startswith("builtin.module")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["g.mlir", name])


@pytest.mark.parametrize(
    "out, expect",
    [
        ("newdir/", "newdir/: error: cannot write: the name ends in '/' (a directory)"),
        ("g.mlir/x", "g.mlir/x: error: cannot write: Not a directory"),
        ("loop", "loop: error: cannot write: Too many levels of symbolic links"),
    ],
)
def test_impossible_output_names(tmp_path, out, expect):
    (tmp_path / "g.mlir").write_text(GOOD)
    (tmp_path / "loop").symlink_to("loop")
    one_error(tool("neuron-opt", "g.mlir", "-o", out, cwd=tmp_path), expect)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.mlir", "loop"]


@pytest.mark.parametrize(
    "fd, args, expect",
    [
        (1, ["neuron-opt", "g.mlir"], "<stdout>: error: cannot write: stdout is closed"),
        (
            1,
            ["neuron-cc", "eval", CORPUS / "good.onnx", "--inputs", CORPUS / "inputs_ok.npz"],
            "<stdout>: error: cannot write: stdout is closed",
        ),
        (0, ["neuron-opt", "-"], "<stdin>: error: cannot read: stdin is closed"),
    ],
    ids=["neuron-opt stdout", "eval stdout", "stdin"],
)
def test_closed_standard_streams(tmp_path, fd, args, expect):
    """Started with stdout or stdin closed (`>&-`, `<&-`): one line, not a traceback."""
    (tmp_path / "g.mlir").write_text(GOOD)

    def close_fd():
        cap_memory()
        os.close(fd)

    res = subprocess.run(
        [BIN / args[0], *args[1:]],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        timeout=300,
        preexec_fn=close_fd,
    )
    one_error(res, expect)


def test_fifo_is_written_through(tmp_path):
    (tmp_path / "g.mlir").write_text(GOOD)
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    ok(tool("neuron-opt", "g.mlir", "-o", fifo, cwd=tmp_path))
    reader.join(timeout=60)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # still a FIFO, not replaced by a file
    assert got and got[0].decode().startswith("builtin.module")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.mlir", "out.fifo"]


def test_symlink_target_is_written_and_the_link_kept(tmp_path):
    (tmp_path / "g.mlir").write_text(GOOD)
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "out.mlir"
    target.write_text("old\n")
    (tmp_path / "link.mlir").symlink_to(target)
    ok(tool("neuron-opt", "g.mlir", "-o", "link.mlir", cwd=tmp_path))
    assert (tmp_path / "link.mlir").is_symlink()
    assert os.readlink(tmp_path / "link.mlir") == str(target)
    assert target.read_text().startswith("builtin.module")
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["out.mlir"]


def test_existing_mode_is_kept(tmp_path):
    (tmp_path / "g.mlir").write_text(GOOD)
    out = tmp_path / "secret.mlir"
    out.write_text("old\n")
    out.chmod(0o600)
    ok(tool("neuron-opt", "g.mlir", "-o", out, cwd=tmp_path))
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_text().startswith("builtin.module")


def test_symlinked_output_onto_the_input_is_refused(tmp_path):
    (tmp_path / "g.mlir").write_text(GOOD)
    (tmp_path / "alias.mlir").symlink_to(tmp_path / "g.mlir")
    one_error(
        tool("neuron-opt", "g.mlir", "-o", "alias.mlir", cwd=tmp_path),
        "alias.mlir: error: the output would overwrite the input g.mlir",
    )
    assert (tmp_path / "g.mlir").read_text() == GOOD


def test_hard_link_to_the_model_is_refused(tmp_path):
    os.link(CORPUS / "good.onnx", tmp_path / "m.onnx")
    os.link(CORPUS / "good.onnx", tmp_path / "other.onnx")
    one_error(
        tool("neuron-cc", "compile", "m.onnx", "-o", "other.onnx", cwd=tmp_path),
        "other.onnx: error: the output would overwrite the input m.onnx (the same file by another name)",
    )


def test_compile_weights_symlinked_onto_the_ir_is_refused(tmp_path):
    (tmp_path / "out.mlir").write_text("old\n")
    (tmp_path / "out.npz").symlink_to(tmp_path / "out.mlir")
    one_error(
        tool("neuron-cc", "compile", CORPUS / "good.onnx", "-o", "out.mlir", cwd=tmp_path),
        "error: two outputs are one file (out.mlir and out.npz)",
    )
    assert (tmp_path / "out.mlir").read_text() == "old\n"


def test_compile_keeps_an_unrelated_npz(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"someone else's data")
    one_error(
        tool("neuron-cc", "compile", CORPUS / "good.onnx", "-o", "x.mlir", cwd=tmp_path),
        "x.npz: error: exists and is not the weights file of x.mlir",
    )
    assert (tmp_path / "x.npz").read_bytes() == b"someone else's data"
    assert not (tmp_path / "x.mlir").exists()


def test_a_write_failure_is_found_before_the_work(tmp_path):
    (tmp_path / "g.mlir").write_text(GOOD)
    (tmp_path / "file").write_text("")
    one_error(
        tool("neuron-opt", "g.mlir", "-o", "file/out.mlir", cwd=tmp_path),
        "file/out.mlir: error: cannot write: Not a directory",
    )


# Write failures: each is one `PATH: error: cannot write: ...` line, found before the work where
# a check can find it (the bare --cast-report would print per-op lines if the work ran first),
# and nothing is left behind. Root may write any file, so read-only places are made with a
# read-only bind mount in a private mount namespace (`unshare -m`); without root, chmod does it.

SLOW_OUTPUTS = {  # every tool with an output flag; OUT is the output under test
    "neuron-opt -o": ["neuron-opt", "g.mlir", "--auto-cast", "all", "--cast-report", "-o", "OUT"],
    "neuron-opt --cast-report=": [
        "neuron-opt",
        "g.mlir",
        "--auto-cast",
        "all",
        "--cast-report=OUT",
    ],
    "compile -o": ["neuron-cc", "compile", CORPUS / "good.onnx", "--cast-report", "-o", "OUT"],
    "compile --cast-report=": [
        "neuron-cc",
        "compile",
        CORPUS / "good.onnx",
        "-o",
        "c.mlir",
        "--cast-report=OUT",
    ],
    "eval -o": [
        "neuron-cc",
        "eval",
        CORPUS / "good.onnx",
        "--inputs",
        CORPUS / "inputs_ok.npz",
        "--cast-report",
        "-o",
        "OUT",
    ],
    "run --trace": [
        "neuron-cc",
        "run",
        CORPUS / "good.onnx",
        "--inputs",
        CORPUS / "inputs_ok.npz",
        "--cast-report",
        "--trace",
        "OUT",
    ],
    "explain --json": [
        "neuron-cc",
        "explain",
        CORPUS / "good.onnx",
        "--inputs",
        CORPUS / "inputs_ok.npz",
        "--json",
        "OUT",
    ],
    "sweep --json": [
        "neuron-cc",
        "sweep",
        CORPUS / "good.onnx",
        "--inputs",
        CORPUS / "inputs_ok.npz",
        "--json",
        "OUT",
    ],
    "tune -o": [
        "neuron-cc",
        "tune",
        CORPUS / "good.onnx",
        "--inputs",
        CORPUS / "inputs_ok.npz",
        "-o",
        "OUT",
    ],
}


def _read_only(tmp_path: Path, path: Path, args: list) -> list:
    """`args` run with `path` (a directory or a file) read-only for this user."""
    if os.geteuid() != 0:
        path.chmod(0o555 if path.is_dir() else 0o444)
        return args
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip(
            "root ignores modes, and no mount namespace (unshare -m) for a read-only bind mount"
        )
    return [
        "unshare",
        "-m",
        "sh",
        "-c",
        'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"',
        path,
        BIN / args[0],
        *args[1:],
    ]


@pytest.mark.parametrize("flag", SLOW_OUTPUTS)
def test_read_only_directory(tmp_path, flag):
    (tmp_path / "g.mlir").write_text(GOOD)
    (tmp_path / "ro").mkdir()
    args = [a if a != "OUT" else "ro/out" for a in SLOW_OUTPUTS[flag]]
    args = [a.replace("=OUT", "=ro/out") if isinstance(a, str) else a for a in args]
    res = subprocess.run(
        _read_only(tmp_path, tmp_path / "ro", [BIN / args[0], *args[1:]]),
        cwd=tmp_path,
        capture_output=True,
        timeout=300,
        preexec_fn=cap_memory,
    )
    err = one_error(res, "ro/out: error: cannot write: ")
    assert "(the directory is not writable)" in err and (
        "read-only file system" in err or "permission denied" in err
    )
    assert list((tmp_path / "ro").iterdir()) == []


@pytest.mark.parametrize("flag", ["neuron-opt -o", "compile --cast-report=", "eval -o"])
def test_unwritable_file_is_not_replaced(tmp_path, flag):
    (tmp_path / "g.mlir").write_text(GOOD)
    (tmp_path / "out").write_bytes(b"keep me")
    args = [a.replace("OUT", "out") if isinstance(a, str) else a for a in SLOW_OUTPUTS[flag]]
    res = subprocess.run(
        _read_only(tmp_path, tmp_path / "out", [BIN / args[0], *args[1:]]),
        cwd=tmp_path,
        capture_output=True,
        timeout=300,
        preexec_fn=cap_memory,
    )
    one_error(res, "out: error: cannot write: ")
    assert "(the file is not writable)" in res.stderr.decode()
    assert (tmp_path / "out").read_bytes() == b"keep me"


@pytest.mark.parametrize(
    "flag",
    [
        "neuron-opt -o",
        "neuron-opt --cast-report=",
        "compile --cast-report=",
        "eval -o",
        "run --trace",
        "explain --json",
    ],
)
def test_directory_as_output(tmp_path, flag):
    (tmp_path / "g.mlir").write_text(GOOD)
    (tmp_path / "d").mkdir()
    args = [a.replace("OUT", "d") if isinstance(a, str) else a for a in SLOW_OUTPUTS[flag]]
    one_error(tool(*args, cwd=tmp_path, timeout=300), "d: error: cannot write: it is a directory")


def _file_size_cap() -> None:
    """A write past 1 KiB fails with EFBIG (a disk that fills mid-write; root is held to it too)."""
    import resource
    import signal

    cap_memory()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def _neg_chain_ir(n: int) -> str:
    lines = [f"  %x{i + 1} = nt.neg %x{i} : tensor<4x8xf32>" for i in range(n)]
    return "\n".join(
        [
            "func.func @main(%x0: tensor<4x8xf32>) -> tensor<4x8xf32> {",
            *lines,
            f"  func.return %x{n} : tensor<4x8xf32>",
            "}",
            "",
        ]
    )


DISK_FULL = {  # command, the outputs it writes (each bigger than the cap)
    "neuron-opt -o": (["neuron-opt", "chain.mlir", "-o", "out.mlir"], ["out.mlir"]),
    "compile -o": (
        ["neuron-cc", "compile", "m1.onnx", "--auto-cast", "none", "-o", "out.mlir"],
        ["out.mlir", "out.npz"],
    ),
    "run -o": (["neuron-cc", "run", "m1.onnx", "--inputs", "x.npz", "-o", "y.npz"], ["y.npz"]),
}


@pytest.mark.parametrize("case", DISK_FULL)
def test_disk_full_mid_write_keeps_the_old_files(tmp_path, case):
    """The disk fills while an output is written (a file-size cap: no privilege needed, and
    root is held to it too): one line, the old outputs intact, no temp file left."""
    (tmp_path / "chain.mlir").write_text(_neg_chain_ir(200))
    for seed in (1, 2):
        _matmul_model(tmp_path / f"m{seed}.onnx", seed)
    np.savez(tmp_path / "x.npz", x=np.ones((2, 64), np.float32))
    ok(
        tool(
            "neuron-cc", "compile", "m2.onnx", "--auto-cast", "none", "-o", "out.mlir", cwd=tmp_path
        )
    )
    (tmp_path / "y.npz").write_text("old outputs")
    old = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    args, outputs = DISK_FULL[case]
    res = subprocess.run(
        [BIN / args[0], *args[1:]],
        cwd=tmp_path,
        capture_output=True,
        timeout=300,
        preexec_fn=_file_size_cap,
    )
    err = res.stderr.decode()
    assert res.returncode == 1 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.split(": error: cannot write: ")[0] in outputs and "File too large" in err, err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == old  # and no temp file left


# -- weights ----------------------------------------------------------------------------------


def _weights_module(npz_name: str) -> str:
    return (CORPUS / "weights_plain.mlir").read_text().replace('"weights_ok.npz"', f'"{npz_name}"')


def test_fifo_as_weights_does_not_hang(tmp_path):
    os.mkfifo(tmp_path / "w.npz")
    (tmp_path / "m.mlir").write_text(_weights_module("w.npz"))
    one_error(
        tool(
            "neuron-cc",
            "run",
            "m.mlir",
            "--inputs",
            CORPUS / "inputs_ok.npz",
            cwd=tmp_path,
            timeout=60,
        ),
        "w.npz: error: cannot read weights: not a regular file",
    )


def test_weights_outside_need_weights_root(tmp_path):
    (tmp_path / "common").mkdir()
    np.savez(tmp_path / "common" / "w.npz", w=np.full((2, 4), 2.0, np.float32))
    (tmp_path / "ir").mkdir()
    (tmp_path / "ir" / "m.mlir").write_text(_weights_module("../common/w.npz"))
    # the same message whether or not the file exists: no existence oracle
    for name in ("../common/w.npz", "../common/missing.npz"):
        (tmp_path / "ir" / "m.mlir").write_text(_weights_module(name))
        one_error(
            tool(
                "neuron-cc",
                "run",
                "m.mlir",
                "--inputs",
                CORPUS / "inputs_ok.npz",
                cwd=tmp_path / "ir",
            ),
            f"{name}: error: the weights path '{name}' leads outside the IR file's directory",
        )
    (tmp_path / "ir" / "m.mlir").write_text(_weights_module("../common/w.npz"))
    ok(
        tool(
            "neuron-cc",
            "run",
            "m.mlir",
            "--inputs",
            CORPUS / "inputs_ok.npz",
            "-o",
            "y.npz",
            "--weights-root",
            tmp_path / "common",
            cwd=tmp_path / "ir",
        )
    )
    with np.load(tmp_path / "ir" / "y.npz") as z:
        assert (z["y"] == 2.0).all()  # x = 0 plus the weights


def test_unused_zip_bomb_key_is_never_decompressed(tmp_path):
    """An inputs file with one unused member that inflates to 1.5 GB: the error comes from the
    member list alone (the run stays far below the member's size)."""
    with zipfile.ZipFile(tmp_path / "x.npz", "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("x.npy", "w") as f:
            np.lib.format.write_array(f, np.zeros((2, 4), np.float32))
        with z.open("bomb.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": "<f4", "fortran_order": False, "shape": (3 << 27,)}
            )
            chunk = bytes(1 << 24)
            for _ in range(96):
                f.write(chunk)
    assert (tmp_path / "x.npz").stat().st_size < 20 << 20
    proc = subprocess.Popen(
        [BIN / "neuron-cc", "eval", CORPUS / "good.onnx", "--inputs", "x.npz"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=cap_memory,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode()
    proc.stdout.close(), proc.stderr.close()
    assert (
        os.waitstatus_to_exitcode(status) == 1 and "'bomb' is not an input of the model" in err
    ), err
    assert usage.ru_maxrss < 1 << 20  # KiB: under 1 GiB, though the member inflates to 1.5 GiB


# -- names on the terminal --------------------------------------------------------------------

HOSTILE_IN, HOSTILE_OUT = 'in[bold]"x\\41', "out[red]\x1b[31mY\nforged: error: z"


def _hostile_names_model(path: Path) -> None:
    """Node, input and output names holding rich markup, escape sequences (colour, window
    title, clear screen), a newline that would forge a line, quotes and backslashes."""
    nodes = [
        helper.make_node(
            "MatMul", [HOSTILE_IN, "W"], ["m"], name="[bold]mm[/bold]\x1b]0;title\x07"
        ),
        helper.make_node(
            "Relu", ["m"], [HOSTILE_OUT], name="relu\nneuron-cc: error: forged\x1b[2J"
        ),
    ]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(HOSTILE_IN, TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info(HOSTILE_OUT, TensorProto.FLOAT, [2, 3])],
        initializer=[numpy_helper.from_array(np.ones((4, 3), np.float32), "W")],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)


@pytest.mark.parametrize(
    "args",
    [
        ["compile", "names.onnx", "-o", "n.mlir", "--auto-cast", "all", "--cast-report"],
        ["eval", "names.onnx", "--inputs", "x.npz", "--node-block-list", "nosuch[bold]\x1b[31m"],
        ["run", "names.onnx", "--inputs", "x.npz", "--cast-report"],
        ["explain", "names.onnx", "--inputs", "x.npz", "--auto-cast", "all"],
    ],
    ids=["compile", "eval", "run", "explain"],
)
def test_names_reach_the_terminal_inert(tmp_path, args):
    """Tables (rich markup) and report lines show such names as text: no escape sequence
    reaches the terminal, no forged line, `[bold]` printed rather than applied."""
    _hostile_names_model(tmp_path / "names.onnx")
    np.savez(tmp_path / "x.npz", **{HOSTILE_IN: np.ones((2, 4), np.float32)})
    res = ok(tool("neuron-cc", *args, cwd=tmp_path, timeout=300))
    text = (res.stdout + res.stderr).decode()
    assert "\x1b" not in text and "\x07" not in text
    assert not any(
        ln.lstrip("│ ").startswith(("forged", "neuron-cc: error: forged"))
        for ln in text.splitlines()
    )
    if args[0] in ("compile", "run", "explain"):  # they name the nodes
        assert (
            "[bold]mm[/bold]\\x1b]0;title\\x07" in text
            and "relu\\nneuron-cc: error: forged\\x1b[2J" in text
        )
    if args[0] in ("eval", "run"):  # they name the output
        assert "out[red]\\x1b[31mY\\nforged: error: z" in text
    if args[0] == "eval":
        assert "'nosuch[bold]\\x1b[31m' matches no op" in text
    if args[0] == "compile":  # and the generated IR holds the names escaped, parsed back exactly
        from neuron_opt.cli.common import load_module
        from neuron_opt.dialects.io_names import input_names, output_names

        fn = next(iter(load_module(str(tmp_path / "n.mlir")).body.ops))
        assert (input_names(fn), output_names(fn)) == ([HOSTILE_IN], [HOSTILE_OUT])


# -- deep input -------------------------------------------------------------------------------


def test_a_201_op_chain_runs_and_is_exact(tmp_path):
    onnx.save(chain_model(201, (2, 4)), tmp_path / "chain.onnx")
    x = np.arange(8, dtype=np.float32).reshape(2, 4) - 3.5
    np.savez(tmp_path / "x.npz", x=x)
    ok(
        tool(
            "neuron-cc",
            "run",
            "chain.onnx",
            "--inputs",
            "x.npz",
            "--auto-cast",
            "none",
            "-o",
            "y.npz",
            cwd=tmp_path,
            timeout=300,
        )
    )
    with np.load(tmp_path / "y.npz") as z:
        assert np.array_equal(z["y"], -x)


def test_attributes_nested_150_deep_parse_and_print(tmp_path):
    deep = "[" * 150 + "1" + "]" * 150
    (tmp_path / "d.mlir").write_text(
        f"func.func @main() attributes {{foo = {deep}}} {{\n  func.return\n}}\n"
    )
    out = ok(tool("neuron-opt", "d.mlir", cwd=tmp_path)).stdout.decode()
    assert out.count("[") == out.count("]") == 150 and "[" * 150 + "1" in out


def _attribute(text: str) -> str:
    return f"func.func @main() attributes {{foo = {text}}} {{\n  func.return\n}}\n"


DEEP = 100_000
DEEP_INPUTS = {  # nesting 10^5 levels deep, each way the grammar nests
    "array attributes": _attribute("[" * DEEP + "1" + "]" * DEEP),
    "dictionary attributes": _attribute("{a = " * DEEP + "1" + "}" * DEEP),
    "function types": _attribute("() -> (" * DEEP + "i32" + ")" * DEEP),
    "tuple types": _attribute("tuple<" * DEEP + "i32" + ">" * DEEP),
    "dense literal": _attribute(
        "dense<" + "[" * DEEP + "1" + "]" * DEEP + "> : tensor<" + "1x" * DEEP + "i32>"
    ),
    "module regions": "builtin.module {\n" * DEEP + "}\n" * DEEP,
    "kernel regions": "nisa.kernel @k {\n" * DEEP + "}\n" * DEEP,
}


@pytest.mark.parametrize("kind", DEEP_INPUTS)
def test_nesting_100000_deep_is_one_located_error(tmp_path, kind):
    """The parser recurses per level (xDSL's): past a few thousand levels the input is
    refused at the place it got too deep, never a RecursionError or a crash."""
    (tmp_path / "d.mlir").write_text(DEEP_INPUTS[kind])
    err = one_error(tool("neuron-opt", "d.mlir", "-o", "out.mlir", cwd=tmp_path), "error: ")
    assert re.match(
        r"d\.mlir:\d+:\d+: error: nested too deeply \(attributes, types or regions\) for the parser$",
        err.strip(),
    ), err
    assert not (tmp_path / "out.mlir").exists()


def test_modules_nested_2500_deep_pass_through_every_pass(tmp_path):
    """Within the parser's depth the printer, the verifier and the cast passes handle the
    nesting too (they walk it without a recursion that runs out first)."""
    (tmp_path / "d.mlir").write_text("builtin.module {\n" * 2500 + "}\n" * 2500)
    out = ok(
        tool(
            "neuron-opt",
            "d.mlir",
            "--verify-each",
            "-p",
            "auto-cast{mode=all},canonicalize-casts,preserve-io",
            cwd=tmp_path,
        )
    ).stdout.decode()
    assert out.count("builtin.module") == 2500


def test_splat_over_the_inline_limit_compiles_to_weights_the_parser_accepts(tmp_path):
    s = numpy_helper.from_array(np.array([4200, 4200], np.int64), "s")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4200, 4200])
    g = helper.make_graph(
        [
            helper.make_node(
                "ConstantOfShape",
                ["s"],
                ["c"],
                name="cos",
                value=numpy_helper.from_array(np.array([1.5], np.float32)),
            ),
            helper.make_node("Add", ["x", "c"], ["y"], name="add"),
        ],
        "g",
        [x],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4200, 4200])],
        initializer=[s],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, tmp_path / "splat.onnx")
    ok(tool("neuron-cc", "compile", "splat.onnx", "-o", "s.mlir", cwd=tmp_path, timeout=300))
    assert "nt.weight @c" in (tmp_path / "s.mlir").read_text()
    ok(
        tool(
            "neuron-opt",
            "s.mlir",
            "-o",
            "/dev/null" if os.access("/dev/null", os.W_OK) else "t.mlir",
            cwd=tmp_path,
        )
    )


# -- concurrent compiles ----------------------------------------------------------------------


def _matmul_model(path: Path, seed: int) -> None:
    w = np.random.default_rng(seed).standard_normal((64, 256)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 256])],
        initializer=[numpy_helper.from_array(w, "W")],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)


def test_twenty_concurrent_compiles_to_one_output(tmp_path):
    """Twenty compiles of two different models race to one -o; afterwards the pair on disk is
    either one compile's IR and weights (and runs to that model's result) or a mix that every
    run refuses with the digest error: never a silent run on the wrong weights."""
    models = []
    for seed in (1, 2):
        _matmul_model(tmp_path / f"m{seed}.onnx", seed)
        models.append(tmp_path / f"m{seed}.onnx")
    x = np.random.default_rng(0).standard_normal((2, 64)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    expected = {}
    for m in models:
        w = numpy_helper.to_array(onnx.load(m).graph.initializer[0])
        expected[m.name] = x @ w
    (tmp_path / "out").mkdir()

    def compile_one(i):
        return subprocess.run(
            [
                BIN / "neuron-cc",
                "compile",
                models[i % 2],
                "--auto-cast",
                "none",
                "-o",
                tmp_path / "out" / "g.mlir",
            ],
            capture_output=True,
            timeout=300,
        )

    def check_run(res) -> str:
        """A run of whatever pair is on disk: the right result for one model, or a one-line
        refusal (mismatched pair; or no pair yet)."""
        if res.returncode == 0:
            with np.load(tmp_path / "y.npz") as z:
                y = z["y"]
            assert any(np.allclose(y, e, rtol=1e-5, atol=1e-5) for e in expected.values())
            return "matching pair"
        err = one_error(res, "error: ")
        assert "the weights do not match the IR" in err or "No such file or directory" in err, err
        return "digest error" if "do not match" in err else "no pair yet"

    outcomes = []
    done = threading.Event()

    def runner():
        while not done.is_set():
            outcomes.append(
                check_run(
                    tool(
                        "neuron-cc",
                        "run",
                        tmp_path / "out" / "g.mlir",
                        "--inputs",
                        "x.npz",
                        "-o",
                        "y.npz",
                        cwd=tmp_path,
                        timeout=300,
                    )
                )
            )

    watcher = threading.Thread(target=runner)
    watcher.start()
    try:
        with ThreadPoolExecutor(max_workers=20) as pool:
            results = list(pool.map(compile_one, range(20)))
    finally:
        done.set()
        watcher.join()
    print("runs during the race:", {o: outcomes.count(o) for o in set(outcomes)})
    for r in results:  # a compile either succeeds or reports the race in one line
        err = r.stderr.decode()
        assert "Traceback" not in err and (r.returncode == 0 or len(err.splitlines()) == 1), err
    assert any(r.returncode == 0 for r in results)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["g.mlir", "g.npz"]
    assert (
        check_run(
            tool(
                "neuron-cc",
                "run",
                tmp_path / "out" / "g.mlir",
                "--inputs",
                "x.npz",
                "-o",
                "y.npz",
                cwd=tmp_path,
                timeout=300,
            )
        )
        != "no pair yet"
    )
    # A mixed pair made on purpose is always caught.
    mix = tmp_path / "mix"
    mix.mkdir()
    for i, m in enumerate(models):
        ok(
            tool(
                "neuron-cc",
                "compile",
                m,
                "--auto-cast",
                "none",
                "-o",
                mix / f"g{i}.mlir",
                cwd=tmp_path,
            )
        )
    (mix / "g1.npz").replace(mix / "g0.npz")
    one_error(
        tool("neuron-cc", "run", mix / "g0.mlir", "--inputs", "x.npz", cwd=tmp_path),
        "g0.npz: error: the weights do not match the IR",
    )


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))

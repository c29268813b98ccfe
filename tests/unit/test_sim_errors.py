"""Every simulator error kind: one line naming the engine, instruction index and operand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sim_kernels import ROOT, run

from neuron_opt.runtime.sim import SimError

DECLS = """
    nisa.hbm input @x : tensor<128x512xf32>
    nisa.hbm output @y : tensor<128x512xf32>
    nisa.sbuf @a partitions 0:128 offset 0 : tensor<128x512xf32>
    nisa.sbuf @w partitions 0:128 offset 4096 : tensor<128x128xbf16>
    nisa.sbuf @m partitions 0:128 offset 8192 : tensor<128x512xbf16>
    nisa.psum @p partitions 0:128 offset 0 : tensor<128x4x512xf32>
    nisa.semaphore @s
"""
X = {"x": np.ones((128, 512), np.float32)}


def test_uninitialized_read():
    body = (
        DECLS
        + """
    nisa.dma_queue @q {
      nisa.dma_copy @a[0:128, 0:256], @x[0:128, 0:256] signal(@s)
    }
    nisa.engine @vector {
      nisa.tensor_copy @m[0:128, 0:512], @a[0:128, 0:512] wait(@s >= 1)
    }
    """
    )
    with pytest.raises(SimError) as e:
        run(body, X)
    assert str(e.value) == (
        "test.mlir:16:7: error: vector instruction 0 (nisa.tensor_copy): operand src: "
        "reads uninitialized SBUF @a[0:128, 0:512]"
    )


def test_output_never_written():
    body = (
        DECLS
        + """
    nisa.dma_queue @q {
      nisa.dma_copy @a[0:128, 0:512], @x[0:128, 0:512] signal(@s)
      nisa.dma_copy @y[0:64, 0:512], @a[0:64, 0:512] wait(@s >= 1)
    }
    """
    )
    with pytest.raises(SimError, match="output 'y': 32768 of 65536 elements were never written"):
        run(body, X)
    assert set(run(body, X, numerics=False).outputs) == set()


def test_uninitialized_hbm_output_read():
    body = (
        DECLS
        + """
    nisa.dma_queue @q {
      nisa.dma_copy @a[0:128, 0:512], @y[0:128, 0:512]
    }
    """
    )
    with pytest.raises(
        SimError,
        match=r"dma queue q instruction 0 \(nisa.dma_copy\): operand src: reads uninitialized HBM @y",
    ):
        run(body, X)


def test_psum_accumulate_without_start():
    body = (
        DECLS
        + """
    nisa.engine @vector {
      nisa.memset @w[0:128, 0:128] value 1.0
      nisa.memset @m[0:128, 0:512] value 1.0 signal(@s)
    }
    nisa.engine @tensor {
      nisa.matmul @p[0:128, 1, 0:512], @w[0:128, 0:128], @m[0:128, 0:512] start stop wait(@s >= 1)
      nisa.matmul @p[0:128, 2, 0:512], @w[0:128, 0:128], @m[0:128, 0:512] stop
    }
    """
    )
    for numerics in (True, False):  # a bookkeeping check: also in timing-only runs
        with pytest.raises(SimError) as e:
            run(body, X, numerics=numerics)
        assert (
            "tensor instruction 1 (nisa.matmul): operand dst: accumulate into PSUM bank 2 "
            "partitions 0:128, whose accumulation group was not started" in str(e.value)
        )


def test_psum_group_ended_by_a_vector_write():
    body = (
        DECLS
        + """
    nisa.engine @vector {
      nisa.memset @w[0:128, 0:128] value 1.0
      nisa.memset @m[0:128, 0:512] value 1.0 signal(@s)
      nisa.memset @p[0:128, 0, 0:512] value 0.0 wait(@s >= 2) signal(@s)
    }
    nisa.engine @tensor {
      nisa.matmul @p[0:128, 0, 0:512], @w[0:128, 0:128], @m[0:128, 0:512] start wait(@s >= 1) signal(@s)
      nisa.matmul @p[0:128, 0, 0:512], @w[0:128, 0:128], @m[0:128, 0:512] stop wait(@s >= 3)
    }
    """
    )
    with pytest.raises(SimError, match=r"tensor instruction 1 .*accumulate into PSUM bank 0"):
        run(body, X)


def test_out_of_bounds_in_an_unverified_module():
    body = (
        DECLS
        + """
    nisa.engine @vector {
      nisa.memset @a[0:128, 500:520] value 1.0
    }
    """
    )
    with pytest.raises(
        SimError,
        match=r"vector instruction 0 \(nisa.memset\): operand dst: "
        r"@a\[0:128, 500:520\] is out of bounds in dimension 1 \(500:520 of 512\)",
    ):
        run(body, verify=False, numerics=False)


def test_wrong_engine_for_a_memory():
    body = (
        DECLS
        + """
    nisa.engine @gpsimd {
      nisa.tensor_copy @a[0:128, 0:512], @p[0:128, 0, 0:512]
    }
    """
    )
    with pytest.raises(
        SimError,
        match=r"gpsimd instruction 0 \(nisa.tensor_copy\): operand src: "
        "GpSimd accesses SBUF only, found PSUM",
    ):
        run(body, verify=False, numerics=False)


def test_deadlock_lists_the_waiting_instructions():
    body = (
        DECLS
        + """
    nisa.semaphore @t
    nisa.engine @vector {
      nisa.memset @a[0:128, 0:512] value 1.0 signal(@s)
      nisa.memset @a[0:128, 0:512] value 2.0 wait(@t >= 1)
    }
    nisa.engine @scalar {
      nisa.activation @a[0:128, 0:512], @a[0:128, 0:512] func exp wait(@s >= 2) signal(@t)
    }
    """
    )
    with pytest.raises(SimError) as e:
        run(body, numerics=False)
    msg = str(e.value)
    assert msg.startswith("error: deadlock: waits that can never be met: ")
    assert "vector instruction 1 (nisa.memset) at test.mlir:15:7 waits for @t >= 1, value 0" in msg
    assert (
        "scalar instruction 0 (nisa.activation) at test.mlir:18:7 waits for @s >= 2, value 1" in msg
    )
    assert "\n" not in msg


def test_input_binding_errors():
    body = (
        DECLS
        + """
    nisa.dma_queue @q {
      nisa.dma_copy @a[0:128, 0:512], @x[0:128, 0:512]
    }
    """
    )
    with pytest.raises(SimError, match="input 'x' is missing from the inputs"):
        run(body, {})
    with pytest.raises(SimError, match="input 'x': expected shape 128x512, found 128x256"):
        run(body, {"x": np.ones((128, 256), np.float32)})
    keyed = body.replace("nisa.hbm input @x :", "nisa.hbm input @x {key = 3 : i64} :")
    with pytest.raises(SimError, match="@x: key must be a string, found 3 : i64"):
        run(keyed, X)


def _cli(*args, cwd):
    return subprocess.run(
        [str(Path(sys.executable).parent / "neuron-cc"), *args],
        capture_output=True, text=True, cwd=cwd,
    )  # fmt: skip


def test_cli_errors_are_one_line(tmp_path):
    bad = tmp_path / "k.mlir"
    bad.write_text(
        "builtin.module {\n  nisa.kernel @k {\n"
        + DECLS
        + """
    nisa.dma_queue @q {
      nisa.dma_copy @a[0:128, 0:512], @x[0:128, 0:512] signal(@s)
      nisa.dma_copy @y[0:128, 0:512], @a[0:128, 0:512] wait(@s >= 1)
    }
  }
}
"""
    )
    p = _cli("run", str(bad), cwd=tmp_path)
    assert p.returncode == 1
    assert p.stderr.strip() == (
        "neuron-cc: error: --inputs X.npz is needed to compute outputs "
        "(or --no-numerics for timing only)"
    )
    np.savez(tmp_path / "none.npz")
    p = _cli("run", str(bad), "--inputs", str(tmp_path / "none.npz"), cwd=tmp_path)
    assert p.returncode == 1
    assert p.stderr.strip() == f"{bad}: error: input 'x' is missing from the inputs (keys: none)"
    p = _cli("run", str(tmp_path / "none.mlir"), cwd=tmp_path)
    assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1
    assert "Traceback" not in p.stderr
    np.savez(tmp_path / "x.npz", x=np.ones((128, 512), np.float32))
    out = tmp_path / "out.npz"
    p = _cli("run", str(bad), "--inputs", str(tmp_path / "x.npz"), "-o", str(out), cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert "DMA (1 queues)" in p.stdout
    assert np.array_equal(np.load(out)["y"], np.ones((128, 512), np.float32))


def test_read_while_another_engine_writes_is_a_race():
    body = (
        DECLS
        + """
    nisa.dma_queue @q {
      nisa.dma_copy @a[0:128, 0:512], @x[0:128, 0:512]
    }
    nisa.engine @vector {
      nisa.memset @m[0:128, 0:512] value 0.0
      nisa.tensor_copy @m[0:128, 0:512], @a[0:64, 0:512]
    }
    """
    )
    body = body.replace("@m[0:128, 0:512], @a[0:64, 0:512]", "@m[0:64, 0:512], @a[0:64, 0:512]")
    with pytest.raises(SimError) as e:
        run(body, X)
    assert str(e.value) == (
        "test.mlir:17:7: error: vector instruction 1 (nisa.tensor_copy): operand src: reads "
        "@a[0:64, 0:512] while dma queue q instruction 0 (nisa.dma_copy) is still writing "
        "@a[0:128, 0:512] (until 16.720 us): a semaphore wait is missing"
    )


def test_overwriting_what_another_engine_reads_is_a_race():
    body = (
        DECLS
        + """
    nisa.engine @vector {
      nisa.memset @w[0:128, 0:128] value 1.0
      nisa.memset @m[0:128, 0:512] value 1.0 signal(@s)
    }
    nisa.engine @tensor {
      nisa.matmul @p[0:128, 0, 0:512], @w[0:128, 0:128], @m[0:128, 0:512] start stop wait(@s >= 1) signal(@s)
    }
    nisa.engine @scalar {
      nisa.activation @m[0:128, 0:512], @a[0:128, 0:512] func exp wait(@s >= 1)
    }
    nisa.dma_queue @q {
      nisa.dma_copy @a[0:128, 0:512], @x[0:128, 0:512] signal(@s)
    }
    """
    )
    with pytest.raises(
        SimError,
        match=r"scalar instruction 0 \(nisa.activation\): operand dst: "
        r"writes @m\[0:128, 0:512\] while tensor instruction 0 \(nisa.matmul\) is "
        r"still reading @m\[0:128, 0:512\]",
    ):
        run(body, X)
    # Waiting for the matmul's signal (the 3rd on @s) orders them: the run gets to the end
    # (where it finds that this kernel never writes its output).
    with pytest.raises(SimError, match="output 'y': 65536 of 65536 elements were never written"):
        run(body.replace("func exp wait(@s >= 1)", "func exp wait(@s >= 3)"), X)

"""The placement the kernel verifier keeps for its instructions: never stale after an edit,
never keeping a kernel alive."""

from __future__ import annotations

import gc
import weakref

import pytest
from xdsl.dialects.builtin import StringAttr, TensorType, f32
from xdsl.utils.exceptions import VerifyException

from neuron_opt.cli.common import make_context
from neuron_opt.dialects import nisa
from neuron_opt.dialects.parse import parse_module, verify_module

TEXT = """
nisa.kernel @k {
  nisa.sbuf @a partitions 0:128 offset 0 : tensor<128x64xf32>
  nisa.sbuf @b partitions 0:128 offset 256 : tensor<128x64xf32>
  nisa.semaphore @s
  nisa.engine @vector {
    nisa.tensor_copy @b[0:128, 0:64], @a[0:128, 0:64] signal(@s)
  }
}
"""


def _verified():
    module = parse_module(make_context(), TEXT, "k.mlir")
    verify_module(module)
    kernel = next(op for op in module.walk() if isinstance(op, nisa.KernelOp))
    decls = {op.sym_name.data: op for op in kernel.body.block.ops}
    copy = next(op for op in module.walk() if isinstance(op, nisa.TensorCopyOp))
    return module, decls, copy


def test_an_instruction_is_checked_against_the_kernel_as_it_is_now():
    _, decls, copy = _verified()
    decls["a"].detach()
    with pytest.raises(
        VerifyException,
        match=r"vector instruction 0 \(nisa.tensor_copy\): operand src: "
        "@a is not a declared buffer",
    ):
        copy.verify()
    decls["b"].sym_name = StringAttr("c")
    with pytest.raises(VerifyException, match="operand dst: @b is not a declared buffer"):
        copy.verify()
    # A new declaration of @a, too small for the access now.
    decls["b"].parent_block().insert_op_before(
        nisa.SbufOp.get("a", 0, 0, TensorType(f32, [128, 32])), decls["b"]
    )
    decls["b"].sym_name = StringAttr("b")
    with pytest.raises(VerifyException, match=r"@a\[0:128, 0:64\] is out of bounds in dimension 1"):
        copy.verify()
    decls["s"].detach()
    with pytest.raises(VerifyException, match="@s is not a declared semaphore"):
        copy.verify()


def test_a_verified_kernel_is_not_kept_alive():
    module, decls, copy = _verified()
    copy.verify()
    kernel = weakref.ref(module)
    del module, decls, copy
    gc.collect()
    assert kernel() is None

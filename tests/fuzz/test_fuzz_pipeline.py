"""Fuzzed `nt` graphs through every auto-cast option: the invariants of docs/design.md.

For each graph (nt_graphs.graphs) and each option (none; matmult and all x bf16, fp16, tf32,
fp8_e4m3; preserve-io on and off):
  - every pass's output verifies and every pass is idempotent;
  - the three passes in order print what run_cast_pipeline prints (the pipeline is the list);
  - `none` prints what a no-pass run of neuron-opt prints, and auto-cast{mode=none} is a no-op;
  - with preserve-io the signature is the framework's; with it off it is the low-precision one
    (mode all: f32 arguments/results in the activation type, or f32 where a user's own cast to
    another type reads them, other float types unchanged; matmult: results unchanged,
    an f32 argument is T exactly where every use is a non-saturating cast to T);
  - canonicalize-casts changes no output bit (reference interpreter before/after, NaN
    positions compared, payloads not), on auto-cast's output and on the raw graph with its
    user casts; preserve-io changes none beyond one RNE cast of each output to its type;
  - matmult changes no non-MATMUL op; no mode touches an integer or bool tensor, and outputs
    computed from integers/bools only come out bit-identical under every option;
  - print -> parse -> print is a fixed point, custom and generic, before and after the passes.
Profiles (NEURON_FUZZ_PROFILE): ci (bounded, the default) and long (`make fuzz N=...`).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fuzz_settings import fuzz_settings
from hypothesis import event, given
from nt_graphs import WEIGHTS_FILE, Graph, graphs
from testlib import same_bits
from xdsl.context import Context
from xdsl.dialects.builtin import Builtin, TensorType, f8E4M3, f32
from xdsl.dialects.func import Func, FuncOp
from xdsl.printer import Printer

from neuron_opt.cli import neuron_opt as neuron_opt_cli
from neuron_opt.dialects import nt
from neuron_opt.dialects.parse import parse_module, verify_module
from neuron_opt.dialects.types import is_float, round_to
from neuron_opt.options import CAST_TYPES, CASTING_MODES
from neuron_opt.passes.auto_cast import AutoCastPass
from neuron_opt.passes.canonicalize_casts import CanonicalizeCastsPass
from neuron_opt.passes.pipeline import run_cast_pipeline
from neuron_opt.passes.policy import role_type
from neuron_opt.passes.preserve_io import PreserveIOPass
from neuron_opt.runtime.reference import Reference

# inf - inf, 0/0 and overflow are the semantics under test.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

PROFILE = fuzz_settings(ci_examples=150)

TYPES = CAST_TYPES
OPTIONS = [(m, t) for m in CASTING_MODES for t in TYPES]

CTX = Context()
for _d in (Builtin, Func, nt.NT):
    CTX.load_dialect(_d)


# -- helpers ----------------------------------------------------------------------------------


def parse(text: str):
    m = parse_module(CTX, text, "fuzz.mlir")
    verify_module(m)
    return m


def generic(m) -> str:
    out = io.StringIO()
    Printer(stream=out, print_generic_format=True).print_op(m)
    return out.getvalue()


def main_func(m) -> FuncOp:
    return next(op for op in m.ops if isinstance(op, FuncOp))


def apply(p, m, what: str):
    """Apply p, verify, and check that a second run changes nothing."""
    p.apply(Context(), m)
    verify_module(m)
    once = str(m)
    again = m.clone()
    p.apply(Context(), again)
    verify_module(again)
    assert str(again) == once, f"{what}: {p.name} is not idempotent"
    return m


def run(m, g: Graph, base: Path) -> list[dict[str, np.ndarray]]:
    ref = Reference(m, base)
    return [ref.run(f) for f in g.feeds]


def assert_same_outputs(before, after, what: str, transform=None) -> None:
    for fb, fa in zip(before, after):
        for k in fb:
            want = transform(k, fb[k]) if transform else fb[k]
            assert same_bits(want, fa[k]), f"{what}: output {k} changed bits\n{want!r}\n{fa[k]!r}"


def roundtrip(m, what: str) -> None:
    text = str(m)
    assert str(parse(text)) == text, f"{what}: custom print -> parse -> print differs"
    g = generic(m)
    back = parse(g)
    assert generic(back) == g, f"{what}: generic print -> parse -> print differs"
    assert str(back) == text, f"{what}: generic parse -> custom print differs"


def retyped(t, elt):
    return (
        TensorType(elt, t.get_shape())
        if isinstance(t, TensorType) and is_float(t.element_type)
        else t
    )


def snapshot(m) -> dict:
    """Each op (by identity) -> what auto-cast may not change on it."""
    snap = {}
    for op in main_func(m).body.block.ops:
        snap[op] = (
            list(op.operands),
            [r.type for r in op.results],
            {k: str(v) for k, v in op.properties.items()},
            {k: str(v) for k, v in op.attributes.items()},
        )
    return snap


def check_untouched(m, snap: dict, mode: str, t: str, what: str) -> None:
    """matmult changes no non-MATMUL op (a MATMUL op only gets cast operands and acc = f32);
    no mode changes an integer or bool value, or inserts a cast touching one."""
    mm = role_type("matmul", t)
    ops = list(main_func(m).body.block.ops)
    assert all(op.parent is not None for op in snap), f"{what}: auto-cast erased an op"
    for op in ops:
        if op not in snap:  # inserted by auto-cast
            assert isinstance(op, nt.CastOp), f"{what}: auto-cast inserted {op.name}"
            assert is_float(op.input.type.element_type) and is_float(op.result.type.element_type), (
                f"{what}: auto-cast inserted a cast touching an integer/bool tensor"
            )
            if mode == "matmult":
                assert op.result.type.element_type == mm
                assert all(nt.op_class(u.operation) is nt.MatmulClass for u in op.result.uses), (
                    f"{what}: matmult inserted a cast feeding a non-MATMUL op"
                )
            continue
        operands, results, props, _attrs = snap[op]
        # integer / bool values keep their producer, type and every use
        for i, (old, new) in enumerate(zip(operands, op.operands)):
            if not is_float(old.type.element_type):
                assert new is old and new.type == old.type, (
                    f"{what}: {op.name} int operand {i} touched"
                )
        for r, rt in zip(op.results, results):
            if not is_float(rt.element_type):
                assert r.type == rt, f"{what}: {op.name} integer/bool result retyped"
        if mode != "matmult":
            continue
        if nt.op_class(op) is nt.MatmulClass:
            assert [r.type for r in op.results] == results, (
                f"{what}: matmult changed a contraction's result"
            )
            for i, (old, new) in enumerate(zip(operands, op.operands)):
                if new is not old:
                    assert i < 2 and isinstance(new.owner, nt.CastOp) and new.owner.input is old
                    assert new.type.element_type == mm
            assert {k: v for k, v in props.items() if k != "acc"} == {
                k: str(v) for k, v in op.properties.items() if k != "acc"
            }
        else:
            now = (
                list(op.operands),
                [r.type for r in op.results],
                {k: str(v) for k, v in op.properties.items()},
                {k: str(v) for k, v in op.attributes.items()},
            )
            assert now == snap[op], f"{what}: matmult changed non-MATMUL op {op.name}"


def cast_io_signature(orig, canon, mode: str, t: str):
    """The low-precision signature docs/design.md defines for preserve-io{enabled=false}, from the
    framework signature `orig` and the module after auto-cast + canonicalize-casts."""
    mm = role_type("matmul", t)
    if mode == "all":  # the T signature auto-cast made stays
        sig = main_func(canon).function_type
        return list(sig.inputs.data), list(sig.outputs.data)
    outs = list(orig.outputs.data)
    ins = []
    for arg, x in zip(main_func(canon).body.block.args, orig.inputs.data):
        users = [u.operation for u in arg.uses]
        targets = {u.result.type.element_type for u in users if isinstance(u, nt.CastOp)}
        lowered = (
            isinstance(x, TensorType)
            and x.element_type == f32
            and users
            and all(
                isinstance(u, nt.CastOp)
                and not (u.saturate and u.result.type.element_type == f8E4M3)
                for u in users
            )  # saturate matters only to fp8
            and len(targets) == 1
            and is_float(elt := next(iter(targets)))
        )
        if lowered and elt == mm:
            ins.append(TensorType(elt, x.get_shape()))
        else:
            ins.append(x)
    return ins, outs


# -- the property -----------------------------------------------------------------------------


def check_graph(g: Graph, base: Path) -> None:
    np.savez(base / WEIGHTS_FILE, **g.weights)
    text = g.text()
    m0 = parse(text)
    assert str(m0) == text
    roundtrip(m0, "input")
    framework = main_func(m0).function_type
    base_outs = run(m0, g, base)

    # none: auto-cast{mode=none} is a no-op for every type; the CLI's --auto-cast=none prints
    # what a no-pass run prints.
    for t in TYPES:
        assert str(apply(AutoCastPass(mode="none", type=t), parse(text), "none")) == text
    src = base / "g.mlir"
    src.write_text(text)
    for args, out in (([], "plain.mlir"), (["--auto-cast=none"], "none.mlir")):
        with pytest.raises(SystemExit) as e:
            neuron_opt_cli.main([str(src), "-o", str(base / out), *args])
        assert e.value.code == 0
    plain = (base / "plain.mlir").read_text()
    assert plain == (base / "none.mlir").read_text() == text + "\n"

    # canonicalize-casts on the raw graph: its user casts (chains, moves, constants, weights).
    raw = apply(CanonicalizeCastsPass(), parse(text), "raw")
    assert main_func(raw).function_type == framework
    assert_same_outputs(base_outs, run(raw, g, base), "canonicalize-casts on the input")

    for mode, t in OPTIONS:
        what = f"{mode}-{t}"
        m = parse(text)
        snap = snapshot(m)
        apply(AutoCastPass(mode=mode, type=t), m, what)
        check_untouched(m, snap, mode, t, what)
        cast_outs = run(m, g, base)
        apply(CanonicalizeCastsPass(), m, what)
        sig = main_func(m).function_type
        act = role_type("act", t)
        # all retypes f32 values only (to T, or they stay f32 where a user's own cast to
        # another type reads them); values the model has in another type stay.
        assert (
            sig == framework
            if mode == "matmult"
            else all(
                new == old or (old.element_type == f32 and new == retyped(old, act))
                for new, old in zip(
                    (*sig.inputs.data, *sig.outputs.data),
                    (*framework.inputs.data, *framework.outputs.data),
                )
            )
        ), what
        # Integer/bool values survive the passes (dead casts and constants aside).
        for op, (_, results, _, _) in snap.items():
            if any(not is_float(r.element_type) for r in results) and not isinstance(
                op, (nt.CastOp, nt.ConstantOp, nt.WeightOp)
            ):
                assert op.parent is not None and [r.type for r in op.results] == results, (
                    f"{what}: {op.name} with an integer/bool result was changed"
                )
        canon_outs = run(m, g, base)
        assert_same_outputs(cast_outs, canon_outs, f"{what}: canonicalize-casts")
        for preserve in (True, False):
            w = f"{what}{'' if preserve else '+cast-io'}"
            p = m.clone()
            apply(PreserveIOPass(enabled=preserve), p, w)
            sig = main_func(p).function_type
            if preserve:
                assert sig == framework, f"{w}: signature {sig} != framework {framework}"
                out_types = dict(
                    zip(Reference(p).output_names, (x.element_type for x in framework.outputs.data))
                )
                assert_same_outputs(
                    canon_outs,
                    run(p, g, base),
                    f"{w}: preserve-io",
                    transform=lambda k, a: round_to(a, out_types[k]),
                )
            else:
                ins, outs = cast_io_signature(framework, m, mode, t)
                assert list(sig.outputs.data) == outs, f"{w}: outputs {sig.outputs} != {outs}"
                assert list(sig.inputs.data) == ins, f"{w}: inputs {sig.inputs} != {ins}"
            assert "nt.io_types" not in main_func(p).attributes
            # Outputs computed from integers/bools alone come out bit for bit.
            outs_p = run(p, g, base)
            for k in g.int_outputs:
                for fb, fa in zip(base_outs, outs_p):
                    assert same_bits(fb[k], fa[k]), f"{w}: integer output {k} changed"
            # The pipeline is these three passes, in this order.
            assert str(run_cast_pipeline(parse(text), mode, t, preserve)) == str(p), (
                f"{w}: pipeline"
            )
            roundtrip(p, w)


@PROFILE
@given(g=graphs())
def test_fuzzed_graphs_keep_the_pipeline_invariants(g, base_dir, progress):
    check_graph(g, base_dir)
    for label in sorted(_coverage(g)):
        event(label)  # pytest --hypothesis-show-statistics (make fuzz shows it)
    progress()


def _coverage(g: Graph) -> set[str]:
    """What a graph exercised: its op classes, ops, and integer/bool or special-value data."""
    ops = [op for op in g.module.walk() if op.name.startswith("nt.")]
    labels = {f"class {cls.name}" for op in ops if (cls := nt.op_class(op)) is not None}
    labels |= {f"op {op.name}" for op in ops}
    if any(not is_float(r.type.element_type) for op in ops for r in op.results):
        labels.add("integer/bool tensors")
    if any(
        not np.all(np.isfinite(np.asarray(op.to_array(), np.float64)))
        for op in ops
        if isinstance(op, nt.ConstantOp) and is_float(op.result.type.element_type)
    ):
        labels.add("inf/NaN constants")
    return labels

"""Precision plans: ordered rules that set the precision of the ops they match, read by
auto-cast{plan=FILE}.

A plan is a TOML file of `[[rule]]` tables (docs/precision-plan.md):

    [[rule]]
    name = "softmax and norms in fp32"         # optional: how reports and warnings name it
    op_type = ["Softmax", "LayerNormalization"]
    precision = "fp32"

Match keys, each a string or a list of strings (a key matches when one of its strings does;
a rule matches an op when every key it gives matches):
  node        ONNX node names, shell globs (`/encoder/layer.0/*`)
  node_regex  ONNX node names, Python regular expressions (searched, not anchored)
  op_type     ONNX op types (`Softmax`)
  nt_op       nt op names (`softmax` or `nt.softmax`)
  op_class    op classes: MATMUL, FP32, FOLLOW, MOVE
precision: fp32, bf16, fp16, tf32, fp8_e4m3 or keep. The first rule that matches an op decides
it; ops no rule matches follow --auto-cast. Imported ops know their ONNX node (a NameLoc);
ops read from IR text match only nt_op and op_class.

Scaled fp8 (with precision fp8_e4m3, on contractions): `input_amax` (a number: the largest
|value| of the first operand, per tensor) and `weight_amax` (a number, or a list with one per
output channel of the second operand), optionally `margin` (default 1). Each operand is
multiplied by the power of two scale = 2^floor(log2(240 / (margin * amax))) before its
saturating cast, and the contraction undoes both scales on its fp32 result (`fp8_scale`).
`neuron-cc calibrate` writes such rules.

`--op-block-list A,B` and `--node-block-list a,b` (onnxruntime's spellings) are rules that
keep those op types / node names in fp32, placed before the file's rules.
"""

from __future__ import annotations

import fnmatch
import glob
import json
import math
import re
import tomllib
from dataclasses import dataclass, field

from xdsl.ir import Operation

from neuron_opt.diagnostics import CompileError, onnx_node_of
from neuron_opt.dialects import nt
from neuron_opt.dialects.types import FP8_MAX
from neuron_opt.options import CAST_TYPES

PRECISIONS = ("fp32", *CAST_TYPES, "keep")
MATCH_KEYS = ("node", "node_regex", "op_type", "nt_op", "op_class")
SCALE_KEYS = ("input_amax", "weight_amax", "margin")
_SCALE_EXP = 62  # |log2 scale| <= 62: the undo factor 1/(s_in * s_w) stays a normal fp32


def fp8_scale(amax: float, margin: float = 1.0) -> float:
    """The power of two that maps |x| <= amax into E4M3's range with `margin` to spare: the
    largest 2^e with margin * amax * 2^e <= 240 (1 for amax = 0). A power of two, because
    multiplying by one is exact: the scaled cast rounds once and the unscale is exact, and
    E4M3's relative precision is the same in every binade, so the exact ratio would gain no
    precision, only up to 2x of headroom at the top."""
    if amax <= 0:
        return 1.0
    e = math.frexp(FP8_MAX / (margin * amax))[1] - 1  # floor(log2(r)) for r > 0
    return math.ldexp(1.0, max(-_SCALE_EXP, min(_SCALE_EXP, e)))


_CLASS_NAMES = tuple(c.name for c in nt.OP_CLASSES)


@dataclass(frozen=True)
class PlanRule:
    label: str  # `rule 2 'norms'` or `--op-block-list entry 'Softmax'`
    where: str  # `plan.toml:7`, or "" for a block-list entry
    precision: str
    node: tuple[str, ...] = ()
    node_regex: tuple[re.Pattern, ...] = ()
    op_type: tuple[str, ...] = ()
    nt_op: tuple[str, ...] = ()
    op_class: tuple[str, ...] = ()
    input_amax: float | None = None  # scaled fp8: the first operand's |max|, per tensor
    weight_amax: float | tuple[float, ...] | None = None  # per tensor, or per output channel
    margin: float = 1.0

    @property
    def scaled(self) -> bool:
        return self.input_amax is not None or self.weight_amax is not None

    def matches(self, op: Operation, node: tuple[str, str] | None) -> bool:
        name, op_type = node if node is not None else (None, None)
        if self.node and (name is None or not any(fnmatch.fnmatchcase(name, g) for g in self.node)):
            return False
        if self.node_regex and (name is None or not any(r.search(name) for r in self.node_regex)):
            return False
        if self.op_type and op_type not in self.op_type:
            return False
        if self.nt_op and op.name not in self.nt_op:
            return False
        cls = nt.op_class(op)
        if self.op_class and (cls is None or cls.name not in self.op_class):
            return False
        return True

    def describe(self) -> str:
        return f"{self.label} at {self.where}" if self.where else self.label


@dataclass(frozen=True)
class PrecisionPlan:
    rules: tuple[PlanRule, ...] = ()

    def match(self, op: Operation) -> PlanRule | None:
        """The first rule that matches `op`, or None."""
        if not self.rules:
            return None
        node = onnx_node_of(op)
        return next((r for r in self.rules if r.matches(op, node)), None)


@dataclass
class _Lines:
    """Line numbers of `[[rule]]` headers and their keys in the TOML text (tomllib gives
    values, not positions), so that errors and warnings name the line."""

    headers: list[int] = field(default_factory=list)
    keys: list[dict[str, int]] = field(default_factory=list)
    top: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def scan(text: str) -> _Lines:
        lines = _Lines()
        header = re.compile(r"\s*\[\[\s*rule\s*\]\]")
        key = re.compile(r"\s*([A-Za-z0-9_-]+|\"[^\"]*\")\s*=")
        other_table = re.compile(r"\s*\[")
        current: dict[str, int] | None = None
        for n, line in enumerate(text.splitlines(), 1):
            if header.match(line):
                lines.headers.append(n)
                current = {}
                lines.keys.append(current)
            elif other_table.match(line):
                current = None
            elif m := key.match(line):
                k = m.group(1).strip('"')
                target = current if current is not None else lines.top
                target.setdefault(k, n)
        return lines

    def rule_line(self, i: int, key: str | None = None) -> int:
        if i >= len(self.headers):
            return self.top.get("rule", 1)
        return self.keys[i].get(key, self.headers[i]) if key else self.headers[i]


def load_plan(path: str) -> PrecisionPlan:
    """Read and check a plan file; any problem is one `PATH:LINE: error: ...`."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CompileError(e.strerror or "cannot read the file", path) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CompileError(f"not a text file: invalid UTF-8 at byte {e.start}", path) from None
    return parse_plan_text(text, path)


def parse_plan_text(text: str, path: str) -> PrecisionPlan:
    """A plan from its TOML text; `path` names it in errors."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        where = f"{path}:{m.group(1)}:{m.group(2)}" if m else path
        raise CompileError(f"invalid TOML: {msg}", where) from None
    return parse_plan(doc, path, _Lines.scan(text))


def parse_plan(doc: dict, path: str, lines: _Lines) -> PrecisionPlan:
    for key in doc:
        if key != "rule":
            raise CompileError(
                f"unknown key '{key}' (a plan holds [[rule]] tables only)",
                f"{path}:{lines.top.get(key, 1)}",
            )
    rules = doc.get("rule", [])
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise CompileError(
            "'rule' must be an array of tables ([[rule]])", f"{path}:{lines.top.get('rule', 1)}"
        )
    return PrecisionPlan(tuple(_rule(r, i, path, lines) for i, r in enumerate(rules)))


def _rule(r: dict, i: int, path: str, lines: _Lines) -> PlanRule:
    def fail(message: str, key: str | None = None):
        raise CompileError(f"rule {i + 1}: {message}", f"{path}:{lines.rule_line(i, key)}")

    for key in r:
        if key not in MATCH_KEYS + SCALE_KEYS + ("name", "precision"):
            fail(
                f"unknown key '{key}' (match keys: {', '.join(MATCH_KEYS)}; also name, precision, "
                f"{', '.join(SCALE_KEYS)})",
                key,
            )
    if "precision" not in r:
        fail(f"no precision (one of {', '.join(PRECISIONS)})")
    precision = r["precision"]
    if precision not in PRECISIONS:
        fail(f"precision must be one of {', '.join(PRECISIONS)}, found {precision!r}", "precision")
    if not any(k in r for k in MATCH_KEYS):
        fail(f"matches nothing: give at least one of {', '.join(MATCH_KEYS)}")
    name = r.get("name")
    if name is not None and not isinstance(name, str):
        fail("name must be a string", "name")
    values: dict[str, tuple[str, ...]] = {}
    for key in MATCH_KEYS:
        if key not in r:
            continue
        v = r[key]
        v = [v] if isinstance(v, str) else v
        if not isinstance(v, list) or not v or not all(isinstance(s, str) and s for s in v):
            fail(f"{key} must be a non-empty string or a list of them", key)
        values[key] = tuple(v)
    regexes = []
    for pattern in values.get("node_regex", ()):
        try:
            regexes.append(re.compile(pattern))
        except re.error as e:
            fail(f"node_regex {pattern!r}: {e}", "node_regex")
    nt_ops = tuple(s if s.startswith("nt.") else f"nt.{s}" for s in values.get("nt_op", ()))
    known = {op.name for op in nt.NT_OPS}
    for s in nt_ops:
        if s not in known:
            fail(f"nt_op: unknown op '{s}'", "nt_op")
    for s in values.get("op_class", ()):
        if s not in _CLASS_NAMES:
            fail(f"op_class must be one of {', '.join(_CLASS_NAMES)}, found {s!r}", "op_class")
    scales = _scale_keys(r, precision, fail)
    label = f"rule {i + 1}" + (f" '{name}'" if name else "")
    return PlanRule(
        label,
        f"{path}:{lines.rule_line(i)}",
        precision,
        values.get("node", ()),
        tuple(regexes),
        values.get("op_type", ()),
        nt_ops,
        values.get("op_class", ()),
        **scales,
    )


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _scale_keys(r: dict, precision: str, fail) -> dict:
    """input_amax, weight_amax and margin, checked (scaled fp8 only)."""
    out: dict = {}
    for key in SCALE_KEYS:
        if key not in r:
            continue
        if precision != "fp8_e4m3":
            fail(f'{key} applies to precision "fp8_e4m3" only, found {precision!r}', key)
        v = r[key]
        if key == "margin":
            if not _number(v) or v <= 0:
                fail(f"margin must be a positive number, found {v!r}", key)
            out[key] = float(v)
        elif key == "weight_amax" and isinstance(v, list):
            if not v or not all(_number(x) and x >= 0 for x in v):
                fail(
                    "weight_amax must be a number >= 0 or a non-empty list of them (one per "
                    "output channel)",
                    key,
                )
            out[key] = tuple(float(x) for x in v)
        elif not _number(v) or v < 0:
            fail(f"{key} must be a finite number >= 0, found {v!r}", key)
        else:
            out[key] = float(v)
    if "margin" in out and "input_amax" not in out and "weight_amax" not in out:
        fail("margin needs input_amax or weight_amax", "margin")
    return out


def block_list_rules(
    op_types: tuple[str, ...], node_names: tuple[str, ...]
) -> tuple[PlanRule, ...]:
    """onnxruntime's op_block_list / node_block_list: those ops stay fp32 (a rule per entry,
    so that a misspelt entry gets its own warning)."""
    return tuple(
        [PlanRule(f"--op-block-list entry '{t}'", "", "fp32", op_type=(t,)) for t in op_types]
        + [
            PlanRule(f"--node-block-list entry '{n}'", "", "fp32", node=(glob.escape(n),))
            for n in node_names
        ]
    )  # exact names, not globs


def build_plan(
    path: str, op_types: tuple[str, ...] = (), node_names: tuple[str, ...] = ()
) -> PrecisionPlan:
    """The block lists' rules first, then the file's (when a path is given)."""
    file_rules = load_plan(path).rules if path else ()
    return PrecisionPlan(block_list_rules(op_types, node_names) + file_rules)


def _toml_value(v) -> str:
    if isinstance(v, str):
        # A TOML basic string: JSON's escapes are TOML's, but for DEL, which TOML wants escaped
        # (and non-ASCII stays as it is: JSON's surrogate-pair escapes are not valid TOML).
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def format_plan(rules: list[dict], comment: str = "") -> str:
    """A plan file's text: one `[[rule]]` table per dict (keys as in the file), in order."""
    out = [f"# {line}".rstrip() for line in comment.splitlines()]
    for r in rules:
        out += ["", "[[rule]]"] + [f"{k} = {_toml_value(v)}" for k, v in r.items()]
    return "\n".join(out).lstrip("\n") + "\n"

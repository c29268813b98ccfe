"""What auto-cast decided, per op, for --cast-report: a pass never prints; drivers print the
text to stderr and write the JSON (never into the IR).

Each op is named as the user knows it: its ONNX node and op type when it was imported (the
node's NameLoc), else its `file:line:col`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from xdsl.ir import Attribute, Operation

from neuron_opt.diagnostics import location_of, onnx_node_of, printable
from neuron_opt.dialects import nt
from neuron_opt.dialects.types import type_name
from neuron_opt.outputs import atomic_output
from neuron_opt.passes.precision_plan import PlanRule


@dataclass
class Decision:
    where: str | None  # `file:line:col` or `model.onnx: node NAME (OpType)`
    op: str  # the nt op
    node: str | None  # the ONNX node name
    op_type: str | None  # the ONNX op type
    decision: str  # `bf16`, `f8E4M3, result f32`, `f32`, or `kept`
    precision: str | None  # the element type the op writes after the pass (None: unchanged)
    converted: bool
    reason: str  # the policy, or the plan rule that decided

    def line(self) -> str:
        if self.decision == "kept":
            what = f"kept ({self.reason})"
        else:
            verb = "cast to" if self.converted else "kept"
            what = f"{verb} {self.decision} ({self.reason})"
        return printable(f"{self.where or '<inline>'}: {self.op}: {what}")

    def to_json(self) -> dict:
        return {
            k: getattr(self, k)
            for k in (
                "node",
                "op_type",
                "op",
                "where",
                "decision",
                "precision",
                "converted",
                "reason",
            )
        }


@dataclass
class CastReport:
    rules: tuple[PlanRule, ...] = ()
    decisions: list[Decision] = field(default_factory=list)
    casts: int = 0
    saturated: int = 0
    _matched: set[int] = field(default_factory=set)

    @property
    def float_ops(self) -> int:
        return len(self.decisions)

    @property
    def converted(self) -> int:
        return sum(d.converted for d in self.decisions)

    def decide(
        self,
        op: Operation,
        decision: str,
        precision: Attribute | None,
        converted: bool,
        reason: str,
    ) -> None:
        node = onnx_node_of(op)
        where = location_of(op)
        if where is None and isinstance(op, nt.WeightOp):
            where = f"@{op.sym_name.data}"  # an initializer: no node of its own
        self.decisions.append(
            Decision(
                where,
                op.name,
                node[0] if node else None,
                node[1] if node else None,
                decision,
                type_name(precision) if precision is not None else None,
                converted,
                reason,
            )
        )

    def matched(self, rule: PlanRule) -> None:
        self._matched.add(id(rule))

    def unmatched(self) -> list[PlanRule]:
        """Rules no op matched (each deserves a warning: a misspelt name or op type)."""
        return [r for r in self.rules if id(r) not in self._matched]

    def warnings(self) -> list[str]:
        return [
            printable(f"{r.where + ': ' if r.where else ''}warning: {r.label} matches no op")
            for r in self.unmatched()
        ]

    def summary(self) -> str:
        return (
            f"auto-cast: {self.converted} of {self.float_ops} float ops converted, "
            f"{self.casts} casts inserted, {self.saturated} constants saturated"
        )

    def lines(self) -> list[str]:
        return [d.line() for d in self.decisions] + [self.summary()]

    def to_json(self) -> dict:
        return {
            "ops": [d.to_json() for d in self.decisions],
            "float_ops": self.float_ops,
            "converted": self.converted,
            "casts_inserted": self.casts,
            "constants_saturated": self.saturated,
            "unmatched_rules": [{"rule": r.label, "where": r.where} for r in self.unmatched()],
        }


def merged(reports: list[CastReport]) -> CastReport:
    """Several runs (functions, --split-input-file chunks) as one report."""
    out = CastReport()
    for r in reports:
        out.rules += tuple(x for x in r.rules if x not in out.rules)
        out.decisions += r.decisions
        out.casts += r.casts
        out.saturated += r.saturated
        out._matched |= r._matched
    return out


def write_report_json(path: str, reports: list[CastReport]) -> None:
    """The report as JSON, written atomically (`-` is stdout)."""
    with atomic_output(path) as f:
        json.dump(merged(reports).to_json(), f, indent=2)
        f.write("\n")

"""The search behind `neuron-cc tune`: a precision per ONNX node that makes the simulated
latency as small as it can within an error budget (docs/tune.md).

A candidate gives every tunable node (a unit) one precision of `precisions`; what it costs is
measured by `evaluate`, which takes a batch of candidates (evaluated side by side, wherever the
caller runs them) and returns, per candidate, its simulated latency, its worst output's rel L2
against fp32 and its count of non-finite outputs. A candidate is *feasible* when every output
is finite and its rel L2 is within the tolerance. Three phases:

1. uniform: every unit in one precision, for each precision, and every contraction in one
   precision with the rest in fp32 (the starting points, auto-cast's uniform options);
2. promote: when the fastest uniform candidate is infeasible and faster than every feasible
   one, the units `rank` puts first (largest error of their own) go to fp32, the first 1, 2, 4,
   ... of them, then a finer step between the last two counts; the fewest that make it
   feasible win;
3. demote: from the fastest feasible candidate, moves "set this group of units to precision p"
   are evaluated together, the groups first being the units of one ONNX op type. Moves that
   are feasible and faster are applied greedily, largest gain first (the prefixes of that
   order are evaluated together and the fastest feasible prefix is taken); a move that is
   faster but infeasible splits its group in two halves (graph order) that are tried next; a
   move that is not faster is dropped. The round repeats until no move is left (or the
   evaluation budget is spent).

The search never depends on the order evaluations finish in: a batch's results come back in
its order, and every tie is broken by a candidate's position, so the same measurements give
the same plan whatever ran them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# The precisions searched; contraction-only ones mean bf16 elsewhere (as under auto-cast, fp8
# is for TensorE inputs only). Scaled fp8 is fp8_e4m3 with calibrated scales.
SCALED_FP8 = "fp8_e4m3_scaled"
PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "fp16", "bf16", "fp8_e4m3", SCALED_FP8)
CONTRACTION_ONLY: dict[str, str] = {"fp8_e4m3": "bf16", SCALED_FP8: "bf16"}
FP32 = "fp32"
DEFAULT_BUDGET = 300
PREFIXES = 8  # how many prefixes of the greedy order are tried in one batch
REFINE = 7  # counts tried between the last infeasible and the first feasible promotion


@dataclass(frozen=True)
class Unit:
    """An ONNX node the plan sets (every nt op imported from it takes its precision)."""

    node: str
    op_type: str
    contraction: bool

    def allowed(self, precisions: Sequence[str]) -> tuple[str, ...]:
        return tuple(p for p in precisions if self.contraction or p not in CONTRACTION_ONLY)


@dataclass(frozen=True)
class Measure:
    """What one evaluation measured (`error`: why the candidate could not be evaluated)."""

    latency_us: float = float("inf")
    rel_l2: float = float("inf")
    non_finite: int = 0
    error: str | None = None


Assignment = tuple[str, ...]  # a precision per unit, in unit order


@dataclass(frozen=True)
class Point:
    """An evaluated candidate, in evaluation order (`index`), and the phase that made it."""

    index: int
    assignment: Assignment
    measure: Measure
    phase: str
    label: str = ""

    def feasible(self, tolerance: float) -> bool:
        m = self.measure
        return m.error is None and m.non_finite == 0 and m.rel_l2 <= tolerance

    def key(self) -> tuple:
        """Faster first, then smaller error, then earlier."""
        return (self.measure.latency_us, self.measure.rel_l2, self.index)


@dataclass
class Result:
    best: Point | None  # None: no candidate is feasible (not even fp32)
    points: list[Point]  # every evaluated candidate, in evaluation order
    start: Point | None  # where the demote phase started
    rounds: int = 0
    budget_spent: bool = False


@dataclass
class _Search:
    units: Sequence[Unit]
    evaluate: Callable[[list[Assignment], str], list[Measure]]
    tolerance: float
    precisions: Sequence[str]
    budget: int
    points: list[Point] = field(default_factory=list)
    seen: dict[Assignment, Point] = field(default_factory=dict)

    def run(self, batch: list[tuple[Assignment, str]], phase: str) -> list[Point | None]:
        """Evaluate the (assignment, label) pairs not seen yet, as one batch; the point of
        every pair, in order (None: not evaluated, the budget is spent)."""
        new: list[tuple[Assignment, str]] = []
        for a, label in batch:
            if a not in self.seen and a not in dict(new):
                new.append((a, label))
        if phase != "uniform":  # the starting points are always evaluated
            new = new[: max(0, self.budget - len(self.points))]
        if new:
            for (a, label), m in zip(new, self.evaluate([a for a, _ in new], phase)):
                p = Point(len(self.points), a, m, phase, label)
                self.points.append(p)
                self.seen[a] = p
        return [self.seen.get(a) for a, _ in batch]

    @property
    def spent(self) -> bool:
        return len(self.points) >= self.budget

    def uniform(self, p: str) -> Assignment:
        return tuple(
            p if p in u.allowed(self.precisions) else CONTRACTION_ONLY[p] for u in self.units
        )

    def contractions(self, p: str) -> Assignment:
        return tuple(p if u.contraction else FP32 for u in self.units)

    def with_units(self, a: Assignment, units: Sequence[int], p: str) -> Assignment:
        out = list(a)
        for i in units:
            out[i] = p if p in self.units[i].allowed(self.precisions) else CONTRACTION_ONLY[p]
        return tuple(out)


def search(
    units: Sequence[Unit],
    evaluate: Callable[[list[Assignment], str], list[Measure]],
    tolerance: float,
    rank: Callable[[str], list[int]],
    precisions: Sequence[str] = PRECISIONS,
    budget: int = DEFAULT_BUDGET,
) -> Result:
    """The fastest feasible assignment found (docs/tune.md). `evaluate(batch, phase)` measures
    a batch of assignments; `rank(p)` orders the unit indices, worst first, by the error each
    adds on its own when every unit is in precision p."""
    s = _Search(units, evaluate, tolerance, precisions, budget)
    uniform = [(s.uniform(p), f"uniform {p}") for p in precisions]
    mixed = [(s.contractions(p), f"contractions {p}") for p in precisions if p != FP32]
    s.run(uniform + mixed, "uniform")
    best = min((p for p in s.points if p.feasible(tolerance)), key=Point.key, default=None)
    # The fastest uniform candidate, and its precision.
    fastest, top = min(
        ((s.seen[a], p) for (a, _), p in zip(uniform, precisions)), key=lambda t: t[0].key()
    )
    if not fastest.feasible(tolerance) and (best is None or fastest.key() < best.key()):
        promoted = _promote(s, fastest, rank(top))
        if promoted is not None and (best is None or promoted.key() < best.key()):
            best = promoted
    if best is None:
        return Result(None, s.points, None, 0, s.spent)
    start = best
    best, rounds = _demote(s, best)
    return Result(best, s.points, start, rounds, s.spent)


def _promote(s: _Search, top: Point, order: list[int]) -> Point | None:
    """The fewest of the first units of `order` in fp32 that make `top` feasible."""
    n = len(order)
    counts = sorted({min(n, 1 << k) for k in range(n.bit_length() + 1)})

    def batch(ks):
        return [(s.with_units(top.assignment, order[:k], FP32), f"promote {k}") for k in ks]

    got = {k: p for k, p in zip(counts, s.run(batch(counts), "promote")) if p is not None}
    ok = [k for k in counts if k in got and got[k].feasible(s.tolerance)]
    if not ok:
        return None
    k = ok[0]
    below = max((c for c in counts if c < k), default=0)
    if k - below > 1:
        step = max(1, (k - below) // (REFINE + 1))
        finer = list(range(below + step, k, step))[:REFINE]
        got.update((c, p) for c, p in zip(finer, s.run(batch(finer), "promote")) if p is not None)
        k = min(c for c, p in got.items() if p.feasible(s.tolerance))
    return got[k]


def _groups(units: Sequence[Unit]) -> list[tuple[int, ...]]:
    """Units by ONNX op type, op types in order of first appearance, units in graph order."""
    by_type: dict[str, list[int]] = {}
    for i, u in enumerate(units):
        by_type.setdefault(u.op_type, []).append(i)
    return [tuple(g) for g in by_type.values()]


def _demote(s: _Search, current: Point) -> tuple[Point, int]:
    # A contraction-only precision is a move only for groups holding a contraction.
    moves = [
        (g, p)
        for g in _groups(s.units)
        for p in s.precisions
        if any(p in s.units[i].allowed(s.precisions) for i in g)
    ]
    rounds = 0
    while moves and not s.spent:
        rounds += 1
        moves = list(
            dict.fromkeys(
                m for m in moves if s.with_units(current.assignment, *m) != current.assignment
            )
        )
        if not moves:
            break
        tried = s.run(
            [(s.with_units(current.assignment, g, p), f"{p} x{len(g)}") for g, p in moves], "demote"
        )
        nxt: list[tuple[tuple[int, ...], str]] = []
        gains = []
        for m, pt in zip(moves, tried):
            if pt is None or pt.measure.latency_us >= current.measure.latency_us:
                continue  # not faster, feasible or not: dropped
            if pt.feasible(s.tolerance):
                gains.append((pt.key(), m, pt))
            elif len(m[0]) > 1:  # faster but too inaccurate: try each half
                half = len(m[0]) // 2
                nxt += [(m[0][:half], m[1]), (m[0][half:], m[1])]
        if gains:
            gains.sort(key=lambda t: t[0])
            # Prefixes of the greedy order (largest gain first) over moves on disjoint units.
            chosen, used = [], set()
            for _, (g, p), _ in gains:
                if used.isdisjoint(g) and len(chosen) < PREFIXES:
                    chosen.append((g, p))
                    used.update(g)
            prefixes, a = [], current.assignment
            for g, p in chosen:
                a = s.with_units(a, g, p)
                prefixes.append((a, f"greedy {len(prefixes) + 1}"))
            # The single best move is the first prefix; the others are evaluated together.
            done = [gains[0][2], *s.run(prefixes[1:], "demote")]
            k, current = min(
                (
                    (k, pt)
                    for k, pt in enumerate(done, 1)
                    if pt is not None and pt.feasible(s.tolerance)
                ),
                key=lambda t: t[1].key(),
            )
            nxt += [m for _, m, _ in gains if m not in chosen[:k]]  # tried again from the new point
        moves = nxt
    return current, rounds

"""The tuner's search (neuron_opt/precision_search.py) on a synthetic cost model: latency and
error add up over units, so the best plan is known, and the search's properties can be checked
without compiling anything."""

import itertools

from neuron_opt.precision_search import PRECISIONS, Measure, Unit, search

# Per precision: time per unit, and error per unit of sensitivity.
TIME = {"fp32": 4.0, "tf32": 3.5, "fp16": 2.0, "bf16": 2.0, "fp8_e4m3": 1.0, "fp8_e4m3_scaled": 1.1}
ERR = {
    "fp32": 0.0,
    "tf32": 1e-4,
    "fp16": 5e-4,
    "bf16": 4e-3,
    "fp8_e4m3": 3e-2,
    "fp8_e4m3_scaled": 6e-3,
}


def model(n_units: int, sensitive: dict[int, float], overflow_fp16: set[int] = frozenset()):
    """n units, every third a contraction; `sensitive` scales a unit's error; a unit of
    `overflow_fp16` makes the output non-finite in fp16."""
    units = [Unit(f"/n{i}", "MatMul" if i % 3 == 0 else "Add", i % 3 == 0) for i in range(n_units)]
    calls = []

    def measure(a) -> Measure:
        lat = sum(TIME[p] for p in a)
        err = sum(sensitive.get(i, 1.0) * ERR[p] for i, p in enumerate(a))
        bad = sum(1 for i, p in enumerate(a) if p == "fp16" and i in overflow_fp16)
        return Measure(lat, err, bad)

    def evaluate(batch, phase):
        calls.append((phase, len(batch)))
        return [measure(a) for a in batch]

    def rank(p):  # worst own error first
        return sorted(range(n_units), key=lambda i: (-sensitive.get(i, 1.0) * ERR[p], i))

    return units, evaluate, rank, measure, calls


def test_every_plan_found_is_feasible_and_at_least_as_fast_as_every_feasible_uniform_one():
    for tol in (1e-3, 5e-3, 2e-2, 1e-1):
        units, evaluate, rank, measure, _ = model(9, {0: 3.0, 4: 10.0})
        r = search(units, evaluate, tol, rank)
        assert r.best is not None and r.best.feasible(tol)
        uniform = [
            measure(
                tuple(p if (u.contraction or not p.startswith("fp8")) else "bf16" for u in units)
            )
            for p in PRECISIONS
        ]
        ok = [m.latency_us for m in uniform if m.non_finite == 0 and m.rel_l2 <= tol]
        assert r.best.measure.latency_us <= min(ok)


def test_the_search_matches_the_exhaustive_optimum_on_a_small_model():
    units, evaluate, rank, measure, _ = model(5, {1: 8.0, 3: 2.0})
    tol = 1.5e-2
    r = search(units, evaluate, tol, rank)
    best = min(
        (
            measure(a)
            for a in itertools.product(*(u.allowed(PRECISIONS) for u in units))
            if measure(a).rel_l2 <= tol and measure(a).non_finite == 0
        ),
        key=lambda m: m.latency_us,
    )
    assert r.best.measure.latency_us == best.latency_us


def test_a_sensitive_unit_is_promoted_and_the_rest_stay_low():
    # One unit 100x as sensitive: every uniform low precision fails, fp32 is slow.
    units, evaluate, rank, _, calls = model(12, {5: 100.0})
    r = search(units, evaluate, 2e-2, rank)
    a = r.best.assignment
    assert a[5] in ("fp32", "tf32")
    assert sum(p in ("fp16", "bf16", "fp8_e4m3", "fp8_e4m3_scaled") for p in a) == 11
    assert any(phase == "promote" for phase, _ in calls)


def test_fp16_overflow_is_never_chosen_where_it_overflows():
    units, evaluate, rank, _, _ = model(6, {}, overflow_fp16={2})
    r = search(units, evaluate, 1e-3, rank)
    assert r.best.assignment[2] != "fp16" and r.best.measure.non_finite == 0


def test_the_same_measurements_give_the_same_plan_and_batches():
    runs = []
    for _ in range(2):
        units, evaluate, rank, _, calls = model(10, {3: 20.0, 7: 4.0}, {1})
        r = search(units, evaluate, 1e-2, rank)
        runs.append((r.best.assignment, [p.assignment for p in r.points], calls))
    assert runs[0] == runs[1]


def test_no_candidate_is_evaluated_twice_and_the_budget_holds():
    units, evaluate, rank, _, _calls = model(15, {2: 30.0, 9: 5.0})
    r = search(units, evaluate, 1e-2, rank, budget=20)
    assigned = [p.assignment for p in r.points]
    assert len(assigned) == len(set(assigned))
    assert len(r.points) <= 20 and r.budget_spent
    assert r.best.feasible(1e-2)


def test_nothing_feasible_gives_no_plan():
    units, evaluate, rank, _, _ = model(4, {}, overflow_fp16=set())
    r = search(units, evaluate, -1.0, rank)  # not even fp32's zero error is within it
    assert r.best is None and r.start is None


def test_contraction_only_precisions_fall_back_elsewhere():
    u = Unit("/add", "Add", False)
    assert "fp8_e4m3" not in u.allowed(PRECISIONS) and "fp8_e4m3_scaled" not in u.allowed(
        PRECISIONS
    )
    assert Unit("/mm", "MatMul", True).allowed(PRECISIONS) == PRECISIONS

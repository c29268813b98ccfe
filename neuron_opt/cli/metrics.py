"""Accuracy metrics of an auto-cast option's outputs against fp32 and onnxruntime.

Floats are compared normwise (docs/design.md "Comparisons and tolerances"): rel L2 = ||a-b|| / ||b||
and rel max abs = max|a-b| / max|b|, never an elementwise relative error. Non-finite values
count as equal when they match by position and sign (NaN matches NaN); a mismatch is an
infinite error. Range counts say how the low-precision type's range was hit.
"""

from __future__ import annotations

import numpy as np

from neuron_opt.dialects.types import AUTO_CAST_TYPES, max_finite

# Largest finite value per --auto-cast-type; `none` keeps f32.
TYPE_MAX = {"none": float(np.finfo(np.float32).max)} | {
    name: max_finite(elt) for name, elt in AUTO_CAST_TYPES.items()
}


def _f64(x) -> np.ndarray:
    # Every nt dtype (bf16, fp8, f16, ints) widens to float64 exactly enough for metrics.
    return np.asarray(x).astype(np.float64)


CHUNK = 1 << 22  # elements per pass: float64 temporaries of 32 MiB, not of a whole output


def f64_pieces(*xs):
    """Same-shape arrays flattened and widened to float64 a piece of CHUNK elements at a time
    (a 256 MB output widened whole, with its temporaries, took 3 GB); an output that fits one
    piece is one pass, computed exactly as a whole-array pass would."""
    flat = [np.asarray(x).reshape(-1) for x in xs]
    for i in range(0, max(flat[0].size, 1), CHUNK):
        yield [_f64(f[i : i + CHUNK]) for f in flat]


def error_norms(a, b) -> dict[str, float]:
    """max abs, rel max abs and rel L2 of `a` against the reference `b`."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"shape {a.shape} vs {b.shape}")
    max_abs = ref_max = sq = ref_sq = 0.0
    for pa, pb in f64_pieces(a, b):
        same = (pa == pb) | (np.isnan(pa) & np.isnan(pb))
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.where(same, 0.0, np.abs(pa - pb))
        diff = np.where(np.isnan(diff), np.inf, diff)  # e.g. inf vs finite gives nan: a mismatch
        ref = np.where(np.isfinite(pb), pb, 0.0)  # the reference's scale from its finite values
        if diff.size:
            max_abs = max(max_abs, float(diff.max()))
            ref_max = max(ref_max, float(np.abs(ref).max()))
        with np.errstate(over="ignore", invalid="ignore"):
            sq += float(np.sum(diff * diff))
        ref_sq += float(ref.dot(ref))  # what np.linalg.norm computes before its square root
    return {
        "max_abs": max_abs,
        "rel_max_abs": _ratio(max_abs, ref_max),
        "rel_l2": _ratio(float(np.sqrt(sq)), float(np.sqrt(ref_sq))),
    }


def _ratio(num: float, den: float) -> float:
    if den == 0.0:
        return 0.0 if num == 0.0 else float("inf")
    return num / den


def differing_share(a, b) -> float:
    """Share of elements that differ (NaN matches NaN)."""
    n = np.size(a)
    if not n:
        return 0.0
    same = 0
    for pa, pb in f64_pieces(a, b):
        same += int(np.count_nonzero((pa == pb) | (np.isnan(pa) & np.isnan(pb))))
    return float(1.0 - same / n)  # as bool.mean(): an exact count over the size


def agreement(got: dict, ref: dict) -> dict:
    """Per output of `ref`: the error norms of `got`'s and the share of differing elements
    (the simulator against the interpreter for the same option)."""
    out = {}
    for name, r in ref.items():
        e = error_norms(got[name], r)
        e["differing_share"] = differing_share(got[name], r)
        out[name] = e
    return out


def argmax_agreement(a, ref) -> float:
    """Share of rows (all but the last axis) whose argmax over the last axis matches `ref`'s."""
    a, ref = _f64(a), _f64(ref)
    rows_a = a.reshape(-1, a.shape[-1])
    rows_r = ref.reshape(-1, ref.shape[-1])
    if rows_a.shape[0] == 0 or rows_a.shape[1] == 0:
        return 1.0
    return float(np.mean(np.argmax(rows_a, axis=-1) == np.argmax(rows_r, axis=-1)))


def range_counts(out, ref32, cast_type: str) -> dict[str, int]:
    """inf/NaN in the option's output, and values that overflowed, underflowed or saturated
    against the fp32 reference, for the low-precision type `cast_type` (or `none`)."""
    tmax = TYPE_MAX[cast_type]
    counts: dict[str, int] = dict.fromkeys(
        ("inf", "nan", "overflowed", "underflowed", "saturated"), 0
    )
    for out, ref in f64_pieces(*np.broadcast_arrays(np.asarray(out), np.asarray(ref32))):
        mag_out, mag_ref = np.abs(out), np.abs(ref)
        saturated = (mag_out == tmax) & (mag_ref > tmax)
        # An inf or NaN where fp32 is finite overflowed somewhere on the way (the output itself
        # may be small: an intermediate beyond the type's max became inf); so did a saturated
        # value.
        over = np.isfinite(ref) & (~np.isfinite(out) | ((mag_ref > tmax) & (mag_out == tmax)))
        under = np.isfinite(ref) & (ref != 0) & (out == 0)
        counts["inf"] += int(np.isinf(out).sum())
        counts["nan"] += int(np.isnan(out).sum())
        counts["overflowed"] += int(over.sum())
        counts["underflowed"] += int(under.sum())
        counts["saturated"] += int(saturated.sum())
    return counts


# Output names that say "class scores"; Softmax and LogSoftmax make them too.
LOGIT_WORDS = ("logit", "prob", "score", "class")
LOGIT_OPS = ("Softmax", "LogSoftmax")


def looks_like_logits(name: str, ref32, producer: str | None) -> bool:
    """Whether arg-max agreement means something for an output: a float output (the fp32 run
    keeps the model's dtypes) with a last axis of at least 2, named like class scores (logits,
    probs, scores, class...) or made by Softmax/LogSoftmax."""
    ref32 = np.asarray(ref32)
    if ref32.dtype.kind != "f" and ref32.dtype.name not in ("bfloat16", "float8_e4m3"):
        return False
    if ref32.ndim == 0 or ref32.shape[-1] < 2:
        return False
    return producer in LOGIT_OPS or any(w in name.lower() for w in LOGIT_WORDS)


def output_metrics(out, ref32, ort, cast_type: str, logits: bool) -> dict:
    """Every metric of one output: `out` is the option's, `ref32` the interpreter's under
    `none`, `ort` onnxruntime's; arg-max agreement when `logits` (looks_like_logits)."""
    m = {
        "shape": list(np.shape(out)),
        "vs_fp32": error_norms(out, ref32),
        "vs_onnxruntime": error_norms(out, ort),
        "fp32_vs_onnxruntime": error_norms(ref32, ort),
        "argmax_agreement": argmax_agreement(out, ref32) if logits else None,
    }
    m.update(range_counts(out, ref32, cast_type))
    return m

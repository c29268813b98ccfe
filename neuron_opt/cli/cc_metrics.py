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


def error_norms(a, b) -> dict[str, float]:
    """max abs, rel max abs and rel L2 of `a` against the reference `b`."""
    a, b = _f64(a), _f64(b)
    if a.shape != b.shape:
        raise ValueError(f"shape {a.shape} vs {b.shape}")
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(same, 0.0, np.abs(a - b))
    diff = np.where(np.isnan(diff), np.inf, diff)  # e.g. inf vs finite gives nan: a mismatch
    ref = np.where(np.isfinite(b), b, 0.0)  # the reference's scale from its finite values
    max_abs = float(diff.max()) if diff.size else 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        l2 = float(np.sqrt(np.sum(diff * diff)))
    return {
        "max_abs": max_abs,
        "rel_max_abs": _ratio(max_abs, float(np.abs(ref).max()) if ref.size else 0.0),
        "rel_l2": _ratio(l2, float(np.linalg.norm(ref.ravel()))),
    }


def _ratio(num: float, den: float) -> float:
    if den == 0.0:
        return 0.0 if num == 0.0 else float("inf")
    return num / den


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
    out, ref = _f64(out), _f64(ref32)
    tmax = TYPE_MAX[cast_type]
    mag_out, mag_ref = np.abs(out), np.abs(ref)
    saturated = (mag_out == tmax) & (mag_ref > tmax)
    # An inf or NaN where fp32 is finite overflowed somewhere on the way (the output itself may
    # be small: an intermediate beyond the type's max became inf); so did a saturated value.
    over = np.isfinite(ref) & (~np.isfinite(out) | ((mag_ref > tmax) & (mag_out == tmax)))
    under = np.isfinite(ref) & (ref != 0) & (out == 0)
    return {
        "inf": int(np.isinf(out).sum()),
        "nan": int(np.isnan(out).sum()),
        "overflowed": int(over.sum()),
        "underflowed": int(under.sum()),
        "saturated": int(saturated.sum()),
    }


def output_metrics(out, ref32, ort, cast_type: str) -> dict:
    """Every metric of one output: `out` is the option's, `ref32` the interpreter's under
    `none`, `ort` onnxruntime's."""
    # Logits-like: a float output (the fp32 run keeps the model's own dtypes) of rank >= 2.
    logits = np.asarray(ref32).dtype.kind == "f" and np.ndim(out) >= 2
    m = {
        "shape": list(np.shape(out)),
        "vs_fp32": error_norms(out, ref32),
        "vs_onnxruntime": error_norms(out, ort),
        "fp32_vs_onnxruntime": error_norms(ref32, ort),
        "argmax_agreement": argmax_agreement(out, ref32) if logits else None,
    }
    m.update(range_counts(out, ref32, cast_type))
    return m


def json_safe(x):
    # Strict JSON has no inf/NaN: spell them as strings.
    if isinstance(x, float) and not np.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, list):
        return [json_safe(v) for v in x]
    return x

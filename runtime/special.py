"""GELU in float64, accurate over the whole float32 range; callers round the result once to
fp32. The reference interpreter and the simulator's ScalarE both use these, so they compute
the same values. erfc and expit avoid the cancellation of 1 + erf(z) and 1 + tanh(z) at
large negative x (in fp32, 1 + erf(-3.3) already keeps only a few correct bits)."""

from __future__ import annotations

import math

import numpy as np

_SQRT_HALF = math.sqrt(0.5)
_TANH_C = math.sqrt(2.0 / math.pi)


def scipy_special():
    # scipy.special costs ~0.7 s to import: only what uses erf-like functions pays it.
    import scipy.special

    return scipy.special


def gelu(x: np.ndarray) -> np.ndarray:
    """x * Phi(x) = 0.5 x erfc(-x / sqrt 2)."""
    return 0.5 * x * scipy_special().erfc(-x * _SQRT_HALF)


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """0.5 x (1 + tanh(z)) = x expit(2 z), z = sqrt(2/pi) (x + 0.044715 x^3)."""
    return x * scipy_special().expit(2.0 * _TANH_C * (x + 0.044715 * x**3))

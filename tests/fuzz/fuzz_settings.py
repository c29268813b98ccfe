"""hypothesis settings shared by the fuzz tests: profile `ci` (the default, bounded for CI) and
`long` (`make fuzz N=...`: NEURON_FUZZ_EXAMPLES examples, 10000 unless set)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

LONG = os.environ.get("NEURON_FUZZ_PROFILE", "ci") == "long"

_COMMON = dict(
    deadline=None,  # an example runs many pipelines and the interpreter: far beyond 200 ms
    database=None,  # reproducible from the printed blob; no .hypothesis/ in the shared tree
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
    print_blob=True,
)


def fuzz_examples(ci_examples: int) -> int:
    """NEURON_FUZZ_EXAMPLES if set, else 10000 under the long profile and `ci_examples` in CI."""
    return int(os.environ.get("NEURON_FUZZ_EXAMPLES", "10000" if LONG else str(ci_examples)))


def fuzz_settings(ci_examples: int) -> settings:
    """`ci_examples` examples in CI (NEURON_FUZZ_EXAMPLES overrides), derandomized so a CI run
    is reproducible and never fails by luck; the long profile's count under `make fuzz`, with
    fresh random draws each run (that is where new bugs are found)."""
    return settings(max_examples=fuzz_examples(ci_examples), derandomize=not LONG, **_COMMON)

"""Fixtures of the fuzz tests: a scratch folder per module, and the progress display that
`make fuzz` (the long profile) shows while a fuzz test runs."""

from __future__ import annotations

import tempfile
from contextlib import nullcontext
from pathlib import Path

import pytest
from fuzz_progress import FuzzProgress
from fuzz_settings import LONG, fuzz_examples


@pytest.fixture(scope="module")
def base_dir():
    with tempfile.TemporaryDirectory(prefix="nt-fuzz-") as d:
        yield Path(d)


@pytest.fixture(scope="module")
def progress(request):
    """A callable to call once per finished example: a no-op in CI, where the run is short."""
    if not LONG:
        yield lambda: None
        return
    capman = request.config.pluginmanager.getplugin("capturemanager")
    lifted = capman.global_and_fixture_disabled if capman is not None else nullcontext
    shown = FuzzProgress(request.module.__name__, fuzz_examples(0), lifted)
    yield shown.tick
    shown.close()

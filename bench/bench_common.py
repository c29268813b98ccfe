"""What the benchmark scripts share: loading a script from examples/ (not a package) and
writing the JSON results."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from neuron_opt.outputs import atomic_output

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def load_example(relpath: str):
    """Import examples/RELPATH as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location(Path(relpath).stem, ROOT / "examples" / relpath)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write_json(path: str | Path, data) -> None:
    """Results under bench/results/, written atomically: an interrupted benchmark leaves the
    previous results whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as f:
        f.write(json.dumps(data, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")

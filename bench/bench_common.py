"""What the benchmark scripts share: loading a script from examples/ (not a package) and
writing the JSON results."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_example(relpath: str):
    """Import examples/RELPATH as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location(Path(relpath).stem, ROOT / "examples" / relpath)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write_json(path: str | Path, data) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {path}")

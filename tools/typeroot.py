"""Write the installed package layout as a tree of links, for pyright.

pyproject's package-dir maps `neuron_opt.dialects` to the top-level folder `dialects/` (and so
on); Python finds those through the editable install's import hook, which pyright cannot follow.
Pyright reads the links instead (`extraPaths` in pyproject).
"""

import shutil
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(out: Path) -> None:
    package_dir = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ]
    shutil.rmtree(out, ignore_errors=True)
    top = package_dir.pop("neuron_opt")
    (out / "neuron_opt").mkdir(parents=True)
    for entry in (ROOT / top).iterdir():
        (out / "neuron_opt" / entry.name).symlink_to(entry)
    for package, folder in package_dir.items():
        link = out / package.replace(".", "/")
        if not link.exists():  # a nested package comes with its parent's link
            link.symlink_to(ROOT / folder)


if __name__ == "__main__":
    main(Path(sys.argv[1]))

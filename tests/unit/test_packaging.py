"""The package list in pyproject.toml matches the folders that hold .py files, and a plain
wheel (not only the editable install) carries and imports every package."""

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOT_PACKAGES = {"tests", "bench", "examples", "docs", "build", "tools", ".venv"}


def _config():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _package_folders() -> dict[str, Path]:
    """Every folder holding .py files, named as the package it maps to via package-dir."""
    dirs = _config()["package-dir"]
    found = {}
    for pkg, folder in dirs.items():
        base = ROOT / folder
        for py in base.rglob("*.py"):
            rel = py.parent.relative_to(base)
            if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
                continue
            name = ".".join((pkg, *rel.parts))
            found[name] = py.parent
    return found


def test_every_folder_with_python_is_a_listed_package():
    listed = set(_config()["packages"])
    folders = _package_folders()
    assert set(folders) == listed, (
        f"unlisted: {sorted(set(folders) - listed)}; listed but empty: {sorted(listed - set(folders))}"
    )
    for name, folder in folders.items():
        assert (folder / "__init__.py").is_file(), f"{name} has no __init__.py"


def test_top_level_folders_are_mapped():
    mapped = {Path(v).parts[0] for v in _config()["package-dir"].values()}
    for d in ROOT.iterdir():
        if (
            d.is_dir()
            and d.name not in NOT_PACKAGES
            and not d.name.startswith(".")
            and any(d.glob("*.py"))
        ):
            assert d.name in mapped, f"{d.name}/ holds Python but is not mapped to a package"


def test_wheel_installs_and_imports(tmp_path):
    out = tmp_path / "wheel"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("neuron_opt-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for pkg in _config()["packages"]:
        assert f"{pkg.replace('.', '/')}/__init__.py" in names, f"{pkg} missing from the wheel"
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    mods = ", ".join(_config()["packages"])
    code = f"import importlib, neuron_opt; [importlib.import_module(m) for m in '{mods}'.split(', ')]; print(neuron_opt.__file__)"
    # -I: isolated, so the editable install in this venv cannot satisfy the import.
    res = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); {code}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().startswith(str(target))

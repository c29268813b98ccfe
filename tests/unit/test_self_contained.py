"""Every reference in the repository resolves inside it: no tracked text file points at the
team's design notes outside the repo, and every page under docs/ that a file cites exists."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

# Escaped and bracketed so that this file does not match its own patterns.
OUTSIDE = re.compile(
    r"DESIGN\.md|shared[/]reference|\.\.[/]shared|casting\.md|xdsl-notes\.md"
    r"|neuroncore-v2\.md|\breference[/]lowering\.md"
)
DOC_PATH = re.compile(r"\bdocs/([\w.-]+\.md)\b")


def _tracked_text_files() -> list[tuple[str, str]]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    files = []
    for name in filter(None, listed.split("\0")):
        path = ROOT / name
        if not path.is_file():  # deleted in the work tree, not yet committed
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue
        try:
            files.append((name, data.decode()))
        except UnicodeDecodeError:
            continue
    return files


def test_no_reference_points_outside_the_repository():
    found = [
        f"{name}:{number}: {line.strip()}"
        for name, text in _tracked_text_files()
        for number, line in enumerate(text.splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not found, "references outside the repository (point into docs/):\n" + "\n".join(found)


def test_every_cited_doc_exists():
    missing = sorted(
        {
            f"{name}: docs/{doc}"
            for name, text in _tracked_text_files()
            for doc in DOC_PATH.findall(text)
            if not (ROOT / "docs" / doc).is_file()
        }
    )
    assert not missing, "cited docs that do not exist:\n" + "\n".join(missing)

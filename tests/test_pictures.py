"""python -m docs.pictures: its fast mode runs and writes real pictures; a state it cannot reach fails by name."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.browser


def _run(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_fast_mode_writes_the_readme_animation_and_the_lesson(tmp_path):
    r = _run(["-m", "docs.pictures", "--fast", "--out", str(tmp_path)])
    assert r.returncode == 0, r.stdout + r.stderr
    gif = Image.open(tmp_path / "maxpool-window.gif")
    assert gif.format == "GIF" and gif.n_frames >= 4  # at least MaxPool1d's four windows
    png = Image.open(tmp_path / "lesson.png")
    assert png.format == "PNG" and png.size == (1280, 800)
    for p in tmp_path.iterdir():
        assert p.stat().st_size < 1_000_000, p
    # nothing was written into the repository's own pictures
    assert "docs/images" not in r.stdout


def test_the_states_have_unique_names_and_files():
    r = _run(["-m", "docs.pictures", "--list"], timeout=120)
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines() if line.strip()]
    names = [row[0] for row in rows]
    files = [row[1] for row in rows]
    assert len(set(names)) == len(names) and len(set(files)) == len(files)
    assert {"animation", "lesson", "network-receptive-field", "layer-explained"} <= set(names)
    # every picture the README and the guide show is made by a state
    shown = set()
    for doc in (ROOT / "README.md", ROOT / "docs" / "guide.md"):
        shown |= set(re.findall(r"images/([\w.-]+\.(?:png|gif))", doc.read_text()))
    assert len(shown) >= 10
    assert shown <= set(files), shown - set(files)
    assert _run(["-m", "docs.pictures", "--only", "no-such-state"], timeout=120).returncode == 2


UNREACHABLE = """
import sys
from docs.pictures import DESKTOP, State, main

def unreachable(shot):
    shot.open()
    return shot.save("never.png", "#no-such-part")

sys.exit(main(sys.argv[1:], states=[State("no-such-part", "never.png", unreachable, DESKTOP)]))
"""


def test_a_state_that_cannot_be_reached_fails_by_name(tmp_path):
    r = _run(["-c", UNREACHABLE, "--out", str(tmp_path), "--timeout", "3"])
    assert r.returncode == 1
    assert "FAIL no-such-part" in r.stdout
    assert "no-such-part" in r.stderr  # the summary names it too
    assert not (tmp_path / "never.png").exists()

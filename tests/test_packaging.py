"""A built wheel (not an editable install) carries the question bank and finds it from anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", str(REPO),
                    "-w", str(out)], check=True, capture_output=True, timeout=300, cwd=out)
    return next(out.glob("xling-*.whl"))


def test_the_wheel_carries_every_suite(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"xling/_bank/{p.relative_to(REPO / 'prompts').as_posix()}"
                for p in (REPO / "prompts").rglob("*") if p.is_file()}
    assert expected and expected <= names


def test_installed_wheel_lists_suites_from_another_directory(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # The test venv's dependencies, as a path line (the editable xling there is not processed).
    Path(purelib, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XLING_PROMPTS")}
    # Away from the checkout and its PYTHONPATH, or pip would find xling "already installed".
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", str(wheel)],
                   check=True, capture_output=True, timeout=300, cwd=tmp_path, env=env)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run([str(venv / "bin" / "xling"), "prompts", "list"], capture_output=True, text=True,
                          cwd=elsewhere, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "quick" in done.stdout and "_bank" in done.stdout
    # XLING_PROMPTS still wins over the installed bank.
    done = subprocess.run([str(venv / "bin" / "xling"), "prompts", "list"], capture_output=True, text=True,
                          cwd=elsewhere, env={**env, "XLING_PROMPTS": str(elsewhere)}, timeout=120)
    assert "quick" not in done.stdout

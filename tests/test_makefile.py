"""The Makefile's first step on a fresh machine, `.venv/bin/python` (which `make demo` and
`make test` start from), with stand-ins for the Pythons a fresh machine may have: none of
them leaves a virtual environment that a later run would take as made."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

MAKE = shutil.which("make")

pytestmark = pytest.mark.skipif(MAKE is None, reason="needs make")

WITHOUT_ENSUREPIP = f"""#!/bin/sh
# Debian's python3 without python3-venv: venv makes the tree, then fails for want of ensurepip.
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
    "{sys.executable}" -m venv --without-pip "$3"
    echo "The virtual environment was not created successfully because ensurepip is not" \
        "available." >&2
    exit 1
fi
exec "{sys.executable}" "$@"
"""

TOO_OLD = f"""#!/bin/sh
# A Python older than the package needs (Ubuntu 22.04's python3 is 3.10).
if [ "$1" = "-c" ]; then
    exec "{sys.executable}" -c "import sys; sys.version_info = (3, 10, 12); sys.version = '3.10.12'
$2"
fi
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
    exec "{sys.executable}" -m venv --without-pip "$3"
fi
exec "{sys.executable}" "$@"
"""


def make(tmp_path: Path, python: str, *options: str) -> subprocess.CompletedProcess[str]:
    fake = tmp_path / "python3"
    fake.write_text(python)
    fake.chmod(0o755)
    venv = tmp_path / "venv"
    return subprocess.run(
        [str(MAKE), "-s", "-f", str(ROOT / "Makefile"), f"PYTHON={fake}", f"VENV={venv}", *options],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_virtualenv_that_could_not_be_made_is_made_again_at_the_next_run(
    tmp_path: Path,
) -> None:
    made = make(tmp_path, WITHOUT_ENSUREPIP, f"{tmp_path}/venv/bin/python")
    assert made.returncode != 0
    assert "ensurepip is not available" in made.stderr
    # Once python3-venv is installed, the next `make demo` must make it again, not go on to a
    # `pip install` in a virtual environment that has no pip.
    up_to_date = make(tmp_path, WITHOUT_ENSUREPIP, "-q", f"{tmp_path}/venv/bin/python")
    assert up_to_date.returncode == 1, "make takes the half-made virtualenv as made"


def test_a_python_too_old_is_refused_before_a_virtualenv_is_made(tmp_path: Path) -> None:
    made = make(tmp_path, TOO_OLD, f"{tmp_path}/venv/bin/python")
    assert made.returncode != 0
    assert "needs Python 3.11 or later" in made.stderr
    assert "PYTHON=python3.11" in made.stderr
    # `make demo PYTHON=python3.11` then makes the virtualenv with that one.
    assert not (tmp_path / "venv").exists()

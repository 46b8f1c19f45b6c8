"""The package as it is released: `python -m build` makes the sdist, then the wheel from the
sdist (so the sdist is known to be enough to build it); the wheel, installed without extras
into a fresh virtual environment, runs `s3auth` and imports the middleware.

Everything is built and installed once for the module (about 15 s, most of it pip fetching
the dependencies); each test then looks at one side of the result. The build runs without
isolation, on the `build` and `hatchling` of the test extra.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest
from conftest import SECRET
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import s3auth_asgi

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "s3auth_asgi"
BIN = "Scripts" if os.name == "nt" else "bin"
EXTRAS = {"demo", "test", "bench", "docs"}
"""Every extra is named for what it brings; `docs` may not be declared yet."""
REQUIRED_EXTRAS = {"demo", "test", "bench"}
DATA_FILES = ("py.typed", "common_passwords.txt", "demo/static/index.html")
NOT_SHIPPED = (".venv", ".s3auth-demo", "site", "dist", "build", ".git", "__pycache__")
"""Names no member of the sdist may have as a path component, besides the hidden caches."""


@dataclass(frozen=True)
class Release:
    wheel: Path
    sdist: Path
    venv: Path
    """A fresh virtual environment holding the wheel and its dependencies, nothing else."""
    workdir: Path
    """Outside the source tree, so `python -c` cannot import the package from the checkout."""
    source_files: frozenset[str]
    """The package's files, as wheel paths, listed just before the build."""

    def command(self, name: str) -> str:
        return str(self.venv / BIN / name)


def run(
    argv: list[str], *, cwd: Path, timeout: float, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=timeout
    )


def explain(result: subprocess.CompletedProcess[str]) -> str:
    output = f"--- out\n{result.stdout}--- err\n{result.stderr}"
    return f"{result.args} exited {result.returncode}\n{output}"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment minus whatever could make the fresh install see this checkout or the
    test session's settings: S3AUTH_* and AWS_* (the moto fixture sets those), PYTHONPATH,
    the active virtualenv. pip's own PIP_* configuration is kept."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in dropped and not key.startswith(("S3AUTH_", "AWS_"))
    }
    return env | extra


def package_files() -> frozenset[str]:
    return frozenset(
        path.relative_to(ROOT).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    base = tmp_path_factory.mktemp("release")
    dist, venv, workdir = base / "dist", base / "venv", base / "work"
    workdir.mkdir()
    source_files = package_files()
    built = run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)],
        cwd=workdir,
        timeout=300,
    )
    assert built.returncode == 0, explain(built)
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    # No pip inside the new environment: this session's pip installs into it (`--python`),
    # which saves the ensurepip step. The dependencies come from the configured index.
    created = run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=workdir, timeout=120
    )
    assert created.returncode == 0, explain(created)
    installed = run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / BIN / "python"),
            "install",
            "--quiet",
            "--no-compile",
            str(wheel),
        ],
        cwd=workdir,
        timeout=600,
    )
    assert installed.returncode == 0, explain(installed)
    return Release(wheel, sdist, venv, workdir, source_files)


def wheel_metadata(release: Release) -> Message:
    with zipfile.ZipFile(release.wheel) as archive:
        (name,) = (n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(archive.read(name).decode())


def requirements(metadata: Message) -> list[Requirement]:
    return [Requirement(line) for line in metadata.get_all("Requires-Dist", [])]


def unconditional(required: list[Requirement]) -> set[str]:
    return {canonicalize_name(r.name) for r in required if "extra" not in str(r.marker or "")}


def for_extra(required: list[Requirement], extra: str) -> set[str]:
    return {
        canonicalize_name(r.name)
        for r in required
        if r.marker is not None and "extra" in str(r.marker) and r.marker.evaluate({"extra": extra})
    }


# The wheel ---------------------------------------------------------------------------------


def test_the_wheel_carries_the_one_version(release: Release) -> None:
    metadata = wheel_metadata(release)
    assert metadata["Name"] == "s3auth_asgi"
    assert metadata["Version"] == s3auth_asgi.__version__
    assert release.wheel.name == f"s3auth_asgi-{s3auth_asgi.__version__}-py3-none-any.whl"
    assert release.sdist.name == f"s3auth_asgi-{s3auth_asgi.__version__}.tar.gz"


def test_the_wheel_requires_nothing_of_the_tests(release: Release) -> None:
    metadata = wheel_metadata(release)
    required = requirements(metadata)
    always, for_tests = unconditional(required), for_extra(required, "test")
    assert {"pytest", "hypothesis", "moto", "mypy", "ruff", "build", "hatchling"} <= for_tests
    assert always, "no dependencies at all"
    assert not always & for_tests
    extras = set(metadata.get_all("Provides-Extra", []))
    assert REQUIRED_EXTRAS <= extras <= EXTRAS
    assert "uvicorn" in for_extra(required, "demo")
    assert {"httpx", "limits"} <= for_extra(required, "bench")


def test_the_wheel_is_ready_to_publish(release: Release) -> None:
    metadata = wheel_metadata(release)
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    classifiers = metadata.get_all("Classifier", [])
    assert "Typing :: Typed" in classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]  # PEP 639: the expression
    assert metadata["Requires-Python"] == ">=3.11"
    assert metadata["Description-Content-Type"] == "text/markdown"
    readme = metadata.get_payload()
    assert isinstance(readme, str) and readme.startswith("# s3auth_asgi")
    with zipfile.ZipFile(release.wheel) as archive:
        license_text = archive.read(
            f"s3auth_asgi-{s3auth_asgi.__version__}.dist-info/licenses/LICENSE"
        ).decode()
        entry_points = archive.read(
            f"s3auth_asgi-{s3auth_asgi.__version__}.dist-info/entry_points.txt"
        ).decode()
    assert license_text == (ROOT / "LICENSE").read_text()
    assert "s3auth = s3auth_asgi.cli:run" in entry_points


def test_the_wheel_holds_the_whole_package_and_nothing_else(release: Release) -> None:
    with zipfile.ZipFile(release.wheel) as archive:
        names = set(archive.namelist())
    for data in DATA_FILES:
        assert f"s3auth_asgi/{data}" in names
    assert release.source_files <= names, sorted(release.source_files - names)
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"s3auth_asgi", f"s3auth_asgi-{s3auth_asgi.__version__}.dist-info"}
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


# The sdist ---------------------------------------------------------------------------------


def test_the_sdist_holds_the_source_tests_and_nothing_private(release: Release) -> None:
    prefix = f"s3auth_asgi-{s3auth_asgi.__version__}/"
    with tarfile.open(release.sdist) as archive:
        members = archive.getnames()
    assert all(name.startswith(prefix) for name in members)
    names = {name[len(prefix) :] for name in members}
    for needed in ("pyproject.toml", "PKG-INFO", "README.md", "LICENSE", "CHANGELOG.md"):
        assert needed in names
    assert release.source_files <= names, sorted(release.source_files - names)
    # The tests share the benchmarks' helpers (pytest's pythonpath), so both ship, with what
    # `make test` reads besides.
    assert "tests/conftest.py" in names
    assert "benchmarks/__init__.py" in names
    for name in ("Makefile", "mkdocs.yml", "docs_hooks.py"):
        assert name in names or not (ROOT / name).exists(), name
    for name in names:
        parts = name.split("/")
        assert not set(parts) & set(NOT_SHIPPED), name
        assert not [p for p in parts[:-1] if p.startswith(".")], name  # caches, state
        assert not name.endswith(".pyc"), name


# The installed wheel -----------------------------------------------------------------------


def test_s3auth_help(release: Release) -> None:
    result = run([release.command("s3auth"), "--help"], cwd=release.workdir, timeout=60)
    assert result.returncode == 0, explain(result)
    assert result.stdout.startswith("usage: s3auth")
    assert "check" in result.stdout


def test_s3auth_check_on_a_file_store(release: Release, tmp_path: Path) -> None:
    result = run(
        [release.command("s3auth"), "check"],
        cwd=release.workdir,
        timeout=60,
        S3AUTH_STORE_URL=f"file://{tmp_path / 'store'}",
        S3AUTH_SECRET_KEY=SECRET,
    )
    assert result.returncode == 0, explain(result)
    assert "All checks passed." in result.stdout
    assert "[FAIL]" not in result.stdout


def test_the_demo_names_its_extra(release: Release, tmp_path: Path) -> None:
    """Installed without extras, `s3auth demo` says which extra brings uvicorn."""
    result = run(
        [release.command("s3auth"), "demo", "--dir", str(tmp_path / "demo")],
        cwd=release.workdir,
        timeout=60,
    )
    assert result.returncode not in (0, 2), explain(result)  # a failure, not a usage error
    assert "pip install 's3auth_asgi[demo]'" in result.stderr


IMPORTS = """
import importlib.metadata, importlib.util, json, sys
import s3auth_asgi.middleware
from s3auth_asgi import BearerTokenMiddleware, S3AuthService, S3AuthSettings, __version__
from s3auth_asgi.app import create_auth_app
json.dump({
    "file": s3auth_asgi.middleware.__file__,
    "version": __version__,
    "distribution": importlib.metadata.version("s3auth_asgi"),
    "middleware": BearerTokenMiddleware.__module__,
    "from_extras": [m for m in ("pytest", "uvicorn", "limits") if importlib.util.find_spec(m)],
}, sys.stdout)
"""


def test_the_package_imports_from_the_installed_wheel(release: Release) -> None:
    result = run([release.command("python"), "-c", IMPORTS], cwd=release.workdir, timeout=60)
    assert result.returncode == 0, explain(result)
    found = json.loads(result.stdout)
    assert Path(found["file"]).is_relative_to(release.venv)  # not this checkout
    assert found["version"] == found["distribution"] == s3auth_asgi.__version__
    assert found["middleware"].startswith("s3auth_asgi.middleware")
    assert found["from_extras"] == []  # installed without extras

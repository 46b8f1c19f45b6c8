"""The layout holds: what each layer imports, and how big a module may grow."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "s3auth_asgi"
HEAVY = ("obstore", "pwdlib", "argon2", "bcrypt")
FRAMEWORKS = ("starlette", "fastapi", "litestar", "quart", "uvicorn")


def _loaded_after(statement: str, names: tuple[str, ...]) -> list[str]:
    """The top-level modules among `names` that a fresh interpreter has loaded after
    running `statement`."""
    code = f"import sys\n{statement}\nprint(' '.join(n for n in {names!r} if n in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return out.split()


@pytest.mark.parametrize(
    "statement",
    [
        "import s3auth_asgi.middleware",
        "from s3auth_asgi import BearerTokenMiddleware, BlacklistMiddleware, requires",
        "from s3auth_asgi.middleware import RateLimitMiddleware",
    ],
)
def test_the_middlewares_load_no_store_and_no_hasher(statement: str) -> None:
    assert _loaded_after(statement, HEAVY) == []


def test_the_check_sees_a_heavy_import() -> None:
    # The same check on the service must find them, or the test above proves nothing.
    assert set(_loaded_after("from s3auth_asgi import S3AuthService", HEAVY)) >= {
        "obstore",
        "pwdlib",
    }


def _imports(path: Path) -> set[str]:
    """Absolute module names a file imports (relative ones resolved to the package)."""
    tree = ast.parse(path.read_text())
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                found.add(".".join([*base, *([node.module] if node.module else [])]))
            elif node.module:
                found.add(node.module)
    return found


def _modules(*, under: str = "") -> list[Path]:
    return sorted((PACKAGE / under).rglob("*.py"))


def test_no_framework_is_imported_below_the_app() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(
            name for name in _imports(path) if name.split(".")[0] in FRAMEWORKS
        )
        for path in _modules()
        if path.relative_to(PACKAGE).parts[0] not in ("app", "demo", "cli")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_middlewares_import_neither_the_service_nor_storage() -> None:
    forbidden = ("s3auth_asgi.service", "s3auth_asgi.blacklist", "s3auth_asgi.passwords")
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(
            name for name in _imports(path) if name.startswith(forbidden)
        )
        for path in _modules(under="middleware")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_app_uses_no_middleware_internals_for_problems() -> None:
    for path in _modules(under="app"):
        assert "s3auth_asgi.middleware.refusals" not in _imports(path), path


def test_no_module_is_over_350_lines() -> None:
    sizes = {
        str(path.relative_to(PACKAGE)): len(path.read_text().splitlines()) for path in _modules()
    }
    assert {path: lines for path, lines in sizes.items() if lines > 350} == {}


def _module_rows() -> list[tuple[list[str], str]]:
    """The rows of docs/architecture.md's module table: the names its first cell gives, and
    the whole row."""
    page = PACKAGE.parent / "docs" / "architecture.md"
    table = page.read_text(encoding="utf-8").split("## What each module owns")[1]
    table = table.split("\n## ")[0]
    return [
        (re.findall(r"`([^`]+)`", line.split("|")[1]), line)
        for line in table.splitlines()
        if line.startswith("| `")
    ]


def test_the_architecture_page_has_a_row_for_every_module() -> None:
    """A top-level module is named in the first cell of a row; a module of a subpackage in a
    row of its subpackage (`app/`, `storage/store.py`), as `name.py` or `package/name.py`."""
    rows = _module_rows()
    missing = []
    for path in _modules():
        name = path.relative_to(PACKAGE).as_posix()
        if path.name in ("__init__.py", "__main__.py"):
            continue
        package, _, module = name.rpartition("/")
        if not package:
            found = any(name in names for names, _ in rows)
        else:
            found = any(
                names[0].startswith(f"{package}/")
                and (f"`{module}`" in line or f"`{name}`" in line)
                for names, line in rows
            )
        if not found:
            missing.append(name)
    assert missing == [], f"docs/architecture.md has no row for {missing}"

"""Every test the docs cite as evidence (`tests/<file>.py::<name>`, as the security page's
ASVS tables do) exists: a renamed or deleted test leaves no claim pointing at nothing."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CITATION = re.compile(r"tests/(\w+\.py)::(\w+)")


def citations() -> list[tuple[str, str, str]]:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return sorted(
        {
            (str(page.relative_to(ROOT)), file, name)
            for page in pages
            for file, name in CITATION.findall(page.read_text())
        }
    )


def functions_of(file: str) -> set[str]:
    tree = ast.parse((ROOT / "tests" / file).read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    }


def test_the_docs_cite_tests() -> None:
    # The security page alone cites dozens: an empty list means the pattern broke.
    assert len(citations()) >= 50


@pytest.mark.parametrize(("page", "file", "name"), citations())
def test_every_cited_test_exists(page: str, file: str, name: str) -> None:
    assert (ROOT / "tests" / file).is_file(), f"{page} cites tests/{file}, which does not exist"
    assert name in functions_of(file), f"{page} cites tests/{file}::{name}, which does not exist"


def test_the_reference_page_says_where_each_name_is_imported_from() -> None:
    import importlib

    import s3auth_asgi

    page = (ROOT / "docs" / "reference.md").read_text()
    intro = page.split("## ", 1)[0]
    for path in re.findall(r"^::: (\S+)", page, re.MULTILINE):
        module, name = path.rsplit(".", 1)
        if isinstance(getattr(importlib.import_module(module), name), type(s3auth_asgi)):
            continue  # a module shown whole: its own import
        if not hasattr(s3auth_asgi, name):
            # Not from the package: the introduction names it and where it is.
            assert f"`{name}`" in intro and f"`{module}`" in intro, path


def test_every_exported_name_is_on_the_reference_page_with_a_docstring_of_its_own() -> None:
    """What `from s3auth_asgi import *` gives is the public API: each name but the errors
    (the errors page's) is shown on the reference page, and says what it is itself, not
    through a docstring it inherits."""
    import s3auth_asgi
    from s3auth_asgi import errors

    page = (ROOT / "docs" / "reference.md").read_text()
    shown = {path.rsplit(".", 1)[1] for path in re.findall(r"^::: (\S+)", page, re.MULTILINE)}
    public = [n for n in s3auth_asgi.__all__ if n != "__version__" and not hasattr(errors, n)]
    assert [name for name in public if name not in shown] == []
    assert [name for name in public if not getattr(s3auth_asgi, name).__doc__] == []


SERVICE_CALL = re.compile(r"`(?:await )?(auth|service|blacklist|limiter)\.(\w+)\(([^`]*)\)`")


def service_calls() -> list[tuple[str, int, str, str, str]]:
    """The calls the pages show in code spans (`await auth.create_user(...)`), but the
    s3verless ones they are compared with, which take an `s3_client`."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [
        (str(page.relative_to(ROOT)), number, owner, name, arguments)
        for page in pages
        for number, line in enumerate(page.read_text().splitlines(), 1)
        for owner, name, arguments in SERVICE_CALL.findall(line)
        if "s3_client" not in arguments
    ]


def test_the_pages_show_calls_of_the_service() -> None:
    assert len(service_calls()) >= 30


@pytest.mark.parametrize(("page", "line", "owner", "name", "arguments"), service_calls())
def test_a_call_the_pages_show_fits_its_methods_signature(
    page: str, line: int, owner: str, name: str, arguments: str
) -> None:
    """Its arguments, by position and by name, bind to the method's parameters: a
    parameter renamed, made keyword-only or removed in the code fails here."""
    import ast
    import inspect

    from s3auth_asgi import RateLimiter, S3AuthService, TokenBlacklist

    owners: dict[str, type] = {
        "auth": S3AuthService,
        "service": S3AuthService,
        "blacklist": TokenBlacklist,
        "limiter": RateLimiter,
    }
    method = getattr(owners[owner], name, None)
    assert method is not None, f"{page}:{line}: {owner}.{name} does not exist"
    call = ast.parse(f"f({arguments.replace('…', '...')})", mode="eval").body
    assert isinstance(call, ast.Call)
    given = {keyword.arg: None for keyword in call.keywords if keyword.arg is not None}
    try:
        inspect.signature(method).bind(None, *[None] * len(call.args), **given)
    except TypeError as error:
        raise AssertionError(f"{page}:{line}: {owner}.{name}({arguments}): {error}") from None

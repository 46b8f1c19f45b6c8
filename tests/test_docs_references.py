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

"""MkDocs hook (mkdocs.yml `hooks:`): the Changelog page is CHANGELOG.md itself.

docs/changelog.md holds one include line, `--8<-- "CHANGELOG.md"`; this replaces it with
the file, its links to `docs/...` rewritten to be relative to the docs directory, so that
they resolve (and are checked) in the strict build as they do on the repository's front.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

INCLUDE = re.compile(r'^--8<-- "([^"]+)"\s*$', re.MULTILINE)
DOCS_LINK = re.compile(r"\]\(docs/")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if page.file.src_uri != "changelog.md":
        return markdown
    root = Path(config.config_file_path).parent

    def include(match: re.Match[str]) -> str:
        text = (root / match[1]).read_text(encoding="utf-8")
        return DOCS_LINK.sub("](", text)

    return INCLUDE.sub(include, markdown)

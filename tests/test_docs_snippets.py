"""Every ```python block of README.md and docs/**/*.md runs as a standalone script.

Each block is one case (id `file:line`, the line of its opening fence). It is written to a
file in a fresh temporary directory and run there in a new interpreter with
`runpy.run_path(file, run_name="snippet")`, so a block's `if __name__ == "__main__":` guard
(around `uvicorn.run(...)`, say) does not fire. The environment has `S3AUTH_SECRET_KEY` set to
a fresh strong secret and `S3AUTH_STORE_URL=memory://`; every other inherited `S3AUTH_*`
variable is removed, and a block may set its own.

A block preceded by `<!-- fragment: why -->` (on the line before its fence, blank lines
allowed) is not run: it is deliberately incomplete, e.g. a method body shown alone. The reason
must be given; `test_fragment_says_why` lists the fragments and fails on one without it.

A block that runs to its end and whose interpreter then dies while exiting fails like any
other: the library waits for obstore's threads at exit (`storage.handoffs`).

The selected blocks run concurrently, one subprocess per CPU at a time, when the first case
asks for its outcome; each case then checks its own block's.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

import pytest

from s3auth_asgi.settings import new_secret_key

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
TIMEOUT_SECONDS = 60.0
PYTHON_INFO = frozenset({"python", "py", "python3"})
FINISHED = "[the snippet ran to its end]"
RUNNER = (
    "import runpy, sys; runpy.run_path(sys.argv[1], run_name='snippet'); "
    f"print({FINISHED!r}, file=sys.stderr)"
)

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
# `<!-- fragment: reason -->`; also matches a marker without the colon or the reason, so that
# one is reported (as having no reason) rather than silently ignored.
_MARKER = re.compile(r"^\s*<!--\s*fragment\b(?P<colon>:?)(?P<reason>.*?)-->\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it starts, its language, its code (dedented to the fence's
    indentation) and the fragment reason written before it (None when there is no marker)."""

    document: str
    line: int
    language: str
    code: str
    fragment: str | None

    @property
    def id(self) -> str:
        return f"{self.document}:{self.line}"


def parse_blocks(text: str, document: str) -> Iterator[Block]:
    """The fenced code blocks of a Markdown text, in order."""
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None or (opening["fence"][0] == "`" and "`" in opening["info"]):
            index += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        start = index
        body: list[str] = []
        index += 1
        while index < len(lines):
            stripped = lines[index].strip()
            if stripped.startswith(fence[0] * len(fence)) and set(stripped) == {fence[0]}:
                break
            line = lines[index]
            body.append(line[min(indent, len(line) - len(line.lstrip(" "))) :])
            index += 1
        index += 1  # past the closing fence (or the end of the text)
        words = opening["info"].split()
        yield Block(
            document=document,
            line=start + 1,
            language=words[0].lower() if words else "",
            code="\n".join(body) + "\n",
            fragment=_fragment_reason(lines, start),
        )


def _fragment_reason(lines: list[str], fence_index: int) -> str | None:
    """The reason of the fragment marker on the nearest non-blank line before the fence."""
    for index in range(fence_index - 1, -1, -1):
        if lines[index].strip():
            marker = _MARKER.match(lines[index])
            if marker is None:
                return None
            return marker["reason"].strip() if marker["colon"] else ""
    return None


def python_blocks() -> list[Block]:
    found: list[Block] = []
    for path in DOCUMENTS:
        document = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        found.extend(b for b in parse_blocks(text, document) if b.language in PYTHON_INFO)
    return found


BLOCKS = python_blocks()
RUNNABLE = [block for block in BLOCKS if block.fragment is None]
FRAGMENTS = [block for block in BLOCKS if block.fragment is not None]


@dataclass(frozen=True)
class Outcome:
    returncode: int | None  # None: killed at the timeout
    stdout: str
    stderr: str
    seconds: float


def snippet_environment() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("S3AUTH_")}
    env["S3AUTH_SECRET_KEY"] = new_secret_key()
    env["S3AUTH_STORE_URL"] = "memory://"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_block(block: Block) -> Outcome:
    """Run one block as a script in a fresh interpreter and temporary directory."""
    with TemporaryDirectory(prefix="snippet-") as directory:
        script = Path(directory) / "snippet.py"
        script.write_text(block.code, encoding="utf-8")
        started = time.perf_counter()
        try:
            done = subprocess.run(
                [sys.executable, "-c", RUNNER, str(script)],
                cwd=directory,
                env=snippet_environment(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired as expired:
            return Outcome(None, _text(expired.stdout), _text(expired.stderr), TIMEOUT_SECONDS)
        return Outcome(done.returncode, done.stdout, done.stderr, time.perf_counter() - started)


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest) -> dict[Block, Outcome]:
    """The outcome of every selected runnable block (those `-k` and the like left), run
    concurrently, one subprocess per CPU (at least 2) at a time."""
    selected = {
        item.callspec.params["block"]
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.originalname == "test_snippet_runs"
        and hasattr(item, "callspec")
    }
    pending = [block for block in RUNNABLE if block in selected]
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return dict(zip(pending, pool.map(run_block, pending), strict=True))


@pytest.mark.parametrize("block", RUNNABLE, ids=[block.id for block in RUNNABLE])
def test_snippet_runs(block: Block, outcomes: dict[Block, Outcome]) -> None:
    outcome = outcomes[block] if block in outcomes else run_block(block)
    if outcome.returncode is None:
        pytest.fail(
            f"{block.id}: still running after {TIMEOUT_SECONDS:.0f} s (does it start a "
            f"server outside `if __name__ == '__main__':`?)\n{outcome.stderr}",
            pytrace=False,
        )
    if outcome.returncode != 0:
        pytest.fail(
            f"{block.id}: exited with {outcome.returncode} after {outcome.seconds:.1f} s\n"
            f"--- code ---\n"
            f"{textwrap.indent(block.code, '    ')}--- stderr ---\n{outcome.stderr}"
            f"--- stdout ---\n{outcome.stdout}",
            pytrace=False,
        )


@pytest.mark.parametrize("block", FRAGMENTS, ids=[block.id for block in FRAGMENTS])
def test_fragment_says_why(block: Block) -> None:
    assert block.fragment, f"{block.id}: `<!-- fragment: ... -->` needs a reason after the colon"


def test_every_marker_belongs_to_a_python_block() -> None:
    """A fragment marker anywhere else (before prose, or a shell block) marks nothing."""
    stray: list[str] = []
    for path in DOCUMENTS:
        document = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        marked = {
            block.line - 1
            for block in parse_blocks(text, document)
            if block.language in PYTHON_INFO and block.fragment is not None
        }
        for index, line in enumerate(lines):
            if _MARKER.match(line) and not _marks_one_of(lines, index, marked):
                stray.append(f"{document}:{index + 1}")
    assert not stray, f"fragment markers not directly before a ```python fence: {stray}"


def _marks_one_of(lines: list[str], marker_index: int, fences: set[int]) -> bool:
    for index in range(marker_index + 1, len(lines)):
        if lines[index].strip():
            return index in fences
    return False


def test_the_documents_have_blocks_to_run() -> None:
    assert any(block.document == "README.md" for block in RUNNABLE)
    assert len(RUNNABLE) >= 10


def test_parse_blocks_reads_fences_markers_and_indentation() -> None:
    text = "\n".join(
        [
            "intro",
            "```python",
            "x = 1",
            "```",
            "<!-- fragment: a method body -->",
            "",
            "```py title='t'",
            "return x",
            "```",
            "- a list item:",
            "",
            "  ```python",
            "  for i in range(2):",
            "      print(i)",
            "  ```",
            "<!-- fragment without a colon -->",
            "~~~python",
            "y",
            "~~~",
            "```sh",
            "echo ```python",
            "```",
            "````markdown",
            "```python",
            "not a block of its own",
            "```",
            "````",
        ]
    )
    blocks = list(parse_blocks(text, "doc.md"))
    assert [(b.line, b.language, b.fragment) for b in blocks] == [
        (2, "python", None),
        (7, "py", "a method body"),
        (12, "python", None),
        (17, "python", ""),
        (20, "sh", None),
        (23, "markdown", None),
    ]
    assert blocks[0].code == "x = 1\n"
    assert blocks[2].code == "for i in range(2):\n    print(i)\n"
    assert blocks[5].code == "```python\nnot a block of its own\n```\n"

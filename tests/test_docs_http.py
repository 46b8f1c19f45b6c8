"""The ```http examples of the endpoints page are the auth app's requests and answers: each
request is an operation's method and path with a body its request type reads, each answer a
status that operation gives, a success body its response type reads (and no field it lacks),
a problem body a code answered with that status. The snippet test runs the Python blocks;
this holds the HTTP ones, which nothing runs, to the operations table, and the page to
having a section for every operation of the table, and the README's list of the endpoints
to naming each of its groups."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import msgspec
import pytest
from conftest import make_service
from test_app import mounted
from test_docs_snippets import parse_blocks
from test_errors import _all_errors

from s3auth_asgi.app.operations import Operation
from s3auth_asgi.app.table import operations_of

ROOT = Path(__file__).resolve().parent.parent
PAGE = "docs/endpoints.md"
MOUNT = "/auth"
HEADING = re.compile(r"^#{2,4} `(GET|POST|PATCH|PUT|DELETE) ([^`?]+)")
REQUEST_LINE = re.compile(r"^(GET|POST|PATCH|PUT|DELETE) (\S+)$")
STATUS_LINE = re.compile(r"^HTTP/1\.1 (\d{3}) ")


@dataclass(frozen=True)
class Example:
    line: int
    heading: tuple[str, str] | None
    """The method and path of the section it is in, when the heading names one."""
    head: list[str]
    body: str


def examples() -> list[Example]:
    text = (ROOT / PAGE).read_text(encoding="utf-8")
    headings: list[tuple[int, tuple[str, str] | None]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            found = HEADING.match(line)
            headings.append((number, (found[1], found[2]) if found else None))
    found_examples = []
    for block in parse_blocks(text, PAGE):
        if block.language != "http":
            continue
        heading = next((h for n, h in reversed(headings) if n < block.line), None)
        head, _, body = block.code.partition("\n\n")
        found_examples.append(Example(block.line, heading, head.splitlines(), body.strip()))
    return found_examples


EXAMPLES = examples()


@pytest.fixture(scope="module")
def operations() -> list[Operation]:
    auth_app: Any = mounted(make_service()).routes[0].app  # type: ignore[attr-defined]
    return operations_of(auth_app.routes)


def operation(operations: list[Operation], method: str, path: str) -> Operation:
    """The operation of a request's path, or of a heading's (its parameters as named)."""
    for op in operations:
        pattern = re.sub(r"\\{[a-z_]+\\}", "[0-9a-f]{32}", re.escape(op.path))
        if op.method == method and (path == op.path or re.fullmatch(pattern, path)):
            return op
    raise AssertionError(f"no operation {method} {path}")


def json_body(example: Example) -> Any:
    """The body as JSON; None for an answer abridged with a bare `…` (not JSON)."""
    try:
        return json.loads(example.body)
    except json.JSONDecodeError:
        assert "…" in example.body, f"{PAGE}:{example.line}: the body is not JSON"
        return None


def field_names(kind: type[Any]) -> set[str]:
    return {field.encode_name for field in msgspec.structs.fields(kind)}


def test_the_page_has_requests_and_answers() -> None:
    kinds = [e.head[0].split()[0] for e in EXAMPLES]
    assert kinds.count("HTTP/1.1") >= 10 and len(kinds) - kinds.count("HTTP/1.1") >= 10


def test_every_operation_has_a_heading_on_the_page(operations: list[Operation]) -> None:
    text = (ROOT / PAGE).read_text(encoding="utf-8")
    headed = {
        (method, path)
        for line in text.splitlines()
        if line.startswith("#")
        for method, path in re.findall(r"`(GET|POST|PATCH|PUT|DELETE) ([^`?]+)", line)
    }
    missing = {(op.method, op.path) for op in operations} - headed
    assert not missing, f"{PAGE} has no heading for {sorted(missing)}"
    assert ("GET", "/openapi.json") in headed


# What the README's list calls the operations under a path's first segment, where that is
# not the segment itself.
README_NAMES = {"email": "email verification", ".well-known": "JWKS"}


def test_the_readme_names_every_group_of_operations(operations: list[Operation]) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### The auth endpoints", 1)[1].split("\n#", 1)[0]
    listed = section.rsplit("```", 1)[1].lower()  # the paragraph after the curl lines
    segments = {op.path.split("/")[1] for op in operations} | {"openapi.json"}
    missing = sorted(s for s in segments if README_NAMES.get(s, s).lower() not in listed)
    assert not missing, f"README.md's list of the auth endpoints leaves out {missing}"


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"{PAGE}:{e.line}" for e in EXAMPLES])
def test_an_http_example_is_the_apps(example: Example, operations: list[Operation]) -> None:
    where = f"{PAGE}:{example.line}"
    first = example.head[0]
    headers = dict(line.split(": ", 1) for line in example.head[1:])
    if request := REQUEST_LINE.match(first):
        assert request[2].startswith(f"{MOUNT}/"), where
        op = operation(operations, request[1], request[2].removeprefix(MOUNT))
        if example.heading is not None:
            assert example.heading == (op.method, op.path), where
        if not example.body:
            assert op.request is None or op.body_optional, f"{where}: a body is required"
            return
        assert op.request is not None, f"{where}: {op.method} {op.path} takes no body"
        if headers.get("Content-Type") == "application/x-www-form-urlencoded":
            assert op.form, where
            data: Any = dict(parse_qsl(example.body, strict_parsing=True))
        else:
            assert headers.get("Content-Type") == "application/json", where
            data = json_body(example)
        msgspec.convert(data, op.request)  # forbids unknown fields
        return
    answer = STATUS_LINE.match(first)
    if answer is None:
        assert first.startswith("Set-Cookie: "), f"{where}: neither a request nor an answer"
        return
    assert example.heading is not None, f"{where}: an answer under no operation's heading"
    op = operation(operations, *example.heading)
    status = int(answer[1])
    if status == op.success_status:
        assert not example.body if op.response is None else example.body, where
        data = json_body(example) if example.body else None
        if data is not None and op.response is not None:
            msgspec.convert(data, op.response)
            assert set(data) <= field_names(op.response), where
        return
    limited = [429] if op.limits or op.handler_limits else []
    statuses = [*op.error_statuses, *limited]
    assert status in statuses, f"{where}: {op.method} {op.path} never answers {status}"
    problem = json_body(example)
    assert headers.get("Content-Type", "application/problem+json") == "application/problem+json"
    codes = {cls.code: cls.status for cls in _all_errors()}
    assert problem["status"] == status and codes[problem["code"]] == status, where

"""Every answer of the auth app checked against its OpenAPI document, wherever a test drives
the app over HTTP (`test_app.client_for(..., declared=...)`): its status is one the
operation declares, its body of a media type declared for that status (a problem for every
error) or none where none is declared, a 409's code one of those the operation lists, a
refusal sent with the challenge or the Retry-After the document says it carries, and the
OAuth 2.0 `error` of a token endpoint's refusal the one `token_errors` maps its code to
(and no `error` elsewhere), and every answer below the mount point marked
`X-Content-Type-Options: nosniff`, once.

The sweeps, whose store fails or races at every request, then need no list of their own to
catch an answer the document does not tell a client to expect.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from s3auth_asgi.app import AuthApp
from s3auth_asgi.app.token_errors import TOKEN_ERRORS, TokenProblem, describe
from s3auth_asgi.problems import PROBLEM_CONTENT_TYPE

ALWAYS_SENT = {
    401: "WWW-Authenticate",
    403: "WWW-Authenticate",
    429: "Retry-After",
    503: "Retry-After",
}
"""The header each refusal with that status carries wherever the document declares it:
a Bearer challenge, or when to retry (a 400's challenge is only that of a repeated
Authorization header)."""


def path_pattern(path: str) -> re.Pattern[str]:
    """A templated path's matcher: each `{parameter}` one segment, as Starlette's routes."""
    parts = re.split(r"({[a-z_]+})", path)
    return re.compile(
        "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
    )


class DeclaredAnswers:
    """An httpx response hook over `document`, the app's OpenAPI document for its mount
    point `prefix`: answers to paths outside it, or to what it has no operation for, only
    have to be problems when they are errors."""

    def __init__(self, document: dict[str, Any], prefix: str = "/auth") -> None:
        self.prefix = prefix.rstrip("/")
        # In the document's order, which is the router's: the first match is the route.
        self.paths = [(path_pattern(path), item) for path, item in document["paths"].items()]

    @classmethod
    def of(cls, app: AuthApp, prefix: str = "/auth") -> DeclaredAnswers:
        """What `app`, mounted at `prefix`, declares."""
        assert app.openapi is not None, "an app built without its document"
        return cls(app.openapi.for_mount(prefix), prefix)

    def operation(self, method: str, path: str) -> dict[str, Any] | None:
        if not path.startswith(f"{self.prefix}/"):
            return None
        route = path[len(self.prefix) :]
        for pattern, item in self.paths:
            if pattern.fullmatch(route):
                found: dict[str, Any] | None = item.get(method.lower())
                return found
        return None

    async def __call__(self, response: httpx.Response) -> None:
        await response.aread()
        self.check(response)

    def check(self, response: httpx.Response) -> None:
        request = response.request
        method = "GET" if request.method == "HEAD" else request.method
        status = response.status_code
        media, said = _said(response)
        operation = self.operation(method, request.url.path)
        if request.url.path.startswith(f"{self.prefix}/"):
            sniffing = response.headers.get_list("x-content-type-options")
            assert sniffing == ["nosniff"], f"X-Content-Type-Options {sniffing}: {said}"
        if operation is None:
            assert status < 400 or media == PROBLEM_CONTENT_TYPE, said
            return
        responses: dict[str, Any] = operation["responses"]
        declared = responses.get(str(status))
        assert declared is not None, f"undeclared (it declares {sorted(responses)}): {said}"
        content: dict[str, Any] = declared.get("content", {})
        if content:
            assert media in content, f"not a declared {sorted(content)}: {said}"
        elif request.method != "HEAD":
            assert not response.content, f"a body where none is declared: {said}"
        sent_with = ALWAYS_SENT.get(status)
        if sent_with in declared.get("headers", {}):
            assert sent_with in response.headers, f"without {sent_with}: {said}"
        schema = content.get(PROBLEM_CONTENT_TYPE, {}).get("schema", {})
        codes = listed_codes(schema)
        if codes is not None:
            assert response.json().get("code") in codes, f"not a declared code {codes}: {said}"
        self.check_problem(response)

    def check_problem(self, response: httpx.Response) -> None:
        """What every error answer passes, whether its status is declared or not (a 500,
        which no operation declares, for a test that makes one): it is a problem, with the
        OAuth members of its code where the operation answers with TokenProblem."""
        request = response.request
        method = "GET" if request.method == "HEAD" else request.method
        media, said = _said(response)
        assert response.status_code < 400 or media == PROBLEM_CONTENT_TYPE, said
        operation = self.operation(method, request.url.path)
        if operation is not None and media == PROBLEM_CONTENT_TYPE:
            _check_oauth_error(response.json(), _token_endpoint(operation), said)


def _said(response: httpx.Response) -> tuple[str, str]:
    """The answer's media type, and what an assertion about it says."""
    media = response.headers.get("content-type", "").split(";")[0].strip()
    request = response.request
    status = response.status_code
    return media, f"{request.method} {request.url.path} answered {status} {media}: {response.text}"


def _check_oauth_error(problem: dict[str, Any], token_endpoint: bool, said: str) -> None:
    """A token endpoint's problem carries the `error` of its code, described by its detail
    (else its title); no other problem has either member."""
    if not token_endpoint:
        assert "error" not in problem and "error_description" not in problem, said
        return
    code = problem.get("code")
    assert code in TOKEN_ERRORS, f"{code!r} has no OAuth error: {said}"
    assert problem.get("error") == TOKEN_ERRORS[code], said
    described = describe(problem.get("detail") or problem["title"])
    assert problem.get("error_description") == described, said


def _token_endpoint(operation: dict[str, Any]) -> bool:
    """Whether the operation's problems are TokenProblems (a token endpoint's all are)."""
    return any(
        refers_to(
            declared.get("content", {}).get(PROBLEM_CONTENT_TYPE, {}).get("schema", {}),
            TokenProblem.__name__,
        )
        for declared in operation["responses"].values()
    )


def refers_to(schema: dict[str, Any], name: str) -> bool:
    parts = [schema, *schema.get("allOf", ())]
    return any(part.get("$ref", "").endswith(f"/{name}") for part in parts)


def listed_codes(schema: dict[str, Any]) -> list[str] | None:
    """The problem codes a problem response's schema lists (an `enum` on `code` in its
    `allOf`), or None where it lists none."""
    for part in schema.get("allOf", ()):
        enum = part.get("properties", {}).get("code", {}).get("enum")
        if enum is not None:
            return list(enum)
    return None

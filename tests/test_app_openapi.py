"""The OpenAPI document: valid OpenAPI 3.1, true to the routes, and true to the responses —
schemathesis generates requests from it (valid and invalid) and checks that no answer is a
5xx or strays from the documented statuses, content types and schemas."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import anyio.from_thread
import httpx
import msgspec
import pytest
import schemathesis
from conftest import make_service, make_settings
from declared_answers import DeclaredAnswers, listed_codes, refers_to
from hypothesis import HealthCheck, settings
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from test_app import PASSWORD, bearer, client_for, login, mounted, register

from s3auth_asgi import PasswordPolicy, S3AuthService, WeakPasswordError
from s3auth_asgi.app import DEFAULT_AUTH_LIMITS, create_auth_app
from s3auth_asgi.app.schemas import NEW_PASSWORD
from s3auth_asgi.app.token_errors import TOKEN_ERRORS
from s3auth_asgi.ratelimit import RateLimiter

BASE_URL = "http://testserver/auth"
DOCUMENT = create_auth_app(make_service(), rate_limit=False).openapi.for_mount("/auth")
LIMITED = create_auth_app(
    make_service(), limiter=RateLimiter(DEFAULT_AUTH_LIMITS, legacy_headers=True)
).openapi.for_mount("/auth")
"""With the rate-limit fields, legacy ones too (`test_app_openapi_ratelimit`)."""
EXPECTED_OPERATIONS = {
    ("post", "/register"),
    ("post", "/login"),
    ("post", "/refresh"),
    ("post", "/logout"),
    ("post", "/logout-all"),
    ("get", "/sessions"),
    ("delete", "/sessions/{session_id}"),
    ("get", "/me"),
    ("patch", "/me"),
    ("post", "/password"),
    ("get", "/admin/users"),
    ("patch", "/admin/users/{user_id}"),
    ("delete", "/admin/users/{user_id}"),
    ("post", "/admin/users/{user_id}/revoke"),
    ("get", "/.well-known/jwks.json"),
    ("post", "/password/forgot"),
    ("post", "/password/reset"),
    ("post", "/email/verify"),
    ("post", "/email/verify/resend"),
    ("get", "/me/events"),
    ("post", "/admin/users"),
    ("get", "/admin/users/{user_id}"),
    ("post", "/admin/users/{user_id}/password"),
    ("post", "/admin/users/{user_id}/password-reset"),
    ("get", "/admin/users/{user_id}/sessions"),
    ("delete", "/admin/users/{user_id}/sessions/{session_id}"),
    ("get", "/admin/users/{user_id}/events"),
    ("post", "/admin/sessions/end-all"),
    ("post", "/login/totp"),
    ("post", "/me/totp"),
    ("post", "/me/totp/confirm"),
    ("post", "/me/totp/disable"),
    ("post", "/reauthenticate"),
    ("post", "/me/totp/recovery-codes"),
    ("delete", "/admin/users/{user_id}/totp"),
}


@pytest.mark.parametrize("document", [DOCUMENT, LIMITED], ids=["unlimited", "limited"])
def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document, cls=OpenAPIV31SpecValidator)


def test_the_document_lists_every_endpoint_and_the_security_schemes() -> None:
    operations = {(m, p) for p, item in DOCUMENT["paths"].items() for m in item}
    assert operations == EXPECTED_OPERATIONS
    schemes = DOCUMENT["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["oauth2"]["flows"]["password"]["tokenUrl"] == "/auth/login"
    login = DOCUMENT["paths"]["/login"]["post"]
    assert set(login["requestBody"]["content"]) == {
        "application/json",
        "application/x-www-form-urlencoded",
    }
    assert "security" not in login
    assert DOCUMENT["paths"]["/me"]["get"]["security"] == [{"bearer": []}, {"oauth2": []}]
    # The admin operations need the admin scope, which administrators' tokens grant.
    admin = [{"bearer": ["admin"]}, {"oauth2": ["admin"]}]
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            assert (operation.get("security") == admin) == path.startswith("/admin"), (method, path)
    assert "admin" in schemes["oauth2"]["flows"]["password"]["scopes"]
    schemas = DOCUMENT["components"]["schemas"]
    assert schemas["RegisterRequest"]["additionalProperties"] is False
    assert "hashed_password" not in schemas["PublicUser"]["properties"]


def _event_schema(path: str) -> dict[str, Any]:
    """The schema of one event in the page `GET path` answers with."""
    schemas = DOCUMENT["components"]["schemas"]

    def named(reference: dict[str, str]) -> dict[str, Any]:
        found: dict[str, Any] = schemas[reference["$ref"].rpartition("/")[2]]
        return found

    answer = DOCUMENT["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
    entry = named(named(answer["schema"])["properties"]["events"]["items"])
    return named(entry["properties"]["event"])


def test_the_owners_trail_is_documented_as_the_owner_reads_it() -> None:
    owner = _event_schema("/me/events")
    assert owner["properties"]["by_administrator"]["type"] == "boolean"
    assert "by_administrator" in owner["required"]
    assert owner["properties"]["actor_id"] == {"type": "null", "default": None}
    admins = _event_schema("/admin/users/{user_id}/events")
    assert "by_administrator" not in admins["properties"]
    assert admins["properties"]["actor_id"]["anyOf"] == [{"type": "string"}, {"type": "null"}]


NEW_PASSWORDS = [
    ("RegisterRequest", "password"),
    ("ChangePasswordRequest", "new_password"),
    ("ResetPasswordRequest", "new_password"),
    ("AdminUserCreate", "password"),
    ("AdminSetPassword", "new_password"),
]
"""Where a request sets a password, which the service holds to its policy."""
POLICIES = {
    "default": ({"password_policy": "default"}, None),
    "nist": ({"password_policy": "nist", "password_max_length": 64}, None),
    "given in code": ({}, PasswordPolicy(min_length=10, max_length=80, require_digit=False)),
}


def refuses(policy: PasswordPolicy, password: str, *names: str) -> bool:
    try:
        policy.check(password, *names)
    except WeakPasswordError:
        return True
    return False


@pytest.mark.parametrize("name", POLICIES)
def test_the_document_describes_the_password_policy_the_service_runs(name: str) -> None:
    """Each field that sets a password says what the service's policy refuses: its
    lengths as minLength and maxLength, and in words each rule a password can break."""
    settings, given = POLICIES[name]
    service = S3AuthService(make_settings(**settings), password_policy=given)
    policy = service.password_policy
    document = create_auth_app(service).openapi.for_mount("/auth")
    assert NEW_PASSWORD.encode() not in msgspec.json.encode(document)  # none left generic
    schemas = document["components"]["schemas"]
    field = schemas[NEW_PASSWORDS[0][0]]["properties"][NEW_PASSWORDS[0][1]]
    assert all(schemas[s]["properties"][f] == field for s, f in NEW_PASSWORDS)
    assert field["type"] == "string"
    said = field["description"]

    def sized(length: int) -> str:
        return ("Aa1-" + "correct-horse-battery-staple-" * 10)[:length]

    good = sized(40)  # within each policy's lengths
    common = "1QAZ2wsx3edc4rfv"  # one of the common passwords, and breaks no other rule
    assert not refuses(msgspec.structs.replace(policy, refuse_common=False), common)
    username = "Wonderland-Alice-42"
    probes = {
        "upper-case": refuses(policy, good.lower()),
        "lower-case": refuses(policy, good.upper()),
        "digit": refuses(policy, good.replace("1", "x")),
        "control characters": refuses(policy, good[:-1] + "\x07"),
        "common": refuses(policy, common),
        "username": refuses(policy, username, username, "alice@example.com"),
    }
    assert {words: words in said for words in probes} == probes, said
    shortest, longest = field["minLength"], field["maxLength"]
    assert refuses(policy, sized(shortest - 1)) and not refuses(policy, sized(shortest))
    assert refuses(policy, sized(longest + 1)) and not refuses(policy, sized(longest))
    assert f"{shortest} to {longest} characters" in said


def _answer(
    method: str, path: str, status: int, body: dict[str, Any] | None = None, **headers: str
) -> httpx.Response:
    """An answer to `method` `path` under /auth: `body` as a problem, unless a
    content-type is given; nosniff unless `x_content_type_options` says otherwise."""
    content = b"" if body is None else msgspec.json.encode(body)
    if body is not None:
        headers.setdefault("content_type", "application/problem+json")
    headers.setdefault("x_content_type_options", "nosniff")
    headers = {name: value for name, value in headers.items() if value}
    fields = {name.replace("_", "-"): value for name, value in headers.items()}
    request = httpx.Request(method, f"http://testserver/auth{path}")
    return httpx.Response(status, headers=fields, content=content, request=request)


ID = "0" * 32
UNDECLARED = {
    "a status the operation lacks": (
        _answer("POST", "/logout-all", 404, {"code": "user_not_found"}),
        r"undeclared \(it declares \['200', '400', '401', '503'\]\)",
    ),
    "an error that is no problem": (
        _answer("GET", "/me", 503, {}, content_type="text/plain"),
        r"not a declared \['application/problem\+json'\]",
    ),
    "a 409 code not listed": (
        _answer("POST", "/register", 409, {"code": "email_taken"}),
        r"not a declared code \['account_exists'\]",
    ),
    "a refusal without its challenge": (
        _answer("GET", "/me", 401, {"code": "invalid_token"}),
        "without WWW-Authenticate",
    ),
    "a 503 without Retry-After": (
        _answer("POST", "/login", 503, {"code": "store_unavailable"}),
        "without Retry-After",
    ),
    "a body to a 204": (_answer("DELETE", f"/sessions/{ID}", 204, {}), "a body where none"),
    "a token endpoint's refusal without its OAuth error": (
        _answer(
            "POST", "/refresh", 401, {"code": "token_expired", "title": "x"}, www_authenticate="B"
        ),
        "^POST /auth/refresh answered 401",
    ),
    "another OAuth error than the code's": (
        _answer(
            "POST",
            "/login",
            401,
            {"code": "invalid_credentials", "title": "x", "error": "invalid_request"},
            www_authenticate="B",
        ),
        "^POST /auth/login answered 401",
    ),
    "a code the operation does not list": (
        _answer("POST", "/login", 422, {"code": "weak_password", "title": "x"}),
        r"not a declared code \['validation_error'\]",
    ),
    "an OAuth error outside the token endpoints": (
        _answer("GET", "/me", 503, {"code": "store_unavailable", "error": "x"}, retry_after="1"),
        "^GET /auth/me answered 503",
    ),
    "an answer a browser may sniff": (
        _answer("GET", "/me", 200, {}, content_type="application/json", x_content_type_options=""),
        r"^X-Content-Type-Options \[\]: GET /auth/me answered 200",
    ),
    "an unknown path's error, no problem": (
        _answer("GET", "/x", 404, {}, content_type="text/plain"),
        "^GET /auth/x answered 404 text/plain",
    ),
}
DECLARED = {
    "a templated path's 404": _answer(
        "DELETE", f"/admin/users/{ID}/sessions/{ID}", 404, {"code": "session_not_found"}
    ),
    "a 409 code listed": _answer("POST", "/register", 409, {"code": "account_exists"}),
    "a refusal with its challenge": _answer(
        "GET", "/me", 401, {"code": "invalid_token"}, www_authenticate="Bearer"
    ),
    "a 204": _answer("POST", "/logout", 204),
    "a token endpoint's refusal": _answer(
        "POST",
        "/login",
        401,
        {
            "title": "Invalid username or password",
            "code": "invalid_credentials",
            "error": "invalid_grant",
            "error_description": "Invalid username or password",
        },
        www_authenticate="Bearer",
    ),
    "an unknown path's problem": _answer("GET", "/x", 404, {"code": "not_found"}),
    "the document itself": _answer(
        "GET", "/openapi.json", 200, {}, content_type="application/json"
    ),
}


@pytest.mark.parametrize(("answer", "why"), UNDECLARED.values(), ids=UNDECLARED)
def test_the_check_of_declared_answers_refuses_what_the_document_does_not_say(
    answer: httpx.Response, why: str
) -> None:
    with pytest.raises(AssertionError, match=why):
        DeclaredAnswers(DOCUMENT).check(answer)


@pytest.mark.parametrize("answer", DECLARED.values(), ids=DECLARED)
def test_the_check_of_declared_answers_takes_what_the_document_says(
    answer: httpx.Response,
) -> None:
    DeclaredAnswers(DOCUMENT).check(answer)


def test_the_token_endpoints_declare_their_refusals_with_the_oauth_error() -> None:
    for path, item in DOCUMENT["paths"].items():
        for operation in item.values():
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                schema = response["content"]["application/problem+json"]["schema"]
                token_endpoint = path in ("/login", "/login/totp", "/refresh")
                assert refers_to(schema, "TokenProblem") == token_endpoint, (path, status)
                assert refers_to(schema, "Problem") != token_endpoint, (path, status)
                if token_endpoint:  # each code they may answer has its OAuth error
                    assert set(listed_codes(schema) or ()) <= set(TOKEN_ERRORS), (path, status)
    with pytest.raises(AssertionError, match="'weak_password' has no OAuth error"):
        refusal = _answer("POST", "/login", 500, {"code": "weak_password", "title": "x"})
        DeclaredAnswers(DOCUMENT).check_problem(refusal)
    declared = DOCUMENT["components"]["schemas"]["TokenProblem"]
    assert set(declared["properties"]["error"]["anyOf"][0]["enum"]) == set(TOKEN_ERRORS.values())
    assert {"title", "status", "code", "error", "error_description"} <= set(declared["properties"])


@pytest.mark.anyio
async def test_the_app_serves_the_document_for_its_mount_point() -> None:
    async with client_for(mounted(make_service())) as client:
        response = await client.get("/auth/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == DOCUMENT


@pytest.mark.anyio
async def test_each_error_declares_the_headers_it_is_sent_with() -> None:
    # Every refusal with 401 or 403 carries a Bearer challenge; a 429 or 503 says when
    # to retry.
    sent_with = {"401": "WWW-Authenticate", "403": "WWW-Authenticate", "429": "Retry-After"}
    sent_with["503"] = "Retry-After"
    for path, item in [*DOCUMENT["paths"].items(), *LIMITED["paths"].items()]:
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status in sent_with:
                    assert sent_with[status] in response.get("headers", {}), (method, path, status)
    assert "429" in LIMITED["paths"]["/login"]["post"]["responses"]
    service = make_service()
    async with client_for(mounted(service)) as client:
        await register(client, "alice")
        refused = await client.get(
            "/auth/admin/users", headers=bearer(await login(client, "alice"))
        )
    assert refused.status_code == 403
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]


class Harness:
    """The app, a memory store and an administrator, all living on one event loop that
    the (synchronous) schemathesis tests reach through a portal."""

    def __init__(self, portal: anyio.from_thread.BlockingPortal) -> None:
        self.portal = portal
        self.service = make_service()
        # The app itself at /auth, as a server with --root-path /auth runs it: a host's
        # router has limits of its own (Starlette's Mount does not match a path holding a
        # newline, and answers such a request with a plain-text 404).
        self.client = client_for(create_auth_app(self.service, rate_limit=False), root_path="/auth")
        self.admin = portal.call(
            functools.partial(
                self.service.create_user, "root", "root@example.com", PASSWORD, is_admin=True
            )
        )

    def fresh_token(self) -> str:
        """A new session for every case: the previous case may have logged out."""
        return self.portal.call(self._fresh_token)

    async def _fresh_token(self) -> str:
        admin = await self.service.get_user_by_id(self.admin.id)
        if admin is None or not admin.is_active or not admin.is_admin:
            self.admin = await self.service.create_user(
                f"root{len(self.service.store.requests)}",
                f"root{len(self.service.store.requests)}@example.com",
                PASSWORD,
                is_admin=True,
            )
            admin = self.admin
        return (await self.service.create_token_pair(admin)).access_token

    def send(self, kwargs: dict[str, Any]) -> httpx.Response:
        return self.portal.call(self._send, kwargs)

    async def _send(self, kwargs: dict[str, Any]) -> httpx.Response:
        request: dict[str, Any] = {key: kwargs[key] for key in ("method", "url")}
        # A field value may hold obs-text (bytes 0x80 to 0xFF, as an If-Match entity tag
        # may): sent as those bytes, where the client would refuse a str that is not ASCII.
        request["headers"] = {
            name: value.encode("latin-1") if isinstance(value, str) else value
            for name, value in (kwargs["headers"] or {}).items()
        }
        request["params"] = kwargs.get("params")
        if kwargs.get("cookies"):  # per-request cookies: only when the case has some
            self.client.cookies = kwargs["cookies"]
        if "json" in kwargs:
            request["json"] = kwargs["json"]
        if "data" in kwargs:
            data = kwargs["data"]
            request["content" if isinstance(data, str | bytes) else "data"] = data
        return await self.client.request(**request)


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    with anyio.from_thread.start_blocking_portal("asyncio") as portal:
        yield Harness(portal)


schema = schemathesis.openapi.from_dict(DOCUMENT)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_5xx_and_no_response_outside_the_document(case: Any, harness: Harness) -> None:
    headers = {"Authorization": f"Bearer {harness.fresh_token()}"}
    kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
    response = harness.send(kwargs)
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )

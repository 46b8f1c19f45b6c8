"""The middleware example of the docs/frameworks pages runs as written: register and log in
through the mounted auth app, then anonymous, valid, wrong-scope, WebSocket and logged-out
requests; the FastAPI and Litestar pages' walkthrough grants a scope as they say; each
page's `/items` answers the very text its curl line shows; and the README's protected app
answers its curl walkthrough, whose steps start the server as the settings require."""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from support import FRAMEWORKS, asgi_client, websocket_scope, websocket_session

import s3auth_asgi
from s3auth_asgi.middleware.bearer import BearerTokenMiddleware
from s3auth_asgi.middleware.blacklist import BlacklistMiddleware
from s3auth_asgi.middleware.requires import requires
from s3auth_asgi.middleware.user import AnonymousUser, AuthenticatedUser, current_user
from s3auth_asgi.problems import auth_error_response

pytestmark = pytest.mark.anyio

DOCS = Path(__file__).resolve().parent.parent / "docs" / "frameworks"
PAGES = tuple(page for page in FRAMEWORKS if page not in ("fastapi", "litestar"))
"""The pages that lead with the middlewares. The FastAPI and Litestar pages lead with their
integrations (`include_auth`, `S3AuthPlugin`), whose examples tests/test_app_fastapi.py and
tests/test_app_litestar.py drive; tests/test_docs_snippets.py runs every block of every
page."""

# The names the pages import from the top-level package.
PUBLIC_NAMES = {
    "AnonymousUser": AnonymousUser,
    "AuthenticatedUser": AuthenticatedUser,
    "BearerTokenMiddleware": BearerTokenMiddleware,
    "BlacklistMiddleware": BlacklistMiddleware,
    "auth_error_response": auth_error_response,
    "current_user": current_user,
    "requires": requires,
}


def example_code(page: str) -> str:
    text = (DOCS / f"{page}.md").read_text()
    match = re.search(r"```python\n(.*?)```", text, re.DOTALL)
    assert match, f"no python example in {page}.md"
    return match.group(1)


def documented_items(page: str) -> str:
    """What the page's curl example says `/items` answers with a token, as curl prints it."""
    text = (DOCS / f"{page}.md").read_text()
    match = re.search(r"curl -s localhost:8000/items -H .*?# (\{.*\})", text)
    assert match, f"no documented /items answer in {page}.md"
    json.loads(match.group(1))  # the page shows a JSON body
    return match.group(1)


def load_example(page: str, monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """The first example of the page, run as a module on a memory store."""
    for name, value in PUBLIC_NAMES.items():
        assert getattr(s3auth_asgi, name) is value, name  # the docs import the top level
    monkeypatch.setenv("S3AUTH_SECRET_KEY", "docs-example-secret-key-0123456789abcdef")
    monkeypatch.setenv("S3AUTH_STORE_URL", "memory://")
    monkeypatch.setenv("S3AUTH_ARGON2_MEMORY_KIB", "1024")
    monkeypatch.setenv("S3AUTH_ARGON2_TIME_COST", "1")
    module = types.ModuleType(f"docs_example_{page}")
    monkeypatch.setitem(sys.modules, module.__name__, module)  # Litestar reads its globals
    exec(compile(example_code(page), f"docs/frameworks/{page}.md", "exec"), module.__dict__)  # noqa: S102
    return module


@pytest.fixture
def example_app(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    return load_example(request.param, monkeypatch).app


@pytest.mark.parametrize("example_app", PAGES, indirect=True)
async def test_the_example_runs_as_documented(
    example_app: Any, request: pytest.FixtureRequest
) -> None:
    page = request.node.callspec.params["example_app"]
    async with asgi_client(example_app) as http:
        registered = await http.post(
            "/auth/register",
            json={"username": "alice", "email": "alice@example.com", "password": "Secret123!"},
        )
        assert registered.status_code == 201, registered.text
        login = await http.post("/auth/login", data={"username": "alice", "password": "Secret123!"})
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}

        assert (await http.get("/health")).json() == {"ok": True}
        anonymous = await http.get("/items")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == 'Bearer realm="api"'
        items = await http.get("/items", headers=auth)
        assert items.text.removesuffix("\n") == documented_items(page)  # Quart ends a line
        admin = await http.get("/admin", headers=auth)
        assert admin.status_code == 403
        assert admin.json()["code"] == "insufficient_scope"

        socket = await websocket_session(
            example_app, websocket_scope("/ws", subprotocols=["bearer", token])
        )
        assert socket.texts == ["alice: hello"]
        refused = await websocket_session(example_app, websocket_scope("/ws"))
        assert refused.first["code"] == 1008

        assert (await http.post("/auth/logout", headers=auth)).status_code == 204
        revoked = await http.get("/items", headers=auth)
        assert revoked.status_code == 401
        assert revoked.json()["code"] == "token_revoked"


@pytest.mark.parametrize("page", ["fastapi", "litestar"])
async def test_the_walkthrough_grants_an_ordinary_scope(
    page: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The integration pages' steps: `/reports` refuses alice until an administrator grants
    her the `reports` scope, which does not make her one."""
    example = load_example(page, monkeypatch)
    await example.auth.create_user("root", "root@example.com", "Secret123!", is_admin=True)
    async with asgi_client(example.app) as http:

        async def login(name: str) -> dict[str, str]:
            form = {"username": name, "password": "Secret123!"}
            response = await http.post("/auth/login", data=form)
            assert response.status_code == 200, response.text
            return {"Authorization": f"Bearer {response.json()['access_token']}"}

        account = {"username": "alice", "email": "alice@example.com", "password": "Secret123!"}
        alice_id = (await http.post("/auth/register", json=account)).json()["id"]
        alice = await login("alice")
        assert (await http.get("/items", headers=alice)).text == documented_items(page)
        refused = await http.get("/reports", headers=alice)
        assert refused.status_code == 403 and refused.json()["code"] == "insufficient_scope"
        granted = await http.patch(
            f"/auth/admin/users/{alice_id}",
            json={"scopes": ["reports"]},
            headers=await login("root"),
        )
        assert granted.status_code == 200, granted.text
        assert granted.json()["is_admin"] is False
        alice = await login("alice")
        reports = await http.get("/reports", headers=alice)
        assert reports.json() == {"reports_for": "alice", "user_id": alice_id}
        assert (await http.get("/auth/admin/users", headers=alice)).status_code == 403


# The README's walkthrough ------------------------------------------------------------------

README = DOCS.parent.parent / "README.md"


def readme_section(heading: str) -> str:
    """The text of the README's `### heading`, up to the next heading."""
    text = README.read_text()
    match = re.search(rf"^### {re.escape(heading)}\n(.*?)^#", text, re.DOTALL | re.MULTILINE)
    assert match, f"README.md has no section {heading!r}"
    return match.group(1)


async def test_the_readme_walkthrough_answers_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's protected app, served as its next section says, answers the curl lines:
    the steps set the secret key, without which `uvicorn app:app` stops at start-up."""
    section = readme_section("The auth endpoints")
    steps = "".join(block.split("```", 1)[0] for block in section.split("```sh\n")[1:])
    served = steps.index("uvicorn app:app")
    assert re.search(r"^export S3AUTH_SECRET_KEY=", steps[:served], re.MULTILINE), steps
    for call in ("/auth/register", "/auth/login", "/auth/me"):
        assert call in steps[served:], call
    code = readme_section("Protect an app").split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.setenv("S3AUTH_SECRET_KEY", "docs-example-secret-key-0123456789abcdef")
    monkeypatch.setenv("S3AUTH_ARGON2_MEMORY_KIB", "1024")
    monkeypatch.setenv("S3AUTH_ARGON2_TIME_COST", "1")
    monkeypatch.delenv("S3AUTH_STORE_URL", raising=False)  # the README sets none: memory://
    example: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), example)  # noqa: S102
    async with asgi_client(example["app"]) as http:
        account = {"username": "alice", "email": "alice@example.com", "password": "Secret123!"}
        assert (await http.post("/auth/register", json=account)).status_code == 201
        form = {"username": "alice", "password": "Secret123!"}
        login = await http.post("/auth/login", data=form)
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        me = await http.get("/auth/me", headers=auth)
        assert me.json()["username"] == "alice"
        mine = await http.get("/me", headers=auth)
        assert mine.json() == {"id": me.json()["id"], "name": "alice", "scopes": ["authenticated"]}
        assert (await http.get("/me")).status_code == 401

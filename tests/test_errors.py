"""The error tree: each branch means one kind of failure, and `problems` answers each error
with the status, code and headers its class declares."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import s3auth_asgi.app.errors as app_errors
import s3auth_asgi.errors as errors
from s3auth_asgi.account_tokens import InvalidAccountTokenError  # noqa: F401 - among them
from s3auth_asgi.demo.loopback import MisdirectedRequestError
from s3auth_asgi.hash_costs import CostlyHashError  # noqa: F401 - among the errors
from s3auth_asgi.hooks import HookFailedError  # noqa: F401 - among the errors
from s3auth_asgi.keys.names import UnusableKeyError
from s3auth_asgi.keys.remote import KeysUnavailableError  # noqa: F401 - among the errors
from s3auth_asgi.problems import PROBLEM_CONTENT_TYPE, STORE_RETRY_AFTER_SECONDS, render
from s3auth_asgi.storage.base import CorruptObjectError
from s3auth_asgi.totp_errors import MfaRequiredError, WrongTotpCodeError


def _all_errors() -> list[type[errors.S3AuthError]]:
    found: list[type[errors.S3AuthError]] = []
    todo = [errors.S3AuthError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return [cls for cls in found if cls.__module__.startswith("s3auth_asgi")]


BRANCHES = {
    errors.AuthenticationError: 401,
    errors.PermissionDeniedError: 403,
    errors.ConflictError: 409,
    errors.PreconditionFailedError: 412,
    errors.NotFoundError: 404,
    errors.RateLimitedError: 429,
    errors.StoreUnavailableError: 503,
}


def test_every_error_belongs_to_one_branch_and_keeps_its_status() -> None:
    # The one documented exception: a wrong *current* password is a 403.
    exceptions = {app_errors.WrongCurrentPasswordError, WrongTotpCodeError}
    for cls in _all_errors():
        branches = [b for b in (*BRANCHES, errors.S3ValidationError) if issubclass(cls, b)]
        outside = (
            errors.S3AuthError,
            errors.ConfigurationError,
            UnusableKeyError,
            app_errors.MethodNotAllowedError,
            app_errors.CrossOriginRequestError,  # 403, but not about the caller
            app_errors.EmailNotVerifiedError,  # 403 at a login: no scope would help
            app_errors.AdminPasswordSetDisabledError,  # 403 by a setting: no scope would help
            errors.TokenTooLargeError,  # 403 at a login or a refresh: no scope would help
            MfaRequiredError,  # 403 at a login: no scope would help
            app_errors.InternalError,  # a bug's 500, as the root's
            app_errors.AuthNotConfiguredError,  # a host's setup's 500, as the root's
            MisdirectedRequestError,  # the demo's: a Host it does not answer for
        )
        if cls in outside:
            assert branches == [], cls
            continue
        assert len(branches) == 1, (cls, branches)
        if branches[0] in BRANCHES and cls not in exceptions:
            assert cls.status == BRANCHES[branches[0]], cls
    assert {cls for cls in _all_errors() if cls.status == 403} >= exceptions


def test_the_root_is_neutral_and_failures_of_the_system_are_not_authentication() -> None:
    assert errors.S3AuthError.status == 500
    for cls in (errors.StoreUnavailableError, errors.ConfigurationError, errors.ConflictError):
        assert not issubclass(cls, errors.AuthenticationError)
    assert not issubclass(errors.ConflictError, ValueError)
    assert issubclass(errors.ConfigurationError, ValueError)
    assert issubclass(errors.S3ValidationError, ValueError)


def test_codes_are_unique_but_for_the_scope_pair() -> None:
    codes: dict[str, list[str]] = {}
    for cls in _all_errors():
        codes.setdefault(cls.code, []).append(cls.__name__)
    shared = {code: sorted(names) for code, names in codes.items() if len(names) > 1}
    # An unknown kid, or a key that does not match the token, is an invalid token to the
    # client; its class only lets a verifier whose keys change read them again and retry. A
    # refresh lost to later rotations is a revoked token to the client; its class only lets
    # browser mode keep the cookie.
    assert shared == {
        "insufficient_scope": ["InsufficientScopeError", "PermissionDeniedError"],
        "invalid_token": [
            "InvalidTokenError",
            "KeyMismatchError",
            "PossiblyReplacedKeyError",
            "UnknownSigningKeyError",
        ],
        "token_revoked": ["RotatedMeanwhileError", "TokenRevokedError"],
    }


@pytest.mark.parametrize("cls", _all_errors(), ids=lambda cls: cls.__name__)
def test_each_error_is_rendered_as_its_class_declares(cls: type[errors.S3AuthError]) -> None:
    error = (
        cls(["admin"])  # type: ignore[call-arg]
        if issubclass(cls, errors.InsufficientScopeError)
        else cls("why", headers=[("X-Extra", "1")])
    )
    status, headers, body = render(error)
    names = [name for name, _ in headers]
    assert status == cls.status
    assert dict(headers)["content-type"] == PROBLEM_CONTENT_TYPE
    assert dict(headers)["cache-control"] == "no-store"
    assert len(names) == len(set(names))
    document = json.loads(body)
    assert document["status"] == cls.status and document["code"] == cls.code
    # RFC 6750 §3.1: a malformed request's 400 carries the challenge, naming its error.
    challenged = status in (401, 403) or cls is errors.InvalidRequestError
    assert ("www-authenticate" in names) == challenged
    assert ("retry-after" in names) == (status == 503)
    if not issubclass(cls, errors.InsufficientScopeError):
        assert dict(headers)["x-extra"] == "1"
        assert document["detail"] == "why"


def test_a_503_keeps_the_retry_after_its_error_carries() -> None:
    _, headers, _ = render(CorruptObjectError("x", headers=[("Retry-After", "30")]))
    assert [value for name, value in headers if name == "retry-after"] == ["30"]
    _, headers, _ = render(errors.StoreUnavailableError())
    assert dict(headers)["retry-after"] == str(STORE_RETRY_AFTER_SECONDS)


def test_the_errors_page_draws_every_error_with_its_status_and_code() -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "errors.md").read_text()
    tree = page.split("```")[1].splitlines()
    for cls in _all_errors():
        (line,) = [line for line in tree if re.search(rf"\b{cls.__name__}\b", line)]
        drawn = [word for word in line.split(cls.__name__, 1)[1].split() if word != "(ValueError)"]
        if drawn[0].isdigit():
            assert int(drawn[0]) == cls.status, line
            drawn = drawn[1:]
        else:  # the configuration errors: raised at start-up, never answered
            assert issubclass(cls, errors.ConfigurationError), line
        assert drawn[0] == cls.code, line
    assert len(_all_errors()) >= 40  # every module with errors was imported


NOT_ANSWERED_BY_THE_AUTH_APP = {
    "error": "the neutral root",
    "authentication_failed": "a branch",
    "inactive_user": "never raised: a disabled account is answered as invalid_credentials",
    "configuration_error": "raised at start-up",
    "unusable_key": "raised at start-up",
    "misdirected_request": "the demo's, around the auth app",
    "hash_too_costly": "an import's, from code or the CLI",
    "auth_not_configured": "a host's route, in an app not given the service",
}


def test_the_endpoints_page_lists_every_code_the_auth_app_answers() -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "endpoints.md").read_text()
    table = page.split("| status | codes | when |", 1)[1].split("\n\n", 1)[0]
    listed: dict[str, int] = {}
    for row in table.splitlines()[2:]:
        status, codes = row.strip().strip("|").split("|")[:2]
        listed.update(dict.fromkeys(re.findall(r"`([a-z_]+)`", codes), int(status)))
    answered = {
        cls.code: cls.status
        for cls in _all_errors()
        if cls.code not in NOT_ANSWERED_BY_THE_AUTH_APP
    }
    assert listed == answered

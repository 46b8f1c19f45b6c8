"""Who is calling: the one place the auth app checks a bearer token, applying the access
an operation declares.

Behind BearerTokenMiddleware given the service (or its TokenCodec) the token's signature
and lifetime have been checked already and its claims are in `scope["auth"]`; mounted
without it, or behind one given another verifier, the token is verified here. Credentials
another verifier made (an identity provider's JWKS, another service's keys, a JwksVerifier
over the service's own) or a host's code built are never taken for a caller: their `sub`
and `sid` would name a user and a session of this service that token never came from
(`verifier.verifier_identity`).
Revocation is checked here either way (BlacklistMiddleware may not be installed), against
the snapshot brought within the freshness bound by the one policy (`freshness`). So the
app works with or without the middlewares, and every endpoint gets the same `Caller`.

Then the caller's account is read (`Operation.reads_account`): a login that passed its
password check as its account was being deleted, disabled or stripped of administration
writes its session after the change listed the sessions, so no revocation names its access
token (`session_generation`), and only the user record shows the change; a deletion cut
short after closing the record has ended no session yet. One GET, which the operations
that read the record anyway do not repeat: they judge theirs by the same rule
(`usable_account`).

An operation that asks for a recent authentication (`Operation.max_age`: the
administrators', with S3AUTH_ADMIN_MAX_AGE_SECONDS) is refused from the token's
`auth_time`, by the check and the challenge of a host's routes (`step_up`), once the
caller is known to be allowed otherwise: before the record is read, so a refusal costs no
request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

from starlette.requests import Request

from ..errors import AuthenticationRequiredError, InvalidTokenError, PermissionDeniedError
from ..middleware.cache import VerifiedToken
from ..middleware.credentials import authorization_token
from ..middleware.user import token_scopes
from ..models import User
from ..privileges import ADMIN_SCOPE, is_administrator
from ..step_up import require_recent
from ..verifier import (
    AccessTokenVerifier,
    RevocationCheck,
    TokenJudge,
    verifier_identity,
)
from .operations import Access, Operation


class Caller(NamedTuple):
    user_id: str
    session_id: str
    is_admin: bool
    account: User | None = None
    """The caller's user record, where the operation reads it (`Operation.reads_account`)."""
    auth_time: object = None
    """The token's `auth_time` claim, as it came (`step_up` judges it)."""


class Accounts(Protocol):
    async def get_user_by_id(self, user_id: str) -> User | None: ...


def account_gone() -> InvalidTokenError:
    """A valid token whose account has gone (deleted as its login ran, or a deletion cut
    short): it can do nothing, so it is as good as invalid, and the client's answer to
    that, logging in again, is right."""
    return InvalidTokenError("The account of this token no longer exists")


def usable_account(account: User | None, access: Access = "bearer") -> User:
    """The caller's user record, if it lets the caller's token act. Where the token and
    the record disagree the record wins, the token being as old as the login that may have
    raced a change: a 401 problem when the account is gone (or closed by its deletion) or
    disabled, a 403 when an administrator's token outlived the power for an operation
    that needs it."""
    if account is None or account.deleting:
        raise account_gone()
    if not account.is_active:
        raise InvalidTokenError("The account of this token is disabled")
    if access == "admin" and not is_administrator(account.is_admin, account.scopes):
        raise PermissionDeniedError("This endpoint is for administrators")
    return account


class CallerCheck:
    """Resolves the caller of a request for an operation's declared access."""

    def __init__(
        self, verifier: AccessTokenVerifier, revocations: RevocationCheck, accounts: Accounts
    ) -> None:
        self.verifier = verifier
        self.revocations = revocations
        self.accounts = accounts
        self._own = verifier_identity(verifier)
        self._judge = TokenJudge(verifier, verifier.verify_access_token)

    async def resolve(self, request: Request, access: Access) -> Caller | None:
        """None for a public operation; the caller otherwise, or a 401 problem (400
        `invalid_request` for an Authorization header sent twice). Whether the caller
        may call is `admit`'s, once the caller is known: a caller refused is named."""
        if access == "public":
            return None
        return await self._authenticate(request)

    def admit(self, caller: Caller, op: Operation) -> None:
        """A 403 problem for a caller whose token does not grant `op`'s access; then a 401
        `reauthentication_required` where `op` asks for a more recent authentication than
        the token's (`step_up`)."""
        if op.access == "admin" and not caller.is_admin:
            raise PermissionDeniedError("This endpoint is for administrators")
        verifier = self.verifier
        require_recent(
            {"auth_time": caller.auth_time},
            op.max_age,
            verifier.clock(),
            leeway=verifier.leeway_seconds,
        )

    async def with_account(self, caller: Caller, access: Access) -> Caller:
        """The caller with its user record (1 GET), if the record lets it act
        (`usable_account`)."""
        account = await self.accounts.get_user_by_id(caller.user_id)
        return caller._replace(account=usable_account(account, access))

    async def _authenticate(self, request: Request) -> Caller:
        credentials = request.scope.get("auth")
        if isinstance(credentials, VerifiedToken) and credentials.verified_by is self._own:
            claims: Mapping[str, Any] = credentials.user.claims
            await self.revocations.ensure_fresh()
        else:
            token = authorization_token(request.scope)
            if token is None:
                raise AuthenticationRequiredError(
                    "Send the access token as `Authorization: Bearer …`"
                )
            # Judged before revocations are asked for, as behind the middlewares: a forged
            # token is refused while the store is down (`verifier.TokenJudge`).
            claims = await self._judge.judge(token)
            await self.revocations.ensure_fresh()
        revoked = self.revocations.revoked_error(claims)
        if revoked is not None:
            raise revoked
        user_id, session_id = claims.get("sub"), claims.get("sid")
        if not isinstance(user_id, str) or not isinstance(session_id, str):
            raise InvalidTokenError("The token names no user or session")
        # The one rule (`privileges`): the flag and the scope go together in every token
        # this package mints; either one makes an administrator.
        admin = claims.get("adm") is True or ADMIN_SCOPE in token_scopes(claims)
        return Caller(user_id, session_id, admin, auth_time=claims.get("auth_time"))

"""Login notices (OWASP ASVS 5.0 6.3.5): the account's address is told

- of a login from a device the account has not been seen on (`new_device_notice`): a
  successful login that shows no valid device cookie of the account, in the cookie or in
  the `S3Auth-Device` header (`devices`). A client without cookies that keeps the value a
  login set and sends it back is a known device; one that does not is told of at each
  login, within the budget below. A cookie from before the account's sessions were last
  ended (a new password) is no longer valid, so each device's first login after it is told
  of again;
- of its failure budget spent (`failed_logins_notice`): the wrong password whose charge left
  the account's budget (`login_account`, `login_account_daily`) with no room. Later ones
  are refused before they are checked and tell nothing, until the budget admits one more:
  one notice each time it is spent, not one per failure. Its mail quotes no User-Agent:
  anybody can type wrong passwords, and would choose words for the owner's inbox.

A notice names the time (UTC), the client address as sessions record it and, of a new
device, its User-Agent as sessions record it (without control characters, cut to 256); no
link and no token. Nothing is decided on the request's path: the answer is given, and its
store requests made, as without notices. Once the answer is sent (`mail.held_mail`), in the
background, the notice is counted per account and kind against `login_notice`
(`auth_limits`; at the same cost whatever it decides), and past it nothing is mailed; a
spent budget is counted so under a name that is nobody's too, and that name's decoy record
read where an account's record is, so that the work after the answer is the same. Each
notice mailed or dropped by its budget is an auth event of its kind (`success`, or
`refused` with `rate_limited`) naming the client address and the User-Agent of the login
that made it, as that login's own event names them (`user_agents`). Without a mailer, or
with S3AUTH_NEW_DEVICE_NOTICES or S3AUTH_FAILED_LOGIN_NOTICES off, nothing is counted,
mailed or logged."""

from __future__ import annotations

import time
from typing import Literal

from starlette.datastructures import Headers

from ..events import emit, new_event
from ..mail.delivery import LaterMessage
from ..mail.message import Message
from ..models import User
from ..name_index import NameLookup, owner_account
from ..service import S3AuthService
from ..storage.access import get_or_none
from ..types import Scope
from ..user_agents import reported_user_agent
from .attempts import Attempt
from .limits import AuthRateLimits

NOTICE_LIMIT = "login_notice"
NoticeKind = Literal["new_device_notice", "failed_logins_notice"]


def _utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def _user_agent(scope: Scope) -> str | None:
    """The login's User-Agent as its own event names it (`app.events`)."""
    return reported_user_agent(Headers(scope=scope).get("user-agent"))


class LoginNotices:
    """Starts the notices of one app's logins (see the module)."""

    def __init__(self, service: S3AuthService, limits: AuthRateLimits) -> None:
        self.service = service
        self.limits = limits

    def new_device(self, scope: Scope, user: User) -> None:
        """A login of `user` showed no valid device cookie of the account."""
        if not (self.service.settings.new_device_notices and self.service.mail.enabled):
            return
        user_agent = _user_agent(scope)
        details = self._details(scope, device=user_agent or "unknown")
        kind: NoticeKind = "new_device_notice"

        async def make() -> Message | None:
            account = owner_account(user.id)
            if not await self._admitted(scope, kind, account, user.id, details, user_agent):
                return None
            return self._message(kind, user, details, user_agent)

        self.service.mail.send_later(LaterMessage(kind, make))

    def spent(
        self,
        scope: Scope,
        attempt: Attempt,
        *,
        login: NameLookup | None = None,
        user: User | None = None,
    ) -> None:
        """`attempt` spent the failure budget of the account `login` names (a name that is
        nobody's: of that name), or of `user`, the caller, whose record is read already."""
        if not attempt.spent_account:
            return
        if not (self.service.settings.failed_login_notices and self.service.mail.enabled):
            return
        user_id: str | None
        if user is not None:
            user_id, account = user.id, owner_account(user.id)
        elif login is not None:
            user_id, account = login.user_id, login.owner_key
        else:
            return
        # The event names it; the mail does not (see the module).
        user_agent = _user_agent(scope)
        details = self._details(scope)
        kind: NoticeKind = "failed_logins_notice"

        async def make() -> Message | None:
            if not await self._admitted(scope, kind, account, user_id, details, user_agent):
                return None
            found = user if user is not None else await self._owner(login)
            if found is None or not found.is_active:
                return None
            return self._message(kind, found, details, user_agent)

        self.service.mail.send_later(LaterMessage(kind, make))

    def _details(self, scope: Scope, **more: str) -> dict[str, str]:
        client = self.limits.client_ip(scope) or "unknown"
        return {"time": _utc(self.service.clock()), "client": client, **more}

    async def _owner(self, login: NameLookup | None) -> User | None:
        """The record of the account `login` names, read as a login reads it: a name that
        is nobody's reads its decoy (`NameLookup.decoy_user_key`)."""
        if login is None:
            return None
        if login.index is None and login.normalised is not None:
            await get_or_none(self.service.store, login.decoy_user_key, User)
            return None
        found = await self.service.names.owner(login)
        return found.value if found is not None else None

    async def _admitted(
        self,
        scope: Scope,
        kind: NoticeKind,
        account: str,
        user_id: str | None,
        details: dict[str, str],
        user_agent: str | None,
    ) -> bool:
        """Whether the account's budget for notices of `kind` admits one more (no limiter,
        or none named `login_notice`: yes). A refusal is logged as the event of `kind`; an
        admission is once the notice is made."""
        limiter = self.limits.limiter
        admitted = True
        if limiter is not None and NOTICE_LIMIT in limiter.limits:
            limited, _ = await limiter.is_rate_limited(
                scope, NOTICE_LIMIT, key=f"{kind}:{account}", evenly=True
            )
            admitted = not limited
        if not admitted and user_id is not None:
            self._event(kind, user_id, details, user_agent, refused=True)
        return admitted

    def _message(
        self, kind: NoticeKind, user: User, details: dict[str, str], user_agent: str | None
    ) -> Message:
        self._event(kind, user.id, details, user_agent)
        return self.service.mail.compose(
            kind, to=user.email, username=user.username, details=details
        )

    def _event(
        self,
        kind: NoticeKind,
        user_id: str,
        details: dict[str, str],
        user_agent: str | None,
        *,
        refused: bool = False,
    ) -> None:
        emit(
            new_event(
                kind,
                "refused" if refused else "success",
                reason="rate_limited" if refused else None,
                user_id=user_id,
                client=details["client"] if details["client"] != "unknown" else None,
                user_agent=user_agent,
                clock=self.service.clock,
            )
        )

"""Rate limits of the endpoints that check passwords, create accounts or take tokens, and
where they are kept.

Login and password change are limited on failures (`attempts`): per account from any
address, per client address, and per device. Registration counts every attempt, per client
address and per client address + username (which the limiter hashes). The token endpoints
(`token`) count every request per client address, a profile change per address and per
account (`profile`, `profile_account`), a page of an audit trail per calling account
(`events_account`), and new recovery codes, ten password hashes, per calling account
(`recovery_codes_account`, kept where the login budgets are): the operations table names
the limits of each operation (`Operation.limits`), and `endpoint.Endpoint` counts them
before the handler runs. The mails of a change of address, and the notice of the owner's
new password, are counted per inbox, by the service as it decides to send them, against
the budgets of the mails asked for by name (`check_mails`).
The limits' names and default rates are `auth_limits`'.

Where the counts live is S3AUTH_RATE_LIMIT_STORE (`S3AuthSettings.rate_limit_backend`): in
the object store that holds the auth state, shared by every process, which is the default
wherever that store is shared; or in each process's memory, where N processes give N times
every limit. The token, profile and events limits always stay in memory: a forged refresh
token costs one store GET, which a per-process limit bounds well enough, and a refresh keeps
its 2 requests.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ..account_tokens import Purpose
from ..auth_limits import BUDGET_LIMITS, DEFAULT_AUTH_LIMITS, SHARED_LIMITS, stored_limits
from ..errors import RateLimitedError
from ..identifiers import IP_ADDRESS_MAX, clean_text
from ..ratelimit import (
    ClientIPResolver,
    FailureBudget,
    ObjectStoreRateLimitStore,
    RateLimit,
    RateLimiter,
    RateLimitInfo,
)
from ..ratelimit.client_options import client_options
from ..ratelimit.limiter import whole_seconds
from ..settings import S3AuthSettings
from ..storage import ObjectStore, Store
from ..types import Clock, Scope
from .attempts import SHOWN_BUDGETS, PasswordAttempts
from .operations import HandlerLimits

PER_ACCOUNT_LIMITS = (
    "token_account",
    "profile_account",
    "events_account",
    "recovery_codes_account",
)
"""Of the limits an operation declares, those counted per caller rather than per address;
a request without a caller (a refresh token in the body) is not counted against them."""

REGISTRATION = HandlerLimits(
    counted=("register", "register_account"), shown=("register", "register_account")
)
"""What a registration counts against (`check_registration`), and its answer shows."""
MAIL_REQUEST = HandlerLimits(counted=("recovery",), shown=("recovery",))
"""What a mail asked for by name counts against and its answer shows; the account's
budgets refuse nothing (`mail_admitted`)."""


INBOX_BUDGETS = ("recovery_account", "recovery_inbox")
"""The budgets of an inbox (`_mail_checks`)."""
ADMIN_MAIL = HandlerLimits(counted=(), shown=(), unshown=INBOX_BUDGETS)
"""What an administrator's reset link counts against: the owner's inbox budgets of reset
mails, which `/password/forgot` spends too (`check_mails`: a 429 with Retry-After alone)."""


def _mail_checks(kind: str, account: str) -> tuple[tuple[str, str | None, str | None], ...]:
    """The budgets a mail of `kind` (a token's purpose, or `password-changed`) to
    `account`'s inbox is counted against: per inbox and client address
    (`recovery_account`), per inbox from any address (`recovery_inbox`)."""
    key = f"{kind}:{account}"
    per_address, from_anywhere = INBOX_BUDGETS
    return ((per_address, key, None), (from_anywhere, None, f"recovery:{key}"))


def password_attempt(charged: int, *, devices: bool, mails: bool = False) -> HandlerLimits:
    """What a password attempt counts against (`attempts`): the account's and the client
    address's budgets, or, with `devices` and a device cookie, the device's in their place;
    what an answer admitting it shows; `charged`: the status of a wrong password's answer,
    which shows what it was charged to. `mails`: the change it allows mails addresses the
    caller chose, whose inboxes' budgets may refuse it too (`check_mails`)."""
    budgets = [name for name in BUDGET_LIMITS if devices or name != "login.device"]
    return HandlerLimits(
        counted=tuple(limit for name in budgets for limit in BUDGET_LIMITS[name]),
        shown=tuple(
            limit for name in budgets if name in SHOWN_BUDGETS for limit in BUDGET_LIMITS[name]
        ),
        charged=(charged,),
        unshown=INBOX_BUDGETS if mails else (),
    )


def default_limiter(
    settings: S3AuthSettings,
    extra: Mapping[str, RateLimit] | None = None,
    *,
    store: Store | None = None,
    clock: Clock = time.time,
    **options: Any,
) -> RateLimiter:
    """The default limits and `extra` ones, S3AUTH_RATE_LIMITS on top, the client as the
    settings say (`client_options`). The auth limits are kept where S3AUTH_RATE_LIMIT_STORE
    says: shared ones in `store` (pass the service's; default: a new handle on
    S3AUTH_STORE_URL) on `clock`, a wall clock; `extra` limits stay in memory, for they are
    usually high-rate. `options` as for the RateLimiter constructor, winning over the
    settings (`forwarded_header=`, `ipv6_prefix_length=`), so that the app can tell its
    clients apart as a limiter of the host's own, configured in code, does."""
    stores = {}
    if settings.rate_limit_backend == "store":
        state = store if store is not None else ObjectStore.from_url(settings.store_url)
        shared = ObjectStoreRateLimitStore(
            state, clock=clock, skew_seconds=settings.revocation_skew_seconds
        )
        stores = dict.fromkeys(SHARED_LIMITS, shared)
    defaults = {**DEFAULT_AUTH_LIMITS, **(extra or {})}
    return RateLimiter.from_settings(settings, defaults=defaults, stores=stores, **options)


def stored_auth_limits(limiter: RateLimiter) -> dict[str, RateLimit | FailureBudget]:
    """The limits and login budgets whose state the auth app keeps under `ratelimit/`, by
    the name their objects are stored under, with the windows `limiter` gives them (with
    `default_limiter`: the defaults, S3AUTH_RATE_LIMITS on top). What
    `ObjectStoreRateLimitStore.delete_expired` needs to judge the app's objects from the
    listing, and no other name: a host's own limits have windows only the host knows (their
    objects are read instead)."""
    return stored_limits(limiter.limits)


class AuthRateLimits:
    """The limits of password attempts and registrations (those the limiter has; none
    without a limiter), and the client address that sessions record: the limiter's, or
    without one, the settings' (`client_options`), as a limiter made from them reads it."""

    def __init__(
        self, limiter: RateLimiter | None, settings: S3AuthSettings, clock: Clock = time.time
    ) -> None:
        self.limiter = limiter
        self.attempts = PasswordAttempts(limiter, clock)
        self._client_ip = (
            limiter.client_resolver
            if limiter is not None
            else ClientIPResolver(**client_options(settings))
        )

    def client_ip(self, scope: Scope) -> str | None:
        """The client address as sessions, events and hooks name it. An address the
        resolver parsed is written canonically; a peer that is none is the server's text,
        which a server's own proxy-header handling takes from X-Forwarded-For as a client
        wrote it: it is cleaned and cut as stored text is, so that no log line or trail
        holds a client's control characters or kilobytes."""
        return clean_text(self._client_ip.client_ip(scope), "client", IP_ADDRESS_MAX, truncate=True)

    async def check_registration(self, scope: Scope, username: str) -> list[RateLimitInfo]:
        """Count a registration; the checks made, for the response headers, or
        RateLimitedError when refused."""
        by_address, by_name = REGISTRATION.counted
        return await self.check_named(scope, ((by_address, None, None), (by_name, username, None)))

    async def check_named(
        self, scope: Scope, checks: tuple[tuple[str, str | None, str | None], ...]
    ) -> list[RateLimitInfo]:
        """Count a request against each (limit, narrowed_to, key) the limiter has: per
        client address; per address + `narrowed_to` when given; per `key` from any address
        when given (the limiter hashes both). The checks made, for the headers, or
        RateLimitedError at the first refusal."""
        infos, admitted = await self._count(scope, checks)
        if not admitted:
            assert self.limiter is not None  # only a limiter refuses
            raise self.limiter.refusal(infos)
        return infos

    async def mail_admitted(self, scope: Scope, purpose: Purpose, account: str) -> bool:
        """Whether a mail of `purpose` asked for by name may go to `account`
        (`NameLookup.owner_key`), counted per account and client address
        (`recovery_account`), then per account from any address (`recovery_inbox`).

        Not a 429: the caller is answered as if it went. A 429 would tell whoever asked
        under a username and then an email that they are one account's, and would refuse
        the owner for what others asked. A budget refuses only within its emission interval
        of what it last admitted (5 and 6 minutes by default), so whenever one refuses, a
        mail went to the account (one that can get it) within the sum of the two, which a
        link outlives: keeping them spent sends the owner links, it does not keep them
        away. Each kind of mail has budgets of its own, so that asking for one the account
        would not get (a link to an address verified already) spends nothing of the
        other's.

        Both budgets are read and written whatever they decide (`evenly`): a refusal costs
        the store requests of an admission, and the inbox's budget, past a refusal of the
        first, is checked at a cost of 0, counting nothing for a mail that does not go. Were
        a refusal cheaper, the time an answer takes would tell whoever spends the first
        under one of the account's names, then asks under another, that both are one
        account's (and whether others spent the second)."""
        limiter = self.limiter
        if limiter is None:
            return True
        admitted = True
        for name, narrowed_to, counted_key in _mail_checks(purpose, account):
            if name in limiter.limits:
                limited, _ = await limiter.is_rate_limited(
                    scope,
                    name,
                    cost=1 if admitted else 0,
                    account=narrowed_to,
                    key=counted_key,
                    evenly=True,
                )
                admitted = admitted and not limited
        return admitted

    async def check_mails(self, scope: Scope, kind: str, accounts: tuple[str, ...]) -> None:
        """Count a mail of `kind` to each of `accounts`' inboxes (as `mail_admitted`
        counts them) that an authenticated caller's request would send to addresses it
        chose (`mail.message.MailAdmit`); RateLimitedError at the first refusal.

        A 429 here, not `mail_admitted`'s quiet answer: the caller asked for the change
        and must hear that it was not made (nor its link sent), and a change answered as
        made and not written would say what the record does not. It tells no more than
        the request's other answers: the caller knows the addresses, and whether one is
        an account's is the 409 before. Only Retry-After is shown, not the budgets'
        fields, whose counts would tell how often others had mails sent there."""
        checks = tuple(check for account in accounts for check in _mail_checks(kind, account))
        infos, admitted = await self._count(scope, checks)
        if not admitted:
            wait = max(max(whole_seconds(i.retry_after) for i in infos if not i.allowed), 1)
            raise RateLimitedError(
                f"Too many mails to these addresses lately; retry in {wait} s",
                headers=[("Retry-After", str(wait))],
            )

    async def _count(
        self, scope: Scope, checks: tuple[tuple[str, str | None, str | None], ...]
    ) -> tuple[list[RateLimitInfo], bool]:
        """`check_named`'s counts, up to the first refusal, and whether all admitted."""
        limiter = self.limiter
        infos: list[RateLimitInfo] = []
        if limiter is None:
            return infos, True
        for name, narrowed_to, key in checks:
            if name not in limiter.limits:
                continue
            limited, info = await limiter.is_rate_limited(scope, name, account=narrowed_to, key=key)
            infos.append(info)
            if limited:
                return infos, False
        return infos, True

    async def check_operation(
        self, scope: Scope, limit_names: tuple[str, ...], caller_id: str | None
    ) -> list[RateLimitInfo]:
        """Count a request against the limits its operation declares (those the limiter
        has): per caller for PER_ACCOUNT_LIMITS, else per client address. The checks made,
        for the headers, or RateLimitedError at the first refusal."""
        limiter = self.limiter
        if limiter is None:
            return []
        infos: list[RateLimitInfo] = []
        for name in limit_names:
            per_caller = name in PER_ACCOUNT_LIMITS
            if name not in limiter.limits or (per_caller and caller_id is None):
                continue
            key = f"user:{caller_id}" if per_caller else None
            limited, info = await limiter.is_rate_limited(scope, name, key=key)
            infos.append(info)
            if limited:
                raise limiter.refusal(infos)
        return infos

    def headers(self, infos: list[RateLimitInfo]) -> list[tuple[str, str]]:
        return self.limiter.header_items(infos) if self.limiter is not None and infos else []

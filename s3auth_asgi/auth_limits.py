"""The auth app's rate limits by name: their default rates, which of them are kept in the
object store (under `ratelimit/`, when S3AUTH_RATE_LIMIT_STORE is `store`), and the failure
budgets the login limits are counted in together. Here rather than in the app so that the
service's clean-up can judge the app's stored limits by their windows without loading the
app or its framework."""

from __future__ import annotations

from collections.abc import Mapping

from .ratelimit import FailureBudget, RateLimit, RateLimiter
from .settings import S3AuthSettings

DEFAULT_AUTH_LIMITS: dict[str, RateLimit] = {
    "login": RateLimit(max_requests=20, window_seconds=60),
    # GCRA admits `n` at once and then one every `w / n`: over any span of `w` that is at most
    # 2n. These halves are what keep any 15 minutes to 10 wrong passwords per account, and
    # any 24 hours to 100 (NIST SP 800-63B's cap on consecutive failures).
    "login_account": RateLimit(max_requests=5, window_seconds=900),
    "login_account_daily": RateLimit(max_requests=50, window_seconds=86400),
    "login_device": RateLimit(max_requests=5, window_seconds=900),
    "register": RateLimit(max_requests=10, window_seconds=600),
    "register_account": RateLimit(max_requests=3, window_seconds=600),
    "token": RateLimit(max_requests=120, window_seconds=60),
    "token_account": RateLimit(max_requests=30, window_seconds=60),
    "profile": RateLimit(max_requests=20, window_seconds=600),
    "profile_account": RateLimit(max_requests=10, window_seconds=600),
    "events_account": RateLimit(max_requests=20, window_seconds=600),
    # New recovery codes are ten password hashes: a few an hour is all an owner needs.
    "recovery_codes_account": RateLimit(max_requests=3, window_seconds=3600),
    "recovery": RateLimit(max_requests=10, window_seconds=900),
    # Over either of these two the answer is the same 202 and no mail goes (`mail_admitted`).
    "recovery_account": RateLimit(max_requests=3, window_seconds=900),
    "recovery_inbox": RateLimit(max_requests=10, window_seconds=3600),
    # Over it the login goes on as ever and the notice is not mailed (`login_notices`).
    "login_notice": RateLimit(max_requests=3, window_seconds=86400),
}
"""Overridden by the same names in S3AUTH_RATE_LIMITS (e.g. `login_account=5/600`). The
`login*` limits count wrong passwords: `login` per client address, `login_account` and
`login_account_daily` per account, `login_device` per device cookie. The others count every
request: `register` per address, `register_account` per address + username, `token`
(refresh, logout, the use of a mailed token) and `profile` per address, `token_account`
(logout), `profile_account` and `events_account` (a page of an audit trail, one's own or,
for an administrator, an account's: up to 201 store requests) per calling account,
`recovery_codes_account` (new recovery codes of the second factor: ten password hashes)
per calling account from any address, `recovery` (a reset or verification mail asked for)
per address; `recovery_account` per account and address, and `recovery_inbox` per account
from any address, for each kind of mail apart (`mail_admitted`); they count the mails of a
new address at `PATCH /me` and the notice of a new password at `/password` too, per inbox
(the account's, or the new address's), and refuse those with a 429 (`check_mails`).
`login_notice` counts the notices of a login from a new device and of a spent failure
budget, per account and kind of notice, after the answer: past it the notice is not
mailed, and nothing else changes."""

PER_PROCESS_LIMITS = ("token", "token_account", "profile", "profile_account", "events_account")
"""Kept in each process's memory whatever S3AUTH_RATE_LIMIT_STORE says."""

SHARED_LIMITS = tuple(name for name in DEFAULT_AUTH_LIMITS if name not in PER_PROCESS_LIMITS)
"""Kept in the object store, under `ratelimit/`, when S3AUTH_RATE_LIMIT_STORE is `store`."""

BUDGET_LIMITS: dict[str, tuple[str, ...]] = {
    "login.account": ("login_account", "login_account_daily"),
    "login.address": ("login",),
    "login.device": ("login_device",),
}
"""Each budget (the name its state is stored under) and its limits, in the order they are
read. Limits without any of a budget's limits do without that budget."""


def failure_budgets(limits: Mapping[str, RateLimit]) -> dict[str, FailureBudget]:
    """The login budgets `limits` has limits for, by the name each is stored under."""
    budgets: dict[str, FailureBudget] = {}
    for name, limit_names in BUDGET_LIMITS.items():
        present = {n: limits[n] for n in limit_names if n in limits}
        if present:
            budgets[name] = FailureBudget(name, present)
    return budgets


def stored_limits(limits: Mapping[str, RateLimit]) -> dict[str, RateLimit | FailureBudget]:
    """Of the auth app's `limits`, those whose state the app keeps under `ratelimit/` (when
    kept in the store), by the name their objects are stored under: SHARED_LIMITS counted
    on their own, and the login budgets in place of their limits."""
    budgets = failure_budgets(limits)
    in_budgets = {name for budget in budgets.values() for name in budget.limits}
    stored: dict[str, RateLimit | FailureBudget] = {
        name: limits[name] for name in SHARED_LIMITS if name in limits and name not in in_budgets
    }
    stored.update(budgets)
    return stored


def default_stored_limits(settings: S3AuthSettings) -> dict[str, RateLimit | FailureBudget]:
    """`stored_limits` of the limits the app has by default: DEFAULT_AUTH_LIMITS,
    S3AUTH_RATE_LIMITS on top (as `RateLimiter.from_settings` puts them)."""
    return stored_limits(RateLimiter.from_settings(settings, defaults=DEFAULT_AUTH_LIMITS).limits)

"""S3AuthService: the one object applications hold, and the one place accounts, sessions
and the revocation list are wired together.

Its methods come from two halves: `accounts` (users, their names and passwords) and
`sessions` (token pairs, refresh rotation, logging out), and verifying tokens is added
here; the revocation list (`blacklist`) tells this process which access tokens to refuse.
All state is in the object store, so any number of processes can serve the same users. A
login (authenticate_user, then create_token_pair) costs 4 object-store requests whatever
the number of users; each module states its own budgets.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .account_tokens import AccountTokens
from .admin_resets import AdminResets
from .audit import AuditTrail
from .auth_limits import default_stored_limits
from .blacklist import TokenBlacklist
from .breached_passwords import BreachedPasswords
from .email_changes import EmailChanges
from .errors import TokenRevokedError
from .every_session import write_not_before
from .hooks import Hooks
from .keys.keyset import KeySet
from .mail import MailDelivery, Mailer, MailTemplates, mailer_from_settings
from .name_index import NameIndex
from .password_policy import PasswordPolicy
from .passwords import PasswordHasher
from .profile_fields import ProfileFields
from .ratelimit import FailureBudget, ObjectStoreRateLimitStore, RateLimit
from .reauthentication import Reauthentication
from .session_listing import SessionListing
from .settings import S3AuthSettings
from .shared_on_copy import SharedOnCopy
from .storage import ObjectStore, Store
from .store_check import StoreCheck
from .tokens import TokenCodec
from .totp_seeds import SeedSeal
from .types import Clock, elapsed_clock
from .user_imports import UserImports


class S3AuthService(
    EmailChanges, AdminResets, SessionListing, UserImports, Reauthentication, SharedOnCopy
):
    """The engine behind the middleware and the auth app; usable from any async code.

    Accounts: create_user, import_user, get_user_by_username / _by_email / _by_id,
    authenticate_user, update_user, change_password, set_password, delete_user, list_users
    (a page), every_user (all, in one listing). Sessions: create_token_pair, refresh_access_token,
    revoke_refresh_token, revoke_own_session, revoke_session, revoke_all_user_tokens,
    get_user_active_sessions, end_all_sessions (every user's: `every_session`),
    reauthenticate (`reauthentication`). Tokens:
    decode_token, and the `AccessTokenVerifier` and `RevocationCheck` protocols the
    middlewares take. Mail (`recovery`):
    request_password_reset, reset_password, send_email_verification,
    request_email_verification, verify_email; an administrator's start of a reset
    (`admin_resets`): send_password_reset; a user's own change of address
    (`email_changes`): request_email_change, confirm_email_change; `audit`: each user's
    security events.

    Every write waits for the check of the store's conditional writes (`store_check`),
    which the lifespans run at startup through `check_store`.

    `mailer` (default: from the S3AUTH_SMTP_* / S3AUTH_MAIL_OUTBOX settings),
    `mail_templates`, `hooks` and `profile_fields`: see `mail`, `hooks`, `profile_fields`.
    """

    def __init__(
        self,
        settings: S3AuthSettings | None = None,
        *,
        store: Store | None = None,
        password_policy: PasswordPolicy | None = None,
        clock: Clock = time.time,
        mailer: Mailer | None = None,
        mail_templates: MailTemplates | None = None,
        hooks: Hooks | None = None,
        profile_fields: ProfileFields | type[Any] | Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings if settings is not None else S3AuthSettings.from_env()
        given = store if store is not None else ObjectStore.from_url(self.settings.store_url)
        self.clock = clock
        self.store_check = StoreCheck.of_service(given, self.settings, clock)
        # Every write goes through it, so none is made on a store that was not checked.
        self.store = self.store_check.guarded()
        self.tokens = TokenCodec(self.settings, clock=clock, store=self.store)
        self.passwords = PasswordHasher.from_settings(self.settings, clock=elapsed_clock(clock))
        self.password_policy = password_policy or PasswordPolicy.from_settings(self.settings)
        self.breached_passwords = BreachedPasswords.from_settings(self.settings)
        self.names = NameIndex(
            self.store,
            clock=clock,
            reservation_seconds=self.settings.name_reservation_seconds,
            skew_seconds=self.settings.revocation_skew_seconds,
        )
        self.blacklist = TokenBlacklist.from_settings(self.store, self.settings, clock=clock)
        self.hooks = hooks if hooks is not None else Hooks()
        self.profile_fields = (
            profile_fields
            if isinstance(profile_fields, ProfileFields)
            else ProfileFields(profile_fields)
        )
        self.seeds = SeedSeal(self.settings.secret_keys)
        self.account_tokens = AccountTokens(self.store, self.settings, clock=clock)
        self.mail = MailDelivery(
            mailer if mailer is not None else mailer_from_settings(self.settings),
            mail_templates,
            self.settings.public_url,
        )
        self.audit = AuditTrail(
            self.store, clock=clock, retention_seconds=self.settings.audit_retention_days * 86400
        )

    async def cleanup_expired_tokens(
        self, *, rate_limits: Mapping[str, RateLimit | FailureBudget] | None = None
    ) -> int:
        """Delete expired sessions, revocation entries and mailed tokens, audit events past
        their retention, and rate-limit objects whose state has passed; returns how many
        were deleted. Decided from listings alone, but for rate-limit objects that are read
        first, one GET each (`ObjectStoreRateLimitStore.delete_expired`): those of limits
        not in `rate_limits` (a host's own, whose windows only its code knows), and without
        `rate_limits`, those of the auth app's limits past their default window.

        `rate_limits`: the limits and budgets, by the name their objects are stored under,
        judged from the listing by their windows, which must be the app's: a shorter one
        deletes state that still counts. An app given its own limiter passes
        `app.stored_auth_limits(limiter)`. By default the auth app's as it has them by
        default (`auth_limits.default_stored_limits`: S3AUTH_RATE_LIMITS on top of the
        defaults), whatever S3AUTH_RATE_LIMIT_STORE says now (objects kept while it said
        `store` are garbage all the same); but the app may have been given longer windows
        (a limiter of its own, other S3AUTH_RATE_LIMITS), so these only spare the reading
        of what is within them: an object past its window is read, and deleted only once
        its state has passed."""
        confirm = rate_limits is None
        if rate_limits is None:
            rate_limits = default_stored_limits(self.settings)
        rate_limit_state = ObjectStoreRateLimitStore(
            self.store, clock=self.clock, skew_seconds=self.settings.revocation_skew_seconds
        )
        return (
            await self._cleanup_expired_sessions()
            + await self.blacklist.cleanup()
            + await self.account_tokens.cleanup()
            + await self.audit.cleanup()
            + await rate_limit_state.delete_expired(rate_limits, confirm=confirm)
        )

    async def end_all_sessions(self) -> float:
        """End every session of every user, opened before now by this host's clock held to
        the store's (`every_session`): refused here at once, by other processes from their
        next revocation sync; logins after it work at once. Returns the cut-off, in seconds
        since the epoch."""
        skew = self.settings.revocation_skew_seconds
        not_before_ms = await write_not_before(self.store, self.clock, skew)
        self.blacklist.snapshot.not_before_ms = not_before_ms
        return not_before_ms / 1000

    # Verifying tokens: an AccessTokenVerifier and a RevocationCheck -------------------

    @property
    def leeway_seconds(self) -> int:
        return self.settings.leeway_seconds

    @property
    def reverify_seconds(self) -> float | None:
        return self.tokens.reverify_seconds

    @property
    def verifies_as(self) -> TokenCodec:
        """Its TokenCodec verifies every token (`verifier.verifier_identity`)."""
        return self.tokens

    def verify_access_token(self, token: str | bytes) -> dict[str, Any]:
        """The claims of a validly signed, unexpired access token; revocation is not
        checked (see `decode_token`). InvalidTokenError or TokenExpiredError."""
        return self.tokens.verify_access_token(token)

    def check_token_form(self, token: str | bytes) -> None:
        """`verifier.TokenForms`: as its TokenCodec's."""
        self.tokens.check_token_form(token)

    async def ensure_fresh(self, *, strict: bool = False) -> None:
        """Bring this process's snapshots of revocations, and of the signing keys when the
        store keeps them, within their freshness bounds."""
        await self.blacklist.ensure_fresh(strict=strict)
        ring = self.tokens.ring
        if ring is not None and ring.active:
            await ring.ensure_fresh()

    async def check_store(self) -> None:
        """At startup: make sure the store has both conditional writes (`store_check`);
        ConfigurationError when it lacks one, StoreUnavailableError when it failed meanwhile
        (each later write checks again)."""
        await self.store_check.at_startup()

    def snapshot_reads(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        """What `ensure_fresh` reads, by name (`verifier.SnapshotReads`): at startup, a
        failure names the read that failed."""
        reads: list[tuple[str, Callable[[], Awaitable[None]]]]
        reads = [("revocation snapshot", self.blacklist.ensure_fresh)]
        ring = self.tokens.ring
        if ring is not None and ring.active:
            reads.append(("signing keys", ring.ensure_fresh))
        return reads

    async def read_keys_again(self) -> bool:
        """After a token named an unknown key: read the stored keys again, at most once per
        S3AUTH_KEY_SYNC_SECONDS. True when the key set changed (verify again)."""
        return await self.tokens.read_keys_again()

    def keys_overdue(self) -> bool:
        """KeysFreshness: the stored signing keys are two intervals old (or unread)."""
        return self.tokens.keys_overdue()

    async def read_overdue_keys(self) -> None:
        await self.tokens.read_overdue_keys()

    async def close(self) -> None:
        """At a host's shutdown (`app.auth_lifespan` calls it): the syncs of the revocation
        snapshot and of the signing keys that requests started in the background end, and
        mail still being sent gets a few seconds (`MailDelivery.close`). The service stays
        usable: a host still serving with it starts what it needs again."""
        await self.blacklist.freshness.stop_background()
        ring = self.tokens.ring
        if ring is not None and ring.freshness is not None:
            await ring.freshness.stop_background()
        await self.mail.close()

    async def published_keys(self) -> KeySet:
        """The key set whose public keys the JWKS publishes, read first when due."""
        ring = self.tokens.ring
        if ring is not None and ring.active:
            await ring.ensure_fresh()
        return self.tokens.key_set()

    def is_stale(self) -> bool:
        """Whether `ensure_fresh` has anything to do now (a sync to wait for or to start):
        asked first, it spares a fresh snapshot's reader an await."""
        ring = self.tokens.ring
        return self.blacklist.is_stale() or (ring is not None and ring.is_stale())

    def revoked_error(self, claims: Mapping[str, Any]) -> TokenRevokedError | None:
        return self.blacklist.revoked_error(claims)

    def decode_token(self, token: str) -> dict[str, Any]:
        """The claims of a valid, unrevoked access token. Raises InvalidTokenError,
        TokenExpiredError or TokenRevokedError.

        Synchronous, so it cannot wait for the store: it answers from this process's
        snapshot of revocations and, when that is stale and an event loop is running,
        starts a sync in the background (the freshness policy's non-waiting half). Async
        code that must honour the staleness bound awaits `ensure_fresh()` first, which also
        reads signing keys kept in the store: before they were first read, every token is
        refused here as naming an unknown key.
        """
        claims = self.tokens.verify_access_token(token)
        self.blacklist.freshness.start_in_background_if_stale()
        revoked = self.blacklist.revoked_error(claims)
        if revoked is not None:
            raise revoked
        return claims

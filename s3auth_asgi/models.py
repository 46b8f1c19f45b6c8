"""The data shapes: msgspec Structs, validated where they enter, encoded in one place."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import msgspec

from .hidden_fields import HidesSecrets
from .link_expiry import link_deadline
from .privileges import is_administrator, stored_scopes


class User(HidesSecrets, msgspec.Struct, kw_only=True):
    """A user record as stored at `users/{id}.json`."""

    secret_fields: ClassVar[frozenset[str]] = frozenset(
        ("hashed_password", "totp_secret", "pending_totp_secret", "totp_recovery")
    )

    id: str
    username: str
    email: str
    hashed_password: str
    full_name: str | None = None
    is_active: bool = True
    is_admin: bool = False
    scopes: list[str] = msgspec.field(default_factory=list)
    created_at: int = 0
    updated_at: int = 0
    username_skeleton: str | None = None
    """The skeleton reserved at `index/skeleton/…` with the username, kept so that what is
    released is what was reserved even if the Unicode data changes; None in records
    written before skeletons were reserved, which reserved none."""
    session_generation: str = ""
    """Renewed by every change that must end the user's sessions (`session_generation`);
    a session opened with an older one may not refresh once the change's marker exists.
    Empty in records written before generations existed."""
    email_verified: bool = False
    """Set by a verification (or reset) link mailed to `email`; cleared when it changes
    without one (an administrator's change)."""
    verified_changes: int = 0
    """How many times `email_verified` has been set or cleared (`user_records`): a
    verification link works only while it is what it was when the link was issued, so that
    an address marked unverified again does not bring back a link mailed before. 0 in
    records written before it was counted."""
    pending_email: str = ""
    """A new address the user asked for, which becomes `email` once a link mailed to it
    is opened (`email_changes`); until then the account keeps `email` for everything.
    Empty when none was asked for, and in records written before; kept once its link has
    expired, when it waits no more (`waiting_email`)."""
    email_requests: int = 0
    """How many new addresses have been asked for: a link mailed for one works only while
    no later request has been made. 0 in records written before."""
    pending_email_at: int = 0
    """When the link for `pending_email` was made (its token's `created_at`)."""
    pending_email_expires_at: int = 0
    """The expiry written into that link's token (its `expires_at`). With `pending_email_at`,
    when the address stops waiting: when its link stops working (`waiting_email`). 0 in
    records written before, whose address is then no longer shown as waiting."""
    pending_email_stored_at: float = 0
    """The store's Last-Modified of that link's token, as its check reads it (seconds since
    the epoch), which holds `pending_email_at` to the clock-skew allowance as the check
    does. 0 in records written before, whose times are taken as written."""
    email_changes: int = 0
    """How many times `email` has changed to another address. A mailed link works only
    while it is what it was when the link was issued, so that an address given up and
    taken back does not bring the old links back. 0 in records written before it was
    counted."""
    releasing_email: str = ""
    """The address the last change of address let go. Until that change has released its
    entry, the entry is still this user's (`name_claims`): a change that loses its new
    address puts this one back. Empty in records written before."""
    profile: dict[str, Any] | None = None
    """The application's own fields (`profile_fields`), as validated."""
    totp_secret: str = ""
    """The seed of the user's second factor, sealed (`totp_seeds`); empty when it is off."""
    pending_totp_secret: str = ""
    """A seed shown to the user and not yet confirmed by a code (`totp_factor`), sealed."""
    pending_totp_at: int = 0
    """When that seed was made: it waits `totp_factor.PENDING_SECONDS` for its code."""
    totp_last_step: int = 0
    """The time step of the last code accepted: no code of it or an earlier step works
    again (`totp`), which the If-Match write that raises it makes true on every instance."""
    totp_recovery: list[str] = msgspec.field(default_factory=list)
    """The argon2id hashes of the factor's recovery codes, by slot (`recovery_codes`); a
    code used leaves its slot empty."""
    deleting: bool = False
    """Set by a deletion's If-Match write just before it deletes the record
    (`user_directory`): the names it lets go are the ones this version holds, so no
    change applies to the record from then on, as to a deleted one."""

    def waiting_email(
        self, now: float, link_lifetime: int | None = None, skew_seconds: int | None = None
    ) -> str:
        """`pending_email` while the link mailed to it works at `now`, by the rule the
        link's own check applies (`link_deadline`), with today's `link_lifetime` and the
        clock-skew allowance `skew_seconds` when given (else the times written in the
        record); else "": an address no link can confirm any more waits for nothing."""
        created, expires = self.pending_email_at, self.pending_email_expires_at
        stored = self.pending_email_stored_at if skew_seconds is not None else 0
        skew = skew_seconds or 0
        deadline = link_deadline(created, expires, link_lifetime, stored or created, skew)
        return self.pending_email if now < deadline else ""

    def public(
        self,
        now: float | None = None,
        link_lifetime: int | None = None,
        skew_seconds: int | None = None,
    ) -> PublicUser:
        """The user as shown to clients, its waiting address judged at `now` (this host's
        clock by default) as `waiting_email` judges it: `S3AuthService.public_user` passes
        the service's clock, lifetime and allowance, with which it is the link's check."""
        waiting = self.waiting_email(
            time.time() if now is None else now, link_lifetime, skew_seconds
        )
        return PublicUser(
            id=self.id,
            username=self.username,
            email=self.email,
            full_name=self.full_name,
            is_active=self.is_active,
            is_admin=is_administrator(self.is_admin, self.scopes),
            scopes=stored_scopes(self.scopes),
            created_at=self.created_at,
            updated_at=self.updated_at,
            email_verified=self.email_verified,
            pending_email=waiting or None,
            totp_enabled=bool(self.totp_secret),
            profile=self.profile,
        )


class PublicUser(msgspec.Struct, kw_only=True):
    """A user as shown to clients: never the password hash."""

    id: str
    username: str
    email: str
    full_name: str | None
    is_active: bool
    is_admin: bool
    scopes: list[str]
    """Its own scopes; its tokens also grant `admin` when `is_admin` (`privileges`)."""
    created_at: int
    updated_at: int
    email_verified: bool = False
    pending_email: str | None = None
    """A new address asked for, not yet confirmed by the link mailed to it, while that link
    works: `email` stays the account's until then."""
    totp_enabled: bool = False
    """Whether a login needs a code of the user's authenticator app besides the password."""
    profile: dict[str, Any] | None = None
    """The application's own fields, when it declares some."""


class AccountToken(HidesSecrets, msgspec.Struct, kw_only=True):
    """`account-tokens/{purpose}/{token_id}`: a mailed token (`account_tokens`), by a keyed
    hash of the token only. `user_id` is empty in the decoy written for an unknown name."""

    secret_fields: ClassVar[frozenset[str]] = frozenset(("digest",))

    purpose: str
    user_id: str
    digest: str
    email: str
    """The address it was mailed to, folded: it works only while that is the account's
    (for a change of address, the address asked for)."""
    user_generation: str
    """The account's session generation when it was issued (a reset spends it)."""
    email_changes: int = 0
    """The account's `User.email_changes` when it was issued (0 in tokens issued before
    they were counted)."""
    email_request: int = 0
    """For a change of address: the account's `User.email_requests` when it was issued."""
    verified_changes: int = 0
    """For a verification: the account's `User.verified_changes` when it was issued (0 in
    tokens issued before they were counted)."""
    created_at: int
    expires_at: int


class IndexEntry(msgspec.Struct, omit_defaults=True):
    """`index/username/…`, `index/skeleton/…` and `index/email/…`: the owner of a name
    (`name_claims` says how an entry is claimed and let go)."""

    user_id: str
    claim: str = ""
    """Random, new with every claim, so that two claims of a name by one user are two
    versions that a release can tell apart. Empty in entries written before."""
    released: bool = False
    """The name was let go: the entry names nobody, and the next claim takes it over."""


class EndedSessions(msgspec.Struct):
    """The body of a `user` revocation entry: the sessions a logout-everywhere ended."""

    sessions: list[str]


class GenerationMarker(msgspec.Struct):
    """The body of `sessions/{user_id}/~generation.{generation}`: what its key says (the
    key is what readers use; the body is for whoever looks at the store)."""

    generation: str


class SessionsNotBefore(msgspec.Struct):
    """The body of `sessions/not-before` (`every_session`): when every session opened
    before was ended, in ms by the clock of the host that ended them."""

    not_before_ms: int


class ClosingMarker(msgspec.Struct):
    """The body of `sessions/{user_id}/~closing.{random}`: the user whose deletion wrote
    it (readers use the key alone; the body is for whoever looks at the store)."""

    user_id: str


class Session(HidesSecrets, msgspec.Struct, kw_only=True):
    """One refresh-token family at `sessions/{user_id}/{id}.json`.

    `generation` counts rotations; the refresh token of generation n is an HMAC over
    (session, n, secret), so the server keeps no token. The claims copied here let a
    refresh mint an access token without reading the user record.

    Two lifetimes: `expires_at`, the idle one, moves with each rotation but never past
    `absolute_expires_at`, which is set once at the login. Objects written before the
    absolute lifetime existed have 0 there: see `absolute_expiry`.
    """

    secret_fields: ClassVar[frozenset[str]] = frozenset(("secret",))

    id: str
    user_id: str
    secret: str
    generation: int = 0
    rotated_at: float = 0
    """When the last rotation was written, to the sub-second: the refresh grace is measured
    from it, and whole seconds would make a 10 s grace anything from 9 to 11."""
    device_info: str | None = None
    ip_address: str | None = None
    created_at: int
    last_used_at: int
    expires_at: int
    absolute_expires_at: int = 0
    username: str
    is_admin: bool = False
    scopes: list[str] = msgspec.field(default_factory=list)
    claims: dict[str, Any] = msgspec.field(default_factory=dict)
    """The application's claims (`Hooks.token_claims`), computed at the login: every
    access token of the session, refreshed ones too, carries them."""
    user_generation: str | None = ""
    """The user's `session_generation` when the session was opened (not to be confused
    with `generation`, the rotation count); empty in objects written before it existed,
    which count as older than any marker; None when opened from a `PublicUser`, which has
    no generation: such a session is not checked against the markers."""
    reused_at: int = 0
    """When a spent refresh token of the session was presented again (0: never): from
    then on no token of it refreshes, whatever of its ending is left to finish
    (`sessions`, "Reuse")."""
    auth_time: int = 0
    """When its user last authenticated: the login (its last step), or a re-authentication
    since (`reauthentication`). 0 in objects written before it was kept: see `authenticated_at`."""
    amr: list[str] = msgspec.field(default_factory=list)
    """How, as RFC 8176 names it (`auth_methods`); empty in objects written before."""
    opened_ms: int = 0
    """When it was opened, in ms, held to the store's clock (`session_times`); 0 until a
    rotation writes it down."""

    def authenticated_at(self) -> int:
        """`auth_time`, or for an object written before it was kept, the login's time."""
        return self.auth_time or self.created_at

    def idle_expiry(self, lifetime_seconds: int) -> int:
        """When the session ends unless it is refreshed: the earlier of the expiry its last
        write set and that write plus the configured idle lifetime, so a shortened lifetime
        applies to existing sessions (as the sweep, which judges by the listing's
        Last-Modified and today's lifetime, does) and a lengthened one from their next
        refresh."""
        return min(self.expires_at, self.last_used_at + lifetime_seconds)

    def absolute_expiry(self, lifetime_seconds: int) -> int:
        """When the session ends however often it is refreshed: the earlier of the expiry
        written at its login and its creation plus the configured absolute lifetime, so a
        shortened lifetime applies to existing sessions and a lengthened one to new ones.
        An object without the field (written before it existed) gets the configured one."""
        configured = self.created_at + lifetime_seconds
        return min(self.absolute_expires_at, configured) if self.absolute_expires_at else configured

    def info(
        self, current_session_id: str | None = None, *, expires_at: int, absolute_expires_at: int
    ) -> SessionInfo:
        """As shown to its owner; `expires_at` is the earlier of `idle_expiry`'s and
        `absolute_expiry`'s answers, `absolute_expires_at` the latter."""
        return SessionInfo(
            id=self.id,
            device_info=self.device_info,
            ip_address=self.ip_address,
            created_at=self.created_at,
            last_used_at=self.last_used_at,
            expires_at=expires_at,
            absolute_expires_at=absolute_expires_at,
            current=self.id == current_session_id,
        )


class SessionInfo(msgspec.Struct, kw_only=True):
    """A session as shown to its owner: no secrets."""

    id: str
    device_info: str | None
    ip_address: str | None
    created_at: int
    last_used_at: int
    expires_at: int
    """When the session ends unless it is refreshed (the idle lifetime)."""
    absolute_expires_at: int
    """When it ends however often it is refreshed (the absolute lifetime)."""
    current: bool = False

    def __getitem__(self, name: str) -> Any:
        return getattr(self, name)


class TokenPair(HidesSecrets, msgspec.Struct, kw_only=True):
    """The token response of RFC 6749 §5.1; also readable as a mapping (`pair["access_token"]`),
    as code written for s3verless reads it."""

    secret_fields: ClassVar[frozenset[str]] = frozenset(("access_token", "refresh_token"))

    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_expires_in: int

    def __getitem__(self, name: str) -> Any:
        if name not in self.__struct_fields__:
            raise KeyError(name)
        return getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)

"""S3AuthService: users, passwords, token pairs, refresh rotation, sessions, revocation.

Request budgets (object-store requests, asserted in the tests):
- create_user: 3 (two index creates, one user create);
- authenticate_user + create_token_pair: 3 (index GET, user GET, session create);
- refresh_access_token: 2 (session GET, conditional PUT);
- revoke_all_user_tokens: 1 LIST + 1 batch DELETE per 1,000 sessions + 1 revocation create.

Write order and repair. A user exists once `users/{id}.json` exists, and that object is
written last, after both index objects that reserve its names. A crash before it leaves at
most index objects pointing at a user that does not exist: they log nobody in, and after
`name_reservation_seconds` (the store's Last-Modified against the service clock) the next
registration of that name takes the index over with a conditional replace. Sessions are
single objects, rotated with If-Match, so a crash leaves either the old or the new
generation, never both.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import secrets
import time
import unicodedata
from collections.abc import Callable
from typing import Any, TypeGuard

import anyio
import msgspec

from .blacklist import TokenBlacklist
from .errors import (
    ConflictError,
    EmailTakenError,
    InvalidCredentialsError,
    InvalidTokenError,
    RefreshTokenReuseError,
    S3AuthError,
    S3ValidationError,
    SessionNotFoundError,
    TokenExpiredError,
    TokenRevokedError,
    UsernameTakenError,
    UserNotFoundError,
)
from .identifiers import (
    clean_email,
    clean_username,
    fold,
    looks_like_email,
    normalise_email,
    normalise_username,
)
from .models import IndexEntry, PublicUser, Session, SessionInfo, TokenPair, User
from .passwords import PasswordHasher, PasswordPolicy
from .settings import S3AuthSettings
from .storage import CorruptObjectError, ObjectStore, StoreConflict, Versioned, keys
from .tokens import TokenCodec, new_id, new_session_id

logger = logging.getLogger("s3auth_asgi")

FULL_NAME_MAX = 200
DEVICE_INFO_MAX = 256
IDENTIFIER_MAX = 320
_UPDATE_ATTEMPTS = 5
_READ_CONCURRENCY = 16


class _Unset:
    pass


UNSET: Any = _Unset()


class S3AuthService:
    """The engine behind the middleware and the auth app; usable from any async code."""

    def __init__(
        self,
        settings: S3AuthSettings | None = None,
        *,
        store: ObjectStore | None = None,
        password_policy: PasswordPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings if settings is not None else S3AuthSettings.from_env()
        self.store = store if store is not None else ObjectStore.from_url(self.settings.store_url)
        self.clock = clock
        self.tokens = TokenCodec(self.settings, clock=clock)
        self.passwords = PasswordHasher.from_settings(self.settings)
        self.password_policy = password_policy or PasswordPolicy.from_settings(self.settings)
        self.blacklist = TokenBlacklist(
            self.store,
            lookback_seconds=self.settings.access_token_seconds + self.settings.leeway_seconds,
            sync_seconds=self.settings.revocation_sync_seconds,
            skew_seconds=self.settings.revocation_skew_seconds,
            clock=clock,
        )

    def _now(self) -> int:
        return int(self.clock())

    # Users ---------------------------------------------------------------------------

    async def create_user(
        self,
        username: str,
        email: str,
        password: str,
        full_name: str | None = None,
        *,
        is_admin: bool = False,
        scopes: list[str] | None = None,
    ) -> User:
        """Register a user. UsernameTakenError / EmailTakenError when a name is in use
        (case- and Unicode-insensitively); S3ValidationError subclasses for bad input."""
        name = clean_username(username)
        address = clean_email(email)
        self.password_policy.check(password, name, address)
        full_name = _clean_text(full_name, "full_name", FULL_NAME_MAX)
        scopes = _clean_scopes(scopes)
        hashed = await self.passwords.hash(password)
        now = self._now()
        user = User(
            id=new_id(),
            username=name,
            email=address,
            hashed_password=hashed,
            full_name=full_name,
            is_admin=bool(is_admin),
            scopes=scopes,
            created_at=now,
            updated_at=now,
        )
        username_key = keys.username_index(fold(name))
        email_key = keys.email_index(fold(address))
        await self._reserve(username_key, user.id, UsernameTakenError)
        try:
            await self._reserve(email_key, user.id, EmailTakenError)
        except BaseException:
            await self._delete_quietly(username_key)
            raise
        try:
            await self.store.create(keys.user(user.id), user)
        except BaseException:
            # The id is new, so deleting it cannot hit anybody else's user; it may have
            # been written even if the response was lost.
            await self._delete_quietly(username_key, email_key, keys.user(user.id))
            raise
        return user

    async def _reserve(self, key: str, user_id: str, taken: type[ConflictError]) -> None:
        """Create the index object; take over one whose registration never finished."""
        entry = IndexEntry(user_id)
        try:
            await self.store.create(key, entry)
            return
        except StoreConflict:
            pass
        current = await self._get_or_none(key, IndexEntry)
        if current is None:
            try:
                await self.store.create(key, entry)
                return
            except StoreConflict:
                raise taken() from None
        age = dt.datetime.fromtimestamp(self.clock(), dt.UTC) - current.last_modified
        if age.total_seconds() < self.settings.name_reservation_seconds:
            raise taken()
        try:
            owner = await self.store.get(keys.user(current.value.user_id), User)
        except CorruptObjectError:
            raise taken() from None
        if owner is not None:
            raise taken()
        try:
            await self.store.replace(key, entry, current.etag)
        except StoreConflict:
            raise taken() from None
        logger.info("took over an index entry left by an unfinished registration: %s", key)

    async def _delete_quietly(self, *object_keys: str) -> None:
        """Best effort, for clean-ups after a failure: a reservation left behind expires
        on its own, an expired session is swept by cleanup_expired_tokens."""
        with contextlib.suppress(S3AuthError):
            await self.store.delete_many(object_keys)

    async def _get_or_none(self, key: str, type_: type[Any]) -> Versioned[Any] | None:
        """A GET where a corrupt object counts as absent (and is logged), so that one
        damaged object cannot break anybody else's request."""
        try:
            return await self.store.get(key, type_)
        except CorruptObjectError:
            logger.warning("ignoring a corrupt object: %s", key)
            return None

    async def _user_via_index(self, identifier: str) -> Versioned[User] | None:
        """The user an email or a username names (2 GETs), with its ETag."""
        try:
            if looks_like_email(identifier):
                normalised = normalise_email(identifier)
                index_key = keys.email_index(normalised)
            else:
                normalised = normalise_username(identifier)
                index_key = keys.username_index(normalised)
        except S3ValidationError:
            return None
        index = await self._get_or_none(index_key, IndexEntry)
        if index is None:
            return None
        found = await self._get_or_none(keys.user(index.value.user_id), User)
        if found is None:
            return None
        # An index taken over from an unfinished registration may still name a record
        # that another writer finished late: only the owner of the name counts.
        user = found.value
        named = fold(user.email) if looks_like_email(identifier) else fold(user.username)
        return found if named == normalised else None

    async def get_user_by_username(self, username: str) -> User | None:
        if not isinstance(username, str) or looks_like_email(username):
            return None
        found = await self._user_via_index(username)
        return found.value if found is not None else None

    async def get_user_by_email(self, email: str) -> User | None:
        if not isinstance(email, str) or not looks_like_email(email):
            return None
        found = await self._user_via_index(email)
        return found.value if found is not None else None

    async def get_user_by_id(self, user_id: str) -> User | None:
        if not is_id(user_id):
            return None
        found = await self._get_or_none(keys.user(user_id), User)
        return found.value if found is not None else None

    async def authenticate_user(self, username_or_email: str, password: str) -> User | None:
        """The user when the password matches and the account is active, else None.

        Unknown user, wrong password and disabled account give the same answer and cost
        one password verification each.
        """
        if (
            not isinstance(username_or_email, str)
            or not isinstance(password, str)
            or len(username_or_email) > IDENTIFIER_MAX
            or len(password) > self.password_policy.max_length
        ):
            return None
        found = await self._user_via_index(username_or_email)
        user = found.value if found is not None else None
        matches, new_hash = await self.passwords.verify(
            password, user.hashed_password if user is not None else None
        )
        if found is None or user is None or not matches or not user.is_active:
            return None
        if new_hash is not None:
            with contextlib.suppress(S3AuthError):
                await self._update(
                    user.id, lambda u: msgspec.structs.replace(u, hashed_password=new_hash), found
                )
        return user

    async def _load_user(self, user_id: str) -> Versioned[User]:
        """The user record with its ETag, for a read-modify-write; UserNotFoundError."""
        _require_id(user_id)
        current = await self._get_or_none(keys.user(user_id), User)
        if current is None:
            raise UserNotFoundError()
        return current

    async def _update(
        self,
        user_id: str,
        change: Callable[[User], User],
        current: Versioned[User] | None = None,
    ) -> tuple[User, User]:
        """Read-modify-write of a user record with If-Match, retried on conflict, starting
        from `current` when the caller has just read it. Returns (before, after)."""
        for _ in range(_UPDATE_ATTEMPTS):
            if current is None:
                current = await self._load_user(user_id)
            updated = change(current.value)
            updated.updated_at = self._now()
            try:
                await self.store.replace(keys.user(user_id), updated, current.etag)
            except StoreConflict:
                current = None
                continue
            return current.value, updated
        raise ConflictError("The user was changed concurrently; try again")

    async def update_user(
        self,
        user_id: str,
        *,
        full_name: str | None = UNSET,
        email: str = UNSET,
        is_active: bool = UNSET,
        is_admin: bool = UNSET,
        scopes: list[str] = UNSET,
    ) -> User:
        """Change a profile or an account's standing. Disabling an account or changing its
        privileges revokes its tokens, so the change holds at once."""
        changes: dict[str, Any] = {}
        if full_name is not UNSET:
            changes["full_name"] = _clean_text(full_name, "full_name", FULL_NAME_MAX)
        for flag, value in (("is_active", is_active), ("is_admin", is_admin)):
            if value is not UNSET:
                if not isinstance(value, bool):
                    raise S3ValidationError(f"{flag} must be true or false")
                changes[flag] = value
        if scopes is not UNSET:
            changes["scopes"] = _clean_scopes(scopes)
        new_email_key: str | None = None
        old_email_key: str | None = None
        current: Versioned[User] | None = None
        if email is not UNSET:
            address = clean_email(email)
            current = await self._load_user(user_id)
            if fold(address) != fold(current.value.email):
                new_email_key = keys.email_index(fold(address))
                old_email_key = keys.email_index(fold(current.value.email))
                await self._reserve(new_email_key, user_id, EmailTakenError)
            changes["email"] = address
        try:
            previous, updated = await self._update(
                user_id, lambda user: msgspec.structs.replace(user, **changes), current
            )
        except BaseException:
            if new_email_key is not None:
                await self._delete_quietly(new_email_key)
            raise
        if old_email_key is not None:
            await self._delete_quietly(old_email_key)
        if (
            (previous.is_active and not updated.is_active)
            or previous.is_admin != updated.is_admin
            or previous.scopes != updated.scopes
        ):
            await self.revoke_all_user_tokens(user_id)
        return updated

    async def change_password(
        self,
        user_id: str,
        current_password: str,
        new_password: str,
        *,
        device_info: str | None = None,
        ip_address: str | None = None,
    ) -> TokenPair:
        """Check the current password, set the new one, revoke every session (this one
        included) and return a fresh token pair for the caller."""
        current = await self._load_user(user_id)
        if not isinstance(current_password, str):
            raise InvalidCredentialsError()
        matches, _ = await self.passwords.verify(current_password, current.value.hashed_password)
        if not matches:
            raise InvalidCredentialsError("The current password is wrong")
        user = await self._replace_password(current, new_password)
        return await self.create_token_pair(user, device_info=device_info, ip_address=ip_address)

    async def set_password(self, user_id: str, new_password: str) -> None:
        """Set a password without the old one (an administrator's reset); revokes every
        session of the user."""
        await self._replace_password(await self._load_user(user_id), new_password)

    async def _replace_password(self, current: Versioned[User], new_password: str) -> User:
        user = current.value
        self.password_policy.check(new_password, user.username, user.email)
        hashed = await self.passwords.hash(new_password)
        _, updated = await self._update(
            user.id, lambda u: msgspec.structs.replace(u, hashed_password=hashed), current
        )
        await self.revoke_all_user_tokens(user.id)
        return updated

    async def delete_user(self, user_id: str) -> bool:
        """Delete the user, its names and its sessions; False when there was no user."""
        user = await self.get_user_by_id(user_id)
        if user is None:
            return False
        # The user object goes first: if the rest fails, the names are dangling
        # reservations that the next registration takes over.
        await self._end_all_sessions(
            user_id,
            keys.user(user_id),
            keys.username_index(fold(user.username)),
            keys.email_index(fold(user.email)),
        )
        return True

    async def list_users(
        self, *, after: str | None = None, limit: int = 50
    ) -> tuple[list[User], str | None]:
        """A page of users in id order and the cursor of the next page (None at the end)."""
        if not 1 <= limit <= 1000:
            raise S3ValidationError("limit must be between 1 and 1000")
        if after is not None and not is_id(after):
            raise S3ValidationError("The cursor is not valid")
        offset = keys.user(after) if after is not None else None
        page, more = await self.store.list_page(keys.USERS, offset, limit)
        found = await self._gather([self._get_or_none(info.key, User) for info in page])
        users = [item.value for item in found if item is not None]
        cursor = keys.id_from_key(page[-1].key) if more and page else None
        return users, cursor

    # Tokens and sessions -------------------------------------------------------------

    async def create_token_pair(
        self,
        user: User | PublicUser,
        device_info: str | None = None,
        ip_address: str | None = None,
    ) -> TokenPair:
        """Open a session for the user and return its first access and refresh tokens."""
        # A session must be younger than any logout-everywhere this process knows of,
        # or its tokens would be refused from birth (same millisecond).
        now_ms = max(int(self.clock() * 1000), self.blacklist.user_revoked_up_to_ms(user.id) + 1)
        now = now_ms // 1000
        session = Session(
            id=new_session_id(now_ms),
            user_id=user.id,
            secret=secrets.token_urlsafe(24),
            device_info=_clean_text(device_info, "device_info", DEVICE_INFO_MAX, truncate=True),
            ip_address=_clean_text(ip_address, "ip_address", 64, truncate=True),
            created_at=now,
            rotated_at=now,
            last_used_at=now,
            expires_at=now + self.settings.refresh_token_seconds,
            username=user.username,
            is_admin=user.is_admin,
            scopes=list(user.scopes),
        )
        await self.store.create(keys.session(user.id, session.id), session)
        return self._pair(session, now)

    def _pair(self, session: Session, now: int) -> TokenPair:
        access, _ = self.tokens.issue_access_token(
            user_id=session.user_id,
            username=session.username,
            session_id=session.id,
            is_admin=session.is_admin,
            scopes=session.scopes,
            now=now,
        )
        refresh = self.tokens.make_refresh_token(
            session.user_id, session.id, session.generation, session.secret
        )
        return TokenPair(
            access_token=access,
            refresh_token=refresh,
            expires_in=self.settings.access_token_seconds,
            refresh_expires_in=max(session.expires_at - now, 0),
        )

    async def refresh_access_token(self, refresh_token: str) -> TokenPair:
        """Rotate: a new pair for the current refresh token, exactly once.

        The immediately previous token, within `refresh_grace_seconds` of the rotation,
        gets the current pair again (a client that lost the response stays logged in).
        Any older token revokes the whole session: it has been stolen or replayed.
        """
        token = self.tokens.parse_refresh_token(refresh_token)
        key = keys.session(token.user_id, token.session_id)
        for _ in range(_UPDATE_ATTEMPTS):
            found = await self._get_or_none(key, Session)
            if found is None:
                raise TokenRevokedError("The session has ended")
            session = found.value
            now = self._now()
            if not self.tokens.refresh_mac_matches(token, session.secret):
                raise InvalidTokenError("The refresh token is not valid")
            if session.expires_at <= now:
                await self._delete_quietly(key)
                raise TokenExpiredError("The session has expired")
            if token.generation == session.generation:
                rotated = msgspec.structs.replace(
                    session,
                    generation=session.generation + 1,
                    rotated_at=now,
                    last_used_at=now,
                    expires_at=now + self.settings.refresh_token_seconds,
                )
                try:
                    await self.store.replace(key, rotated, found.etag)
                except StoreConflict:
                    continue  # another refresh won; read again to answer from its result
                return self._pair(rotated, now)
            if (
                token.generation == session.generation - 1
                and now - session.rotated_at < self.settings.refresh_grace_seconds
            ):
                return self._pair(session, now)
            if token.generation < session.generation:
                await self._end_session(session)
                logger.warning("refresh token reuse; session %s revoked", session.id)
                raise RefreshTokenReuseError()
            raise InvalidTokenError("The refresh token is not valid")
        raise TokenRevokedError("The session changed concurrently; log in again")

    async def _end_session(self, session: Session) -> None:
        # Revocation first: if the delete then fails, the session's access tokens are
        # already refused and a retry finds the session to delete.
        await self.blacklist.revoke_session(session.id)
        await self.store.delete(keys.session(session.user_id, session.id))

    async def revoke_refresh_token(self, refresh_token: str) -> bool:
        """Log out one session (its access tokens too); False when it had already ended."""
        token = self.tokens.parse_refresh_token(refresh_token)
        found = await self._get_or_none(keys.session(token.user_id, token.session_id), Session)
        if found is None:
            return False
        session = found.value
        if token.generation > session.generation or not self.tokens.refresh_mac_matches(
            token, session.secret
        ):
            raise InvalidTokenError("The refresh token is not valid")
        await self._end_session(session)
        return True

    async def revoke_session(self, user_id: str, session_id: str) -> bool:
        """End one of a user's sessions by id (the sessions page's "sign out" button)."""
        if not (is_id(user_id) and is_id(session_id)):
            raise SessionNotFoundError()
        found = await self._get_or_none(keys.session(user_id, session_id), Session)
        if found is None:
            return False
        await self._end_session(found.value)
        return True

    async def revoke_all_user_tokens(self, user_id: str) -> int:
        """Log out everywhere: every session and every access token issued before now.
        Returns how many sessions were ended."""
        return await self._end_all_sessions(user_id)

    async def _end_all_sessions(self, user_id: str, *also_delete: str) -> int:
        """Revoke, then delete every session (and `also_delete`) in batches. The revocation
        is written first, with the time it is written, so readers of the revocation list
        see it within the skew allowance and a failure later leaves the tokens refused."""
        _require_id(user_id)
        await self.blacklist.revoke_user(user_id, int(self.clock() * 1000))
        session_keys = [info.key async for info in self.store.list(keys.user_sessions(user_id))]
        if session_keys or also_delete:
            await self.store.delete_many([*also_delete, *session_keys])
        return len(session_keys)

    async def get_user_active_sessions(
        self, user_id: str, current_session_id: str | None = None
    ) -> list[SessionInfo]:
        """The user's live sessions, newest first, without secrets."""
        if not is_id(user_id):
            return []
        now = self._now()
        session_keys = [info.key async for info in self.store.list(keys.user_sessions(user_id))]
        found = await self._gather([self._get_or_none(k, Session) for k in session_keys])
        sessions = [
            item.value.info(current_session_id)
            for item in found
            if item is not None and item.value.expires_at > now
        ]
        sessions.sort(key=lambda s: s.id, reverse=True)  # ids begin with their creation ms
        return sessions

    async def cleanup_expired_tokens(self) -> int:
        """Delete expired sessions and revocation entries, deciding from listings alone
        (a session cannot outlive its last write plus the refresh lifetime)."""
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        horizon = dt.timedelta(
            seconds=self.settings.refresh_token_seconds + self.settings.revocation_skew_seconds
        )
        expired = [
            info.key
            async for info in self.store.list(keys.SESSIONS)
            if info.last_modified + horizon < now
        ]
        if expired:
            await self.store.delete_many(expired)
        return len(expired) + await self.blacklist.cleanup()

    def decode_token(self, token: str) -> dict[str, Any]:
        """The claims of a valid, unrevoked access token (per this process's snapshot of
        revocations). Raises InvalidTokenError, TokenExpiredError or TokenRevokedError."""
        claims = self.tokens.verify_access_token(token)
        revoked = self.blacklist.revoked_error(claims)
        if revoked is not None:
            raise revoked
        return claims

    async def _gather(self, calls: list[Any]) -> list[Any]:
        """Run awaitables concurrently (bounded), keeping their order."""
        results: list[Any] = [None] * len(calls)
        limiter = anyio.CapacityLimiter(_READ_CONCURRENCY)

        async def run(i: int, call: Any) -> None:
            async with limiter:
                results[i] = await call

        async with anyio.create_task_group() as tg:
            for i, call in enumerate(calls):
                tg.start_soon(run, i, call)
        return results


def _require_id(user_id: object) -> None:
    if not is_id(user_id):
        raise UserNotFoundError()


def is_id(value: object) -> TypeGuard[str]:
    """The shape of user and session ids (hex, 20-64 digits); nothing else can exist."""
    return (
        isinstance(value, str)
        and 20 <= len(value) <= 64
        and all(c in "0123456789abcdef" for c in value)
    )


def _clean_text(
    value: object, field: str, max_length: int, *, truncate: bool = False
) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise S3ValidationError(f"{field} must be a string")
    text = "".join(c for c in value if unicodedata.category(c) not in ("Cc", "Cf", "Cs"))
    text = text.strip()
    if len(text) > max_length:
        if not truncate:
            raise S3ValidationError(f"{field} must be at most {max_length} characters")
        text = text[:max_length]
    return text or None


def _clean_scopes(scopes: object) -> list[str]:
    if scopes is None:
        return []
    if not isinstance(scopes, list) or not all(
        isinstance(s, str) and 0 < len(s) <= 64 and s.isprintable() and " " not in s for s in scopes
    ):
        raise S3ValidationError("scopes must be a list of short strings without spaces")
    return sorted(set(scopes))

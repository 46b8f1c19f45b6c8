"""The token a login's first step answers when the account's second factor is on
(`mfa_required`), which its second step (`POST /login/totp`) takes back with a code.

Value: `mfa1.{payload}.{mac}`, base64url: the payload is a JSON array, in UTF-8, of the user
id, the account's session generation, the step of its last code accepted, a tag of its
sealed seed, the device id of the device cookie the login showed (empty without one) and the
name typed (which that cookie is checked against again), a tag of the client's User-Agent,
the time it was issued (ms) and the expiry; the MAC is HMAC-SHA256 under a key derived from
the secret key for this purpose alone (`tokens.derive_key`), so no other token of the
package is one, nor this one any other; one made under an earlier secret key, one of
S3AUTH_SECRET_KEY_FALLBACKS, is still read (`tokens.matching_key`). It lives
`CHALLENGE_SECONDS`, and holds only while the record still has the generation, the last
step, the seed and the recovery codes it names (`holds`): a password changed, the user's
sessions ended, the factor turned off or on again, or a code accepted since (the one this
token was spent with included) end it. The store keeps nothing of it.

Every session ended at once (`every_session`) writes no user record: a token issued before
that cut-off is refused by its issue time instead, as a session is by the time its id holds,
once this process knows the cut-off (its revocation snapshot's, which the second step brings
within its freshness bound first). Such a token proves only the password as it stood before
whatever the ending answered, and would open a session younger than the cut-off, which
nothing would end. A token is issued after any cut-off known here, whatever the clock reads,
as a session is opened after it (`session_opening`), so a login begun after an ending is not
refused by a host whose clock is behind the writer's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from .jose_json import b64url
from .models import User
from .tokens import derive_keys, mac_text, matching_key
from .totp_errors import InvalidMfaTokenError
from .types import Clock

if TYPE_CHECKING:
    from .blacklist import TokenBlacklist

CHALLENGE_SECONDS = 300
"""How long a login has to give its code once the password was found right."""
MAX_TOKEN_CHARS = 2048
_PREFIX = "mfa1."


class Challenge(NamedTuple):
    user_id: str
    generation: str
    last_step: int
    seed_tag: str
    device_id: str
    name: str
    """The name typed at the login (`NameLookup.account_key`): the device cookie's check."""
    agent_tag: str
    issued_ms: int
    """When it was issued, in ms, held after any cut-off of the user's sessions known then."""
    expires: int


def _tag(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _factor_tag(user: User) -> str:
    """Of the factor's seed and its recovery codes: a recovery code used changes it."""
    return _tag("|".join((user.totp_secret, *user.totp_recovery)))


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class MfaChallenges:
    """Issues and reads the second-step tokens of one service's logins."""

    def __init__(
        self,
        secret_keys: Sequence[str],
        clock: Clock = time.time,
        known: TokenBlacklist | None = None,
    ) -> None:
        """`secret_keys`: as the settings list them (`S3AuthSettings.secret_keys`): tokens
        are issued under the first, read under any. `known`: the revocations this process
        knows, whose cut-offs by time of a user's sessions (`RevocationSnapshot.cutoff_ms`)
        refuse a token issued at or before them."""
        self._keys = derive_keys(secret_keys, "mfa-challenge")
        self._clock = clock
        self._known = known

    def _cutoff_ms(self, user_id: str) -> int:
        return self._known.snapshot.cutoff_ms(user_id) if self._known is not None else 0

    def __repr__(self) -> str:
        return "MfaChallenges(<hidden>)"

    def issue(self, user: User, *, device_id: str, name: str, user_agent: str | None) -> str:
        now = self._clock()
        issued_ms = max(int(now * 1000), self._cutoff_ms(user.id) + 1)
        fields = [
            user.id,
            user.session_generation,
            user.totp_last_step,
            _factor_tag(user),
            device_id,
            name,
            _tag(user_agent or ""),
            issued_ms,
            int(now) + CHALLENGE_SECONDS,
        ]
        # UTF-8, not ASCII escapes: a name of 253 characters outside ASCII, an address that
        # registers, takes 12 bytes each escaped, and the token would outgrow what is read.
        text = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
        payload = b64url(text.encode())
        return f"{_PREFIX}{payload}.{mac_text(self._keys[0], payload)}"

    def read(self, token: object, user_agent: str | None) -> Challenge:
        """The challenge of a genuine, unexpired token sent with the User-Agent it was
        issued to, after every cut-off of its user's sessions this process knows;
        InvalidMfaTokenError otherwise. No store request."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
            raise InvalidMfaTokenError()
        if not token.startswith(_PREFIX) or token.count(".") != 2:
            raise InvalidMfaTokenError()
        payload, mac = token[len(_PREFIX) :].split(".")
        given = mac.encode()
        if matching_key(self._keys, given, lambda key: mac_text(key, payload).encode()) is None:
            raise InvalidMfaTokenError()
        try:
            challenge = Challenge(*json.loads(_unb64(payload)))
        except (ValueError, TypeError):
            raise InvalidMfaTokenError() from None
        if challenge.expires <= self._clock():
            raise InvalidMfaTokenError("The login's second step has expired; log in again")
        if not hmac.compare_digest(challenge.agent_tag, _tag(user_agent or "")):
            raise InvalidMfaTokenError()
        if challenge.issued_ms <= self._cutoff_ms(challenge.user_id):
            raise InvalidMfaTokenError()
        return challenge

    @staticmethod
    def holds(challenge: Challenge, user: User) -> bool:
        """Whether the record is still the one the challenge was issued for (see the
        module): the account active, its factor on."""
        return (
            user.is_active
            and bool(user.totp_secret)
            and user.session_generation == challenge.generation
            and user.totp_last_step == challenge.last_step
            and hmac.compare_digest(_factor_tag(user), challenge.seed_tag)
        )

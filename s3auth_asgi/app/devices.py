"""Device cookies, OWASP's answer to lockouts by flooding: a browser that has logged in to
an account holds a signed cookie that binds it to that account. Its attempts at that account
are counted against a small budget of its own (`login_device`) instead of the account's
shared one, so that whoever floods the account with wrong passwords from elsewhere does not
lock its owner out.

Value: `d4.{user_id}.{device_id}.{expires}.{name}.{name}.{counter}.{generation}.{mac}`: the
account (its user id), a random device id (128 bits), the expiry in Unix seconds, a tag for
each of the account's names (username and email, as `name_index.account_keys` gives them:
128 bits of their HMAC-SHA256), the counter of the account's session generation when it was
issued (8 hex digits: `session_generation`) and a tag of that generation, and the
HMAC-SHA256 of everything before it; base64url, keyed by a key derived from the secret
key for this purpose alone (`tokens.derive_key`), compared in constant time. A value signed
under an earlier secret key, one of S3AUTH_SECRET_KEY_FALLBACKS, is valid too, its tags
that key's (`tokens.matching_key`), and the login it helps sets it again under the current
key. The name tags
let a login tell from the name typed, before the index is read, whether the cookie is for
it; the login then checks that the index names the same user, and, once the user record is
read and before the password is, that the account's session generation is still the one
the cookie was issued under. A password change or reset (and every other change that ends
the account's sessions) so ends its device cookies too: whoever logged in with the old
password, as often as they liked, gets no device budgets to guess the new one with.

A value that does not parse, has expired, carries a wrong MAC or is for another name is
ignored, and so is one of an older session generation: the attempt counts as one without
a cookie. The store keeps nothing per device but the failure count;
checking a value costs no request. A renamed account's cookie is for its old names until
its next successful login sets it again.

Outdated before anything is read. Told only once the user record is read, an outdated
cookie would take one of the hash places kept for known devices, which a login takes before
it reads anything, and be found outdated only after its reads. Anyone could keep a cookie
of an account of their own, log out everywhere, and have logins of a flood read the store,
in the places kept for the owners, where the flood's own are refused for free. So each
process remembers, per account, the newest generation counter a login has read from its
record when the cookie shown was outdated (`NewestGenerations`); a cookie whose counter is
below it was issued under an older generation, for counters only grow, and counts as none
from the start. What is remembered is never newer than the record, so a cookie issued under
a later change, on any host, is never taken for outdated. A `d3` value (no counter: issued
before the counter was added) is judged only once the record is read, as before.

The cookie `s3auth_device` is HttpOnly (page scripts never see it), Secure, SameSite=Strict
and scoped to the login endpoint where the app is mounted; every successful login sets it
again (the same device id, a new expiry). Clients without cookies send the same value in the
`S3Auth-Device` request header.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Sequence
from typing import NamedTuple

from starlette.requests import Request
from starlette.responses import Response

from ..identifiers import ID_PATTERN, new_id
from ..models import User
from ..name_index import account_keys
from ..session_generation import generation_counter
from ..tokens import b64url, derive_keys, mac_text, matching_key
from ..types import Clock
from .cookies import cookie_values, set_endpoint_cookie

DEVICE_COOKIE = "s3auth_device"
DEVICE_HEADER = "S3Auth-Device"
LOGIN_PATH = "/login"
DEVICE_LIFETIME_SECONDS = 365 * 86400
"""How long a device is remembered after its last successful login (browsers keep a cookie
400 days at most)."""

NEWEST_GENERATIONS_KEPT = 10_000
"""Accounts whose newest generation counter a process remembers (`NewestGenerations`), the
least lately seen forgotten first: a forgotten one's outdated cookies are read again once."""

_VALUE = re.compile(
    rf"(d3|d4)\.({ID_PATTERN})\.({ID_PATTERN})\.([1-9][0-9]{{0,11}})"
    r"\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{22})\.(?:([0-9a-f]{8})\.)?([A-Za-z0-9_-]{22})"
    r"\.([A-Za-z0-9_-]{43})"
)


class Device(NamedTuple):
    """A browser (or client) that has logged in to the account `user_id` before."""

    user_id: str
    device_id: str
    generation: str = ""
    """The tag of the account's session generation the cookie was issued under."""
    counter: int | None = None
    """That generation's counter; None for a `d3` value, which does not carry it."""
    keyed: int = 0
    """Which secret key its value was signed under: 0 the current one, then each fallback
    in turn; its generation tag is that key's too."""

    @property
    def key(self) -> str:
        """What its failed attempts are counted under."""
        return f"device:{self.user_id}:{self.device_id}"


class NewestGenerations:
    """Per account, the newest session-generation counter this process has read from its
    record for a login that showed an outdated cookie (see the module). Bounded: past
    `max_accounts`, the least lately seen is forgotten."""

    def __init__(self, max_accounts: int = NEWEST_GENERATIONS_KEPT) -> None:
        self.max_accounts = max_accounts
        self._newest: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._newest)

    def saw(self, user_id: str, counter: int) -> None:
        newest = max(counter, self._newest.pop(user_id, counter))
        self._newest[user_id] = newest
        if len(self._newest) > self.max_accounts:
            del self._newest[next(iter(self._newest))]

    def outdates(self, device: Device) -> bool:
        """Whether `device` was issued under an older generation than one read."""
        newest = self._newest.get(device.user_id)
        return device.counter is not None and newest is not None and device.counter < newest


class DeviceCookies:
    """Makes and checks device cookie values; reads them from requests, sets them on
    responses."""

    def __init__(
        self,
        secret_keys: Sequence[str],
        *,
        clock: Clock = time.time,
        lifetime_seconds: int = DEVICE_LIFETIME_SECONDS,
    ) -> None:
        """`secret_keys`: as the settings list them (`S3AuthSettings.secret_keys`): cookies
        are signed under the first, valid under any; one of a later key is set again under
        the first at its next login."""
        self._keys = derive_keys(secret_keys, "device-cookie")
        self._clock = clock
        self.lifetime_seconds = lifetime_seconds
        self.newest = NewestGenerations()

    @staticmethod
    def _tag(key: bytes, text: str, kind: bytes = b"name:") -> str:
        digest = hmac.new(key, kind + text.encode(), hashlib.sha256).digest()
        return b64url(digest[:16])

    def sign(self, device: Device, user: User) -> str:
        """The value for `device`, under the current secret key."""
        key = self._keys[0]
        expires = int(self._clock()) + self.lifetime_seconds
        tags = ".".join(self._tag(key, name) for name in account_keys(user))
        counter = generation_counter(user.session_generation)
        generation = f"{counter:08x}.{self._tag(key, user.session_generation, b'generation:')}"
        signed_part = f"d4.{device.user_id}.{device.device_id}.{expires}.{tags}.{generation}"
        return f"{signed_part}.{mac_text(key, signed_part)}"

    def current(self, device: Device, user: User) -> bool:
        """Whether `user`'s sessions have not been ended since `device` was issued; when
        they have, the generation read is remembered (see the module)."""
        key = self._keys[device.keyed]
        expected = self._tag(key, user.session_generation, b"generation:")
        if hmac.compare_digest(expected, device.generation):
            return True
        self.newest.saw(user.id, generation_counter(user.session_generation))
        return False

    def verify(self, value: str, account_key: str) -> Device | None:
        """The device `value` names when it is genuine, unexpired, for the name whose
        budget is `account_key`, and not known to be outdated (see the module)."""
        match = _VALUE.fullmatch(value)
        if match is None:
            return None
        version, owner, device_id, expires, *tags, counter, generation, mac = match.groups()
        if (version == "d4") != (counter is not None):
            return None
        signed_part = value[: -len(mac) - 1]
        keyed = matching_key(self._keys, mac, lambda key: mac_text(key, signed_part))
        # Its tags are compared whether or not the MAC was, as before there were fallbacks.
        tag = self._tag(self._keys[keyed or 0], account_key)
        named = [hmac.compare_digest(tag, shown) for shown in tags]
        if keyed is None or not any(named) or int(expires) < self._clock():
            return None
        device = Device(owner, device_id, generation, int(counter, 16) if counter else None, keyed)
        return None if self.newest.outdates(device) else device

    def presented(self, request: Request, account_key: str) -> Device | None:
        """The valid device for the name typed that the request shows (header first, then
        each cookie of the name, in the order sent); None when it shows none. A cookie that
        another host of the site tossed in beside the owner's is valid for this account
        only if whoever planted it has logged in to the account, so each is tried: taking
        any one of them would let a junk cookie hide the owner's."""
        shown = [request.headers.get(DEVICE_HEADER), *cookie_values(request, DEVICE_COOKIE)]
        for value in shown:
            device = self.verify(value, account_key) if value else None
            if device is not None:
                return device
        return None

    def issue(self, response: Response, user: User, known: Device | None, root_path: str) -> None:
        """Set the cookie after a successful login: the device shown, or a new one."""
        device = known if known is not None else Device(user.id, new_id())
        set_endpoint_cookie(
            response,
            DEVICE_COOKIE,
            self.sign(device, user),
            endpoint=LOGIN_PATH,
            root_path=root_path,
            max_age=self.lifetime_seconds,
        )

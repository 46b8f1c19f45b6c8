"""S3AuthSettings: every setting in one msgspec Struct, read from `S3AUTH_*` variables.

Each field is read from the variable named `S3AUTH_` and the field's name in upper case
(`settings_text` says which spellings each kind of value takes); keyword arguments use the
fields' names. Invalid configuration raises ConfigurationError
naming the variable (`settings_checks`), and so does an `S3AUTH_*` variable that names no
setting (`settings_env`).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import msgspec

from .hidden_fields import HidesSecrets
from .settings_checks import check_settings
from .settings_checks import normalise_origin as normalise_origin
from .settings_env import check_keywords, check_variable_names
from .settings_env import env_name as env_name
from .settings_text import read_variable

SECRET_KEY_BYTES = 48
"""Random bytes in a generated secret key (384 bits). Being a multiple of 3, they encode to
64 URL-safe characters without padding: a 64-byte key, as long as HS512's hash output, which
RFC 7518 requires of an HMAC key."""


ForwardedHeader = Literal["x-forwarded-for", "forwarded"]
"""The forwarding header the trusted proxies write: X-Forwarded-For, or RFC 7239 Forwarded."""


def new_secret_key() -> str:
    """A random secret key from the OS's random source: 64 URL-safe characters."""
    return secrets.token_urlsafe(SECRET_KEY_BYTES)


class S3AuthSettings(HidesSecrets, msgspec.Struct, kw_only=True, frozen=True):
    """Every setting of the service, the auth app and the middlewares: from the `S3AUTH_*`
    variables (`from_env`), or given by the fields' names, each checked as its variable is
    (ConfigurationError naming it)."""

    secret_fields: ClassVar[frozenset[str]] = frozenset(
        ("secret_key", "secret_key_fallbacks", "signing_key", "key_encryption_key", "smtp_password")
    )
    """Shown as `<hidden>` (`hidden_fields`)."""
    url_fields: ClassVar[frozenset[str]] = frozenset(
        ("store_url", "jwks_publish_url", "breached_passwords_url")
    )
    """Shown without user info, query or fragment, where obstore takes credentials from."""

    store_url: str = "memory://"
    """Where all state lives: `s3://bucket/prefix`, `gs://…`, `az://…`, `file:///path`,
    `memory://`. S3 endpoints and credentials come from obstore's `AWS_*` variables."""
    store_create: bool = False
    """For the `s3auth` command (as its `--create`): create a `file://` store's directory
    with any missing parents. Off, the command refuses a store whose parent directory does
    not exist, which is more often a typo than a new store."""
    store_probe: bool = True
    """Check that the store honours both conditional writes before writing to it: at
    startup, one read of the verdict a passing probe left in the store (or the probes, once
    per store), refusing a store that lacks one (`store_check`). memory:// and file:// are
    never probed. Off only for a store known to have them, whose verdict cannot be kept."""
    secret_key: str = ""
    """Signs refresh tokens and device cookies, and access tokens with HS*; at least 32
    characters, hard to guess (`secret_strength`), without surrounding whitespace."""
    secret_key_fallbacks: list[str] = msgspec.field(default_factory=list)
    """Earlier secret keys, which still verify and open what they made but make nothing
    new (a rotation: docs/keys.md); comma-separated in the environment, or a JSON array of
    strings for a key with a comma (`settings_fallbacks`), each held to the secret key's
    rules, none of them the secret key or given twice."""
    algorithm: str = "HS256"
    """HS256/384/512 (keyed by the secret key), or ES256, EdDSA, Ed25519 or RS256 (a key
    pair: published as JWKS, see docs/keys.md). EdDSA and Ed25519 sign alike with an
    Ed25519 key; the name is the one tokens carry (EdDSA for verifiers before RFC 9864)."""
    signing_key: str = ""
    """The private key (PEM or JWK) for an asymmetric algorithm; or `signing_key_file`.
    Neither set: keys are made and kept in the store, and rotated with `s3auth keys`."""
    signing_key_file: str = ""
    verification_keys_file: str = ""
    """Public keys that verify but never sign (a JWKS, or PEM blocks): a key being rotated
    in or out when the signing key comes from the environment."""
    key_encryption_key: str = ""
    """Seals the private keys kept in the store (AES-256-GCM); held to the secret key's
    rules."""
    key_publish_seconds: int = 3600
    """A key kept in the store is published this long before it signs."""
    key_sync_seconds: float = 60.0
    """How often a process reads the stored keys again (and at most how often a token
    naming an unknown key makes it read them)."""
    jwks_max_age_seconds: int = 300
    """The JWKS response's Cache-Control max-age; below the publish delay."""
    jwks_publish_url: str = ""
    """Also write the JWKS to this object (`s3://bucket/jwks.json`, `gs://…`, `az://…`,
    `file:///srv/www/…`) when keys change, for a CDN or a static site; outside the store,
    which is private."""
    access_token_expire_minutes: int = 30
    refresh_token_expire_days: int = 7
    """The idle lifetime: a session not refreshed for this long ends."""
    session_absolute_lifetime_days: int = 30
    """The absolute lifetime: a session ends this long after its login, however often it
    is refreshed (then the user logs in again). At least `refresh_token_expire_days`."""
    max_sessions_per_user: int = 100
    """How many live sessions a user may have: only the newest this many can refresh, and
    a refresh ends the older ones (see `sessions`)."""
    issuer: str | None = None
    audience: str | None = None
    leeway_seconds: int = 5
    """Clock-skew allowance when checking `exp`/`nbf`/`iat`."""
    refresh_grace_seconds: int = 10
    """How long the immediately previous refresh token still answers (with the current
    pair) after a rotation, so that a client that lost the response is not logged out. At
    most 300: within it a stolen previous token is not detected as reused. Judged across
    hosts, it is widened by `revocation_skew_seconds`, by at most its own length."""
    password_policy: Literal["default", "nist"] = "default"
    password_context_words: list[str] = msgspec.field(default_factory=list)
    """The service's own words (its organisation's, its product's names), held against a new
    password under either policy as `nist` holds the account's names (`password_policy`);
    comma-separated in the environment, each of 4 characters or more."""
    password_max_length: int = 128
    breached_passwords_url: str = ""
    """The base URL of a Pwned Passwords range API (docs/storage-and-security.md names the
    public one): a new password it lists is refused (`breached_passwords`). Empty: none is
    asked, and nothing leaves the process."""
    breached_passwords_threshold: int = 1
    """A password the API has seen at least this often is refused."""
    breached_passwords_timeout_seconds: float = 2.0
    """The most one lookup takes, its wait for a place among the lookups running included."""
    breached_passwords_fail_closed: bool = False
    """When the API does not answer: refuse the new password (503), rather than take it
    unchecked (logged)."""
    breached_passwords_allow_plain_http: bool = False
    """Take a plain http `breached_passwords_url` off this machine, and redirects to one (a
    mirror on a private network); its host is warned of at the first lookup. Off: plain
    http only to `localhost` or a loopback address."""
    argon2_memory_kib: int = 19456
    """At least 8 KiB per lane of `argon2_parallelism`; each of the three within argon2's
    own bounds (`settings_checks`)."""
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    hash_concurrency: int = 0
    """How many password hashes may run at once (0: the CPUs the process may run on)."""
    hash_queue: int = 0
    """How many more may wait for one of those; past that a login, registration or
    password change is refused at once with 503 `server_busy` and Retry-After (0: 16 per
    running hash: under a second's wait at the default cost; see docs/deployment.md)."""
    hash_device_queue: int = 0
    """How many more places are kept for logins showing a valid device cookie, which a flood
    without one cannot fill (0: 4 per running hash)."""
    name_reservation_seconds: int = 120
    """After this, a username/email reserved by a registration or a change of address that
    never finished is free again. A claim slower than this, less the skew allowance, reads
    its names back once its record is written (one GET each), and gives way if one was
    taken over meanwhile."""
    revocation_sync_seconds: float = 5.0
    """Staleness bound of a process's revocation snapshot."""
    revocation_skew_seconds: int = 10
    """How far apart hosts' clocks, and the store's, may be: a revocation written on one is
    seen on another (each sync lists this far back again, and half as far more for slow
    writes), and the sweep deletes a session or mailed token only twice this long past its
    expiry by its Last-Modified (`last_modified`), a revocation entry twice this long past
    its end. At least `leeway_seconds`: clocks further apart fail token verification
    anyway. Which sessions a logout-everywhere ends depends on no clock."""
    enumeration_protection: bool = True
    rate_limits: str = ""
    """Named limits, `login=5/60,api=100/60` (requests per seconds)."""
    rate_limit_store: Literal["memory", "store"] | None = None
    """Where the auth app counts logins, registrations and password changes: `memory` (each
    process on its own) or `store` (the object store at store_url, shared by every process).
    Unset: see `rate_limit_backend`."""
    trusted_proxies: list[str] = msgspec.field(default_factory=list)
    """Proxies whose forwarding header says who the client is: addresses, networks, and
    `unix` for one on a unix socket (a connection with no peer address)."""
    trust_x_forwarded_for: bool = False
    trust_all_proxies: bool = False
    """Required to list a catch-all (`0.0.0.0/0`, `::/0`, or networks covering one) in
    `trusted_proxies`: only when every peer is a proxy you run (a platform load balancer),
    never by accident."""
    forwarded_header: ForwardedHeader = "x-forwarded-for"
    """The header the trusted proxies name the client in: `x-forwarded-for`, or `forwarded`
    (RFC 7239's `for=`). Only this one is read: a proxy that writes one usually passes a
    client's own copy of the other through."""
    ipv6_prefix_length: int = 64
    """An IPv6 client is counted by its network of this length: a subscriber is usually given
    a whole /64, and can rotate through it at will."""
    refresh_cookie: bool = False
    """Browser mode: the refresh token travels in an HttpOnly cookie, not the body."""
    allowed_origins: list[str] = msgspec.field(default_factory=list)
    """Browser mode: origins besides the app's own whose pages may send it state-changing
    requests (`https://app.example.com`; same site only, since the cookies are
    SameSite=Strict). Comma-separated in the environment; see docs/security.md."""
    max_body_bytes: int = 65536
    # Mail and the account lifecycle (docs/accounts.md; checked in `lifecycle_settings`).
    public_url: str = ""
    """The front end mailed links point at: `{public_url}/reset-password#token=…`."""
    mail_from: str = ""
    mail_outbox: str = ""
    """A directory where messages are written instead of sent (development)."""
    smtp_host: str = ""
    smtp_port: int = 0
    """0: 587 with `starttls`, 465 with `tls`, 25 with `none`."""
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_timeout_seconds: float = 10.0
    password_reset_minutes: int = 30
    email_verification_hours: int = 48
    require_verified_email: bool = False
    admin_sets_passwords: bool = True
    """Whether `POST /admin/users/{id}/password`, and `POST /admin/users` given a password,
    set the password an administrator chose. Off, both are refused; an administrator makes
    the account without one and starts a reset instead (`admin_resets`): the owner
    chooses, and no administrator knows it (OWASP ASVS 5.0 6.4.6). The `s3auth` command and
    the service's `set_password` and `create_user` still set one: whoever runs them holds
    the store, whose records they could write anyway."""
    admin_max_age_seconds: int = 0
    """Every administrator operation of the auth app (`/admin/...`) asks for an
    authentication at most this old, as the access token's `auth_time` says (`step_up`):
    older, it is 401 `reauthentication_required` until the administrator authenticates
    again (`POST /reauthenticate`). 0: none is asked (OWASP ASVS 5.0 7.5.3)."""
    audit_retention_days: int = 90
    new_device_notices: bool = True
    """Mail the account's address of each login that shows no valid device cookie of the
    account (`app.login_notices`); nothing is mailed without a mailer."""
    failed_login_notices: bool = True
    """Mail the account's address when wrong passwords spend its failure budget."""

    def __post_init__(self) -> None:
        check_settings(self)

    @property
    def rate_limit_backend(self) -> Literal["memory", "store"]:
        """S3AUTH_RATE_LIMIT_STORE, or when unset: `store` wherever the auth state is shared
        (file://, s3://, gs://, az://, any URL but memory://), since processes counting
        apart multiply every limit by their number; `memory` on memory://, which no other
        process can see anyway."""
        if self.rate_limit_store is not None:
            return self.rate_limit_store
        return "memory" if urlsplit(self.store_url).scheme == "memory" else "store"

    @property
    def secret_keys(self) -> tuple[str, ...]:
        """The secret key, then each fallback: what a derived key is tried with, in order
        (`tokens.derive_keys`), and what every user of the keys is given."""
        return (self.secret_key, *self.secret_key_fallbacks)

    @property
    def access_token_seconds(self) -> int:
        return self.access_token_expire_minutes * 60

    @property
    def access_token_accepted_seconds(self) -> int:
        """The longest an access token is accepted after it is issued: its lifetime plus the
        leeway. A logout's revocation holds this long, so it outlives every token it ends."""
        return self.access_token_seconds + self.leeway_seconds

    @property
    def refresh_token_seconds(self) -> int:
        """The idle lifetime of a session, in seconds."""
        return self.refresh_token_expire_days * 86400

    @property
    def session_absolute_seconds(self) -> int:
        return self.session_absolute_lifetime_days * 86400

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> S3AuthSettings:
        """Read every `S3AUTH_*` variable (by `settings_text`'s rules); keyword arguments
        win over the environment, and are values checked as the constructor's, not text. A
        variable that names no setting is a ConfigurationError, a keyword argument that
        names no field a TypeError, as the constructor's."""
        check_keywords(overrides, cls.__struct_fields__)
        env = os.environ if environ is None else environ
        check_variable_names(env, cls.__struct_fields__)
        raw: dict[str, Any] = {}
        for field in msgspec.structs.fields(cls):
            text = env.get(env_name(field.name))
            if text is not None:
                raw[field.name] = read_variable(field, text)
        raw.update(overrides)
        return cls(**raw)

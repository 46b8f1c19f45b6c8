"""The checks S3AuthSettings makes when it is made, each failure a ConfigurationError naming
the variable to fix: each value's type and range (`settings_ranges`), the secrets, the keys,
argon2's cost, and what must agree. A value parsed where it is used (the rate limits, the
trusted proxies, the JWKS publication target, the store URL, which keys go together) is
checked by that very parser, so that settings made here never stop the app at start or fail
at the first hash or key change, and `s3auth check` says so. The mail and account-lifecycle
settings are checked in `lifecycle_settings`. An argon2 cost below OWASP's is taken, but
warned of (`weak_argon2_cost`)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import msgspec

from .body_limit import check_body_limit
from .context_words import check_context_words
from .errors import ConfigurationError
from .keys.names import ALGORITHMS
from .keys.sources import check_key_sources, keys_in_store
from .lifecycle_settings import check_lifecycle_settings
from .secret_strength import MIN_SECRET_BITS, estimate_bits
from .settings_env import env_name
from .settings_ranges import ARGON2_MIN_MEMORY_PER_LANE, RANGES, check_range, out_of_range
from .settings_text import check_utf8, choice_refused, choices
from .token_budget import CLAIM_TEXT_MAX_BYTES, token_json_bytes

MIN_SECRET_LENGTH = 32
URL_FIELDS = ("store_url", "jwks_publish_url", "public_url", "breached_passwords_url")
"""Taken to the letter, so refused with whitespace around them (`check_unpadded`)."""

DEFAULT_PORTS = {"http": 80, "https": 443}
# A host's labels begin and end with a letter or digit (RFC 1123): no browser sends `-.-`.
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_ORIGIN = re.compile(
    rf"(https?)://({_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\])(?::([0-9]{{1,5}}))?",
    re.IGNORECASE | re.ASCII,
)


def normalise_origin(value: str) -> str:
    """`value` as browsers serialise an origin in the `Origin` header: `scheme://host[:port]`,
    scheme and host in lower case, the scheme's default port dropped. ValueError saying why
    for anything else: `*`, `null`, a path (even `/`), no scheme or one other than http and
    https, user info, wildcards, a non-ASCII host (browsers send its `xn--` form), a label
    that begins or ends with a hyphen, a port outside 1 to 65535."""
    match = _ORIGIN.fullmatch(value)
    if match is None or not 1 <= int(match[3] or DEFAULT_PORTS[match[1].lower()]) <= 65535:
        raise ValueError(f"{value!r} is not an origin: http(s)://host[:port], without a path")
    scheme, host = match[1].lower(), match[2].lower()
    port = int(match[3]) if match[3] else DEFAULT_PORTS[scheme]
    return f"{scheme}://{host}" if port == DEFAULT_PORTS[scheme] else f"{scheme}://{host}:{port}"


def check_settings(settings: Any) -> None:
    """ConfigurationError for the first setting of `settings` (an S3AuthSettings) that
    cannot work."""
    check_types(settings)
    check_utf8(settings)
    for field in URL_FIELDS:
        # Whitespace is part of a URL: `file:///srv/auth ` is a directory beside
        # `/srv/auth`, another store; `s3://bucket/auth ` another prefix.
        check_unpadded(field, getattr(settings, field), "which would be part of the URL")
    for field in ("issuer", "audience"):
        # Tokens would carry it, and a verifier configured without it refuse them all.
        if getattr(settings, field) is not None:
            check_unpadded(field, getattr(settings, field), "which tokens would carry")
            check_claim_text(field, getattr(settings, field))
    check_secret("secret_key", settings.secret_key)
    check_fallbacks(settings.secret_key, settings.secret_key_fallbacks)
    if settings.key_encryption_key:
        check_secret("key_encryption_key", settings.key_encryption_key)
    for origin in settings.allowed_origins:
        try:
            normalise_origin(origin)
        except ValueError as exc:
            raise ConfigurationError(f"{env_name('allowed_origins')}: {exc}") from None
    check_context_words(settings.password_context_words, env_name("password_context_words"))
    if settings.algorithm not in ALGORITHMS:
        raise choice_refused(env_name("algorithm"), ALGORITHMS, settings.algorithm)
    check_keys(settings)
    check_lifecycle_settings(settings, env_name)
    check_ranges(settings)
    check_argon2(settings.argon2_memory_kib, settings.argon2_parallelism)
    if "://" not in settings.store_url:
        raise ConfigurationError(
            f"{env_name('store_url')} must be a URL such as s3://bucket/prefix, "
            "file:///path or memory://"
        )
    from .storage.urls import check_store_url  # the store's own rule; loads no store

    check_store_url(settings.store_url)
    check_rate_limiting(settings)
    if settings.jwks_publish_url:
        check_jwks_publish_url(settings.jwks_publish_url, settings.store_url)
    # Imported here, as the rate limiter's parsers are: it imports `settings`, which
    # imports this module.
    from .breached_passwords import check_service_url

    check_service_url(
        settings.breached_passwords_url,
        env_name("breached_passwords_url"),
        allow_plain_http=settings.breached_passwords_allow_plain_http,
        opt_in=f"set {env_name('breached_passwords_allow_plain_http')}=true",
    )


def check_types(settings: Any) -> None:
    """Each value's type, and a number's range. Keyword arguments are not type-checked by
    msgspec; check them all here, so that `trust_x_forwarded_for="false"` fails at start-up
    instead of meaning true."""
    for field in msgspec.structs.fields(settings):
        value = getattr(settings, field.name)
        try:
            msgspec.convert(value, field.type)
        except msgspec.ValidationError as exc:
            if field.name in RANGES:
                raise out_of_range(field.name, value) from None
            if field.type is bool:
                raise ConfigurationError(
                    f"{env_name(field.name)} must be True or False, not {value!r}"
                ) from None
            if options := choices(field.type):
                optional = " (or None)" if field.default is None else ""
                listed = [*options[:-1], options[-1] + optional]
                raise choice_refused(env_name(field.name), listed, value) from None
            raise ConfigurationError(f"{env_name(field.name)}: {exc}") from None
        if field.name in RANGES:
            check_range(field.name, value)


def check_fallbacks(secret_key: str, fallbacks: list[str]) -> None:
    """Each earlier secret key held to the secret key's rules, as it keys what it verifies
    alike; none the secret key itself or given twice, which would say a rotation is under
    way when none is. Named by position, never shown."""
    seen: dict[str, int] = {}
    for number, fallback in enumerate(fallbacks, 1):
        variable = f"{env_name('secret_key_fallbacks')} (item {number})"
        check_secret("secret_key_fallbacks", fallback, variable=variable)
        if fallback == secret_key:
            raise ConfigurationError(
                f"{variable} is {env_name('secret_key')} itself: a fallback is an earlier "
                "key, kept only to verify what it made; remove it"
            )
        if fallback in seen:
            raise ConfigurationError(f"{variable} repeats item {seen[fallback]}: remove it")
        seen[fallback] = number


def check_secret(field: str, secret: str, *, variable: str | None = None) -> None:
    """The rules of a secret that keys are made of (the secret key and its fallbacks, the
    key-encryption key): no surrounding whitespace, at least MIN_SECRET_LENGTH characters,
    and at least MIN_SECRET_BITS by `secret_strength`'s estimate; UTF-8 text, as every
    setting is (`settings_text.check_utf8`, which runs first). `variable`: what the
    messages call it, its field's variable by default. No message shows the secret."""
    variable = variable or env_name(field)
    if not secret:
        # Unset, the variable's own name; an item of a list, an empty one.
        missing = "is not set" if variable == env_name(field) else "is empty"
        raise ConfigurationError(f"{variable} {missing} (generate one with `s3auth gen-secret`)")
    # Part of the key, so hosts given the same secret with and without it (a trailing
    # newline from a secret file on one of them) would not verify each other's tokens or
    # open each other's sealed keys.
    check_unpadded(field, secret, "which would be part of the key", variable=variable)
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigurationError(
            f"{variable} must be at least {MIN_SECRET_LENGTH} characters "
            "(generate one with `s3auth gen-secret`)"
        )
    bits = estimate_bits(secret)
    if bits < MIN_SECRET_BITS:
        # The model (repeats, sequences, few distinct characters, common passwords) is in
        # secret_strength; the estimate says how far off the secret is, not what it is.
        raise ConfigurationError(
            f"{variable} is too easy to guess: about {bits:.0f} bits by our estimate, at "
            f"least {MIN_SECRET_BITS} needed (it repeats itself, runs through a sequence, uses "
            "few distinct characters or common passwords); generate one with "
            "`s3auth gen-secret`"
        )


def check_unpadded(
    field: str, value: str, consequence: str, *, variable: str | None = None
) -> None:
    """ConfigurationError unless `value` is without surrounding whitespace, saying what it
    would do (`consequence`) and never showing the value, which may be a secret. Refused
    rather than stripped: a process of an earlier release still uses the value whole."""
    if value != value.strip():
        raise ConfigurationError(
            f"{variable or env_name(field)} begins or ends with whitespace (a newline from the "
            f"file it was read from?), {consequence}: remove it"
        )


def check_claim_text(field: str, value: str) -> None:
    """Every token carries it: no longer than `token_budget` keeps room for."""
    size = token_json_bytes(value) - 2
    if size > CLAIM_TEXT_MAX_BYTES:
        raise ConfigurationError(
            f"{env_name(field)} must be at most {CLAIM_TEXT_MAX_BYTES} bytes (UTF-8), not "
            f"{size}: every access token carries it"
        )


def check_keys(settings: Any) -> None:
    # A JWKS is answered from keys read up to two syncs ago, then cached for max-age; and
    # a stored key's activation is the rotating clock's, which a process's may be ahead of.
    skew = settings.revocation_skew_seconds if keys_in_store(settings) else 0
    if settings.key_publish_seconds <= (
        settings.jwks_max_age_seconds + 2 * settings.key_sync_seconds + skew
    ):
        plus_skew = f" plus {env_name('revocation_skew_seconds')}" if skew else ""
        raise ConfigurationError(
            f"{env_name('key_publish_seconds')} must be longer than "
            f"{env_name('jwks_max_age_seconds')} plus twice {env_name('key_sync_seconds')}"
            f"{plus_skew}: a key must be known to every verifier before any process's clock "
            "lets it sign"
        )
    check_key_sources(settings)  # the key ring's own rule


def check_ranges(settings: Any) -> None:
    """The ranges that depend on another setting; each one's own is checked with its type."""
    if settings.session_absolute_lifetime_days < settings.refresh_token_expire_days:
        raise ConfigurationError(
            f"{env_name('session_absolute_lifetime_days')} must be at least "
            f"{env_name('refresh_token_expire_days')}: no session outlives its absolute "
            "lifetime, so a longer idle one would never apply"
        )
    if settings.revocation_skew_seconds < settings.leeway_seconds:
        raise ConfigurationError(
            f"{env_name('revocation_skew_seconds')} must be at least "
            f"{env_name('leeway_seconds')}: a revocation must be seen from any host "
            "whose tokens are accepted"
        )
    check_body_limit(
        settings.max_body_bytes,
        settings.password_max_length,
        given=f"{env_name('password_max_length')}={settings.password_max_length}",
    )


def check_argon2(
    memory_kib: int,
    parallelism: int,
    names: tuple[str, str] = (env_name("argon2_memory_kib"), env_name("argon2_parallelism")),
) -> None:
    """argon2's least memory for `parallelism` lanes; each one's own bounds are in RANGES.
    `names`: the memory's and the parallelism's in the error (a PasswordHasher's arguments)."""
    least = ARGON2_MIN_MEMORY_PER_LANE * parallelism
    if memory_kib < least:
        raise ConfigurationError(
            f"{names[0]} must be at least {least} KiB: argon2 needs "
            f"{ARGON2_MIN_MEMORY_PER_LANE} KiB for each lane of {names[1]} ({parallelism})"
        )


OWASP_ARGON2ID = ((47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5))
"""OWASP's Password Storage Cheat Sheet's configurations of argon2id, of equal strength: the
memory in KiB and the time cost, each with one lane. The defaults are the second."""


def weak_argon2_cost(settings: Any) -> list[str]:
    """A warning when the argon2 cost of `settings` is below every one of `OWASP_ARGON2ID`:
    less memory than each configuration there of at most its time cost. Taken, since
    what a host can spare is its operator's call (and tests run at a far lower cost to be
    fast), but the hashes a leaked store holds are cheaper to guess than OWASP allows.
    `s3auth check` shows it, and the auth app logs it when it is made.

    Each lane is held to a configuration: argon2 splits the memory among the lanes, which
    fill it side by side, so an attacker with the cores fills p lanes' memory in a p-th of
    the time; more lanes earn no credit for less memory in each."""
    memory, passes, lanes = (
        settings.argon2_memory_kib,
        settings.argon2_time_cost,
        settings.argon2_parallelism,
    )
    if any(least * lanes <= memory and time <= passes for least, time in OWASP_ARGON2ID):
        return []
    # The time costs start at 1, as argon2's does: one configuration is always within it.
    needed = min(least for least, time in OWASP_ARGON2ID if time <= passes) * lanes
    shared = f" shared by {env_name('argon2_parallelism')}={lanes} lanes" if lanes > 1 else ""
    pairs = ", ".join(f"m={least} t={time}" for least, time in OWASP_ARGON2ID)
    return [
        f"{env_name('argon2_memory_kib')}={memory}{shared} and "
        f"{env_name('argon2_time_cost')}={passes} are below OWASP's least cost for argon2id, "
        f"every one of its configurations of equal strength ({pairs}, m in KiB, each p=1): "
        "the password hashes of a leaked store are cheaper to guess than it allows; at this "
        "time cost, "
        f"{env_name('argon2_memory_kib')}={needed} or more meets it"
        + (" (more lanes do not make up for less memory in each)" if lanes > 1 else "")
    ]


def check_rate_limiting(settings: Any) -> None:
    """The limits, the proxies and their header, by the parsers the rate limiter and the
    client address use."""
    # Imported here: the rate-limiting package reads the variables' names from `settings`,
    # which imports this module.
    from .ratelimit.policy import parse_rate_limits
    from .ratelimit.trusted_proxies import check_proxy_settings

    check_proxy_settings(
        settings.trusted_proxies,
        trust_x_forwarded_for=settings.trust_x_forwarded_for,
        trust_all_proxies=settings.trust_all_proxies,
        forwarded_header=settings.forwarded_header,
    )
    parse_rate_limits(settings.rate_limits)


def check_jwks_publish_url(url: str, store_url: str) -> None:
    """A URL the JWKS can be written to (the writer's own rule), outside the store: inside,
    it would be private, and a directory store is compared by where its path leads."""
    from .keys.publish import check_publish_url  # it reads the variable's name from `settings`

    check_publish_url(url)
    inside = url.startswith(store_url.rstrip("/") + "/")
    if not inside and urlsplit(url).scheme == urlsplit(store_url).scheme == "file":
        from .storage.urls import local_path

        try:
            published = local_path(url, env_name("jwks_publish_url")).resolve()
            inside = published.is_relative_to(local_path(store_url).resolve())
        except (OSError, RuntimeError):  # a symlink loop: the writer will fail on it anyway
            inside = False
    if inside:
        raise ConfigurationError(
            f"{env_name('jwks_publish_url')} must be outside the store: everything in it is private"
        )

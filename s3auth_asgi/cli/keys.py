"""`s3auth keys list | rotate | retire | publish | generate`: the signing keys the settings
describe.

Where the keys come from (`keys.ring`: `secret`, `environment` or `store`) decides what
can be done with them: only keys kept in the store are rotated and retired here; the
others are rotated through the variables that hold them, which `rotate` explains.

`list` shows each key's state and whether it is sealed (`key_rows`). `rotate` and
`retire` write the JWKS to S3AUTH_JWKS_PUBLISH_URL afterwards, so the published document
changes with the command and not a sync later; `publish` writes it alone, when that write
failed.

`generate`, which reads no settings, is in `keygen`; the command line in `keys_parser`.
"""

from __future__ import annotations

import time

from ..errors import StoreUnavailableError
from ..keys.events import REFUSED as REFUSED_EVENT
from ..keys.events import tell
from ..keys.keyset import KeySet
from ..keys.names import is_symmetric
from ..keys.publish import publish_jwks
from ..keys.ranking import superseded_at
from ..keys.ring import KeyRing
from ..keys.stored import (
    NO_SIGNER,
    KeyStore,
    StoredKey,
    StoredKeySet,
    can_sign,
    keeps_a_signer,
    ranked_with,
    too_late_to_undo,
    undo_margin,
    withdrawn_at_once,
)
from ..settings import S3AuthSettings, env_name
from ..shown_urls import shown_url
from ..store_time import clock_lead
from ..types import Clock
from .clock_ahead import refuse_when_ahead
from .context import Context, run_async
from .failures import (
    CONFIGURATION,
    NOT_FOUND,
    OK,
    REFUSED,
    UNAVAILABLE,
    CommandError,
    describe_cause,
)
from .json_array import JsonArray
from .key_rows import HEADER, fixed_rows, stored_rows
from .table_text import iso

CLOCK: Clock = time.time
"""The moment the commands act at (read when a command starts)."""
JWKS_PUBLISH_URL = env_name("jwks_publish_url")
ROTATE_HARM = (
    "by it the new key would be dated ahead, and sign on no correctly set clock until "
    "then (the key it replaces signing meanwhile); no key was added"
)
RETIRE_HARM = (
    "by it a key that, by the right time, still signs could be retired, and the tokens "
    "signed with it stop verifying as they are issued; no key was retired"
)

SECRET_ROTATION = (
    "{algorithm} tokens are signed with S3AUTH_SECRET_KEY itself, not a key "
    "`s3auth keys {command}` manages: rotate it by moving it to S3AUTH_SECRET_KEY_FALLBACKS "
    "and setting a new S3AUTH_SECRET_KEY (`s3auth gen-secret`) on every process; what the "
    'old key signed verifies until the fallback is removed (see docs/keys.md, "Rotating the '
    'secret key")'
)
ENVIRONMENT_ROTATION = (
    "the signing key comes from S3AUTH_SIGNING_KEY(_FILE), so it is rotated there, not "
    "with `s3auth keys {command}`: make a key (`s3auth keys generate --algorithm "
    "{algorithm} > new.pem`) and add its public key (`s3auth keys generate --public < "
    "new.pem`) to S3AUTH_VERIFICATION_KEYS_FILE on every process; wait longer than "
    "S3AUTH_JWKS_MAX_AGE_SECONDS ({max_age} s), so that every verifier knows it; then point "
    "S3AUTH_SIGNING_KEY_FILE at new.pem and, in S3AUTH_VERIFICATION_KEYS_FILE, replace the "
    "new public key with the old one; remove the old one after {lifetime} s (the access-token "
    "lifetime plus S3AUTH_LEEWAY_SECONDS), when the last token it signed has expired"
)
NO_KEYS_YET = "the store holds no signing keys yet: the service makes the first when it starts"


def key_ring(ctx: Context, settings: S3AuthSettings) -> KeyRing:
    """The key ring the settings describe. The store is opened only when it holds the keys
    (the ring's own rule): listing an HMAC key needs no store."""
    if is_symmetric(settings.algorithm) or settings.signing_key or settings.signing_key_file:
        return KeyRing(settings, None, clock=CLOCK, by="cli")
    return KeyRing(settings, ctx.store(settings), clock=CLOCK, by="cli")


# list -------------------------------------------------------------------------------------


def run_keys_list(ctx: Context) -> int:
    """A table, or with `--json` one JSON array of keys (kid, algorithm, state,
    activates_at, retires_at, source, sealed)."""
    settings = ctx.settings()
    ring = key_ring(ctx, settings)
    now = CLOCK()
    stored = ring.stored
    if stored is None:
        rows = fixed_rows(ring.key_set(), ring.source, now)
    else:
        found = run_async(stored.read)
        rows = [] if found is None else stored_rows(found[0].keys, now)
    if ctx.args.json:
        JsonArray(row.as_json() for row in rows).write(ctx.out)
    elif not rows:
        print(NO_KEYS_YET, file=ctx.out)
    else:
        print("\n".join([HEADER, *(row.line() for row in rows)]), file=ctx.out)
        print(f"{len(rows)} key(s) at {iso(now)}", file=ctx.out)
    return OK


# rotate and retire ------------------------------------------------------------------------


def stored_keys(ring: KeyRing, settings: S3AuthSettings, command: str) -> KeyStore:
    """The key store, when the keys are kept there; otherwise how to rotate them instead."""
    if ring.stored is not None:
        return ring.stored
    template = SECRET_ROTATION if ring.source == "secret" else ENVIRONMENT_ROTATION
    raise CommandError(
        template.format(
            command=command,
            algorithm=settings.algorithm,
            max_age=settings.jwks_max_age_seconds,
            lifetime=settings.access_token_seconds + settings.leeway_seconds,
        )
    )


async def current_keys(stored: KeyStore) -> tuple[list[StoredKey], KeySet]:
    """The stored keys, and the key set they make: each opened and checked, so that a
    key-encryption key that does not open them (or none, for sealed keys) fails before
    anything is written."""
    keys = await stored_records(stored)
    return keys, stored.key_set(StoredKeySet(keys=keys))


async def stored_records(stored: KeyStore) -> list[StoredKey]:
    found = await stored.read()
    if found is None:
        raise CommandError(NO_KEYS_YET, REFUSED)
    return found[0].keys


def run_keys_rotate(ctx: Context) -> int:
    settings = ctx.settings()
    stored = stored_keys(key_ring(ctx, settings), settings, "rotate")
    now = CLOCK()

    delay = 0 if ctx.args.now else settings.key_publish_seconds

    async def rotate() -> int:
        if keys := await stored_records(stored):  # an empty set is what rotate repairs
            stored.key_set(StoredKeySet(keys=keys))
        if not delay:
            await refuse_a_clock_ahead(stored, settings, now, ROTATE_HARM)
        new = await stored.rotate(settings.algorithm, now, delay)
        when = (
            "signs from now"
            if new.activates_at <= now
            else f"signs from {iso(new.activates_at)} (in {delay} s)"
        )
        print(f"added key {new.kid} ({new.alg}): published now, {when}", file=ctx.out)
        if not delay:
            after = {k.kid for k in await stored_records(stored)}
            for key in withdrawn_at_once(keys, now):
                if key.kid not in after:
                    print(
                        f"withdrew key {key.kid}, rotated in before and not signing yet: it "
                        "was in the same stored key set, and would have taken over from the "
                        "new key",
                        file=ctx.out,
                    )
        await publish_changed(ctx, settings, stored, now)
        return OK

    return run_async(rotate)


def run_keys_retire(ctx: Context) -> int:
    settings = ctx.settings()
    stored = stored_keys(key_ring(ctx, settings), settings, "retire")
    kid: str = ctx.args.kid
    immediately: bool = ctx.args.now
    now = CLOCK()

    async def retire() -> int:
        margin = undo_margin(settings.key_sync_seconds, settings.revocation_skew_seconds)
        keys = (await current_keys(stored))[0]
        if immediately:
            await refuse_a_clock_ahead(stored, settings, now, RETIRE_HARM)
        try:
            target = check_retirable(keys, kid, now, immediately, margin)
        except CommandError:  # refused before any write: logged as the store's refusal is
            known = kid if any(k.kid == kid for k in keys) else None
            tell("key_retire", now, stored.by, outcome="failure", kid=known, reason=REFUSED_EVENT)
            raise
        # Its last token was signed when the next key took over; it lives this long.
        after = settings.access_token_seconds + settings.leeway_seconds
        when = await stored.retire(
            kid, now, after=after, immediately=immediately, undo_margin=margin
        )
        print(retired_message(kid, when, now, signed_here=can_sign(target)), file=ctx.out)
        await publish_changed(ctx, settings, stored, now)
        return OK

    return run_async(retire)


async def refuse_a_clock_ahead(
    stored: KeyStore, settings: S3AuthSettings, now: float, harm: str
) -> None:
    """A change at once is dated by `now`, this host's clock: refused, before anything is
    written, when that clock is further ahead of the store's than the skew allowance
    (`store_time`; 1 PUT, 1 GET, 1 DELETE), as `s3auth cleanup` refuses to sweep."""
    lead = await clock_lead(stored.store, lambda: now)
    refuse_when_ahead(lead, settings.revocation_skew_seconds, harm)


def retired_message(kid: str, when: float, now: float, *, signed_here: bool) -> str:
    """What a retirement did. A key that only verifies never signed here: the tokens it
    verifies were signed with it elsewhere."""
    tokens = "tokens it signed" if signed_here else "tokens signed with it"
    if when <= now:
        return f"retired {kid}: {tokens} no longer verify"
    if not signed_here:
        return (
            f"{kid} retires at {iso(when)}: it never signed here; until then it is published "
            f"and the {tokens} elsewhere verify"
        )
    return f"{kid} retires at {iso(when)}: until then it is published and the {tokens} verify"


def check_retirable(
    keys: list[StoredKey], kid: str, now: float, immediately: bool, margin: float
) -> StoredKey:
    """KeyStore.retire's own rule, checked first so that each refusal has its exit code
    and says what to do (the store checks again under its conditional write); the key."""
    target = next((k for k in keys if k.kid == kid), None)
    if target is None:
        raise CommandError(f"no stored signing key has the kid {kid!r}", NOT_FOUND)
    if not can_sign(target):  # it never signs here, so no rule of the key that signs
        if not keeps_a_signer(k for k in keys if k is not target):
            raise CommandError(f"retiring {kid}: {NO_SIGNER}", REFUSED)
        return target
    successor = superseded_at(ranked_with(keys, target), target)
    if target.activates_at <= now and (successor is None or successor > now):
        raise CommandError(
            f"{kid} is the key that signs: run `s3auth keys rotate`, and retire it once the "
            "new key signs"
            if successor is None
            else f"{kid} signs until {iso(successor)}, when the next key takes over: retire "
            "it after that",
            REFUSED,
        )
    if not keeps_a_signer(k for k in keys if k is not target):
        raise CommandError(f"retiring {kid}: {NO_SIGNER}", REFUSED)
    if target.activates_at > now and not immediately:
        reason = too_late_to_undo(target, now, margin)
        if reason is not None:
            raise CommandError(reason, REFUSED)
    return target


def run_keys_publish(ctx: Context) -> int:
    """Write the JWKS of the keys the settings describe to S3AUTH_JWKS_PUBLISH_URL, changing
    no key: after a `rotate` or `retire` whose write failed, once the target is repaired."""
    settings = ctx.settings()
    if not settings.jwks_publish_url:
        raise CommandError(
            f"{env_name('jwks_publish_url')} is not set: there is no JWKS to write (the "
            "service answers it at /auth/.well-known/jwks.json)",
            CONFIGURATION,
        )
    ring = key_ring(ctx, settings)
    now = CLOCK()

    async def write() -> int:
        keys = ring.key_set() if ring.stored is None else (await current_keys(ring.stored))[1]
        await publish(ctx, settings, keys, now, changed=False)
        return OK

    return run_async(write)


async def publish_changed(
    ctx: Context, settings: S3AuthSettings, stored: KeyStore, now: float
) -> None:
    """After a change: the JWKS the stored keys make now, written to S3AUTH_JWKS_PUBLISH_URL
    when it is set."""
    if settings.jwks_publish_url:
        await publish(ctx, settings, (await current_keys(stored))[1], now, changed=True)


async def publish(
    ctx: Context, settings: S3AuthSettings, keys: KeySet, now: float, *, changed: bool
) -> None:
    """Write the JWKS `keys` make now to S3AUTH_JWKS_PUBLISH_URL. `changed`: the command
    changed the keys, which stays done whether or not the JWKS is written."""
    url = settings.jwks_publish_url
    jwks = keys.jwks(now)
    try:
        await publish_jwks(url, jwks, settings.jwks_max_age_seconds)
    except StoreUnavailableError as exc:
        cause = describe_cause(exc.__cause__)
        where = f"{shown_url(url, JWKS_PUBLISH_URL)}{f' ({cause})' if cause else ''}"
        # Running `rotate` again would add yet another key: publishing is what is left.
        raise CommandError(
            f"the keys changed, but the JWKS could not be written to {where}: write it with "
            "`s3auth keys publish` once the target is repaired (a running service also "
            "writes it when it next reads the keys)"
            if changed
            else f"the JWKS could not be written to {where}; repair the target and try again",
            UNAVAILABLE,
        ) from exc
    print(
        f"published the JWKS ({len(jwks['keys'])} keys) to {shown_url(url, JWKS_PUBLISH_URL)}",
        file=ctx.out,
    )

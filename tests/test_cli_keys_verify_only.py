"""Stored key records that hold only a public JWK (written by hand, or imported to verify
tokens another issuer signed): they open as verify-only keys, so they count for no rule
about the key that signs. `s3auth keys` through its main(), on memory:// and file://."""

from __future__ import annotations

import anyio
import msgspec
import pytest
import test_cli_keys
import test_cli_keys_records
from test_cli_keys import LIFETIME, PUBLISH, SKEW, T0, Keys, iso
from test_cli_keys_records import replace_keys

from s3auth_asgi import S3AuthSettings
from s3auth_asgi.cli import failures
from s3auth_asgi.errors import ConfigurationError
from s3auth_asgi.keys.algorithms import generate_key
from s3auth_asgi.keys.keyset import KeySet, entry_for
from s3auth_asgi.keys.material import public_jwk, public_only, thumbprint
from s3auth_asgi.keys.remote import KeysUnavailableError
from s3auth_asgi.keys.stored import KeyStore, StoredKey
from s3auth_asgi.tokens import TokenCodec

clock = test_cli_keys.clock  # the fixtures, under their names
stored_keys = test_cli_keys.stored_keys
CLAIMS = {
    "user_id": "a" * 32,
    "username": "alice",
    "session_id": "b" * 32,
    "is_admin": False,
    "scopes": [],
}


def verify_only(activates_at: float) -> StoredKey:
    """A record of an ES256 key with its public part only."""
    key = generate_key("ES256")
    kid = thumbprint(key)
    jwk = public_jwk(key, kid=kid, algorithm="ES256")
    return StoredKey(
        kid=kid, alg="ES256", created_at=activates_at, activates_at=activates_at, jwk=jwk
    )


def test_a_verify_only_key_never_takes_over_from_the_key_that_signs(stored_keys: Keys) -> None:
    stored_keys.codec()  # the first key, which signs
    (first,) = stored_keys.stored()
    # Newer than the key that signs, so it would rank above it; but it cannot sign.
    public = verify_only(T0)
    replace_keys(stored_keys, [first, public])
    stored_keys.clock.now = T0 + 2 * 3600
    states = {row["kid"]: row["state"] for row in stored_keys.listing()}
    assert states == {first.kid: "signing", public.kid: "verifying"}
    for argv in (("retire", first.kid), ("retire", first.kid, "--now")):
        run = stored_keys.run("keys", *argv)
        assert (run.code, run.out) == (failures.REFUSED, ""), run
        assert f"{first.kid} is the key that signs" in run.err, run
    # The library's own rule, under its conditional write, is the same.
    store = KeyStore(stored_keys.store)
    with pytest.raises(ConfigurationError, match="is the key that signs"):
        anyio.run(
            lambda: store.retire(
                first.kid, stored_keys.clock.now, after=0, immediately=True, undo_margin=0
            )
        )
    assert stored_keys.stored() == [first, public]
    assert test_cli_keys.kid_of(test_cli_keys.issue(stored_keys.codec())) == first.kid


def test_retire_counts_no_verify_only_key_as_the_one_left_to_sign(stored_keys: Keys) -> None:
    stored_keys.codec()
    (first,) = stored_keys.stored()
    # A newer key took over from the first and is retiring (a set written by hand): once
    # the first goes too, only the key that verifies would be left.
    newer = test_cli_keys_records.es256_record("ES256")
    newer = msgspec.structs.replace(newer, created_at=T0, activates_at=T0, retires_at=T0 + 4 * 3600)
    public = verify_only(T0 + 60)
    replace_keys(stored_keys, [first, newer, public])
    stored_keys.clock.now = T0 + 2 * 3600
    for argv in (("retire", first.kid), ("retire", first.kid, "--now")):
        run = stored_keys.run("keys", *argv)
        assert (run.code, run.out) == (failures.REFUSED, ""), run
        assert "would leave no key that signs" in run.err and "public part" in run.err, run
    store = KeyStore(stored_keys.store)
    with pytest.raises(ConfigurationError, match="would leave no key that signs"):
        anyio.run(
            lambda: store.retire(
                first.kid, stored_keys.clock.now, after=0, immediately=True, undo_margin=0
            )
        )
    assert stored_keys.stored() == [first, newer, public]


def test_rotate_on_a_set_where_only_verify_only_keys_live_adds_a_key_that_signs_at_once(
    stored_keys: Keys,
) -> None:
    stored_keys.codec()
    public = verify_only(T0 - 3600)
    replace_keys(stored_keys, [public])
    run = stored_keys.run("keys", "rotate")
    assert run.code == failures.OK, run
    assert "signs from now" in run.out, run
    _, new = stored_keys.stored()
    assert new.activates_at == T0 - SKEW  # not T0 + PUBLISH: nothing signs meanwhile
    assert new.activates_at < T0 + PUBLISH
    assert test_cli_keys.kid_of(test_cli_keys.issue(stored_keys.codec())) == new.kid


def test_a_codec_with_no_key_that_signs_refuses_alike_on_every_path(stored_keys: Keys) -> None:
    """The service's sessions and a direct issue_access_token: KeysUnavailableError (a 503
    `keys_unavailable`), the ConfigurationError saying why its cause."""
    stored_keys.codec()
    replace_keys(stored_keys, [verify_only(T0 - 3600)])
    codec = stored_keys.codec()
    key = generate_key("ES256")
    fixed = TokenCodec(
        S3AuthSettings.from_env(),
        clock=stored_keys.clock,
        keys=KeySet([entry_for("ES256", public_only(key))]),
    )
    for each in (codec, fixed):
        with pytest.raises(KeysUnavailableError) as signing:
            anyio.run(each.signing_key)
        assert isinstance(signing.value.__cause__, ConfigurationError)
        with pytest.raises(KeysUnavailableError) as direct:
            each.issue_access_token(**CLAIMS)  # type: ignore[arg-type]
        assert str(direct.value.__cause__) == str(signing.value.__cause__)


@pytest.mark.parametrize("activates", [T0, T0 - 30 * 86400, T0 + 4 * 3600])
def test_a_verify_only_key_retires_a_token_lifetime_after_the_command_wherever_it_ranks(
    stored_keys: Keys, activates: float
) -> None:
    """It never signed here, so no moment it stopped signing is known: the tokens it names
    were signed elsewhere, up to now for all this set can tell. Newest of all, oldest, or
    activating later, it is retired as a key whose last token was signed now."""
    stored_keys.codec()
    (first,) = stored_keys.stored()
    public = verify_only(activates)
    replace_keys(stored_keys, [first, public])
    now = stored_keys.clock.now = T0 + 2 * 3600
    run = stored_keys.run("keys", "retire", public.kid)
    assert (run.code, run.err) == (failures.OK, ""), run
    assert run.out == (
        f"{public.kid} retires at {iso(now + LIFETIME)}: it never signed here; until then it "
        "is published and the tokens signed with it elsewhere verify\n"
    )
    assert stored_keys.stored() == [
        first,
        msgspec.structs.replace(public, retires_at=now + LIFETIME),
    ]
    assert test_cli_keys.kid_of(test_cli_keys.issue(stored_keys.codec())) == first.kid
    # The library's own rule is the same.
    replace_keys(stored_keys, [first, public])
    store = KeyStore(stored_keys.store)
    when = anyio.run(
        lambda: store.retire(public.kid, now, after=LIFETIME, immediately=False, undo_margin=130)
    )
    assert when == now + LIFETIME


def test_a_verify_only_key_retired_now_is_gone_at_once(stored_keys: Keys) -> None:
    stored_keys.codec()
    (first,) = stored_keys.stored()
    public = verify_only(T0)
    replace_keys(stored_keys, [first, public])
    stored_keys.clock.now = T0 + 2 * 3600
    run = stored_keys.run("keys", "retire", public.kid, "--now")
    assert (run.code, run.err) == (failures.OK, ""), run
    assert run.out == f"retired {public.kid}: tokens signed with it no longer verify\n"
    assert stored_keys.stored() == [first]

"""`s3auth keys` on a stored key set someone wrote by hand: a record that does not open is a
configuration error (exit 3) that changes nothing."""

from __future__ import annotations

from typing import Any

import anyio
import msgspec
import test_cli_keys
from support import StoreWrapper
from test_cli import Run
from test_cli_keys import Keys, iso

from s3auth_asgi.cli import failures
from s3auth_asgi.keys.algorithms import generate_key
from s3auth_asgi.keys.material import private_jwk, thumbprint
from s3auth_asgi.keys.stored import KeyStore, StoredKey, StoredKeySet
from s3auth_asgi.storage import keys as layout

clock = test_cli_keys.clock  # the fixtures, under their names
stored_keys = test_cli_keys.stored_keys


def replace_keys(keys: Keys, records: list[StoredKey]) -> None:
    async def write() -> None:
        found = await keys.store.get(layout.SIGNING_KEYS, StoredKeySet)
        assert found is not None
        await keys.store.replace(layout.SIGNING_KEYS, StoredKeySet(keys=records), found.etag)

    anyio.run(write, backend="asyncio")


def es256_record(alg: str) -> StoredKey:
    key = generate_key("ES256")
    return StoredKey(
        kid=thumbprint(key), alg=alg, created_at=0, activates_at=0, jwk=private_jwk(key)
    )


def test_a_stored_key_of_an_unknown_algorithm_is_a_configuration_error(stored_keys: Keys) -> None:
    stored_keys.codec()  # the first key
    records = [*stored_keys.stored(), es256_record("ES384")]
    replace_keys(stored_keys, records)
    for command in (("rotate",), ("retire", records[0].kid), ("publish",)):
        run = stored_keys.run("keys", *command)
        assert run.code == failures.CONFIGURATION, run
    assert "for 'ES384'" in stored_keys.run("keys", "rotate").err
    assert stored_keys.stored() == records


def test_the_listing_prints_no_control_characters_from_the_store(stored_keys: Keys) -> None:
    stored_keys.codec()
    (first,) = stored_keys.stored()
    kid = "\x1b]0;owned\x07\x1b[2J\u202e"
    replace_keys(stored_keys, [msgspec.structs.replace(first, kid=kid, alg="ES256\r")])
    run = stored_keys.run("keys", "list")
    assert run.code == failures.OK, run
    assert "\x1b" not in run.out and "\x07" not in run.out and "\r" not in run.out, repr(run.out)
    assert "\u202e" not in run.out
    assert "\\x1b]0;owned\\x07\\x1b[2J\\u202e" in run.out
    assert "ES256\\r" in run.out
    # JSON escapes them itself, and keeps the kid as it is.
    assert stored_keys.listing()[0]["kid"] == kid


def test_an_emptied_key_set_is_repaired_with_rotate(stored_keys: Keys) -> None:
    stored_keys.codec()
    replace_keys(stored_keys, [])
    run = stored_keys.run("keys", "rotate")
    assert run.code == failures.OK, run
    assert "signs from now" in run.out
    (new,) = stored_keys.stored()
    assert new.activates_at == stored_keys.clock.now - test_cli_keys.SKEW
    assert stored_keys.listing()[0]["state"] == "signing"


class RotatedMeanwhile(StoreWrapper):
    """A store on which another administrator's rotation lands between the command's read
    of the key set and its first write, so that the write loses and is tried again."""

    def __init__(self, inner: Any, now: float) -> None:
        super().__init__(inner)
        self.now, self.other = now, None

    async def replace(self, key: str, value: Any, etag: str) -> str:
        if key == layout.SIGNING_KEYS and self.other is None:
            other = KeyStore(self.inner, skew_seconds=test_cli_keys.SKEW)
            self.other = await other.rotate("ES256", self.now, test_cli_keys.PUBLISH)
        return await super().replace(key, value, etag)


def test_a_rotation_retried_after_a_repair_waits_for_the_publish_delay(
    stored_keys: Keys,
) -> None:
    """The first attempt finds no key that signs, so its key would sign at once; it loses
    to another rotation, which repaired the set with a key that signs at once. The retry
    decides from the set it read: a key signs there, so the new one waits to be published
    everywhere, as every rotation that is not a leak's does."""
    stored_keys.codec()
    replace_keys(stored_keys, [])
    now = stored_keys.clock.now
    racing = RotatedMeanwhile(stored_keys.store, now)
    racing.reset_counts()
    run = Run("keys", "rotate", open_store=lambda url: racing)
    assert run.code == failures.OK, run
    assert racing.other is not None and racing.other.activates_at == now - test_cli_keys.SKEW
    # Reads: the command's, both attempts', the other's; writes: the other's, both attempts'.
    assert dict(racing.requests) == {"get": 4, "put": 3}
    other, new = stored_keys.stored()
    assert other == racing.other
    signs_at = now + test_cli_keys.PUBLISH
    assert new.activates_at == signs_at
    assert run.out == (
        f"added key {new.kid} (ES256): published now, signs from {iso(signs_at)} (in 3600 s)\n"
    )
    assert [row["state"] for row in stored_keys.listing()] == ["signing", "next"]


def test_retire_refuses_to_leave_no_key_that_signs(stored_keys: Keys) -> None:
    stored_keys.codec()
    (only,) = stored_keys.stored()
    stored_keys.clock.now = only.activates_at - 3  # the operator's clock behind the host's
    run = stored_keys.run("keys", "retire", only.kid)
    assert run.code == failures.REFUSED, run
    assert "no key that signs" in run.err
    assert stored_keys.stored() == [only]


def test_retire_refuses_to_undo_a_rotation_once_processes_may_sign_with_its_key(
    stored_keys: Keys,
) -> None:
    stored_keys.codec()
    assert stored_keys.run("keys", "rotate").code == failures.OK
    new = stored_keys.stored()[-1]
    margin = 2 * 60 + 10  # twice S3AUTH_KEY_SYNC_SECONDS, plus S3AUTH_REVOCATION_SKEW_SECONDS
    stored_keys.clock.now = new.activates_at - margin + 1
    run = stored_keys.run("keys", "retire", new.kid)
    assert run.code == failures.REFUSED, run
    assert "too late to undo" in run.err and "--now" in run.err
    assert new in stored_keys.stored()
    stored_keys.clock.now = new.activates_at - margin - 1  # before the margin: undone at once
    run = stored_keys.run("keys", "retire", new.kid)
    assert run.code == failures.OK, run
    assert new.kid not in [k.kid for k in stored_keys.stored()]


def test_rotate_now_withdraws_the_pending_keys_and_says_so(stored_keys: Keys) -> None:
    """A key rotated in earlier and not signing yet was in the object that may have leaked:
    `rotate --now` removes it, so that the key it adds keeps signing, and names it."""
    stored_keys.codec()
    (first,) = stored_keys.stored()
    assert stored_keys.run("keys", "rotate").code == failures.OK
    pending = stored_keys.stored()[-1]
    stored_keys.clock.now += 10
    run = stored_keys.run("keys", "rotate", "--now")
    assert run.code == failures.OK, run
    new = stored_keys.stored()[-1]
    assert [k.kid for k in stored_keys.stored()] == [first.kid, new.kid]
    assert run.out.splitlines()[1] == (
        f"withdrew key {pending.kid}, rotated in before and not signing yet: it was in the "
        "same stored key set, and would have taken over from the new key"
    )
    assert "retire" not in run.out
    stored_keys.clock.now = pending.activates_at + 1
    assert [row["state"] for row in stored_keys.listing()][-1] == "signing"
    assert stored_keys.run("keys", "rotate").code == failures.OK
    plain = stored_keys.run("keys", "rotate")  # a rotation that is not a leak's keeps them
    assert "withdrew" not in plain.out and len(stored_keys.stored()) == 4

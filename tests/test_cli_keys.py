"""`s3auth keys list | rotate | retire` on keys kept in the store, against real stores:
memory:// shared through the command's store injection, and a file:// directory opened from
S3AUTH_STORE_URL as an operator would. The commands' clock is set by the test
(`cli.keys.CLOCK`), and tokens are issued and verified by a TokenCodec on the same store and
clock. `generate`, and keys from the secret or the environment: test_cli_keygen.py."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import SECRET
from support import level_with_the_store
from test_cli import Run

from s3auth_asgi import S3AuthSettings, cli
from s3auth_asgi.cli import check as cli_check
from s3auth_asgi.cli import failures
from s3auth_asgi.cli import keys as cli_keys
from s3auth_asgi.errors import InvalidTokenError, UnknownSigningKeyError
from s3auth_asgi.keys.stored import KeyStore, StoredKey
from s3auth_asgi.storage import ObjectStore, keys
from s3auth_asgi.storage.base import StoreConflict
from s3auth_asgi.tokens import TokenCodec

T0 = 1_900_000_000.0
PUBLISH = 3600  # S3AUTH_KEY_PUBLISH_SECONDS's default
LIFETIME = 30 * 60 + 5  # an access token's lifetime plus the leeway, by default
SKEW = 10  # S3AUTH_REVOCATION_SKEW_SECONDS's default: a key that signs at once, since then


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """A clean S3AUTH_* environment with a secret, and the commands' clock at T0, years
    ahead of the store's: a change at once takes the store's clock to have moved with it
    (test_cli_keys_clock.py times it for real)."""
    for name in list(os.environ):
        if name.startswith("S3AUTH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)
    moment = Clock()
    monkeypatch.setattr(cli_keys, "CLOCK", moment)
    monkeypatch.setattr(cli_keys, "clock_lead", level_with_the_store)
    return moment


@dataclass
class Keys:
    """A store holding ES256 keys, and the way the command reaches it."""

    store: ObjectStore
    open_store: Callable[[str], ObjectStore] | None
    clock: Clock

    def run(self, *argv: str) -> Run:
        return Run(*argv, open_store=self.open_store)

    def stored(self) -> list[StoredKey]:
        found = anyio.run(KeyStore(self.store).read, backend="asyncio")
        return [] if found is None else found[0].keys

    def listing(self) -> list[dict[str, Any]]:
        run = self.run("keys", "list", "--json")
        assert run.code == 0, run
        result: list[dict[str, Any]] = json.loads(run.out)
        return result

    def codec(self) -> TokenCodec:
        """A service's token codec on this store, its keys read now (the first start makes
        the first key)."""
        codec = TokenCodec(S3AuthSettings.from_env(), clock=self.clock, store=self.store)
        assert codec.ring is not None
        anyio.run(codec.ring.sync, backend="asyncio")
        return codec


@pytest.fixture(params=["memory", "file"])
def stored_keys(
    request: pytest.FixtureRequest, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Keys:
    monkeypatch.setenv("S3AUTH_ALGORITHM", "ES256")
    if request.param == "memory":
        store = ObjectStore.from_url("memory://")
        return Keys(store, lambda url: store, clock)
    url = f"file://{tmp_path / 'store'}"
    monkeypatch.setenv("S3AUTH_STORE_URL", url)
    return Keys(ObjectStore.from_url(url), None, clock)


def iso(moment: float) -> str:
    return cli_keys.iso(moment) or ""


def issue(codec: TokenCodec) -> str:
    async def signed() -> str:
        key = await codec.signing_key()
        return codec.issue_access_token(
            user_id="a" * 32, username="alice", session_id="b" * 32, is_admin=False,
            scopes=["items:read"], key=key,
        )[0]  # fmt: skip

    return anyio.run(signed, backend="asyncio")


def kid_of(token: str) -> str:
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "==="))["kid"])


# Keys kept in the store ---------------------------------------------------------------------


def test_a_store_without_keys(stored_keys: Keys) -> None:
    assert stored_keys.listing() == []
    assert "no signing keys yet" in stored_keys.run("keys", "list").out
    rotate = stored_keys.run("keys", "rotate")
    assert rotate.code == failures.REFUSED and "no signing keys yet" in rotate.err
    assert stored_keys.stored() == []  # a key that signs later only would leave none at all


def test_rotate_adds_a_key_that_signs_after_the_publish_delay(stored_keys: Keys) -> None:
    codec = stored_keys.codec()
    (first,) = stored_keys.stored()
    # Made by a clock years ahead of the store's (the real time): timed against it.
    assert first.activates_at <= T0 - SKEW
    stored_keys.clock.now = T0 + 10
    rotate = stored_keys.run("keys", "rotate")
    assert rotate.code == 0, rotate
    new = next(k for k in stored_keys.stored() if k.kid != first.kid)
    signs_at = T0 + 10 + PUBLISH
    assert new.activates_at == signs_at
    assert rotate.out == (
        f"added key {new.kid} (ES256): published now, signs from {iso(signs_at)} (in 3600 s)\n"
    )
    listed = stored_keys.listing()
    assert [(k["kid"], k["state"], k["activates_at"]) for k in listed] == [
        (first.kid, "signing", iso(first.activates_at)),
        (new.kid, "next", iso(signs_at)),
    ]
    assert re.search(rf"^{re.escape(new.kid)}\s+ES256\s+next\s+{iso(signs_at)}\s+-\s+store\s+no$",
                     stored_keys.run("keys", "list").out, re.M)  # fmt: skip
    stored_keys.clock.now = signs_at - 1
    anyio.run(codec.ring.sync, backend="asyncio")  # type: ignore[union-attr]
    assert kid_of(issue(codec)) == first.kid
    stored_keys.clock.now = signs_at
    assert [k["state"] for k in stored_keys.listing()] == ["verifying", "signing"]
    assert kid_of(issue(codec)) == new.kid


def test_retire_refuses_what_still_signs(stored_keys: Keys) -> None:
    stored_keys.codec()
    (first,) = stored_keys.stored()
    signing = stored_keys.run("keys", "retire", first.kid)
    assert signing.code == failures.REFUSED, signing
    assert "is the key that signs: run `s3auth keys rotate`" in signing.err
    assert stored_keys.run("keys", "rotate").code == 0
    new = stored_keys.stored()[-1]
    before = stored_keys.stored()
    until = stored_keys.run("keys", "retire", first.kid)
    assert until.code == failures.REFUSED
    assert f"signs until {iso(T0 + PUBLISH)}" in until.err
    unknown = stored_keys.run("keys", "retire", "-no-such-kid")  # a kid may start with `-`
    assert unknown.code == failures.NOT_FOUND, unknown
    assert "no stored signing key has the kid '-no-such-kid'" in unknown.err
    assert stored_keys.stored() == before
    # A key that has not signed yet can be retired at once: the rotation is undone.
    undone = stored_keys.run("keys", "retire", new.kid)
    assert undone.code == 0 and "no longer verify" in undone.out, undone
    assert stored_keys.stored() == [first]


def test_a_leaked_key_is_replaced_at_once(stored_keys: Keys) -> None:
    codec = stored_keys.codec()
    (leaked,) = stored_keys.stored()
    leaked_token = issue(codec)
    rotated = stored_keys.run("keys", "rotate", "--now")
    assert rotated.code == 0 and "signs from now" in rotated.out, rotated
    new = stored_keys.stored()[-1]
    assert new.activates_at == stored_keys.clock.now - SKEW
    assert stored_keys.run("keys", "retire", leaked.kid, "--now").code == 0
    assert stored_keys.stored() == [new]
    anyio.run(codec.ring.sync, backend="asyncio")  # type: ignore[union-attr]
    assert kid_of(issue(codec)) == new.kid
    with pytest.raises(InvalidTokenError):
        codec.verify_access_token(leaked_token)


def test_retire_keeps_an_old_key_until_its_last_token_expired(stored_keys: Keys) -> None:
    codec = stored_keys.codec()
    (old,) = stored_keys.stored()
    old_token = issue(codec)
    assert stored_keys.run("keys", "rotate").code == 0
    stored_keys.clock.now = T0 + PUBLISH + 60
    retire = stored_keys.run("keys", "retire", old.kid)
    assert retire.code == 0, retire
    retires_at = T0 + PUBLISH + LIFETIME  # the last token it signed expires then
    assert retire.out.startswith(f"{old.kid} retires at {iso(retires_at)}: until then")
    assert [(k["state"], k["retires_at"]) for k in stored_keys.listing()] == [
        ("retiring", iso(retires_at)),
        ("signing", None),
    ]
    anyio.run(codec.ring.sync, backend="asyncio")  # type: ignore[union-attr]
    stored_keys.clock.now = T0 + 1000  # within the old token's lifetime
    assert codec.verify_access_token(old_token)["sub"] == "a" * 32
    stored_keys.clock.now = retires_at
    assert stored_keys.listing()[0]["state"] == "retired"
    assert codec.key_set().get(old.kid, retires_at) is None


def test_retire_now_drops_a_key_and_its_tokens(stored_keys: Keys) -> None:
    codec = stored_keys.codec()
    (old,) = stored_keys.stored()
    assert stored_keys.run("keys", "rotate").code == 0
    stored_keys.clock.now = T0 + PUBLISH
    anyio.run(codec.ring.sync, backend="asyncio")  # type: ignore[union-attr]
    stored_keys.clock.now = T0 + PUBLISH - 5
    old_token = issue(codec)  # signed just before the new key took over
    assert kid_of(old_token) == old.kid
    stored_keys.clock.now = T0 + PUBLISH + 1
    assert codec.verify_access_token(old_token)["sub"] == "a" * 32
    retire = stored_keys.run("keys", "retire", old.kid, "--now")
    assert retire.code == 0, retire
    assert retire.out == f"retired {old.kid}: tokens it signed no longer verify\n"
    assert [k["kid"] for k in stored_keys.listing()] != [old.kid]
    assert old.kid not in {k.kid for k in stored_keys.stored()}
    anyio.run(codec.ring.sync, backend="asyncio")  # type: ignore[union-attr]
    with pytest.raises(UnknownSigningKeyError):
        codec.verify_access_token(old_token)


def test_rotate_and_retire_publish_the_jwks(
    stored_keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jwks = tmp_path / "www" / "jwks.json"
    monkeypatch.setenv("S3AUTH_JWKS_PUBLISH_URL", f"file://{jwks}")
    stored_keys.codec()
    (old,) = stored_keys.stored()
    rotate = stored_keys.run("keys", "rotate")
    assert rotate.code == 0, rotate
    assert f"published the JWKS (2 keys) to file://{jwks}" in rotate.out
    assert stat.S_IMODE(jwks.stat().st_mode) == 0o644
    published = json.loads(jwks.read_text())["keys"]
    assert {k["kid"] for k in published} == {k.kid for k in stored_keys.stored()}
    assert all("d" not in k for k in published)  # public keys only
    stored_keys.clock.now = T0 + PUBLISH
    assert stored_keys.run("keys", "retire", old.kid, "--now").code == 0
    assert [k["kid"] for k in json.loads(jwks.read_text())["keys"]] != [old.kid]
    assert len(json.loads(jwks.read_text())["keys"]) == 1


def test_a_jwks_that_cannot_be_written_is_reported_after_the_change(
    stored_keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored_keys.codec()
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("S3AUTH_JWKS_PUBLISH_URL", f"file://{tmp_path}/a-file/jwks.json")
    rotate = stored_keys.run("keys", "rotate")
    assert rotate.code == failures.UNAVAILABLE, rotate
    assert "the keys changed, but the JWKS could not be written to file://" in rotate.err
    # Running `rotate` again would add another key: the advice is to publish.
    assert "write it with `s3auth keys publish`" in rotate.err
    assert "run the command again" not in rotate.err
    assert rotate.out.startswith("added key ")
    assert len(stored_keys.stored()) == 2
    (tmp_path / "a-file").unlink()
    published = stored_keys.run("keys", "publish")
    assert published.code == 0, published
    assert published.out == f"published the JWKS (2 keys) to file://{tmp_path}/a-file/jwks.json\n"
    written = json.loads((tmp_path / "a-file" / "jwks.json").read_text())["keys"]
    assert {k["kid"] for k in written} == {k.kid for k in stored_keys.stored()}
    assert len(stored_keys.stored()) == 2  # publishing changed no key


def test_a_jwks_target_naming_no_object_is_refused_before_a_key_is_added(
    stored_keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored_keys.codec()
    for url in ("not-a-url", "s3://public-bucket", "memory://jwks", "https://host/jwks.json"):
        monkeypatch.setenv("S3AUTH_JWKS_PUBLISH_URL", url)
        for command in ("rotate", "publish"):
            run = stored_keys.run("keys", command)
            assert run.code == failures.CONFIGURATION, run
            assert run.out == "" and run.err.startswith("s3auth: S3AUTH_JWKS_PUBLISH_URL "), run
    assert len(stored_keys.stored()) == 1


def test_publish_needs_a_target(stored_keys: Keys) -> None:
    stored_keys.codec()
    run = stored_keys.run("keys", "publish")
    assert run.code == failures.CONFIGURATION, run
    assert "S3AUTH_JWKS_PUBLISH_URL is not set" in run.err


def test_publish_has_nothing_to_write_for_hs_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HS* keys are secret: their JWKS would be empty, so the settings refuse the target."""
    jwks = tmp_path / "jwks.json"
    monkeypatch.setenv("S3AUTH_JWKS_PUBLISH_URL", f"file://{jwks}")
    run = Run("keys", "publish")
    assert run.code == failures.CONFIGURATION, run
    assert "S3AUTH_JWKS_PUBLISH_URL" in run.err and "S3AUTH_ALGORITHM" in run.err, run
    assert not jwks.exists()


def test_sealed_keys_are_rotated_only_with_their_encryption_key(
    stored_keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3AUTH_KEY_ENCRYPTION_KEY", "k" * 12 + "-sealing-key-for-the-tests-0123")
    stored_keys.codec()
    monkeypatch.delenv("S3AUTH_KEY_ENCRYPTION_KEY")
    missing = stored_keys.run("keys", "rotate")
    assert missing.code == failures.CONFIGURATION, missing
    assert "set S3AUTH_KEY_ENCRYPTION_KEY" in missing.err
    monkeypatch.setenv("S3AUTH_KEY_ENCRYPTION_KEY", "another-sealing-key-for-the-tests-0123")
    wrong = stored_keys.run("keys", "rotate")
    assert wrong.code == failures.CONFIGURATION and "does not open" in wrong.err
    assert len(stored_keys.stored()) == 1  # neither wrote a key
    monkeypatch.setenv("S3AUTH_KEY_ENCRYPTION_KEY", "k" * 12 + "-sealing-key-for-the-tests-0123")
    assert stored_keys.run("keys", "rotate").code == 0
    assert [(k.jwk, k.sealed is not None) for k in stored_keys.stored()] == [(None, True)] * 2


def test_the_listing_shows_which_keys_are_sealed(
    stored_keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored_keys.codec()  # the first key, made before an encryption key was set
    monkeypatch.setenv("S3AUTH_KEY_ENCRYPTION_KEY", "k" * 12 + "-sealing-key-for-the-tests-0123")
    stored_keys.clock.now = T0 + 10
    assert stored_keys.run("keys", "rotate").code == 0
    listed = stored_keys.listing()
    assert [(k["state"], k["sealed"]) for k in listed] == [("signing", False), ("next", True)]
    table = stored_keys.run("keys", "list").out.splitlines()
    assert [line.split()[-1] for line in table[:3]] == ["SEALED", "no", "yes"]


class RacingStore:
    """A store whose first `replace` waits until the other command's reaches its own, so
    both write over the same version: one must lose and try again."""

    def __init__(self, inner: ObjectStore, barrier: threading.Barrier, lost: list[str]) -> None:
        self.inner, self.barrier, self.lost, self.waited = inner, barrier, lost, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def replace(self, key: str, value: Any, etag: str) -> str:
        if key == keys.SIGNING_KEYS and not self.waited:
            self.waited = True
            self.barrier.wait(timeout=30)
        try:
            return await self.inner.replace(key, value, etag)
        except StoreConflict:
            self.lost.append(threading.current_thread().name)
            raise


def test_two_rotations_at_once_both_land(
    clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"file://{tmp_path / 'store'}"
    monkeypatch.setenv("S3AUTH_STORE_URL", url)
    monkeypatch.setenv("S3AUTH_ALGORITHM", "ES256")
    both = Keys(ObjectStore.from_url(url), None, clock)
    both.codec()
    barrier, lost = threading.Barrier(2), []
    outputs: dict[str, tuple[int, str]] = {}

    def rotate() -> None:
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(["keys", "rotate"], stdout=out, stderr=err,
                        open_store=lambda u: RacingStore(ObjectStore.from_url(u), barrier, lost))  # type: ignore[arg-type,return-value]  # fmt: skip
        outputs[threading.current_thread().name] = (code, out.getvalue() + err.getvalue())

    threads = [threading.Thread(target=rotate, name=f"admin{i}") for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(code for code, _ in outputs.values()) == [0, 0], outputs
    assert len(lost) == 1  # the writes did collide, and the loser tried again
    added = {text.split()[2] for _, text in outputs.values()}
    assert {k.kid for k in both.stored()[1:]} == added and len(added) == 2
    # Both sign from the same moment: the listing names the one the key set signs with.
    clock.now = T0 + PUBLISH
    signing = both.codec().key_set().signing_key(clock.now).kid
    assert [k["kid"] for k in both.listing() if k["state"] == "signing"] == [signing]


def test_the_keys_commands_are_in_the_help() -> None:
    assert "keys" in Run("--help").out
    help_text = " ".join(Run("keys", "retire", "--help").out.split())
    assert "tokens it signed stop verifying" in help_text
    assert all(a in Run("keys", "--help").out for a in ("list", "rotate", "retire", "generate"))


def test_check_reports_whether_the_signing_keys_open(
    stored_keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`s3auth check` opens the keys as a service would, and writes none."""
    monkeypatch.setattr(cli_check, "CLOCK", stored_keys.clock)
    fresh = stored_keys.run("check")
    assert fresh.code == 0 and "[ok]   signing keys: none yet" in fresh.out, fresh
    assert stored_keys.stored() == []
    monkeypatch.setenv(
        "S3AUTH_KEY_ENCRYPTION_KEY", "key-encryption-key-that-is-long-enough-0123456789"
    )
    stored_keys.codec()
    (sealed,) = stored_keys.stored()
    opened = stored_keys.run("check")
    assert opened.code == 0, opened
    assert f"[ok]   signing keys: 1 from store, ES256 {sealed.kid} signs" in opened.out
    monkeypatch.delenv("S3AUTH_KEY_ENCRYPTION_KEY")
    shut = stored_keys.run("check")
    assert shut.code == failures.CONFIGURATION, shut
    assert "[FAIL] signing keys: the stored signing keys are sealed" in shut.out
    assert "All checks passed" not in shut.out


@pytest.mark.parametrize("made", [False, True], ids=["missing", "empty"])
def test_check_of_a_new_directory_store_opens_its_keys_before_tidying_up(
    made: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    """A directory store no service has opened yet, with keys to be kept in it: `check`
    reads them (none yet) from the store it probed, and only then removes what it made."""
    root = tmp_path / "store"
    if made:
        root.mkdir()
    monkeypatch.setenv("S3AUTH_ALGORITHM", "ES256")
    monkeypatch.setenv("S3AUTH_STORE_URL", f"file://{root}")
    monkeypatch.setattr(cli_check, "CLOCK", clock)
    run = Run("check")
    assert run.code == 0 and run.err == "", run
    assert "[ok]   signing keys: none yet" in run.out and "All checks passed." in run.out, run
    assert root.is_dir() == made
    assert not made or list(root.iterdir()) == []

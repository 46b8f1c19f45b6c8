"""`s3auth keys generate`, and the `keys` commands on keys that are not kept in the store:
the HMAC key (the secret itself), and keys given in the environment. Keys kept in the
store: test_cli_keys.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import SECRET
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from test_cli import Run
from test_cli_keys import T0, issue, kid_of

from s3auth_asgi import S3AuthSettings
from s3auth_asgi.cli import failures
from s3auth_asgi.keys.keyset import KeySet
from s3auth_asgi.keys.material import import_key, thumbprint
from s3auth_asgi.keys.ring import hmac_entry, verification_entries
from s3auth_asgi.storage import ObjectStore
from s3auth_asgi.tokens import TokenCodec

KEY_TYPES = {"ES256": ec.EllipticCurvePrivateKey, "EdDSA": ed25519.Ed25519PrivateKey,
             "Ed25519": ed25519.Ed25519PrivateKey, "RS256": rsa.RSAPrivateKey}  # fmt: skip


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No S3AUTH_* variable but the secret."""
    for name in list(os.environ):
        if name.startswith("S3AUTH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("S3AUTH_SECRET_KEY", SECRET)


# Keys from the secret and from the environment ----------------------------------------------


def test_an_hmac_key_is_listed_without_material_and_without_a_store() -> None:
    def no_store(url: str) -> ObjectStore:
        raise AssertionError("an HMAC key needs no store")

    listed = Run("keys", "list", "--json", open_store=no_store)
    assert listed.code == 0, listed
    kid = hmac_entry(S3AuthSettings(secret_key=SECRET)).kid
    assert json.loads(listed.out) == [{"kid": kid, "algorithm": "HS256", "state": "signing",
        "activates_at": None, "retires_at": None, "source": "secret", "sealed": None}]  # fmt: skip
    table = Run("keys", "list", open_store=no_store)
    assert table.out.splitlines()[1].split() == [kid, "HS256", "signing", "-", "-", "secret", "-"]
    assert SECRET not in listed.out + table.out


def test_rotating_an_hmac_key_says_to_change_the_secret() -> None:
    for command in (("rotate",), ("retire", "somekid")):
        run = Run("keys", *command)
        assert run.code == failures.USAGE, run
        assert "a new S3AUTH_SECRET_KEY (`s3auth gen-secret`) on every process" in run.err
        assert run.out == ""


def test_environment_keys_are_listed_and_their_rotation_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    signing, old = (Run("keys", "generate", "--algorithm", "ES256").out for _ in range(2))
    (tmp_path / "signing.pem").write_text(signing)
    (tmp_path / "old.pub").write_text(Run("keys", "generate", "--public", stdin=old).out)
    monkeypatch.setenv("S3AUTH_ALGORITHM", "ES256")
    monkeypatch.setenv("S3AUTH_SIGNING_KEY_FILE", str(tmp_path / "signing.pem"))
    monkeypatch.setenv("S3AUTH_VERIFICATION_KEYS_FILE", str(tmp_path / "old.pub"))
    listed = json.loads(Run("keys", "list", "--json").out)
    assert [(k["kid"], k["state"], k["source"]) for k in listed] == [
        (thumbprint(import_key("ES256", signing)[0]), "signing", "environment"),
        (thumbprint(import_key("ES256", old)[0]), "verifying", "environment"),
    ]
    rotate = Run("keys", "rotate")
    assert rotate.code == failures.USAGE, rotate
    for step in ("--public < new.pem`) to S3AUTH_VERIFICATION_KEYS_FILE",
                 "wait longer than S3AUTH_JWKS_MAX_AGE_SECONDS (300 s)",
                 "point S3AUTH_SIGNING_KEY_FILE at new.pem",
                 "remove the old one after 1805 s"):  # fmt: skip
        assert step in rotate.err, rotate


# generate -----------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", list(KEY_TYPES))
def test_a_generated_key_signs_and_its_public_key_verifies(algorithm: str) -> None:
    run = Run("keys", "generate", "--algorithm", algorithm)
    assert run.code == 0, run
    assert run.out.startswith("-----BEGIN PRIVATE KEY-----\n")  # PKCS#8, unencrypted
    assert isinstance(load_pem_private_key(run.out.encode(), None), KEY_TYPES[algorithm])
    assert Run("keys", "generate", "--algorithm", algorithm).out != run.out

    settings = S3AuthSettings(secret_key=SECRET, algorithm=algorithm, signing_key=run.out)
    codec = TokenCodec(settings, clock=lambda: T0)
    token = issue(codec)
    assert codec.verify_access_token(token)["sub"] == "a" * 32
    assert kid_of(token) == thumbprint(import_key(algorithm, run.out)[0])

    public = Run("keys", "generate", "--public", stdin=run.out)
    assert public.code == 0, public
    assert public.out.startswith("-----BEGIN PUBLIC KEY-----\n")
    (entry,) = verification_entries(public.out)
    assert not entry.key.is_private and entry.kid == kid_of(token)
    verifier = TokenCodec(settings, clock=lambda: T0, keys=KeySet([entry]))
    assert verifier.verify_access_token(token)["sub"] == "a" * 32


def test_generate_refusals() -> None:
    assert Run("keys", "generate").code == failures.USAGE
    assert Run("keys", "generate", "--algorithm", "HS256").code == failures.USAGE
    empty = Run("keys", "generate", "--public")
    assert (empty.code, empty.err) == (failures.USAGE, "s3auth: --public: standard input is "
                                       "empty; give it the private key\n")  # fmt: skip
    junk = Run("keys", "generate", "--public", stdin="not a key")
    assert junk.code == failures.USAGE and "not a usable ES256, Ed25519 or RS256" in junk.err
    ec_key = Run("keys", "generate", "--algorithm", "ES256").out
    wrong = Run("keys", "generate", "--public", "--algorithm", "RS256", stdin=ec_key)
    assert wrong.code == failures.USAGE and "not a valid RSA key for RS256" in wrong.err
    terminal = Run("keys", "generate", "--public", terminal=True)
    assert terminal.code == failures.USAGE and "standard input" in terminal.err
    assert "BEGIN" not in wrong.out + wrong.err + junk.out

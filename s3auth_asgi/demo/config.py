"""Where the demo keeps its state: a directory (default ./.s3auth-demo) holding the
file:// store, a generated secret key, so restarts keep users and their tokens, and the
outbox its mails are written to (the page shows them: there is no mail server).

The store, the secret, the signing keys and the mail settings are the demo's own whatever
the S3AUTH_* variables say: a shell that holds a service's settings (its store, secret,
keys, mail server) must not point the demo, or `s3auth --demo user create … --admin`, at
that service, nor make a demo send real mail. The store may be chosen explicitly
(`s3auth --demo-store s3://bucket/prefix`); every other S3AUTH_* variable still applies
(hashing cost, lifetimes, the refresh cookie), but S3AUTH_ADMIN_MAX_AGE_SECONDS: the page
does not answer the challenge of a recent login, so its administration asks for none.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from ..errors import ConfigurationError
from ..settings import S3AuthSettings, env_name, new_secret_key
from ..settings_checks import MIN_SECRET_LENGTH
from ..storage.urls import file_url
from .directory import (
    PRIVATE_FILE,
    keep_private,
    no_others_link,
    own_directory,
    private_directory,
)

DEFAULT_DEMO_DIR = Path(".s3auth-demo")
SECRET_FILE = "secret"
STORE_DIR = "store"
OUTBOX_DIR = "outbox"
DEMO_SENDER = "s3auth-demo@example.com"
DEMO_KEYS: dict[str, Any] = {
    "secret_key_fallbacks": [],
    "algorithm": "HS256",
    "signing_key": "",
    "signing_key_file": "",
    "verification_keys_file": "",
    "key_encryption_key": "",
    "jwks_publish_url": "",
}
"""The demo's tokens are signed with its own secret, and it publishes no keys anywhere; no
earlier secret key of the environment verifies or opens anything there."""
DEMO_MAIL: dict[str, Any] = {
    **{
        field.name: field.default
        for field in msgspec.structs.fields(S3AuthSettings)
        if field.name.startswith("smtp_")
    },
    "mail_from": DEMO_SENDER,
    "public_url": "",
}
"""The demo sends no mail (every `smtp_*` setting is the default, no server): it writes it
to the outbox in its directory, with links relative to its own page (which opens them),
not to the front end the environment names."""


def read_or_create_secret(directory: Path, *, the_demos: bool = False) -> str:
    """The secret kept in `directory/secret`, created (mode 0600) on first use; a
    ConfigurationError when the file holds no usable secret, or when the directory or the
    file are not the user's alone (`directory`; `the_demos`: its default one)."""
    own_directory(directory, the_demos=the_demos)
    path = directory / SECRET_FILE
    if not path.exists():
        _create_secret(path)
    keep_private(path, PRIVATE_FILE)
    try:
        secret = path.read_text(encoding="ascii").strip()
    except UnicodeDecodeError:
        secret = ""
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigurationError(
            f"the demo's secret file {path.resolve()} is empty or damaged: delete it and a "
            "new one is made (the demo's sessions then end)"
        )
    return secret


def _create_secret(path: Path) -> None:
    """Write a new secret under a name of its own, then link it into place: a process that
    starts meanwhile finds no file or a whole one, never a half-written one, and of two
    first starts the first link wins and both read its secret."""
    secret = new_secret_key()
    draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(secret + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    finally:
        draft.unlink()


def demo_settings(
    directory: Path | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    store_url: str | None = None,
) -> S3AuthSettings:
    """The demo's settings: the store in `directory` (None: DEFAULT_DEMO_DIR), or at
    `store_url`, the secret and the mail outbox there, each the user's alone (`directory`,
    which also says what is refused), no other keys and no mail server, whatever the
    environment says; browser mode (the refresh token in an HttpOnly cookie) unless
    configured; the rest from the S3AUTH_* variables."""
    env = os.environ if environ is None else environ
    the_demos = directory is None
    directory = DEFAULT_DEMO_DIR if directory is None else directory
    no_others_link(directory)
    directory = directory.resolve()
    secret = read_or_create_secret(directory, the_demos=the_demos)
    if store_url is None:
        private_directory(directory / STORE_DIR)
    private_directory(directory / OUTBOX_DIR)
    own: dict[str, Any] = {
        "store_url": store_url or file_url(directory / STORE_DIR),
        "secret_key": secret,
        "mail_outbox": str(directory / OUTBOX_DIR),
        **DEMO_KEYS,
        **DEMO_MAIL,
        "admin_max_age_seconds": 0,
    }
    if env.get(env_name("refresh_cookie")) is None:
        own["refresh_cookie"] = True
    return S3AuthSettings.from_env(env, **own)

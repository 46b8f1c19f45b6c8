"""Where the demo keeps its state: a directory (default ./.s3auth-demo) holding the
file:// store, a generated secret key, so restarts keep users and their tokens, and the
outbox its mails are written to (the page shows them: there is no mail server).

Every S3AUTH_* variable still applies and wins: S3AUTH_STORE_URL=s3://bucket/prefix runs
the same demo on S3, S3AUTH_SECRET_KEY replaces the generated key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..settings import S3AuthSettings, env_name, new_secret_key

DEFAULT_DEMO_DIR = Path(".s3auth-demo")
SECRET_FILE = "secret"
STORE_DIR = "store"
OUTBOX_DIR = "outbox"
DEMO_SENDER = "s3auth-demo@example.com"


def read_or_create_secret(directory: Path) -> str:
    """The secret kept in `directory/secret`, created (mode 0600) on first use."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / SECRET_FILE
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(new_secret_key() + "\n")
    return path.read_text(encoding="ascii").strip()


def demo_settings(
    directory: Path = DEFAULT_DEMO_DIR, environ: Mapping[str, str] | None = None
) -> S3AuthSettings:
    """The demo's settings: S3AUTH_* variables, else the store and secret in `directory`,
    and browser mode (the refresh token in an HttpOnly cookie) unless configured."""
    env = os.environ if environ is None else environ
    directory = directory.resolve()
    defaults: dict[str, Any] = {}
    if not env.get(env_name("store_url")):
        defaults["store_url"] = f"file://{directory / STORE_DIR}"
    if not env.get(env_name("secret_key")):
        defaults["secret_key"] = read_or_create_secret(directory)
    if env.get(env_name("refresh_cookie")) is None:
        defaults["refresh_cookie"] = True
    # No mail server: the mails go to an outbox the page shows.
    if not env.get(env_name("smtp_host")) and not env.get(env_name("mail_outbox")):
        defaults["mail_outbox"] = str(directory / OUTBOX_DIR)
        defaults.setdefault("mail_from", env.get(env_name("mail_from")) or DEMO_SENDER)
    return S3AuthSettings.from_env(env, **defaults)

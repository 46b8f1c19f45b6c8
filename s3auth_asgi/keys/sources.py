"""Where the keys come from, judged from the settings alone: the secret key (HS*), the
environment (`S3AUTH_SIGNING_KEY` or its `_FILE`, with `S3AUTH_VERIFICATION_KEYS_FILE`), or
the store. The settings are judged by this when they are made, and the key ring by it again,
so that a combination it would refuse, or one that does nothing (a key-encryption key or a
JWKS target with HS* keys), stops a process before it starts. No key file is read here:
what a file holds is judged when the key ring is made (`ring`), since the settings may be
made where the files are not (`s3auth check` on another host).
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError
from ..settings_env import env_name
from .names import is_symmetric

PAIR_ALGORITHMS = "ES256, EdDSA, Ed25519 or RS256"


def keys_in_store(settings: Any) -> bool:
    """Whether the keys of `settings` are kept in the store, rotated by `s3auth keys`."""
    return not (
        is_symmetric(settings.algorithm) or settings.signing_key or settings.signing_key_file
    )


def check_key_sources(settings: Any) -> None:
    """ConfigurationError naming both variables of the first combination of `settings` (an
    S3AuthSettings) that cannot work, or that would do nothing."""
    signing, signing_file = env_name("signing_key"), env_name("signing_key_file")
    verification = env_name("verification_keys_file")
    algorithm = f"{env_name('algorithm')}={settings.algorithm}"
    if is_symmetric(settings.algorithm):
        if settings.signing_key or settings.signing_key_file or settings.verification_keys_file:
            raise ConfigurationError(
                f"{signing} and the key files are for {PAIR_ALGORITHMS}; {algorithm} is "
                f"keyed by {env_name('secret_key')}"
            )
        if settings.key_encryption_key:
            raise ConfigurationError(
                f"{env_name('key_encryption_key')} seals the private keys kept in the store, "
                f"and with {algorithm} none are (the key is {env_name('secret_key')}): unset "
                f"it, or choose {PAIR_ALGORITHMS}"
            )
        if settings.jwks_publish_url:
            # An HMAC key has no public form: the document written would be {"keys": []}.
            raise ConfigurationError(
                f"{env_name('jwks_publish_url')} publishes public keys, and {algorithm} has "
                f"none (the key is {env_name('secret_key')}): unset it, or choose "
                f"{PAIR_ALGORITHMS}"
            )
        return
    if settings.signing_key and settings.signing_key_file:
        raise ConfigurationError(f"set {signing} or {signing_file}, not both")
    if settings.verification_keys_file and not (settings.signing_key or settings.signing_key_file):
        raise ConfigurationError(
            f"{verification} needs {signing} or {signing_file}: keys kept in the store are "
            "rotated with `s3auth keys`"
        )

"""`s3auth keys generate`: a private key for S3AUTH_SIGNING_KEY_FILE, or with `--public`
the public key of one (read on standard input) for S3AUTH_VERIFICATION_KEYS_FILE.

Both are PEM: the private key PKCS#8 and unencrypted (the variable holds it as it is), the
public key SubjectPublicKeyInfo. A key read is judged as the service judges it at start-up
(`keys.material.import_key`), so a key this prints the public half of is one it accepts.
"""

from __future__ import annotations

import contextlib
import sys

from cryptography.hazmat.primitives import serialization

from ..keys.algorithms import Key, generate_key
from ..keys.material import MAX_KEY_TEXT, import_key
from ..keys.names import ASYMMETRIC_ALGORITHMS, UnusableKeyError
from .context import Context
from .failures import OK, CommandError
from .progress import is_terminal
from .stdin import read_stdin

KEY_BYTES = 4 * MAX_KEY_TEXT
"""What is read of standard input: a key of MAX_KEY_TEXT characters in any UTF-8."""
NOT_A_KEY = (
    ": give the key as PEM or JWK (a DER key converts with "
    "`openssl pkey -inform DER -in key.der -out key.pem`)"
)


def run_keys_generate(ctx: Context) -> int:
    algorithm: str | None = ctx.args.algorithm
    if ctx.args.public:
        public = read_key(algorithm).public_key
        assert not isinstance(public, bytes)  # an asymmetric key's
        pem = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    else:
        if algorithm is None:
            raise CommandError(
                f"--algorithm is required to make a key: {', '.join(ASYMMETRIC_ALGORITHMS)}"
            )
        private = generate_key(algorithm).private_key
        assert private is not None and not isinstance(private, bytes)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    ctx.out.write(pem.decode("ascii"))
    return OK


def read_key(algorithm: str | None) -> Key:
    """The key on standard input (PEM or JWK), judged for `algorithm` or, when none is
    given, for the first asymmetric algorithm it fits."""
    if is_terminal(sys.stdin):
        raise CommandError("--public reads the private key from standard input: < key.pem")
    text, more = read_stdin(KEY_BYTES, not_text=NOT_A_KEY)
    if more:
        raise CommandError("standard input: the key text is too long")
    if not text.strip():
        raise CommandError("--public: standard input is empty; give it the private key")
    if algorithm is not None:
        try:
            return import_key(algorithm, text)[0]
        except UnusableKeyError as exc:
            raise CommandError(f"standard input: {exc}") from None
    for name in ASYMMETRIC_ALGORITHMS:
        with contextlib.suppress(UnusableKeyError):
            return import_key(name, text)[0]
    raise CommandError("standard input: not a usable ES256, Ed25519 or RS256 key (PEM or JWK)")

"""What a key must be to be used with each algorithm (the table is in `names`).

A key belongs to exactly one algorithm; verification looks the key up by `kid` and then
accepts only that algorithm (for an Ed25519 key, either of its names), so no token can make
a public key serve as an HMAC secret or switch one family for another.

`check_key` is the one place key material is judged, whatever it came from (a PEM in the
environment, a generated key, a JWKS fetched over the network): the curve, the size, a
public exponent that makes RSA no signature at all, and RSA moduli made by the Infineon
library whose factors can be recovered (ROCA, CVE-2017-15361).
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from .names import ALGORITHMS, UnusableKeyError, algorithm_for

Key = OctKey | ECKey | OKPKey | RSAKey


def check_key(algorithm_name: str, key: Key) -> None:
    """Refuse `key` unless it is a sound key for `algorithm_name`; UnusableKeyError says
    why (and names no key material)."""
    algorithm = algorithm_for(algorithm_name)
    if key.key_type != algorithm.kty:
        raise UnusableKeyError(
            f"{algorithm.name} needs a key of type {algorithm.kty}, not {key.key_type}"
        )
    if isinstance(key, OctKey):
        bits = len(key.raw_value) * 8
        if bits < algorithm.min_bits:
            raise UnusableKeyError(
                f"{algorithm.name} needs a key of at least {algorithm.min_bits // 8} bytes"
            )
        return
    curve = key.as_dict(private=False).get("crv")
    if algorithm.curve is not None and curve != algorithm.curve:
        raise UnusableKeyError(f"{algorithm.name} needs a {algorithm.curve} key, not {curve}")
    if isinstance(key, RSAKey):
        _check_rsa(key)


def _check_rsa(key: RSAKey) -> None:
    public = key.public_key
    if not isinstance(public, rsa.RSAPublicKey):  # pragma: no cover - joserfc's own type
        raise UnusableKeyError("not an RSA public key")
    numbers = public.public_numbers()
    if numbers.n.bit_length() < ALGORITHMS["RS256"].min_bits:
        raise UnusableKeyError(
            f"RS256 needs an RSA key of at least {ALGORITHMS['RS256'].min_bits} bits, "
            f"not {numbers.n.bit_length()}"
        )
    if numbers.e < 3 or numbers.e % 2 == 0:
        raise UnusableKeyError("the RSA key's public exponent is not usable")
    if has_roca_fingerprint(numbers.n):
        raise UnusableKeyError(
            "the RSA key was made by a generator whose keys can be factored (ROCA, "
            "CVE-2017-15361); make a new one"
        )


# ROCA primes p are k·M + (65537^a mod M), M the product of the first primes; so p·q
# mod every small prime r lies in the subgroup 65537 generates mod r. A random modulus
# falls in all of these subgroups with a probability far below 2^-100.
_ROCA_PRIMES = (
    3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83,
    89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
)  # fmt: skip


def _subgroup(prime: int) -> frozenset[int]:
    members, value = {1}, 65537 % prime
    while value not in members:
        members.add(value)
        value = value * 65537 % prime
    return frozenset(members)


_ROCA_SUBGROUPS = tuple((prime, _subgroup(prime)) for prime in _ROCA_PRIMES)


def has_roca_fingerprint(modulus: int) -> bool:
    return all(modulus % prime in members for prime, members in _ROCA_SUBGROUPS)


def generate_key(algorithm_name: str) -> Key:
    """A new private key for an asymmetric algorithm."""
    algorithm = algorithm_for(algorithm_name)
    if algorithm.kty == "EC":
        return ECKey.import_key(ec.generate_private_key(ec.SECP256R1()))
    if algorithm.kty == "OKP":
        return OKPKey.import_key(ed25519.Ed25519PrivateKey.generate())
    if algorithm.kty == "RSA":
        return RSAKey.import_key(rsa.generate_private_key(65537, 3072))
    raise UnusableKeyError("the HMAC key is S3AUTH_SECRET_KEY itself, not generated")

"""Signing keys: algorithms, key material, key sets by kid, and verifying a JWS with one.

    names        the algorithms by name, and what key each needs
    algorithms   judging key material for an algorithm (`check_key`), making keys
    material     PEM and JWK in, public JWK and thumbprint out
    keyset       KeySet and KeyEntry: keys by kid, the signing key at a moment, the JWKS
    jws          verify a compact JWS against a key set (key by kid, algorithm by key)
    low_s        ES256 signatures in their one low-S form, so a token has one spelling
    remote       a key set read from a JWKS URL or file, for a service that only verifies
    sealing      private keys sealed for the store
    stored       the key set kept in the store, rotated by conditional writes
    rewrites     the retried read, change and conditional write of each stored change
    events       the key events: a log record per change of the stored keys
    observed     what each process saw change, logged as key events of its own
    sources      which key settings go together, judged with the settings
    ring         where a service's keys come from, kept fresh
    publish      the JWKS written to an object outside the store

Only the first six are needed to verify; none of them imports the storage layer.
"""

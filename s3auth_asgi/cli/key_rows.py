"""The rows of `s3auth keys list`: one a key, as a table line or a JSON object.

A stored key's state, at the moment of the listing: `next` (published, signs from its
activates_at), `signing`, `verifying` (stopped signing, still published), `retiring`
(published until its retires_at) or `retired` (past it: accepted nowhere, dropped from the
store at the next change). `sealed` says whether its private part is sealed in the store;
keys of the secret or the environment are not stored, so for them it is null. The table
shows characters that are not printable as escapes; JSON escapes them itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..keys.keyset import KeySet
from ..keys.ranking import signer
from ..keys.stored import StoredKey, can_sign, signers
from .table_text import iso, printable


@dataclass(frozen=True)
class KeyRow:
    kid: str
    algorithm: str
    state: str
    source: str
    activates_at: float | None = None
    retires_at: float | None = None
    sealed: bool | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "algorithm": self.algorithm,
            "state": self.state,
            "activates_at": iso(self.activates_at),
            "retires_at": iso(self.retires_at),
            "source": self.source,
            "sealed": self.sealed,
        }

    def line(self) -> str:
        sealed = "-" if self.sealed is None else ("yes" if self.sealed else "no")
        return table_line(
            self.kid,
            self.algorithm,
            self.state,
            iso(self.activates_at) or "-",
            iso(self.retires_at) or "-",
            self.source,
            sealed,
        )


def table_line(*columns: str) -> str:
    kid, algorithm, state, activates, retires, source, sealed = map(printable, columns)
    return (
        f"{kid:43}  {algorithm:9}  {state:9}  {activates:20}  {retires:20}  {source:11}  {sealed}"
    )


HEADER = table_line("KID", "ALGORITHM", "STATE", "ACTIVATES AT", "RETIRES AT", "SOURCE", "SEALED")


def fixed_rows(keys: KeySet, source: str, now: float) -> list[KeyRow]:
    """The keys of the secret or the environment: one signs, the others verify; their
    times are the operator's, not recorded anywhere."""
    signing = keys.signing_key(now).kid
    return [
        KeyRow(e.kid, e.algorithm, "signing" if e.kid == signing else "verifying", source)
        for e in keys.entries
    ]


def stored_rows(keys: list[StoredKey], now: float) -> list[KeyRow]:
    signing = signing_kid(keys, now)
    return [
        KeyRow(
            k.kid,
            k.alg,
            state_of(k, signing, now),
            "store",
            k.activates_at,
            k.retires_at,
            sealed=k.sealed is not None,
        )
        for k in sorted(keys, key=lambda k: k.activates_at)
    ]


def signing_kid(keys: list[StoredKey], now: float) -> str | None:
    """The kid `KeySet.signing_key` picks, by the same rule (`ranking.signer`), among the
    keys that can sign."""
    key = signer(signers(keys), now)
    return key.kid if key is not None else None


def state_of(key: StoredKey, signing: str | None, now: float) -> str:
    if key.kid == signing:
        return "signing"
    if key.retires_at is not None:
        return "retiring" if now < key.retires_at else "retired"
    return "next" if key.activates_at > now and can_sign(key) else "verifying"

"""The object layout: every key this package reads or writes is built here.

    users/{user_id}.json                       the user record
    index/username/{digest}                    {"user_id": ..., "claim": ...}; its create
                                               IS uniqueness; retired, then deleted, when
                                               let go (`name_claims`)
    index/skeleton/{digest}                    the same, for what the username looks
                                               like (its TR39 skeleton): no look-alikes
    index/email/{digest}
    sessions/{user_id}/{session_id}.json       one refresh-token family
    sessions/{user_id}/~generation.{generation}
                                               a session-generation marker: sessions of
                                               older generations may not refresh
                                               (`session_generation`); `~` sorts after
                                               every session id, and the name has no
                                               `.json`, so no session key is one
    sessions/{user_id}/~closing.{random}       a deletion's closing marker, written
                                               before it closes the user record: a
                                               refresh that lists one reads the record,
                                               and refuses the session once it is closed
                                               or gone (`session_generation`); one per
                                               deletion, so the sweep never deletes the
                                               one a deletion under way has just written
    sessions/not-before                        the cut-off of every session of every
                                               user (`every_session`): a time, and
                                               sessions opened before it may not be used;
                                               one object, replaced If-Match, never
                                               deleted (no user id is `not-before`)
    revocations/{shard:09d}/{written_ms:013d}.{kind}.{expires_s}.{subject}
                                               the key says what readers and cleaners
                                               need; only a `user` entry has a body (the
                                               sessions it ends). `shard` is written_ms
                                               // 10,000: a listing of what is new reads
                                               the few ten-second directories it spans
                                               on a local store and on Azure (which are
                                               sent no offset), never the history
    revocations/{written_ms:013d}.{kind}.{expires_s}.{subject}
                                               the same, as 0.1 wrote it: no shard, no
                                               body; its `user` entry ends every session
                                               of the user opened up to `written_ms`
                                               (`is_unsharded_revocation`). Read, swept,
                                               never written
    ratelimit/{limit}/{key_digest}             shared limiter state
    ratelimit/{budget}/{key_digest}            a failure budget's state (several limits)
    account-tokens/{purpose}/{token_id}        a password-reset, email-verification or
                                               email-change token (`account_tokens`): a
                                               keyed hash of its secret, never the secret;
                                               `purpose` is `password-reset`,
                                               `email-verification` or `email-change`
    audit/{user_id}/{age:013d}.{random}        one security event of a user (`audit`);
                                               `age` is AUDIT_EPOCH_MS minus the time
                                               written, so a listing gives the newest first
    keys/signing.json                          the signing keys, when the store keeps
                                               them (`keys.stored`): private, like all
    _s3auth-check/{random}                     `s3auth check`'s probe, deleted after
    checks/conditional-writes.json             the verdict of a probe that passed
                                               (`verdicts`), written once by `s3auth
                                               check` or a service's first start: the
                                               starts after read it instead of probing

Digests are SHA-256 of the normalised identifier, so a listing shows no names.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Literal, NamedTuple

USERS = "users/"
USERNAME_INDEX = "index/username/"
SKELETON_INDEX = "index/skeleton/"
EMAIL_INDEX = "index/email/"
SESSIONS = "sessions/"
SESSIONS_NOT_BEFORE = "sessions/not-before"
REVOCATIONS = "revocations/"
RATELIMIT = "ratelimit/"
PROBES = "_s3auth-check/"
ACCOUNT_TOKENS = "account-tokens/"
AUDIT = "audit/"
AUDIT_EPOCH_MS = 10**13
"""Past any time written (the year 2286), so every audit key's age is positive."""
SIGNING_KEYS = "keys/signing.json"
STORE_VERDICT = "checks/conditional-writes.json"

RevocationKind = Literal["jti", "session", "user"]
_KINDS: frozenset[str] = frozenset(("jti", "session", "user"))
_SAFE_SUBJECT = re.compile(r"[A-Za-z0-9_-]{1,128}")


def digest(value: str, *, domain: str) -> str:
    """A fixed-length name for an identifier, separated by domain (username, skeleton,
    email, a limiter's key). Any string has one: a limiter's key is whatever a host's key
    function returns, lone surrogates too (bytes read as `os.fsdecode` reads them), which
    plain UTF-8 cannot encode; for every other string the bytes are UTF-8's."""
    return hashlib.sha256(f"s3auth:{domain}:{value}".encode("utf-8", "surrogatepass")).hexdigest()


def user(user_id: str) -> str:
    return f"{USERS}{user_id}.json"


def username_index(normalised_username: str) -> str:
    return USERNAME_INDEX + digest(normalised_username, domain="username")


def skeleton_index(username_skeleton: str) -> str:
    """The index object that reserves a username's look (`identifiers.username_skeleton`)."""
    return SKELETON_INDEX + digest(username_skeleton, domain="skeleton")


def email_index(normalised_email: str) -> str:
    return EMAIL_INDEX + digest(normalised_email, domain="email")


def user_sessions(user_id: str) -> str:
    return f"{SESSIONS}{user_id}/"


def session(user_id: str, session_id: str) -> str:
    return f"{SESSIONS}{user_id}/{session_id}.json"


GENERATION_MARKER = "~generation."
DELETED_GENERATION = "deleted"
"""The generation of a deleted user's marker: no session has it."""


def generation_marker(user_id: str, generation: str) -> str:
    return f"{SESSIONS}{user_id}/{GENERATION_MARKER}{generation}"


def marker_generation(key: str) -> str | None:
    """The generation a `sessions/{user}/~generation.{generation}` key names; None for
    any other key (a session's, a closing marker's)."""
    name = key.rsplit("/", 1)[-1]
    return name.removeprefix(GENERATION_MARKER) if name.startswith(GENERATION_MARKER) else None


CLOSING_MARKER = "~closing."


def closing_marker(user_id: str) -> str:
    """A fresh key for a deletion's closing marker of the user (see the module)."""
    return f"{SESSIONS}{user_id}/{CLOSING_MARKER}{uuid.uuid4().hex}"


def is_closing_marker(key: str) -> bool:
    return key.rsplit("/", 1)[-1].startswith(CLOSING_MARKER)


def is_session_marker(key: str) -> bool:
    """Whether a key under `sessions/{user}/` is a marker (a generation's, a deletion's
    closing one), not a session."""
    return marker_generation(key) is not None or is_closing_marker(key)


def id_from_key(key: str) -> str:
    """The id in a user or session key (`users/{id}.json`, `sessions/{user}/{id}.json`)."""
    return key.rsplit("/", 1)[-1].removesuffix(".json")


def revocation_subject(subject: str) -> str:
    """Subjects go into keys verbatim when safe, hashed otherwise (both sides call this)."""
    if _SAFE_SUBJECT.fullmatch(subject):
        return subject
    return "h" + hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()[:40]


REVOCATION_SHARD_MS = 10_000


def _revocation_shard(written_ms: int) -> str:
    return f"{REVOCATIONS}{written_ms // REVOCATION_SHARD_MS:09d}/"


def revocation(written_ms: int, kind: RevocationKind, expires_s: int, subject: str) -> str:
    name = f"{written_ms:013d}.{kind}.{expires_s}.{revocation_subject(subject)}"
    return _revocation_shard(written_ms) + name


def revocation_offset(written_ms: int) -> str:
    """A listing offset: every revocation key written at or after `written_ms` sorts above
    (shards sort in time order, and so do the keys inside one)."""
    written_ms = max(written_ms, 1)
    return f"{_revocation_shard(written_ms)}{written_ms - 1:013d}.~"


def is_unsharded_revocation(key: str) -> bool:
    """Whether a revocation key is in 0.1's layout, `revocations/{name}` (see the module),
    which such a process still writes while it shares the store with this version."""
    return "/" not in key.removeprefix(REVOCATIONS)


class RevocationKey(NamedTuple):
    written_ms: int
    kind: RevocationKind
    expires_s: int
    subject: str


def parse_revocation(key: str) -> RevocationKey | None:
    """The fields of a revocation key, or None for a key that is not one of ours."""
    name = key.rsplit("/", 1)[-1]
    parts = name.split(".", 3)
    if len(parts) != 4 or parts[1] not in _KINDS:
        return None
    written, kind, expires, subject = parts
    if not (_digits(written) and _digits(expires)):
        return None
    return RevocationKey(int(written), kind, int(expires), subject)  # type: ignore[arg-type]


def account_token(purpose: str, token_id: str) -> str:
    return f"{ACCOUNT_TOKENS}{purpose}/{token_id}"


def user_audit(user_id: str) -> str:
    return f"{AUDIT}{user_id}/"


def audit_event(user_id: str, written_ms: int, suffix: str) -> str:
    """The key of an event written at `written_ms`; `suffix` (random) keeps two events of
    one millisecond apart."""
    return f"{user_audit(user_id)}{AUDIT_EPOCH_MS - written_ms:013d}.{suffix}"


def audit_written_ms(key: str) -> int | None:
    """When the event at an `audit/…` key was written; None for a key that is not one."""
    age = key.rsplit("/", 1)[-1].partition(".")[0]
    return AUDIT_EPOCH_MS - int(age) if _digits(age) else None


def _digits(text: str) -> bool:
    """Whether `text` is a number as this package writes one: `str.isdigit` alone takes
    superscripts, which `int` refuses, and other scripts' digits, which it reads."""
    return text.isascii() and text.isdigit()


def ratelimit(limit_name: str, key: str) -> str:
    return f"{RATELIMIT}{limit_name}/{digest(key, domain='ratelimit')}"


def ratelimit_budget(budget_name: str, key: str) -> str:
    """A failure budget's state. Its digests are of their own domain, so a budget and a
    limit of the same name never share an object (they store different shapes)."""
    return f"{RATELIMIT}{budget_name}/{digest(key, domain='ratelimit-budget')}"


def ratelimit_limit_name(key: str) -> str:
    """The limit (or failure budget) a `ratelimit/…` key belongs to."""
    return key.removeprefix(RATELIMIT).partition("/")[0]


_DIGEST = re.compile(r"[0-9a-f]{64}")


NAME_INDEXES = (USERNAME_INDEX, SKELETON_INDEX, EMAIL_INDEX)


def is_index_entry(key: str) -> bool:
    """Whether `key` is one a name's index entry may have, `index/{kind}/{digest}`: not,
    say, a note other software left under the prefix."""
    return any(
        key.startswith(prefix) and _DIGEST.fullmatch(key.removeprefix(prefix)) is not None
        for prefix in NAME_INDEXES
    )


def is_ratelimit_state(key: str) -> bool:
    """Whether `key` is one a limiter's state may have, `ratelimit/{limit}/{digest}`,
    whatever the limit: not, say, a note other software left under the prefix."""
    name, _, rest = key.removeprefix(RATELIMIT).partition("/")
    return key.startswith(RATELIMIT) and bool(name) and _DIGEST.fullmatch(rest) is not None


def probe() -> str:
    """A fresh key for one run of the store probes."""
    return f"{PROBES}{uuid.uuid4().hex}"

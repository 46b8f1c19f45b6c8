"""`s3auth user import [FILE]`: users of another system brought in with their password
hashes (`user_imports`), from JSON lines, one user a line (standard input for `-` or no
FILE). A line that fails (not JSON, a field missing or wrong, a name the rules refuse or
another account holds, a hash in no format the hasher verifies) is reported with its
number and the others go on; a store that fails stops the import there, and a FILE that
cannot be opened is a usage error. Imports are keyed
by name, so the same file run again imports what is missing and reports the rest taken.
Each user imported is kept in its audit trail as `admin_user_create` (`users.noted`).
A line's `profile` is validated against the application's profile fields, which
`--profile-fields` names (`declared_profile`); without them, a line that gives one fails."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO, ClassVar

import msgspec

from ..errors import S3AuthError, S3ValidationError, StoreUnavailableError
from ..hidden_fields import HidesSecrets
from ..service import S3AuthService
from .context import Context
from .declared_profile import FORM, OPTION, declared_profile
from .failures import OK, REFUSED, UNAVAILABLE, CommandError, unavailable_message
from .json_array import JsonArray
from .progress import Progress
from .table_text import printable
from .users import noted

LINE_MAX = 65536
"""Bytes a line may have: a user's fields take well under 2 KB, and a longer line is no
user, whose bytes are skipped unread into memory."""


class ImportLine(HidesSecrets, msgspec.Struct, forbid_unknown_fields=True):
    """One user, as a line of the input gives it (a misspelt field is refused, not lost)."""

    secret_fields: ClassVar[frozenset[str]] = frozenset(("password_hash",))
    """Shown as `<hidden>` (`hidden_fields`)."""

    username: str
    email: str
    password_hash: str
    full_name: str | None = None
    is_active: bool = True
    is_admin: bool | None = None
    scopes: list[str] | None = None
    email_verified: bool = False
    created_at: int | str | None = None
    """Unix seconds, or an ISO 8601 time with its offset (`2024-05-01T12:00:00+00:00`)."""
    profile: dict[str, Any] | None = None
    """The application's own fields (`profile_fields`), as `PublicUser` shows them."""


class LineResult(msgspec.Struct, kw_only=True):
    """What became of a line: `imported` with the user's id, or `failed` with the problem
    code and what was wrong."""

    line: int
    outcome: str
    username: str | None = None
    id: str | None = None
    code: str | None = None
    detail: str | None = None


def unix_seconds(value: int | str | None) -> int | None:
    """`created_at` as the record keeps it: Unix seconds (an ISO 8601 time converted)."""
    if not isinstance(value, str):
        return value
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise S3ValidationError(
            "created_at must be Unix seconds or an ISO 8601 time with its offset "
            "(2024-05-01T12:00:00Z, …+00:00)"
        )
    return int(parsed.timestamp())


def input_lines(stream: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """(number, bytes) of each line that is not blank; bytes None for one over LINE_MAX."""
    number = 0
    while True:
        line = stream.readline(LINE_MAX + 1)
        if not line:
            return
        number += 1
        if len(line) > LINE_MAX and not line.endswith(b"\n"):
            while (rest := stream.readline(LINE_MAX)) and not rest.endswith(b"\n"):
                pass
            yield number, None
        elif line.strip():
            yield number, line


async def import_line(service: S3AuthService, number: int, line: bytes | None) -> LineResult:
    """Import the user of one line; a failure of the line itself is its result, a failure
    of the store is raised."""
    username: str | None = None
    try:
        if line is None:
            raise S3ValidationError(f"the line is longer than {LINE_MAX} bytes")
        try:
            given = msgspec.json.decode(line, type=ImportLine)
        except msgspec.ValidationError as exc:
            return LineResult(line=number, outcome="failed", code="invalid_line", detail=str(exc))
        except msgspec.DecodeError as exc:
            return LineResult(line=number, outcome="failed", code="invalid_json", detail=str(exc))
        username = given.username
        if given.profile is not None and not service.profile_fields.declared:
            raise S3ValidationError(
                "profile: this application declares no profile fields; give them to the "
                f"import with {OPTION} {FORM}"
            )
        user = await service.import_user(
            given.username,
            given.email,
            given.password_hash,
            full_name=given.full_name,
            is_active=given.is_active,
            is_admin=given.is_admin,
            scopes=given.scopes,
            email_verified=given.email_verified,
            created_at=unix_seconds(given.created_at),
            profile=given.profile,
        )
    except S3AuthError as exc:
        if isinstance(exc, StoreUnavailableError) or exc.status >= 500:
            raise
        return LineResult(
            line=number, outcome="failed", username=username, code=exc.code, detail=exc.detail
        )
    return LineResult(line=number, outcome="imported", username=user.username, id=user.id)


def result_text(result: LineResult) -> str:
    if result.outcome == "imported":
        return printable(f"line {result.line}: imported {result.username} id={result.id}")
    who = f" {result.username}" if result.username is not None else ""
    return printable(f"line {result.line}:{who} failed ({result.code}): {result.detail}")


def run_user_import(ctx: Context) -> int:
    """Per line, a result line as it is done (or with `--json`, one JSON array of them
    once every line is done), then how many were imported and failed; exit 1 if any
    failed."""
    path: str = ctx.args.file
    as_json: bool = ctx.args.json
    service = ctx.service(profile_fields=declared_profile(ctx.args.profile_fields))
    results: list[LineResult] = []
    at = 0
    progress = Progress(
        ctx.err,
        "importing users",
        lambda: f"line {at}, {sum(r.outcome == 'imported' for r in results)} imported",
    )

    async def run(stream: BinaryIO) -> int:
        nonlocal at
        for number, line in input_lines(stream):
            at = number
            try:
                result = await import_line(service, number, line)
            except StoreUnavailableError as exc:
                raise CommandError(stopped(ctx, exc, number), UNAVAILABLE) from exc
            if result.id is not None:
                await noted(service, "admin_user_create", result.id, ctx.err)
            results.append(result)
            if not as_json:
                progress.clear()
                print(result_text(result), file=ctx.out)
        failed = sum(result.outcome == "failed" for result in results)
        if as_json:
            JsonArray(results).write(ctx.out)
        else:
            imported = len(results) - failed
            print(f"{len(results)} line(s): {imported} imported, {failed} failed", file=ctx.out)
        return REFUSED if failed else OK

    if path == "-":
        return ctx.run(lambda: progress.show(lambda: run(sys.stdin.buffer)))
    with opened(path) as stream:
        return ctx.run(lambda: progress.show(lambda: run(stream)))


def opened(path: str) -> BinaryIO:
    """The input file, open; one that cannot be (missing, unreadable, a directory) is the
    operator's mistake, not the store's, and trying again finds it the same: a usage error
    naming it."""
    try:
        return open(path, "rb")
    except OSError as exc:
        raise CommandError(f"cannot read the input file {path}: {exc.strerror or exc}") from exc


def stopped(ctx: Context, exc: StoreUnavailableError, number: int) -> str:
    """The failure line of an import the store stopped at line `number`."""
    return (
        f"{unavailable_message(exc, ctx.store_url)}; the import stopped at line {number}, "
        "which may or may not have been imported: run the same import again, which imports "
        "the users still missing and reports those already there as taken"
    )

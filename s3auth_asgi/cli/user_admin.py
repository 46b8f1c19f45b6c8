"""`s3auth user delete | set-password | reset-password | scopes | promote | demote | sessions
| revoke`: the administrator's account tools. Each action is kept in the user's audit trail
(`users.noted`)."""

from __future__ import annotations

import msgspec

from ..admin_resets import NoMailerError
from ..errors import (
    ConflictError,
    SessionNotFoundError,
    StoreUnavailableError,
    UserNotFoundError,
)
from ..identifiers import is_id
from ..models import User
from ..open_records import own_record
from ..privileges import granted_scopes
from ..service import S3AuthService
from ..storage import CorruptObjectError, keys
from ..user_records import UPDATE_ATTEMPTS
from .context import Context
from .failures import CONFIGURATION, OK, UNAVAILABLE, CommandError, unavailable_message
from .json_array import JsonArray
from .table_text import iso, printable
from .users import check_password_source, find_user, noted, read_new_password


async def left_behind(service: S3AuthService, identifier: str, given_as: str | None) -> str | None:
    """What is kept under `identifier`, if an id, that no reader shows (None when nothing
    is): a record a deletion closed and did not delete (`user_directory`), or one that
    cannot be read. Deleting it by its id finishes the deletion (1 GET more). Another
    user's record copied there is nobody's (`open_records`): no deletion to finish."""
    if given_as == "username" or not is_id(identifier):
        return None
    try:
        stored = await service.store.get(keys.user(identifier), User)
    except CorruptObjectError:
        return "its record could not be read"
    found = own_record(stored, identifier)
    if found is not None and found.value.deleting:
        return "finishing a deletion cut short"
    return None


async def deleting(ctx: Context, service: S3AuthService, user_id: str) -> bool:
    """`delete_user`, whose failure names the id that finishes it: the deletion closes the
    record first, after which no name finds the account (`user_directory`), so the same
    command run again by a name would say there is no such user."""
    try:
        return await service.delete_user(user_id)
    except StoreUnavailableError as exc:
        advice = (
            "its deletion may have begun, after which no name finds the account: "
            f"`s3auth user delete {user_id}` finishes it"
        )
        message = f"{unavailable_message(exc, ctx.store_url)}; {advice}"
        raise CommandError(message, UNAVAILABLE) from exc


def run_user_delete(ctx: Context) -> int:
    service = ctx.service()

    async def delete_left(identifier: str, left: str) -> int:
        if not await deleting(ctx, service, identifier):
            raise UserNotFoundError(f"no user {identifier!r}: another process deleted it first")
        await noted(service, "admin_user_delete", identifier, ctx.err)
        print(f"deleted user {identifier} ({left}; its sessions have ended)", file=ctx.out)
        return OK

    async def delete() -> int:
        try:
            user = await find_user(service, ctx.args.user, ctx.args.given_as)
        except UserNotFoundError:
            left = await left_behind(service, ctx.args.user, ctx.args.given_as)
            if left is None:
                raise
            return await delete_left(ctx.args.user, left)
        if not ctx.args.yes and ctx.args.user != user.id:
            raise CommandError(
                f"deleting {user.username} <{user.email}>: pass --yes, or give its id {user.id}"
            )
        if not await deleting(ctx, service, user.id):
            # Another process deleted it since it was found: this command deleted nothing,
            # and its trail must not say it did.
            raise UserNotFoundError(f"no user {ctx.args.user!r}: another process deleted it first")
        await noted(service, "admin_user_delete", user.id, ctx.err)
        print(printable(f"deleted {user.username} (its sessions have ended)"), file=ctx.out)
        return OK

    return ctx.run(delete)


def run_user_set_password(ctx: Context) -> int:
    check_password_source(ctx)
    service = ctx.service()
    password = read_new_password(ctx, service.password_policy.max_length)

    async def set_password() -> int:
        user = await find_user(service, ctx.args.user, ctx.args.given_as)
        await service.set_password(user.id, password)
        await noted(service, "admin_password_set", user.id, ctx.err)
        # The account's address is told in the background, which this command's event loop
        # would cancel as it ends: given its time, as at a server's shutdown.
        await service.mail.close()
        print(printable(f"password of {user.username} set (its sessions have ended)"), file=ctx.out)
        # The mail log is shown only with --debug: the operator is the one to tell the owner.
        for kind, reason in service.mail.failures:
            if kind == "password_changed_notice":
                warning = (
                    f"s3auth: warning: the notice of the new password was not sent to "
                    f"{user.email} ({reason}): tell the account's owner yourself"
                )
                print(printable(warning), file=ctx.err)
        return OK

    return ctx.run(set_password)


NO_MAILER = (
    "no mailer is configured (S3AUTH_SMTP_HOST or S3AUTH_MAIL_OUTBOX): no reset link can be sent"
)


def run_user_reset_password(ctx: Context) -> int:
    """Mail the owner the reset link (`send_password_reset`), as the admin endpoint does: the
    owner chooses the password. No budget counts it: the operator holds the store."""
    service = ctx.service()
    if not service.mail.enabled:  # before the store is asked anything
        raise CommandError(NO_MAILER, CONFIGURATION)

    async def reset() -> int:
        user = await find_user(service, ctx.args.user, ctx.args.given_as)
        try:
            ended = await service.send_password_reset(user.id, end_sessions=ctx.args.end_sessions)
        except NoMailerError:
            raise CommandError(NO_MAILER, CONFIGURATION) from None
        await noted(service, "admin_password_reset", user.id, ctx.err)
        # Sent in the background, which this command's event loop would cancel as it ends.
        await service.mail.close()
        failed = [reason for kind, reason in service.mail.failures if kind == "password_reset"]
        if failed:
            raise CommandError(
                f"the reset link was not sent to {user.email} ({failed[-1]}): check the mail "
                "settings and the mail server, or try again later",
                UNAVAILABLE,
            )
        if ctx.args.json:
            shown = {"id": user.id, "username": user.username, "email": user.email}
            print(msgspec.json.encode({**shown, "sessions_ended": ended}).decode(), file=ctx.out)
            return OK
        ending = f"; {ended} session(s) ended" if ctx.args.end_sessions else ""
        print(
            printable(f"reset link mailed to {user.username} <{user.email}>{ending}"), file=ctx.out
        )
        return OK

    return ctx.run(reset)


def run_user_scopes(ctx: Context) -> int:
    """Without options, print the scopes; `--add`/`--remove` change them (`admin` among them
    is `is_admin`: the one rule of `privileges`)."""
    service = ctx.service()
    added: list[str] = ctx.args.add or []
    removed: list[str] = ctx.args.remove or []

    async def scopes() -> int:
        user = await find_user(service, ctx.args.user, ctx.args.given_as)
        if added or removed:
            for attempt in range(UPDATE_ATTEMPTS):
                # Computed from the scopes read, and written only while they are still
                # the record's: another administrator's change in between is read again.
                current = set(granted_scopes(user.is_admin, user.scopes))
                wanted = sorted((current | set(added)) - set(removed))
                read = {"is_admin": user.is_admin, "scopes": user.scopes}
                try:
                    user = await service.update_user(
                        user.id, scopes=wanted, is_admin="admin" in wanted, expect=read
                    )
                    break
                except ConflictError:
                    if attempt == UPDATE_ATTEMPTS - 1:
                        raise
                    user = await find_user(service, user.id, "id")
            await noted(service, "admin_user_update", user.id, ctx.err)
        granted = " ".join(granted_scopes(user.is_admin, user.scopes))
        print(printable(granted) or "(none)", file=ctx.out)
        return OK

    return ctx.run(scopes)


def run_user_promote(ctx: Context) -> int:
    service = ctx.service()
    admin: bool = ctx.args.admin

    async def promote() -> int:
        user = await find_user(service, ctx.args.user, ctx.args.given_as)
        updated = await service.update_user(user.id, is_admin=admin)
        # Kept even when it was so already, as `disable` keeps its change (`users`).
        await noted(service, "admin_user_update", user.id, ctx.err)
        role = "an administrator" if admin else "not an administrator"
        print(printable(f"{updated.username} is {role} (its sessions have ended)"), file=ctx.out)
        return OK

    return ctx.run(promote)


def run_user_sessions(ctx: Context) -> int:
    service = ctx.service()

    async def sessions() -> int:
        user = await find_user(service, ctx.args.user, ctx.args.given_as)
        found = await service.get_user_active_sessions(user.id)
        if ctx.args.json:
            JsonArray(found).write(ctx.out)
            return OK
        print(f"{'SESSION':32}  {'LAST USED':20}  {'ADDRESS':15}  DEVICE", file=ctx.out)
        for session in found:
            print(
                f"{session.id:32}  {iso(session.last_used_at):20}  "
                f"{printable(session.ip_address or '-'):15}  "
                f"{printable(session.device_info or '-')}",
                file=ctx.out,
            )
        print(f"{len(found)} session(s)", file=ctx.out)
        return OK

    return ctx.run(sessions)


def run_user_revoke(ctx: Context) -> int:
    service = ctx.service()
    session_id: str | None = ctx.args.session

    async def revoke() -> int:
        user = await find_user(service, ctx.args.user, ctx.args.given_as)
        if session_id is not None:
            if not await service.revoke_session(user.id, session_id):
                raise SessionNotFoundError(f"{user.username} has no session {session_id}")
            await noted(service, "admin_session_end", user.id, ctx.err, session_id=session_id)
            print(printable(f"ended session {session_id} of {user.username}"), file=ctx.out)
            return OK
        ended = await service.revoke_all_user_tokens(user.id)
        await noted(service, "admin_user_revoke", user.id, ctx.err)
        print(printable(f"ended {ended} session(s) of {user.username}"), file=ctx.out)
        return OK

    return ctx.run(revoke)

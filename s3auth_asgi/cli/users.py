"""`s3auth user create | list | disable | enable` and the parser of every `user` action
(the administrator's tools are in `user_admin`, the import in `user_import`). Each change
of an account is kept in its audit trail (`audit`), as the admin endpoints' are, with `cli`
as the client."""

from __future__ import annotations

import argparse
import getpass
import sys
from contextlib import aclosing
from typing import Any, TextIO

from ..errors import S3AuthError, UserNotFoundError
from ..events import EventName, new_event
from ..models import User
from ..privileges import is_administrator
from ..service import S3AuthService
from ..shown_urls import shown_url
from ..storage import StoreConflict
from .context import Context
from .failures import OK, CommandError
from .json_array import JsonArray
from .progress import Progress, is_terminal
from .stdin import read_stdin
from .table_text import printable

TABLE_HEADER = f"{'ID':32}  {'USERNAME':20}  {'EMAIL':30}  STATUS"
PASSWORD_LINE_MARGIN = 16
"""Characters a `--password-stdin` line may have beyond the policy's longest password (its
end of line, stray spaces) before it is refused unread: the policy then names what is wrong."""
NO_TERMINAL = "no terminal to ask for the password: pass --password-stdin"


TRAIL_LOST = "the change was made, but the account's audit trail could not be written"


async def noted(
    service: S3AuthService,
    name: EventName,
    user_id: str,
    err: TextIO,
    *,
    session_id: str | None = None,
) -> None:
    """Keep the command's change of `user_id` in the account's trail (with the session it
    ended, as the endpoint names it). The change has landed by then: a trail the store
    fails to take is a warning on `err`, as the auth app logs it, not the command's
    failure, which would have the operator run it again, to find the change made (or the
    account gone) and keep no event either."""
    event = new_event(
        name, "success", user_id=user_id, session_id=session_id, client="cli", clock=service.clock
    )
    try:
        await service.audit.record(event)
    except (S3AuthError, StoreConflict) as error:
        reason = error.code if isinstance(error, S3AuthError) else "conflict"
        lost = f"it does not show this {name} of user {user_id}"
        print(printable(f"s3auth: warning: {TRAIL_LOST} ({reason}): {lost}"), file=err)


def check_password_source(ctx: Context) -> None:
    """Before anything is opened: a password can be asked for on a terminal only."""
    if not ctx.args.password_stdin and not is_terminal(sys.stdin):
        raise CommandError(NO_TERMINAL)


def read_new_password(ctx: Context, max_length: int) -> str:
    """The password, asked for twice on a terminal or, with `--password-stdin`, the first
    line of standard input: read from at most 4 bytes (UTF-8's longest character) per
    character of a line `max_length` allows, so that endless input (`< /dev/zero`) is
    refused rather than held in memory; a line of more characters than it allows is refused
    alike, however few bytes it takes."""
    if ctx.args.password_stdin:
        longest = max_length + PASSWORD_LINE_MARGIN
        line, more = read_stdin(4 * longest, line=True)
        if not line:
            raise CommandError("--password-stdin: standard input is empty")
        password = line.rstrip("\r\n")
        # Judged by its characters too: an ASCII line fits the bytes read four times over.
        if more or len(password) > longest:
            raise CommandError(
                f"--password-stdin: the password line is longer than {longest} characters"
            )
        return password
    try:
        password = getpass.getpass("Password: ")
        repeated = getpass.getpass("Repeat the password: ")
    except EOFError:  # Ctrl-D at the prompt
        raise CommandError("no password given") from None
    if repeated != password:
        raise CommandError("the passwords do not match; run the command again")
    return password


def run_user_create(ctx: Context) -> int:
    check_password_source(ctx)
    service = ctx.service()
    password = read_new_password(ctx, service.password_policy.max_length)

    async def create() -> int:
        user = await service.create_user(
            ctx.args.username,
            ctx.args.email,
            password,
            ctx.args.full_name,
            is_admin=ctx.args.admin,
            email_verified=ctx.args.verified,
        )
        await noted(service, "admin_user_create", user.id, ctx.err)
        role = "administrator" if user.is_admin else "user"
        where = shown_url(ctx.store_url or "")  # which store, with --demo and without
        made = f"created {role} {user.username} <{user.email}> id={user.id} in {where}"
        print(printable(made), file=ctx.out)
        return OK

    return ctx.run(create)


def run_user_list(ctx: Context) -> int:
    """A table, written as the store answers; or with `--json` one JSON array of PublicUser
    objects, written once every user is read (`JsonArray`: all or nothing). One listing of
    the store's users read to its end (`every_user`). `--search` keeps the users whose id,
    username, email or full name contain it."""
    service = ctx.service()
    as_json: bool = ctx.args.json
    count = 0
    progress = Progress(ctx.err, "listing users", lambda: f"{count} so far")

    async def listing() -> int:
        nonlocal count
        listed = JsonArray()
        async with aclosing(service.every_user(search=ctx.args.search)) as users:
            async for user in users:
                if as_json:
                    listed.extend([service.public_user(user)])
                else:
                    progress.clear()
                    if not count:
                        print(TABLE_HEADER, file=ctx.out)
                    print(user_line(user), file=ctx.out)
                count += 1
        if as_json:
            listed.write(ctx.out)
            return OK
        if not count:  # the header once the store has answered: a failure leaves stdout empty
            print(TABLE_HEADER, file=ctx.out)
        print(f"{count} user(s)", file=ctx.out)
        return OK

    return ctx.run(lambda: progress.show(listing))


def user_line(user: User) -> str:
    admin = is_administrator(user.is_admin, user.scopes)  # a record from before the flag too
    status = ("active" if user.is_active else "disabled") + (", admin" if admin else "")
    return (
        f"{printable(user.id):32}  {printable(user.username):20}  {printable(user.email):30}  "
        f"{status}"
    )


async def find_user(service: S3AuthService, identifier: str, given_as: str | None = None) -> User:
    """The user `identifier` names: its id, username or email, or only the one `given_as`
    says (`id`, `username`). An id that is also another account's username (one made before
    such names were refused) is refused: which of the two is meant is the operator's call."""
    if given_as == "id":
        user = await service.get_user_by_id(identifier)
    elif given_as == "username":
        user = await service.get_user_by_username(identifier)
    else:
        by_id = await service.get_user_by_id(identifier)
        # One of these two asks the store: an email has an @, a username none.
        by_name = await service.get_user_by_email(identifier)
        by_name = by_name or await service.get_user_by_username(identifier)
        if by_id is not None and by_name is not None and by_id.id != by_name.id:
            raise CommandError(
                f"{identifier} is the id of {by_id.username} <{by_id.email}> and the username "
                f"of another account <{by_name.email}> (id {by_name.id}): pass --id or "
                "--username to say which"
            )
        user = by_id or by_name
    if user is None:
        raise UserNotFoundError(f"no user {identifier!r} (give an id, a username or an email)")
    return user


def run_user_toggle(ctx: Context) -> int:
    service = ctx.service()
    active: bool = ctx.args.active

    async def toggle() -> int:
        user = await find_user(service, ctx.args.user, ctx.args.given_as)
        updated = await service.update_user(user.id, is_active=active)
        # Kept even when the record was so already: an earlier run whose change landed and
        # whose answer the store lost, told to run again, is told apart from nothing here.
        await noted(service, "admin_user_update", user.id, ctx.err)
        state = "enabled" if updated.is_active else "disabled (its sessions have ended)"
        print(printable(f"{updated.username} {state}"), file=ctx.out)
        return OK

    return ctx.run(toggle)


def add_user_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    store: argparse.ArgumentParser,
) -> None:
    """`s3auth user ACTION`; `store`: the parent parser of commands that open the store."""
    from . import user_admin, user_factor, user_import

    user = commands.add_parser("user", help="manage users")
    actions = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")

    def action(name: str, run: Any, help_: str, **defaults: Any) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, parents=[store], help=help_)
        parser.set_defaults(run=run, **defaults)
        return parser

    def who(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("user", help="user id, username or email")
        given_as = parser.add_mutually_exclusive_group()
        for kind in ("id", "username"):
            given_as.add_argument(
                f"--{kind}",
                dest="given_as",
                action="store_const",
                const=kind,
                help=f"USER is {'an id' if kind == 'id' else 'a username'}, nothing else",
            )

    def password_stdin(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of standard input (for scripts)",
        )

    create = action("create", run_user_create, "create a user (password read without echo)")
    create.add_argument("username")
    create.add_argument("--email", required=True)
    create.add_argument("--full-name", default=None)
    create.add_argument(
        "--admin", action="store_true", help="an administrator: its tokens grant `admin`"
    )
    create.add_argument("--verified", action="store_true", help="the email address is verified")
    password_stdin(create)
    imports = action(
        "import",
        user_import.run_user_import,
        "import users with their password hashes from JSON lines (argon2id or bcrypt)",
    )
    imports.add_argument(
        "file", nargs="?", default="-", metavar="FILE", help="JSON lines (default: stdin)"
    )
    imports.add_argument("--json", action="store_true", help="one JSON array of the results")
    imports.add_argument(
        "--profile-fields",
        metavar="MODULE:NAME",
        default=None,
        help="the app's profile fields (a Struct, a JSON Schema dict or its S3AuthService)",
    )
    listing = action("list", run_user_list, "list every user")
    listing.add_argument("--json", action="store_true", help="one JSON array of users")
    listing.add_argument("--search", default=None, help="only users whose names contain this")
    for name, active in (("disable", False), ("enable", True)):
        state = "ends its sessions" if not active else "again"
        who(action(name, run_user_toggle, f"{name} an account ({state})", active=active))
    delete = action("delete", user_admin.run_user_delete, "delete a user and its sessions")
    who(delete)
    delete.add_argument("--yes", action="store_true", help="no need to give the id to confirm")
    set_password = action(
        "set-password", user_admin.run_user_set_password, "set a password (ends its sessions)"
    )
    who(set_password)
    password_stdin(set_password)
    reset_password = action(
        "reset-password",
        user_admin.run_user_reset_password,
        "mail the owner a password-reset link: the owner chooses the password",
    )
    who(reset_password)
    reset_password.add_argument(
        "--end-sessions", action="store_true", help="end every session of the account too"
    )
    reset_password.add_argument("--json", action="store_true", help="one JSON object")
    who(action("totp-off", user_factor.run_user_totp_off, "turn a second factor off (lost device)"))
    scopes = action("scopes", user_admin.run_user_scopes, "show or change a user's scopes")
    who(scopes)
    scopes.add_argument("--add", nargs="+", metavar="SCOPE", help="grant these scopes")
    scopes.add_argument("--remove", nargs="+", metavar="SCOPE", help="take these away")
    for name, admin, summary in (
        ("promote", True, "make the user an administrator (grants the admin scope)"),
        ("demote", False, "make an administrator an ordinary user (takes the admin scope)"),
    ):
        who(action(name, user_admin.run_user_promote, summary, admin=admin))
    sessions = action("sessions", user_admin.run_user_sessions, "list a user's sessions")
    who(sessions)
    sessions.add_argument("--json", action="store_true", help="a JSON array")
    revoke = action("revoke", user_admin.run_user_revoke, "end a user's sessions")
    who(revoke)
    revoke.add_argument("--session", default=None, help="end only this session")

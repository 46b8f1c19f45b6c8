"""`s3auth user create | list | disable | enable`."""

from __future__ import annotations

import getpass
import sys

import msgspec

from ..errors import UserNotFoundError
from ..models import User
from ..service import S3AuthService
from .context import Context, run_async
from .failures import OK, CommandError
from .progress import Progress, is_terminal

USER_PAGE = 200
NO_TERMINAL = "no terminal to ask for the password: pass --password-stdin"


def check_password_source(ctx: Context) -> None:
    """Before anything is opened: a password can be asked for on a terminal only."""
    if not ctx.args.password_stdin and not is_terminal(sys.stdin):
        raise CommandError(NO_TERMINAL)


def read_new_password(ctx: Context) -> str:
    if ctx.args.password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise CommandError("--password-stdin: standard input is empty")
        return line.rstrip("\r\n")
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
    password = read_new_password(ctx)

    async def create() -> int:
        user = await service.create_user(
            ctx.args.username,
            ctx.args.email,
            password,
            ctx.args.full_name,
            is_admin=ctx.args.admin,
        )
        role = "administrator" if user.is_admin else "user"
        print(f"created {role} {user.username} <{user.email}> id={user.id}", file=ctx.out)
        return OK

    return run_async(create)


def run_user_list(ctx: Context) -> int:
    """A table, or with `--json` one JSON array of PublicUser objects (one per line, so
    that a long listing is written as it is read)."""
    service = ctx.service()
    as_json: bool = ctx.args.json
    count = 0
    progress = Progress(ctx.err, "listing users", lambda: f"{count} so far")

    async def listing() -> int:
        nonlocal count
        users, after = await service.list_users(limit=USER_PAGE)
        progress.clear()
        # The header once the store has answered: a failure leaves stdout empty.
        print("[" if as_json else f"{'ID':32}  {'USERNAME':20}  {'EMAIL':30}  STATUS", file=ctx.out)
        while True:
            for user in users:
                if as_json:
                    encoded = msgspec.json.encode(user.public()).decode()
                    print(("," if count else "") + encoded, file=ctx.out)
                else:
                    print(user_line(user), file=ctx.out)
                count += 1
            if after is None:
                break
            users, after = await service.list_users(after=after, limit=USER_PAGE)
            progress.clear()
        print("]" if as_json else f"{count} user(s)", file=ctx.out)
        return OK

    return run_async(lambda: progress.show(listing))


def user_line(user: User) -> str:
    status = ("active" if user.is_active else "disabled") + (", admin" if user.is_admin else "")
    return f"{user.id:32}  {user.username:20}  {user.email:30}  {status}"


async def find_user(service: S3AuthService, identifier: str) -> User:
    user = (
        await service.get_user_by_id(identifier)
        or await service.get_user_by_email(identifier)
        or await service.get_user_by_username(identifier)
    )
    if user is None:
        raise UserNotFoundError(f"no user {identifier!r} (give an id, a username or an email)")
    return user


def run_user_toggle(ctx: Context) -> int:
    service = ctx.service()
    active: bool = ctx.args.active

    async def toggle() -> int:
        user = await find_user(service, ctx.args.user)
        updated = await service.update_user(user.id, is_active=active)
        state = "enabled" if updated.is_active else "disabled (its sessions have ended)"
        print(f"{updated.username} {state}", file=ctx.out)
        return OK

    return run_async(toggle)

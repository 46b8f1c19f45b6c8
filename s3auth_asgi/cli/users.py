"""`s3auth user create | list | disable | enable`."""

from __future__ import annotations

import getpass
import sys

import msgspec

from ..models import User
from ..service import S3AuthService
from .context import OK, CommandError, Context, run_async

USER_PAGE = 200


def read_new_password(ctx: Context) -> str:
    if ctx.args.password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise CommandError("--password-stdin: standard input is empty")
        return line.rstrip("\r\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Repeat the password: ") != password:
        raise CommandError("the passwords do not match")
    return password


def run_user_create(ctx: Context) -> int:
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
    service = ctx.service()

    async def listing() -> int:
        after: str | None = None
        count = 0
        if not ctx.args.json:
            print(f"{'ID':32}  {'USERNAME':20}  {'EMAIL':30}  STATUS", file=ctx.out)
        while True:
            users, after = await service.list_users(after=after, limit=USER_PAGE)
            for user in users:
                count += 1
                if ctx.args.json:
                    print(msgspec.json.encode(user.public()).decode(), file=ctx.out)
                else:
                    print(user_line(user), file=ctx.out)
            if after is None:
                break
        if not ctx.args.json:
            print(f"{count} user(s)", file=ctx.out)
        return OK

    return run_async(listing)


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
        raise CommandError(f"no user {identifier!r} (give an id, a username or an email)")
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

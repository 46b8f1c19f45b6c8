"""`s3auth sessions end-all`: end every session of every user at once
(`S3AuthService.end_all_sessions`), for an incident, without a new secret key. Asked for
on a terminal unless `--yes`; refused without `--yes` where there is none to ask on."""

from __future__ import annotations

import argparse
import sys

from ..events import emit, new_event
from .context import Context
from .failures import OK, CommandError
from .progress import is_terminal
from .table_text import iso

CONFIRMATION = "end"
NOT_CONFIRMED = "every session of every user would end: pass --yes to do it"


def add_sessions_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    store: argparse.ArgumentParser,
) -> None:
    """`s3auth sessions ACTION`; `store`: the parent parser of commands that open the store."""
    sessions = commands.add_parser("sessions", help="end every user's sessions")
    actions = sessions.add_subparsers(dest="sessions_command", required=True, metavar="ACTION")
    end_all = actions.add_parser(
        "end-all",
        parents=[store],
        help="end every session of every user now; logging in again works at once",
    )
    end_all.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    end_all.set_defaults(run=run_sessions_end_all)


def confirmed(ctx: Context) -> bool:
    if ctx.args.yes:
        return True
    if not is_terminal(sys.stdin):
        raise CommandError(NOT_CONFIRMED)
    print(
        f"End every session of every user? Type {CONFIRMATION!r} to go on: ", end="", file=ctx.err
    )
    ctx.err.flush()
    return sys.stdin.readline().strip() == CONFIRMATION


def run_sessions_end_all(ctx: Context) -> int:
    if not confirmed(ctx):
        raise CommandError("not confirmed: nothing was ended")
    service = ctx.service()

    async def end_all() -> int:
        not_before = await service.end_all_sessions()
        emit(new_event("admin_sessions_end_all", "success", client="cli", clock=service.clock))
        print(
            f"ended every session opened before {iso(not_before)}; other processes refuse "
            f"their tokens within {2 * service.settings.revocation_sync_seconds:g} s",
            file=ctx.out,
        )
        return OK

    return ctx.run(end_all)

"""`s3auth user totp-off`: an administrator turns a user's second factor off, for a lost
device. The account's address is told, as the admin endpoint tells it; a notice that could
not be sent is said on stderr, for the operator to tell the owner."""

from __future__ import annotations

from ..totp_errors import TotpNotEnabledError
from .context import Context
from .failures import OK, REFUSED, CommandError
from .table_text import printable
from .users import find_user, noted


def run_user_totp_off(ctx: Context) -> int:
    service = ctx.service()

    async def turn_off() -> int:
        user = await find_user(service, ctx.args.user, ctx.args.given_as)
        try:
            await service.disable_totp(user.id, checked=False)
        except TotpNotEnabledError:
            message = printable(f"{user.username} has no second factor on")
            raise CommandError(message, REFUSED) from None
        await noted(service, "admin_totp_disable", user.id, ctx.err)
        await service.mail.close()  # the notice, given its time as at a server's shutdown
        print(printable(f"second factor of {user.username} turned off"), file=ctx.out)
        for kind, reason in service.mail.failures:
            if kind == "totp_disabled_notice":
                warning = (
                    f"s3auth: warning: the notice was not sent to {user.email} ({reason}): "
                    "tell the account's owner yourself"
                )
                print(printable(warning), file=ctx.err)
        return OK

    return ctx.run(turn_off)

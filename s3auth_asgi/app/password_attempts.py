"""Password attempts of callers who hold a token: a current password (or a second factor's
code) checked for a change of the account, or a re-authentication, charged to the
account's login budgets as a wrong password at login is; and what a spent budget tells
the owner. A half of `AuthRoutes`, which sets the attributes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..errors import InvalidCredentialsError, UserNotFoundError
from ..models import User
from ..name_index import NameLookup, owner_account
from ..service import S3AuthService
from ..totp_errors import WrongTotpCodeError
from .attempts import Attempt
from .caller import account_gone, usable_account
from .errors import WrongCurrentPasswordError
from .limits import AuthRateLimits
from .login_notices import LoginNotices
from .operations import Call

T = TypeVar("T")


class PasswordAttempts:
    """The attempts of `AuthRoutes`."""

    service: S3AuthService
    limits: AuthRateLimits
    notices: LoginNotices

    def spent(
        self,
        call: Call,
        attempt: Attempt,
        *,
        login: NameLookup | None = None,
        user: User | None = None,
    ) -> None:
        """After a password attempt: one whose failure spent the account's budget is told
        to the owner (`login_notices`) and kept in the trail (`events.spent_of`)."""
        if attempt.spent_account:
            call.noted["spent"] = "yes"
        self.notices.spent(call.request.scope, attempt, login=login, user=user)

    async def password_attempt(self, call: Call, check: Callable[[User], Awaitable[T]]) -> T:
        """Run `check` of the caller's password (it raises InvalidCredentialsError when the
        password is wrong) as a password attempt: guessing a password with a stolen access
        token is guessing a password, and counts against the account's login budgets, which
        the answer shows (`Call.shown`). The record read for it is the caller's: an account
        that may not act is refused here."""
        attempts = self.limits.attempts
        user = usable_account(await self.service.get_user_by_id(call.caller.user_id))
        attempt = await attempts.begin(call.request.scope, owner_account(user.id), None)
        try:
            result = await check(user)
        except WrongTotpCodeError:
            charged = await attempts.failed(attempt)
            raise WrongTotpCodeError(headers=self.limits.headers(charged)) from None
        except InvalidCredentialsError:
            charged = await attempts.failed(attempt)
            raise WrongCurrentPasswordError(headers=self.limits.headers(charged)) from None
        except UserNotFoundError:
            raise account_gone() from None
        finally:
            attempts.end(attempt)
            self.spent(call, attempt, user=user)
        call.shown.extend(attempts.shown(attempt.readings))
        return result

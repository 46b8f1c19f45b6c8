"""The operations of the second factor: rows of the auth app's table (`table`), handled by
`totp_routes`."""

from __future__ import annotations

from ..errors import ConflictError
from ..models import PublicUser
from ..totp_errors import TotpEnabledError, TotpNotEnabledError, TotpNotPendingError
from ..totp_factor import TotpEnrolment
from . import problem_codes as codes
from . import totp_schemas as schemas
from .devices import DEVICE_HEADER
from .limits import password_attempt
from .operations import LOST_TO_A_CONCURRENT_CHANGE, Operation
from .schemas import TokenResponse
from .totp_routes import TotpRoutes

CHARGED = (
    "A wrong current password (403 `wrong_password`) or code (403 `wrong_totp_code`) counts "
    "against the account's and the address's login limits, as a wrong password at "
    "`/login` does."
)
TOLD = "With a mailer, the account's address is told (no link)."


def totp_operations(routes: TotpRoutes, device_header: str) -> list[Operation]:
    return [
        Operation(
            method="POST",
            path="/login/totp",
            handler=routes.login,
            operation_id="login_totp",
            event="login_totp",
            summary="Log in: the second step, with a code of the authenticator app",
            tag="tokens",
            request=schemas.TotpLoginRequest,
            form=True,
            headers=((DEVICE_HEADER, device_header),),
            response=TokenResponse,
            token_response=True,
            token_endpoint=True,
            handler_limits=password_attempt(403, devices=True),
            raises=codes.TOTP_LOGIN,
            forbidden="A wrong code, or one used already, code `wrong_totp_code`; an "
            "address no longer verified where a verified one is required, code "
            "`email_not_verified`; or an account given more scopes than an access token "
            "can carry, code `token_too_large`",
            description="After `/login` answered 403 `mfa_required` with an `mfa_token`: "
            "that token and the 6-digit code the account's authenticator app shows, from "
            "the same client (the same User-Agent and, if the login showed one, device "
            "cookie), within 5 minutes. A code works once, on every instance: the same "
            "code again, or any of an earlier 30-second step, is 403 `wrong_totp_code`, "
            "charged against the same limits as a wrong password (per account and per "
            "address, or per device). A token that has expired, was made for another "
            "client, or no longer holds (the password changed, the sessions ended, the "
            "factor changed, a code accepted since) is 401 `invalid_mfa_token`: log in "
            "again.",
        ),
        Operation(
            method="POST",
            path="/me/totp",
            handler=routes.start,
            operation_id="start_totp",
            event="totp_start",
            summary="Start turning on a second factor (an authenticator app)",
            tag="account",
            access="bearer",
            reads_account=False,  # the attempt reads the record, and judges it the same
            request=schemas.TotpStartRequest,
            response=TotpEnrolment,
            token_response=True,  # the seed: no-store
            handler_limits=password_attempt(403, devices=False),
            raises=codes.TOTP_START,
            conflicts=(TotpEnabledError, ConflictError),
            description="Needs the current password. Answers a new random seed (160 "
            "bits), in base32 and as an `otpauth://` URI for a QR code, once: the record "
            "keeps it encrypted. Nothing changes at login until `POST /me/totp/confirm` "
            "gives a code of it within `expires_in` seconds. 409 `totp_enabled` when the "
            "factor is on already (turn it off first). " + CHARGED,
        ),
        Operation(
            method="POST",
            path="/me/totp/confirm",
            handler=routes.confirm,
            operation_id="confirm_totp",
            event="totp_confirm",
            summary="Turn the second factor on with a first code",
            tag="account",
            access="bearer",
            reads_account=False,
            request=schemas.TotpConfirmRequest,
            response=PublicUser,
            handler_limits=password_attempt(403, devices=False),
            raises=codes.TOTP_CONFIRM,
            conflicts=(TotpEnabledError, TotpNotPendingError, ConflictError),
            description="From then on a login needs a code besides the password "
            "(`totp_enabled: true`). 409 `totp_not_pending` when no seed waits (none "
            "started, or its time ran out). " + CHARGED + " " + TOLD,
        ),
        Operation(
            method="POST",
            path="/me/totp/recovery-codes",
            handler=routes.recovery_codes,
            operation_id="new_totp_recovery_codes",
            event="totp_recovery_codes",
            summary="New recovery codes for the second factor",
            tag="account",
            access="bearer",
            reads_account=False,
            request=schemas.TotpStartRequest,
            response=schemas.RecoveryCodes,
            token_response=True,  # the codes: no-store
            # Ten password hashes each: a right password charges no failure budget.
            limits=("recovery_codes_account",),
            handler_limits=password_attempt(403, devices=False),
            raises=codes.TOTP_RECOVERY,
            conflicts=(TotpNotEnabledError, ConflictError),
            description="Needs the current password and the factor on (409 "
            "`totp_not_enabled`). Answers ten codes, once, each of which works once in "
            "place of the app's code (at `/login/totp` and `/me/totp/disable`), for a lost "
            "device; earlier codes stop working (409 `conflict` when new ones were made, or "
            "one used, as these were: ask again). The store keeps an argon2id hash of each, "
            "so every request, whatever its password, counts against the account's "
            "`recovery_codes_account` limit (3 per hour by default, from any address): past "
            "it, 429 before any password is checked or code made. " + CHARGED,
        ),
        Operation(
            method="POST",
            path="/me/totp/disable",
            handler=routes.disable,
            operation_id="disable_totp",
            event="totp_disable",
            summary="Turn the second factor off",
            tag="account",
            access="bearer",
            reads_account=False,
            request=schemas.TotpDisableRequest,
            response=PublicUser,
            handler_limits=password_attempt(403, devices=False),
            raises=codes.TOTP_DISABLE,
            conflicts=(TotpNotEnabledError, ConflictError),
            description="Needs the current password and a code (which is spent). A user "
            "who lost the device asks an administrator (`DELETE "
            "/admin/users/{user_id}/totp`, or `s3auth user totp-off`). " + CHARGED + " " + TOLD,
        ),
        Operation(
            method="DELETE",
            path="/admin/users/{user_id}/totp",
            handler=routes.admin_disable,
            operation_id="admin_disable_totp",
            event="admin_totp_disable",
            summary="Turn an account's second factor off (a lost device)",
            tag="admin",
            access="admin",
            response=PublicUser,
            conflicts=(TotpNotEnabledError, ConflictError),
            description="No code is asked. " + TOLD + " " + LOST_TO_A_CONCURRENT_CHANGE,
        ),
    ]

"""The operations of the account lifecycle and of the administrators' account tools: rows
of the auth app's table (`table`), handled by `lifecycle_routes`."""

from __future__ import annotations

from ..admin_resets import AccountDisabledError, NoMailerError
from ..errors import ConflictError, EmailTakenError, UsernameTakenError
from ..models import PublicUser
from . import lifecycle_schemas as schemas
from . import problem_codes as codes
from .errors import AdminPasswordSetDisabledError
from .lifecycle_routes import LifecycleRoutes
from .limits import ADMIN_MAIL, MAIL_REQUEST
from .operations import ADMINS_SEE_NAMES, LOST_TO_A_CONCURRENT_CHANGE, Operation

NO_ENUMERATION = (
    "The same 202 answer, after the same work and the same store requests, whether or not "
    "the name is an account's: nothing here tells who has an account. The message is sent "
    "in the background. Rate-limited per client address (`recovery`: a 429). Per account, "
    "whichever of its names is asked about, per address (`recovery_account`) and from any "
    "address (`recovery_inbox`), past which the answer is the same 202 and nothing is "
    "mailed: others asking cannot get the owner refused, nor learn how often anyone asked."
)
MAILED_TOKEN = (
    "The token works once, for its purpose only, until it expires; a wrong, spent, "
    "expired or foreign token is one 400 `invalid_account_token`."
)
SET_PASSWORD = (
    "Without the old one; every session of the account ends (the caller's own account: "
    "the answer clears the `s3auth_refresh` cookie in browser mode). With a mailer the "
    "account's address is told. The administrator knows the password then: with "
    "S3AUTH_ADMIN_SETS_PASSWORDS=false this is refused, and `POST "
    "/admin/users/{user_id}/password-reset` has the owner choose it. "
)
SET_PASSWORD_OFF = (
    "Refused here, S3AUTH_ADMIN_SETS_PASSWORDS being false: 403 "
    "`admin_password_set_disabled`, nothing changed. `POST "
    "/admin/users/{user_id}/password-reset` mails the owner a link, to choose one."
)


def _set_password(routes: LifecycleRoutes) -> Operation:
    """The row of an administrator's chosen password: its answers as the setting has it."""
    sets = routes.routes.settings.admin_sets_passwords
    return Operation(
        method="POST",
        path="/admin/users/{user_id}/password",
        handler=routes.set_password,
        operation_id="set_user_password",
        event="admin_password_set",
        summary="Set an account's password",
        tag="admin",
        access="admin",
        request=schemas.AdminSetPassword,
        raises=codes.NEW_PASSWORD if sets else (AdminPasswordSetDisabledError,),
        forbidden=""
        if sets
        else "Not an administrator, code `insufficient_scope`; or any call, "
        "S3AUTH_ADMIN_SETS_PASSWORDS being false, code `admin_password_set_disabled`",
        conflicts=(ConflictError,) if sets else (),
        description=SET_PASSWORD + LOST_TO_A_CONCURRENT_CHANGE if sets else SET_PASSWORD_OFF,
    )


CREATE_USER = (
    "A verification link is mailed unless `email_verified` is set. "
    '`admin` among the scopes is `is_admin`; beside `"is_admin": false` it is a '
    "422. A taken username or email is 409 `username_taken` or `email_taken`. "
    + ADMINS_SEE_NAMES
    + " Without `password`, no password opens the account until its owner chooses one "
    "through a reset link, which `POST /admin/users/{user_id}/password-reset` mails. "
)
CREATE_USER_PASSWORD = (
    "A `password` the administrator chooses sets it (the policy applies), unless "
    "S3AUTH_ADMIN_SETS_PASSWORDS is false."
)
CREATE_USER_PASSWORD_OFF = (
    "S3AUTH_ADMIN_SETS_PASSWORDS being false, one with a `password` is refused: 403 "
    "`admin_password_set_disabled`, nothing written."
)


def _create_user(routes: LifecycleRoutes) -> Operation:
    """The row of an account an administrator makes: its answers as the setting has it."""
    sets = routes.routes.settings.admin_sets_passwords
    return Operation(
        method="POST",
        path="/admin/users",
        handler=routes.create_user,
        operation_id="create_user",
        event="admin_user_create",
        summary="Create an account",
        tag="admin",
        access="admin",
        request=schemas.AdminUserCreate,
        response=PublicUser,
        status=201,
        raises=codes.NEW_ACCOUNT if sets else (*codes.NEW_NAMES, AdminPasswordSetDisabledError),
        forbidden=""
        if sets
        else "Not an administrator, code `insufficient_scope`; or a `password` given, "
        "S3AUTH_ADMIN_SETS_PASSWORDS being false, code `admin_password_set_disabled`",
        conflicts=(UsernameTakenError, EmailTakenError),
        description=CREATE_USER + (CREATE_USER_PASSWORD if sets else CREATE_USER_PASSWORD_OFF),
    )


def lifecycle_operations(routes: LifecycleRoutes) -> list[Operation]:
    return [
        Operation(
            method="POST",
            path="/password/forgot",
            handler=routes.forgot_password,
            operation_id="forgot_password",
            event="password_reset_request",
            summary="Mail a password-reset link",
            tag="recovery",
            request=schemas.ForgotPasswordRequest,
            response=schemas.Accepted,
            status=202,
            handler_limits=MAIL_REQUEST,
            description="To the address of the active account the username or email names "
            "(valid for S3AUTH_PASSWORD_RESET_MINUTES). " + NO_ENUMERATION,
        ),
        Operation(
            method="POST",
            path="/password/reset",
            handler=routes.reset_password,
            operation_id="reset_password",
            event="password_reset",
            summary="Set a new password with a mailed token",
            tag="recovery",
            request=schemas.ResetPasswordRequest,
            limits=("token",),
            raises=(*codes.MAILED_TOKEN, *codes.NEW_PASSWORD),
            conflicts=(ConflictError,),
            description="Ends every session of the account, its access tokens too, and "
            "marks its address verified. A password the policy refuses (422 "
            "`weak_password`, or `password_breached`) leaves the token unspent. "
            f"{MAILED_TOKEN} " + LOST_TO_A_CONCURRENT_CHANGE,
        ),
        Operation(
            method="POST",
            path="/email/verify",
            handler=routes.verify_email,
            operation_id="verify_email",
            event="email_verify",
            summary="Verify an email address with a mailed token",
            tag="recovery",
            request=schemas.VerifyEmailRequest,
            limits=("token",),
            raises=codes.MAILED_TOKEN,
            conflicts=(EmailTakenError, ConflictError),
            description="Works while the address is still the account's. The token of "
            "the link mailed to a new address the user asked for (`ec1.…`) moves the "
            "account to that address, verified, and lets the old one go; it works only for "
            "the latest address asked for and while the password is the same (event "
            "`email_change`). An address that is somebody else's by then is 409 "
            f"`email_taken`, and nothing changes. {MAILED_TOKEN} " + LOST_TO_A_CONCURRENT_CHANGE,
        ),
        Operation(
            method="POST",
            path="/email/verify/resend",
            handler=routes.resend_verification,
            operation_id="resend_verification",
            event="email_verification_request",
            summary="Mail a new verification link",
            tag="recovery",
            request=schemas.ResendVerificationRequest,
            response=schemas.Accepted,
            status=202,
            handler_limits=MAIL_REQUEST,
            description="For an account whose address is not verified yet; public, since "
            "with S3AUTH_REQUIRE_VERIFIED_EMAIL such an account cannot log in. " + NO_ENUMERATION,
        ),
        Operation(
            method="GET",
            path="/me/events",
            handler=routes.my_events,
            operation_id="list_my_events",
            summary="The caller's security events",
            tag="account",
            access="bearer",
            query=schemas.EventsQuery,
            response=schemas.OwnerEventPage,
            limits=("events_account",),
            description="Logins (failed ones too), logouts, password and email changes, "
            "ended sessions (a refresh token presented twice, which ends its session, too) "
            "and administrators' actions on the account, newest first, kept "
            "for S3AUTH_AUDIT_RETENTION_DAYS. An administrator's action is marked "
            "`by_administrator` and shows no `actor_id`, `session_id` or `client`: those are "
            "the administrator's. A page costs a store request per event: limited per "
            "account (`events_account`).",
        ),
        _create_user(routes),
        Operation(
            method="GET",
            path="/admin/users/{user_id}",
            handler=routes.get_user,
            operation_id="get_user",
            summary="One account",
            tag="admin",
            access="admin",
            response=PublicUser,
            versioned=True,
            description="Its `ETag` names the account's version, for the `If-Match` of a "
            "`PATCH` made on what it shows.",
        ),
        _set_password(routes),
        Operation(
            method="POST",
            path="/admin/users/{user_id}/password-reset",
            handler=routes.start_password_reset,
            operation_id="start_user_password_reset",
            event="admin_password_reset",
            summary="Mail an account's owner a password-reset link",
            tag="admin",
            access="admin",
            request=schemas.AdminPasswordReset,
            body_optional=True,
            response=schemas.ResetStarted,
            status=202,
            handler_limits=ADMIN_MAIL,
            raises=(NoMailerError,),
            forbidden="Not an administrator, code `insufficient_scope`; or no mailer is "
            "configured, code `no_mailer`",
            conflicts=(AccountDisabledError, ConflictError),
            description="The link `POST /password/forgot` mails (valid for "
            "S3AUTH_PASSWORD_RESET_MINUTES); the owner chooses the password, which no "
            "administrator learns. 202 once the link is written and its mail queued; 403 "
            "`no_mailer` where no mailer is configured and 409 `account_disabled` for a "
            "disabled account, on which no link works: nothing is written or sent. "
            "`end_sessions` ends every session of the account first (the caller's own "
            "account: the answer clears the `s3auth_refresh` cookie in browser mode), and "
            "the links mailed before with them. Counted against the owner's inbox budgets of "
            "reset mails, which `/password/forgot` spends too (`recovery_account`, "
            "`recovery_inbox`): past them, 429 with `Retry-After` alone, and nothing is "
            "written or mailed (a link went to the owner within the budget's interval). "
            + LOST_TO_A_CONCURRENT_CHANGE,
        ),
        Operation(
            method="GET",
            path="/admin/users/{user_id}/sessions",
            handler=routes.user_sessions,
            operation_id="list_user_sessions",
            summary="An account's sessions",
            tag="admin",
            access="admin",
            response=schemas.AdminSessionList,
        ),
        Operation(
            method="DELETE",
            path="/admin/users/{user_id}/sessions/{session_id}",
            handler=routes.end_user_session,
            operation_id="end_user_session",
            event="admin_session_end",
            summary="End one session of an account",
            tag="admin",
            access="admin",
        ),
        Operation(
            method="POST",
            path="/admin/sessions/end-all",
            handler=routes.end_all_sessions,
            operation_id="end_all_sessions",
            event="admin_sessions_end_all",
            summary="End every session of every user",
            tag="admin",
            access="admin",
            response=schemas.EverySessionEnded,
            conflicts=(ConflictError,),
            description="For an incident, without a new secret key: every session opened "
            "before the answer's `not_before` ends, the caller's too (the answer clears the "
            "`s3auth_refresh` cookie in browser mode). Its refresh tokens are refused, and its "
            "access tokens by every process from its next revocation sync "
            "(S3AUTH_REVOCATION_SYNC_SECONDS); logging in again works at once. Endings sent "
            "at once land in turn; a 409 `conflict` when others won every try.",
        ),
        Operation(
            method="GET",
            path="/admin/users/{user_id}/events",
            handler=routes.user_events,
            operation_id="list_user_events",
            summary="An account's security events",
            tag="admin",
            access="admin",
            query=schemas.EventsQuery,
            response=schemas.EventPage,
            limits=("events_account",),
            description="As they are kept: an administrator's action names the administrator "
            "(`actor_id`) and the session and address it came from, which `GET /me/events` "
            "does not show the account. A deleted account's trail is shown until its "
            "retention passes; 404 for an id with neither account nor trail, but never "
            "after a cursor (the events after it may have been swept: an empty last page). "
            "A page costs a store request per event: limited per calling administrator "
            "(`events_account`).",
        ),
    ]

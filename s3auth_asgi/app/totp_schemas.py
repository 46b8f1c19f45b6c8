"""The bodies of the second factor's operations (`totp_table`)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import msgspec
from msgspec import Meta

from ..hidden_fields import HidesSecrets
from .schemas import OTHER_GRANTS, OAuthParameter

TOTP_GRANT = "urn:s3auth:params:oauth:grant-type:totp"
"""The grant type of the login's second step (RFC 6749 §4.5: an extension grant, named by
an absolute URI)."""

Code = Annotated[
    str,
    Meta(
        max_length=32,
        description="The 6-digit code the authenticator app shows now, or one of the "
        "account's recovery codes (`3-abcde-fghij`), each of which works once.",
        examples=["123456"],
    ),
]


class TotpLoginRequest(HidesSecrets, msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The second step of a login whose account has its second factor on, as a form or
    JSON: the `mfa_token` of the `mfa_required` answer, and a code."""

    secret_fields: ClassVar[frozenset[str]] = frozenset(("mfa_token", "code", "client_secret"))
    accepted_grant_type: ClassVar[str] = TOTP_GRANT

    mfa_token: Annotated[str, Meta(max_length=2048)]
    code: Code
    grant_type: Annotated[
        Literal["urn:s3auth:params:oauth:grant-type:totp"] | None, Meta(description=OTHER_GRANTS)
    ] = None
    scope: OAuthParameter = None
    client_id: OAuthParameter = None
    client_secret: OAuthParameter = None


class TotpStartRequest(HidesSecrets, msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    secret_fields: ClassVar[frozenset[str]] = frozenset(("current_password",))

    current_password: str


class TotpConfirmRequest(HidesSecrets, msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    secret_fields: ClassVar[frozenset[str]] = frozenset(("code",))

    code: Code


class TotpDisableRequest(HidesSecrets, msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    secret_fields: ClassVar[frozenset[str]] = frozenset(("current_password", "code"))

    current_password: str
    code: Code


class RecoveryCodes(HidesSecrets, msgspec.Struct, kw_only=True):
    """New recovery codes, shown this once: the store keeps only their hashes."""

    secret_fields: ClassVar[frozenset[str]] = frozenset(("codes",))

    codes: list[str]

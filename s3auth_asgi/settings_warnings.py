"""What the auth app warns of when it starts, taking its settings all the same: the lines it
logs and `s3auth check` shows, kept in one list so that the two never differ."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .lifecycle_settings import plain_http_links, short_lived_links, unverifiable_accounts
from .settings_checks import weak_argon2_cost
from .settings_fallbacks import comma_in_secret_key

if TYPE_CHECKING:
    from .ratelimit import RateLimit


def settings_warnings(
    settings: Any, limits: Mapping[str, RateLimit], *, mailer_given: bool = False
) -> list[str]:
    """The warnings of `settings` (an S3AuthSettings) under the auth app's rate `limits`:
    a verified address required where no mail is sent (`mailer_given`: one given in code,
    which the settings do not show), mailed links that can expire before the mail budgets
    let another go, mailed links over plain http, an argon2 cost below OWASP's, and a secret
    key with a comma."""
    return [
        *unverifiable_accounts(settings, mailer_given=mailer_given),
        *short_lived_links(settings, limits),
        *plain_http_links(settings),
        *weak_argon2_cost(settings),
        *comma_in_secret_key(settings),
    ]

"""How S3AUTH_SECRET_KEY_FALLBACKS is written when a key in it holds a comma.

The variable is comma-separated, as every list is (`settings_text`), but S3AUTH_SECRET_KEY
may hold a comma: such a key moved there as it is would be read as two fallbacks, each
perhaps a valid secret, neither the key, and everything it made would stop verifying or
opening without a word. So the variable is also read as a JSON array of strings when it
begins with `[` (the form other settings libraries take lists in), which keeps each key
whole; and a secret key with a comma is warned of (`comma_in_secret_key`) before it is
replaced, not after. No message shows a key."""

from __future__ import annotations

from typing import Any

import msgspec

from .errors import ConfigurationError
from .settings_env import env_name

FIELD = "secret_key_fallbacks"


def json_form(text: str) -> bool:
    """Whether `text`, without its surrounding spaces, is the JSON form: it begins with `[`,
    as no key `s3auth gen-secret` makes does."""
    return text.startswith("[")


def read_json_form(text: str) -> list[str]:
    """The keys of the JSON array `text`, each taken as written (its rules are the secret
    key's, `settings_checks.check_fallbacks`); ConfigurationError naming the variable, and
    an item by its position, for any other JSON or none."""
    variable = env_name(FIELD)
    refused = f"{variable} begins with '[', so it must be a JSON array of strings"
    try:
        # Text beginning with `[` is an array if it is JSON at all.
        items = msgspec.json.decode(text, type=list[Any])
    except msgspec.DecodeError:
        # The decoder's message is left out: it may quote the text, a secret.
        raise ConfigurationError(f"{refused}, and it is not valid JSON") from None
    for number, item in enumerate(items, 1):
        if not isinstance(item, str):
            raise ConfigurationError(f"{refused}: item {number} is not a string")
    return items


def comma_in_secret_key(settings: Any) -> list[str]:
    """A warning when the secret key of `settings` (an S3AuthSettings) holds a comma: taken,
    as it always was, but the day it is replaced it can be kept as a fallback only in the
    JSON form. The app logs it when it is made, and `s3auth check` shows it."""
    if "," not in settings.secret_key:
        return []
    fallbacks = env_name(FIELD)
    return [
        f"{env_name('secret_key')} contains a comma: {fallbacks} splits its comma-separated "
        "form at commas, so once this key is replaced it can be kept as a fallback only in "
        f"the JSON form, {fallbacks}='[\"...\"]'"
    ]

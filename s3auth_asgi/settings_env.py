"""The `S3AUTH_*` variables: one per field of S3AuthSettings (`env_name`), and the few read
elsewhere (OTHER_VARIABLES). Any other `S3AUTH_*` variable is refused, the closest name
offered, since a misspelt one would otherwise be ignored without a word: a key-encryption
key that seals nothing, a verified-email rule that is not applied.

A refusal rather than a warning, because what a misspelling leaves unset is often a security
setting, and a warning at start is easily missed. A variable of a newer release is refused by
an older one too: set it once every process runs the release that knows it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import ConfigurationError

ENV_PREFIX = "S3AUTH_"
DEBUG_VARIABLE = ENV_PREFIX + "DEBUG"

OTHER_VARIABLES = {
    DEBUG_VARIABLE: "the `s3auth` command shows tracebacks (as `--debug`)",
    ENV_PREFIX + "BENCH_VARIANT": "which app the end-to-end benchmark's server runs",
    ENV_PREFIX + "UPDATE_SCREENSHOT": "the demo-page test also writes the README's picture",
}
"""`S3AUTH_*` variables that are not settings, read by the command, the benchmarks or the
tests: allowed beside the settings."""


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def known_variables(fields: Iterable[str]) -> frozenset[str]:
    """The variables of the settings `fields`, and the others."""
    return frozenset(env_name(field) for field in fields) | OTHER_VARIABLES.keys()


def check_variable_names(environ: Mapping[str, str], fields: Iterable[str]) -> None:
    """ConfigurationError naming every variable in `environ` that starts with `S3AUTH_`, in
    any case, but names no setting; only the names, never a value, which may be a secret."""
    known = known_variables(fields)
    unknown = sorted(
        name for name in environ if name.upper().startswith(ENV_PREFIX) and name not in known
    )
    if unknown:
        refusals = "; ".join(f"{name} is not a setting{_hint(name, known)}" for name in unknown)
        raise ConfigurationError(
            f"{refusals}: every {ENV_PREFIX}* variable must name a setting (the README's "
            "Configuration table lists them); correct or remove it"
        )


def check_keywords(overrides: Mapping[str, Any], fields: Iterable[str]) -> None:
    """TypeError for a keyword argument that names no field, as the constructor raises."""
    names = list(fields)
    for name in overrides:
        if name not in names:
            close = closest(name, names)
            hint = f" (did you mean {close!r}?)" if close else ""
            raise TypeError(f"from_env() got an unexpected keyword argument {name!r}{hint}")


def closest(name: str, known: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The name in `known` most like `name`, when one is at least `cutoff` alike by difflib's
    ratio (twice the characters in common over both lengths): a did-you-mean suggestion."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=cutoff)
    return close[0] if close else None


def _hint(name: str, known: Iterable[str]) -> str:
    # Compared without the prefix every name shares, which would make any two look alike.
    rest = name.upper().removeprefix(ENV_PREFIX)
    close = closest(rest, (k.removeprefix(ENV_PREFIX) for k in known))
    return f" (did you mean {ENV_PREFIX}{close}?)" if close else ""

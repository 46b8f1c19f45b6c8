"""The `S3AUTH_*` variables: one per field of S3AuthSettings (`env_name`)."""

from __future__ import annotations

ENV_PREFIX = "S3AUTH_"


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()

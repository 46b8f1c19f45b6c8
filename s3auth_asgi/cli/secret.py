"""`s3auth gen-secret`: a value for S3AUTH_SECRET_KEY."""

from __future__ import annotations

from ..settings import new_secret_key
from .context import Context
from .failures import OK


def run_gen_secret(ctx: Context) -> int:
    print(new_secret_key(), file=ctx.out)
    return OK

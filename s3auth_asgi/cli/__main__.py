"""`python -m s3auth_asgi.cli`, the same as the `s3auth` console script."""

from . import run

run()

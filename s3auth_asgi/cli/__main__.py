"""`python -m s3auth_asgi.cli`, the same as the `s3auth` console script."""

import sys

from . import main

sys.exit(main())

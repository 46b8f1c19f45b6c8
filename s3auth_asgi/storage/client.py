"""How long a request to a network store (S3, GCS, Azure) may take before it fails as the
store being unavailable (503).

obstore cuts off each attempt at its request timeout (30 s unless `AWS_TIMEOUT`,
`GOOGLE_TIMEOUT` or `AZURE_TIMEOUT` says otherwise), and tries a failed request again (a
5xx, a dropped connection, and for a read a timeout) for up to three minutes. Left so, a
store that takes connections and never answers held every login, refresh and revocation
sync for over three minutes, far past any client's or load balancer's patience, each
holding its connection meanwhile. So the package starts no new attempt past
`RETRY_WINDOW`: a request fails within the window plus one attempt (35 s with obstore's
defaults). A write cut off by its timeout is not resent (it may have landed), so it fails
after one attempt.

A caller's own `retry_config` keeps the window unless it sets `retry_timeout`. The request
timeout is left to obstore's variables: a `client_options` passed here would replace what
the environment gives (`AWS_ALLOW_HTTP` among it), not add to it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

RETRY_WINDOW = dt.timedelta(seconds=5)
"""Long enough for obstore's backoff (from 100 ms, doubling) to make five or six tries of a
request that fails at once, the backoff S3 asks for on a 503 `SlowDown`."""


def network_options(options: dict[str, Any]) -> dict[str, Any]:
    """`options` for obstore's `from_url`, with the retry window unless they set one."""
    retry = {"retry_timeout": RETRY_WINDOW, **(options.get("retry_config") or {})}
    return {**options, "retry_config": retry}

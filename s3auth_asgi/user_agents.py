"""A client's User-Agent as the package keeps it: a session's `device_info`, an auth
event's `user_agent` and a new-device notice all take it through `reported_user_agent`, so
that each names a client the same way. A client chooses every byte of the header, as long
as the server's parser takes (uvicorn's, megabytes): control and format characters, which
would forge or colour a log line, are dropped, and it is cut to DEVICE_INFO_MAX, which
keeps a session, a log record and an audit trail's object small."""

from __future__ import annotations

from .identifiers import DEVICE_INFO_MAX, clean_text


def reported_user_agent(user_agent: object) -> str | None:
    """`user_agent` without control, format and surrogate characters, trimmed and cut to
    DEVICE_INFO_MAX (only its first few times that are read); None when empty. Never an
    error: what a client says of itself does not fail its request."""
    return clean_text(user_agent, "device_info", DEVICE_INFO_MAX, truncate=True)

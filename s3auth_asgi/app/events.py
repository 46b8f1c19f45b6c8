"""The auth event of one request to the auth app, from what the endpoint saw: the operation's
declared event, the answer's status and problem code, the caller (or what a handler noted),
and the client address."""

from __future__ import annotations

from collections.abc import Mapping

from ..events import AuthEvent, EventName, Outcome, new_event


def outcome_of(status: int) -> Outcome:
    if status < 400:
        return "success"
    return "refused" if status == 429 else "failure"


def request_event(
    name: EventName,
    status: int,
    code: str | None,
    noted: Mapping[str, str],
    client: str | None,
) -> AuthEvent:
    outcome = outcome_of(status)
    return new_event(
        name,
        outcome,
        reason=code if outcome != "success" else None,
        user_id=noted.get("user_id"),
        actor_id=noted.get("actor_id"),
        session_id=noted.get("session_id"),
        client=client,
    )

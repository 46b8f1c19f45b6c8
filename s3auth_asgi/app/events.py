"""The auth event of one request to the auth app, from what the endpoint saw: the operation's
declared event (or the one its handler noted as `event`: a change of address is told apart
from other changes of a profile, and from a verification), the answer's status and problem
code (or the `reason` a handler noted for a problem it answered rather than raised), the
caller (or what a handler noted), how a code of the second factor it accepted was given
(`note_code_use`), and the client: its address and its User-Agent, as a session records
them.

A wrong password whose charge spent the account's failure budget (`attempts`, noted as
`spent`) adds to the trail the refusal that the attempts after it meet (`login`, `refused`,
`rate_limited`): they are refused before they are checked and write nothing, so that a
flood costs the store no write, and the account's trail still says when its logins began
to be refused, and from where. It is the trail's alone: the event log has each refusal as
a record of its own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast, get_args

import msgspec

from ..code_uses import CodeUse, SecondFactor
from ..events import EVENT_NAMES, AuthEvent, EventName, Outcome, new_event
from ..types import Clock
from ..user_agents import reported_user_agent


def outcome_of(status: int) -> Outcome:
    if status < 400:
        return "success"
    return "refused" if status == 429 else "failure"


def note_code_use(noted: dict[str, str], use: CodeUse) -> None:
    """Note, for the request's event, how the code it accepted was given."""
    noted["second_factor"] = use.second_factor
    if use.recovery_codes_left is not None:
        noted["recovery_codes_left"] = str(use.recovery_codes_left)


def _code_use_of(noted: Mapping[str, str]) -> CodeUse | None:
    method = noted.get("second_factor")
    if method not in get_args(SecondFactor):
        return None
    left = noted.get("recovery_codes_left")
    return CodeUse(
        second_factor=cast(SecondFactor, method), recovery_codes_left=int(left) if left else None
    )


def request_event(
    name: EventName,
    status: int,
    code: str | None,
    noted: Mapping[str, str],
    client: str | None,
    user_agent: str | None,
    *,
    clock: Clock,
) -> AuthEvent:
    outcome = outcome_of(status)
    noted_name = noted.get("event")
    if noted_name in EVENT_NAMES:
        name = cast(EventName, noted_name)
    use = _code_use_of(noted)
    return new_event(
        name,
        outcome,
        reason=(code or noted.get("reason")) if outcome != "success" else None,
        user_id=noted.get("user_id"),
        actor_id=noted.get("actor_id"),
        session_id=noted.get("session_id"),
        client=client,
        user_agent=reported_user_agent(user_agent),
        previous_email=noted.get("previous_email"),
        second_factor=use.second_factor if use is not None else None,
        recovery_codes_left=use.recovery_codes_left if use is not None else None,
        clock=clock,
    )


def with_account(event: AuthEvent, noted: Mapping[str, str]) -> AuthEvent:
    """The event as the audit trail and the hooks see it: a failed login names the account
    whose name was typed (`account_id`, when it is one), which the event log does not."""
    account = noted.get("account_id")
    if event.user_id is None and account is not None and not noted.get("decoy"):
        return msgspec.structs.replace(event, user_id=account)
    return event


LIMITED_AFTER_SECONDS = 0.001
"""How much later than the failure that spent the budget the refusal is stamped: a trail's
keys count milliseconds, so that it is listed after that failure, not beside it."""


def spent_of(kept: AuthEvent, noted: Mapping[str, str]) -> AuthEvent | None:
    """For the failure that spent the account's failure budget: the refusal it starts, in
    the trail `kept` goes into (a decoy's too)."""
    if not noted.get("spent") or kept.outcome != "failure":
        return None  # a charge refused meanwhile is a refusal of its own already
    return msgspec.structs.replace(
        kept,
        name="login",
        outcome="refused",
        reason="rate_limited",
        at=kept.at + LIMITED_AFTER_SECONDS,
        previous_email=None,
        second_factor=None,
        recovery_codes_left=None,
    )


def decoy_of(event: AuthEvent, noted: Mapping[str, str]) -> AuthEvent | None:
    """For a failed login under a name that is nobody's: the same event in a decoy trail,
    written so that the failure costs the store what an account's would."""
    if event.user_id is None and noted.get("decoy") and "account_id" in noted:
        return msgspec.structs.replace(event, user_id=noted["account_id"])
    return None

"""`s3auth doctor`: every user record and index entry read, and what is inconsistent between
them reported (`consistency`), and the end of every session when it cannot be read
(`every_session`), and each account whose stored password hash is above the
hasher's ceiling (`hash_costs`) or, while S3AUTH_SECRET_KEY_FALLBACKS is set, whose TOTP
seed is still sealed under one of them (`record_findings`), one line each as found, or
with `--json` one JSON array;
with `--repair`, the cases a repair cannot make worse repaired, a deletion cut short
finished as `s3auth user delete ID` finishes it, with its audit event (`leftovers`). Exit 1
when a problem found is left unrepaired: look-alike users, released entries and TOTP seeds
still sealed under one of S3AUTH_SECRET_KEY_FALLBACKS are warnings."""

from __future__ import annotations

import time

from ..consistency import StateCheck
from ..findings import RELEASED_ENTRY, SEED_UNDER_FALLBACK, Finding
from ..look_alikes import LOOKALIKE_USERS, PAIR_LEFT
from ..types import Clock
from .context import Context
from .failures import OK, REFUSED
from .json_array import JsonArray
from .progress import Progress
from .table_text import printable
from .users import noted

CLOCK: Clock = time.time
"""The moment entries are judged at: one a reservation's time old is abandoned."""
COUNTED = ("list", "get", "put", "delete")


def run_doctor(ctx: Context) -> int:
    service = ctx.service(clock=CLOCK)
    store = service.store
    as_json: bool = ctx.args.json
    repair: bool = ctx.args.repair
    listed = JsonArray()
    baseline = {kind: store.requests[kind] for kind in COUNTED}

    def report(item: Finding) -> None:
        if as_json:
            listed.extend([item])
            return
        progress.clear()
        print(printable(finding_line(item, repair=repair)), file=ctx.out)

    async def finish(user_id: str) -> bool:
        if not await service.finish_deletion(user_id):
            return False
        await noted(service, "admin_user_delete", user_id, ctx.err)
        return True

    # Seeds are judged only while there are fallbacks, whose removal they would outlive.
    seeds = service.seeds if service.settings.secret_key_fallbacks else None
    check = StateCheck(
        service.names,
        report,
        repair=repair,
        finish=finish,
        ceiling=service.passwords.ceiling,
        seeds=seeds,
    )
    progress = Progress(
        ctx.err,
        "reading users and index entries",
        lambda: f"{check.users} user(s), {check.entries} entries, {check.problems} problem(s)",
    )

    async def doctor() -> int:
        await progress.show(check.run)
        if as_json:
            listed.write(ctx.out)
        else:
            made = {kind: store.requests[kind] - baseline[kind] for kind in COUNTED}
            writes = made["put"] + made["delete"]
            requests = f"{made['list']} list page(s), {made['get']} read(s), {writes} write(s)"
            print(f"{summary(check)} ({requests})", file=ctx.out)
        return REFUSED if check.problems > check.repaired else OK

    return ctx.run(doctor)


def finding_line(item: Finding, *, repair: bool) -> str:
    if item.kind == LOOKALIKE_USERS:  # nothing to mend: not a problem, not a failure
        return f"[WARN] {item.kind} {item.key}: {item.detail}; {item.outcome or PAIR_LEFT}"
    # A released entry is no failure either: it holds a user's id, and nothing breaks.
    # Nor is a seed sealed under a fallback: it works, and its next login seals it anew.
    failed = "[WARN]" if item.kind in (RELEASED_ENTRY, SEED_UNDER_FALLBACK) else "[FAIL]"
    if not repair:
        advice = f"; --repair: {item.repair}" if item.repair else "; no repair is safe"
        return f"{failed} {item.kind} {item.key}: {item.detail}{advice}"
    status = "[fixed]" if item.repaired else failed
    return f"{status} {item.kind} {item.key}: {item.detail}; {item.outcome}"


def summary(check: StateCheck) -> str:
    entries = f"{check.entries} index {'entry' if check.entries == 1 else 'entries'}"
    checked = f"checked {check.users} user(s) and {entries}"
    pairs = (
        f"; {check.lookalikes} pair(s) of users look alike, left as they are"
        if check.lookalikes
        else ""
    )
    if check.released:
        entries = "released entry" if check.released == 1 else "released entries"
        named = (
            f"still named a user, {check.let_go} let go" if check.repair else "still name a user"
        )
        pairs += f"; {check.released} {entries} {named}"
    if check.fallback_seeds:
        pairs += f"; {check.fallback_seeds} TOTP seed(s) still sealed under a fallback key"
    if not check.problems:
        return f"{checked}: no problem found{pairs}"
    if not check.repair:
        return f"{checked}: {check.problems} problem(s){pairs}"
    left = check.problems - check.repaired
    repaired = f"{check.repaired} repaired, {left} left"
    return f"{checked}: {check.problems} problem(s), {repaired}{pairs}"

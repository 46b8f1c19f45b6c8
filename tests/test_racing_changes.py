"""Which generation a session was opened from, as its id says, and which sessions a change
decided on a record of some generation may end: those of that generation or an older one.
"""

from __future__ import annotations

import datetime as dt

from s3auth_asgi.identifiers import (
    new_session_id,
    session_age,
    session_created_ms,
    session_generation_counter,
)
from s3auth_asgi.session_generation import generation_counter, next_generation, opened_up_to
from s3auth_asgi.storage import ObjectInfo, keys


def test_a_session_id_says_when_it_was_opened_and_from_which_generation() -> None:
    generation = next_generation(next_generation(""))
    counter = generation_counter(generation)
    assert counter == 2
    session_id = new_session_id(1_700_000_000_123, counter)
    assert len(session_id) == 32 and session_id == session_id.lower()
    assert session_created_ms(session_id) == 1_700_000_000_123
    assert session_generation_counter(session_id) == 2
    assert session_generation_counter(new_session_id(1_700_000_000_123)) == 0
    # An id of the earlier layout, its creation time then random bits: of no generation.
    earlier = f"{1_700_000_000_123:012x}{'f' * 20}"
    assert session_created_ms(earlier) == 1_700_000_000_123
    assert session_generation_counter(earlier) == 0
    # Ranked by age across both layouts, as hosts of two versions write them side by side:
    # the cap and the sessions page rank so.
    later_earlier_layout = f"{1_700_000_000_124:012x}{'0' * 20}"
    assert sorted([later_earlier_layout, session_id, earlier], key=session_age) == [
        earlier,
        session_id,
        later_earlier_layout,
    ]
    assert generation_counter("") == generation_counter(None) == 0


def test_only_sessions_of_the_record_read_or_older_are_listed_for_ending() -> None:
    # The rule by itself, over a listing: a change decided on a record of generation g ends
    # the sessions of g and older (and of ids that do not say), never a newer one's.
    g1 = next_generation("")
    g2 = next_generation(g1)
    ids = {
        "earlier": f"{1:012x}{'a' * 20}",
        "none": new_session_id(2, 0),
        "g1": new_session_id(3, generation_counter(g1)),
        "g2": new_session_id(4, generation_counter(g2)),
    }
    when = dt.datetime.now(dt.UTC)
    listed = [ObjectInfo(keys.session("u" * 32, i), when, 1) for i in ids.values()]
    listed.append(ObjectInfo(keys.generation_marker("u" * 32, g1), when, 1))

    def ended(generation: str) -> set[str]:
        found = {keys.id_from_key(info.key) for info in opened_up_to(listed, generation)}
        return {name for name, i in ids.items() if i in found}

    assert ended("") == {"earlier", "none"}
    assert ended(g1) == {"earlier", "none", "g1"}
    assert ended(g2) == set(ids)

"""A conditional write refused by its own resend, told from one that lost to another writer.

obstore resends a request whose answer did not come (a 503 from a load balancer, a dropped
connection, a timeout), conditional writes too. When the first attempt had landed, the
resend is refused by the condition that attempt made true: a create finds the object there
(412, or 409 on Azure), a replace finds it no longer at the version it names (412). Taken
for a lost race, that refusal had an account change report success without ending the
sessions it must end, a change of address free the new address its record holds, a
registration find its own name taken, a login fail with its session written.

So when obstore reports that it sent a refused write more than once (`was_resent`: the
retry count its error carries), `ObjectStore` reads the object once, and if it holds
exactly the bytes the write sent, the write is reported as made, with the version read.
A refusal on the first attempt is another writer's doing and costs nothing more; an error
whose retry count cannot be read is checked as a resent one, which costs the read and
never a wrong answer. Memory and local directories never resend.

Why identical bytes are this write's own: every object written conditionally carries
something new with each write, or else two writers that produce the same bytes want the
same outcome, so that taking the other's write for ours changes nothing. By object:

- a user record: a change that ends the sessions writes a new random session generation,
  and a new password a new salted hash. Any other change (a profile, a verification, a
  change of address, closing for deletion, an undo) that two writers make alike is one
  that each would apply again to the other's result, to the same bytes (`user_records`);
  and two changes to the same new address cannot both get past its index entry;
- an index entry: a random claim with each claim (`IndexEntry.claim`); its release is
  that claim's own;
- a session: a random secret and id at the login. Its rotation carries the clock reading
  of the write to the sub-second; two refreshes with the same token that read the clock
  alike are each answered with the rotated session, which is what the one that lost the
  race is answered with within the refresh grace window anyway;
- a mailed token, an audit event: a random id in the key and a random secret or suffix;
- a generation marker, a deletion's closing marker, a revocation entry: what the key says
  is all there is, and a refusal of one by an identical one is already success
  (`session_generation`, `blacklist`);
- the signing keys: a rotation adds new random key material; a retirement that two
  writers make alike sets the same time on the same key;
- limiter state: a random `write` with each write (`ratelimit.stores`), since two
  processes that read the same state compute the same next one whatever their clocks say,
  and each must count its own admission;
- the probe object of `s3auth check`: a key of its own per run, and each write there a
  value other than the one it means to be refused by.
"""

from __future__ import annotations

import re

_RETRIES = re.compile(r"(?<![\w])retries: (\d+),")
"""What obstore's error says of its retries, in the request's retry record."""


def was_resent(exc: BaseException) -> bool:
    """Whether obstore may have sent the refused write more than once: its error names a
    retry count other than 0, or none at all."""
    counts = _RETRIES.findall(str(exc))
    return not counts or any(int(count) > 0 for count in counts)

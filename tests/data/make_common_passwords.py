"""Writes `s3auth_asgi/common_passwords.txt`: the commonest passwords, from zxcvbn's list.

The `zxcvbn` package (MIT) ships the 30,000 commonest passwords it found in leaked password
sets, most common first (`zxcvbn.frequency_lists.FREQUENCY_LISTS["passwords"]`). This keeps
them all, the short ones too: neither preset takes one under 8 characters, but a
`PasswordPolicy` made in code may ask for fewer, and the secret-key estimate finds words as
short as `secret` inside a key. Each is folded as the policies compare passwords
(`identifiers.fold`), in zxcvbn's order, the first of any that fold alike kept, under a
header that names the source and carries its licence notice, as the licence asks. After
them come OWN_WORDS, this package's own list before zxcvbn's, where zxcvbn's lacks them:
zxcvbn keeps a word in one of its lists only, so `jennifer` is among its names, not its
passwords, and it has few phrases as long as a `nist` password
(`correcthorsebatterystaple`), which a secret key is not made of either.

zxcvbn is not a dependency: run it with a throwaway virtual environment that has zxcvbn and
this package, from the repository's root:

    python -m venv /tmp/words && /tmp/words/bin/pip install zxcvbn==4.5.0 -e .
    /tmp/words/bin/python tests/data/make_common_passwords.py > s3auth_asgi/common_passwords.txt

Nothing here runs in the test suite: `tests/test_common_passwords.py` reads the file.
"""

from __future__ import annotations

import sys
from importlib import metadata

from s3auth_asgi.identifiers import fold

VERSION = "4.5.0"
NOTICE = """\
MIT License

Copyright (c) 2016 Daniel Wolf

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""
"""The licence of zxcvbn 4.5.0 (its LICENSE.txt), which the list is part of."""

OWN_WORDS = [
    "administrator",
    "p@ssword",
    "jennifer",
    "987654321",
    "michelle",
    "passwordpassword",
    "password12345678",
    "qwertyuiopasdfgh",
    "qwertyuiopasdfghjkl",
    "qwertyuiop123456",
    "1234567890123456",
    "123456789012345",
    "12345678901234567890",
    "abcdefghijklmnop",
    "abcdefghijklmnopqrstuvwxyz",
    "aaaaaaaaaaaaaaaa",
    "correcthorsebatterystaple",
    "iloveyouiloveyou",
    "letmeinletmein",
    "welcomewelcome",
    "trustno1trustno1",
    "changemechangeme",
    "administrator123",
    "superman12345678",
    "thequickbrownfox",
    "thequickbrownfoxjumpsoverthelazydog",
]


def main() -> None:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-not-found]

    if metadata.version("zxcvbn") != VERSION:
        sys.exit(f"zxcvbn {VERSION} is needed, for the list the header names")
    ranked: dict[str, None] = {}
    for password in FREQUENCY_LISTS["passwords"]:
        folded = fold(password)
        if folded and folded.strip() == folded and folded[0] != "#":
            ranked.setdefault(folded, None)
    own = [word for word in map(fold, OWN_WORDS) if word not in ranked]
    out = sys.stdout
    out.write(
        "# The commonest passwords, most common first,\n"
        "# NFKC-casefolded: those the password policies refuse, and the words a secret key\n"
        "# is not made of. Made by tests/data/make_common_passwords.py from the 30,000 of\n"
        f'# zxcvbn {VERSION} (FREQUENCY_LISTS["passwords"]), https://github.com/dwolfhub/zxcvbn-python,\n'
        "# itself from Dropbox's zxcvbn. Its licence:\n#\n"
    )
    out.writelines(f"# {line}".rstrip() + "\n" for line in NOTICE.splitlines())
    out.writelines(f"{password}\n" for password in ranked)
    out.write(f"# {len(own)} of this package's own, which zxcvbn's list lacks:\n")
    out.writelines(f"{password}\n" for password in own)


if __name__ == "__main__":
    main()

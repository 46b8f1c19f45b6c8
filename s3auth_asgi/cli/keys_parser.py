"""The command line of `s3auth keys …`: its actions, their options and help, and a parser
that takes a kid starting with `-` for one (the actions themselves are in `keys` and
`keygen`)."""

from __future__ import annotations

import argparse
from typing import Any

from ..keys.names import ASYMMETRIC_ALGORITHMS
from .keygen import run_keys_generate
from .keys import run_keys_list, run_keys_publish, run_keys_retire, run_keys_rotate


class KidParser(argparse.ArgumentParser):
    """Takes an argument that starts with `-` for a positional one unless it names one of
    its options: a kid is base64url, and one in 64 starts with `-`."""

    def _parse_optional(self, arg_string: str) -> Any:
        name = arg_string.split("=", 1)[0]
        if not any(option.startswith(name) for option in self._option_string_actions):
            return None
        return super()._parse_optional(arg_string)


def add_keys_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], store: argparse.ArgumentParser
) -> None:
    """`s3auth keys …`; `store`: the options of commands that open the store."""
    keys = commands.add_parser("keys", help="list, rotate and retire the signing keys")
    actions: argparse._SubParsersAction[Any] = keys.add_subparsers(
        dest="keys_command", required=True, metavar="ACTION", parser_class=KidParser
    )
    listing = actions.add_parser(
        "list", parents=[store], help="every key: its kid, algorithm, state, times and source"
    )
    listing.add_argument("--json", action="store_true", help="one JSON array of keys")
    listing.set_defaults(run=run_keys_list)
    rotate = actions.add_parser(
        "rotate",
        parents=[store],
        help="add a stored key, published now, that signs after S3AUTH_KEY_PUBLISH_SECONDS",
    )
    rotate.add_argument(
        "--now",
        action="store_true",
        help="sign with it at once, when the signing key leaked (then retire the old key "
        "--now), removing keys rotated in before that do not sign yet; verifiers that "
        "have not read it yet each reread the keys at the first "
        "token naming it, at most once per their interval",
    )
    rotate.set_defaults(run=run_keys_rotate)
    retire = actions.add_parser(
        "retire",
        parents=[store],
        help="stop publishing a stored key once the last token it signed has expired",
    )
    retire.add_argument("kid", help="the key's kid (see `s3auth keys list`)")
    retire.add_argument(
        "--now",
        action="store_true",
        help="drop it at once, for a key that leaked: the tokens it signed stop verifying "
        "(their clients refresh to get new ones)",
    )
    retire.set_defaults(run=run_keys_retire)
    publish_command = actions.add_parser(
        "publish",
        parents=[store],
        help="write the JWKS to S3AUTH_JWKS_PUBLISH_URL again, changing no key",
    )
    publish_command.set_defaults(run=run_keys_publish)
    generate = actions.add_parser(
        "generate",
        help="print a new private key (PEM, PKCS#8) for S3AUTH_SIGNING_KEY_FILE",
    )
    generate.add_argument(
        "--algorithm",
        choices=ASYMMETRIC_ALGORITHMS,
        help="the algorithm of the key to make (required); with --public, the one to judge "
        "the key read for (optional)",
    )
    generate.add_argument(
        "--public",
        action="store_true",
        help="instead, read a private key on standard input and print its public key "
        "(PEM), for S3AUTH_VERIFICATION_KEYS_FILE",
    )
    generate.set_defaults(run=run_keys_generate)

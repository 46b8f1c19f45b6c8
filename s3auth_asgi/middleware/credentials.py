"""Finding the bearer token of a request.

HTTP: only the `Authorization: Bearer <token>` header (RFC 6750 §2.1; the scheme is
case-insensitive). Tokens in query strings or bodies of HTTP requests are not read: they
end up in logs and caches.

WebSocket: browsers cannot set headers on a WebSocket handshake, so two more places are
read, in this order of preference, and a connection may use only one of the three:

1. the `Authorization` header (non-browser clients);
2. the subprotocol convention: the client offers the marker (default `bearer`) followed by
   the token as the next subprotocol — `new WebSocket(url, ["bearer", token])`. Both are
   removed from `scope["subprotocols"]` and from the `Sec-WebSocket-Protocol` header in
   `scope["headers"]` before the app sees them, and the marker is sent back as the accepted
   subprotocol if the app accepts without choosing one, as browsers demand;
3. a query parameter, only when one is named (`websocket_query_param="access_token"`:
   `wss://host/ws?access_token=<token>`). Off by default: query strings are written to
   proxy and access logs, and a token there outlives the connection. Prefer the subprotocol.
   The parameter is taken out of `scope["query_string"]`, the others left as sent, so that
   neither the app's URL nor a server's log line written from the scope (uvicorn's, Hypercorn's)
   holds it.

Another scheme (`Basic ...`) counts as no token. A token that is empty, contains spaces
or exceeds 8 KiB is refused as invalid (`invalid_token`). A request that sends the
`Authorization` header twice, the token in more than one of these places, the query
parameter twice or the subprotocol marker without a token after it is malformed as a
request, whatever its tokens: `invalid_request`, 400 (RFC 6750 §3.1). The one parse of the
header serves the middleware, the auth app and the host integrations alike.

On an excluded path nothing is read or judged; only the marker and what follows it are
taken out of the subprotocols and the header (`drop_subprotocol_token`), and the query
parameter out of the query string (`drop_query_token`), so that a token never reaches the
app, and the marker is still named at accept.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar
from urllib.parse import unquote_plus

from ..errors import InvalidRequestError, InvalidTokenError
from ..types import Scope
from ..verifier import MAX_TOKEN_BYTES

_BEARER = b"bearer"
_PROTOCOL_HEADER = b"sec-websocket-protocol"
_Name = TypeVar("_Name", str, bytes)


def authorization_token(scope: Scope) -> bytes | None:
    """The token of the `Authorization: Bearer` header, None when there is none;
    InvalidRequestError when the header is sent more than once."""
    token: bytes | None = None
    seen = False
    for name, value in scope["headers"]:
        if name == b"authorization":
            if seen:
                raise InvalidRequestError("More than one Authorization header")
            seen = True
            token = _bearer_credentials(value)
    return token


def _bearer_credentials(value: bytes) -> bytes | None:
    """`Bearer 1*SP token68` (RFC 6750 §2.1), the field value's surrounding spaces and tabs
    aside (RFC 9110 §5.5); any other character, a form feed included, stays in the token
    and fails verification, whatever the spelling of the scheme."""
    if value.startswith(b"Bearer "):
        # The usual spelling. Stray characters need no scan here: such a token fails
        # verification (joserfc's base64url decoding is strict) and so is never cached.
        token = value[7:]
        if 0 < len(token) <= MAX_TOKEN_BYTES and token[0] != 32 and token[-1] not in (32, 9):
            return token
    scheme, _, token = value.strip(b" \t").partition(b" ")
    if scheme.lower() != _BEARER:
        return None
    token = token.lstrip(b" ")
    if not token:
        raise InvalidTokenError("The Bearer token is empty")
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidTokenError("The token is too large")
    if b" " in token or b"\t" in token:
        raise InvalidTokenError("The Bearer token is malformed")
    return token


def take_subprotocol_token(scope: Scope, marker: str | None) -> bytes | None:
    """The token offered after the marker subprotocol; removes both from the scope."""
    offered = scope.get("subprotocols")
    if not marker or not offered or marker not in offered:
        return None
    offered = list(offered)
    at = offered.index(marker)
    if at + 1 >= len(offered) or offered.count(marker) > 1:
        raise InvalidRequestError("The bearer subprotocol must be followed by the token")
    token = offered[at + 1]
    scope["subprotocols"] = offered[:at] + offered[at + 2 :]
    _drop_from_header(scope, marker)
    return _plain_token(token)


def drop_subprotocol_token(scope: Scope, marker: str | None) -> bool:
    """Where credentials are not read: whether the marker was offered; removes each marker
    and whatever follows it from the scope unjudged, so that no token reaches the app."""
    offered = scope.get("subprotocols")
    if not marker or not offered or marker not in offered:
        return False
    scope["subprotocols"] = _without_tokens(offered, marker)
    _drop_from_header(scope, marker)
    return True


def _without_tokens(offered: Iterable[_Name], marker: _Name) -> list[_Name]:
    """`offered` without each marker and the name that follows it."""
    kept: list[_Name] = []
    names = iter(offered)
    for name in names:
        if name == marker:
            next(names, None)
        else:
            kept.append(name)
    return kept


def _drop_from_header(scope: Scope, marker: str) -> None:
    """Each marker and what follows it out of the `Sec-WebSocket-Protocol` lines of
    `scope["headers"]` too, which error reporters and request loggers copy as they are (they
    hide `Authorization`, not this). What is left stays in one line where the first was. The
    server's own list is not changed, and it negotiates from its own parse of the header."""
    headers = scope["headers"]
    offered = [
        item
        for name, value in headers
        if name == _PROTOCOL_HEADER
        for item in (part.strip() for part in value.split(b","))
        if item
    ]
    kept = b", ".join(_without_tokens(offered, marker.encode()))
    rewritten: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if name != _PROTOCOL_HEADER:
            rewritten.append((name, value))
        elif kept:
            rewritten.append((name, kept))
            kept = b""
    scope["headers"] = rewritten


def query_token(scope: Scope, parameter: str | None) -> bytes | None:
    """The token in the query parameter, None when absent; takes it out of the scope."""
    values = drop_query_token(scope, parameter)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequestError(f"More than one {parameter} parameter")
    return _plain_token(values[0])


def drop_query_token(scope: Scope, parameter: str | None) -> list[str]:
    """The values of the query parameter, each taken out of `scope["query_string"]` with its
    name, the rest left as it was sent: an app's URL, which error reporters record, and the
    server's own log line of the handshake, written from the same scope, carry no token."""
    query = scope.get("query_string")
    if not parameter or not query:
        return []
    values: list[str] = []
    kept: list[bytes] = []
    # Split as parse_qsl splits, names decoded as it decodes them (`access%5Ftoken`).
    for field in query.split(b"&"):
        name, _, value = field.partition(b"=")
        if field and unquote_plus(name.decode("latin-1")) == parameter:
            values.append(unquote_plus(value.decode("latin-1")))
        else:
            kept.append(field)
    if values:
        scope["query_string"] = b"&".join(kept)
    return values


def websocket_token(
    scope: Scope, subprotocol_token: bytes | None, query_parameter: str | None
) -> bytes | None:
    """The one token of a WebSocket handshake, from whichever place carries it."""
    found = [
        token
        for token in (
            authorization_token(scope),
            subprotocol_token,
            query_token(scope, query_parameter),
        )
        if token is not None
    ]
    if len(found) > 1:
        raise InvalidRequestError("The token was presented in more than one way")
    return found[0] if found else None


def _plain_token(token: object) -> bytes:
    if not isinstance(token, str) or not token:
        raise InvalidTokenError("The token is empty")
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidTokenError("The token is too large")
    if not token.isascii() or not token.isprintable() or " " in token:
        raise InvalidTokenError("The token is malformed")
    return token.encode("ascii")

"""Cross-site request forgery: in browser mode, a state-changing request must come from a
page of the app's own origin, or of an origin listed in S3AUTH_ALLOWED_ORIGINS.

In browser mode (S3AUTH_REFRESH_COOKIE) the browser holds credentials the page does not
send itself: the refresh cookie and the device cookie. Another site's page could make the
browser post to `/refresh` or `/logout` with them, or post a login whose answer plants the
attacker's session in the browser (login CSRF). The cookies are SameSite=Strict, which
already keeps them off cross-site requests in current browsers; this check is the second,
independent layer OWASP's CSRF cheat sheet asks for, and the one that stops login CSRF,
where no cookie is needed at all.

It applies to every operation whose method is unsafe (POST, PUT, PATCH, DELETE: what the
table declares), whatever its access, and to none in API mode, where no cookie carries a
credential. But for one: the device cookie, set by every login. A login that another
site's page made in the owner's browser (login CSRF, into an account of the attacker's)
would replace the owner's, and with it the owner's way in during a flood; so in API mode a
login that this check would refuse is answered, but sets no device cookie.

A request is decided by the headers browsers set and page scripts cannot:

1. `Sec-Fetch-Site` (Fetch Metadata; every current browser): `same-origin` and `none` (the
   user's own navigation) pass; `same-site` (a sibling such as app.example.com) passes
   when its `Origin` is listed; `cross-site` and anything unknown are refused, whatever the
   `Origin`.
2. Else `Origin`: it must be the request's own origin (the scope's scheme and the `Host`
   header, default ports dropped) or a listed one. `Origin: null` (sandboxed frames,
   `data:` pages, some redirects) is refused.
3. Neither header, with the refresh cookie: refused, unless `Referer` is of an origin that
   `Origin` could pass with (OWASP's fallback). Every browser in use sends `Origin` on
   every POST, PUT, PATCH and DELETE, same-origin ones included, and `Sec-Fetch-Site`;
   a request that carries the browser's credential without either was sent by something
   that withholds them (an old browser, an extension, a proxy that strips them), which
   OWASP's cheat sheet says to block. A client that is not a browser sends its refresh
   token in the body, not in the cookie.
4. Neither header, without the refresh cookie: allowed. Browsers send `Origin` on every
   cross-origin unsafe request, from forms and scripts alike, so the request comes from a
   client that is not a browser (curl, a server, a mobile app), which has no victim's
   cookies to abuse. `Referer` is not consulted: pages may withhold it (the demo's
   `Referrer-Policy: no-referrer`), and it would decide nothing the two above do not.

An `Origin`, a `Host` or a `Referer`'s origin longer than `ORIGIN_MAX` is no origin, and
is not parsed.

The own origin is computed from the request. Behind a proxy that rewrites `Host`, or that
terminates TLS without the server restoring the scheme (uvicorn's `--proxy-headers` for a
trusted proxy), it is not the origin the browser sees: list the public origin in
S3AUTH_ALLOWED_ORIGINS. Browsers that send `Sec-Fetch-Site: same-origin` pass either way.
"""

from __future__ import annotations

import re

from starlette.requests import Request

from ..problems import echoed
from ..settings import S3AuthSettings, env_name, normalise_origin
from ..types import Scope
from .cookies import REFRESH_COOKIE, cookie_values
from .errors import CrossOriginRequestError

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
"""The methods that change state (RFC 9110 §9.2.1: all but the safe ones)."""
PASSING_FETCH_SITES = frozenset({"same-origin", "none"})
ORIGIN_MAX = 1024
"""The longest `Origin` (or `Host`, with its scheme, or origin of a `Referer`) parsed: a host
name has 253 characters at most, and a header of megabytes, parsed, held the event loop
0.1 s. A longer one is no origin."""
URL_ORIGIN = re.compile(r"([^:/?#\s]*://[^/?#\s]*)(?:[/?#]\S*)?")
"""A URL, its scheme and authority the first group: what of a `Referer` an origin is made
of. No white space: a `Referer` sent twice, joined (`_header`), is no URL."""


class OriginCheck:
    """Refuses, in browser mode, state-changing requests made by other sites' pages."""

    def __init__(self, settings: S3AuthSettings) -> None:
        self.enabled = settings.refresh_cookie
        # Settings have validated each one; normalised, they compare as browsers send them.
        self.allowed = frozenset(normalise_origin(o) for o in settings.allowed_origins)

    def applies_to(self, method: str) -> bool:
        """Whether requests with `method` are checked: what the OpenAPI document declares."""
        return self.enabled and method in UNSAFE_METHODS

    def check(self, scope: Scope) -> None:
        """CrossOriginRequestError unless the request may come from where it says it does."""
        refusal = self.refusal(scope)
        if refusal is not None:
            raise refusal

    def refusal(self, scope: Scope) -> CrossOriginRequestError | None:
        """What `check` raises for this request, in either mode; None when it passes. In
        API mode the login asks it too, before it sets the device cookie: a login made by
        another site's page must not replace the owner's (see the module)."""
        fetch_site = _header(scope, b"sec-fetch-site")
        origin = _header(scope, b"origin")
        if fetch_site is not None:
            site = fetch_site.lower()
            if site in PASSING_FETCH_SITES:
                return None
            if site != "same-site":
                return CrossOriginRequestError(
                    f"Sec-Fetch-Site: {echoed(fetch_site)}: a page of another site sent this"
                )
            if origin is None or not self._listed(origin):
                return CrossOriginRequestError(
                    "Sec-Fetch-Site: same-site, from an origin not listed in "
                    f"{env_name('allowed_origins')}"
                )
            return None
        if origin is None:
            return self._headerless_refusal(scope)
        if self._allowed(origin, scope):
            return None
        return CrossOriginRequestError(
            f"Origin {echoed(origin)!r} is neither this app's nor listed in "
            f"{env_name('allowed_origins')}"
        )

    def _headerless_refusal(self, scope: Scope) -> CrossOriginRequestError | None:
        """A request with neither header: refused when it carries the refresh cookie and
        no `Referer` of an allowed origin (see the module)."""
        if not self.enabled or not cookie_values(Request(scope), REFRESH_COOKIE):
            return None
        referer = _header(scope, b"referer")
        if referer is not None:
            found = URL_ORIGIN.fullmatch(referer)
            if found is not None and self._allowed(found[1], scope):
                return None
        return CrossOriginRequestError(
            f"The {REFRESH_COOKIE} cookie was sent without Origin or Sec-Fetch-Site, which "
            "every browser sends, and without a Referer of this app's origin or of one "
            f"listed in {env_name('allowed_origins')}. A client that is not a browser "
            "sends its refresh token in the body"
        )

    def _allowed(self, origin: str, scope: Scope) -> bool:
        """Whether a page of `origin` may send state-changing requests: it is the app's own
        (`own_origin`) or listed. The one judgement of `Origin` and of `Referer`."""
        normalised = _normalised(origin)
        return normalised is not None and (
            normalised in self.allowed or normalised == own_origin(scope)
        )

    def _listed(self, origin: str) -> bool:
        return _normalised(origin) in self.allowed


def own_origin(scope: Scope) -> str | None:
    """The origin the request was sent to: the scope's scheme and the `Host` header (the
    server address without one). None when they do not make an origin."""
    scheme = str(scope.get("scheme") or "http")
    host = _header(scope, b"host")
    if host is None:
        server = scope.get("server")
        if not server or server[1] is None:
            return None
        host = f"[{server[0]}]:{server[1]}" if ":" in server[0] else f"{server[0]}:{server[1]}"
    return _normalised(f"{scheme}://{host}")


def _normalised(origin: str) -> str | None:
    if len(origin) > ORIGIN_MAX:
        return None
    try:
        return normalise_origin(origin)
    except ValueError:  # `null`, or garbage: no origin that could be allowed
        return None


def _header(scope: Scope, name: bytes) -> str | None:
    """The header's value. Sent twice, its values are joined with commas as HTTP combines
    fields (RFC 9110 §5.3), which makes no valid origin or site: refused, not either one."""
    values = [bytes(v).decode("latin-1").strip() for k, v in scope.get("headers", ()) if k == name]
    return ", ".join(values) if values else None

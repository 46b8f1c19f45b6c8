"""A session's device as a person reads it: "Chrome on Linux" from the User-Agent header the
session was started with, read by ua-parser (the rules of uap-core, maintained with it in
`ua-parser-builtins`), so the demo keeps no regular expressions of its own. ua-parser's
default parser caches what it has read, by User-Agent; it is asked for the browser and the
system only, since reading the device too would take two fifths more of each read."""

from __future__ import annotations

from ..errors import ConfigurationError

try:
    import ua_parser
except ImportError:  # installed without the extra, but with uvicorn
    raise ConfigurationError("the demo needs ua-parser: pip install 's3auth_asgi[demo]'") from None

UNKNOWN_DEVICE = "Unknown device"
BROWSER_AND_SYSTEM = ua_parser.Domain.USER_AGENT | ua_parser.Domain.OS
MAX_PRODUCT_LENGTH = 40
"""Of a client named by its first product token (`python-httpx/0.28` → `python-httpx`)."""


def device_name(user_agent: str | None) -> str:
    """The device as "Browser on OS" when the User-Agent names both; the browser, or
    "A browser on OS", when it names one; else its first product token (a script, curl);
    "Unknown device" without one."""
    if not user_agent or not user_agent.strip():
        return UNKNOWN_DEVICE
    parsed = ua_parser.parser(user_agent, BROWSER_AND_SYSTEM)
    browser = _family(parsed.user_agent)
    system = _family(parsed.os)
    if browser and system:
        return f"{browser} on {system}"
    if system:
        return f"A browser on {system}"
    if browser:
        return browser
    product = user_agent.strip().split()[0].split("/")[0]
    return product[:MAX_PRODUCT_LENGTH] or UNKNOWN_DEVICE


def _family(found: ua_parser.UserAgent | ua_parser.OS | None) -> str | None:
    # ua-parser names what no rule matched "Other".
    if found is None or not found.family or found.family == "Other":
        return None
    return found.family

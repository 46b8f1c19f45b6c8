"""The forms of a request's path that a framework may route it as: relative to
`root_path` (as a whole when it lies outside `root_path`, as Starlette then routes it),
with `//`, `.` and `..` segments resolved, and without its trailing slashes (Litestar
strips them); with `//` merged but dot segments kept (Litestar's route to
`/files/{name}/admin` takes `//files//..//admin`, `name` being `..`); an absolute-form
target (`http://host/admin`, which some servers pass on as the path) also by its path.
`forms_as_received` gives the same forms of `raw_path` where routing into a mount
rewrote `path`.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes, urlsplit

from .types import Scope


def route_forms(scope: Scope) -> tuple[str, ...]:
    """Every form of the request's path that a framework may route it as, the path the
    app's routes see first (see the module); none when the scope has no path."""
    path = scope.get("path")
    if not isinstance(path, str):
        return ()
    forms = [route_path(scope) or path or "/"]
    if not forms[0].startswith("/"):
        # An absolute-form target (RFC 9112 §3.2.2), passed on by some servers as the path.
        target = urlsplit(forms[0]).path if "://" in forms[0] else ""
        if target.startswith("/"):
            forms.append(target)
    for form in list(forms):
        if form.startswith("/"):
            resolved = normalise(form)
            forms += [resolved, resolved.rstrip("/") or "/"]
            if "//" in form:
                # Litestar merges empty segments but leaves dot segments to its routes.
                forms.append("/" + "/".join(filter(None, form.split("/"))))
    return tuple(dict.fromkeys(forms))


def received_forms(scope: Scope) -> tuple[str, ...]:
    """`route_forms`, and `forms_as_received`."""
    return tuple(dict.fromkeys(route_forms(scope) + forms_as_received(scope)))


def forms_as_received(scope: Scope) -> tuple[str, ...]:
    """The `route_forms` of the path as the server received it (`raw_path`,
    percent-decoded), when that differs from `path`; none otherwise. A framework may route
    into a mount by rewriting `path` to what lies below it and record the mount nowhere
    else (Litestar's `is_mount`, before the app's middleware list runs), leaving `raw_path`
    as it was."""
    raw_path = scope.get("raw_path")
    if not isinstance(raw_path, bytes):
        return ()
    received = unquote_to_bytes(raw_path).decode("utf-8", "replace")
    if received == scope.get("path"):
        return ()
    return route_forms({"path": received, "root_path": scope.get("root_path")})


def route_path(scope: Scope) -> str | None:
    """The path relative to `root_path`; None when the path lies outside it."""
    path = scope.get("path")
    if not isinstance(path, str):
        return None
    root_path = scope.get("root_path")
    if not root_path:
        return path or "/"
    if not isinstance(root_path, str) or not path.startswith(root_path):
        return None
    if len(path) == len(root_path):
        return "/"
    return path[len(root_path) :] if path[len(root_path)] == "/" else None


def is_suspicious(path: str) -> bool:
    """True for a path the app may read differently from us."""
    return not path.startswith("/") or not path.isprintable() or "\\" in path or "%" in path


def normalise(path: str) -> str:
    """Resolve `.`/`..` segments and collapse empty ones (RFC 3986 §5.2.4, plus `//`)."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    resolved = "/" + "/".join(segments)
    last = path.rsplit("/", 1)[-1]
    if segments and (path.endswith("/") or last in (".", "..")):
        resolved += "/"
    return resolved

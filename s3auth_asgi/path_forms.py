"""The forms of a request's path that a framework may route it as.

Servers and frameworks disagree about `root_path`. uvicorn puts it in front of `path`,
hypercorn does not (`path` is the target as sent), and each framework takes its own route
path from the two. With `root_path="/api"`:

    path                 Starlette, FastAPI      Litestar 2                Quart (Werkzeug)
                         cut where a segment     cut after the first       cut as a plain
                         ends; else as it is     `/api` anywhere; `//`     prefix, a "/" put
                                                 merged, no trailing "/"   in front; else 404
    /api/admin           /admin                  /admin                    /admin
    /apiadmin            /apiadmin               /admin                    /admin
    /x/api/admin         /x/api/admin            /admin                    404
    http://h/api/admin   404                     /admin                    /admin, by its path
    admin                404                     /admin                    404 (/admin with no
                                                                           root_path)

With `root_path="/api/"`, `/api/admin` is `/api/admin` to Starlette and `/admin` to the
other two.

`route_forms` gives each of them, and the forms they differ in:

    relative to root_path, cut where a       the path the app's own routes see (the whole
      segment ends (`route_path`)              path when it lies outside `root_path`)
    resolved: `//`, `.`, `..`                one app routes `/health/../admin` as
                                               `/admin`, another answers 404
    without trailing slashes                 Litestar strips them
    an absolute-form target's URL path       RFC 9112 §3.2.2; hypercorn and uvicorn's h11
                                               server pass the target on as the path
    loose forms, only ever added:
      cut after root_path anywhere           Litestar
      root_path cut as a plain prefix        Quart, Werkzeug
        (both of the path and of an absolute-form target's)
      "/" in front of a path without one     Litestar, Werkzeug
      `//` merged, dot segments kept         Litestar: `//files//..//admin` reaches
                                               `/files/{name}/admin`, `name` being `..`

`forms_as_received` gives the same forms of `raw_path`, where routing into a mount
rewrote `path`. A caller takes the strictest outcome over all forms, so a form that no
framework in front of it routes only adds the patterns that match it; the loose forms
come in only with `loose` (see `paths.PathRules` for the one place they are left out).
With no `root_path`, none of the `root_path` cuts is made.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes, urlsplit

from .types import Scope


def route_forms(scope: Scope, *, loose: bool = True) -> tuple[str, ...]:
    """Every form of the request's path that a framework may route it as, the path the
    app's routes see first (see the module); none when the scope has no path.
    `loose=False` leaves out the loose forms."""
    path = scope.get("path")
    if not isinstance(path, str):
        return ()
    forms = [route_path(scope) or path or "/"]
    target = ""
    if not forms[0].startswith("/"):
        target = _target_path(forms[0])
        if target.startswith("/"):
            forms.append(target)
        if loose:
            forms.append("/" + forms[0])
    root_path = scope.get("root_path")
    if loose and root_path and isinstance(root_path, str):
        forms += below_root(path, root_path)
        if target.startswith("/"):
            forms += below_root(target, root_path)
    for form in list(forms):
        if form.startswith("/"):
            resolved = normalise(form)
            forms += [resolved, resolved.rstrip("/") or "/"]
            if loose and "//" in form:
                forms.append(_merged(form))
    return tuple(dict.fromkeys(forms))


def below_root(path: str, root_path: str) -> list[str]:
    """What Litestar and Quart route `path` as under `root_path`, each as that framework
    writes it: a `//` that was not sent would keep the form out of an exclusion."""
    forms = []
    _, found, after = path.partition(root_path)
    if found:
        forms.append(_merged(after))
    if path.startswith(root_path):
        forms.append("/" + path[len(root_path) :].lstrip("/"))
    return forms


def received_forms(scope: Scope) -> tuple[str, ...]:
    """`route_forms`, and `forms_as_received`."""
    return tuple(dict.fromkeys(route_forms(scope) + forms_as_received(scope)))


def forms_as_received(scope: Scope, *, loose: bool = True) -> tuple[str, ...]:
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
    return route_forms({"path": received, "root_path": scope.get("root_path")}, loose=loose)


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


def _target_path(path: str) -> str:
    """The URL path of an absolute-form target; "" for any other path, and for one whose
    host does not parse (an unclosed `[`), which no framework routes by its path."""
    if "://" not in path:
        return ""
    try:
        return urlsplit(path).path
    except ValueError:
        return ""


def _merged(path: str) -> str:
    """`path` as Litestar routes it: empty segments merged, dot segments kept, one "/"
    in front and none at the end."""
    return "/" + "/".join(filter(None, path.split("/")))

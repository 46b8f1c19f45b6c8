"""The tables and synopses of the docs say what the code does: each setting's default in every
table that gives one, the auth app's rate limits, which events run which hook, every
command and option of `s3auth`, where each error imports from, the OAuth error of each
code; and the README's links, which
the site's strict build does not see, resolve. A default, a limit, a hook or an option
changed in the code alone fails here, naming the page and the row."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest
from conftest import SECRET
from test_docs_snippets import parse_blocks

from s3auth_asgi import ConfigurationError, S3AuthSettings
from s3auth_asgi.app.token_errors import TOKEN_ERRORS
from s3auth_asgi.auth_limits import DEFAULT_AUTH_LIMITS, PER_PROCESS_LIMITS
from s3auth_asgi.cli import build_parser
from s3auth_asgi.hooks import HOOK_OF_EVENT, HookName
from s3auth_asgi.settings import env_name

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@dataclass(frozen=True)
class Row:
    page: str
    line: int
    header: tuple[str, ...]
    cells: tuple[str, ...]

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def _cells(line: str) -> tuple[str, ...]:
    # A `|` inside a code span is escaped (`\|`) in these pages.
    return tuple(c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|")))


def table_rows(page: Path) -> Iterator[Row]:
    """The body rows of every Markdown table of `page`, each with its table's header."""
    name = page.relative_to(ROOT).as_posix()
    header: tuple[str, ...] | None = None
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text.startswith("|"):
            header = None
        elif header is None:
            header = _cells(text)
        elif not set(text) <= set("|-: "):
            yield Row(name, number, header, _cells(text))


def rows_of(page: str, first_header: str) -> list[Row]:
    return [row for row in table_rows(ROOT / page) if row.header[0] == first_header]


# Settings: the default column of every table that has one -------------------------------

FIELDS = {env_name(field.name): field for field in msgspec.structs.fields(S3AuthSettings)}
UNSET = ("unset", "—", "— (required)")
SAID_IN_WORDS = {
    # 0 means "computed from something else"; the row says from what.
    "S3AUTH_HASH_CONCURRENCY": "CPUs",
    "S3AUTH_HASH_QUEUE": "16 × the concurrency",
    "S3AUTH_HASH_DEVICE_QUEUE": "4 × the concurrency",
    # Unset means "decided by the store URL" (`S3AuthSettings.rate_limit_backend`).
    "S3AUTH_RATE_LIMIT_STORE": "`store` (`memory` on `memory://`)",
}


def default_of(variable: str) -> object:
    field = FIELDS[variable]
    if field.default is not msgspec.NODEFAULT:
        return field.default
    assert field.default_factory is not msgspec.NODEFAULT, variable
    return field.default_factory()


def shown(value: object) -> tuple[str, ...]:
    """How a table writes a default."""
    if value in ("", None, []):
        return UNSET
    if isinstance(value, bool):
        return (f"`{str(value).lower()}`",)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return (f"`{value}`",)


def setting_defaults() -> list[tuple[str, str, str]]:
    """(where, variable, the default the row gives) for every setting table row."""
    found = []
    for page in PAGES:
        for row in table_rows(page):
            if len(row.header) < 2 or row.header[1] != "default":
                continue
            variables = re.findall(r"`(S3AUTH_[A-Z0-9_]+)`", row.cells[0])
            if not variables:
                continue
            given = row.cells[1].split(", ") if len(variables) > 1 else [row.cells[1]]
            if len(given) == 1:
                given *= len(variables)  # one default for all (`unset`)
            assert len(given) == len(variables), f"{row.where}: one default per variable"
            found.extend((row.where, v, d) for v, d in zip(variables, given, strict=True))
    return found


SETTING_DEFAULTS = setting_defaults()


def test_every_setting_has_its_default_in_the_readme_and_the_tables_are_found() -> None:
    in_readme = {v for where, v, _ in SETTING_DEFAULTS if where.startswith("README.md:")}
    assert in_readme == set(FIELDS)
    assert {where.split(":")[0] for where, _, _ in SETTING_DEFAULTS} >= {
        "README.md",
        "docs/accounts.md",
        "docs/keys.md",
        "docs/security.md",
    }


@pytest.mark.parametrize(
    ("where", "variable", "given"),
    SETTING_DEFAULTS,
    ids=[f"{w}:{v}" for w, v, _ in SETTING_DEFAULTS],
)
def test_a_settings_table_gives_the_default_of_the_code(
    where: str, variable: str, given: str
) -> None:
    assert variable in FIELDS, f"{where}: {variable} is no setting"
    if variable in SAID_IN_WORDS:
        assert default_of(variable) in (0, None), variable
        assert given == SAID_IN_WORDS[variable], where
    else:
        assert given in shown(default_of(variable)), (
            f"{where}: {variable} defaults to {default_of(variable)!r}"
        )


def test_the_hashing_defaults_said_in_words_are_the_codes() -> None:
    from s3auth_asgi.passwords import PasswordHasher

    hasher = PasswordHasher(concurrency=3)
    assert (hasher.queue, hasher.device_queue) == (16 * 3, 4 * 3)
    assert S3AuthSettings(secret_key=SECRET, store_url="memory://").rate_limit_backend == "memory"
    assert (
        S3AuthSettings(secret_key=SECRET, store_url="file:///tmp/a").rate_limit_backend == "store"
    )


# The auth app's rate limits -------------------------------------------------------------


def test_the_endpoints_page_gives_every_auth_limit_as_the_code_has_it() -> None:
    rows = rows_of("docs/endpoints.md", "limit")
    documented = {}
    for row in rows:
        (name,) = re.findall(r"`([a-z_]+)`", row.cells[0])
        count, seconds = re.fullmatch(r"([\d,]+) per ([\d,]+) s", row.cells[1]).groups()  # type: ignore[union-attr]
        in_memory = "in each process's memory" in row.cells[2]
        documented[name] = (int(count.replace(",", "")), float(seconds.replace(",", "")), in_memory)
    assert documented == {
        name: (limit.max_requests, limit.window_seconds, name in PER_PROCESS_LIMITS)
        for name, limit in DEFAULT_AUTH_LIMITS.items()
    }


def test_the_errors_page_gives_the_oauth_error_of_each_code_as_the_code_has_it() -> None:
    rows = rows_of("docs/errors.md", "`error`")
    documented = {
        code: row.cells[0].strip("`")
        for row in rows
        for code in re.findall(r"`([a-z_]+)`", row.cells[1])
    }
    assert documented == dict(TOKEN_ERRORS)


# Hooks ----------------------------------------------------------------------------------


def test_the_accounts_page_says_which_events_run_each_hook() -> None:
    rows = rows_of("docs/accounts.md", "hook")
    documented = {
        row.cells[0].strip("`"): set(re.findall(r"`([a-z_]+)`", row.cells[1])) for row in rows
    }
    expected: dict[str, set[str]] = {name: set() for name in HookName.__args__}  # type: ignore[attr-defined]
    for event, hook in HOOK_OF_EVENT.items():
        expected[hook].add(event)
    expected["login_failed"].add("login")  # a failed login (`Hooks.hook_of`)
    # The login_failed row names example reasons besides its event.
    documented["login_failed"] &= {"login"}
    assert documented == expected


# The command ----------------------------------------------------------------------------

SHARED_OPTIONS = {"-h", "--help", "--create", "--id", "--username"}
"""Said once for every command under the synopsis, not on each line."""


def parser_commands() -> dict[str, set[str]]:
    """Each command (`user create`, `keys list`; `` for the top level) and its options."""
    found: dict[str, set[str]] = {}

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        options: set[str] = set()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}".strip())
            else:
                options.update(o for o in action.option_strings if o.startswith("--"))
        if not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions) or not path:
            found[path] = options - SHARED_OPTIONS

    walk(build_parser(), "")
    return found


def synopsis_commands() -> dict[str, set[str]]:
    """The same, from the synopsis at the top of docs/cli.md."""
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    synopsis = page.split("```\n", 2)[1]
    words = {word for path in parser_commands() for word in path.split()}
    found: dict[str, set[str]] = {}
    for line in synopsis.splitlines():
        usage = re.split(r"\s{3,}", line.strip())[0]  # the description follows 3 spaces
        for segment in usage.split(" | "):
            tokens = segment.split()
            if tokens and tokens[0] == "s3auth":
                path, tokens = "", tokens[1:]
            else:
                taken = []
                while tokens and tokens[0] in words:
                    taken.append(tokens.pop(0))
                if not taken:
                    continue  # prose
                path = " ".join(taken)
            options = set(re.findall(r"--[a-z][a-z-]*", " ".join(tokens)))
            found.setdefault(path, set()).update(options - SHARED_OPTIONS)
    return found


def test_the_cli_page_shows_every_command_with_its_options() -> None:
    assert synopsis_commands() == parser_commands()


def test_the_cli_page_says_the_shared_options() -> None:
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    synopsis = page.split("```\n", 2)[1]
    assert "also takes --create" in synopsis
    assert "(--id, --username:" in synopsis


# Errors: where each imports from ----------------------------------------------------------


def test_the_errors_page_says_where_each_error_imports_from() -> None:
    import importlib

    from test_errors import _all_errors

    page = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    tree = page.split("```")[1].splitlines()
    others = dict(re.findall(r"`(\w+Error)`\s+from\s+`(s3auth_asgi[\w.]*)`", page))
    assert len(others) >= 5  # the paragraph after the tree
    for cls in _all_errors():
        (line,) = [line for line in tree if re.search(rf"\b{cls.__name__}\b", line)]
        if "(app)" in line:
            module = "s3auth_asgi.app.errors"
        elif "(demo)" in line:
            module = "s3auth_asgi.demo.loopback"
        else:
            module = others.get(cls.__name__, "s3auth_asgi.errors")
        assert getattr(importlib.import_module(module), cls.__name__, None) is cls, (
            f"docs/errors.md: {cls.__name__} is not importable from {module}"
        )


# The README's links: the site checks its own, not the README's ---------------------------


def anchors_of(page: Path) -> set[str]:
    from markdown.extensions.toc import slugify

    text = page.read_text(encoding="utf-8")
    fenced = {
        number
        for block in parse_blocks(text, page.name)
        for number in range(block.line, block.line + block.code.count("\n") + 2)
    }
    headings = [
        line.lstrip("#").strip()
        for number, line in enumerate(text.splitlines(), 1)
        if line.startswith("#") and number not in fenced
    ]
    shown = (re.sub(r"\[([^]]*)\]\([^)]*\)", r"\1", h).replace("`", "") for h in headings)
    return {slugify(heading, "-") for heading in shown}


def test_every_link_of_the_readme_resolves() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", readme)
    assert len(links) >= 15
    for link in links:
        if link.startswith(("http://", "https://", "site/")):  # site/: what `make docs` builds
            continue
        path, _, anchor = link.partition("#")
        target = ROOT / path
        assert target.is_file(), f"README.md links to {path}, which does not exist"
        if anchor:
            assert anchor in anchors_of(target), f"README.md links to {link}: no such heading"


# What the pages show an operator typing ---------------------------------------------------


def test_a_plain_http_endpoint_shown_in_a_command_is_allowed_as_the_store_library_needs() -> None:
    """Without AWS_ALLOW_HTTP the store library refuses a plain http:// endpoint before it
    sends anything, so the command's line would not be the one the page shows."""
    shown = [
        (page.relative_to(ROOT).as_posix(), line)
        for page in PAGES
        for line in page.read_text(encoding="utf-8").splitlines()
        if line.startswith("$ ") and re.search(r"\bAWS_ENDPOINT_URL=http://", line)
    ]
    assert shown, "no command with a plain-http endpoint found"
    assert [(page, line) for page, line in shown if "AWS_ALLOW_HTTP=true" not in line] == []


@pytest.mark.parametrize("sender", ["S3AUTH_SMTP_HOST", "S3AUTH_MAIL_OUTBOX"])
def test_the_sender_rows_name_each_setting_that_needs_one(sender: str, tmp_path: Path) -> None:
    value = {"S3AUTH_SMTP_HOST": "smtp.example.com", "S3AUTH_MAIL_OUTBOX": str(tmp_path)}[sender]
    env = {
        "S3AUTH_SECRET_KEY": SECRET,
        "S3AUTH_PUBLIC_URL": "https://app.example.com",
        sender: value,
    }
    with pytest.raises(ConfigurationError, match="S3AUTH_MAIL_FROM"):
        S3AuthSettings.from_env(env)
    S3AuthSettings.from_env({**env, "S3AUTH_MAIL_FROM": "auth@example.com"})
    rows = [
        row for page in PAGES for row in table_rows(page) if row.cells[0] == "`S3AUTH_MAIL_FROM`"
    ]
    assert {row.page for row in rows} >= {"README.md", "docs/accounts.md"}
    assert [row.where for row in rows if f"`{sender}`" not in row.cells[2]] == []

"""What a store URL names, checked before anything is opened or written.

A `file://` URL names a directory on this machine: `file:///abs` or RFC 8089's
`file://localhost/abs`, or one relative to the current directory (`file://./dir`, any first
segment starting with a dot) or to the home directory (`file://~/dir`). A URL left with no
directory (`file://$DIR` with DIR unset) or naming another host is refused: it used to
become the current directory, or a directory named after the host inside it. An object
store URL with no bucket or container says that one is needed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SECRET
from hypothesis import given, settings
from hypothesis import strategies as st

from s3auth_asgi import ConfigurationError, S3AuthSettings
from s3auth_asgi.cli import failures
from s3auth_asgi.storage import ObjectStore
from s3auth_asgi.storage.urls import check_store_url, file_url, local_path

pytestmark = pytest.mark.anyio
PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory, where no store may appear unless one is named there."""
    directory = tmp_path / "cwd"
    directory.mkdir()
    monkeypatch.chdir(directory)
    return directory


def files_under(directory: Path) -> list[str]:
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*"))


@pytest.mark.parametrize("url", ["file://", "file:///", "file://localhost", "file://localhost/"])
async def test_a_file_url_naming_no_directory_is_refused(cwd: Path, url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ObjectStore.from_url(url)
    message = str(info.value)
    assert message.startswith("S3AUTH_STORE_URL: ")
    assert "names no directory" in message and "file://./" in message
    assert files_under(cwd) == []


@pytest.mark.parametrize("host", ["localhost", "LocalHost"])
async def test_file_localhost_is_an_absolute_path(cwd: Path, tmp_path: Path, host: str) -> None:
    root = tmp_path / "absolute" / "store"
    store = ObjectStore.from_url(f"file://{host}{root}")
    await store.create("users/a.json", {"n": 1})
    assert (root / "users" / "a.json").is_file()
    got = await ObjectStore.from_url(f"file://{root}").get("users/a.json", dict)
    assert got is not None and got.value == {"n": 1}
    assert files_under(cwd) == []


async def test_a_file_url_naming_another_host_is_refused(cwd: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        ObjectStore.from_url("file://fileserver/srv/auth")
    message = str(info.value)
    assert message.startswith("S3AUTH_STORE_URL: ")
    assert "'fileserver'" in message and "file://./" in message
    assert files_under(cwd) == []


@pytest.mark.parametrize("user_info", ["u:PASS@", "u:PASS@x@", "PASS@"])
def test_a_refused_file_host_is_named_without_its_user_info(user_info: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ObjectStore.from_url(f"file://{user_info}fileserver/srv")
    message = str(info.value)
    assert "'fileserver' is read as a host" in message
    assert "PASS" not in message and "@" not in message
    with pytest.raises(ConfigurationError) as settings_said:
        S3AuthSettings(store_url=f"file://{user_info}fileserver/srv", secret_key=SECRET)
    assert "PASS" not in str(settings_said.value)


@pytest.mark.parametrize(
    ("url", "directory"),
    [
        ("file://./.auth", ".auth"),
        ("file://./data/auth", "data/auth"),
        ("file://.auth", ".auth"),
        ("file://.", "."),
    ],
)
async def test_the_relative_forms_are_under_the_current_directory(
    cwd: Path, url: str, directory: str
) -> None:
    store = ObjectStore.from_url(url)
    await store.create("users/a.json", {"n": 1})
    assert (cwd / directory / "users" / "a.json").is_file()


async def test_a_tilde_is_the_home_directory(
    cwd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    store = ObjectStore.from_url("file://~/auth")
    await store.create("users/a.json", {"n": 1})
    assert (home / "auth" / "users" / "a.json").is_file()
    assert files_under(cwd) == []


def test_the_command_refuses_an_empty_file_url_and_writes_nothing(cwd: Path) -> None:
    """The command line as run with `S3AUTH_STORE_URL=file://$AUTH_DIR`, AUTH_DIR unset."""
    (cwd / "app.py").write_text("print('my app')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("S3AUTH_", "AWS_"))}
    env.update(S3AUTH_SECRET_KEY=SECRET, S3AUTH_STORE_URL="file://")
    # Run elsewhere than the project's root, the command imports this package from there.
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT), *filter(None, [env.get("PYTHONPATH")])])
    commands = (["check"], ["user", "create", "alice", "--email", "a@example.com",
                            "--password-stdin"])  # fmt: skip
    for argv in commands:
        run = subprocess.run(
            [sys.executable, "-m", "s3auth_asgi.cli", *argv], input="Abcdefgh1234!\n",
            env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert run.returncode == failures.CONFIGURATION, (argv, run)
        assert "S3AUTH_STORE_URL" in run.stdout + run.stderr, (argv, run)
        assert "Traceback" not in run.stderr, (argv, run)
    assert files_under(cwd) == ["app.py"]


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("s3://", "s3:// names no bucket; use s3://bucket/prefix"),
        ("s3:///auth", "s3:// names no bucket; use s3://bucket/prefix"),
        ("s3a://", "s3a:// names no bucket; use s3a://bucket/prefix"),
        ("gs://", "gs:// names no bucket; use gs://bucket/prefix"),
        ("az://", "az:// names no container; use az://container/prefix"),
        ("abfss://", "abfss:// names no container"),
    ],
)
def test_an_object_store_url_without_a_bucket_says_one_is_needed(url: str, named: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ObjectStore.from_url(url)
    assert str(info.value).startswith(f"S3AUTH_STORE_URL: {named}")
    assert "not supported" not in str(info.value)


def test_an_unknown_scheme_is_still_not_supported() -> None:
    with pytest.raises(ConfigurationError) as info:
        ObjectStore.from_url("ftp://host/auth")
    assert str(info.value).startswith("S3AUTH_STORE_URL: the scheme ftp:// is not supported")


@pytest.mark.parametrize(
    "url",
    [
        "foo://bar",
        "ftp://host/auth",
        "http://host/bucket",
        "s3://",
        "s3:///auth",
        "az://",
        "file://",
        "file:///",
        "file://www.example.com/auth",
    ],
)
def test_a_url_the_store_refuses_is_refused_when_the_settings_are_made(cwd: Path, url: str) -> None:
    """By the store's own rule, with its very message: a process stops when it makes its
    settings, and `s3auth check` says so, rather than at the first request."""
    with pytest.raises(ConfigurationError) as opening:
        ObjectStore.from_url(url)
    with pytest.raises(ConfigurationError) as making:
        S3AuthSettings(secret_key=SECRET, store_url=url)
    assert str(making.value) == str(opening.value)
    assert files_under(cwd) == []


def test_the_settings_open_no_store(tmp_path: Path) -> None:
    """Judging the URL opens nothing: no directory is made, no bucket is asked for."""
    root = tmp_path / "parent" / "store"
    assert S3AuthSettings(secret_key=SECRET, store_url=f"file://{root}").store_url
    assert not (tmp_path / "parent").exists()
    for url in ("s3://no-such-bucket-here/auth", "gs://b/auth", "az://c/auth", "memory://"):
        assert S3AuthSettings(secret_key=SECRET, store_url=url).store_url == url


@settings(max_examples=300, deadline=None)
@given(
    names=st.lists(
        st.one_of(
            # No lone surrogates: a name the file system gives back is always encodable.
            st.text(
                st.characters(exclude_categories=("Cs",), exclude_characters="/\x00"),
                min_size=1,
                max_size=12,
            ),
            st.binary(min_size=1, max_size=6).map(os.fsdecode).filter(lambda n: "/" not in n),
        ).filter(lambda n: n not in (".", "..") and "\x00" not in n),
        min_size=1,
        max_size=4,
    )
)
def test_a_file_url_made_from_a_path_names_that_path(names: list[str]) -> None:
    """`file_url` and `local_path` are each other's inverse, whatever a path's names hold:
    `%41`, `#`, `?`, spaces, `~`, bytes that are not UTF-8."""
    path = Path("/", *names)
    url = file_url(path)
    assert url.startswith("file:///")
    assert local_path(url) == path
    assert check_store_url(url) == path

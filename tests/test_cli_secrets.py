"""What the `s3auth` command prints of what the store library said: never the user info of
a URL in it (an endpoint given as `http://user:password@host`) nor its query string (a
signature, a SAS token). Run as subprocesses against a loopback port nothing listens on."""

from __future__ import annotations

import logging

import pytest
from test_cli_failures import assert_failure, concurrently, free_port, s3_environment

from s3auth_asgi.cli import failures
from s3auth_asgi.shown_urls import redact_urls
from s3auth_asgi.storage.unavailable import READ_FAILED, unavailable

SECRET_WORD = "Hunter2Secret"


def test_store_errors_never_show_the_endpoints_credentials() -> None:
    port = free_port()
    env = s3_environment(port)
    env["AWS_ENDPOINT_URL"] = f"http://operator:{SECRET_WORD}@127.0.0.1:{port}"
    # Refused at once, retried for a second (how long is not what is tested).
    jobs = (["user", "list"], env, None), (["check"], env, None)
    listed, checked = concurrently(*jobs, retry_window=1)
    assert_failure(listed, failures.UNAVAILABLE, "could not be read", "Connection refused",
                   f"http://…@127.0.0.1:{port}/bucket ")  # fmt: skip
    assert checked.code == failures.UNAVAILABLE, checked
    assert "[FAIL] reachable" in checked.out and f"…@127.0.0.1:{port}" in checked.out
    for said in (listed.err, checked.out + checked.err):
        assert SECRET_WORD not in said and "operator" not in said
        assert "list-type" not in said  # the query string is left out


@pytest.mark.parametrize(("said", "shown"), [
    ("GET http://u:p@host:9/b?list-type=2&prefix=a after 3 retries",
     "GET http://…@host:9/b after 3 retries"),
    ("url: \"https://acct.blob.core.windows.net/c/k?sv=2021&sig=abc%2F\", x",
     "url: \"https://acct.blob.core.windows.net/c/k\", x"),
    ("at https://user%40corp:p%3Aw@s3.example.com (again: HTTPS://a:b@c/d#frag)",
     "at https://…@s3.example.com (again: HTTPS://…@c/d)"),
    ("no URL here, only an@address and ?x=1", "no URL here, only an@address and ?x=1"),
    ("http://host/path/a@b and http://host/?q=a@b", "http://host/path/a@b and http://host/"),
])  # fmt: skip
def test_redact_urls(said: str, shown: str) -> None:
    assert redact_urls(said) == shown


def test_the_log_of_a_failed_request_holds_no_credentials(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cause = OSError(f"Error performing GET http://u:{SECRET_WORD}@h/b?X-Amz-Signature=s1")
    with caplog.at_level(logging.WARNING, logger="s3auth_asgi.storage"):
        unavailable("GET", "users/x.json", cause, READ_FAILED)
    assert "GET http://…@h/b" in caplog.text
    assert SECRET_WORD not in caplog.text and "X-Amz-Signature" not in caplog.text

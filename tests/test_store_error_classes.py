"""Every error class obstore exports, raised by each request `ObjectStore` makes over the
network, becomes what the callers handle: a StoreUnavailableError (503), StoreConflict for
a refused conditional write, None or nothing for a missing object; never anything else,
which the auth app would answer as a 500.

The classes are read from `obstore.exceptions` itself, so a class a new obstore release
adds is tested too. The requests go through obstore's own functions on a memory:// store
(which takes the network path of `ObjectStore`), made to raise each class in turn.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import obstore
import obstore.exceptions
import pytest

from s3auth_asgi import StoreUnavailableError
from s3auth_asgi.storage import ObjectStore, StoreConflict
from s3auth_asgi.storage.unavailable import RedactedStoreError

pytestmark = pytest.mark.anyio

OBSTORE_ERRORS = sorted(
    (
        cls
        for _, cls in inspect.getmembers(obstore.exceptions, inspect.isclass)
        if issubclass(cls, obstore.exceptions.BaseError)
    ),
    key=lambda cls: cls.__name__,
)
"""Every class obstore raises of its own, the deprecated NotFoundError among them."""
BUILTIN_ERRORS = [FileNotFoundError, ValueError, OSError, TimeoutError, ConnectionError]
"""What obstore raises besides: FileNotFoundError for a missing object, ValueError for an
argument it refuses, and the operating system's errors."""
CONFLICTS = {
    "create": (obstore.exceptions.AlreadyExistsError, obstore.exceptions.PreconditionError)
}
CONFLICTS["replace"] = (*CONFLICTS["create"], FileNotFoundError)
MISSING = {"get": None, "delete": 1, "list": []}
"""What each request that reads or deletes answers when obstore says the object is not
there (FileNotFoundError without a missing bucket in it)."""


def test_the_obstore_classes_are_found() -> None:
    names = {cls.__name__ for cls in OBSTORE_ERRORS}
    assert {"GenericError", "AlreadyExistsError", "PreconditionError", "NotFoundError"} <= names
    assert {"NotModifiedError", "PermissionDeniedError", "UnauthenticatedError"} <= names


def _failing(error: BaseException) -> Callable[..., Any]:
    async def call(*args: Any, **kwargs: Any) -> Any:
        raise error

    return call


def _failing_listing(error: BaseException) -> Callable[..., AsyncIterator[Any]]:
    def listing(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        async def pages() -> AsyncIterator[Any]:
            raise error
            yield  # an async generator, as obstore's listing is iterated

        return pages()

    return listing


async def _listed(store: ObjectStore) -> list[Any]:
    return [info async for info in store.list("users/")]


REQUESTS: dict[str, tuple[str, Callable[[ObjectStore], Awaitable[Any]]]] = {
    "get": ("get_async", lambda s: s.get("users/a.json", dict)),
    "create": ("put_async", lambda s: s.create("users/a.json", {"n": 1})),
    "replace": ("put_async", lambda s: s.replace("users/a.json", {"n": 2}, '"etag"')),
    "delete": ("delete_async", lambda s: s.delete_many(["users/a.json"])),
    "list": ("list", _listed),
}


@pytest.mark.parametrize("request_name", REQUESTS)
@pytest.mark.parametrize("error_class", OBSTORE_ERRORS + BUILTIN_ERRORS, ids=lambda c: c.__name__)
async def test_each_error_class_becomes_an_error_the_callers_handle(
    request_name: str,
    error_class: type[Exception],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    function, call = REQUESTS[request_name]
    error = error_class("the store said no: https://host/b/k?X-Amz-Signature=SECRETSIG")
    raising = _failing_listing(error) if function == "list" else _failing(error)
    monkeypatch.setattr(obstore, function, raising)
    store = ObjectStore.from_url("memory://")
    if error_class in CONFLICTS.get(request_name, ()):
        with pytest.raises(StoreConflict):
            await call(store)
    elif error_class is FileNotFoundError and request_name in MISSING:
        assert await call(store) == MISSING[request_name]
    else:
        with pytest.raises(StoreUnavailableError) as info:
            await call(store)
        assert type(info.value) is StoreUnavailableError
        assert info.value.status == 503
        assert "SECRETSIG" not in info.value.detail
        # What obstore said, without the signature its URL carried.
        cause = info.value.__cause__
        assert isinstance(cause, RedactedStoreError)
        assert cause.kind == error_class.__name__
        assert cause.said == "the store said no: https://host/b/k"
        assert "the store said no" in caplog.text  # for the operator
    assert "SECRETSIG" not in caplog.text
    assert sum(store.requests.values()) == 1

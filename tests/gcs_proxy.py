"""A GCS front for fake-gcs-server: obstore speaks the XML API of Google Cloud Storage, of
which fake-gcs-server answers too little, so this translates each request into its JSON API.

    python tests/gcs_proxy.py http://127.0.0.1:<fake-gcs-server port>

listens on a free port of 127.0.0.1, prints that port on one line, and serves until it is
killed. What it stands in for, and what it leaves to fake-gcs-server:

- PUT of an object, with `x-goog-if-generation-match` (0: only if absent; N: only if the
  object is at generation N): sent as a multipart upload with `ifGenerationMatch`, the one
  upload of fake-gcs-server that honours the condition; answered with the new object's
  `ETag` and `x-goog-generation`, or 412. fake-gcs-server checks the condition and writes
  under one lock, so whether a write wins is its decision, not the proxy's.
- GET and HEAD of an object: its download endpoint, which answers GCS's headers itself.
- DELETE of an object: its JSON delete (404 when absent, as on GCS).
- LIST (`?list-type=2` with `prefix`, `start-after`, `continuation-token`, `max-keys`): read
  from its JSON listing and answered as GCS's XML listing, in pages of at most 1,000 keys
  (GCS's page size), the continuation token being the last key of the page.

A 404 for a bucket that does not exist is answered as GCS answers it, `NoSuchBucket`, and
for an object that does not exist `NoSuchKey` (fake-gcs-server's 404s do not tell them
apart, so the proxy asks it for the bucket).

It counts the requests it serves per bucket and kind (`GET /_proxy/requests?bucket=NAME`:
get, put, delete, list), so a test can compare them with what `ObjectStore` counted. No
tests here.
"""

from __future__ import annotations

import base64
import collections
import http.client
import json
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit
from xml.sax.saxutils import escape

PAGE_SIZE = 1000
GENERATION_MATCH = "x-goog-if-generation-match"


class Proxy(ThreadingHTTPServer):
    daemon_threads = True
    # The races open dozens of connections at once; with the default backlog of 5 the
    # kernel drops the rest, and each of those waits a second for its SYN to be resent.
    request_queue_size = 128

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.counts: dict[str, collections.Counter[str]] = {}
        self.lock = threading.Lock()

    def count(self, bucket: str, kind: str) -> None:
        with self.lock:
            self.counts.setdefault(bucket, collections.Counter())[kind] += 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as obstore's client expects
    server: Proxy
    _connection: http.client.HTTPConnection | None = None

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no line per request on stderr

    # What obstore sends: /{bucket}/{object, percent-encoded} or /{bucket}?list-type=2.
    def _target(self) -> tuple[str, str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        bucket, _, name = parts.path.lstrip("/").partition("/")
        return unquote(bucket), unquote(name), parse_qs(parts.query)

    def _upstream(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        for attempt in (1, 2):  # a kept-alive connection the server closed is opened again
            if self._connection is None:
                self._connection = http.client.HTTPConnection(*self.server.upstream, timeout=30)
            try:
                self._connection.request(method, path, body=body, headers=headers or {})
                response = self._connection.getresponse()
                return response.status, response.headers, response.read()
            except (http.client.HTTPException, OSError):
                self._connection.close()
                self._connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _answer(
        self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str) -> None:
        xml = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code></Error>"
        self._answer(status, xml.encode(), {"Content-Type": "application/xml"})

    def _not_found(self, bucket: str) -> None:
        status, _, _ = self._upstream("GET", f"/storage/v1/b/{quote(bucket, safe='')}")
        self._error(404, "NoSuchBucket" if status == 404 else "NoSuchKey")

    def do_PUT(self) -> None:
        bucket, name, _ = self._target()
        self.server.count(bucket, "put")
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        query = f"uploadType=multipart&name={quote(name, safe='')}"
        if (generation := self.headers.get(GENERATION_MATCH)) is not None:
            query += f"&ifGenerationMatch={quote(generation)}"
        boundary = uuid.uuid4().hex
        body = b"".join(
            [
                f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode(),
                json.dumps({"name": name}).encode(),
                f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n".encode(),
                data,
                f"\r\n--{boundary}--\r\n".encode(),
            ]
        )
        status, _, answer = self._upstream(
            "POST",
            f"/upload/storage/v1/b/{quote(bucket, safe='')}/o?{query}",
            body,
            {"Content-Type": f"multipart/related; boundary={boundary}"},
        )
        if status == 412:
            return self._error(412, "PreconditionFailed")
        if status == 404:
            return self._not_found(bucket)
        if status != 200:
            return self._answer(status, answer)
        written = json.loads(answer)
        headers = {"ETag": f'"{written["etag"]}"', "x-goog-generation": str(written["generation"])}
        self._answer(200, b"", headers)

    def do_GET(self) -> None:
        bucket, name, query = self._target()
        if bucket == "_proxy":
            with self.server.lock:
                counts = dict(self.server.counts.get(query["bucket"][0], {}))
            return self._answer(200, json.dumps(counts).encode())
        if not name:
            return self._list(bucket, query)
        self.server.count(bucket, "get")
        path = f"/download/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}"
        status, headers, body = self._upstream(self.command, path)
        if status == 404:
            return self._not_found(bucket)
        kept = ("ETag", "Last-Modified", "X-Goog-Generation", "Content-Type")
        self._answer(status, body, {key: headers[key] for key in kept if key in headers})

    do_HEAD = do_GET

    def do_DELETE(self) -> None:
        bucket, name, _ = self._target()
        self.server.count(bucket, "delete")
        path = f"/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}"
        status, _, body = self._upstream("DELETE", path)
        if status == 404:
            return self._not_found(bucket)
        self._answer(204 if status in (200, 204) else status, b"" if status < 300 else body)

    def _list(self, bucket: str, query: dict[str, list[str]]) -> None:
        self.server.count(bucket, "list")
        prefix = query.get("prefix", [""])[0]
        token = query.get("continuation-token", [""])[0]
        after = base64.urlsafe_b64decode(token).decode() if token else ""
        after = max(after, query.get("start-after", [""])[0])
        limit = min(int(query.get("max-keys", [PAGE_SIZE])[0]), PAGE_SIZE)
        upstream = f"/storage/v1/b/{quote(bucket, safe='')}/o?prefix={quote(prefix, safe='')}"
        if after:  # startOffset is inclusive, start-after is not: the key itself is dropped
            upstream += f"&startOffset={quote(after, safe='')}"
        found: list[dict[str, Any]] = []
        page_token = ""
        while True:  # all of it: this proxy pages the answer itself
            status, _, body = self._upstream("GET", upstream + page_token)
            if status == 404:
                return self._not_found(bucket)
            if status != 200:
                return self._answer(status, body)
            answer = json.loads(body)
            found += answer.get("items", [])
            if not answer.get("nextPageToken"):
                break
            page_token = f"&pageToken={quote(answer['nextPageToken'], safe='')}"
        items = sorted((item for item in found if item["name"] > after), key=lambda i: i["name"])
        page, more = items[:limit], len(items) > limit
        contents = "".join(
            f"<Contents><Key>{escape(item['name'])}</Key><Size>{item['size']}</Size>"
            f"<LastModified>{item['updated']}</LastModified>"
            f"<ETag>&quot;{escape(item['etag'])}&quot;</ETag></Contents>"
            for item in page
        )
        following = ""
        if more:
            next_token = base64.urlsafe_b64encode(page[-1]["name"].encode()).decode()
            following = f"<NextContinuationToken>{next_token}</NextContinuationToken>"
        xml = (
            "<?xml version='1.0' encoding='UTF-8'?><ListBucketResult>"
            f"<Name>{escape(bucket)}</Name><Prefix>{escape(prefix)}</Prefix>"
            f"<KeyCount>{len(page)}</KeyCount><MaxKeys>{limit}</MaxKeys>"
            f"<IsTruncated>{str(more).lower()}</IsTruncated>{contents}{following}"
            "</ListBucketResult>"
        )
        self._answer(200, xml.encode(), {"Content-Type": "application/xml"})


def main(upstream: str) -> None:
    proxy = Proxy(upstream)
    print(proxy.server_address[1], flush=True)
    proxy.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1])

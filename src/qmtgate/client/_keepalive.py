"""A persistent-connection fast path for the sync client's small JSON requests.

Why: on loopback a one-code ``get_full_tick`` is dominated by per-request client overhead, and httpx's
sync stack costs about 1 ms of CPU per request against ~0.3 ms for ``http.client`` on a kept-alive
connection (bench/client_bench.py, issue 5 note). The xtquant drop-in makes many such calls, so small,
idempotent JSON requests over plain ``http://`` go through here; everything else (Arrow tables, writes,
TLS) stays on httpx. One connection per thread (``http.client`` connections are not thread-safe); a
kept-alive connection the server closed meanwhile is reopened and the request retried once, which is
safe because only idempotent requests come here.
"""

from __future__ import annotations

import http.client
import socket
import threading
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import orjson

_RETRYABLE = (
    http.client.RemoteDisconnected,
    http.client.BadStatusLine,
    ConnectionResetError,
    BrokenPipeError,
)


class KeepAliveJson:
    def __init__(self, base_url: str, headers: dict[str, str], timeout: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the keep-alive path serves plain http:// URLs, not {base_url!r}")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._prefix = parts.path.rstrip("/")
        self._headers = {**headers, "Accept": "application/json", "Connection": "keep-alive"}
        self._timeout = timeout
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._local.conn = conn
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    def request(
        self, method: str, path: str, params: dict[str, Any] | None, body: Any
    ) -> tuple[int, str, bytes]:
        """Send and return (status, content type, body bytes); transport errors propagate as OSError or
        ``http.client.HTTPException``."""
        url = quote(self._prefix + path, safe="/%") + ("?" + urlencode(params, doseq=True) if params else "")
        headers = dict(self._headers)
        payload = None
        if body is not None:
            payload = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        for attempt in (0, 1):
            reused = getattr(self._local, "conn", None) is not None
            conn = self._connection()
            try:
                conn.request(method, url, body=payload, headers=headers)
                response = conn.getresponse()
                content = response.read()
            except TimeoutError:
                self._drop()
                raise
            except _RETRYABLE:
                self._drop()
                if attempt or not reused:
                    raise
                continue  # the server closed an idle kept-alive connection: reopen once
            except BaseException:
                self._drop()
                raise
            if response.will_close:
                self._drop()
            return response.status, response.getheader("content-type", ""), content
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._drop()

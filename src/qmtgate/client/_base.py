"""What the sync and async clients share: options, headers, request building and answer checking."""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from qmtgate.client import _calls, _protect_calls
from qmtgate.client._calls import ARROW, JSON, Answer, Call
from qmtgate.client.errors import ConnectionFailed, error_from_body

API_KEY_HEADER = "X-API-Key"


@dataclass(frozen=True)
class Options:
    """Client options. ``timeout`` (seconds) applies to every request and is on by default."""

    base_url: str
    api_key: str | None = None
    timeout: float = 30.0
    #: "arrow" (default; compact and fast for tables) or "json"
    format: str = "arrow"
    max_connections: int = 10
    #: the TLS context of https/wss connections (:func:`tls_context`); None: the system CAs
    ssl_context: ssl.SSLContext | None = None

    @classmethod
    def create(
        cls,
        base_url: str,
        api_key: str | None,
        timeout: float,
        format: str,
        max_connections: int,
        tls_fingerprint: str | Sequence[str] | None,
        tls_ca: str | os.PathLike[str] | None,
    ) -> Options:
        """The options of a client constructed with these arguments (both clients take the same)."""
        base_url = base_url.rstrip("/")
        tls = tls_context(base_url, tls_fingerprint, tls_ca)
        return cls(base_url, api_key, timeout, format, max_connections, tls)

    def httpx_options(self) -> dict[str, Any]:
        """The keyword arguments of the ``httpx`` client (sync or async) for these options."""
        return {
            "base_url": self.base_url,
            "headers": self.headers(),
            "timeout": self.timeout,
            "limits": self.limits(),
            "verify": self.verify(),
        }

    def verify(self) -> ssl.SSLContext | bool:
        """httpx's ``verify=``: the pinned/CA context, or True (system CAs)."""
        return self.ssl_context if self.ssl_context is not None else True

    def headers(self) -> dict[str, str]:
        # the key travels only in a header: never in the URL, where proxies and logs would keep it
        headers = {"User-Agent": "qmtgate-client"}
        if self.api_key:
            headers[API_KEY_HEADER] = self.api_key
        return headers

    def limits(self) -> httpx.Limits:
        return httpx.Limits(
            max_connections=self.max_connections, max_keepalive_connections=self.max_connections
        )

    def ws_url(self, path: str = "/api/v1/ws") -> str:
        base = self.base_url.rstrip("/")
        if base.startswith("https://"):
            return "wss://" + base[len("https://") :] + path
        if base.startswith("http://"):
            return "ws://" + base[len("http://") :] + path
        return base + path


def tls_context(
    base_url: str,
    tls_fingerprint: str | Sequence[str] | None = None,
    tls_ca: str | os.PathLike[str] | None = None,
) -> ssl.SSLContext | None:
    """The TLS context for a gateway with its own certificate, or None for the system CAs.

    ``tls_fingerprint``: the SHA-256 fingerprint ``qmtgate cert`` printed (``AB:CD:...`` or plain hex; a
    list during a certificate rollover); the handshake then succeeds only with exactly that certificate,
    instead of checking a CA chain and host name (:mod:`qmtgate.security.pinning`). ``tls_ca``: a PEM file
    of CA certificates to trust (or the gateway's own ``qmtgate-cert.pem``), with the usual host-name check.
    """
    if tls_fingerprint is None and tls_ca is None:
        return None
    if not base_url.startswith("https://"):
        raise ValueError(f"tls_fingerprint / tls_ca need an https:// gateway URL, not {base_url!r}")
    if tls_fingerprint is not None and tls_ca is not None:
        raise ValueError("pass tls_fingerprint or tls_ca, not both")
    if tls_fingerprint is not None:
        from qmtgate.security.pinning import pinned_ssl_context  # stdlib only: no server code

        return pinned_ssl_context(tls_fingerprint)
    ca = Path(tls_ca)  # type: ignore[arg-type]
    if not ca.is_file():
        raise ValueError(f"tls_ca: no such file: {ca}")
    context = ssl.create_default_context(cafile=str(ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def accept_header(call: Call, options: Options) -> str:
    return ARROW if call.tabular and options.format == "arrow" else JSON


def request_kwargs(call: Call, options: Options) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"params": call.params, "headers": {"Accept": accept_header(call, options)}}
    if call.body is not None:
        kwargs["json"] = call.body
    return kwargs


def finish(call: Call, response: httpx.Response) -> Any:
    """Decode a 2xx (or accepted) answer, raise the typed error for anything else."""
    return finish_raw(call, response.status_code, response.headers.get("content-type", ""), response.content)


def finish_raw(call: Call, status: int, content_type: str, content: bytes) -> Any:
    answer = Answer(status, content_type, content)
    if status >= 300 and status not in call.accept_status:
        try:
            payload = answer.json()
        except ValueError:
            payload = None
        raise error_from_body(status, payload)
    return call.decode(answer)


def transport_error(e: Exception, call: Call, options: Options) -> ConnectionFailed:
    return ConnectionFailed(f"{call.method} {options.base_url}{call.path}: {type(e).__name__}: {e}")


def bind_sync(build: Callable[..., Call]) -> Callable[..., Any]:
    @functools.wraps(build)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return self.send(build(*args, **kwargs))

    return method


def bind_async(build: Callable[..., Call]) -> Callable[..., Any]:
    @functools.wraps(build)
    async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return await self.send(build(*args, **kwargs))

    return method


OPERATIONS = (*_calls.OPERATIONS, *_protect_calls.OPERATIONS)

"""The MCP server's one door to the gateway: :class:`qmtgate.client.AsyncClient`, and errors as tool errors.

Every tool goes through :class:`Gateway`. It owns one ``AsyncClient`` (URL, key, TLS pin or CA from the
command line or environment), sends the typed client operations and, for routes the client has no typed
method for yet (trading, recorded data, health), a :class:`~qmtgate.client._calls.Call` through the same
HTTP layer, so keys, pinning, timeouts and the error envelope are handled in one place.

Failures become :class:`ToolError` whose text carries the gateway's own message and stable ``code`` (and its
``details``), which is what an assistant needs to correct a call; never a Python traceback.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd
from mcp.server.mcpserver.exceptions import ToolError

from qmtgate.client import AsyncClient
from qmtgate.client import _calls as calls
from qmtgate.client.errors import ConnectionFailed, GatewayError, QmtgateClientError
from qmtgate.vocab import CST

V1 = calls.V1


@dataclass(frozen=True)
class GatewayConfig:
    """Where the gateway is and how to reach it (``qmtgate mcp`` options / ``QMTGATE_*`` environment)."""

    url: str = "http://127.0.0.1:8000"
    api_key: str | None = None
    tls_fingerprint: str | None = None
    tls_ca: str | None = None
    timeout: float = 30.0

    def client(self) -> AsyncClient:
        return AsyncClient(
            self.url,
            api_key=self.api_key,
            timeout=self.timeout,
            tls_fingerprint=self.tls_fingerprint,
            tls_ca=self.tls_ca,
        )


def tool_error(e: Exception) -> ToolError:
    """A tool error an assistant can act on: the gateway's message, its code and details."""
    if isinstance(e, GatewayError):
        text = f"{e.message} (code: {e.code}, HTTP {e.status})"
        if e.details:
            text += " details: " + orjson.dumps(e.details, default=str).decode()
        return ToolError(text)
    if isinstance(e, ConnectionFailed):
        return ToolError(f"the gateway could not be reached: {e} (code: connection_failed)")
    return ToolError(f"{e} (code: client_error)")


class Gateway:
    """The gateway as the tools see it: async calls that raise :class:`ToolError` on any failure.

    One instance per MCP server process; the underlying ``AsyncClient`` is created on first use, on the
    event loop that serves the MCP session (it must be awaited on the loop that created it).
    """

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self._client: AsyncClient | None = None

    @property
    def client(self) -> AsyncClient:
        if self._client is None:
            self._client = self.config.client()
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """A typed client operation by name (``snapshots``, ``klines``, ``sectors`` ...)."""
        try:
            return await getattr(self.client, name)(*args, **kwargs)
        except QmtgateClientError as e:
            raise tool_error(e) from None

    async def rest(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        accept_status: tuple[int, ...] = (),
        tabular: bool = False,
    ) -> Any:
        """A JSON (or, ``tabular``, DataFrame) route the client has no typed method for."""
        decode = calls.frame if tabular else calls.body
        call = calls.Call(
            method,
            V1 + path,
            decode,
            {k: v for k, v in (params or {}).items() if v is not None},
            body,
            tabular=tabular,
            accept_status=accept_status,
            idempotent=method == "GET",
        )
        try:
            return await self.client.send(call)
        except QmtgateClientError as e:
            raise tool_error(e) from None


# -- turning answers into JSON an assistant reads ------------------------------------------------------


def plain(value: Any) -> Any:
    """A JSON-safe Python value: NaN -> None, timestamps -> ISO 8601 (China time), arrays -> lists."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, pd.Timestamp):
        if pd.isna(value):
            return None
        if value.tzinfo is not None:
            value = value.tz_convert(CST)
        return value.isoformat()
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, (np.ndarray, list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if value is pd.NaT:
        return None
    return str(value)


def records(df: pd.DataFrame, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """DataFrame rows as JSON-safe dicts (only ``columns`` that exist, in that order, if given)."""
    if columns is not None:
        df = df[[c for c in columns if c in df.columns]]
    return [{k: plain(v) for k, v in row.items()} for row in df.to_dict("records")]

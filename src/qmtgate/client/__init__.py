"""Python client of a qmtgate gateway: :class:`Client` (blocking) and :class:`AsyncClient` (asyncio).

Both expose the same methods (REST answers as pandas DataFrames, Arrow on the wire by default) and
streaming with reconnect/resume (:class:`Stream`, :class:`Batch`, :class:`Event`). See docs/client.md.
"""

from qmtgate.client import errors
from qmtgate.client.aio import AsyncClient
from qmtgate.client.stream import Batch, Event, Stream
from qmtgate.client.sync import Client, Subscription

__all__ = ["AsyncClient", "Batch", "Client", "Event", "Stream", "Subscription", "errors"]

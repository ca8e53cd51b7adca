"""The streaming core against a scripted WebSocket server: resume with since/epoch after a disconnect,
replay, a seq gap, resync with a fresh snapshot after a new epoch, source status, the API key on the
handshake. Nothing is hidden: each shows up as a Batch attribute or an Event."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.server import serve

from qmtgate.client import AsyncClient, Batch, Event


def _data(seq_from: int, seq_to: int, epoch: str, **flags: Any) -> str:
    items = [{"seq": s, "code": "600000.SH", "last_price": 10.0 + s} for s in range(seq_from, seq_to + 1)]
    return json.dumps(
        {"type": "data", "channel": "tick", "epoch": epoch, "seq_from": seq_from, "seq_to": seq_to,
         "conflated": False, "replay": False, "items": items, **flags}
    )  # fmt: skip


async def _scenario() -> tuple[list[Batch | Event], list[dict[str, Any]], list[str | None]]:
    subscribes: list[dict[str, Any]] = []
    keys: list[str | None] = []
    connections = 0

    async def handler(ws: Any) -> None:
        nonlocal connections
        connections += 1
        n = connections
        keys.append(ws.request.headers.get("X-API-Key"))
        epoch = "A" if n < 3 else "B"
        await ws.send(json.dumps({"type": "hello", "epoch": epoch, "seq": 0, "source": "simulated"}))
        subscribes.append(json.loads(await ws.recv()))
        await ws.send(json.dumps({"type": "subscribed", "period": "tick", "markets": ["SH"], "errors": []}))
        if n == 1:
            await ws.send(_data(1, 2, "A"))
            await ws.send(_data(5, 5, "A"))  # 3 and 4 never arrive: a gap
        elif n == 2:
            await ws.send(_data(3, 4, "A", replay=True))
        else:
            await ws.send(json.dumps({"type": "resync", "reason": "new_epoch", "epoch": "B"}))
            await ws.send(_data(1, 1, "B", conflated=True))
            await ws.send(json.dumps({"type": "status", "source": {"connected": False}}))
            await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        seen: list[Batch | Event] = []
        async with AsyncClient(f"http://127.0.0.1:{port}", api_key="k1") as client:
            stream = client.stream(["SH"], "tick", reconnect_delay=0.01)
            async with stream:
                while not (seen and isinstance(seen[-1], Event) and seen[-1].kind == "status"):
                    seen.append(await stream.next(timeout=10))
        return seen, subscribes, keys


def test_resume_gap_resync_and_status_are_all_reported() -> None:
    seen, subscribes, keys = asyncio.run(_scenario())
    batches = [x for x in seen if isinstance(x, Batch)]
    kinds = [x.kind for x in seen if isinstance(x, Event)]

    assert keys == ["k1", "k1", "k1"]  # the key travels on every handshake, never in the URL
    assert subscribes[0] == {"op": "subscribe", "period": "tick", "markets": ["SH"]}
    # after the drop: resubscribe from the last seq of the same epoch
    assert subscribes[1] == {"op": "subscribe", "period": "tick", "markets": ["SH"], "since": 5, "epoch": "A"}
    # a replay of older seqs does not move the resume point back
    assert subscribes[2]["since"] == 5 and subscribes[2]["epoch"] == "A"

    assert [(b.seq_from, b.seq_to) for b in batches] == [(1, 2), (5, 5), (3, 4), (1, 1)]
    assert batches[1].gap == 2 and "gap" in kinds
    assert batches[2].replay and batches[2].gap == 0
    assert batches[3].snapshot and batches[3].conflated and batches[3].epoch == "B"
    assert kinds.count("connected") == 3 and kinds.count("disconnected") == 2
    assert "resync" in kinds and kinds[-1] == "status"
    assert batches[0].frame()["last_price"].tolist() == [11.0, 12.0]


async def _prev_seq_scenario() -> list[Batch | Event]:
    """One market of a whole-market hub: seqs jump every frame (the other markets' updates), prev_seq
    says whether anything of this client's was skipped."""

    async def handler(ws: Any) -> None:
        await ws.send(json.dumps({"type": "hello", "epoch": "A", "seq": 0, "source": "simulated"}))
        await ws.recv()
        await ws.send(_data(1, 2, "A", prev_seq=None))
        await ws.send(_data(7, 8, "A", prev_seq=2))  # 3..6 were other markets': no gap
        await ws.send(_data(20, 21, "A", prev_seq=15))  # the frame ending at 15 never came: a gap
        await ws.send(_data(30, 30, "A", prev_seq=25, conflated=True))  # conflation says so itself
        await ws.send(_data(40, 40, "A", prev_seq=30))
        await ws.send(json.dumps({"type": "status", "source": {"connected": True}}))
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        seen: list[Batch | Event] = []
        async with AsyncClient(f"http://127.0.0.1:{port}") as client:
            stream = client.stream(["SZ"], "tick")
            async with stream:
                while not (seen and isinstance(seen[-1], Event) and seen[-1].kind == "status"):
                    seen.append(await stream.next(timeout=10))
        return seen


def test_prev_seq_tells_a_skipped_frame_from_other_markets_updates() -> None:
    seen = asyncio.run(_prev_seq_scenario())
    batches = [x for x in seen if isinstance(x, Batch)]
    gaps = [x.data for x in seen if isinstance(x, Event) and x.kind == "gap"]
    assert [b.gap for b in batches] == [0, 0, 15 - 8, 0, 0]
    assert batches[3].conflated
    assert gaps == [{"missing": 7, "seq_from": 20, "prev_seq": 15, "held": 8}]

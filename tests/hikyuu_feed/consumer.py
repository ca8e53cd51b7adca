"""A Hikyuu-like consumer: a real ``pynng.Sub0`` subscribed to ``:spot:``, on its own thread.

It keeps Hikyuu's ``SpotAgent`` states: a data message before ``[start spot]`` is ignored (counted), and
a bracket is complete at ``[end spot]``."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pynng

from hikyuu_feed.decoder import TOPIC, decode

START = TOPIC + b"[start spot]"
END = TOPIC + b"[end spot]"


@dataclass
class Bracket:
    buffers: list[bytes] = field(default_factory=list)  # SpotList bytes, topic stripped
    _records: list[dict[str, Any]] | None = None

    def records(self) -> list[dict[str, Any]]:
        if self._records is None:  # decoded once (the Python FlatBuffers reader is slow)
            self._records = [r for buf in self.buffers for r in decode(buf)]
        return self._records


class Consumer:
    def __init__(self, address: str) -> None:
        self.sock = pynng.Sub0(recv_timeout=100)
        self.sock.subscribe(TOPIC)
        self.sock.dial(address, block=True)
        self.messages = 0
        self.ignored = 0  # data outside a bracket (Hikyuu ignores it)
        self.brackets: list[Bracket] = []
        self._open: Bracket | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hikyuu-test-consumer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.sock.recv()
            except pynng.Timeout:
                continue
            except pynng.Closed:
                return
            self.messages += 1
            if msg == START:
                self._open = Bracket()
            elif msg == END:
                if self._open is not None:
                    self.brackets.append(self._open)
                self._open = None
            elif self._open is None:
                self.ignored += 1
            else:
                self._open.buffers.append(msg[len(TOPIC) :])

    def wait_messages(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.messages < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"received {self.messages} of {count} messages")
            time.sleep(0.01)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

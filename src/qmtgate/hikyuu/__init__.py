"""A Hikyuu-compatible live feed: NNG pub/sub with FlatBuffers ``SpotList`` messages (docs/hikyuu.md).

A hub consumer like the recorder: it never slows the WebSocket clients (bounded outbox, conflation,
encoding on its own thread)."""

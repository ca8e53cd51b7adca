"""FlatBuffers ``SpotList`` buffers for Hikyuu, written column-wise with numpy.

Hikyuu's own producer fills each Spot through the ``flatc``-generated builder functions: ~60 Python calls
a record, ~0.4 s for a whole market of ~5,400 codes. That is too slow for a burst every 3 s on a gateway,
so :func:`encode_spot_list` writes the same tables directly: every record has the same shape (a
six-digit code, a two-letter market, a 19-character time, five levels per side), so one numpy structured
array of fixed-size records is the whole body, filled with a handful of vectorised assignments.

The layout is an ordinary FlatBuffer that ``flatbuffers::Verifier`` accepts (``VerifySpotListBuffer``,
which Hikyuu runs on every message): every offset points forward inside the buffer, tables and vtables
are aligned, doubles sit on 8-byte boundaries, strings are NUL-terminated, and all Spot tables share one
vtable and one empty ``name`` string (as a builder that deduplicates them would). All fields are written,
zeros included (the builder's ``force_defaults``). :func:`encode_with_builder` is the reference encoder
over the generated code (``qmtgate.hikyuu.flat``, ``make hikyuu-flatc``); the tests check that both decode
to the same records, and :func:`self_check` does so once at start.

Layout (byte offsets)::

    0    uoffset  -> SpotList table (44)
    4    Spot vtable: vsize 34, tsize 96, 15 field offsets (the schema's slot order)
    38   SpotList vtable: vsize 6, tsize 8, field 0 at 4
    44   SpotList table: soffset 6, uoffset -> spot vector (52)
    52   spot vector: count n, then n uoffsets to the Spot tables
    R0   n Spot records of RECORD bytes each (R0 8-aligned), each: the table, then its strings and vectors
    E    the shared empty string (length 0, NUL), padded to 8
"""

from __future__ import annotations

import struct

import numpy as np

from qmtgate.hikyuu.records import LEVELS, SpotColumns

RECORD = 328
#: where each part of a record lies, relative to the record's (= its table's) start
_T_MARKET, _T_CODE, _T_NAME, _T_DT, _T_BID, _T_BIDA, _T_ASK, _T_ASKA = 4, 8, 12, 16, 20, 24, 28, 32
_T_NUMBERS = 40  # 7 doubles: slots 4..10
TABLE_SIZE = 96
_S_MARKET, _S_CODE, _V_BID, _S_DT, _V_BIDA, _V_ASK, _V_ASKA = 96, 104, 116, 160, 188, 236, 284

_RECORD_DTYPE = np.dtype(
    {
        "names": [
            "soffset",
            "offsets",
            "numbers",
            "market_len",
            "market",
            "code_len",
            "code",
            "bid_len",
            "bid",
            "dt_len",
            "dt",
            "bida_len",
            "bida",
            "ask_len",
            "ask",
            "aska_len",
            "aska",
        ],
        "formats": [
            "<i4",
            ("<u4", 8),
            ("<f8", 7),
            "<u4",
            "S4",
            "<u4",
            "S8",
            "<u4",
            ("<f8", LEVELS),
            "<u4",
            "S20",
            "<u4",
            ("<f8", LEVELS),
            "<u4",
            ("<f8", LEVELS),
            "<u4",
            ("<f8", LEVELS),
        ],
        "offsets": [
            0,
            4,
            _T_NUMBERS,
            _S_MARKET,
            _S_MARKET + 4,
            _S_CODE,
            _S_CODE + 4,
            _V_BID,
            _V_BID + 4,
            _S_DT,
            _S_DT + 4,
            _V_BIDA,
            _V_BIDA + 4,
            _V_ASK,
            _V_ASK + 4,
            _V_ASKA,
            _V_ASKA + 4,
        ],
        "itemsize": RECORD,
    }
)
#: the uoffsets of slots market, code, name (per record, set below), datetime, bid, bid_amount, ask, ask_amount
_FIXED_OFFSETS = np.array(
    [
        _S_MARKET - _T_MARKET,
        _S_CODE - _T_CODE,
        0,
        _S_DT - _T_DT,
        _V_BID - _T_BID,
        _V_BIDA - _T_BIDA,
        _V_ASK - _T_ASK,
        _V_ASKA - _T_ASKA,
    ],
    dtype="<u4",
)
_SPOT_VTABLE_AT = 4
_SPOT_SLOTS = (
    _T_MARKET,
    _T_CODE,
    _T_NAME,
    _T_DT,
    *(_T_NUMBERS + 8 * k for k in range(7)),
    _T_BID,
    _T_BIDA,
    _T_ASK,
    _T_ASKA,
)
_HEADER = (
    struct.pack("<I", 44)
    + struct.pack("<HH15H", 4 + 2 * 15, TABLE_SIZE, *_SPOT_SLOTS)
    + struct.pack("<HHH", 6, 8, 4)
    + struct.pack("<iI", 44 - 38, 52 - 48)
)
assert len(_HEADER) == 52


def encode_spot_list(cols: SpotColumns) -> bytes:
    """One ``SpotList`` FlatBuffer holding every record of ``cols`` (see the module doc for the layout)."""
    n = len(cols)
    r0 = 56 + 4 * n
    r0 += r0 % 8  # 4 or 0: the records start 8-aligned
    end = r0 + RECORD * n
    buf = np.zeros(end + 8, dtype=np.uint8)  # + the shared empty string (length 0, NUL, padding)
    buf[:52] = np.frombuffer(_HEADER, dtype=np.uint8)
    buf[52:56] = np.frombuffer(struct.pack("<I", n), dtype=np.uint8)
    starts = r0 + RECORD * np.arange(n, dtype=np.int64)
    # the vector's uoffsets: each relative to its own position
    buf[56 : 56 + 4 * n].view("<u4")[:] = starts - (56 + 4 * np.arange(n, dtype=np.int64))
    if n == 0:
        return buf.tobytes()
    recs = buf[r0:end].view(_RECORD_DTYPE)
    recs["soffset"] = starts - _SPOT_VTABLE_AT  # vtable = table - soffset
    offsets = np.broadcast_to(_FIXED_OFFSETS, (n, 8)).copy()
    offsets[:, 2] = end - (starts + _T_NAME)
    recs["offsets"] = offsets
    recs["numbers"] = cols.numbers
    recs["market_len"] = 2
    recs["market"] = cols.market
    recs["code_len"] = cols.code_len
    recs["code"] = cols.code
    recs["dt_len"] = 19
    recs["dt"] = cols.datetime
    for name, values in (
        ("bid", cols.bid),
        ("bida", cols.bid_amount),
        ("ask", cols.ask),
        ("aska", cols.ask_amount),
    ):
        recs[f"{name}_len"] = LEVELS
        recs[name] = values
    return buf.tobytes()


def encode_with_builder(cols: SpotColumns) -> bytes:
    """The same records through the ``flatc``-generated builder, as Hikyuu's ``create_fb_spot`` does it
    (slow: the reference the fast encoder is checked against)."""
    import flatbuffers

    from qmtgate.hikyuu.flat import spot_generated as fb

    builder = flatbuffers.Builder(1024)
    tables = []
    for i in range(len(cols)):
        rec = cols.record(i)
        market = builder.CreateString(rec["market"])
        code = builder.CreateString(rec["code"])
        name = builder.CreateString(rec["name"])
        when = builder.CreateString(rec["datetime"])
        vectors = {}
        for key, start in (
            ("bid", fb.SpotStartBidVector),
            ("bid_amount", fb.SpotStartBidAmountVector),
            ("ask", fb.SpotStartAskVector),
            ("ask_amount", fb.SpotStartAskAmountVector),
        ):
            values = rec[key]
            start(builder, len(values))
            for v in reversed(values):
                builder.PrependFloat64(v)
            vectors[key] = builder.EndVector()
        fb.SpotStart(builder)
        fb.SpotAddMarket(builder, market)
        fb.SpotAddCode(builder, code)
        fb.SpotAddName(builder, name)
        fb.SpotAddDatetime(builder, when)
        fb.SpotAddYesterdayClose(builder, rec["yesterday_close"])
        fb.SpotAddOpen(builder, rec["open"])
        fb.SpotAddHigh(builder, rec["high"])
        fb.SpotAddLow(builder, rec["low"])
        fb.SpotAddClose(builder, rec["close"])
        fb.SpotAddAmount(builder, rec["amount"])
        fb.SpotAddVolume(builder, rec["volume"])
        fb.SpotAddBid(builder, vectors["bid"])
        fb.SpotAddBidAmount(builder, vectors["bid_amount"])
        fb.SpotAddAsk(builder, vectors["ask"])
        fb.SpotAddAskAmount(builder, vectors["ask_amount"])
        tables.append(fb.SpotEnd(builder))
    fb.SpotListStartSpotVector(builder, len(tables))
    for t in reversed(tables):
        builder.PrependUOffsetTRelative(t)
    spots = builder.EndVector()
    fb.SpotListStart(builder)
    fb.SpotListAddSpot(builder, spots)
    builder.Finish(fb.SpotListEnd(builder))
    return bytes(builder.Output())


def decode_spot_list(buf: bytes) -> list[dict[str, object]]:
    """The records of a ``SpotList`` buffer through the generated reader (self-check, logs)."""
    from qmtgate.hikyuu.flat import spot_generated as fb

    root = fb.SpotList.GetRootAs(buf, 0)
    out: list[dict[str, object]] = []
    for i in range(root.SpotLength()):
        s = root.Spot(i)
        out.append(
            {
                "market": (s.Market() or b"").decode(),
                "code": (s.Code() or b"").decode(),
                "name": (s.Name() or b"").decode(),
                "datetime": (s.Datetime() or b"").decode(),
                "yesterday_close": s.YesterdayClose(),
                "open": s.Open(),
                "high": s.High(),
                "low": s.Low(),
                "close": s.Close(),
                "amount": s.Amount(),
                "volume": s.Volume(),
                "bid": [s.Bid(j) for j in range(s.BidLength())],
                "bid_amount": [s.BidAmount(j) for j in range(s.BidAmountLength())],
                "ask": [s.Ask(j) for j in range(s.AskLength())],
                "ask_amount": [s.AskAmount(j) for j in range(s.AskAmountLength())],
            }
        )
    return out


def self_check() -> None:
    """Encode a probe both ways and compare what the generated reader makes of them: the fixed layout and
    the schema (regenerated by ``make hikyuu-flatc``) cannot drift apart unnoticed."""
    cols = SpotColumns.from_records(
        [
            {
                "market": "SH",
                "code": "600000",
                "datetime": "2025-06-12 09:30:03",
                **dict(
                    zip(
                        ("yesterday_close", "open", "high", "low", "close", "amount", "volume"),
                        [10.0, 10.1, 10.5, 9.9, 10.2, 12.5, 300.0],
                        strict=True,
                    )
                ),
                "bid": [10.19, 10.18, 10.17, 10.16, 10.15],
                "bid_amount": [1.0, 2.0, 3.0, 4.0, 5.0],
                "ask": [10.2, 10.21, 10.22, 0.0, 0.0],
                "ask_amount": [6.0, 7.0, 8.0, 0.0, 0.0],
            },
            {
                "market": "BJ",
                "code": "430047",
                "datetime": "2025-06-12 14:59:57",
                **dict.fromkeys(("yesterday_close", "open", "high", "low", "close", "amount", "volume"), 0.0),
                **dict.fromkeys(("bid", "bid_amount", "ask", "ask_amount"), [0.0] * 5),
            },
        ]
    )
    fast, slow = decode_spot_list(encode_spot_list(cols)), decode_spot_list(encode_with_builder(cols))
    if fast != slow or fast != [cols.record(i) for i in range(len(cols))]:
        raise RuntimeError("the Hikyuu SpotList encoder disagrees with the flatc-generated code")

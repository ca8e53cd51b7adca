"""xtquant's own tick dicts, as the cache keeps them: the newest as the SDK's objects, older ones as columns.

Why: the drop-in's ``get_full_tick`` and the compat routes answer with xtquant's dicts, every key and value
as the SDK gave them, so the cache keeps the latest dict per code. Held as the SDK's objects, a whole
market is ~5,400 dicts with ~21,600 ladder lists and ~100,000 numbers: ~13 MB and ~27,000 objects the
garbage collector walks, and when a burst arrives the previous one is still held, two markets' worth at
the moment of the peak. Kept as columns (one numpy array per key, rows grouped by their dicts' key
layout), the same ticks are ~2 MB and a few dozen objects.

So each burst's dicts are kept as they came (readers get the SDK's own objects, at no cost) for
:data:`PACK_AFTER` seconds, longer than the burst's frames take to leave; then :class:`RawTicks` turns
them into columns :data:`PACK_SLICE` codes at a time, the cache's owner letting the loop breathe in
between (the dicts are freed by the same slices: freeing ~250,000 objects at once holds the
interpreter lock for 10-20 ms). A reader of a packed code gets a dict equal to the one the SDK
delivered: the same keys in the same order and the same values of the same types (floats, ints and
equal-length lists of either become arrays and come back as exactly those Python values; any other
value is kept as the object itself). Dicts made for readers are kept for the next reader while the code's
row stands (:data:`MEMO_MAX`): like the SDK's own, they are shared and must not be modified.
"""

from __future__ import annotations

import itertools
import operator
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

#: seconds a burst's dicts stay as they came before they are packed: past the burst's frames (50
#: whole-market clients' writes end ~0.1 s after the burst) and the answers built ahead for pollers
#: (``api.burst_answers``, 0.15 s), which read them as they are.
PACK_AFTER = 0.3
#: codes packed (and dicts freed) per slice: ~1 ms of the loop each
PACK_SLICE = 500

#: packed codes whose dicts, once made for a reader, are kept for the next one until the code's row
#: changes (a watch list polled many times per burst makes its dicts once per burst); past this many the
#: memo starts over, and a read of more packed codes than this (a whole market) is not memoized
MEMO_MAX = 1000

Column = np.ndarray | list[Any]
_serials = itertools.count()


def _column(values: list[Any]) -> Column:
    """One key's values of a block as an array when that gives every value back exactly, else as they are."""
    kinds = set(map(type, values))
    if len(kinds) == 1:
        kind = kinds.pop()
        if kind is float:
            return np.array(values, np.float64)
        if kind is int:
            try:
                return np.array(values, np.int64)
            except OverflowError:  # beyond 64 bits: kept as Python ints
                return values
        if kind is list and len(set(map(len, values))) == 1:
            width = len(values[0])
            flat = list(itertools.chain.from_iterable(values))
            inner = set(map(type, flat))
            try:
                if inner == {float} or not flat:
                    return np.array(flat, np.float64).reshape(len(values), width)
                if inner == {int}:
                    return np.array(flat, np.int64).reshape(len(values), width)
            except OverflowError:
                return values
    return values


class _Block:
    """Packed ticks of one key layout: ``codes[i]``'s dict is row ``i`` of every column."""

    __slots__ = ("codes", "columns", "keys", "live", "serial")

    def __init__(self, keys: tuple[str, ...], codes: list[str], ticks: list[Mapping[str, Any]]) -> None:
        self.serial = next(_serials)  # names this block in the readers' memo without keeping it alive
        self.keys = keys
        self.codes = codes
        self.columns = [_column(list(map(operator.itemgetter(k), ticks))) for k in keys]
        self.live = len(codes)  # rows still the latest of their code

    @classmethod
    def taken(cls, block: _Block, rows: list[int]) -> _Block:
        """The ``rows`` of ``block`` as a block of their own (compaction: no dicts made)."""
        out = cls.__new__(cls)
        out.serial = next(_serials)
        out.keys = block.keys
        out.codes = [block.codes[i] for i in rows]
        index = np.asarray(rows, np.int64)
        out.columns = [c[index] if isinstance(c, np.ndarray) else [c[i] for i in rows] for c in block.columns]
        out.live = len(rows)
        return out

    def __len__(self) -> int:
        return len(self.codes)

    def row(self, i: int) -> dict[str, Any]:
        return dict(
            zip(
                self.keys,
                [c[i].tolist() if isinstance(c, np.ndarray) else c[i] for c in self.columns],
                strict=True,
            )
        )

    def rows(self, rows: list[int]) -> list[dict[str, Any]]:
        if not self.keys:  # empty dicts
            return [{} for _ in rows]
        index = np.asarray(rows, np.int64)
        values = [
            c[index].tolist() if isinstance(c, np.ndarray) else [c[i] for i in rows] for c in self.columns
        ]
        keys = self.keys
        return [dict(zip(keys, row, strict=True)) for row in zip(*values, strict=True)]


class RawTicks:
    """``code -> xtquant tick dict``, the latest per code, packed into columns once it has aged.

    Written and read on one thread (the event loop): :meth:`put` with each batch as it arrives,
    :meth:`pack_slice` from a timer while :meth:`due`. Untracked puts (``track=False``) are never packed:
    a cache written by hand, without a loop to pack it on, keeps the SDK's dicts as they are.
    """

    def __init__(self) -> None:
        self._fresh: dict[str, Mapping[str, Any]] = {}
        self._packed: dict[str, tuple[_Block, int]] = {}
        #: (arrival, the batch's (code, dict) pairs): what to pack when; the pairs also hold the dicts,
        #: replaced ones too, until their slice drops them
        self._arrivals: deque[tuple[float, list[tuple[str, Mapping[str, Any]]]]] = deque()
        self._blocks: dict[int, _Block] = {}
        self._rows_held = 0
        #: code -> (its block's serial, its row, the dict made of it for a reader)
        self._memo: dict[str, tuple[int, int, dict[str, Any]]] = {}

    # -- writing ------------------------------------------------------------------------------------

    def put(self, batch: Mapping[str, Mapping[str, Any]], now: float, track: bool = True) -> None:
        """The newest dicts of ``batch``'s codes (kept by reference)."""
        self._fresh.update(batch)
        if track:
            self._arrivals.append((now, list(batch.items())))

    def due(self, now: float) -> bool:
        return bool(self._arrivals) and self._arrivals[0][0] <= now - PACK_AFTER

    def next_due(self) -> float | None:
        """When the oldest unpacked batch may be packed (None: nothing waits)."""
        return self._arrivals[0][0] + PACK_AFTER if self._arrivals else None

    def pack_slice(self, now: float, limit: int = PACK_SLICE) -> int:
        """Pack up to ``limit`` codes of batches that arrived :data:`PACK_AFTER` ago or earlier (those whose
        dict is still the latest; the rest are dropped), freeing their dicts. Returns the codes packed."""
        taken: list[tuple[str, Mapping[str, Any]]] = []
        seen = 0
        fresh = self._fresh
        while self._arrivals and seen < limit and self._arrivals[0][0] <= now - PACK_AFTER:
            pairs = self._arrivals[0][1]
            part = pairs[-(limit - seen) :]
            del pairs[-(limit - seen) :]
            seen += len(part)
            for code, tick in part:
                if fresh.get(code) is tick:
                    del fresh[code]
                    taken.append((code, tick))
            if not pairs:
                self._arrivals.popleft()
        if taken:
            self._pack(taken)
        return len(taken)

    def _pack(self, taken: list[tuple[str, Mapping[str, Any]]]) -> None:
        codes = [code for code, _ in taken]
        ticks = [tick for _, tick in taken]
        layouts = list(map(tuple, ticks))  # each dict's keys in order
        first = layouts[0]
        if layouts.count(first) == len(layouts):  # xtquant's ticks of one kind share a layout
            groups = {first: (codes, ticks)}
        else:
            groups = {}
            for code, tick, keys in zip(codes, ticks, layouts, strict=True):
                group = groups.setdefault(keys, ([], []))
                group[0].append(code)
                group[1].append(tick)
        for keys, (names, dicts) in groups.items():
            self._place(_Block(keys, names, dicts))
        self._compact()

    def _place(self, block: _Block) -> None:
        packed, blocks = self._packed, self._blocks
        for old in filter(None, map(packed.get, block.codes)):
            self._release(old[0])
        packed.update(
            zip(block.codes, zip(itertools.repeat(block), range(len(block)), strict=False), strict=True)
        )
        blocks[id(block)] = block
        self._rows_held += len(block)

    def _release(self, block: _Block) -> None:
        block.live -= 1
        if block.live == 0:
            del self._blocks[id(block)]
            self._rows_held -= len(block)

    def _compact(self) -> None:
        """When most packed rows are stale (a feed that sends only what changed leaves old blocks with a
        few live rows each), keep only the live ones."""
        if self._rows_held <= 2 * len(self._packed) + PACK_SLICE:
            return
        packed = self._packed
        for block in list(self._blocks.values()):
            if block.live * 2 > len(block):
                continue
            rows = [i for i, code in enumerate(block.codes) if packed.get(code, (None,))[0] is block]
            del self._blocks[id(block)]
            self._rows_held -= len(block)
            if rows:
                kept = _Block.taken(block, rows)
                for i, code in enumerate(kept.codes):
                    packed[code] = (kept, i)
                self._blocks[id(kept)] = kept
                self._rows_held += len(kept)

    # -- reading ------------------------------------------------------------------------------------

    def get(self, code: str) -> Mapping[str, Any] | None:
        tick = self._fresh.get(code)
        if tick is not None:
            return tick
        at = self._packed.get(code)
        if at is None:
            return None
        made = self._remembered(code, at)
        if made is not None:
            return made
        tick = at[0].row(at[1])
        self._remember(code, at, tick)
        return tick

    def _remembered(self, code: str, at: tuple[_Block, int]) -> dict[str, Any] | None:
        """The dict made earlier of the code's row ``at``, if it is still that row's."""
        made = self._memo.get(code)
        return made[2] if made is not None and made[0] == at[0].serial and made[1] == at[1] else None

    def _remember(self, code: str, at: tuple[_Block, int], tick: dict[str, Any]) -> None:
        if len(self._memo) >= MEMO_MAX:
            self._memo.clear()
        self._memo[code] = (at[0].serial, at[1], tick)

    def value(self, code: str, key: str) -> Any:
        """One value of the code's latest tick (None when it has no tick or no such key), no dict made."""
        tick = self._fresh.get(code)
        if tick is not None:
            return tick.get(key)
        at = self._packed.get(code)
        if at is None:
            return None
        block, i = at
        try:
            column = block.columns[block.keys.index(key)]
        except ValueError:
            return None
        return column[i].tolist() if isinstance(column, np.ndarray) else column[i]

    def __contains__(self, code: object) -> bool:
        return code in self._fresh or code in self._packed

    def known(self, codes: Iterable[str]) -> set[str]:
        """Which of ``codes`` have a tick (no dicts made)."""
        wanted = set(codes)
        return (wanted & self._fresh.keys()) | (wanted & self._packed.keys())

    def many(self, codes: Iterable[str]) -> dict[str, Mapping[str, Any]]:
        """``{code: dict}`` for the ``codes`` that have a tick, in their order; packed ones made block by block
        (or taken from the readers' memo while their rows have not changed)."""
        out: dict[str, Any] = {}
        fresh, packed = self._fresh, self._packed
        wanted: dict[int, tuple[_Block, list[str], list[int]]] = {}
        for code in codes:
            tick = fresh.get(code)
            if tick is not None:
                out[code] = tick
                continue
            at = packed.get(code)
            if at is None or code in out:
                continue
            made = self._remembered(code, at)
            if made is not None:
                out[code] = made
                continue
            out[code] = None  # its place in the order; filled below
            group = wanted.get(id(at[0]))
            if group is None:
                group = wanted[id(at[0])] = (at[0], [], [])
            group[1].append(code)
            group[2].append(at[1])
        remember = sum(len(group[1]) for group in wanted.values()) <= MEMO_MAX
        for block, names, rows in wanted.values():
            made_now = block.rows(rows)
            out.update(zip(names, made_now, strict=True))
            if remember:
                for name, row, tick in zip(names, rows, made_now, strict=True):
                    self._remember(name, (block, row), tick)
        return out

    def stats(self) -> dict[str, int]:
        return {
            "fresh": len(self._fresh),
            "packed": len(self._packed),
            "blocks": len(self._blocks),
            "rows_held": self._rows_held,
            "waiting_batches": len(self._arrivals),
        }

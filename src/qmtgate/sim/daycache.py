"""The day's market state kept in the simulator's data directory, so a fresh process answers its first
whole-market query from files instead of recomputing the market (issue 19, item 5).

Why: the first whole-market snapshot of a session needs every instrument's daily skeleton of the day
(its daily chain over the whole history: ~10 s of numpy on a busy 2-core box) and the state of every
instrument after each 15-minute segment already traded (one whole-market segment draw each, ~0.5 s).
Real QMT answers its first ``get_full_tick`` from its cache in milliseconds; so does the simulator once
one process has computed a day: it writes

* ``context/*.npy``: the whole market's :class:`~qmtgate.sim.market.DayContext` of the session (the
  per-instrument skeleton: knots, segment highs/lows/volumes/amounts, limits, auction path; ~15 MB);
* ``state-<slot>.npz``: every instrument's latest-snapshot state after slot ``<slot>`` (the end of the
  opening auction, of each continuous segment, of the close), as a fresh process computes it;
* ``days/<YYYYMMDD>.npz`` (beside the day folders): every stock's chain values on each of the 20
  sessions after one whose daily history a process computed (~0.2 MB each): a process starting on one
  of them builds that session's skeleton without the history since 2015;
* ``segment-<j>/*.npy``: the whole market's 3 s paths of continuous segment ``<j>`` (price, volume,
  amount, trades per instrument and interval; ~37 MB), written by the process that drew it. A fresh
  process inside segment ``j`` restores the state at the segment's start and reads the paths up to its
  slot instead of drawing the segment (~0.3 s of numpy for ~5,900 instruments). Only the newest two
  segments of the newest session are kept: older ones are covered by the state files.

Results are bit-identical to computing them: files hold the computed arrays themselves, the state is
the one of a fresh advance from the session's start (the same order of float additions), and the key
holds everything the values depend on (seed, history start, calendar, a hash of the model's source,
numpy's version). Writers put a file in place with an atomic rename and never replace an existing one
(same key, same bytes; on Windows a file mapped by another process cannot be replaced anyway); readers
memory-map the context, so a per-code query touches only its rows.

Location: ``<data dir>/daycache/<model key>/seed-<seed>-<history start>/<YYYYMMDD>/``; the newest few
sessions of a key are kept. ``$QMTGATE_SIM_CACHE_DIR`` puts the ``daycache`` folder elsewhere: the cache
is a pure function of its key, so data directories kept apart (downloads, sectors, clock), as a test
suite keeps one per test, can share one cache and compute each session once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: Format of the files (bump when the layout changes; model changes are caught by the source hash).
#: 2: a state file holds the suspended stocks' 09:15 snapshot (slot 0), which format 1 states lack.
FORMAT = 2
#: Sessions kept per seed (older day folders are removed when a new one is written)
DAYS_KEPT = 3
#: The modules whose code determines the simulated values (their source is hashed into the key)
MODEL_MODULES = (
    "calendar",
    "daily",
    "daypath",
    "intraday",
    "live",
    "market",
    "rand",
    "rules",
    "snapshot",
    "timeutil",
    "universe",
)

#: Segments kept (the newest ones of the newest session): a fresh process needs the current one only
SEGMENTS_KEPT = 2
#: A segment's arrays and the dtype each is stored in (integers narrowed to 32 bits when they fit)
SEGMENT_FIELDS = {
    "traded": np.bool_,
    "price": np.int32,
    "volume": np.int32,
    "amount": np.float64,
    "trades": np.int32,
}

#: The latest-snapshot fields a state file holds (the others come from the day's context)
STATE_FIELDS = ("slot", "price", "open", "high", "low", "cum_volume", "cum_amount", "cum_trades")

_MODEL_KEY: str | None = None


def model_key() -> str:
    """Format, numpy version (its generators' streams) and a hash of the model's source code."""
    global _MODEL_KEY
    if _MODEL_KEY is None:
        h = hashlib.blake2b(digest_size=8)
        here = Path(__file__).parent
        for name in MODEL_MODULES:
            h.update((here / f"{name}.py").read_bytes())
        _MODEL_KEY = f"f{FORMAT}-np{np.__version__}-{h.hexdigest()}"
    return _MODEL_KEY


#: where the day cache lives when not under the data directory (see the module docstring)
CACHE_DIR_ENV = "QMTGATE_SIM_CACHE_DIR"


class DayCache:
    """The cached state of the sessions of one seed under a data directory."""

    def __init__(self, data_dir: Path, seed: int, history_start: dt.date, calendar_key: str) -> None:
        base = Path(os.environ.get(CACHE_DIR_ENV) or Path(data_dir) / "daycache")
        self.root = base / model_key() / f"seed-{seed}-{history_start:%Y%m%d}-{calendar_key}"

    def folder(self, day: dt.date) -> Path:
        return self.root / f"{day:%Y%m%d}"

    # ------------------------------------------------------------------ day context

    def load_context(self, day: dt.date) -> dict[str, np.ndarray] | None:
        """The context's arrays (memory-mapped), or None if no process has written them yet."""
        folder = self.folder(day) / "context"
        if not (folder / "done").exists():
            return None
        try:
            return {p.stem: np.load(p, mmap_mode="r") for p in folder.glob("*.npy")}
        except (OSError, ValueError):  # removed or damaged meanwhile: compute instead
            logger.warning("simulator day cache: cannot read %s; computing instead", folder, exc_info=True)
            return None

    def save_context(self, day: dt.date, arrays: dict[str, np.ndarray]) -> None:
        """Write the context once (a folder renamed into place; an existing one is kept)."""
        final = self.folder(day) / "context"
        if (final / "done").exists():
            return

        def write(tmp: Path) -> None:
            for name, value in arrays.items():
                np.save(tmp / f"{name}.npy", np.ascontiguousarray(value), allow_pickle=False)
            (tmp / "done").write_bytes(b"")

        if _publish_dir(final, write):
            self._prune()

    # ------------------------------------------------------------------ states at slot boundaries

    def state_slots(self, day: dt.date) -> list[int]:
        """Slots after which the whole market's fresh state is cached, ascending."""
        folder = self.folder(day)
        out = []
        for p in folder.glob("state-*.npz"):
            with contextlib.suppress(ValueError):
                out.append(int(p.stem.split("-", 1)[1]))
        return sorted(out)

    def load_state(self, day: dt.date, slot: int) -> dict[str, np.ndarray] | None:
        path = self.folder(day) / f"state-{slot}.npz"
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in STATE_FIELDS}
        except (OSError, ValueError, KeyError):
            return None

    def save_state(self, day: dt.date, slot: int, state: Any) -> None:
        """Write the state after ``slot`` once (``state`` has the :data:`STATE_FIELDS` attributes)."""
        path = self.folder(day) / f"state-{slot}.npz"
        if not path.exists():
            _write_npz_once(path, {k: np.asarray(getattr(state, k)) for k in STATE_FIELDS})

    # ------------------------------------------------------------------ segment paths

    def load_segment(self, day: dt.date, j: int) -> dict[str, np.ndarray] | None:
        """Segment ``j``'s whole-market paths (arrays in the computing dtypes), or None."""
        folder = self.folder(day) / f"segment-{j}"
        if not (folder / "done").exists():
            return None
        try:
            out = {}
            for name in SEGMENT_FIELDS:
                value = np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
                out[name] = value.astype(np.int64) if value.dtype == np.int32 else np.array(value)
            return out
        except (OSError, ValueError):  # removed meanwhile (pruned by a writer): draw instead
            logger.debug("simulator day cache: cannot read %s; drawing instead", folder, exc_info=True)
            return None

    def save_segment(self, day: dt.date, j: int, arrays: dict[str, np.ndarray]) -> None:
        """Write segment ``j`` once (skipped if a value does not fit its narrow dtype) and prune the
        segments no fresh process needs any more."""
        final = self.folder(day) / f"segment-{j}"
        if (final / "done").exists():
            return
        narrow = {}
        for name, dtype in SEGMENT_FIELDS.items():
            value = np.asarray(arrays[name])
            if np.issubdtype(dtype, np.integer):
                info = np.iinfo(dtype)
                if value.size and (value.min() < info.min or value.max() > info.max):
                    logger.debug("simulator day cache: segment %s %s out of %s; not cached", j, name, dtype)
                    return
            narrow[name] = value.astype(dtype, copy=False)

        def write(tmp: Path) -> None:
            for name, value in narrow.items():
                np.save(tmp / f"{name}.npy", np.ascontiguousarray(value), allow_pickle=False)
            (tmp / "done").write_bytes(b"")

        if _publish_dir(final, write):
            self._prune_segments(day, j)

    def _prune_segments(self, day: dt.date, j: int) -> None:
        """Remove the segments older than the newest :data:`SEGMENTS_KEPT` (best effort: on Windows a
        file another process has mapped stays until it is closed; a later writer removes it)."""
        for folder in self.root.glob("*/segment-*"):
            with contextlib.suppress(ValueError):
                k, of = int(folder.name.split("-", 1)[1]), folder.parent.name
                if of < f"{day:%Y%m%d}" or (of == f"{day:%Y%m%d}" and k <= j - SEGMENTS_KEPT):
                    shutil.rmtree(folder, ignore_errors=True)

    # ------------------------------------------------------------------ stocks' chains, by session

    def load_day_slice(self, day: dt.date) -> dict[str, np.ndarray] | None:
        """Every listed stock's chain values on session ``day`` (see :meth:`save_day_slices`)."""
        try:
            with np.load(self.root / "days" / f"{day:%Y%m%d}.npz", allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError):
            return None

    def save_day_slices(self, slices: dict[dt.date, dict[str, np.ndarray]]) -> None:
        """Write the stocks' chain values of the sessions following a computed one (~0.2 MB each): the
        next sessions' whole-market skeletons then need no daily history since 2015 (the chains are
        the same whatever the session; only the session's row of each is read)."""
        folder = self.root / "days"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            logger.warning("simulator day cache: cannot write under %s", folder, exc_info=True)
            return
        for day, arrays in slices.items():
            path = folder / f"{day:%Y%m%d}.npz"
            if not path.exists() and not _write_npz_once(path, arrays):
                return
        if slices:  # sessions more than ~3 months before the new ones are not read again: remove them
            oldest = f"{min(slices) - dt.timedelta(days=90):%Y%m%d}"
            for old in folder.glob("*.npz"):
                if old.stem < oldest:
                    old.unlink(missing_ok=True)

    # ------------------------------------------------------------------ index chains

    def load_chain(self, code: str) -> dict[str, np.ndarray] | None:
        """An index's daily chain (whole history; an index level needs every member's): see
        :meth:`save_chain`."""
        try:
            with np.load(self.root / "chains" / f"{code}.npz", allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError):
            return None

    def save_chain(self, code: str, arrays: dict[str, np.ndarray]) -> None:
        """Write an index's chain once (~140 KB): the first index quote of a fresh process then reads
        it instead of computing the daily history of its hundreds of members."""
        path = self.root / "chains" / f"{code}.npz"
        if not path.exists():
            _write_npz_once(path, arrays)

    # ------------------------------------------------------------------ housekeeping

    def _prune(self) -> None:
        """Keep the newest :data:`DAYS_KEPT` sessions (best effort: a folder in use may stay)."""
        days = sorted(p for p in self.root.iterdir() if p.is_dir() and p.name.isdigit())
        for old in days[:-DAYS_KEPT]:
            shutil.rmtree(old, ignore_errors=True)


def _write_npz_once(path: Path, arrays: dict[str, np.ndarray]) -> bool:
    """Write ``arrays`` to ``path`` atomically (a temporary file, then a rename), unless another process
    put it there first: every process computes the same values, so theirs is as good. False (logged) when
    the folder cannot be written: the cache is an optimisation, never a failure."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        try:
            os.replace(tmp, path) if not path.exists() else os.unlink(tmp)
        except OSError:  # another process put it in place (and has it open): theirs is the same
            Path(tmp).unlink(missing_ok=True)
    except OSError:
        logger.warning("simulator day cache: cannot write %s", path, exc_info=True)
        return False
    return True


def _publish_dir(final: Path, write: Any) -> bool:
    """Fill a temporary folder beside ``final`` with ``write(tmp)`` and rename it into place; False
    when another process was first (or the data directory is not writable)."""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=final.name + ".", suffix=".tmp"))
    except OSError:
        logger.warning("simulator day cache: cannot write under %s", final.parent, exc_info=True)
        return False
    try:
        write(tmp)
        if (final / "done").exists():
            return False
        if final.exists():  # a writer died half-way: its folder has no "done"; replace it
            shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        return True
    except OSError:
        logger.debug("simulator day cache: %s written by another process", final, exc_info=True)
        return False
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def context_arrays(ctx: Any) -> dict[str, np.ndarray]:
    """A DayContext's array fields by name (``ordinal`` is the folder's day)."""
    return {f.name: getattr(ctx, f.name) for f in fields(ctx) if f.name != "ordinal"}


__all__ = ["SEGMENT_FIELDS", "STATE_FIELDS", "DayCache", "context_arrays", "model_key"]

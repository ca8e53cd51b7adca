"""One dedicated thread that owns xtdata, fed by priority lanes from asyncio code.

Why one thread: concurrent xtdata calls can crash the native client, and the xtdata client object is
created lazily by whichever thread calls first. So every upstream call goes through this executor, whose
single worker thread is the only thread that ever touches the xtdata module.

Why lanes: a long history query must not make a snapshot or a status probe wait behind it more than the
one call already running. The worker always takes the next job from the highest-priority non-empty lane
(``CONTROL`` > ``SNAPSHOT`` > ``HISTORY`` > ``DOWNLOAD``), FIFO within a lane. A running call is never
preempted, so callers that issue long work (downloads) must split it into short jobs.

Why merged jobs: many clients asking for snapshots at the same moment should cost one ``get_full_tick``.
Jobs submitted with :meth:`XtdataExecutor.submit_merged` and the same ``merge_key`` that are queued when the
worker reaches the first of them are run as ONE upstream call with the union of their items; each caller
gets back only its own items. A merged job that reaches an idle worker waits a short *gather window*: until
no job of its key has arrived for ``ExecutorConfig.merge_window`` (5 ms), at most ``merge_window_max``
(20 ms) after it was queued, so that requests arriving together (eight dashboards polling on the same
tick, the chunks of one large request) share one call instead of the first running alone and the rest
merging into a second one. The worker waits, it does not run anything meanwhile: xtdata stays strictly
serialized. Measured (bench/peer_bench.py, 8 concurrent 50-code requests, 100 ms per call, loaded 2-core
box): the requests of a burst reach the executor over 10-20 ms, so a fixed 2 ms window still cost 2-3
calls; waiting for a lull (at most 20 ms) brings it to one call in most bursts (a 5 ms lull: 8 of 9
bursts, a 2 ms lull: 6 of 9).

Why joining a running call: pollers that ask together keep asking together (eight watch lists refreshed
every second), and their requests reach the gateway spread over several ms by the clients themselves, so
a lull either splits the burst or delays every call. Items of jobs that shared a call are *hot* for
``ExecutorConfig.hot_seconds``: the next call of their key also asks for them (at most ``hot_max``
extra items), a merged job whose items are all hot takes no lull, and a job that arrives while its key's
call is running joins that call when the call asks for all of its items and began at most ``join_window``
before the job arrived. So a request is answered by a call that began at most ``join_window`` before it
arrived, or after it arrived, as with the gather window; only small jobs (at most :data:`HOT_JOB_ITEMS`
items) make items hot, so one large request does not enlarge the calls that follow it.

Timeouts: each call has a deadline covering queue wait plus run time. On expiry the caller gets
:class:`~qmtgate.errors.SourceTimeout`. A job still queued is dropped (it never runs); a job already
running cannot be interrupted, so the executor reports itself DEGRADED until that call returns. It never
starts a second thread that would touch xtdata.

Queues are bounded per lane; a full lane raises :class:`~qmtgate.errors.SourceBusy` at submit time.
Only portable primitives are used (``threading``, ``asyncio``): production is Windows.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import itertools
import logging
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from qmtgate.errors import SourceBusy, SourceTimeout, SourceUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: jobs of at most this many items make their items hot when they share a call (a poller's watch list);
#: a larger job (a sector's chunk) is a one-off read, and its items would only enlarge later calls
HOT_JOB_ITEMS = 200


class Lane(enum.IntEnum):
    """Priority lanes; a lower value runs first."""

    CONTROL = 0  # cheap status/connect calls; must never wait behind data
    SNAPSHOT = 1  # get_full_tick and cheap reference lookups
    HISTORY = 2  # get_market_data_ex and other range queries
    DOWNLOAD = 3  # download_history_data2 chunks


class ExecutorState(str, enum.Enum):
    """Component state, reported by health: a boolean ``alive`` would hide DEGRADED."""

    NEW = "new"
    RUNNING = "running"
    DEGRADED = "degraded"  # a call outlived its caller's deadline; the thread may be stuck in xtdata
    FAULTED = "faulted"  # the worker thread died; nothing will run again
    STOPPED = "stopped"


DEFAULT_CAPACITY: Mapping[Lane, int] = {
    Lane.CONTROL: 64,
    Lane.SNAPSHOT: 256,
    Lane.HISTORY: 64,
    Lane.DOWNLOAD: 16,
}
DEFAULT_TIMEOUT: Mapping[Lane, float] = {
    Lane.CONTROL: 5.0,
    Lane.SNAPSHOT: 5.0,
    Lane.HISTORY: 30.0,
    Lane.DOWNLOAD: 600.0,
}


@dataclass(frozen=True)
class ExecutorConfig:
    """Executor limits.

    ``capacity``: maximum queued (not running) jobs per lane. ``timeout``: default per-call deadline per lane,
    in seconds, covering queue wait and run time. ``thread_name``: name of the worker thread (shows up in
    debuggers and thread dumps). ``merge_window``: a merged job (``submit_merged``) is taken once no other
    job of its key has been queued for this many seconds, gathering a burst into one call (0 disables);
    ``merge_window_max``: the longest a merged job waits so, from when it was queued. ``join_window``: a
    merged job arriving while a call of its key runs joins it if the call asks for all of its items and
    began at most this many seconds before (0 disables joining and hot items). ``hot_seconds``: how long
    the items of small jobs that shared a call are added to later calls of their key; ``hot_max``: at
    most this many such extra items per call.
    """

    capacity: Mapping[Lane, int] = field(default_factory=lambda: dict(DEFAULT_CAPACITY))
    timeout: Mapping[Lane, float] = field(default_factory=lambda: dict(DEFAULT_TIMEOUT))
    thread_name: str = "qmtgate-xtdata"
    merge_window: float = 0.005
    merge_window_max: float = 0.02
    join_window: float = 0.02
    hot_seconds: float = 5.0
    hot_max: int = 1000


@dataclass(frozen=True)
class CallStats:
    """Per upstream-function statistics; ``count`` counts upstream calls (a merged call counts once)."""

    count: int = 0
    errors: int = 0
    requests: int = 0  # caller requests served; > count when calls were merged
    joined: int = 0  # of which joined the call while it was running
    total_seconds: float = 0.0
    max_seconds: float = 0.0

    @property
    def mean_seconds(self) -> float:
        return self.total_seconds / self.count if self.count else 0.0


@dataclass(frozen=True)
class LaneStats:
    """Per-lane counters; ``depth`` is the current number of queued jobs."""

    depth: int = 0
    capacity: int = 0
    submitted: int = 0
    rejected: int = 0  # SourceBusy at submit
    timeouts: int = 0
    completed: int = 0
    errors: int = 0
    wait_total_seconds: float = 0.0
    wait_max_seconds: float = 0.0


@dataclass(frozen=True)
class ExecutorStatus:
    """A consistent snapshot of the executor for health and metrics; cheap, never waits on the worker."""

    state: ExecutorState
    lanes: Mapping[str, LaneStats]
    calls: Mapping[str, CallStats]
    current_call: str | None
    current_running_seconds: float | None
    degraded_call: str | None

    @property
    def queue_depths(self) -> dict[str, int]:
        return {name: lane.depth for name, lane in self.lanes.items()}


class _JobState(enum.Enum):
    QUEUED = 1
    RUNNING = 2
    DONE = 3
    DROPPED = 4  # the caller gave up while it was queued; it will never run


class _Job:
    __slots__ = (
        "args",
        "enqueued_at",
        "fn",
        "future",
        "joinable",
        "kwargs",
        "lane",
        "loop",
        "merge_items",
        "merge_key",
        "name",
        "started_at",
        "state",
    )

    def __init__(
        self,
        lane: Lane,
        name: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        loop: asyncio.AbstractEventLoop,
        merge_key: Hashable | None = None,
        merge_items: tuple[Hashable, ...] = (),
        joinable: bool = False,
    ) -> None:
        self.lane = lane
        self.name = name
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()
        self.merge_key = merge_key
        self.merge_items = merge_items
        self.joinable = joinable
        self.state = _JobState.QUEUED
        self.enqueued_at = time.monotonic()
        self.started_at = 0.0


class _MutableLane:
    __slots__ = (
        "completed",
        "errors",
        "rejected",
        "submitted",
        "timeouts",
        "wait_max",
        "wait_total",
    )

    def __init__(self) -> None:
        self.submitted = self.rejected = self.timeouts = self.completed = self.errors = 0
        self.wait_total = self.wait_max = 0.0


class _MutableCall:
    __slots__ = ("count", "errors", "joined", "max", "requests", "total")

    def __init__(self) -> None:
        self.count = self.errors = self.requests = self.joined = 0
        self.total = self.max = 0.0


def _resolve(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    # Runs on the caller's loop. The caller may have timed out or been cancelled meanwhile.
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class XtdataExecutor:
    """Run blocking callables on one worker thread, with priority lanes, deadlines and merging.

    Usage (from asyncio code)::

        executor = XtdataExecutor()
        executor.start()
        ticks = await executor.submit_merged(Lane.SNAPSHOT, "get_full_tick", codes, xtdata.get_full_tick)
        frames = await executor.submit(Lane.HISTORY, xtdata.get_market_data_ex, [], codes, period="1d")
        await executor.stop()

    All public methods are safe to call from any thread and any event loop; results are delivered on the
    loop that submitted the job.
    """

    def __init__(self, config: ExecutorConfig | None = None) -> None:
        self._config = config or ExecutorConfig()
        self._cond = threading.Condition()
        self._queues: dict[Lane, collections.deque[_Job]] = {lane: collections.deque() for lane in Lane}
        self._lane_stats: dict[Lane, _MutableLane] = {lane: _MutableLane() for lane in Lane}
        self._call_stats: dict[str, _MutableCall] = {}
        self._thread: threading.Thread | None = None
        self._state = ExecutorState.NEW
        self._current: list[_Job] = []
        self._current_name: str | None = None
        #: what the running merged call asks for (None: no merged call is running), for joining it
        self._current_cover: frozenset[Hashable] | None = None
        #: merge key -> item -> when a small job of it last shared a call (monotonic); see hot_seconds
        self._hot: dict[Hashable, dict[Hashable, float]] = {}
        self._joined_pending = 0  # joined jobs of the running call (counted into its stats)
        self._degraded_jobs: list[_Job] = []
        #: times the worker waited for a merged job's gather window (tests, diagnostics)
        self.gathers = 0
        #: ``fn(function, lane, seconds, ok)`` after every upstream call, on the worker thread (metrics);
        #: must be quick and must not raise (an observer that raises is logged and skipped)
        self.call_observers: list[Callable[[str, str, float, bool], None]] = []

    @property
    def config(self) -> ExecutorConfig:
        return self._config

    @property
    def state(self) -> ExecutorState:
        return self._state

    @property
    def thread_ident(self) -> int | None:
        """Identifier of the worker thread (for tests and diagnostics)."""
        return self._thread.ident if self._thread is not None else None

    def start(self) -> None:
        """Start the worker thread; idempotent while running."""
        with self._cond:
            if self._thread is not None:
                if self._state in (ExecutorState.STOPPED, ExecutorState.FAULTED):
                    raise RuntimeError("Cannot restart a stopped executor; create a new one.")
                return
            # Daemon: a call stuck inside native code must not keep the process alive at exit.
            self._thread = threading.Thread(target=self._run, name=self._config.thread_name, daemon=True)
            self._state = ExecutorState.RUNNING
            self._thread.start()

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting work, fail queued jobs with SourceUnavailable, wait up to ``timeout`` s for the thread."""
        with self._cond:
            if self._state in (ExecutorState.STOPPED, ExecutorState.NEW) and self._thread is None:
                self._state = ExecutorState.STOPPED
                return
            self._state = ExecutorState.STOPPED
            pending = [job for queue in self._queues.values() for job in queue]
            for queue in self._queues.values():
                queue.clear()
            for job in pending:
                job.state = _JobState.DROPPED
            self._cond.notify_all()
        for job in pending:
            self._deliver(job, False, SourceUnavailable("source executor stopped", {"call": job.name}))
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            await asyncio.to_thread(thread.join, timeout)
            if thread.is_alive():
                logger.warning("xtdata executor thread still busy in %s after stop", self._current_name)

    async def submit(
        self,
        lane: Lane,
        fn: Callable[..., T],
        /,
        *args: Any,
        timeout: float | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> T:
        """Run ``fn(*args, **kwargs)`` on the worker thread and return its result.

        ``timeout`` (seconds, default: the lane's) covers queue wait and run time. Raises SourceBusy when the
        lane is full, SourceUnavailable when the executor is not running, SourceTimeout on expiry, and
        whatever ``fn`` raised otherwise.
        """
        loop = asyncio.get_running_loop()
        job = _Job(lane, name or _name_of(fn), fn, args, kwargs, loop)
        self._enqueue(job)
        return await self._wait(job, timeout)

    async def submit_merged(
        self,
        lane: Lane,
        merge_key: Hashable,
        items: Sequence[Hashable],
        fn: Callable[[list[Any]], Mapping[Any, Any]],
        *,
        timeout: float | None = None,
        name: str | None = None,
        joinable: bool = False,
    ) -> dict[Any, Any]:
        """Run ``fn(items)`` merged with other queued jobs of the same ``merge_key``; return this job's subset.

        ``fn`` takes a list of items and returns a mapping keyed by item (like ``get_full_tick``). Jobs that
        share a key must be interchangeable: the first queued job's ``fn`` serves the whole group. Items absent
        from the upstream answer are absent from each caller's answer. ``joinable``: the job may join a
        running call of its key and its items may become hot (see the module's docstring): for reads whose
        answer may be a few ms older than the request (snapshots), not for calls with per-day caches behind.
        """
        loop = asyncio.get_running_loop()
        unique = tuple(dict.fromkeys(items))
        job = _Job(
            lane, name or str(merge_key), fn, (), {}, loop, merge_key=merge_key, merge_items=unique,
            joinable=joinable and self._config.join_window > 0,
        )  # fmt: skip
        self._enqueue(job)
        return await self._wait(job, timeout)

    def status(self) -> ExecutorStatus:
        """Return a snapshot of state, queue depths and call statistics."""
        now = time.monotonic()
        with self._cond:
            lanes = {
                lane.name.lower(): LaneStats(
                    depth=len(self._queues[lane]),
                    capacity=self._config.capacity.get(lane, DEFAULT_CAPACITY[lane]),
                    submitted=s.submitted,
                    rejected=s.rejected,
                    timeouts=s.timeouts,
                    completed=s.completed,
                    errors=s.errors,
                    wait_total_seconds=s.wait_total,
                    wait_max_seconds=s.wait_max,
                )
                for lane, s in self._lane_stats.items()
            }
            calls = {
                name: CallStats(
                    count=c.count,
                    errors=c.errors,
                    requests=c.requests,
                    joined=c.joined,
                    total_seconds=c.total,
                    max_seconds=c.max,
                )
                for name, c in self._call_stats.items()
            }
            running = now - self._current[0].started_at if self._current else None
            return ExecutorStatus(
                state=self._state,
                lanes=lanes,
                calls=calls,
                current_call=self._current_name if self._current else None,
                current_running_seconds=running,
                degraded_call=self._degraded_jobs[0].name if self._degraded_jobs else None,
            )

    def queue_depths(self) -> dict[str, int]:
        """Queued jobs per lane name."""
        with self._cond:
            return {lane.name.lower(): len(queue) for lane, queue in self._queues.items()}

    # -- caller side -------------------------------------------------------------------------------------

    def _join_locked(self, job: _Job) -> bool:
        """Attach ``job`` to the running merged call of its key if that call asks for all of its items and
        began at most ``join_window`` before the job arrived. Checked under the same lock as the queueing,
        so a job either joins the call or is queued before the worker can take the next batch."""
        cover = self._current_cover
        if cover is None or not job.joinable:
            return False
        head = self._current[0]
        if head.merge_key != job.merge_key or head.lane is not job.lane:
            return False
        if job.enqueued_at - head.started_at > self._config.join_window:
            return False
        if not cover.issuperset(job.merge_items):
            return False
        job.state = _JobState.RUNNING
        job.started_at = job.enqueued_at
        self._current.append(job)
        self._joined_pending += 1
        return True

    def _enqueue(self, job: _Job) -> None:
        with self._cond:
            if self._state not in (ExecutorState.RUNNING, ExecutorState.DEGRADED):
                raise SourceUnavailable(
                    f"source executor is {self._state.value}", {"call": job.name, "state": self._state.value}
                )
            stats = self._lane_stats[job.lane]
            if self._join_locked(job):  # takes no place in the queue
                stats.submitted += 1
                return
            capacity = self._config.capacity.get(job.lane, DEFAULT_CAPACITY[job.lane])
            queue = self._queues[job.lane]
            if len(queue) >= capacity:
                stats.rejected += 1
                raise SourceBusy(
                    f"source {job.lane.name.lower()} queue is full ({capacity} waiting)",
                    {"lane": job.lane.name.lower(), "capacity": capacity, "call": job.name},
                )
            stats.submitted += 1
            queue.append(job)
            self._cond.notify()

    async def _wait(self, job: _Job, timeout: float | None) -> Any:
        deadline = (
            timeout if timeout is not None else self._config.timeout.get(job.lane, DEFAULT_TIMEOUT[job.lane])
        )
        try:
            # Not shielded: on expiry wait_for cancels job.future, so a late result is discarded quietly.
            return await asyncio.wait_for(job.future, deadline)
        except asyncio.TimeoutError:
            phase = self._give_up(job, timed_out=True)
            raise SourceTimeout(
                f"{job.name} did not answer within {deadline:g} s",
                {
                    "call": job.name,
                    "lane": job.lane.name.lower(),
                    "timeout_seconds": deadline,
                    "phase": phase,
                },
            ) from None
        except asyncio.CancelledError:
            self._give_up(job, timed_out=False)
            raise

    def _give_up(self, job: _Job, *, timed_out: bool) -> str:
        # Returns where the job was when its caller gave up: "queued" (now dropped) or "running"/"done".
        with self._cond:
            if timed_out:
                self._lane_stats[job.lane].timeouts += 1
            if job.state is _JobState.QUEUED:
                job.state = _JobState.DROPPED
                self._queues[job.lane].remove(job)
                return "queued"
            if job.state is _JobState.RUNNING and timed_out:
                if not self._degraded_jobs:
                    logger.warning(
                        "xtdata call %s is still running after its %s-lane deadline; executor DEGRADED",
                        job.name,
                        job.lane.name.lower(),
                    )
                self._degraded_jobs.append(job)
                if self._state is ExecutorState.RUNNING:
                    self._state = ExecutorState.DEGRADED
                return "running"
            return job.state.name.lower()

    # -- worker side -------------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while self._state is not ExecutorState.STOPPED and not any(self._queues.values()):
                        self._cond.wait()
                    if self._state is ExecutorState.STOPPED:
                        return
                    gather = self._gather_wait_locked()
                    if gather > 0:
                        # Let requests that arrive together join this merged call; any new job (a more
                        # urgent lane too) wakes the worker, which then decides again.
                        self.gathers += 1
                        self._cond.wait(gather)
                        continue
                    batch, union = self._take_locked()
                self._execute(batch, union)
        except BaseException:
            logger.critical("xtdata executor thread died", exc_info=True)
            with self._cond:
                self._state = ExecutorState.FAULTED
                pending = [job for queue in self._queues.values() for job in queue]
                for queue in self._queues.values():
                    queue.clear()
            for job in pending:
                self._deliver(
                    job, False, SourceUnavailable("source executor thread died", {"call": job.name})
                )
            raise

    def _gather_wait_locked(self) -> float:
        """Seconds to wait before taking the next job: a merged head job waits until no job of its key
        has arrived for ``merge_window`` (requests of one burst keep arriving a few ms apart under load),
        at most ``merge_window_max`` after it was queued."""
        window = self._config.merge_window
        if window <= 0:
            return 0.0
        for lane in Lane:
            queue = self._queues[lane]
            if queue:
                head = queue[0]
                if head.merge_key is None:
                    return 0.0
                mates = [job for job in queue if job.merge_key == head.merge_key]
                if self._all_hot_locked(head.merge_key, mates):
                    return 0.0  # the burst's later requests join the running call
                last = max(job.enqueued_at for job in mates)
                until = min(last + window, head.enqueued_at + max(window, self._config.merge_window_max))
                return max(0.0, until - time.monotonic())
        return 0.0

    def _hot_items_locked(self, key: Hashable) -> dict[Hashable, float]:
        """The key's hot items, those older than ``hot_seconds`` dropped."""
        hot = self._hot.get(key)
        if not hot:
            return {}
        oldest = time.monotonic() - self._config.hot_seconds
        # the dict is in order of last use (see _mark_hot_locked): the stale ones are a prefix
        stale = [item for item, _ in itertools.takewhile(lambda pair: pair[1] < oldest, hot.items())]
        for item in stale:
            del hot[item]
        return hot

    def _all_hot_locked(self, key: Hashable, jobs: list[_Job]) -> bool:
        if not all(job.joinable for job in jobs):
            return False
        hot = self._hot_items_locked(key)
        return bool(hot) and all(item in hot for job in jobs for item in job.merge_items)

    def _mark_hot_locked(self, key: Hashable, jobs: list[_Job], now: float) -> None:
        if self._config.hot_seconds <= 0:
            return
        hot = self._hot.setdefault(key, {})
        for job in jobs:
            if job.joinable and len(job.merge_items) <= HOT_JOB_ITEMS:
                for item in job.merge_items:
                    hot.pop(item, None)  # re-inserted last: the dict stays in order of last use
                    hot[item] = now

    def _take_locked(self) -> tuple[list[_Job], list[Any] | None]:
        """The next batch and, for a merged one, the items its call asks for (its jobs' items, then the
        key's most recently used hot items up to ``hot_max``)."""
        for lane in Lane:
            queue = self._queues[lane]
            if not queue:
                continue
            head = queue.popleft()
            batch = [head]
            union: list[Any] | None = None
            now = time.monotonic()
            if head.merge_key is not None:
                mates = [job for job in queue if job.merge_key == head.merge_key]
                for job in mates:
                    queue.remove(job)
                batch.extend(mates)
                wanted = dict.fromkeys(item for job in batch for item in job.merge_items)
                union = list(wanted)
                if head.joinable:
                    hot = self._hot_items_locked(head.merge_key)
                    fresh = (item for item in reversed(hot) if item not in wanted)
                    union += itertools.islice(fresh, self._config.hot_max)
                    self._current_cover = frozenset(union)
            stats = self._lane_stats[lane]
            for job in batch:
                job.state = _JobState.RUNNING
                job.started_at = now
                wait = now - job.enqueued_at
                stats.wait_total += wait
                stats.wait_max = max(stats.wait_max, wait)
            self._current = batch
            self._current_name = head.name
            return batch, union
        raise AssertionError("called with all queues empty")

    def _execute(self, batch: list[_Job], union: list[Any] | None) -> None:
        head = batch[0]
        started = time.monotonic()
        ok = True
        value: Any
        try:
            if union is not None:
                value = head.fn(union)
                if not isinstance(value, Mapping):
                    raise TypeError(f"{head.name} returned {type(value).__name__}, expected a mapping")
            else:
                value = head.fn(*head.args, **head.kwargs)
        except Exception as e:
            ok, value = False, e
        elapsed = time.monotonic() - started
        with self._cond:
            self._record_locked(batch, ok, elapsed)
        for observe in self.call_observers:
            try:
                observe(head.name, head.lane.name.lower(), elapsed, ok)
            except Exception:
                logger.exception("executor call observer failed")
        for job in batch:
            if not ok:
                self._deliver(job, False, value)
            elif job.merge_key is not None:
                self._deliver(job, True, {item: value[item] for item in job.merge_items if item in value})
            else:
                self._deliver(job, True, value)

    def _record_locked(self, batch: list[_Job], ok: bool, elapsed: float) -> None:
        head = batch[0]
        call = self._call_stats.setdefault(head.name, _MutableCall())
        call.count += 1
        call.requests += len(batch)
        call.joined += self._joined_pending
        self._joined_pending = 0
        self._current_cover = None  # from here on, nothing joins this call
        if head.merge_key is not None and len(batch) > 1:  # merged or joined: these jobs shared a call
            self._mark_hot_locked(head.merge_key, batch, time.monotonic())
        call.total += elapsed
        call.max = max(call.max, elapsed)
        lane = self._lane_stats[head.lane]
        lane.completed += len(batch)
        if not ok:
            call.errors += 1
            lane.errors += len(batch)
        for job in batch:
            job.state = _JobState.DONE
        self._current = []
        if self._degraded_jobs and any(job in batch for job in self._degraded_jobs):
            self._degraded_jobs = [job for job in self._degraded_jobs if job not in batch]
            if not self._degraded_jobs and self._state is ExecutorState.DEGRADED:
                self._state = ExecutorState.RUNNING
                logger.warning(
                    "xtdata call %s returned after %.1f s; executor RUNNING again", head.name, elapsed
                )

    @staticmethod
    def _deliver(job: _Job, ok: bool, value: Any) -> None:
        # RuntimeError: the caller's loop is closed; nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            job.loop.call_soon_threadsafe(_resolve, job.future, ok, value)


def _name_of(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__name__", None) or getattr(getattr(fn, "func", None), "__name__", None) or repr(fn)

"""Offline replay: the stream's logic over a JSON Lines file (or the input topic).

Every record goes through :func:`agents.domain.moment_processor.process_record`, the
function the scoring agent calls; the silence check and the touchpoint andon run the
same domain functions as their agents (:mod:`streams.offline.replay_shard`), so a replay
and the stream emit the same alerts, with the same ids.

Customers are put on partitions as the topic's partitioner puts them, and partitions on
``workers`` processes; each worker keeps its customers' states in an LRU of
``MOT_REPLAY_CACHE_CUSTOMERS`` and spills the rest to a temporary RocksDB store. The
parent merges what the workers return by input position and runs the andon over the
observations in that order, so the output is the same for any number of workers.

Event-time order with bounded memory: records pass through a reorder buffer, a heap of
at most ``MOT_REPLAY_REORDER_BUFFER`` records keyed by (event time, line number). A
record displaced by fewer lines than that from its event-time position comes out in
order; one displaced further is processed when it comes, as a late arrival is in the
stream, and is counted as ``out_of_order``.
"""

from __future__ import annotations

import heapq
import queue
import resource
import shutil
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import orjson

from agents.domain.customer_state import CustomerState
from agents.domain.model_config import ModelConfig
from agents.domain.moment_processor import Output, process_record
from agents.domain.report import ReportBuilder
from agents.domain.rules import RuleBook, env_rules
from agents.domain.touchpoint_status import KIND as STATUS
from agents.domain.touchpoint_status import TouchpointState, count_moment, status_alert
from agents.domain.touchpoint_status import new_state as new_status_state
from streams.kafka.default_partitioner import partition_of
from streams.offline.jsonl import LineSource
from streams.offline.progress import Progress
from streams.offline.replay_shard import Item, Shard, ShardCounts
from streams.settings import Settings

UNORDERED = float("-inf")  # a line with no usable event time: processed (rejected) at once


@dataclass(slots=True)
class Summary:
    """What a run did, for the closing line and for tests."""

    lines: int = 0
    scored: int = 0
    duplicates: int = 0
    invalid: int = 0
    invalid_by_reason: dict[str, int] = field(default_factory=dict)
    alerts_by_kind: dict[str, int] = field(default_factory=dict)
    out_of_order: int = 0
    customers: int = 0
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    workers: int = 1
    worker_peak_rss_mb: float = 0.0  # the largest worker process (0: ran in-process)
    spilled: int = 0  # customers' states written to the spill store

    def add(self, c: ShardCounts) -> None:
        self.scored += c.scored
        self.duplicates += c.duplicates
        for reason, n in c.invalid_by_reason.items():
            self.invalid_by_reason[reason] = self.invalid_by_reason.get(reason, 0) + n
            self.invalid += n
        for kind, n in c.alerts_by_kind.items():
            self.alerts_by_kind[kind] = self.alerts_by_kind.get(kind, 0) + n
        self.customers += c.customers
        self.spilled += c.spilled

    @property
    def events_per_s(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(self.invalid_by_reason.items()))
        kinds = ", ".join(f"{k} {n:,}" for k, n in sorted(self.alerts_by_kind.items()))
        return (
            f"replayed {self.lines:,} records in {self.seconds:.1f} s "
            f"({self.events_per_s:,.0f} events/s): {self.scored:,} scored, "
            f"{self.duplicates:,} duplicates, {self.invalid:,} invalid"
            + (f" ({reasons})" if reasons else "")
            + f", {sum(self.alerts_by_kind.values()):,} alerts" + (f" ({kinds})" if kinds else "")
            + f", {self.out_of_order:,} out of event-time order; {self.customers:,} customers"
            f" ({self.spilled:,} state spills); {self.workers} worker"
            + ("s" if self.workers != 1 else "")
            + f"; peak RSS {self.peak_rss_mb:,.0f} MB"
            + (f" (largest worker {self.worker_peak_rss_mb:,.0f} MB)"
               if self.worker_peak_rss_mb else "")
        )


class _OrderFields(msgspec.Struct):
    """The two fields a line is ordered by; the decoder skips the others unbuilt."""

    occurred_at: str
    customer_id: str


_read_order_fields = msgspec.json.Decoder(_OrderFields).decode


def order_key(raw: bytes) -> tuple[float, bytes | None]:
    """(event time, record key) of a line as the stream would see it once published
    keyed by customer. Only those two fields are read (the worker validates the rest);
    a line without them sorts first and is rejected at once (it is only reported)."""
    try:
        fields = _read_order_fields(raw)
        at = fields.occurred_at
        if at:
            if at[-1] == "z":
                at = at[:-1] + "Z"
            return datetime.fromisoformat(at).timestamp(), fields.customer_id.encode()
    except (msgspec.DecodeError, RecursionError, ValueError):
        pass
    return UNORDERED, None


def in_event_time_order(
    lines: Iterable[tuple[int, bytes]], capacity: int, on_out_of_order: Callable[[], None]
) -> Iterator[tuple[int, bytes, bytes | None]]:
    """Yield ``(line number, raw, key)`` sorted by event time within a bounded window of
    ``capacity`` records. The window is a heap, plus a run of records already in order
    (each no earlier than the last one added, so sorted by (event time, line number)):
    a file in event-time order goes through the run alone, without the heap's log n."""
    heap: list[tuple[float, int, bytes, bytes | None]] = []
    run: deque[tuple[float, int, bytes, bytes | None]] = deque()
    push, pop = heapq.heappush, heapq.heappop
    last = UNORDERED  # the latest event time yielded
    tail = UNORDERED  # the event time of the run's last record
    for lineno, raw in lines:
        t, key = order_key(raw)
        if t == UNORDERED:
            yield lineno, raw, key
            continue
        if t >= tail:
            run.append((t, lineno, raw, key))
            tail = t
        else:
            push(heap, (t, lineno, raw, key))
        if len(heap) + len(run) > capacity:
            t0, n0, raw0, key0 = pop(heap) if heap and (not run or heap[0] < run[0]) \
                else run.popleft()
            if t0 < last:
                on_out_of_order()
            else:
                last = t0
            yield n0, raw0, key0
    while heap or run:
        t0, n0, raw0, key0 = pop(heap) if heap and (not run or heap[0] < run[0]) \
            else run.popleft()
        if t0 < last:
            on_out_of_order()
        else:
            last = t0
        yield n0, raw0, key0


OnAlert = Callable[[str, bytes], None]
OnInvalid = Callable[[int, str, str], None]
OnState = Callable[[str, CustomerState], None]


def replay(
    source: LineSource,
    settings: Settings,
    *,
    on_alert: Callable[[str, dict[str, Any]], None],
    on_invalid: OnInvalid,
    report: ReportBuilder | None = None,
    clock: Callable[[], float] = time.time,
    progress: Progress | None = None,
    idle_advance: bool = False,
) -> tuple[Summary, dict[str, CustomerState]]:
    """A file in one process, every final state kept (customer → state, what the stream's
    table would hold): for tests and small files; ``mot replay`` uses :func:`run`."""
    states: dict[str, CustomerState] = {}
    summary = run(source.lines(settings.max_record_bytes), settings,
                  on_alert=lambda kind, raw: on_alert(kind, orjson.loads(raw)),
                  on_invalid=on_invalid, on_state=states.__setitem__, report=report,
                  clock=clock, idle_advance=idle_advance,
                  on_progress=_file_progress(source, progress))
    return summary, states


def _file_progress(source: LineSource, progress: Progress | None
                   ) -> Callable[[int | None], None] | None:
    if progress is None:
        return None

    def update(done_bytes: int | None) -> None:
        progress.update(source.position if done_bytes is None
                        else source.position_of(done_bytes))

    return update


def run(
    lines: Iterable[tuple[int, bytes]],
    settings: Settings,
    *,
    on_alert: OnAlert,
    on_invalid: OnInvalid,
    on_state: OnState | None = None,
    report: ReportBuilder | None = None,
    partitions: int | None = None,
    workers: int = 1,
    idle_advance: bool = False,
    as_of: float | None = None,
    clock: Callable[[], float] | None = None,
    on_progress: Callable[[int | None], None] | None = None,
    rules: RuleBook | None = None,
) -> Summary:
    """Replay numbered records (``(line, raw)``) over ``partitions`` (default
    ``MOT_PARTITIONS``) on ``workers`` processes; alerts go to ``on_alert`` in input order
    (the same bytes for any ``workers`` when the clock is fixed), then every customer's
    final state to ``on_state`` by customer id (with more than one worker only its
    ``score``, ``at`` and ``moments``). ``clock`` (in-process only) overrides ``as_of``,
    the fixed time used as the clock (None: the wall clock). ``rules``: the versions of the
    rules, each from its event time (default: the environment's alone)."""
    s = settings
    cfg = ModelConfig.from_settings(s)
    book = rules if rules is not None else RuleBook(env_rules(s))
    parts = partitions or s.partitions
    if clock is None:
        clock = (lambda: as_of) if as_of is not None else time.time  # type: ignore[assignment,return-value]
    summary = Summary(workers=max(1, workers))
    started = time.perf_counter()
    merger = Merger(on_alert, on_invalid, book, clock, report)

    def late() -> None:
        summary.out_of_order += 1

    backend: Local | Pool
    if workers <= 1:
        from streams.offline.replay_pool import make_shard

        backend = Local(make_shard(s, as_of, False, clock, report, book), idle_advance)
    else:
        backend = Pool(workers, s, as_of, report is not None, idle_advance, book)
    try:
        pos = done_bytes = 0
        max_bytes = s.max_record_bytes
        for lineno, raw, key in in_event_time_order(lines, s.replay_reorder_buffer, late):
            pos += 1
            done_bytes += len(raw) + 1
            if key is None:  # not a valid event: rejected here, as the worker would
                done = process_record(raw, None, _nobody, cfg, max_bytes, clock())
                if report is not None:
                    report.add(done)
                reason, detail = done.rejected or ("internal_error", "no customer key")
                summary.invalid += 1
                summary.invalid_by_reason[reason] = summary.invalid_by_reason.get(reason, 0) + 1
                merger.push((pos, [], None, [], (lineno, reason, detail)))
            else:
                backend.send(pos, lineno, raw, key, partition_of(key, parts), merger)
            if on_progress is not None and not pos & 0x3FF:
                on_progress(done_bytes)
        summary.lines = pos
        backend.finish(pos + 1, merger, summary, on_state)
    finally:
        backend.close()
    if on_progress is not None:
        on_progress(None)
    for kind, n in merger.alerts_by_kind.items():
        summary.alerts_by_kind[kind] = summary.alerts_by_kind.get(kind, 0) + n
    summary.seconds = time.perf_counter() - started
    summary.peak_rss_mb = peak_rss_mb()
    return summary


def _nobody(customer_id: str) -> None:
    return None


class Merger:
    """Items from every shard, emitted in input position order; the touchpoint andon
    (``agents/touchpoints.py`` ``judge``) runs here, over the observations in that order."""

    def __init__(self, on_alert: OnAlert, on_invalid: OnInvalid, rules: RuleBook,
                 clock: Callable[[], float], report: ReportBuilder | None) -> None:
        self.on_alert = on_alert
        self.on_invalid = on_invalid
        self.rules = rules
        self.clock = clock
        self.report = report
        self.heap: list[Item] = []
        self.andon: dict[str, TouchpointState] = {}  # touchpoint → its status state
        self.alerts_by_kind: dict[str, int] = {}
        self.late_observations = 0

    def push(self, item: Item) -> None:
        heapq.heappush(self.heap, item)  # positions are unique: only they are compared

    def emit_upto(self, frontier: float) -> None:
        heap = self.heap
        while heap and heap[0][0] <= frontier:
            self._emit(heapq.heappop(heap))

    def _emit(self, item: Item) -> None:
        _, alerts, obs, checks, rejected = item
        if rejected is not None:
            self.on_invalid(*rejected)
        on_alert = self.on_alert
        for kind, raw in alerts:
            on_alert(kind, raw)
        if obs is not None:
            touchpoint, at, failed, event_id = obs
            version = self.rules.at(at).config
            st = self.andon.get(touchpoint)
            if st is None:
                st = self.andon[touchpoint] = new_status_state()
            transition, late = count_moment(st, at, failed, version.status)  # owned here
            if late:
                self.late_observations += 1
            if transition is not None:
                alert = status_alert(touchpoint, transition, event_id, version.status,
                                     self.clock(), version.rules_version)
                self.alerts_by_kind[alert["kind"]] = self.alerts_by_kind.get(alert["kind"], 0) + 1
                if self.report is not None:
                    self.report.add_alerts([Output(STATUS, touchpoint, alert)])
                on_alert(STATUS, orjson.dumps(alert))
        for kind, raw in checks:
            on_alert(kind, raw)


class Local:
    """One shard in this process."""

    def __init__(self, shard: Shard, idle_advance: bool) -> None:
        self.shard = shard
        self.idle_advance = idle_advance

    def send(self, pos: int, lineno: int, raw: bytes, key: bytes, partition: int,
             merger: Merger) -> None:
        item = self.shard.record(pos, lineno, raw, key, partition)
        if item is not None:
            merger.push(item)
        merger.emit_upto(pos)

    def finish(self, end_pos: int, merger: Merger, summary: Summary,
               on_state: OnState | None) -> None:
        for item in self.shard.finish(end_pos, self.idle_advance):
            merger.push(item)
        merger.emit_upto(float("inf"))
        summary.add(self.shard.counts)
        if on_state is not None:
            for cid, st in self.shard.states.in_order():
                on_state(cid, st)

    def close(self) -> None:
        self.shard.states.close()


class Pool:
    """``n`` worker processes; partition p goes to worker p mod n."""

    def __init__(self, n: int, s: Settings, as_of: float | None, want_report: bool,
                 idle_advance: bool, rules: RuleBook) -> None:
        from streams.offline.replay_pool import start_workers

        self.n = n
        self.chunk = max(1, s.replay_chunk_events)
        self.scratch = Path(tempfile.mkdtemp(prefix="mot-replay-",
                                             dir=s.replay_spill_dir or None))
        self.procs, self.inboxes, self.outbox, self.paths = start_workers(
            n, s, as_of, want_report, idle_advance, self.scratch, queue_chunks=4, rules=rules)
        self.buf: list[list[tuple[int, int, bytes, bytes, int]]] = [[] for _ in range(n)]
        self.sent: list[deque[int]] = [deque() for _ in range(n)]  # first pos, unanswered
        self.last = 0
        self.finals: dict[int, tuple[Any, ...]] = {}
        self.gone: set[int] = set()  # workers seen exited without their "done"

    def send(self, pos: int, lineno: int, raw: bytes, key: bytes, partition: int,
             merger: Merger) -> None:
        w = partition % self.n
        b = self.buf[w]
        b.append((pos, lineno, raw, key, partition))
        self.last = pos
        if len(b) >= self.chunk:
            self._flush(w, merger)
            if len(merger.heap) > 4 * self.chunk * self.n:  # a worker with few records
                for other in range(self.n):
                    if self.buf[other]:
                        self._flush(other, merger)

    def _flush(self, w: int, merger: Merger) -> None:
        b = self.buf[w]
        self.buf[w] = []
        self.sent[w].append(b[0][0])
        self._put(w, b, merger)
        self._drain(merger, block=False)
        merger.emit_upto(self._frontier())

    def _put(self, w: int, msg: Any, merger: Merger) -> None:
        """Into worker ``w``'s inbox, taking its answers meanwhile: a worker waits for room
        in the outbox, so the parent must not wait for room in an inbox without draining."""
        while True:
            try:
                self.inboxes[w].put(msg, timeout=0.05)
                return
            except queue.Full:
                self._drain(merger, block=False)

    def _frontier(self) -> int:
        lows = [d[0] for d in self.sent if d] + [b[0][0] for b in self.buf if b]
        return min(lows) - 1 if lows else self.last

    def _drain(self, merger: Merger, block: bool) -> None:
        while True:
            try:
                msg = self.outbox.get(timeout=1.0) if block else self.outbox.get_nowait()
            except queue.Empty:
                if block:
                    self._check_alive()
                    continue
                return
            kind, w = msg[0], msg[1]
            if kind == "items":
                for item in msg[3]:
                    merger.push(item)
                self.sent[w].popleft()
            elif kind == "done":
                self.finals[w] = msg
            else:
                raise RuntimeError(f"replay worker {w} failed: {msg[2]}")
            if block:
                return

    def _check_alive(self) -> None:
        """Called after a wait that brought nothing: a worker that exited with an error, or
        cleanly but without its "done" still missing at the check after (one more wait for
        what its queue may yet hold), fails the replay instead of leaving it waiting."""
        for i, p in enumerate(self.procs):
            if i in self.finals or p.exitcode is None:
                continue
            if p.exitcode != 0:
                raise RuntimeError(f"replay worker {i} exited with {p.exitcode}")
            if i in self.gone:
                raise RuntimeError(f"replay worker {i} exited without its results")
            self.gone.add(i)

    def finish(self, end_pos: int, merger: Merger, summary: Summary,
               on_state: OnState | None) -> None:
        from streams.offline.replay_pool import END, read_states

        for w in range(self.n):
            if self.buf[w]:
                self._flush(w, merger)
        for w in range(self.n):
            self._put(w, (END, end_pos), merger)
        while len(self.finals) < self.n:
            self._drain(merger, block=True)
        worker_rss = 0.0
        for w in range(self.n):
            _, _, final, counts, part, rss = self.finals[w]
            for item in final:
                merger.push(item)
            summary.add(counts)
            if merger.report is not None and part is not None:
                merger.report.merge(part)
            worker_rss = max(worker_rss, rss)
        summary.worker_peak_rss_mb = worker_rss
        merger.emit_upto(float("inf"))
        for p in self.procs:
            p.join(30)
        if on_state is not None:
            for cid, st in heapq.merge(*(read_states(p) for p in self.paths),
                                       key=lambda x: x[0]):
                on_state(cid, st)

    def close(self) -> None:
        for p in self.procs:
            if p.is_alive():
                p.terminate()
                p.join(5)
        for q in (*self.inboxes, self.outbox):
            q.close()
            q.cancel_join_thread()
        shutil.rmtree(self.scratch, ignore_errors=True)


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024

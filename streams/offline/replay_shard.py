"""One replay worker's share of the customers: the stream's per-partition work, offline.

A shard owns whole input partitions (customers are put on partitions by the topic's
partitioner, :func:`streams.kafka.default_partitioner.partition_of`), and does for each
of its records what the stream does, by the same domain functions:

* the scoring agent: :func:`agents.domain.moment_processor.process_record`;
* the journey bookkeeping (``agents/journeys.py``): the partition's event-time clock
  (latest event time, each clamped to the clock) and the deadline index, a lower bound
  of each customer's earliest ``last moment + timeout``, written when a journey opens;
* the silence check (``agents/silent_journeys.py``): once the partition's watermark
  (:func:`agents.domain.journeys.stream_watermark`) reaches a customer's indexed deadline,
  the customer's check runs through
  :func:`agents.domain.moment_processor.process_silence_check`, as the stream's does, and
  the index entry is corrected. The
  stream runs it from a timer; here it runs after every record, on the record's
  partition, so it does not depend on how fast the file goes through.

What a record gives back is an :data:`Item` tagged with its input position, so the
parent can merge the shards' outputs in input order and feed the touchpoint andon its
observations in that order, whatever the number of workers.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from agents.domain.journeys import stream_watermark
from agents.domain.model_config import ModelConfig
from agents.domain.moment_processor import Output, Processed, process_record, process_silence_check
from agents.domain.report import ReportBuilder
from agents.domain.rules import RuleBook
from streams.offline.replay_store import CustomerStates

Alert = tuple[str, bytes]  # kind, serialised alert
Observation = tuple[str, float, bool, str]  # touchpoint, event time, failed, event id
Rejected = tuple[int, str, str]  # line number, reason, detail
# (input position, the record's alerts, its andon observation, the alerts of the silence
# checks it triggered, its rejection)
Item = tuple[int, list[Alert], Observation | None, list[Alert], Rejected | None]


@dataclass(slots=True)
class ShardCounts:
    scored: int = 0
    duplicates: int = 0
    invalid_by_reason: dict[str, int] = field(default_factory=dict)
    alerts_by_kind: dict[str, int] = field(default_factory=dict)
    customers: int = 0
    spilled: int = 0


class Shard:
    """The records of some partitions, processed as the stream's agents process them."""

    def __init__(self, cfg: ModelConfig | RuleBook, max_record_bytes: int, idle_advance_s: float,
                 states: CustomerStates, clock: Callable[[], float],
                 report: ReportBuilder | None = None, silence_checks: bool = True) -> None:
        self.cfg = cfg
        self.silence_checks = silence_checks
        self.max_bytes = max_record_bytes
        self.idle_advance_s = idle_advance_s
        self.states = states
        self.clock = clock
        self.report = report
        self.counts = ShardCounts()
        self._clock: dict[int, float] = {}  # partition → latest event time (clamped)
        self._due: dict[int, list[tuple[float, str]]] = {}  # partition → heap of deadlines
        self._deadline: dict[str, float] = {}  # customer → index entry (a lower bound)

    def record(self, pos: int, lineno: int, raw: bytes, key: bytes | None, partition: int
               ) -> Item | None:
        """One input record, then the silence checks its partition's clock makes due."""
        now = self.clock()
        states = self.states
        try:
            done = process_record(raw, key, states.get, self.cfg, self.max_bytes, now)
            if done.rekey is not None:  # the stream re-publishes it under the customer's key
                done = process_record(raw, done.rekey.encode(), states.get, self.cfg,
                                      self.max_bytes, now)
        except Exception as exc:  # a defect of ours: the worker parks the record likewise
            done = Processed(rejected=("internal_error", f"{type(exc).__name__}: {exc}"))
        if self.report is not None:
            self.report.add(done)
        counts = self.counts
        if done.rejected is not None:
            reason, detail = done.rejected
            counts.invalid_by_reason[reason] = counts.invalid_by_reason.get(reason, 0) + 1
            return pos, [], None, [], (lineno, reason, detail)
        if done.state is not None and done.customer_id is not None:
            states.put(done.customer_id, done.state)
        result = done.result
        if result is not None:
            if result.duplicate:
                counts.duplicates += 1
            else:
                counts.scored += 1
        alerts = self._alerts(done.outputs)
        if done.occurred_at is None or done.event is None or result is None:
            return (pos, alerts, None, [], None) if alerts else None
        event = done.event
        obs = (event.touchpoint, done.occurred_at, result.failed, event.event_id)
        # agents/journeys.py note_record: the partition's clock, then the deadline index
        t = done.occurred_at if done.occurred_at < now else now
        mark = self._clock.get(partition)
        if mark is None or t > mark:
            self._clock[partition] = mark = t
        change = done.journeys
        if change is not None and done.customer_id is not None:
            cid = done.customer_id
            if change.open_count == 0:
                if change.had_open:
                    self._deadline.pop(cid, None)
            elif change.opened and change.earliest_deadline is not None:
                cur = self._deadline.get(cid)
                if cur is None or change.earliest_deadline < cur:
                    self._index(cid, change.earliest_deadline, partition)
        checks = self._check(partition, mark, now)
        return pos, alerts, obs, checks, None

    def finish(self, end_pos: int, idle_advance: bool) -> list[Item]:
        """The silence checks at the end of the input, one item per partition (positions
        from ``end_pos`` up, by partition). With ``idle_advance`` each partition's clock
        first moves on as the stream's does once the partition has been idle until the
        replay's clock; without, it stays at the partition's latest event time."""
        now = self.clock()
        items: list[Item] = []
        for p in sorted(self._clock):
            mark = self._clock[p]
            if idle_advance:  # events as if they had arrived live, at their event time
                mark = stream_watermark(mark, mark, now, self.idle_advance_s)
            checks = self._check(p, mark, now)
            if checks:
                items.append((end_pos + p, [], None, checks, None))
        self.counts.customers = len(self.states)
        self.counts.spilled = self.states.spilled
        return items

    def _index(self, cid: str, deadline: float, partition: int) -> None:
        self._deadline[cid] = deadline
        heapq.heappush(self._due.setdefault(partition, []), (deadline, cid))

    def _check(self, partition: int, mark: float, now: float) -> list[Alert]:
        """agents/silent_journeys.py: every indexed customer of the partition whose
        deadline the watermark has reached."""
        heap = self._due.get(partition)
        if not heap or heap[0][0] > mark or not self.silence_checks:
            return []
        cfg = self.cfg
        alerts: list[Alert] = []
        while heap and heap[0][0] <= mark:
            deadline, cid = heapq.heappop(heap)
            if self._deadline.get(cid) != deadline:
                continue  # superseded or removed entry
            checked = process_silence_check(self.states.get(cid), cid, mark, cfg, now)
            change, outputs = checked.journeys, checked.outputs
            if checked.state is not None:
                self.states.put(cid, checked.state)
            if change.open_count == 0 or change.earliest_deadline is None:
                del self._deadline[cid]
            else:
                self._index(cid, change.earliest_deadline, partition)
            if outputs:
                if self.report is not None:
                    self.report.add_alerts(outputs)
                alerts.extend(self._alerts(outputs))
        return alerts

    def _alerts(self, outputs: list[Output]) -> list[Alert]:
        if not outputs:
            return []
        by_kind = self.counts.alerts_by_kind
        out = []
        for o in outputs:
            by_kind[o.kind] = by_kind.get(o.kind, 0) + 1
            out.append((o.kind, orjson.dumps(o.value)))
        return out

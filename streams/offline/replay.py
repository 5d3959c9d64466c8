"""Offline replay: the stream's per-record logic over a JSON Lines file, without Kafka.

Every record goes through :func:`agents.domain.moment_processor.process_record`, the
function the scoring agent calls, with a dict in place of the ``customer-state`` table,
so a replay and the stream cannot disagree.

Event-time order with bounded memory: records pass through a reorder buffer, a heap of
at most ``MOT_REPLAY_REORDER_BUFFER`` records keyed by (event time, line number). A
record displaced by fewer lines than that from its event-time position comes out in
order; one displaced further is processed when it comes, as a late arrival is in the
stream, and is counted as ``out_of_order``. The rest of the memory is the customers'
states (each bounded by ``MOT_DEDUPE_WINDOW`` and ``MOT_RECENT_MOMENTS``): O(customers).
"""

from __future__ import annotations

import heapq
import resource
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from agents.domain.model_config import ModelConfig
from agents.domain.moment_processor import Processed, process_record
from agents.domain.report import ReportBuilder
from schemas.touchpoint_event import InvalidEvent, validate_event
from streams.offline.jsonl import LineSource
from streams.offline.progress import Progress
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
            + f", {self.out_of_order:,} out of event-time order; {self.customers:,} customers;"
            f" peak RSS {self.peak_rss_mb:,.0f} MB"
        )


def order_key(raw: bytes) -> tuple[float, bytes | None]:
    """(event time, record key) of a line as the stream would see it once published
    keyed by customer; a line that fails validation sorts first (it is only reported)."""
    try:
        event = orjson.loads(raw)
        t = validate_event(event)
    except (orjson.JSONDecodeError, InvalidEvent):
        return UNORDERED, None
    return t, event["customer_id"].encode()


def in_event_time_order(
    lines: Iterable[tuple[int, bytes]], capacity: int, on_out_of_order: Callable[[], None]
) -> Iterator[tuple[int, bytes, bytes | None]]:
    """Yield ``(line number, raw, key)`` sorted by event time within a bounded heap."""
    heap: list[tuple[float, int, bytes, bytes | None]] = []
    last = UNORDERED
    for lineno, raw in lines:
        t, key = order_key(raw)
        if t == UNORDERED:
            yield lineno, raw, key
            continue
        heapq.heappush(heap, (t, lineno, raw, key))
        if len(heap) > capacity:
            t0, n0, raw0, key0 = heapq.heappop(heap)
            if t0 < last:
                on_out_of_order()
            last = max(last, t0)
            yield n0, raw0, key0
    while heap:
        t0, n0, raw0, key0 = heapq.heappop(heap)
        if t0 < last:
            on_out_of_order()
        last = max(last, t0)
        yield n0, raw0, key0


def replay(
    source: LineSource,
    settings: Settings,
    *,
    on_alert: Callable[[str, dict[str, Any]], None],
    on_invalid: Callable[[int, str, str], None],
    report: ReportBuilder | None = None,
    clock: Callable[[], float] = time.time,
    progress: Progress | None = None,
) -> tuple[Summary, dict[str, dict[str, Any]]]:
    """Process every line in event-time order; return the summary and the final states
    (customer → state, what the stream's table would hold)."""
    cfg = ModelConfig.from_settings(settings)
    max_bytes = settings.max_record_bytes
    states: dict[str, dict[str, Any]] = {}
    summary = Summary()
    started = time.perf_counter()

    def late() -> None:
        summary.out_of_order += 1

    ordered = in_event_time_order(source.lines(max_bytes), settings.replay_reorder_buffer,
                                  late)
    done_bytes = 0
    for lineno, raw, key in ordered:
        summary.lines += 1
        done_bytes += len(raw) + 1
        try:
            done = process_record(raw, key, states.get, cfg, max_bytes, clock())
            if done.rekey is not None:  # the stream re-publishes it under the customer's key
                done = process_record(raw, done.rekey.encode(), states.get, cfg, max_bytes,
                                      clock())
        except Exception as exc:  # a defect of ours: the worker parks the record likewise
            done = Processed(rejected=("internal_error", f"{type(exc).__name__}: {exc}"))
        _account(done, lineno, states, summary, on_alert, on_invalid)
        if report is not None:
            report.add(done)
        if progress is not None and not summary.lines & 0x3FF:
            progress.update(source.position_of(done_bytes))
    if progress is not None:
        progress.update(source.position)
    summary.seconds = time.perf_counter() - started
    summary.customers = len(states)
    summary.peak_rss_mb = peak_rss_mb()
    return summary, states


def _account(done: Processed, lineno: int, states: dict[str, dict[str, Any]],
             summary: Summary, on_alert: Callable[[str, dict[str, Any]], None],
             on_invalid: Callable[[int, str, str], None]) -> None:
    if done.rejected is not None:
        reason, detail = done.rejected
        summary.invalid += 1
        summary.invalid_by_reason[reason] = summary.invalid_by_reason.get(reason, 0) + 1
        on_invalid(lineno, reason, detail)
        return
    if done.state is not None and done.customer_id is not None:
        states[done.customer_id] = done.state
    if done.result is not None:
        if done.result.duplicate:
            summary.duplicates += 1
        else:
            summary.scored += 1
    for out in done.outputs:
        summary.alerts_by_kind[out.kind] = summary.alerts_by_kind.get(out.kind, 0) + 1
        on_alert(out.kind, out.value)


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024

"""Fault soak: live traffic against real Kafka while workers and the broker are hurt at
random, then every alert and score compared with the offline replay of the same input.

In the style of Kafka Streams' EOS system test: one run, a seed that decides the traffic
and the fault schedule (printed; ``SOAK_SEED`` repeats it), ``SOAK_MINUTES`` of faults
(default 10). Faults, one at a time at random gaps: ``kill -9`` of a worker then its
restart on the same data directory, SIGTERM then restart (a restart goes on while the next
faults come, so two workers can be down at once), a broker stop and restart, a
worker added to the group (2 → 3) and one removed (3 → 2). Traffic keeps flowing
throughout (:class:`streams.offline.traffic.TrafficGenerator`, event times from a fixed
epoch, ``SOAK_EVENT_STEP_S`` apart, so the same seed gives the same events).

At the end it waits for the workers to catch up and compares, as a downstream consumer
reading the topics would see them (no deduplication):

* every alert of the kinds the replay emits (failed-moment, vicious/virtuous circle,
  drop-off on ``abandoned``): expected, found, duplicated (records beyond the first of an
  id), lost, unexpected; duplicates must carry the same content (``detected_at`` aside);
* every customer's final score and moment count (``customer-state`` changelog);
* the touchpoint andon, which the replay does not run: the moments each touchpoint
  counted (exactly the events of that touchpoint, none twice), the event-time buckets of
  its final window (order-independent, so exactly the replay's counts), its transitions
  numbered 1..N without a gap (N from its state) and each id's copies identical. Which
  transitions happen depends on the order the workers' batches reach it, so they are not
  compared one to one with an event-time-order run (whose count is shown);
* silence drop-offs (``trigger: timeout``), which the replay does not emit: counted and
  checked for consistent duplicates only.

Exit status 1 on any loss, score difference, unexpected alert or inconsistent duplicate.
Run: ``make soak`` (``SOAK_SEED``, ``SOAK_MINUTES``, ``SOAK_RATE`` events/s, ``SOAK_DIR``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from agents.domain.customer_state import decode_state
from agents.domain.model_config import ModelConfig
from agents.domain.quality import is_failed, moment_quality
from agents.domain.touchpoint_status import CODEC as ANDON_CODEC
from agents.domain.touchpoint_status import judge_batch
from agents.domain.touchpoint_status import new_state as new_andon_state
from schemas.touchpoint_event import event_from, validate_event
from streams.dead_letters import REASON
from streams.kafka.local_kafka import LocalKafka
from streams.offline.jsonl import open_lines, write_jsonl
from streams.offline.replay import replay
from streams.offline.traffic import TrafficGenerator
from streams.settings import Settings
from tests.faults.scenario import fault_env, produce_paced
from tests.harness import WorkerProcess, free_port

EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z: event times start here, whatever the day
PARTITIONS = 4
MIN_WORKERS, MAX_WORKERS = 2, 3
FAULTS = ("kill-9", "sigterm", "broker-restart", "add-worker", "remove-worker")
CATCH_UP_S = 420.0
START_SLACK_S = 900.0  # worker starts, the traffic's end, the replay and reading the topics
REPLAY_KINDS = ("failed-moment", "vicious-circle", "virtuous-circle", "drop-off")
ANDON = "touchpoint-status"


def say(*lines: str) -> None:
    for line in lines:
        sys.stdout.write(line + "\n")
    sys.stdout.flush()


class TopicReader:
    """Reads a topic from the beginning, then on each call on to its current end."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.consumer: AIOKafkaConsumer | None = None
        self.tps: list[TopicPartition] = []

    async def _open(self) -> bool:
        if self.consumer is None:
            self.consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                auto_offset_reset="earliest", max_partition_fetch_bytes=8 << 20)
            await self.consumer.start()
        parts = self.consumer.partitions_for_topic(self.topic)
        if not parts:
            await self.consumer._client.force_metadata_update()
            parts = self.consumer.partitions_for_topic(self.topic)
        if not parts:
            return False
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        if tps != self.tps:
            self.consumer.assign(tps)
            await self.consumer.seek_to_beginning(*tps)
            self.tps = tps
        return True

    async def read(self, timeout: float = 120.0) -> list[Any]:
        """The records added since the last call (to the end as of now)."""
        if not await self._open():
            return []
        assert self.consumer is not None
        ends = await self.consumer.end_offsets(self.tps)
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        remaining = [tp for tp in self.tps if await self.consumer.position(tp) < ends[tp]]
        while remaining and time.monotonic() < deadline:
            batch = await self.consumer.getmany(timeout_ms=300, max_records=20_000)
            for recs in batch.values():
                out.extend(recs)
            remaining = [tp for tp in remaining if await self.consumer.position(tp) < ends[tp]]
        return out

    async def close(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()


@dataclass
class Expected:
    events: int
    alerts: dict[str, dict[str, dict[str, Any]]]  # kind -> alert id -> alert
    states: dict[str, dict[str, Any]]
    per_touchpoint: Counter[str]
    buckets: dict[str, Counter[int]]  # touchpoint -> bucket index -> moments
    offline_transitions: dict[str, int]  # touchpoint -> transitions in event-time order


def expected_outcome(path: Path, settings: Settings, events: list[dict[str, Any]]) -> Expected:
    """The offline replay of the input, and what the andon must count of it."""
    alerts: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)

    def on_alert(kind: str, alert: dict[str, Any]) -> None:
        alerts[kind].setdefault(alert["alert_id"], alert)

    def on_invalid(lineno: int, reason: str, detail: str) -> None:
        raise AssertionError(f"generated line {lineno} invalid: {reason} {detail}")

    summary, states = replay(open_lines(str(path)), settings, on_alert=on_alert,
                             on_invalid=on_invalid)
    assert summary.scored == len(events), summary.line()
    cfg = ModelConfig.from_settings(settings).status
    per_tp: Counter[str] = Counter()
    buckets: dict[str, Counter[int]] = defaultdict(Counter)
    andon: dict[str, Any] = {}
    transitions: Counter[str] = Counter()
    qcfg = ModelConfig.from_settings(settings).quality
    for i, e in enumerate(events):
        tp = e["touchpoint"]
        at = validate_event(e)
        per_tp[tp] += 1
        buckets[tp][math.floor(at / cfg.bucket_s)] += 1
        failed = is_failed(moment_quality(event_from(e), qcfg).q, qcfg)
        judged = judge_batch(andon.get(tp), [(at, failed, e["event_id"], 0, i)], cfg)
        andon[tp] = judged.state
        transitions[tp] += len(judged.transitions)
    return Expected(len(events), dict(alerts), states, per_tp, dict(buckets),
                    dict(transitions))


@dataclass
class Found:
    """What the topics hold, accumulated across reads."""

    alerts: dict[str, dict[str, list[dict[str, Any]]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    customers: dict[str, Any] = field(default_factory=dict)
    andon: dict[str, Any] = field(default_factory=dict)
    # reason -> dead-lettered records (the generated traffic is valid: none expected)
    dead_letters: Counter[str] = field(default_factory=Counter)


class Soak:
    def __init__(self, seed: int, minutes: float, rate: float, customers: int,
                 step: float, workdir: Path) -> None:
        self.seed, self.minutes, self.rate, self.customers = seed, minutes, rate, customers
        self.step = step
        self.dir = workdir
        self.rnd = random.Random(seed)
        self.broker = LocalKafka(port=free_port(), data_dir=workdir / "kafka",
                                 log_file=workdir / "kafka.log")
        self.workers: dict[int, WorkerProcess] = {}  # slot -> running worker
        # slot -> its (re)start under way: the next fault does not wait for it
        self.starting: dict[int, asyncio.Task[None]] = {}
        self.launched: list[WorkerProcess] = []  # every worker process started, to stop all
        self.faults: Counter[str] = Counter()
        self.start_failures: list[str] = []
        self.broker_up = asyncio.Event()
        self.outages = 0  # broker stops so far
        self.sent = [0]
        self.env: dict[str, str] = {}

    def worker_env(self, slot: int) -> dict[str, str]:
        return {**self.env, "MOT_DATA_DIR": str(self.dir / f"worker-{slot}"),
                "MOT_WEB_PORT": str(free_port())}

    async def start_worker(self, slot: int) -> None:
        """Start a worker once the broker is up. One that exits while starting is a finding
        (printed, counted, failing the run) unless the broker went down meanwhile (a worker
        gives up on a broker it cannot reach at start); either way it is started again, as
        an operator would, up to 5 times."""
        for attempt in range(5):
            await self.broker_up.wait()
            outages = self.outages
            w = WorkerProcess(self.worker_env(slot), self.dir / f"worker-{slot}.log")
            self.launched.append(w)
            try:
                await asyncio.to_thread(w.start, 300)
            except (RuntimeError, TimeoutError) as exc:
                w.stop(signal.SIGKILL)
                reason = next((line for line in reversed(str(exc).splitlines())
                               if "Error" in line or "Crashed" in line), str(exc)[:200])
                reason = reason.strip()
                if self.outages == outages and self.broker_up.is_set():
                    self.start_failures.append(f"worker-{slot} ({attempt + 1}): {reason}")
                    say(f"  {self.elapsed():6.1f}s worker-{slot} did not start: {reason[:200]}")
                continue
            except BaseException:
                w.stop(signal.SIGKILL)
                raise
            self.workers[slot] = w
            return
        raise RuntimeError(f"worker-{slot} did not start in 5 attempts")

    def start_later(self, slot: int, delay: float) -> None:
        async def start() -> None:
            await asyncio.sleep(delay)
            await self.start_worker(slot)
            del self.starting[slot]

        self.starting[slot] = asyncio.create_task(start())

    async def all_started(self) -> None:
        """Every start under way has finished (a failed one raises)."""
        await asyncio.gather(*self.starting.values())

    async def stop_worker(self, slot: int, sig: int) -> None:
        w = self.workers.pop(slot)
        await asyncio.to_thread(w.stop, sig, 60)

    def elapsed(self) -> float:
        return time.monotonic() - self.began

    async def inject(self, kind: str) -> str:
        """One fault; a worker's (re)start goes on in the background."""
        rnd = self.rnd
        slots = sorted(self.workers)
        if kind in ("kill-9", "sigterm"):
            slot = rnd.choice(slots)
            await self.stop_worker(slot, signal.SIGKILL if kind == "kill-9" else signal.SIGTERM)
            self.start_later(slot, rnd.uniform(0.0, 3.0))
            return f"worker-{slot}"
        if kind == "broker-restart":
            self.broker_up.clear()
            self.outages += 1
            await asyncio.to_thread(self.broker.stop)
            down = rnd.uniform(2.0, 8.0)
            await asyncio.sleep(down)
            await asyncio.to_thread(self.broker.start, 180)
            self.broker_up.set()
            return f"down {down:.1f}s"
        if kind == "add-worker":
            slot = min(set(range(MAX_WORKERS + 1)) - set(slots) - set(self.starting))
            self.start_later(slot, 0.0)
            return f"worker-{slot}"
        slot = rnd.choice(slots)  # remove-worker: a graceful leave, not restarted
        await self.stop_worker(slot, signal.SIGTERM)
        return f"worker-{slot}"

    async def one_running(self, timeout: float) -> None:
        """Until a worker runs (or ``timeout`` passes)."""
        deadline = time.monotonic() + timeout
        while not self.workers and self.starting and time.monotonic() < deadline:
            await asyncio.sleep(0.5)

    def choose(self) -> str | None:
        """A fault the group can take now: a kill, a stop or a broker restart needs a
        running worker; there are 2 or 3 workers, counting those starting. None: none."""
        running, n = len(self.workers), len(self.workers) + len(self.starting)
        weights = {"kill-9": 3 if running else 0, "sigterm": 2 if running else 0,
                   "broker-restart": 1 if running else 0,
                   "add-worker": 2 if n < MAX_WORKERS else 0,
                   "remove-worker": 2 if n > MIN_WORKERS and running else 0}
        kinds = [k for k in FAULTS if weights[k]]
        if not kinds:
            return None
        return self.rnd.choices(kinds, [weights[k] for k in kinds])[0]

    async def run(self) -> int:
        say(f"soak: seed={self.seed} minutes={self.minutes:g} rate={self.rate:g}/s "
            f"customers={self.customers} event-time step={self.step:g}s dir={self.dir}",
            f"soak: repeat with SOAK_SEED={self.seed}")
        bootstrap = await asyncio.to_thread(self.broker.start, 180)
        self.broker_up.set()
        self.env = fault_env(bootstrap, self.dir / "worker-0", MOT_PARTITIONS=str(PARTITIONS),
                             MOT_LOG_LEVEL="warning")
        settings = Settings.from_env({k: v for k, v in self.env.items()
                                      if k.startswith("MOT_")})
        gen = TrafficGenerator(seed=self.seed, customers=self.customers)
        n = int(self.rate * self.minutes * 60)
        events = list(gen.events(EPOCH, self.step, n))
        path = self.dir / "events.jsonl"
        write_jsonl(path, events)
        records = [(e["customer_id"].encode(), orjson.dumps(e)) for e in events]
        readers: list[TopicReader] = []
        try:
            await asyncio.gather(*(self.start_worker(s) for s in range(MIN_WORKERS)))
            self.began = time.monotonic()
            producing = asyncio.create_task(produce_paced(
                bootstrap, settings.topic_events, records, self.rate, self.sent))
            duration = self.minutes * 60
            while True:
                gap = self.rnd.uniform(1.0, 6.0)
                if self.elapsed() + gap >= duration:
                    break
                await asyncio.sleep(gap)
                if producing.done():
                    break
                if not self.workers:
                    # Every worker is down or still starting: the next fault waits for one
                    # to run (a broker restart now would only restart their starts).
                    await self.one_running(180.0)
                kind = self.choose()
                if kind is None:
                    continue
                at = self.elapsed()
                detail = await self.inject(kind)
                self.faults[kind] += 1
                say(f"  {at:6.1f}s {kind:<15} {detail:<12} took {self.elapsed() - at:5.1f}s  "
                    f"running={sorted(self.workers)} starting={sorted(self.starting)} "
                    f"sent={self.sent[0]}")
            await self.all_started()
            await asyncio.wait_for(producing, 600)
            say(f"soak: {sum(self.faults.values())} faults in {self.elapsed():.0f}s, "
                f"{len(events)} events sent; replaying offline and waiting for the workers")
            expected = await asyncio.to_thread(expected_outcome, path, settings, events)
            topics = {
                "failed": settings.topic_alerts_failed_moment,
                "circles": settings.topic_alerts_circles,
                "drop-off": settings.topic_alerts_drop_off,
                ANDON: settings.topic_alerts_touchpoint_status,
                "customers": f"{settings.app_id}-customer-state-changelog",
                "andon-state": f"{settings.app_id}-touchpoint-status-changelog",
                "dead-letters": settings.topic_dead_letter,
            }
            by_name = {name: TopicReader(bootstrap, t) for name, t in topics.items()}
            readers = list(by_name.values())
            found = Found()
            deadline = time.monotonic() + CATCH_UP_S
            settled = False
            while True:
                await self.read_all(by_name, found)
                report = Report(expected, found, settings)
                if report.caught_up():
                    if settled:
                        break
                    settled = True  # a few seconds more, so late duplicates count too
                    await asyncio.sleep(5)
                    continue
                if time.monotonic() > deadline:
                    say(f"soak: not caught up after {CATCH_UP_S:.0f}s")
                    break
                await asyncio.sleep(3)
            code = report.print(self.faults, len(events))
            say(f"worker starts that failed: {len(self.start_failures)}",
                *(f"  {f}" for f in self.start_failures))
            if self.start_failures:
                say("soak: FAILED (a worker did not start)")
                code = 1
            if code:
                self.print_worker_errors()
            return code
        finally:
            await self.stop_all(readers)

    def print_worker_errors(self, most: int = 25) -> None:
        """After a failure: the workers' error lines (and the first line of each traceback
        they logged), counted by message, and where the full logs are."""
        lines: Counter[str] = Counter()
        for log in sorted(self.dir.glob("worker-*.log")):
            text = log.read_text(errors="replace").splitlines()
            for i, line in enumerate(text):
                if "[ERROR]" in line or "[CRITICAL]" in line or line.startswith("Traceback"):
                    # the message without its timestamp and pid; a traceback by its last line
                    msg = line.split("] ", 3)[-1] if line.startswith("[") else next(
                        (t for t in text[i + 1:i + 80] if t and not t.startswith(" ")), line)
                    lines[f"{log.stem}: {msg[:220]}"] += 1
        say(f"worker error lines: {sum(lines.values())} (logs in {self.dir})",
            *(f"  {n:5d} x {msg}" for msg, n in lines.most_common(most)))

    async def stop_all(self, readers: list[TopicReader]) -> None:
        """Everything the run started is stopped, however it ends (called off included):
        starts under way are cancelled and every worker process launched is stopped (one
        whose start thread is still running is stopped again once the thread is done)."""
        for task in self.starting.values():
            task.cancel()
        await asyncio.gather(*self.starting.values(), return_exceptions=True)
        for r in readers:
            await r.close()
        for slot in list(self.workers):
            await self.stop_worker(slot, signal.SIGTERM)
        await asyncio.sleep(1.0)  # a start thread between Popen and its health wait
        for w in self.launched:
            await asyncio.to_thread(w.stop, signal.SIGKILL, 10)
        await asyncio.to_thread(self.broker.stop)

    async def read_all(self, readers: dict[str, TopicReader], found: Found) -> None:
        for name in ("failed", "circles", "drop-off", ANDON):
            for r in await readers[name].read():
                alert = orjson.loads(r.value)
                found.alerts[alert["kind"]][alert["alert_id"]].append(alert)
        for name, into, decode in (("customers", found.customers, decode_state),
                                   ("andon-state", found.andon, ANDON_CODEC.decode)):
            for r in await readers[name].read():
                if r.key is not None:
                    into[orjson.loads(r.key)] = decode(r.value) if r.value else None
        for r in await readers["dead-letters"].read():
            reason = dict(r.headers or ()).get(REASON, b"?")
            found.dead_letters[reason.decode(errors="replace")] += 1


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two copies of one alert agree (``detected_at`` aside; a re-sent failed-moment alert's
    ``recent_moments`` are those of its predecessors still among the customer's recent
    moments: the latest ones of the original's, possibly none)."""
    a = {k: v for k, v in a.items() if k != "detected_at"}
    b = {k: v for k, v in b.items() if k != "detected_at"}
    if a.get("kind") == "failed-moment":
        ra, rb = a.pop("recent_moments", []), b.pop("recent_moments", [])
        short, long = (ra, rb) if len(ra) <= len(rb) else (rb, ra)
        if short != long[len(long) - len(short):]:
            return False
    return a == b


class Report:
    def __init__(self, expected: Expected, found: Found, settings: Settings) -> None:
        self.e, self.f = expected, found
        self.status_cfg = ModelConfig.from_settings(settings).status
        self.rows: dict[str, dict[str, int]] = {}
        self.problems: list[str] = []
        for kind in REPLAY_KINDS:
            self._replay_kind(kind)
        self._andon()
        self.counted = sum(st.moments for st in found.customers.values() if st)
        self.score_diffs = []
        for cid, want in expected.states.items():
            st = found.customers.get(cid)
            if st is None or abs(st.score - want.score) > 1e-9 * max(1.0, abs(want.score)):
                self.score_diffs.append(f"{cid}: {None if st is None else st.score} != "
                                        f"{want.score}")
            elif st.moments != want.moments:
                self.score_diffs.append(f"{cid}: {st.moments} moments != {want.moments}")

    def _replay_kind(self, kind: str) -> None:
        want = self.e.alerts.get(kind, {})
        got = self.f.alerts.get(kind, {})
        other = {aid: copies for aid, copies in got.items() if aid not in want}
        silence = {aid: c for aid, c in other.items() if c[0].get("trigger") == "timeout"}
        unexpected = len(other) - len(silence)
        found = sum(1 for aid in want if aid in got)
        differ = [aid for aid, copies in got.items() if aid in want
                  and not all(same(c, want[aid]) for c in copies)]
        inconsistent = [aid for aid, copies in other.items()
                        if not all(same(c, copies[0]) for c in copies)]
        self.rows[kind] = {
            "expected": len(want), "found": found,
            "duplicated": sum(len(c) - 1 for aid, c in got.items() if aid in want),
            "lost": len(want) - found, "unexpected": unexpected, "differ": len(differ),
        }
        if silence:
            self.rows["drop-off (silence)"] = {
                "expected": -1, "found": len(silence),
                "duplicated": sum(len(c) - 1 for c in silence.values()), "lost": -1,
                "unexpected": 0, "differ": len(inconsistent)}
        elif inconsistent:
            self.problems.append(f"{kind}: {len(inconsistent)} unexpected ids with differing "
                                 f"copies")
        for aid in differ[:3]:
            self.problems.append(f"{kind} {aid}: content differs from the replay's")
        if unexpected:
            self.problems.append(f"{kind}: {unexpected} alerts the replay does not have, e.g. "
                                 f"{next(a for a in other if a not in silence)}")

    def _andon(self) -> None:
        got = self.f.alerts.get(ANDON, {})
        by_tp: dict[str, dict[int, list[dict[str, Any]]]] = defaultdict(dict)
        for copies in got.values():
            by_tp[copies[0]["touchpoint"]][copies[0]["transition"]] = copies
        expected = found = dup = differ = 0
        cfg = self.status_cfg
        self.andon_moments = [0, 0]  # expected, counted
        self.andon_problems: list[str] = []
        for tp in sorted(set(self.e.per_touchpoint) | set(self.f.andon) | set(by_tp)):
            st = self.f.andon.get(tp) or new_andon_state()
            seqs = by_tp.get(tp, {})
            n = max([st.transitions, *seqs])
            expected += n
            found += sum(1 for s in range(1, n + 1) if s in seqs)
            for copies in seqs.values():
                dup += len(copies) - 1
                if not all(same(c, copies[0]) for c in copies):
                    differ += 1
            for s in range(2, n + 1):
                if s in seqs and s - 1 in seqs and \
                        seqs[s][0]["previous_status"] != seqs[s - 1][0]["status"]:
                    self.andon_problems.append(f"{tp}: transition {s} does not follow {s - 1}")
            want, counted = self.e.per_touchpoint.get(tp, 0), st.counted
            self.andon_moments[0] += want
            self.andon_moments[1] += counted
            if counted != want:
                self.andon_problems.append(f"{tp}: counted {counted} moments, input has {want}")
            if st.latest_at is not None:
                end = math.floor(st.latest_at / cfg.bucket_s)
                window = {b.index: b.events for b in st.buckets}
                want_b = {i: c for i, c in self.e.buckets.get(tp, {}).items()
                          if i > end - cfg.window_buckets}
                if window != want_b:
                    self.andon_problems.append(f"{tp}: final window {window} != {want_b}")
        self.rows[ANDON] = {"expected": expected, "found": found, "duplicated": dup,
                            "lost": expected - found, "unexpected": 0, "differ": differ}

    def caught_up(self) -> bool:
        return (self.counted >= self.e.events and not self.score_diffs
                and all(r["lost"] <= 0 for r in self.rows.values())
                and not self.andon_problems)

    def print(self, faults: Counter[str], sent: int) -> int:
        say("faults injected: " + ", ".join(f"{k} {faults[k]}" for k in FAULTS)
            + f" (total {sum(faults.values())})",
            f"events: sent {sent}, counted {self.counted} (customer-state changelog), "
            f"andon counted {self.andon_moments[1]} of {self.andon_moments[0]}, "
            f"dead-lettered {sum(self.f.dead_letters.values())}"
            + "".join(f" ({r}: {n})" for r, n in sorted(self.f.dead_letters.items())),
            f"{'alert kind':<22}{'expected':>9}{'found':>8}{'duplicated':>11}{'lost':>6}"
            f"{'unexpected':>11}{'differ':>7}")
        for kind, r in self.rows.items():
            cells = [("n/a" if r[c] < 0 else str(r[c])) for c in
                     ("expected", "found", "duplicated", "lost", "unexpected", "differ")]
            say(f"{kind:<22}{cells[0]:>9}{cells[1]:>8}{cells[2]:>11}{cells[3]:>6}"
                f"{cells[4]:>11}{cells[5]:>7}")
        offline = sum(self.e.offline_transitions.values())
        say(f"  {ANDON}: expected = the transitions the andon numbered (its state), "
            f"not the replay's, whose andon takes the moments in input order. Checked: "
            f"moments counted per touchpoint = input, final windows = input's buckets, "
            f"numbering without gaps, copies "
            f"identical. An event-time-order run gives {offline} transitions (not compared "
            f"one to one: the stream's order of batches differs).",
            "  drop-off (silence): not emitted by the replay; checked for identical copies "
            "only." if "drop-off (silence)" in self.rows else
            "  drop-off (silence): none sent (the replay emits none either).",
            f"scores that differ: {len(self.score_diffs)} of {len(self.e.states)} customers")
        for line in [*self.score_diffs[:10], *self.problems, *self.andon_problems[:10]]:
            say("  " + line)
        bad = (self.counted != self.e.events or self.score_diffs or self.problems
               or self.f.dead_letters
               or self.andon_problems
               or any(r["lost"] > 0 or r["unexpected"] > 0 or r["differ"] > 0
                      for r in self.rows.values()))
        say("soak: " + ("FAILED" if bad else "passed"))
        return 1 if bad else 0


def main() -> int:
    seed_text = os.environ.get("SOAK_SEED", "").strip()
    seed = int(seed_text) if seed_text else random.SystemRandom().randrange(1, 2**31)
    minutes = float(os.environ.get("SOAK_MINUTES", "10"))
    rate = float(os.environ.get("SOAK_RATE", "120"))
    customers = int(os.environ.get("SOAK_CUSTOMERS", "300"))
    # Event time runs faster than the wall clock (0.5 s per event at 120/s: 60 times), so
    # the andon's 5-minute windows slide, its baseline fills and statuses change.
    step = float(os.environ.get("SOAK_EVENT_STEP_S", "0.5"))
    workdir = Path(os.environ.get("SOAK_DIR") or tempfile.mkdtemp(prefix="mot-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    # The clients' retries while the broker is down go to a file, not between the figures.
    handler = logging.FileHandler(workdir / "clients.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.WARNING)
    logging.lastResort = None
    # Bounded: the faults, the catch-up wait and room for starts and the replay; past it
    # the run is called off (its workers and broker stopped) and fails.
    limit = minutes * 60 + CATCH_UP_S + START_SLACK_S
    return asyncio.run(bounded(Soak(seed, minutes, rate, customers, step, workdir), limit))


async def bounded(soak: Soak, limit: float) -> int:
    try:
        return await asyncio.wait_for(soak.run(), limit)
    except TimeoutError:
        say(f"soak: FAILED (not finished in {limit:.0f}s; workers and broker stopped)")
        return 1


if __name__ == "__main__":
    sys.exit(main())

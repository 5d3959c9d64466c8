"""Replay workers: processes that each run a :class:`~streams.offline.replay_shard.Shard`.

The parent sends each worker chunks of records ``(position, line, raw, key, partition)``
of the partitions it owns and gets back, per chunk, the items the records gave (see
:data:`~streams.offline.replay_shard.Item`); at the end, the end-of-input silence checks,
the counts, the partial report and the path of a file of the final states by customer.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from agents.domain.customer_state import CustomerState
from agents.domain.customer_view import final_view
from agents.domain.model_config import ModelConfig
from agents.domain.report import ReportBuilder
from agents.domain.rules import RuleBook
from streams.offline.replay_shard import Shard
from streams.offline.replay_store import CustomerStates
from streams.settings import Settings

END = "end"
# A final state as a worker hands it back: one JSON line per customer, the typed state's
# score line fields and circles (:func:`~agents.domain.customer_view.final_view`).
HANDED_BACK = msgspec.json.Encoder()
HANDED_BACK_READ = msgspec.json.Decoder(tuple[str, CustomerState])


def make_shard(s: Settings, as_of: float | None, want_report: bool,
               clock: Callable[[], float] | None = None,
               report: ReportBuilder | None = None, rules: RuleBook | None = None) -> Shard:
    """A shard with its own state store; ``report``, or a new builder if ``want_report``;
    ``rules``: the versions of the rules (default: the environment's)."""
    if clock is None:
        clock = (lambda: as_of) if as_of is not None else time.time  # type: ignore[assignment,return-value]
    cfg = ModelConfig.from_settings(s)
    states = CustomerStates(s.replay_cache_customers, s.replay_spill_dir)
    if report is None and want_report:
        report = ReportBuilder(cfg)
    return Shard(rules if rules is not None else cfg, s.max_record_bytes,
                 s.journey_idle_advance_s, states, clock, report, s.replay_silence_checks)


def worker_main(index: int, s: Settings, as_of: float | None, want_report: bool,
                idle_advance: bool, inbox: Any, outbox: Any, states_path: str,
                rules: RuleBook | None = None) -> None:
    """A worker process' whole life: records in until ``(END, position)``, then the rest."""
    from streams.offline.replay import peak_rss_mb

    _few_malloc_arenas()
    shard = make_shard(s, as_of, want_report, rules=rules)
    try:
        while True:
            msg = inbox.get()
            if msg[0] == END:
                end_pos = msg[1]
                break
            record = shard.record
            items = [it for it in (record(*r) for r in msg) if it is not None]
            outbox.put(("items", index, msg[-1][0], items))
        final = shard.finish(end_pos, idle_advance)
        with open(states_path, "wb") as out:
            for cid, st in shard.states.in_order():
                out.write(HANDED_BACK.encode((cid, final_view(st))) + b"\n")
        outbox.put(("done", index, final, shard.counts, shard.report, peak_rss_mb()))
    except BaseException as exc:  # the parent must not wait for ever
        outbox.put(("failed", index, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        shard.states.close()


def _few_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's malloc arenas (``M_ARENA_MAX``) before the spill store starts its
    threads: each thread of RocksDB otherwise gets an arena of its own, and a worker's
    resident memory grows by their unused pages. A no-op without glibc."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # M_ARENA_MAX


def read_states(path: Path) -> Any:
    with open(path, "rb") as f:
        for line in f:
            yield HANDED_BACK_READ.decode(line)  # what a worker hands back


def start_workers(n: int, s: Settings, as_of: float | None, want_report: bool,
                  idle_advance: bool, scratch: Path, queue_chunks: int,
                  rules: RuleBook | None = None,
                  ) -> tuple[list[Any], list[Any], Any, list[Path]]:
    """``n`` worker processes (spawned: no state shared with the parent by accident)."""
    ctx = mp.get_context("spawn")
    # Bounded both ways: a worker ahead of the parent waits instead of piling its items
    # up in its own memory (an unbounded queue buffers in the sender).
    outbox = ctx.Queue(maxsize=queue_chunks * n)
    inboxes, procs, paths = [], [], []
    for i in range(n):
        inbox = ctx.Queue(maxsize=queue_chunks)
        path = scratch / f"states-{i}.jsonl"
        p = ctx.Process(target=worker_main, name=f"mot-replay-{i}", daemon=True,
                        args=(i, s, as_of, want_report, idle_advance, inbox, outbox, str(path),
                              rules))
        p.start()
        inboxes.append(inbox)
        procs.append(p)
        paths.append(path)
    return procs, inboxes, outbox, paths

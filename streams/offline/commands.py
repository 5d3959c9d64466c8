"""The offline commands of ``mot``: replay, report, produce, and sample files.

    mot replay FILE     alerts the stream would emit for FILE, as JSON Lines, without Kafka
    mot replay --from-topic   the same for what the input topic holds now
    mot report FILE     the moments-of-truth report for FILE (table, JSON or HTML)
    mot produce FILE    publish FILE to the input topic (validated first): backfill
"""

from __future__ import annotations

import argparse
import os
import sys
from array import array
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import orjson

from agents.domain.customer_state import CustomerState
from agents.domain.customer_view import running_score_of, score_line
from agents.domain.model_config import ModelConfig
from agents.domain.report import ReportBuilder
from agents.domain.timestamps import parse as parse_time
from streams.offline.jsonl import open_lines, write_jsonl
from streams.offline.progress import Progress
from streams.settings import Settings

FORMATS = ("table", "json", "html")


def add_parsers(sub: Any) -> None:
    """Register ``replay``, ``report`` and ``produce`` on the ``mot`` subparsers."""
    p = sub.add_parser("replay", help="run the stream's logic over a JSON Lines file, no Kafka")
    p.add_argument("file", nargs="?", default=None,
                   help="JSON Lines of touchpoint events (gzip accepted); - = stdin")
    p.add_argument("-o", "--output", default="-", help="alerts, JSON Lines (default stdout)")
    p.add_argument("--scores", help="write each customer's final running score (JSON Lines)")
    p.add_argument("--report", dest="report_path",
                   help="also write the report: .html, .json, else a table; - = stderr")
    _common(p)
    p = sub.add_parser("report", help="the moments-of-truth report of a JSON Lines file")
    p.add_argument("file", nargs="?", default=None,
                   help="JSON Lines of touchpoint events (gzip accepted); - = stdin")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="default: from the -o extension, else table")
    p.add_argument("-o", "--output", default="-", help="where to write it (default stdout)")
    _common(p)
    p = sub.add_parser("produce", help="publish a JSON Lines file to the input topic")
    p.add_argument("file", help="JSON Lines of touchpoint events (gzip accepted); - = stdin")
    p.add_argument("--rate", type=float, default=0.0, help="events/s; 0 = as fast as possible")
    p.add_argument("--dead-letter", action="store_true",
                   help="send invalid lines to the dead-letter topic instead of refusing")
    from streams.offline.backtest import add_parser

    add_parser(sub)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--top", type=int, default=10, help="rows per ranking (default 10)")
    p.add_argument("--as-of", dest="as_of", default=None,
                   help="RFC 3339 time used as the clock (time policy, detected_at);"
                        " default: the wall clock")
    p.add_argument("--errors", default=None,
                   help="write invalid lines as JSON Lines here instead of to stderr")
    p.add_argument("--workers", type=int, default=None,
                   help="processes (customers hashed over them by partition, as the topic's"
                        " partitioner does); default MOT_REPLAY_WORKERS, 0 = every core")
    p.add_argument("--idle-advance", dest="idle_advance", action="store_true", default=None,
                   help="at the end of the input, move each partition's clock on as the"
                        " stream's MOT_JOURNEY_IDLE_ADVANCE_S would by the replay's clock"
                        " (now or --as-of), so journeys still open then drop off as silent;"
                        " default MOT_REPLAY_IDLE_ADVANCE (off)")
    p.add_argument("--from-topic", dest="from_topic", action="store_true",
                   help="read the input topic (MOT_TOPIC_EVENTS) from its beginning up to"
                        " its end offsets at start, instead of a file")


def _open_out(path: str, stack: ExitStack, default: IO[str]) -> IO[str]:
    if path == "-":
        return default
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return stack.enter_context(open(path, "w", encoding="utf-8"))


def _report_format(path: str, explicit: str | None) -> str:
    if explicit:
        return explicit
    suffix = Path(path).suffix.lower()
    return {".html": "html", ".htm": "html", ".json": "json"}.get(suffix, "table")


def render(report: dict[str, Any], fmt: str) -> str:
    from streams.offline import report_render

    return {"table": report_render.render_table, "json": report_render.render_json,
            "html": report_render.render_html}[fmt](report)


def replay_as_of(args: argparse.Namespace, default: float | None) -> tuple[bool, float | None]:
    """``--as-of`` in epoch seconds (``default`` when not given) as ``(True, value)``, or
    ``(False, None)`` after saying on standard error why the time is refused."""
    if not args.as_of:
        return True, default
    try:
        return True, parse_time(args.as_of)
    except ValueError as exc:
        print(f"--as-of {args.as_of!r}: {exc}", file=sys.stderr)
        return False, None


def replay_workers(args: argparse.Namespace, s: Settings) -> int | None:
    """The replay's process count (``--workers``, else ``MOT_REPLAY_WORKERS``; 0: the
    machine's cores), or None after saying on standard error why the settings are refused."""
    workers = args.workers if args.workers is not None else s.replay_workers
    if workers < 0 or s.replay_cache_customers < 1 or s.replay_chunk_events < 1:
        print("--workers / MOT_REPLAY_WORKERS must be >= 0, MOT_REPLAY_CACHE_CUSTOMERS and"
              " MOT_REPLAY_CHUNK_EVENTS >= 1", file=sys.stderr)
        return None
    return workers or os.cpu_count() or 1


def run_replay(args: argparse.Namespace, s: Settings, *, alerts: bool) -> int:
    """Shared body of ``replay`` (alerts out) and ``report`` (report out)."""
    from streams.offline.replay import run

    ok, as_of = replay_as_of(args, None)
    if not ok:
        return 2
    workers = replay_workers(args, s)
    if workers is None:
        return 2
    idle_advance = s.replay_idle_advance if args.idle_advance is None else args.idle_advance
    if (args.file is None) == (not args.from_topic):
        print("give a FILE or --from-topic (one of them)", file=sys.stderr)
        return 2
    with ExitStack() as stack:
        if args.from_topic:
            from streams.offline.topic_source import open_input_topic, where

            topic = open_input_topic(s)
            if topic is None:
                return 2
            lines = topic.lines()
            partitions = topic.partitions
            total: int | None = None
            label: Callable[[int], str] = lambda n: where(s.topic_events, n)  # noqa: E731
            position: Callable[[int | None], int] = lambda done: done or 0  # noqa: E731
        else:
            try:
                source = open_lines(args.file)
            except OSError as exc:
                print(f"cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
                return 2
            stack.callback(source.close)
            lines = source.lines(s.max_record_bytes)
            partitions = s.partitions
            total = source.total_bytes
            label = lambda n: f"{source.name}:{n}"  # noqa: E731
            position = lambda done: (source.position if done is None  # noqa: E731
                                     else source.position_of(done))
        report_path = getattr(args, "report_path", None) if alerts else args.output
        # Built only when asked for: it costs a few µs an event in every worker.
        builder = ReportBuilder(ModelConfig.from_settings(s)) if report_path else None
        bar = stack.enter_context(Progress("replay", total))
        alert_out = _open_binary(args.output, stack) if alerts else None
        errors = _open_out(args.errors, stack, sys.stderr) if args.errors else None
        scores_path = getattr(args, "scores", None)
        scores = _open_binary(scores_path, stack) if scores_path else None
        final = array("d")  # one float per customer, not one object

        def on_alert(kind: str, raw: bytes) -> None:
            if alert_out is not None:
                alert_out.write(raw + b"\n")

        def on_invalid(lineno: int, reason: str, detail: str) -> None:
            if errors is not None:
                errors.write(orjson.dumps({"line": label(lineno), "reason": reason,
                                           "detail": detail}).decode() + "\n")
            else:
                bar.write(f"{label(lineno)}: {reason}: {detail}")

        def on_state(cid: str, st: CustomerState) -> None:
            if builder is not None:
                final.append(running_score_of(st))
            if scores is not None:
                scores.write(orjson.dumps(score_line(cid, st)) + b"\n")

        wants_states = builder is not None or scores is not None
        summary = run(lines, s, on_alert=on_alert, on_invalid=on_invalid,
                      on_state=on_state if wants_states else None,
                      report=builder, partitions=partitions, workers=workers,
                      idle_advance=idle_advance, as_of=as_of,
                      on_progress=lambda done: bar.update(position(done)))
    print(summary.line(), file=sys.stderr)
    if builder is not None:
        fmt = _report_format(report_path, getattr(args, "format", None))
        text = render(builder.finish(_Scores(final), args.top), fmt)
        if report_path == "-":
            (sys.stderr if alerts else sys.stdout).write(text)
        else:
            Path(report_path).parent.mkdir(parents=True, exist_ok=True)
            Path(report_path).write_text(text, encoding="utf-8")
            print(f"report written to {report_path}", file=sys.stderr)
    return 0


class _Scores(Mapping[str, CustomerState]):
    """The final scores as the report reads the final states (only their ``score``),
    without keeping every customer's state."""

    def __init__(self, scores: array[float]) -> None:
        self._scores = scores

    def __len__(self) -> int:
        return len(self._scores)

    def __iter__(self) -> Iterator[str]:
        return (str(i) for i in range(len(self._scores)))

    def __getitem__(self, key: str) -> CustomerState:
        return CustomerState(score=self._scores[int(key)])


def _open_binary(path: str, stack: ExitStack) -> IO[bytes]:
    if path == "-":
        return sys.stdout.buffer
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return stack.enter_context(open(path, "wb"))


def run_produce(args: argparse.Namespace, s: Settings) -> int:
    from streams.offline.produce import produce_file

    def on_invalid(lineno: int, reason: str, detail: str) -> None:
        print(f"{args.file}:{lineno}: {reason}: {detail}", file=sys.stderr)

    try:
        result = produce_file(args.file, s, args.rate, args.dead_letter, on_invalid)
    except OSError as exc:
        print(f"cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if result.refused:
        print(f"refused: {result.invalid:,} of {result.lines:,} lines are invalid; nothing"
              " was published (fix them, or pass --dead-letter)", file=sys.stderr)
        return 1
    rate = result.lines / result.seconds if result.seconds > 0 else 0.0
    print(f"published {result.published:,} events to {s.topic_events}"
          + (f", {result.dead_lettered:,} invalid lines to {s.topic_dead_letter}"
             if result.dead_lettered else "")
          + f" in {result.seconds:.1f} s ({rate:,.0f} lines/s)", file=sys.stderr)
    return 0


def write_sample(path: str, count: int, customers: int, seed: int, start: str,
                 spacing_s: float) -> int:
    """Synthetic events at fixed event times to a file: the same arguments, the same file."""
    from streams.offline.traffic import TrafficGenerator

    t0 = parse_time(start)
    gen = TrafficGenerator(seed=seed, customers=customers)
    return write_jsonl(path, gen.events(t0, spacing_s, count))


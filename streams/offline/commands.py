"""The offline commands of ``mot``: replay, report, produce, and sample files.

    mot replay FILE     alerts the stream would emit for FILE, as JSON Lines, without Kafka
    mot report FILE     the moments-of-truth report for FILE (table, JSON or HTML)
    mot produce FILE    publish FILE to the input topic (validated first): backfill
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import orjson

from agents.domain.customer_view import score_line
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
    p.add_argument("file", help="JSON Lines of touchpoint events (gzip accepted); - = stdin")
    p.add_argument("-o", "--output", default="-", help="alerts, JSON Lines (default stdout)")
    p.add_argument("--scores", help="write each customer's final running score (JSON Lines)")
    p.add_argument("--report", dest="report_path",
                   help="also write the report: .html, .json, else a table; - = stderr")
    _common(p)
    p = sub.add_parser("report", help="the moments-of-truth report of a JSON Lines file")
    p.add_argument("file", help="JSON Lines of touchpoint events (gzip accepted); - = stdin")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="default: from the -o extension, else table")
    p.add_argument("-o", "--output", default="-", help="where to write it (default stdout)")
    _common(p)
    p = sub.add_parser("produce", help="publish a JSON Lines file to the input topic")
    p.add_argument("file", help="JSON Lines of touchpoint events (gzip accepted); - = stdin")
    p.add_argument("--rate", type=float, default=0.0, help="events/s; 0 = as fast as possible")
    p.add_argument("--dead-letter", action="store_true",
                   help="send invalid lines to the dead-letter topic instead of refusing")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--top", type=int, default=10, help="rows per ranking (default 10)")
    p.add_argument("--as-of", dest="as_of", default=None,
                   help="RFC 3339 time used as the clock (time policy, detected_at);"
                        " default: the wall clock")
    p.add_argument("--errors", default=None,
                   help="write invalid lines as JSON Lines here instead of to stderr")


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


def run_replay(args: argparse.Namespace, s: Settings, *, alerts: bool) -> int:
    """Shared body of ``replay`` (alerts out) and ``report`` (report out)."""
    from streams.offline.replay import replay

    clock: Callable[[], float] = time.time
    if args.as_of:
        try:
            fixed = parse_time(args.as_of)
        except ValueError as exc:
            print(f"--as-of {args.as_of!r}: {exc}", file=sys.stderr)
            return 2
        clock = lambda: fixed  # noqa: E731
    try:
        source = open_lines(args.file)
    except OSError as exc:
        print(f"cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    builder = ReportBuilder(ModelConfig.from_settings(s))
    with ExitStack() as stack:
        stack.callback(source.close)
        bar = stack.enter_context(Progress("replay", source.total_bytes))
        alert_out = _open_out(args.output, stack, sys.stdout) if alerts else None
        errors = _open_out(args.errors, stack, sys.stderr) if args.errors else None

        def on_alert(kind: str, value: dict[str, Any]) -> None:
            if alert_out is not None:
                alert_out.write(orjson.dumps(value).decode() + "\n")

        def on_invalid(lineno: int, reason: str, detail: str) -> None:
            if errors is not None:
                errors.write(orjson.dumps({"line": lineno, "reason": reason,
                                           "detail": detail}).decode() + "\n")
            else:
                bar.write(f"{source.name}:{lineno}: {reason}: {detail}")

        summary, states = replay(source, s, on_alert=on_alert, on_invalid=on_invalid,
                                 report=builder, clock=clock, progress=bar)
    if getattr(args, "scores", None):
        write_jsonl(args.scores, (score_line(cid, st) for cid, st in sorted(states.items())))
    print(summary.line(), file=sys.stderr)
    report_path = getattr(args, "report_path", None) if alerts else args.output
    if report_path:
        fmt = _report_format(report_path, getattr(args, "format", None))
        text = render(builder.finish(states, args.top), fmt)
        if report_path == "-":
            (sys.stderr if alerts else sys.stdout).write(text)
        else:
            Path(report_path).parent.mkdir(parents=True, exist_ok=True)
            Path(report_path).write_text(text, encoding="utf-8")
            print(f"report written to {report_path}", file=sys.stderr)
    return 0


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


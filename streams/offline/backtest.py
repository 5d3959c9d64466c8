"""``mot backtest``: replay history under two rule sets and report what would have changed.

    mot backtest FILE --rules NEW.yaml [--against OLD.yaml] [--json | --html PAGE]

Both runs are :func:`streams.offline.replay.run`, the stream's own core, over the same
records with the same fixed clock; the only difference is the rules. The old rules are
``--against`` (default: the ``MOT_*`` environment's, version ``env``); the new ones apply
from their ``effective_from`` (from the start without one), the old ones before it, as a
worker would apply a published version. :func:`agents.domain.backtest.compare` makes the
difference; ``streams.offline.report_render`` renders it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from agents.domain.backtest import Side, compare
from agents.domain.customer_view import circle_state
from agents.domain.rules import InvalidRules, RuleBook, Rules, env_rules, load_document, parse_rules
from streams.settings import Settings


def add_parser(sub: Any) -> None:
    p = sub.add_parser("backtest", help="replay history under new rules and the old ones, "
                       "and report the difference")
    p.add_argument("file", nargs="?", default=None,
                   help="JSON Lines of touchpoint events (gzip accepted); - = stdin")
    p.add_argument("--from-topic", dest="from_topic", action="store_true",
                   help="read the input topic (MOT_TOPIC_EVENTS) up to its end offsets at"
                        " start instead of a file (held in memory for the two runs)")
    p.add_argument("--rules", required=True, help="the new rules document (YAML or JSON)")
    p.add_argument("--against", default=None,
                   help="the old rules document (default: the MOT_* environment, version env)")
    p.add_argument("--json", action="store_true", help="print the difference as JSON")
    p.add_argument("--html", default=None, help="also write a self-contained HTML page here")
    p.add_argument("--top", type=int, default=20, help="rows per list (default 20)")
    p.add_argument("--as-of", dest="as_of", default=None,
                   help="RFC 3339 time used as the clock of both runs; default: now")
    p.add_argument("--workers", type=int, default=None,
                   help="replay processes per run; default MOT_REPLAY_WORKERS, 0 = every core")


def read_rules(path: str, base: Rules) -> Rules:
    """A rules file validated (``InvalidRules`` names the field; ``OSError`` if unreadable)."""
    return parse_rules(load_document(Path(path).read_text(encoding="utf-8")), base)


def books(new: Rules, old: Rules | None, base: Rules) -> tuple[RuleBook, RuleBook]:
    """(old, new): the old rules alone, and the old ones with the new from their start."""
    old_versions = (old,) if old is not None else ()
    return RuleBook(base, old_versions), RuleBook(base, (*old_versions, new))


def replay_side(lines: Iterable[tuple[int, bytes]], s: Settings, book: RuleBook,
                workers: int, as_of: float, partitions: int) -> tuple[Side, dict[str, Any]]:
    """One run: its alerts, and each customer's open circles at the end."""
    from streams.offline.replay import run

    side = Side()
    circles: dict[str, Any] = {}

    def on_state(cid: str, st: dict[str, Any]) -> None:
        found = circle_state(cid, st)
        if found:
            circles[cid] = found

    run(lines, s, on_alert=lambda kind, raw: side.add(orjson.loads(raw)),
        on_invalid=lambda lineno, reason, detail: None, on_state=on_state,
        partitions=partitions, workers=workers, as_of=as_of, rules=book)
    return side, circles


def run_backtest(args: argparse.Namespace, s: Settings) -> int:
    from streams.offline import report_render
    from streams.offline.commands import replay_as_of, replay_workers
    from streams.offline.jsonl import open_lines
    from streams.offline.topic_source import TopicSource, open_input_topic

    if (args.file is None) == (not args.from_topic):
        print("give a FILE or --from-topic (one of them)", file=sys.stderr)
        return 2
    base = env_rules(s)
    try:
        old = read_rules(args.against, base) if args.against else None
        new = read_rules(args.rules, base)
    except InvalidRules as exc:
        print(f"mot backtest: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"mot backtest: cannot read rules: {exc}", file=sys.stderr)
        return 2
    if old is not None and old.version == new.version:
        print(f"mot backtest: both rule sets are version {new.version!r}", file=sys.stderr)
        return 1
    ok, as_of = replay_as_of(args, time.time())
    if not ok or as_of is None:
        return 2
    workers = replay_workers(args, s)
    if workers is None:
        return 2
    old_book, new_book = books(new, old, base)
    partitions = s.partitions
    held: list[tuple[int, bytes]] | None = None
    topics: list[TopicSource] = []  # the first read, started to learn the end offsets
    if args.from_topic:
        first = open_input_topic(s)
        if first is None:
            return 2
        topics.append(first)
        partitions = first.partitions

    def lines() -> Iterable[tuple[int, bytes]]:
        if held is not None:
            yield from held
            return
        if args.from_topic:  # each side reads the topic up to the first read's end offsets
            topic = topics.pop() if topics else open_input_topic(s, until=first.ends)
            if topic is None:
                raise OSError("the input topic cannot be read again")
            yield from topic.lines()
            return
        source = open_lines(args.file)
        try:
            yield from source.lines(s.max_record_bytes)
        finally:
            source.close()

    if args.file == "-":
        held = list(lines())
    try:
        old_side, old_circles = replay_side(lines(), s, old_book, workers, as_of, partitions)
        new_side, new_circles = replay_side(lines(), s, new_book, workers, as_of, partitions)
    except OSError as exc:
        print(f"cannot read {args.file or s.topic_events}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    diff = compare(old_side, new_side, old_circles, new_circles,
                   (old or base).document(), new.document(), args.top)
    if args.json:
        sys.stdout.write(report_render.render_json(diff))
    else:
        sys.stdout.write(report_render.render_backtest_table(diff))
    if args.html:
        Path(args.html).parent.mkdir(parents=True, exist_ok=True)
        Path(args.html).write_text(report_render.render_backtest_html(diff), encoding="utf-8")
        print(f"backtest page written to {args.html}", file=sys.stderr)
    return 0

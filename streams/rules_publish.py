"""``mot rules publish FILE``: validate a rules document and put it on the rules topic.

The document is validated as the workers validate it (:func:`agents.domain.rules.parse_rules`;
a refusal names the field and exits 1, nothing is sent). Its ``effective_from`` must be at
least ``MOT_RULES_MIN_LEAD_S`` after the wall clock (absent: set to that), so that workers
learn the version before the events it applies to arrive. A version already on the topic
with other values is refused (a version never changes: the compacted topic keeps one record
per version, and a worker started later must read the same one); the same document again is
a no-op. What is sent is the complete document, every tunable resolved, keyed by version.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from agents.domain.rules import InvalidRules, Rules, env_rules, load_document, parse_rules
from agents.domain.timestamps import iso
from streams.settings import Settings


def add_parser(sub: Any) -> None:
    p = sub.add_parser("rules", help="the rules as versioned data: publish a version")
    rsub = p.add_subparsers(dest="rules_command", required=True)
    pub = rsub.add_parser("publish", help="validate a rules document (YAML or JSON) and "
                          "publish it to the workers")
    pub.add_argument("file", help="the rules document; - = stdin")


def prepared(text: str, s: Settings, now: float) -> Rules:
    """The document as it will be sent, or :class:`InvalidRules` naming the field."""
    rules = parse_rules(load_document(text), env_rules(s))
    earliest = now + s.rules_min_lead_s
    if rules.effective_from is None:
        start = float(math.ceil(earliest))
        doc = {**rules.document(), "effective_from": iso(start).replace(".000Z", "Z")}
        return parse_rules(doc, env_rules(s))
    if rules.effective_from < earliest:
        raise InvalidRules("effective_from", f"{iso(rules.effective_from)} is earlier than "
                           f"now + MOT_RULES_MIN_LEAD_S ({s.rules_min_lead_s:g} s), "
                           f"{iso(earliest)}: workers may have scored events after it")
    return rules


def _published(s: Settings) -> list[bytes]:
    from streams.offline.topic_source import TopicSource

    source = TopicSource(s, s.topic_rules).start()
    return [raw for _, raw in source.lines()]


async def _send(s: Settings, rules: Rules) -> None:
    from aiokafka import AIOKafkaProducer

    from streams.kafka.clients import client_options

    producer = AIOKafkaProducer(**client_options(s), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(s.topic_rules, orjson.dumps(rules.document()),
                                     key=rules.version.encode())
    finally:
        await producer.stop()


def run_rules(args: Any, s: Settings) -> int:
    from streams.kafka.admin import ensure_topics

    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
    except OSError as exc:
        print(f"mot rules publish: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    try:
        rules = prepared(text, s, time.time())
    except InvalidRules as exc:
        print(f"mot rules publish: refused, nothing was sent: {exc}", file=sys.stderr)
        return 1
    try:
        asyncio.run(ensure_topics(s, [s.topic_rules]))
        published = _published(s)
    except Exception as exc:  # no broker, no permission: nothing was sent
        print(f"mot rules publish: cannot read {s.topic_rules}: {exc}", file=sys.stderr)
        return 2
    for raw in published:
        try:
            known = parse_rules(load_document(raw.decode("utf-8")), env_rules(s))
        except (InvalidRules, UnicodeDecodeError):
            continue  # an invalid record the workers ignore as well
        if known.version != rules.version:
            continue
        if known.values == rules.values:
            print(f"version {rules.version} is published already (effective from "
                  f"{iso(known.effective_from or 0)}); nothing was sent", file=sys.stderr)
            return 0
        print(f"mot rules publish: refused, nothing was sent: rules.version: "
              f"{rules.version!r} is published already with other values; a version never "
              "changes, publish a new one", file=sys.stderr)
        return 1
    asyncio.run(_send(s, rules))
    print(f"published rules version {rules.version} to {s.topic_rules}, effective from "
          f"{iso(rules.effective_from or 0)} (event time)", file=sys.stderr)
    return 0

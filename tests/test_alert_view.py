"""What ``mot tail`` (and so ``make run``) prints: one timestamp format, and dead letters
read with the headers their writers set."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path

import orjson
from hypothesis import given
from hypothesis import strategies as st

from agents.domain.model_config import ModelConfig
from agents.domain.moment_processor import process_record
from agents.domain.timestamps import iso, iso_text, parse
from streams.alert_view import render_alert, render_dead_letter, render_record
from streams.dead_letters import REASON, file_headers, stream_headers
from streams.offline.traffic import TrafficGenerator

REPO = Path(__file__).resolve().parents[1]
ONE_FORMAT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ANY_TIME = re.compile(r"\d{4}-\d\d-\d\dT[0-9:.]+(?:Z|[+-]\d\d:\d\d)?")
T0 = parse("2026-06-01T08:00:00Z")


def failed(occurred_at: str) -> dict:
    return {"kind": "failed-moment", "severity": "red", "customer_id": "c-1",
            "touchpoint": "checkout.payment", "occurred_at": occurred_at,
            "reason": {"signal": "csat", "value": 1, "quality": -1.0},
            "score_before": 0.0, "score_after": -12.0, "alert_id": "0123456789"}


def test_an_event_time_sent_with_any_offset_is_shown_in_utc_with_z() -> None:
    for sent in ("2026-06-01T10:00:00.000+02:00", "2026-06-01T08:00:00+00:00",
                 "2026-06-01T08:00:00.000Z", "2026-06-01t08:00:00z"):
        line = render_alert(failed(sent))
        assert line.startswith("2026-06-01T08:00:00.000Z  RED   failed-moment"), line
    assert iso_text("not a time") == "not a time"
    assert iso_text("2026-06-01T08:00:00") == "2026-06-01T08:00:00"  # no offset: no instant
    assert iso(T0 + 0.25) == "2026-06-01T08:00:00.250Z"


@given(st.floats(min_value=-62_135_596_800.0, max_value=253_402_300_799.0))
def test_iso_is_utc_with_milliseconds_truncated_as_datetime_does(ts: float) -> None:
    expected = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
    assert iso(ts) == expected.replace("+00:00", "Z")
    assert iso(ts) == iso(ts)  # cached: the same text again
    assert ONE_FORMAT.match(iso(ts))


def test_every_time_in_the_alerts_of_generated_traffic_has_the_one_format() -> None:
    """``make run``: generated events through the scoring path, every alert as tailed."""
    gen = TrafficGenerator(seed=3, customers=20)
    states: dict = {}
    cfg = ModelConfig()
    kinds = set()
    times = lines = 0
    for event in gen.events(T0, 60.0, 3000):
        done = process_record(orjson.dumps(event), event["customer_id"].encode(), states.get,
                              cfg, 65536, T0 + 3 * 86400)
        if done.state is not None:
            states[event["customer_id"]] = done.state
        for out in done.outputs:
            kinds.add(out.kind)
            raw = orjson.dumps(out.value)
            for text in ANY_TIME.findall(raw.decode()):  # the alert as sent to Kafka
                assert ONE_FORMAT.match(text), (out.kind, text)
                times += 1
            line = render_record("alerts", raw, {}, "dead", raw=False)
            head = line.split("  ")[0]
            assert ONE_FORMAT.match(head), line
            assert "+00:00" not in line
            lines += 1
    assert {"failed-moment", "vicious-circle", "drop-off"} <= kinds
    assert lines > 100 and times > lines


def test_a_dead_letter_is_shown_with_the_headers_its_writers_set() -> None:
    parked = dict(stream_headers("invalid_json", "unexpected character", "mot.events", 3, 42,
                                 1780300800.5))
    line = render_dead_letter(b"{nope", parked)
    assert line.startswith("DEAD-LETTER reason=invalid_json detail='unexpected character' "
                           "source=mot.events[3]@42 bytes=5")
    refused = dict(file_headers("missing_field", "x" * 2000, "backfill.jsonl", 7))
    assert refused[REASON] == b"missing_field" and len(refused["mot.detail"]) == 1024
    assert refused["mot.source.line"] == b"7"


def test_one_module_names_the_dead_letter_headers() -> None:
    """Writers and readers take the header names from streams/dead_letters.py."""
    owner = REPO / "streams" / "dead_letters.py"
    found = []
    for path in [*(REPO / "agents").rglob("*.py"), *(REPO / "streams").rglob("*.py")]:
        if path == owner:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and re.fullmatch(r"mot\.(reason|detail|source\.\w+)", node.value):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value}")
    assert found == []

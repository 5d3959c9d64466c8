"""``mot replay`` emits every alert kind the stream does, the same for any number of
workers, with customers' states spilled to disk beyond its cache (run as a user runs it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from agents.domain.alert_ids import alert_id
from agents.domain.drop_off import drop_off_id
from streams.kafka.default_partitioner import partition_of
from tests import replay_scenario as scen
from tests.test_replay import alerts_of, ev, mot, write_lines

AS_OF = "2026-11-03T00:00:00Z"


def by_kind(alerts: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [a for a in alerts if a["kind"] == kind]


def test_every_alert_kind_of_the_scenario_is_replayed(tmp_path: Path) -> None:
    src = scen.write(tmp_path / "in.jsonl")
    done = mot("replay", str(src), "--as-of", AS_OF, "--workers", "1", **scen.SETTINGS)
    assert done.returncode == 0, done.stderr
    alerts = alerts_of(done.stdout)
    drops = {a["customer_id"]: a for a in by_kind(alerts, "drop-off")}
    # silent journeys dropped by the partition's watermark, with the stream's ids
    for k in range(20):
        a = drops[f"traveller-{k:02d}"]
        assert a["alert_id"] == drop_off_id(f"traveller-{k:02d}", f"traveller-{k}-j1")
        assert a["trigger"] == "timeout" and a["timeout_s"] == 600
    assert all(drops[f"quitter-{k}"]["trigger"] == "abandoned" for k in range(6))
    # the returners' first journey went silent; the second one is still open at the end
    assert {drops[f"returner-{k}"]["journey_id"] for k in range(6)} == \
        {f"returner-{k}-j1" for k in range(6)}
    assert not any(c.startswith("finisher") for c in drops)
    assert len(drops) == 32
    # the payment touchpoint goes red during the incident and back to green after it
    status = by_kind(alerts, "touchpoint-status")
    assert [a["transition"] for a in status] == list(range(1, len(status) + 1))
    assert [a["alert_id"] for a in status] == [
        alert_id("touchpoint-status", scen.ANDON_TOUCHPOINT, str(i + 1))
        for i in range(len(status))]
    assert "red" in [a["status"] for a in status] and status[-1]["status"] == "green"
    incident = (scen.T0 + scen.INCIDENT.start * scen.TICK_S,
                scen.T0 + scen.INCIDENT.stop * scen.TICK_S)
    red = next(a for a in status if a["status"] == "red")
    assert incident[0] <= scen.datetime.fromisoformat(red["occurred_at"]).timestamp() \
        <= incident[1]
    assert by_kind(alerts, "failed-moment") and by_kind(alerts, "vicious-circle")


def test_a_silent_journey_drops_by_its_own_partitions_clock_only(tmp_path: Path) -> None:
    """The watermark is per input partition: later events elsewhere do not expire it."""
    names = [f"c{i}" for i in range(50)]
    a = names[0]
    same = next(n for n in names[1:] if partition_of(n.encode(), 2) == partition_of(b"c0", 2))
    other = next(n for n in names[1:] if partition_of(n.encode(), 2) != partition_of(b"c0", 2))
    lines = [ev("a1", a, "2026-11-01T10:00:00Z", "web.search", outcome="success",
                journey_id="ja")]

    def run(later: str, *extra: str) -> list[dict[str, Any]]:
        src = write_lines(tmp_path / f"{later}.jsonl", [
            *lines, ev("b1", later, "2026-11-01T12:00:00Z", "web.search", outcome="success")])
        done = mot("replay", str(src), "--as-of", "2026-11-01T12:00:00Z", *extra,
                   MOT_PARTITIONS="2")
        assert done.returncode == 0, done.stderr
        return by_kind(alerts_of(done.stdout), "drop-off")

    assert [x["alert_id"] for x in run(same)] == [drop_off_id(a, "ja")]
    assert run(other) == []
    assert run(other, "--workers", "2") == []
    # the stream, left idle until --as-of, would have moved the clock on and dropped it
    dropped = run(other, "--idle-advance")
    assert [(x["alert_id"], x["trigger"]) for x in dropped] == [(drop_off_id(a, "ja"),
                                                                 "timeout")]


def test_output_is_byte_identical_for_any_number_of_workers_and_cache(tmp_path: Path) -> None:
    src = scen.write(tmp_path / "in.jsonl")
    spill = tmp_path / "spill"
    spill.mkdir()
    runs = {}
    # "2-chunks-of-1": a message per record, hundreds of them each way through the
    # bounded queues between the parent and the workers
    for label, workers, cache, chunk in (("1", "1", "100000", "1024"),
                                         ("2", "2", "100000", "1024"),
                                         ("3", "3", "100000", "1024"),
                                         ("2-spill", "2", "3", "1024"),
                                         ("2-chunks-of-1", "2", "100000", "1")):
        out, scores = tmp_path / f"a{label}.jsonl", tmp_path / f"s{label}.jsonl"
        done = mot("replay", str(src), "--as-of", AS_OF, "--workers", workers, "-o", str(out),
                   "--scores", str(scores), MOT_REPLAY_CACHE_CUSTOMERS=cache,
                   MOT_REPLAY_CHUNK_EVENTS=chunk, MOT_REPLAY_SPILL_DIR=str(spill),
                   **scen.SETTINGS)
        assert done.returncode == 0, done.stderr
        runs[label] = (out.read_bytes(), scores.read_bytes(), done.stderr.decode())
    first = runs["1"]
    assert len(alerts_of(first[0])) > 200 and len(first[1].splitlines()) == 98
    for label, run in runs.items():
        assert run[:2] == first[:2], label
    assert "(0 state spills)" in runs["1"][2] and "(0 state spills)" not in runs["2-spill"][2]
    assert list(spill.iterdir()) == []  # the spill store and the scratch files are gone


def test_the_report_counts_silence_drop_offs_and_status_alerts(tmp_path: Path) -> None:
    src = scen.write(tmp_path / "in.jsonl")
    replayed = mot("replay", str(src), "--as-of", AS_OF, **scen.SETTINGS)
    status = len(by_kind(alerts_of(replayed.stdout), "touchpoint-status"))
    reports = []
    for workers in ("1", "2"):
        done = mot("report", str(src), "--format", "json", "--as-of", AS_OF,
                   "--workers", workers, **scen.SETTINGS)
        assert done.returncode == 0, done.stderr
        reports.append(orjson.loads(done.stdout))
    for report in reports:
        assert report["totals"]["drop_offs"] == 32
        assert report["totals"]["alerts_by_kind"]["touchpoint-status"] == status >= 2
        assert report["final_scores"]["customers"] == 98
    assert reports[0]["totals"] == reports[1]["totals"]
    assert reports[0]["by_drop_off_blame"] == reports[1]["by_drop_off_blame"]

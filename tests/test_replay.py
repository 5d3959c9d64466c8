"""``mot replay``, ``mot report`` and the sample file, run as a user runs them (the CLI).

Expected values come from the model's definitions (contributions, decay), not from
earlier runs.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from agents.domain.alert_ids import alert_id
from agents.domain.model_config import ModelConfig
from agents.domain.quality import moment_quality
from agents.domain.running_score import contribution
from schemas.touchpoint_event import decode_event

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "samples" / "touchpoints.jsonl.gz"
SAMPLE_COMMAND = ["generate", "--count", "4000", "--customers", "200", "--seed", "7",
                  "--start", "2026-06-01T08:00:00Z", "--spacing", "60"]
CFG = ModelConfig()


def mot(*args: str, stdin: bytes | None = None, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MOT_")}
    environ.update(env)
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], cwd=REPO,
                          input=stdin, capture_output=True, env=environ, timeout=120)


def ev(eid: str, cid: str, at: str, touchpoint: str = "checkout.payment", **signals: Any
       ) -> dict[str, Any]:
    return {"event_id": eid, "customer_id": cid, "occurred_at": at, "touchpoint": touchpoint,
            **signals}


def write_lines(path: Path, lines: list[bytes | dict[str, Any]]) -> Path:
    path.write_bytes(b"".join((x if isinstance(x, bytes) else orjson.dumps(x)) + b"\n"
                              for x in lines))
    return path


def alerts_of(stdout: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stdout.splitlines() if line.strip()]


def test_replay_writes_alerts_and_reports_invalid_lines_without_stopping(tmp_path: Path) -> None:
    big = orjson.dumps(ev("x9", "carol", "2026-11-01T10:00:00Z", csat=1,
                          attributes={"note": "x" * 600}))
    src = write_lines(tmp_path / "in.jsonl", [
        ev("a1", "alice", "2026-11-01T10:00:00Z", outcome="success"),
        ev("a2", "alice", "2026-11-01T10:05:00Z", csat=1),
        b"this is not json",
        ev("b1", "bob", "2026-11-01T09:00:00Z", csat="five"),
        b"",
        big,
        ev("b2", "bob", "2026-11-01T09:10:00Z", duration_s=180, expected_duration_s=60),
        ev("a2", "alice", "2026-11-01T10:05:00Z", csat=1),  # a retry: counted once
    ])
    done = mot("replay", str(src), MOT_MAX_RECORD_BYTES="512")
    assert done.returncode == 0, done.stderr
    err = done.stderr.decode()
    assert f"{src}:3: invalid_json:" in err
    assert f"{src}:4: wrong_type: csat" in err
    assert f"{src}:6: too_large:" in err
    assert "3 invalid" in err and "events/s" in err and "peak RSS" in err
    alerts = alerts_of(done.stdout)
    # the retry re-sends the same alert (same id), as the stream does
    assert {a["alert_id"] for a in alerts} == {alert_id("failed-moment", "alice", "a2"),
                                               alert_id("failed-moment", "bob", "b2")}
    a2 = next(a for a in alerts if a["event_id"] == "a2")
    assert a2["score_before"] == pytest.approx(0.5)
    assert a2["score_after"] == pytest.approx(0.5 * 2 ** (-300 / CFG.score.half_life_s) - 12)


def test_replay_goes_in_event_time_order_within_its_buffer(tmp_path: Path) -> None:
    # b is 9 days before a, listed after it: in file order it is beyond MOT_MAX_LATENESS_S
    src = write_lines(tmp_path / "in.jsonl", [
        ev("a", "alice", "2026-11-10T10:00:00Z", outcome="success"),
        ev("b", "alice", "2026-11-01T10:00:00Z", csat=1),
    ])
    ordered = mot("replay", str(src), "--scores", str(tmp_path / "s.jsonl"))
    assert ordered.returncode == 0, ordered.stderr
    assert "2 scored" in ordered.stderr.decode()
    score = orjson.loads((tmp_path / "s.jsonl").read_bytes().splitlines()[0])["score"]
    assert score == pytest.approx(-12 * 2 ** (-9 * 86400 / CFG.score.half_life_s) + 0.5)
    assert len(alerts_of(ordered.stdout)) == 1

    unordered = mot("replay", str(src), MOT_REPLAY_REORDER_BUFFER="0")
    err = unordered.stderr.decode()
    assert f"{src}:2: too_late:" in err
    assert "1 out of event-time order" in err and "1 scored" in err
    assert alerts_of(unordered.stdout) == []


def test_replay_reads_gzip_and_standard_input_alike(tmp_path: Path) -> None:
    raw = gzip.decompress(SAMPLE.read_bytes())
    plain = write_lines(tmp_path / "plain.jsonl", [raw.rstrip(b"\n")])
    runs = [mot("replay", str(SAMPLE), "--as-of", "2026-11-23T00:00:00Z"),
            mot("replay", str(plain), "--as-of", "2026-11-23T00:00:00Z"),
            mot("replay", "-", "--as-of", "2026-11-23T00:00:00Z", stdin=SAMPLE.read_bytes())]
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    assert runs[0].stdout and runs[0].stdout == runs[1].stdout == runs[2].stdout


def test_final_scores_are_the_decayed_sum_of_each_customers_moments(tmp_path: Path) -> None:
    """S(T) = Σ Δᵢ · 2^(−(T − tᵢ)/H), computed here from the sample file itself."""
    done = mot("replay", str(SAMPLE), "-o", str(tmp_path / "a.jsonl"),
               "--scores", str(tmp_path / "s.jsonl"))
    assert done.returncode == 0, done.stderr
    moments: dict[str, list[tuple[float, float]]] = {}
    for line in gzip.decompress(SAMPLE.read_bytes()).splitlines():
        event, t = decode_event(line, 65536)
        q = moment_quality(event, CFG.quality).q
        moments.setdefault(event.customer_id, []).append(
            (t, contribution(q, event.weight_or_default, CFG.score)))
    scores = {s["customer_id"]: s for s in map(orjson.loads,
                                              (tmp_path / "s.jsonl").read_bytes().splitlines())}
    assert set(scores) == set(moments)
    for cid, ms in moments.items():
        end = max(t for t, _ in ms)
        expected = sum(d * 2 ** (-(end - t) / CFG.score.half_life_s) for t, d in ms)
        assert scores[cid]["score"] == pytest.approx(expected, abs=1e-9), cid
        assert scores[cid]["moments"] == len(ms)


def test_report_ranks_touchpoints_by_value_destroyed_failure_rate(tmp_path: Path) -> None:
    # payment: three moments at q = −0.5 (Δ = −6 each) and one success; login: one at q = −1
    src = write_lines(tmp_path / "in.jsonl", [
        ev("p1", "c1", "2026-11-01T10:00:00Z", "checkout.payment", csat=2),
        ev("p2", "c2", "2026-11-01T10:00:00Z", "checkout.payment", csat=2),
        ev("p3", "c3", "2026-11-01T10:00:00Z", "checkout.payment", csat=2),
        ev("p4", "c4", "2026-11-01T10:00:00Z", "checkout.payment", outcome="success"),
        ev("l1", "c5", "2026-11-01T10:00:00Z", "app.login", csat=1),
        ev("s1", "c6", "2026-11-01T10:00:00Z", "web.search", outcome="delight", weight=2),
    ])
    done = mot("report", str(src), "--format", "json")
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout)
    by_value = [(r["touchpoint"], r["value_destroyed"]) for r in report["by_value_destroyed"]]
    minus = lambda q: -contribution(q, 1.0, CFG.score)  # noqa: E731
    assert by_value == [("checkout.payment", pytest.approx(3 * minus(-0.5))),
                        ("app.login", pytest.approx(minus(-1.0))), ("web.search", 0)]
    assert [(r["touchpoint"], r["failure_rate"]) for r in report["by_failure_rate"]] == [
        ("app.login", 1.0), ("checkout.payment", 0.75), ("web.search", 0.0)]
    assert report["candidates"][0]["touchpoint"] == "checkout.payment"
    assert report["candidates"][0]["share"] == pytest.approx(18 / 30)
    assert report["by_drop_off_blame"] == []
    assert report["vicious_circles"] == {"open": 0, "customers": []}
    fs = report["final_scores"]
    assert sum(b["customers"] for b in fs["bins"]) == fs["customers"] == 6
    assert fs["negative"] == 4 and fs["max"] == pytest.approx(2.0)

    table = mot("report", str(src)).stdout.decode()
    section = table.split("Touchpoints by value destroyed")[1].split("Touchpoints by")[0]
    rows = [line.split()[0] for line in section.splitlines()[3:] if line.strip()]
    assert rows == ["checkout.payment", "app.login", "web.search"]
    assert "1. checkout.payment: destroys 18.00 (60% of all value destroyed)" in table
    blame = table.split("Touchpoints by blame in drop-offs")[1]
    assert blame.splitlines()[1].strip() == "none"


def test_replay_of_a_missing_file_says_so(tmp_path: Path) -> None:
    done = mot("replay", str(tmp_path / "nope.jsonl"))
    assert done.returncode == 2
    assert "cannot read" in done.stderr.decode() and "No such file" in done.stderr.decode()


def test_the_sample_file_is_what_its_documented_command_makes(tmp_path: Path) -> None:
    out = tmp_path / "touchpoints.jsonl.gz"
    done = mot(*SAMPLE_COMMAND, "--to-file", str(out))
    assert done.returncode == 0, done.stderr
    # compared decompressed: the events are the contract, not one zlib build's bytes
    assert gzip.decompress(out.read_bytes()) == gzip.decompress(SAMPLE.read_bytes())
    assert out.read_bytes()[4:8] == b"\0\0\0\0"  # no timestamp in the gzip header
    assert len(gzip.decompress(out.read_bytes()).splitlines()) == 4000


def test_report_circles_agree_with_the_customers_final_states() -> None:
    """Open circles as the report tracks them from the alerts = as the states hold them."""
    from agents.domain.circles import VICIOUS, open_circles
    from agents.domain.report import ReportBuilder
    from streams.offline.jsonl import open_lines
    from streams.offline.replay import replay
    from streams.settings import Settings

    s = Settings()
    builder = ReportBuilder(ModelConfig.from_settings(s))
    source = open_lines(str(SAMPLE))
    try:
        summary, states = replay(source, s, on_alert=lambda k, v: None,
                                 on_invalid=lambda n, r, d: None, report=builder)
    finally:
        source.close()
    report = builder.finish(states, top=1000)
    in_state = sorted(
        (cid, c["severity"]) for cid, st in states.items()
        for c in open_circles(st.circles, cid) if c["kind"] == VICIOUS)
    assert in_state, "the sample should hold open vicious circles"
    assert [(c["customer_id"], c["severity"]) for c in report["vicious_circles"]["customers"]] \
        == in_state
    assert summary.scored == report["totals"]["scored"] == 4000


def test_a_replay_worker_gone_without_its_results_fails_the_replay() -> None:
    """A worker process that exits without its "done" message, killed or with status 0,
    fails the replay with the worker named instead of leaving the parent waiting."""
    import queue
    import threading
    from types import SimpleNamespace

    from streams.offline.replay import Pool

    for exitcode, says in ((-9, "replay worker 1 exited with -9"),
                           (0, "replay worker 1 exited without its results")):
        pool: Any = object.__new__(Pool)
        pool.procs = [SimpleNamespace(exitcode=None), SimpleNamespace(exitcode=exitcode)]
        pool.outbox = queue.Queue()
        pool.finals, pool.gone = {}, set()
        raised: list[BaseException] = []

        def wait(pool: Any = pool, raised: list[BaseException] = raised) -> None:
            try:
                pool._drain(None, block=True)
            except RuntimeError as exc:
                raised.append(exc)

        waiting = threading.Thread(target=wait, daemon=True)
        waiting.start()
        waiting.join(15)
        assert not waiting.is_alive(), f"exit {exitcode}: the replay still waits"
        assert raised and says in str(raised[0])

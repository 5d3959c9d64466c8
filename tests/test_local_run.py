"""``make run``'s command as a newcomer sees it: ``mot local`` starts the real local Kafka,
a worker and synthetic traffic, and the terminal shows alerts, with no ERROR line and one
timestamp format, then stops everything on Ctrl-C."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness import free_port

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[1]
ALERT_KINDS = ("failed-moment", "vicious-circle", "virtuous-circle", "drop-off",
               "touchpoint-status", "dead-letter")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[^\s]*")


def test_make_run_shows_alerts_without_error_lines_and_stops_on_ctrl_c() -> None:
    env = dict(os.environ, MOT_WEB_PORT=str(free_port()))
    env.pop("MOT_KAFKA_BOOTSTRAP_SERVERS", None)
    env.pop("MOT_STORE", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "local", "--rate", "60", "--customers", "80"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
    lines: list[str] = []
    alerts: list[str] = []
    try:
        assert proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 240
        buffer = b""
        while time.monotonic() < deadline and len(alerts) < 20 and proc.poll() is None:
            if not sel.select(timeout=1.0):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for raw in complete:
                line = raw.decode("utf-8", "replace")
                lines.append(line)
                if any(f" {kind} " in line for kind in ALERT_KINDS):
                    alerts.append(line)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            rc = None
    text = "\n".join(lines)
    assert len(alerts) >= 20, text[-3000:]
    assert not [line for line in lines if "ERROR" in line or "Traceback" in line], text[-3000:]
    formats = {re.sub(r"\d", "9", m.group(0)) for line in alerts for m in TIMESTAMP.finditer(line)}
    assert len(formats) == 1, formats
    assert rc == 0, text[-3000:]

"""The HTML report opens in headless Chromium, offline, and shows the ranked touchpoints."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import orjson
import pytest

from tests.test_replay import SAMPLE, mot

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Debian's chromium (deploy/local/system-deps.sh); fails under CI=true if missing
pytestmark = pytest.mark.requires_tool("chromium", "chromium-browser")


def chromium(*args: str) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp(prefix="mot-chromium-")
    try:
        return subprocess.run(
            [CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
             "--virtual-time-budget=10000", *args],
            capture_output=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and unfiltered RGB(A) rows of an 8-bit non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    height = channels = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = prev[x]
            c = prev[x - channels] if x >= channels else 0
            if f == 1:
                line[x] = (line[x] + a) & 0xFF
            elif f == 2:
                line[x] = (line[x] + b) & 0xFF
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[x] = (line[x] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, [r[:stride] for r in rows]


def test_html_report_opens_offline_and_shows_the_ranked_touchpoints(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    done = mot("report", str(SAMPLE), "-o", str(page))
    assert done.returncode == 0, done.stderr
    ranked = [r["touchpoint"] for r in
              orjson.loads(mot("report", str(SAMPLE), "--format", "json").stdout)
              ["by_value_destroyed"]]
    assert len(ranked) == 10

    text = page.read_text()
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", text), "loads a resource"

    dom = chromium("--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout.decode()
    table = html.split('id="rank-value"')[1].split("</table>")[0]
    assert re.findall(r"<tr><td></td><td>([^<]+)</td>", table) == ranked
    assert html.count('class="main-svg"') >= 3, "plotly drew no charts"

    shot = tmp_path / "report.png"
    done = chromium(f"--screenshot={shot}", "--window-size=1280,1400", page.as_uri())
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    width, height, rows = png_pixels(shot.read_bytes())
    assert (width, height) == (1280, 1400)
    channels = len(rows[0]) // width
    pixels = {row[i:i + 3] for row in rows[::4] for i in range(0, len(row), channels * 4)}
    assert len(pixels) > 50, "the screenshot is blank"
    bar = bytes((0xC0, 0x39, 0x2B))  # the bars' colour: the value-destroyed chart is drawn
    assert any(bar in row for row in rows)

"""``mot backtest`` on the sample: its difference equals two plain replays compared by hand,
and its HTML page opens in headless Chromium and shows the difference."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.test_replay import SAMPLE, alerts_of, mot

AS_OF = "2027-01-01T00:00:00Z"
STRICT = "version: strict-0.3\nfailed_threshold: 0.3\n"  # more moments count as failed


def replayed(tmp_path: Path, name: str, **env: str) -> list[dict[str, Any]]:
    done = mot("replay", str(SAMPLE), "--as-of", AS_OF, "--workers", "1", **env)
    assert done.returncode == 0, done.stderr
    return alerts_of(done.stdout)


def by_hand(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, Any]:
    """The difference as an analyst would make it from two alert files."""
    o = {a["alert_id"]: a for a in old}
    n = {a["alert_id"]: a for a in new}
    only_new = [n[i] for i in n.keys() - o.keys()]
    only_old = [o[i] for i in o.keys() - n.keys()]
    severity = [n[i] for i in n.keys() & o.keys() if n[i]["severity"] != o[i]["severity"]]

    def kinds(rows: list[dict[str, Any]]) -> dict[str, int]:
        out: dict[str, int] = {}
        for a in rows:
            out[a["kind"]] = out.get(a["kind"], 0) + 1
        return out

    def pages(rows: dict[str, dict[str, Any]]) -> dict[str, int]:
        out: dict[str, int] = {}
        for a in rows.values():
            if a["severity"] in ("amber", "red"):
                out[a["occurred_at"][:10]] = out.get(a["occurred_at"][:10], 0) + 1
        return out

    return {"only_new": len(only_new), "only_old": len(only_old),
            "changed_severity": len(severity), "kinds_new": kinds(only_new),
            "kinds_old": kinds(only_old), "pages_old": pages(o), "pages_new": pages(n),
            "versions_new": {a["rules_version"] for a in new}}


@pytest.fixture(scope="module")
def backtest(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, Path]:
    tmp = tmp_path_factory.mktemp("backtest")
    rules = tmp / "strict.yaml"
    rules.write_text(STRICT)
    page = tmp / "backtest.html"
    done = mot("backtest", str(SAMPLE), "--rules", str(rules), "--as-of", AS_OF,
               "--workers", "1", "--json", "--html", str(page))
    assert done.returncode == 0, done.stderr
    return orjson.loads(done.stdout), page, tmp


def test_the_difference_equals_two_plain_replays_compared_by_hand(
        backtest: tuple[dict[str, Any], Path, Path]) -> None:
    diff, _, tmp = backtest
    old = replayed(tmp, "old")
    new = replayed(tmp, "new", MOT_FAILED_THRESHOLD="0.3")
    hand = by_hand(old, new)
    assert hand["only_new"] > 0, "the changed threshold changes nothing on the sample"
    assert hand["versions_new"] == {"env"}  # a plain replay's rules are the environment's
    assert diff["alerts"] == {"old": len(old), "new": len(new)}
    assert {g: diff["counts"][g] for g in ("only_new", "only_old", "changed_severity")} == {
        g: hand[g] for g in ("only_new", "only_old", "changed_severity")}
    assert {r["kind"]: r["only_new"] for r in diff["by_kind"] if r["only_new"]} == \
        hand["kinds_new"]
    assert {r["kind"]: r["only_old"] for r in diff["by_kind"] if r["only_old"]} == \
        hand["kinds_old"]
    per_day = {d["day"]: (d["old"], d["new"]) for d in diff["paging_per_day"]}
    days = hand["pages_old"].keys() | hand["pages_new"].keys()
    assert per_day == {d: (hand["pages_old"].get(d, 0), hand["pages_new"].get(d, 0))
                       for d in days}
    assert diff["circle_state"]["customers_differing"] > 0
    assert diff["rules"]["new"]["version"] == "strict-0.3"
    assert diff["rules"]["new"]["failed_threshold"] == 0.3


def test_the_table_says_the_same_counts(tmp_path: Path,
                                        backtest: tuple[dict[str, Any], Path, Path]) -> None:
    diff = backtest[0]
    rules = tmp_path / "strict.yaml"
    rules.write_text(STRICT)
    done = mot("backtest", str(SAMPLE), "--rules", str(rules), "--as-of", AS_OF,
               "--workers", "2")
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode()
    assert f"only new {diff['counts']['only_new']:,}" in text
    assert (f"Customers whose circle state differs at the end: "
            f"{diff['circle_state']['customers_differing']:,}") in text


def test_an_invalid_rules_document_is_refused_naming_the_field(tmp_path: Path) -> None:
    rules = tmp_path / "bad.yaml"
    rules.write_text("version: bad\nfailed_threshold: 3\n")
    done = mot("backtest", str(SAMPLE), "--rules", str(rules))
    assert done.returncode == 1
    assert b"rules.failed_threshold: must be a number within [-1, 1]" in done.stderr


@pytest.mark.requires_tool("chromium", "chromium-browser")
def test_the_html_page_opens_offline_and_shows_the_difference(
        backtest: tuple[dict[str, Any], Path, Path]) -> None:
    from tests.test_report_html import chromium, png_pixels

    diff, page, tmp = backtest
    text = page.read_text()
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", text), "loads a resource"
    dom = chromium("--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout.decode()
    shown = dict(re.findall(r'<li id="count-(\w+)"><b>([\d,]+)</b>', html))
    assert {g: int(v.replace(",", "")) for g, v in shown.items()} == diff["counts"]
    assert "<code>failed_threshold</code>: -0.2 → 0.3" in html
    assert html.count('class="main-svg"') >= 3, "plotly drew no charts"
    shot = tmp / "backtest.png"
    done = chromium(f"--screenshot={shot}", "--window-size=1280,1600", page.as_uri())
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    width, height, rows = png_pixels(shot.read_bytes())
    assert (width, height) == (1280, 1600)
    new_bar = bytes((0xC0, 0x39, 0x2B))  # the "only new" bars and the new rules' pages
    old_bar = bytes((0x2C, 0x3E, 0x50))  # the old rules' pages
    assert any(new_bar in row for row in rows), "the new alerts are not drawn"
    assert any(old_bar in row for row in rows), "the old rules' paging is not drawn"

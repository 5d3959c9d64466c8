"""The README and docs/ as a reader meets them: every relative link and anchor leads
somewhere, and every JSON example is what the contracts and the code say it is."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from agents.domain.alert_ids import alert_id
from agents.domain.circles import KINDS as CIRCLE_KINDS
from agents.domain.circles import circle_id, lifecycle_id
from agents.domain.erasure import receipt_id
from schemas import schema_path

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
ERASURE_SCHEMAS = {"mot.erasure-request/v1": "erasure-request.v1",
                   "mot.erasure-receipt/v1": "erasure-receipt.v1"}
ALERT_KINDS = ("failed-moment", *CIRCLE_KINDS, "drop-off", "touchpoint-status")

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose(text: str) -> str:
    """The text outside fenced code blocks and code spans (where a link is no link)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its rendered text lowercased, punctuation dropped,
    each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link renders as its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = re.sub(r"(\*\*|__|\*|_)(.+?)\1", r"\2", text)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a page, numbered as GitHub numbers repeated headings."""
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(page: Path) -> list[str]:
    return LINK.findall(prose(page.read_text()))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    broken = []
    for target in links(page):
        if SCHEME.match(target):  # http:, https:, mailto: — not ours to check
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / unquote(path)).resolve() if path else page
        if REPO not in dest.parents and dest != REPO:
            broken.append(f"{target}: outside the repository")
        elif not dest.exists():
            broken.append(f"{target}: no {dest.relative_to(REPO)}")
        elif anchor and dest.suffix == ".md" and unquote(anchor) not in anchors(dest):
            broken.append(f"{target}: no heading with anchor #{anchor} in {dest.name}")
    assert broken == [], f"{page.relative_to(REPO)}: " + "; ".join(broken)


def test_the_link_checker_sees_links_and_headings_as_github_does() -> None:
    assert slug("A customer's state: `GET /customers/{id}`") == "a-customers-state-get-customersid"
    assert slug("Drop-off: `mot.alerts.drop-off`") == "drop-off-motalertsdrop-off"
    assert slug("What `make run` shows") == "what-make-run-shows"
    assert slug("Quality — of **a** moment") == "quality--of-a-moment"
    text = "[a](x.md) `[b](y.md)`\n```\n[c](z.md)\n```\n[d](w.md#h) ![e](i.png)"
    assert LINK.findall(prose(text)) == ["x.md", "w.md#h", "i.png"]
    assert "docs/alerts.md" in links(REPO / "README.md")


def json_examples(page: Path) -> list[dict[str, Any]]:
    """Every JSON value in the page's ```json blocks (a block may hold several)."""
    decoder = json.JSONDecoder()
    values = []
    for block in re.findall(r"^```json[ \t]*\n(.*?)^```", page.read_text(), re.S | re.M):
        text = block.strip()
        while text:
            value, end = decoder.raw_decode(text)
            values.append(value)
            text = text[end:].strip()
    return values


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_path(name).read_text()),
                                format_checker=FormatChecker())


def expected_alert_id(alert: dict[str, Any]) -> str:
    """The id the service gives this alert (``agents/domain/alert_ids.py`` and its callers)."""
    kind = alert["kind"]
    if kind == "failed-moment":
        return alert_id(kind, alert["customer_id"], alert["event_id"])
    if kind in CIRCLE_KINDS:
        return lifecycle_id(kind, alert["customer_id"], alert["circle"], alert["lifecycle"])
    if kind == "drop-off":
        return alert_id(kind, alert["customer_id"], alert["journey_id"])
    return alert_id(kind, alert["touchpoint"], str(alert["transition"]))


def test_every_alert_example_follows_its_contract_and_carries_the_computed_id() -> None:
    schemas = {kind: validator(f"{kind}-alert.v1") for kind in ALERT_KINDS}
    event_schema = validator("touchpoint-event.v1")
    kinds_in_alerts_doc = set()
    checked = checked_erasure = 0
    for page in PAGES:
        for value in json_examples(page):
            kind = value.get("kind")
            if kind in schemas:
                schemas[kind].validate(value)
                assert value["alert_id"] == expected_alert_id(value), (page.name, value)
                if kind in CIRCLE_KINDS:
                    assert value["circle_id"] == circle_id(kind, value["customer_id"],
                                                           value["circle"])
                if page.name == "alerts.md":
                    kinds_in_alerts_doc.add(kind)
                checked += 1
            elif value.get("schema") == "mot.customer/v1":
                for c in value["open_circles"]:
                    assert c["circle_id"] == circle_id(c["kind"], value["customer_id"],
                                                       c["circle"])
            elif value.get("schema") in ERASURE_SCHEMAS:
                validator(ERASURE_SCHEMAS[value["schema"]]).validate(value)
                if "receipt_id" in value:
                    assert value["receipt_id"] == receipt_id(value["request_id"],
                                                             value["customer_hash"])
                checked_erasure += 1
            elif "event_id" in value and "schema" not in value:  # an input event
                event_schema.validate(value)
    assert kinds_in_alerts_doc == set(ALERT_KINDS)
    assert checked >= len(ALERT_KINDS)
    assert checked_erasure >= 2, "docs/privacy.md shows a request and a receipt"

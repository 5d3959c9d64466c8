"""Everything the service does with one input record, as a pure function.

The Faust agent and the offline tools both call :func:`process_record`; the agent
only reads and writes the table and sends what comes back. So the stream and a
replay of the same records cannot disagree. The silence check of a customer who
sends nothing more (:func:`process_silence_check`) drops journeys and renders their
drop-offs on the same path.

A duplicate event (read again after a crash) sends again every alert it caused the
first time, with the same ids and content: its failed-moment alert from the moment
kept in the state, its circle lifecycle and drop-off alerts from the state's ``sent``
list (:class:`agents.domain.customer_state.SentAlerts`): per causing event, its hash and
the compact records the alerts are rendered from, kept while the event is in the
dedupe window (at most :data:`MAX_KEPT_ALERTS` alerts, an event's together).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace as replace_config
from typing import Any

import msgspec
from msgspec import Struct
from msgspec.structs import replace

from agents.domain.circles import CircleMoment, LifecycleRecord, lifecycle_alert, update_circles
from agents.domain.customer_moments import (
    MomentResult,
    RejectedMoment,
    counted_at,
    event_key,
    record_moment,
)
from agents.domain.customer_state import CustomerState, SentAlerts
from agents.domain.drop_off import KIND as DROP_OFF
from agents.domain.drop_off import drop_off_alert
from agents.domain.failed_moment import KIND as FAILED_MOMENT
from agents.domain.failed_moment import failed_moment_alert
from agents.domain.journeys import (
    Dropped,
    JourneyChange,
    PackedDrop,
    expire_journeys,
    keep_newest,
    on_moment,
    pack_dropped,
    unpack_dropped,
)
from agents.domain.model_config import ModelConfig
from agents.domain.quality import is_delight, is_failed
from agents.domain.rules import RuleBook
from schemas.touchpoint_event import InvalidEvent, TouchpointEvent, decode_event

MAX_KEPT_ALERTS = 8


class Output(Struct, frozen=True):
    """A record to send: ``kind`` names the alert kind (the shell maps it to a topic)."""

    kind: str
    key: str
    value: dict[str, Any]


class Observation(Struct, frozen=True):
    """A counted moment for the touchpoint andon, with the input position it was read at."""

    touchpoint: str
    at: float
    failed: bool
    event_id: str
    position: tuple[int, int] | None


class Processed(Struct):
    """The outcome of one record. Exactly one of: rejected, rekey, or scored."""

    rejected: tuple[str, str] | None = None  # (reason, detail) for the dead-letter topic
    rekey: str | None = None  # valid event under the wrong key: re-publish under this key
    event: TouchpointEvent | None = None
    customer_id: str | None = None
    state: CustomerState | None = None  # the customer's new state; None: leave it as it was
    result: MomentResult | None = None
    outputs: list[Output] = msgspec.field(default_factory=list)
    occurred_at: float | None = None  # the event time of a counted (scored, not duplicate) event
    journeys: JourneyChange | None = None  # what it did to the customer's journeys, if anything
    # For the touchpoint andon: the moment as counted at this input position (also when a
    # duplicate is the same record read again, so an observation a crash lost is sent again).
    observation: Observation | None = None


def process_record(
    value: bytes | None,
    key: bytes | None,
    state_of: Callable[[str], CustomerState | None],
    rules: ModelConfig | RuleBook,
    max_record_bytes: int,
    now: float,
    position: tuple[int, int] | None = None,
) -> Processed:
    """Decode, validate and score one record; ``state_of`` reads a customer's state;
    ``position`` is where the record was read (input partition, offset), if it was.
    ``rules``: one model, or every version known, of which the event's event time picks
    one (:meth:`RuleBook.at`); an event read again is re-sent under the version it was
    first scored under (kept with its alerts)."""
    try:
        event, occurred_at = decode_event(value, max_record_bytes)
    except InvalidEvent as exc:
        return Processed(rejected=(exc.reason, exc.detail))
    customer_id = event.customer_id
    if key != customer_id.encode():
        return Processed(rekey=customer_id, event=event, customer_id=customer_id)
    book = rules if isinstance(rules, RuleBook) else None
    cfg = book.at(occurred_at).config if book is not None else rules  # type: ignore[assignment]
    prev = state_of(customer_id)
    try:
        state, result = record_moment(prev, event, occurred_at, cfg, now, position)
        if (result.duplicate and book is not None and result.rules_version is not None
                and result.rules_version != cfg.rules_version):
            # read again after a change of rules: as first scored, under its kept version
            cfg = book.config_of(result.rules_version, cfg)
            state, result = record_moment(prev, event, occurred_at, cfg, now, position)
    except RejectedMoment as exc:
        return Processed(rejected=(exc.reason, exc.detail), event=event, customer_id=customer_id)
    # A duplicate's state (unchanged) is written back too: after a crash the local
    # store may hold an update whose changelog record never reached Kafka.
    out = Processed(event=event, customer_id=customer_id, result=result, state=state)
    if result.failed:
        out.outputs.append(
            Output(FAILED_MOMENT, customer_id, failed_moment_alert(event, result, cfg, now)))
    if result.duplicate:  # changes no circle or journey; re-sends what it caused
        if counted_at(prev, event.event_id, position):
            out.observation = Observation(event.touchpoint, occurred_at,
                                          is_failed(result.quality.q, cfg.quality),
                                          event.event_id, position)
        if prev is not None and prev.sent:
            key = event_key(event.event_id)
            for kept in prev.sent:
                if kept.event_key == key:
                    kept_cfg = _kept_config(kept, cfg, book)
                    out.outputs.extend(_render(r, event, kept_cfg, now) for r in kept.records)
        return out
    q = result.quality.q
    out.observation = Observation(event.touchpoint, occurred_at, result.failed,
                                  event.event_id, position)
    moment = CircleMoment(event, occurred_at, result.failed, is_delight(q, cfg.quality),
                          state.score, state.at)  # type: ignore[arg-type]
    state.circles, circle_records = update_circles(prev.circles if prev else None, moment,
                                                   cfg.circles, cfg.max_lateness_s)
    records: list[LifecycleRecord | PackedDrop] = [*circle_records]
    change = _journeys(out, prev, state, event, occurred_at, q, cfg)
    if change is not None and change.dropped:
        records.extend([pack_dropped(d) for d in change.dropped])
    if records:
        out.outputs.extend([_render(r, event, cfg, now) for r in records])
    sent = prev.sent if prev else []
    if sent and sent[0].event_key not in state.seen:  # left the dedupe window
        window = set(state.seen)
        sent = [s for s in sent if s.event_key in window]
    if records:
        sent = keep_newest([*sent, SentAlerts(event_key(event.event_id), records,
                                              cfg.rules_version)],
                           lambda s: s.records, MAX_KEPT_ALERTS)
    state.sent = sent
    return out


class Checked(Struct):
    """The outcome of a silence check for one customer (:func:`process_silence_check`)."""

    journeys: JourneyChange  # what it did to the customer's journeys
    state: CustomerState | None = None  # the customer's new state; None: leave it as it was
    outputs: list[Output] = msgspec.field(default_factory=list)


def process_silence_check(
    state: CustomerState | None,
    customer_id: str,
    watermark: float,
    rules: ModelConfig | RuleBook,
    now: float,
) -> Checked:
    """The silence check of one customer at the stream's ``watermark`` (event time): the
    journeys silent for the timeout drop (:func:`agents.domain.journeys.expire_journeys`)
    and their drop-offs are rendered as the ones an abandoning event causes. A check read
    again after a crash re-sends the same drop-offs. The state changes only when a
    journey dropped (or a kept check was read again). The rules are those of the
    watermark's event time."""
    cfg = rules.at(watermark).config if isinstance(rules, RuleBook) else rules
    js, change = expire_journeys(state.journeys if state else None, watermark, cfg.journeys)
    out = Checked(change, outputs=[_drop_off(customer_id, d, cfg, now) for d in change.dropped])
    if state is not None and change.dropped:
        out.state = replace(state, journeys=js)
    return out


def _kept_config(kept: SentAlerts, cfg: ModelConfig, book: RuleBook | None) -> ModelConfig:
    """The model a kept entry's alerts were computed under (its version's), to re-send
    them the same; an entry without a version (written before versions) takes ``cfg``."""
    version = kept.rules_version
    if version is None:
        return cfg
    if book is not None:
        return book.config_of(version, cfg)
    return cfg if version == cfg.rules_version else replace_config(cfg, rules_version=version)


def _render(record: LifecycleRecord | PackedDrop, event: TouchpointEvent, cfg: ModelConfig,
            now: float) -> Output:
    """The alert of a kept record: the same one whenever it is rendered (``detected_at``
    aside)."""
    customer_id = event.customer_id
    if isinstance(record, PackedDrop):
        return _drop_off(customer_id, unpack_dropped(record), cfg, now)
    alert = lifecycle_alert(record, event, now, cfg.rules_version)
    return Output(alert["kind"], customer_id, alert)


def _drop_off(customer_id: str, dropped: Dropped, cfg: ModelConfig, now: float) -> Output:
    """A drop-off, whichever path (an event or the silence check) noticed it."""
    return Output(DROP_OFF, customer_id, drop_off_alert(
        customer_id, dropped, cfg.journeys, cfg.quality.failed_threshold,
        cfg.quality.red_quality, now, cfg.rules_version))


def _journeys(out: Processed, prev: CustomerState | None, state: CustomerState,
              event: TouchpointEvent, occurred_at: float, q: float, cfg: ModelConfig,
              ) -> JourneyChange | None:
    """Journey state (README "Journeys and drop-off attribution"); the caller sends the
    drop-offs."""
    out.occurred_at = occurred_at
    js, change = on_moment(prev.journeys if prev else None, event, occurred_at, q,
                           state.at, cfg.journeys, cfg.quality.failed_threshold,  # type: ignore[arg-type]
                           cfg.dedupe_window)
    state.journeys = js
    if change is not None:
        out.journeys = change
    return change

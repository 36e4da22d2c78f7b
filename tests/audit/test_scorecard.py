"""Scorecards: the pure computation on constructed rows (deadlines, percentiles) and the scripted scenario
end to end with hand-computed figures.

The scenario (tests/audit/audit_scenario.py): HEALTH owns r_cond (conditional), r_open (unconditional) and
r_closed (not shared); TAX owns r_tax (conditional). TAX and STATS request r_cond (HEALTH approves TAX's,
rejects STATS') and r_open (both approved on arrival); HEALTH requests r_tax (left pending). One agreement
(r_cond, HEALTH -> TAX), two grants; three deliveries (one acknowledged, one disputed, one unsettled); the
first grant is revoked and the second expires, each refusing one delivery.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import Engine

from node.audit.errors import InvalidQueryError
from node.audit.queries import department_id
from node.audit.scorecard import (
    DeliveryFact,
    Facts,
    RequestFact,
    ResourceFact,
    add_working_days,
    compute_scorecard,
    load_facts,
)
from node.types import ShareType
from tests.audit.audit_scenario import Scenario


@pytest.fixture(scope="module")
def indexed(indexed_for_reading: Engine) -> Engine:
    """Every test here only reads the index: one for the module (tests/audit/conftest.py)."""
    return indexed_for_reading


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    ("start", "days", "holidays", "expected"),
    [
        ("2026-01-02T10:00", 1, (), "2026-01-05T10:00"),  # Friday -> Monday
        ("2026-01-02T10:00", 10, (), "2026-01-16T10:00"),
        ("2026-01-03T08:00", 1, (), "2026-01-05T08:00"),  # Saturday -> Monday
        ("2026-01-02T10:00", 2, (date(2026, 1, 5),), "2026-01-07T10:00"),  # a Monday holiday is skipped
        ("2026-01-02T10:00", 0, (), "2026-01-02T10:00"),
    ],
)
def test_working_days(start: str, days: int, holidays: tuple[date, ...], expected: str) -> None:
    assert add_working_days(ts(start), days, frozenset(holidays)) == ts(expected)


FRIDAY = "2026-01-02T10:00"  # deadline with 2 working days: Tuesday 2026-01-06 10:00


@pytest.mark.parametrize(
    ("decided", "outcome", "now", "overdue"),
    [
        ("2026-01-06T09:59", "approved", "2026-02-01T00:00", 0),
        ("2026-01-06T10:01", "rejected", "2026-02-01T00:00", 1),
        (None, "pending", "2026-01-06T09:00", 0),
        (None, "pending", "2026-01-06T11:00", 1),
        ("2026-01-07T10:00", "approved", "2026-01-06T11:00", 1),  # decided after evaluation: pending, late
    ],
)
def test_overdue(decided: str | None, outcome: str, now: str, overdue: int) -> None:
    facts = Facts(requests=[RequestFact(1, 1, 1, 2, ts(FRIDAY), ts(decided) if decided else None, outcome)])
    card = compute_scorecard(
        facts, department=1, period_from=0, period_to=ts("2026-03-01T00:00"), now=ts(now), deadline_days=2
    )
    assert card["requests"]["overdue"] == overdue


def test_response_time_percentiles_leave_out_automatic_approvals() -> None:
    t0 = ts(FRIDAY)
    hours = [1, 2, 3, 4, 5, 6, 7, 8, 9, 100]
    requests = [RequestFact(i, 1, 1, 2, t0, t0 + h * 3600, "approved") for i, h in enumerate(hours)]
    requests.append(RequestFact(99, 1, 1, 3, t0, t0, "approved", automatic=True))
    card = compute_scorecard(
        Facts(requests=requests), department=1, period_from=0, period_to=t0 + 10**6, now=t0 + 10**7
    )
    rt = card["response_time_seconds"]
    assert rt == {"decisions": 10, "median": 5.5 * 3600, "p90": 9 * 3600.0}
    assert card["requests"]["auto_approved"] == 1
    assert card["demand_satisfaction"] == {
        "2": {"requested": 10, "satisfied": 10, "rate": 1.0},
        "3": {"requested": 1, "satisfied": 1, "rate": 1.0},
    }


def test_empty_period_is_rejected() -> None:
    with pytest.raises(InvalidQueryError):
        compute_scorecard(Facts(), department=None, period_from=5, period_to=5, now=10)


def _time(scenario: Scenario, name: str) -> int:
    return scenario.client.w3.eth.get_block(scenario.results[name].block_number)["timestamp"]


def test_scenario_department_scorecard(indexed: Engine, scenario: Scenario) -> None:
    health = department_id(indexed, "HEALTH")
    tax, stats = department_id(indexed, "TAX"), department_id(indexed, "STATS")
    card = compute_scorecard(
        load_facts(indexed),
        department=health,
        period_from=0,
        period_to=4_000_000_000,
        now=4_000_000_000 - 1,
        deadline_days=10**4,
    )
    r1 = _time(scenario, "q1_decision") - _time(scenario, "q1")
    r2 = _time(scenario, "q2_decision") - _time(scenario, "q2")
    assert card["resources"] == {
        "total": 3,
        "by_share_type": {"conditional": 1, "not_shared": 1, "unconditional": 1},
    }
    assert card["catalog_shared"] == {
        "shared": 1,
        "total": 3,
        "rate": 0.333333,
        "resource_ids": [scenario.resources["r_cond"]],
        "by_share_type": {
            "conditional": {"shared": 1, "total": 1, "rate": 1.0},
            "not_shared": {"shared": 0, "total": 1, "rate": 0.0},
            "unconditional": {"shared": 0, "total": 1, "rate": 0.0},
        },
    }
    assert card["requests"] == {
        "received": 4,
        "approved": 3,
        "auto_approved": 2,
        "rejected": 1,
        "pending": 0,
        "withdrawn": 0,
        "overdue": 0,
        "overdue_request_ids": [],
    }
    assert card["response_time_seconds"] == {
        "decisions": 2,
        "median": (r1 + r2) / 2,
        "p90": float(max(r1, r2)),
    }
    assert card["demand_satisfaction"] == {
        str(tax): {"requested": 2, "satisfied": 2, "rate": 1.0},
        str(stats): {"requested": 2, "satisfied": 1, "rate": 0.5},
    }
    assert card["deliveries"] == {
        "sent": 3,
        "received": 0,
        "acknowledged": 1,
        "acknowledgement_rate": 0.333333,
        "disputed": 1,
        "receipt_batches_sent": 0,
        "receipts_sent": 0,
        "receipt_batches_received": 0,
        "receipts_received": 0,
    }
    assert card["refused_deliveries"] == {"total": 2, "by_reason": {"grant_expired": 1, "grant_revoked": 1}}


def test_scenario_consortium_scorecard(indexed: Engine, scenario: Scenario) -> None:
    now = 4_000_000_000 - 1
    card = compute_scorecard(load_facts(indexed), department=None, period_from=0, period_to=now + 1, now=now)
    assert card["resources"]["by_share_type"] == {"conditional": 2, "not_shared": 1, "unconditional": 1}
    assert card["catalog_shared"]["rate"] == 0.25
    assert card["catalog_shared"]["by_share_type"] == {
        "conditional": {"shared": 1, "total": 2, "rate": 0.5},
        "not_shared": {"shared": 0, "total": 1, "rate": 0.0},
        "unconditional": {"shared": 0, "total": 1, "rate": 0.0},
    }
    # q5 (HEALTH -> TAX) is still pending, long past 10 working days at this evaluation time.
    assert card["requests"] == {
        "received": 5,
        "approved": 3,
        "auto_approved": 2,
        "rejected": 1,
        "pending": 1,
        "withdrawn": 0,
        "overdue": 1,
        "overdue_request_ids": [scenario.requests["q5"]],
    }
    assert card["deliveries"]["sent"] == 3 and card["refused_deliveries"]["total"] == 2


@pytest.mark.parametrize(
    ("withdrawn", "decided", "now", "expected"),
    [
        # Withdrawn undecided before the deadline: neither pending nor overdue nor unmet demand.
        ("2026-01-05T10:00", None, "2026-02-01T00:00", {"pending": 0, "withdrawn": 1, "overdue": 0}),
        # Withdrawn after the deadline had passed: the provider was already late.
        ("2026-01-07T10:00", None, "2026-02-01T00:00", {"pending": 0, "withdrawn": 1, "overdue": 1}),
        # Withdrawn after evaluation: still pending then.
        ("2026-01-05T10:00", None, "2026-01-05T09:00", {"pending": 1, "withdrawn": 0, "overdue": 0}),
        # Approved, then withdrawn: the decision stands.
        (
            "2026-01-05T12:00",
            "2026-01-05T11:00",
            "2026-02-01T00:00",
            {"pending": 0, "withdrawn": 0, "overdue": 0},
        ),
    ],
)
def test_withdrawn_requests(withdrawn: str, decided: str | None, now: str, expected: dict[str, int]) -> None:
    request = RequestFact(1, 1, 1, 2, ts(FRIDAY), ts(decided) if decided else None,
                          "approved" if decided else "pending", withdrawn_at=ts(withdrawn))  # fmt: skip
    card = compute_scorecard(
        Facts(requests=[request]), department=1, period_from=0, period_to=ts("2026-03-01T00:00"), now=ts(now),
        deadline_days=2,
    )  # fmt: skip
    assert {k: card["requests"][k] for k in expected} == expected
    satisfaction = card["demand_satisfaction"]
    if expected["withdrawn"]:
        assert satisfaction == {}  # no demand left to satisfy
    else:
        assert satisfaction["2"]["requested"] == 1


def test_a_closed_period_counts_settlements_and_share_types_as_they_stood_at_its_end() -> None:
    """Resource 1, unconditional when the period [0, 400) ended, was made not shared at 500; of its two
    deliveries of the period, one was disputed at 300 and the other acknowledged at 600. The period's card
    says what stood at 400 however late it is read: before, it took the share type and the settlements the
    index holds now, so a closed period's figures changed afterwards."""
    facts = Facts(
        resources=[ResourceFact(1, 1, ShareType.UNCONDITIONAL, 100, changes=((500, ShareType.NOT_SHARED),))],
        deliveries=[
            DeliveryFact("0x01", 1, 1, 2, 200, "acknowledged", settled_at=600),
            DeliveryFact("0x02", 1, 1, 2, 250, "disputed", settled_at=300),
        ],
    )

    def card(period_to: int) -> dict[str, Any]:
        return compute_scorecard(facts, department=1, period_from=0, period_to=period_to, now=10_000)

    closed = card(400)
    assert closed["resources"]["by_share_type"] == {"unconditional": 1}
    assert closed["catalog_shared"]["by_share_type"] == {
        "unconditional": {"shared": 1, "total": 1, "rate": 1.0}
    }
    assert {k: closed["deliveries"][k] for k in ("sent", "acknowledged", "disputed")} == {
        "sent": 2, "acknowledged": 0, "disputed": 1,
    }  # fmt: skip
    later = card(1_000)
    assert later["resources"]["by_share_type"] == {"not_shared": 1}
    assert (later["deliveries"]["acknowledged"], later["deliveries"]["acknowledgement_rate"]) == (1, 0.5)


def test_the_index_gives_each_settlement_its_time(indexed: Engine) -> None:
    settled = [d for d in load_facts(indexed).deliveries if d.status != "recorded"]
    assert sorted(d.status for d in settled) == ["acknowledged", "disputed"]
    assert all(d.settled_at is not None and d.settled_at >= d.recorded_at for d in settled)

"""Deadlines and periods of weeks, passed on the node's clock (``evm_increaseTime`` and a block), shown in the
console in a real browser and read from the API: a request decided after its answer deadline is marked
overdue and one decided in time is not; past the end of the 30-day evaluation period the console offers the
next period's score, and the closed period's scorecard stays as it was.

The module has a node of its own: its clock moves weeks ahead here, and the worker's shared node must stay
within days of the wall clock for the modules after this one (their requests and grants run for 30 days from
this machine's clock).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from node.anvil import EmbeddedNode, NodeSettings, free_port
from node.deploy import EVALUATION_PERIOD_S
from tests.api.api_helpers import ApiEnv, b32, delivery_between, ok, pass_past, register
from tests.api.console_browser import Console, consoles

pytestmark = pytest.mark.xdist_group("api-console-clock")

DAY = 86400
#: The service's default answer deadline (``audit_response_deadline_days``): ten working days, at most 14
#: calendar days plus a weekend's worth of slack.
DEADLINE_SPAN_S = 16 * DAY


@pytest.fixture(scope="module")
def embedded_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    """This module's own node, mining one block per transaction like the shared one."""
    settings = NodeSettings(port=free_port(), block_time=None)
    with EmbeddedNode(tmp_path_factory.mktemp("clock-node"), settings, die_with_parent=True) as node:
        yield node


@pytest.fixture
def console(browser: Any, api_env: ApiEnv) -> Iterator[Callable[[str | None], Console]]:
    with consoles(browser, api_env) as open_as:
        yield open_as


def _request(env: ApiEnv, consumer: str, resource_id: int) -> dict[str, Any]:
    """A request valid for half a year from now on the chain's clock: its agreement outlasts the weeks this
    module's clock moves."""
    now = env.setup.client.next_block_time()
    body = {
        "resource_id": resource_id, "purpose": "benefit eligibility check", "scope_hash": b32(),
        "terms_hash": b32(), "valid_from": now - 3600, "valid_until": now + 180 * DAY,
    }  # fmt: skip
    record: dict[str, Any] = ok(env.call("POST", "/requests", consumer, json=body), 201)["record"]
    return record


def _conclude(env: ApiEnv, request: dict[str, Any], provider: str, consumer: str) -> dict[str, Any]:
    """``request`` approved by ``provider`` and signed in custody by both: its agreement."""
    ok(env.call("POST", f"/requests/{request['id']}/approve", provider))
    ok(env.call("POST", f"/requests/{request['id']}/signatures", consumer, json={}))
    outcome = ok(env.call("POST", f"/requests/{request['id']}/signatures", provider, json={}))
    assert outcome["status"] == "concluded", outcome
    return dict(outcome["agreement"])


def _grant(env: ApiEnv, agreement: dict[str, Any], provider: str) -> dict[str, Any]:
    body = {"agreement_id": agreement["id"], "expires_at": agreement["valid_until"]}
    return dict(ok(env.call("POST", "/grants", provider, json=body), 201)["record"])


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_request_decided_after_its_deadline_is_marked_overdue_and_one_decided_in_time_is_not(
    console: Any, api_env: ApiEnv
) -> None:
    env = api_env
    resource = register(env, "hrss")
    in_time = _request(env, "health", resource)
    late = _request(env, "health", resource)
    answered = _conclude(env, in_time, "hrss", "health")
    assert ok(env.call("GET", f"/requests/{late['id']}", "health"))["overdue"] is False
    assert late["answer_by"] - late["requested_at"] <= DEADLINE_SPAN_S
    pass_past(env, late["answer_by"])
    # Unanswered past its deadline: overdue while still pending, and after the provider's late decision.
    assert ok(env.call("GET", f"/requests/{late['id']}", "health"))["overdue"] is True
    lately = _conclude(env, late, "hrss", "health")
    decided = ok(env.call("GET", f"/requests/{late['id']}", "health"))
    assert decided["decided_at"] > decided["answer_by"] and decided["overdue"] is True
    assert ok(env.call("GET", f"/requests/{in_time['id']}", "health"))["overdue"] is False

    health = console("health")
    page = health.open(f"agreement/{lately['id']}")
    marks = page.locator("#request-deadline [data-overdue]")
    assert marks.count() == 1 and marks.inner_text() == "decided after the deadline (overdue)"
    assert f"Request #{late['id']}:" in page.inner_text("#request-deadline")
    health.shot("request-overdue")
    page = health.open(f"agreement/{answered['id']}")
    assert f"Request #{in_time['id']}:" in page.inner_text("#request-deadline")
    assert page.locator("#request-deadline [data-overdue]").count() == 0


def test_dxl_request_show_says_a_late_decision_is_overdue_and_still_missing_until_it_comes(
    api_env: ApiEnv,
) -> None:
    """README: `dxl request show` prints `decision due …` or `OVERDUE: decision due … and still missing`;
    once the late decision comes, `OVERDUE: decision due …` alone."""
    from tests.cli import dxl

    env = api_env
    late = _request(env, "civil", register(env, "hrss"))

    def shown() -> str:
        code, out, err = dxl(
            "request", "show", str(late["id"]), "--api", env.url, "--token", env.tokens["demo-civil"]
        )
        assert code == 0, out + err
        return out.splitlines()[0]

    due = _iso(late["answer_by"])
    said = f"request {late['id']}: resource {late['resource_id']} from CIVIL to HRSS; pending"
    assert shown() == f"{said}; decision due {due}"
    pass_past(env, late["answer_by"])
    assert shown().endswith(f"pending; OVERDUE: decision due {due} and still missing")
    ok(env.call("POST", f"/requests/{late['id']}/approve", "hrss"))
    assert shown().endswith(f"approved; OVERDUE: decision due {due}")


def test_past_the_evaluation_periods_end_the_console_offers_the_next_and_the_closed_scorecard_stands(
    console: Any, api_env: ApiEnv
) -> None:
    env = api_env
    # A period of this test's facts alone: the clock moved to the start of the next one.
    pass_past(env, ok(env.call("GET", "/evaluation-period", "health"))["ends_at"])
    agreement = _conclude(env, _request(env, "health", register(env, "hrss")), "hrss", "health")
    grant = _grant(env, agreement, "hrss")
    delivered = delivery_between(env, "hrss", "health", grant)
    # Received in the period and left pending across its end; and HEALTH's score of HRSS in the period.
    pending = _request(env, "samr", register(env, "hrss"))
    scores = {"delivery_id": delivered["delivery_id"], "timeliness": 4, "completeness": 4, "accuracy": 2}
    path = f"/agreements/{agreement['id']}/evaluations"
    first = ok(env.call("POST", path, "health", json=scores), 201)["record"]
    period = ok(env.call("GET", "/evaluation-period", "health"))
    assert period["length_seconds"] == EVALUATION_PERIOD_S == 30 * DAY
    assert period["ends_at"] - period["starts_at"] == EVALUATION_PERIOD_S
    assert first["period"] == period["current"] and delivered["recorded_at"] >= period["starts_at"]

    pass_past(env, period["ends_at"])
    following = ok(env.call("GET", "/evaluation-period", "health"))
    assert following["current"] == period["current"] + 1 and following["starts_at"] == period["ends_at"]
    closed = {"department": "HRSS", "from": _iso(period["starts_at"]), "to": _iso(period["ends_at"])}
    before = ok(env.call("GET", "/audit/scorecard", "auditor", params=closed))
    assert before["period"]["evaluated_at"] == period["ends_at"] - 1
    requests = before["requests"]
    assert (requests["received"], requests["approved"], requests["pending"]) == (2, 1, 1)
    assert requests["overdue_request_ids"] == [pending["id"]]  # 30 days pending: past its 10 working days
    assert before["deliveries"]["sent"] == 1
    rated = before["practice"]["evaluations"]["as_provider"]
    assert (rated["count"], rated["accuracy"]) == (1, 2.0)

    # The console offers HEALTH the next period's score (its score is of the closed one) and records it there,
    # on a delivery of the new period (the closed period's is older than a period by now).
    fresh = delivery_between(env, "hrss", "health", grant)
    ok(env.call("POST", "/audit/index", "auditor"))  # the form lists the deliveries the audit index holds
    health = console("health")
    page = health.open(f"agreement/{agreement['id']}")
    assert page.query_selector("#scored-this-period") is None
    shown = page.inner_text("#evaluation-list")
    assert f"period {period['current']} (" in shown and f"period {following['current']} (" not in shown
    page.select_option("#score-evidence", fresh["delivery_id"])
    page.select_option("#score-accuracy", "5")
    page.click("#score-submit")
    page.wait_for_selector("#scored", timeout=30_000)
    assert page.inner_text("#scored") == f"Scored for period {following['current']}."
    assert page.query_selector("#scored-this-period") is not None
    shown = page.inner_text("#evaluation-list")
    assert f"period {period['current']} (" in shown and f"period {following['current']} (" in shown
    health.shot("evaluation-next-period")
    given = ok(env.call("GET", path, "auditor"))
    assert sorted(e["period"] for e in given) == [period["current"], following["current"]]

    # The next period's facts (the score above, the delivery, the pending request decided late) leave the
    # closed period's scorecard as it was when it closed, while the open period's card counts them.
    ok(env.call("POST", f"/requests/{pending['id']}/approve", "hrss"))
    assert ok(env.call("GET", "/audit/scorecard", "auditor", params=closed)) == before
    open_ = {"department": "HRSS", "from": _iso(following["starts_at"])}
    now = ok(env.call("GET", "/audit/scorecard", "auditor", params=open_))
    assert now["deliveries"]["sent"] == 1 and now["requests"]["received"] == 0
    assert now["practice"]["evaluations"]["as_provider"]["accuracy"] == 5.0

"""Demand lists and mutual evaluation over real HTTP on the module's deployment: texts stored by the service
under the canonical hash the chain holds (Chinese round-trips exactly), answers and scores checked by the
contract, every bad input a 4xx naming why."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from api.app import create_app
from api.demo import ensure_demo_tokens
from api.models import DemandDocument
from api.practice import InspectionDrawer
from dxl.commands.practice import every_page
from node.chain import LedgerClient
from node.compiler import load_artifact
from node.deploy import load_deployment
from node.practice import PracticeReader
from node.types import (
    DEMAND_NOTICE_S,
    MIN_PRESENT_WITHIN_S,
    PRESENTATION_NOTICE_S,
    DeclineReason,
    RejectionReason,
    new_delivery_id,
)
from tests.api.api_helpers import (
    ApiEnv,
    ServerThread,
    agreement_between,
    anchored_batch,
    b32,
    closed_period,
    concluded,
    delivery_between,
    evaluation_period_length,
    grant_between,
    grant_under,
    in_pool,
    mine,
    ok,
    own_period,
    pass_past,
    pass_time,
    receipt_body,
    register,
    request_access,
    sql,
    stored_document,
    until,
)
from tests.rpc_proxy import RpcProxy
from verifier.commitment import commit_payload, new_salt
from verifier.leaves import Chunking, PayloadFormat
from verifier.manifest import build_manifest, sign_manifest, write_manifest
from verifier.onchain import ChainCheckError, LedgerReader
from verifier.sampling import derive_sample, draw_sample, population

pytestmark = pytest.mark.xdist_group("api-practice")

#: The deployment's evaluation period (``tests/api/conftest.py``): its inspections cover whole periods of
#: the tests' own deliveries, over, and a day passes on the shared node where 30 days could not.
EVALUATION_PERIOD = 86400

DEMAND: dict[str, Any] = {
    "title": "不动产登记信息（含抵押状态）",
    "description": "用于住房保障资格审核，需按身份证号查询名下不动产。«naïve» 𠀀",
    "purpose": "住房保障资格审核",
    "legal_basis": "《城镇住房保障条例》第十二条",
    "fields": ["身份证号", "不动产单元号", "抵押状态"],
}


def canonical_hash(doc: dict[str, Any]) -> str:
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return "0x" + hashlib.sha256(raw).hexdigest()


def publish(env: ApiEnv, who: str, addressee: str | None, doc: dict[str, Any] = DEMAND) -> dict[str, Any]:
    body: dict[str, Any] = {"document": doc, "due_by": env.setup.client.next_block_time() + 30 * 86400}
    if addressee is not None:
        body["addressee"] = addressee.upper()
    record: dict[str, Any] = ok(env.call("POST", "/demands", who, json=body), 201)["record"]
    return record


def test_demand_answered_by_a_new_resource_round_trips_chinese_text(api_env: ApiEnv) -> None:
    env = api_env
    demand = publish(env, "psb", "hrss")
    assert demand["status"] == "open" and demand["verified"] is True
    assert demand["document"] == DEMAND and demand["text_hash"] == canonical_hash(DEMAND)
    assert demand["publisher"] == env.departments["PSB"] and demand["addressee"] == env.departments["HRSS"]

    # The publisher cannot answer its own demand, nor can a department it is not addressed to.
    own = env.call("POST", f"/demands/{demand['id']}/answer", "psb",
                   json={"answer": "declined", "decline_reason": "not_held"})  # fmt: skip
    assert own.json()["error"]["code"] == "NOT_A_PARTY"
    resource_id = register(env, "hrss")
    # Another department's resource, or a not-shared one, does not meet it (checked by the contract too).
    other = register(env, "psb")
    refused = env.call("POST", f"/demands/{demand['id']}/answer", "hrss",
                       json={"answer": "new_resource", "resource_id": other})  # fmt: skip
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "RESOURCE_UNFIT")
    # A resource catalogued after the demand is new, not existing.
    refused = env.call("POST", f"/demands/{demand['id']}/answer", "hrss",
                       json={"answer": "existing_resource", "resource_id": resource_id})  # fmt: skip
    assert refused.json()["error"]["code"] == "RESOURCE_UNFIT"

    answered = ok(env.call("POST", f"/demands/{demand['id']}/answer", "hrss", json={
        "answer": "new_resource", "resource_id": resource_id, "note": "已编目：不动产登记信息"}))  # fmt: skip
    record = answered["record"]
    assert record["status"] == "new_resource" and record["answer"]["resource_id"] == resource_id
    assert record["answer"]["note"]["document"] == {"note": "已编目：不动产登记信息"}
    assert record["answer"]["note"]["verified"] is True
    again = env.call("POST", f"/demands/{demand['id']}/answer", "hrss",
                     json={"answer": "declined", "decline_reason": "not_held"})  # fmt: skip
    assert (again.status_code, again.json()["error"]["code"]) == (409, "DEMAND_ALREADY_ANSWERED")

    # Every member reads the lists; the stored text reads back byte for byte.
    for who in ("auditor", "health"):
        got = ok(env.call("GET", f"/demands/{demand['id']}", who))
        assert got["document"]["title"] == DEMAND["title"] and got["verified"] is True
    listed = ok(env.call("GET", f"/demands?publisher={env.departments['PSB']}", "auditor"))
    assert demand["id"] in [d["id"] for d in listed]
    assert demand["id"] not in [d["id"] for d in ok(env.call("GET", "/demands?open=true", "auditor"))]


def pages(env: ApiEnv, path: str, who: str, **params: Any) -> list[list[dict[str, Any]]]:
    """Every page of a list, following its ``next`` links."""
    found, response = [], env.call("GET", path, who, params=params)
    while True:
        found.append(ok(response))
        following = response.links.get("next")
        if following is None:
            return found
        response = env.call("GET", following["url"], who)


def test_demands_and_inspections_are_listed_in_pages(api_env: ApiEnv) -> None:
    """The demand lists and the inspections page as every list does (``limit``, the ``next`` link): each
    page reads from the chain only the records it answers, a demand published between two pages shifts
    nothing, and a filter's pages hold exactly what it keeps."""
    env = api_env
    mine = [publish(env, "samr", "civil")["id"] for _ in range(3)]
    first = env.call("GET", "/demands", "auditor", params={"publisher": env.departments["SAMR"], "limit": 2})
    assert [d["id"] for d in ok(first)] == mine[::-1][:2]
    publish(env, "samr", None)  # newer than the first page: not on the next one
    rest = ok(env.call("GET", first.links["next"]["url"], "auditor"))
    # The next page goes on below the first: the oldest of the three, then SAMR's demands of tests before.
    assert [d["id"] for d in rest][:1] == mine[:1] and all(d["id"] < mine[0] for d in rest[1:])
    everything = ok(env.call("GET", "/demands", "auditor", params={"limit": 500}))
    assert [d for p in pages(env, "/demands", "auditor", limit=1) for d in p] == everything
    # The command line's client follows the same links (``Link`` read by dxl, not by the test's client).
    assert every_page(env.url, env.tokens["demo-auditor"], "/demands?limit=1") == everything
    addressed = [d for d in everything if d["addressee"] == env.departments["CIVIL"]]
    by_filter = pages(env, "/demands", "civil", addressee=env.departments["CIVIL"], limit=2)
    assert [d for p in by_filter for d in p] == addressed and all(len(p) <= 2 for p in by_filter)

    period_from, period_to = closed_period(env)
    body = {"period_from": period_from, "period_to": period_to, "sample_size": 1, "seed_delay_blocks": 200}
    opened = [
        ok(env.call("POST", "/inspections", "auditor", json=body), 201)["record"]["id"] for _ in range(2)
    ]
    listed = [i for p in pages(env, "/inspections", "auditor", limit=1) for i in p]
    assert [i["id"] for i in listed] == list(range(max(opened), 0, -1))
    assert listed == ok(env.call("GET", "/inspections", "auditor", params={"limit": 500}))
    assert [i["id"] for i in ok(env.call("GET", "/inspections", "hrss", params={"limit": 2}))] == opened[::-1]


def test_a_refused_practice_write_stores_none_of_its_texts(api_env: ApiEnv) -> None:
    """A demand, an answer's note or an evaluation's comment is stored only once the chain would take the
    write that names it: a refused one (the contract's refusal at the estimate, or the API's own) left its
    text in the database, named by no record, so a department could fill the database one refusal at a
    time."""
    env = api_env
    marker = b32()[2:12]
    to_itself = {**DEMAND, "title": f"发给自己 {marker}"}
    # Due in a month: the contract refuses the addressee (its publisher), not the due date.
    due_by = env.setup.client.next_block_time() + 30 * 86400
    refused = env.call("POST", "/demands", "psb", json={"document": to_itself, "addressee": "PSB",
                                                         "due_by": due_by})  # fmt: skip
    assert (refused.status_code, refused.json()["error"]["field"]) == (422, "addressee"), refused.text
    assert not stored_document(env, DemandDocument.model_validate(to_itself).as_json())

    catalogued_before = register(env, "psb")
    demand = publish(env, "hrss", "psb")
    note = f"早已编目 {marker}"
    answer = {"answer": "new_resource", "resource_id": catalogued_before, "note": note}
    unfit = env.call("POST", f"/demands/{demand['id']}/answer", "psb", json=answer)
    assert 400 <= unfit.status_code < 500, unfit.text
    assert not stored_document(env, {"note": note})

    grant = grant_between(env, "hrss", "psb")
    path = f"/agreements/{grant['agreement_id']}/evaluations"
    delivery = delivery_between(env, "hrss", "psb", grant)
    partial = env.call("POST", path, "psb", json={
        "delivery_id": delivery["delivery_id"], "timeliness": 5, "comment": f"缺分项 {marker}"})  # fmt: skip
    assert partial.json()["error"]["code"] == "VALIDATION_ERROR"
    body = {"delivery_id": delivery["delivery_id"], "timeliness": 5, "completeness": 5, "accuracy": 5}
    ok(env.call("POST", path, "psb", json={**body, "comment": f"第一次 {marker}"}), 201)
    twice = env.call("POST", path, "psb", json={**body, "comment": f"第二次 {marker}"})
    assert twice.json()["error"]["code"] == "ALREADY_SCORED"
    assert stored_document(env, {"comment": f"第一次 {marker}"})
    assert not stored_document(env, {"comment": f"缺分项 {marker}"})
    assert not stored_document(env, {"comment": f"第二次 {marker}"})


def test_the_addressee_declines_with_a_declared_reason(api_env: ApiEnv) -> None:
    """The department a demand is addressed to may decline it, as ever; a demand to no one is declined by no
    one (``test_a_department_never_asked_cannot_decline_a_demand_to_no_one``)."""
    env = api_env
    demand = publish(env, "health", "psb")
    declined = ok(env.call("POST", f"/demands/{demand['id']}/answer", "psb",
                           json={"answer": "declined", "decline_reason": "legally_restricted"}))  # fmt: skip
    answer = declined["record"]["answer"]
    assert declined["record"]["status"] == "declined"
    assert answer["decline_code"] == int(DeclineReason.LEGALLY_RESTRICTED)
    assert (
        answer["decline_reason"] == "legally_restricted" and answer["answered_by"] == env.departments["PSB"]
    )


def test_a_department_never_asked_cannot_decline_a_demand_to_no_one(api_env: ApiEnv) -> None:
    """A demand addressed to no one waits for whoever holds the data. A decline by any department but its
    publisher closed it: a department never asked could decline every such demand of the network, each then
    unmet on the cards for good, since the department holding the data could no longer answer it. Refused
    now, by the API and the CLI alike (422 ``DECLINE_NEEDS_ADDRESSEE``), with nothing recorded: the demand
    stays open, the note is not kept, and the holder answers it and meets it."""
    env = api_env
    pass_time(env, 2)
    since = env.setup.client.head_time()
    demand = publish(env, "psb", None)
    path = f"/demands/{demand['id']}"
    note = {"note": f"本局不持有该数据 {demand['id']}"}
    body = {"answer": "declined", "decline_reason": "not_held", **note}
    refused = env.call("POST", f"{path}/answer", "civil", json=body)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["field"]) == ("DECLINE_NEEDS_ADDRESSEE", "answer")
    assert f"cannot decline demand {demand['id']}" in error["message"], error
    code, cli = _cli(env, "samr", "demand", "answer", str(demand["id"]), "--decline", "held_elsewhere")
    assert code == 2 and cli["error"] == "DECLINE_NEEDS_ADDRESSEE", cli
    from tests.cli import dxl

    code, out, err = dxl("demand", "answer", str(demand["id"]), "--decline", "not_held", "--api", env.url,
                         "--token", env.tokens["demo-hrss"])  # fmt: skip
    assert code == 2 and "addressed to no department" in out + err, out + err
    still = ok(env.call("GET", path, "auditor"))
    assert (still["status"], still["answer"]) == ("open", None)
    assert not stored_document(env, note)

    # The department that holds the data answers with a resource and delivers it: the demand is met.
    resource_id = register(env, "hrss")
    answered = ok(env.call("POST", f"{path}/answer", "hrss",
                           json={"answer": "new_resource", "resource_id": resource_id}))  # fmt: skip
    assert answered["record"]["answer"]["answered_by"] == env.departments["HRSS"]
    agreement = concluded(env, request_access(env, "psb", resource_id), "hrss", "psb")
    delivery_between(env, "hrss", "psb", grant_under(env, "hrss", agreement))
    pass_time(env, 2)
    query = f"/audit/scorecard?from={_iso(since)}&to={_iso(env.setup.client.head_time())}"
    received = ok(env.call("GET", query, "auditor"))["practice"]["demands_received"]
    assert (received["total"], received["met"], received["unmet_demand_ids"]) == (1, 1, [])


def test_a_publisher_rejects_an_answer_that_does_not_meet_its_demand_and_the_holder_answers_it(
    api_env: ApiEnv,
) -> None:
    """A demand addressed to no one took any department's resource, whatever it held: CIVIL answering it with
    an unrelated resource closed it for good, the department holding the data could no longer answer, and the
    publisher had no say. The publisher rejects such an answer with a declared reason and a note: the demand
    is open again, to anyone but CIVIL; HRSS answers it and delivers, and only that answer meets it. The
    rejection shows in the demand's history, on CIVIL's card and on the publisher's."""
    env = api_env
    pass_time(env, 2)
    since = env.setup.client.head_time()
    demand = publish(env, "psb", None)
    path = f"/demands/{demand['id']}"
    unrelated = register(env, "civil")
    ok(env.call("POST", f"{path}/answer", "civil", json={"answer": "new_resource", "resource_id": unrelated}))
    note = {"note": f"该资源不含不动产登记信息 {demand['id']}"}
    body = {"reason": "not_the_data_asked", **note}
    for who, status, code in (("civil", 403, "NOT_A_PARTY"), ("hrss", 403, "NOT_A_PARTY")):
        refused = env.call("POST", f"{path}/reject", who, json=body)
        assert (refused.status_code, refused.json()["error"]["code"]) == (status, code), refused.text
    bad_reason = env.call("POST", f"{path}/reject", "psb", json={"reason": "dislike"})
    assert bad_reason.status_code == 422 and bad_reason.json()["error"]["field"] == "reason", bad_reason.text
    assert ok(env.call("GET", path, "auditor"))["answer"]["resource_id"] == unrelated
    assert not stored_document(env, note)

    rejected = ok(env.call("POST", f"{path}/reject", "psb", json=body))["record"]
    assert (rejected["status"], rejected["answer"], rejected["overdue"]) == ("open", None, False)
    (rejection,) = rejected["rejections"]
    assert {k: rejection[k] for k in ("answer", "answered_by", "resource_id", "reason", "reason_code")} == {
        "answer": "new_resource", "answered_by": env.departments["CIVIL"], "resource_id": unrelated,
        "reason": "not_the_data_asked", "reason_code": int(RejectionReason.NOT_THE_DATA_ASKED),
    }  # fmt: skip
    assert rejection["note"]["document"] == note and rejection["note"]["verified"] is True
    assert rejection["rejected_at"] >= rejection["answered_at"]
    ok(env.call("POST", "/audit/index", "auditor"))
    waiting = ok(env.call("GET", "/demands?open=true&publisher=PSB", "auditor"))
    assert demand["id"] in [d["id"] for d in waiting]
    listed = next(
        d for d in ok(env.call("GET", "/demands?publisher=PSB", "auditor")) if d["id"] == demand["id"]
    )
    assert listed["rejections"] == rejected["rejections"] and listed["status"] == "open"

    again = env.call(
        "POST", f"{path}/answer", "civil", json={"answer": "new_resource", "resource_id": unrelated}
    )
    assert (again.status_code, again.json()["error"]["code"]) == (409, "ANSWERER_REJECTED"), again.text
    nothing = env.call("POST", f"{path}/reject", "psb", json={"reason": "incomplete"})
    assert (nothing.status_code, nothing.json()["error"]["code"]) == (409, "ANSWER_NOT_REJECTABLE"), (
        nothing.text
    )

    held = register(env, "hrss")
    ok(env.call("POST", f"{path}/answer", "hrss", json={"answer": "new_resource", "resource_id": held}))
    agreement = concluded(env, request_access(env, "psb", held), "hrss", "psb")
    delivery_between(env, "hrss", "psb", grant_under(env, "hrss", agreement))
    pass_time(env, 2)
    window = f"from={_iso(since)}&to={_iso(env.setup.client.head_time())}"

    def card(code: str) -> dict[str, Any]:
        got = ok(env.call("GET", f"/audit/scorecard?department={code}&{window}", "auditor"))
        return dict(got["practice"])

    hrss, civil, psb = card("HRSS"), card("CIVIL"), card("PSB")
    assert (hrss["demands_received"]["total"], hrss["demands_received"]["met"]) == (1, 1)
    assert civil["demands_received"]["total"] == 0
    assert civil["demand_answers_rejected"] == {"total": 1, "demand_ids": [demand["id"]]}
    assert (psb["demands_published"]["met"], psb["demands_published"]["answers_rejected"]) == (1, 1)


def test_a_publisher_withdraws_a_demand_it_no_longer_needs_and_it_counts_against_no_one(
    api_env: ApiEnv,
) -> None:
    """A demand its publisher no longer needed stayed open, then overdue and unmet on its addressee's card
    for good. Its publisher withdraws it, unanswered: it takes no answer, reads withdrawn and not overdue, and
    no card counts it against the addressee. An answered demand is not withdrawn (a resource that does not
    meet it is rejected first), nor is another department's."""
    env = api_env
    pass_time(env, 2)
    since = env.setup.client.head_time()
    demand = publish(env, "civil", "hrss")
    path = f"/demands/{demand['id']}"
    other = env.call("POST", f"{path}/withdraw", "hrss")
    assert (other.status_code, other.json()["error"]["code"]) == (403, "NOT_A_PARTY"), other.text
    pass_past(env, demand["due_by"])
    assert ok(env.call("GET", path, "auditor"))["overdue"] is True
    code, withdrawn = _cli(env, "civil", "demand", "withdraw", str(demand["id"]))
    assert code == 0, withdrawn
    record = withdrawn["record"]
    assert (record["status"], record["overdue"], record["answer"]) == ("withdrawn", False, None)
    assert record["withdrawn_at"] >= demand["published_at"]
    for who, method, suffix, json_body, status, error in (
        (
            "hrss",
            "POST",
            "answer",
            {"answer": "declined", "decline_reason": "not_held"},
            409,
            "DEMAND_WITHDRAWN",
        ),
        ("civil", "POST", "withdraw", None, 409, "DEMAND_WITHDRAWN"),
        ("civil", "POST", "reject", {"reason": "incomplete"}, 409, "DEMAND_WITHDRAWN"),
    ):
        refused = env.call(method, f"{path}/{suffix}", who, json=json_body)
        assert (refused.status_code, refused.json()["error"]["code"]) == (status, error), refused.text
    code, out = _cli(env, "hrss", "demand", "answer", str(demand["id"]), "--decline", "not_held")
    assert code == 2 and out["error"] == "DEMAND_WITHDRAWN", out
    ok(env.call("POST", "/audit/index", "auditor"))
    assert demand["id"] not in [d["id"] for d in ok(env.call("GET", "/demands?open=true", "auditor"))]
    pass_time(env, 2)  # a card evaluates up to its end's second before: the withdrawal's is inside
    window = f"from={_iso(since)}&to={_iso(env.setup.client.head_time())}"
    card = ok(env.call("GET", f"/audit/scorecard?department=HRSS&{window}", "auditor"))["practice"]
    assert (card["demands_received"]["total"], card["demands_received"]["overdue_demand_ids"]) == (0, [])
    published = ok(env.call("GET", f"/audit/scorecard?department=CIVIL&{window}", "auditor"))["practice"]
    assert published["demands_published"] == {"total": 1, "met": 0, "withdrawn": 1, "answers_rejected": 0}

    answered = publish(env, "civil", "hrss")
    ok(env.call("POST", f"/demands/{answered['id']}/answer", "hrss",
                json={"answer": "declined", "decline_reason": "not_held"}))  # fmt: skip
    refused = env.call("POST", f"/demands/{answered['id']}/withdraw", "civil")
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "DEMAND_ALREADY_ANSWERED"), (
        refused.text
    )
    declined = env.call("POST", f"/demands/{answered['id']}/reject", "civil", json={"reason": "incomplete"})
    assert (declined.status_code, declined.json()["error"]["code"]) == (409, "ANSWER_NOT_REJECTABLE")


def test_an_addressee_rejected_answers_again_and_the_cli_shows_the_rejection(api_env: ApiEnv) -> None:
    """The addressee is the one department a demand asks: its rejected answer leaves it free to answer
    again. ``dxl demand reject`` records the rejection and its note, ``dxl demand show`` lists it."""
    env = api_env
    demand = publish(env, "psb", "hrss")
    wrong, right = register(env, "hrss"), register(env, "hrss")
    path = f"/demands/{demand['id']}"
    ok(env.call("POST", f"{path}/answer", "hrss", json={"answer": "new_resource", "resource_id": wrong}))
    code, rejected = _cli(env, "psb", "demand", "reject", str(demand["id"]), "--reason", "incomplete",
                          "--note", "缺少抵押状态字段")  # fmt: skip
    assert code == 0, rejected
    assert rejected["record"]["rejections"][0]["note"]["document"] == {"note": "缺少抵押状态字段"}
    code, bad = _cli(env, "psb", "demand", "reject", str(demand["id"]), "--reason", "incomplete")
    assert code == 2 and bad["error"] == "ANSWER_NOT_REJECTABLE", bad
    ok(env.call("POST", f"{path}/answer", "hrss", json={"answer": "new_resource", "resource_id": right}))
    from tests.cli import dxl

    code, out, err = dxl(
        "demand", "show", str(demand["id"]), "--api", env.url, "--token", env.tokens["demo-psb"]
    )
    assert code == 0, err
    assert f"new_resource (resource {right}); 1 answer rejected" in out, out
    assert f"rejected: resource {wrong} of HRSS, incomplete" in out, out
    assert "rejection note: 缺少抵押状态字段 (text verified)" in out, out


def test_rejection_codes_are_declared_once(api_env: ApiEnv) -> None:
    from node.deploy import practice_client

    bound = practice_client(api_env.setup.client.endpoint, api_env.settings.home).call("rejectionCodeMax")
    assert bound == max(RejectionReason) == len(RejectionReason)
    from api.models import RejectionReasonName

    assert [r.value for r in RejectionReasonName] == [r.name.lower() for r in RejectionReason]


def test_decline_codes_are_declared_once(api_env: ApiEnv) -> None:
    practice = api_env.setup.client  # the ledger's client names the node; the contract's bound is read below
    from node.deploy import practice_client

    bound = practice_client(practice.endpoint, api_env.settings.home).call("declineCodeMax")
    assert bound == max(DeclineReason) == len(DeclineReason)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"document": DEMAND, "due_by": 1}, 422, "INVALID_FIELD"),
        ({"document": {**DEMAND, "purpose": ""}, "due_by": 2**40}, 422, "VALIDATION_ERROR"),
        ({"document": DEMAND, "due_by": 2**40, "addressee": "NOPE"}, 404, "DEPARTMENT_NOT_FOUND"),
        ({"document": DEMAND, "due_by": 2**40, "addressee": "PSB"}, 422, "INVALID_FIELD"),
        ({"document": {**DEMAND, "extra": "x"}, "due_by": 2**40}, 422, "VALIDATION_ERROR"),
    ],
)
def test_bad_demands_are_refused(api_env: ApiEnv, body: dict[str, Any], status: int, code: str) -> None:
    response = api_env.call("POST", "/demands", "psb", json=body)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("title", "不动产\u202e登记信息", "one line of visible text"),
     ("title", "不动产登记\n信息", "one line of visible text"),
     ("title", "不动产登记信息\u2028（含抵押）", "one line of visible text"),
     ("title", "不动产登记信息 ", "one line of visible text"),
     ("title", "   ", "one line of visible text"),
     ("description", "付款账户\u202e0001 号", "U+202E is a bidirectional control"),
     ("purpose", "住房保障\u2066资格\u2069审核", "U+2066 is a bidirectional control"),
     ("legal_basis", "《条例》\u202b第十二条", "U+202B is a bidirectional control"),
     ("fields", ["身份证号", "抵押\n状态"], "one line of visible text"),
     ("purpose", "   ", "white space alone"), ("legal_basis", "\u3000\n", "white space alone"),
     ("description", "", "white space alone"),
     # Characters that show nothing state nothing either: a purpose of zero-width spaces read as none.
     ("purpose", "\u200b\u200b", "white space alone"),
     ("legal_basis", "\u2060\u00ad\n", "white space alone"),
     ("title", "\u200d", "one line of visible text"),
     ("fields", ["身份证号", "\u200c"], "one line of visible text")],
    ids=["title-rlo", "title-newline", "title-line-separator", "title-trailing-space", "title-spaces",
         "description-rlo", "purpose-isolate", "legal-basis-rle", "field-newline", "purpose-spaces",
         "legal-basis-ideographic-space", "description-empty", "purpose-zero-width-spaces",
         "legal-basis-word-joiner-soft-hyphen", "title-joiner-alone", "field-joiner-alone"],
)  # fmt: skip
def test_a_demands_title_is_one_line_and_its_texts_show_in_order(
    api_env: ApiEnv, field: str, value: Any, message: str
) -> None:
    """A demand is read in lists before its addressee answers it, as a catalog entry's title is before
    anyone requests the data: held to the same rules (api.models PlainLine, InOrderText), and nothing is
    published."""
    before = len(ok(api_env.call("GET", "/demands?limit=500", "auditor")))
    body = {
        "document": {**DEMAND, field: value},
        "due_by": api_env.setup.client.next_block_time() + 30 * 86400,
        "addressee": "HRSS",
    }
    refused = api_env.call("POST", "/demands", "psb", json=body)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["field"].split(".")[:2]) == ("VALIDATION_ERROR", ["document", field])
    assert message in error["message"]
    assert len(ok(api_env.call("GET", "/demands?limit=500", "auditor"))) == before


@pytest.mark.parametrize(
    ("fields", "message"),
    [(["身份证号", "抵押状态", "身份证号"], "names the field '身份证号' twice"),
     (["\u00e9tat", "e\u0301tat"], "twice"),  # composed and decomposed: one name, as in the catalog
     ([], "at least 1 item")],
    ids=["repeated", "repeated-decomposed", "empty"],
)  # fmt: skip
def test_a_demands_data_items_are_named_once_each(api_env: ApiEnv, fields: list[str], message: str) -> None:
    """A demand's data items are a data list as a catalog entry's columns and a request's terms are: each
    named once (which of two a reader takes would be its choice), and a list given names one at least (an
    empty one was published, a document hashing apart from the same demand without the list); nothing is
    published."""
    before = len(ok(api_env.call("GET", "/demands?limit=500", "auditor")))
    due_by = api_env.setup.client.next_block_time() + 30 * 86400
    body = {"document": {**DEMAND, "fields": fields}, "due_by": due_by}
    refused = api_env.call("POST", "/demands", "psb", json=body)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["field"].split(".")[:2]) == ("VALIDATION_ERROR", ["document", "fields"])
    assert message in error["message"]
    assert len(ok(api_env.call("GET", "/demands?limit=500", "auditor"))) == before


def test_a_demand_runs_over_lines_with_marks_that_change_no_order(api_env: ApiEnv) -> None:
    lines = {**DEMAND, "description": "第一行：不动产登记。\n第二行\u2028第三行\u200f（含 RLM）",
             "purpose": "住房保障资格审核\n（第二行）"}  # fmt: skip
    record = publish(api_env, "psb", "hrss", lines)
    assert ok(api_env.call("GET", f"/demands/{record['id']}", "hrss"))["document"] == lines


def test_a_demand_whose_description_is_null_is_published_without_one(api_env: ApiEnv) -> None:
    """A description is optional: null reads as none given, as every optional field does (the check of its
    text order was run on null and answered 500, found by schemathesis)."""
    document = {**DEMAND, "description": None}
    record = publish(api_env, "psb", "hrss", document)
    stored = ok(api_env.call("GET", f"/demands/{record['id']}", "hrss"))["document"]
    assert stored == {k: v for k, v in DEMAND.items() if k != "description"}


def test_a_due_day_passed_by_the_chains_clock_is_refused_naming_due_by(api_env: ApiEnv) -> None:
    """The contract's refusal names no field the API takes; the service's names ``due_by``, which a client
    (the console) tells from the other fields it may not use, and nothing is recorded."""
    before = len(ok(api_env.call("GET", "/demands?limit=500", "auditor")))
    head = int(api_env.setup.client.w3.eth.get_block("latest")["timestamp"])
    response = api_env.call("POST", "/demands", "psb", json={"document": DEMAND, "due_by": head})
    error = response.json()["error"]
    assert (response.status_code, error["code"], error["field"]) == (422, "INVALID_FIELD", "due_by")
    assert error["next_block_time"] > head
    assert len(ok(api_env.call("GET", "/demands?limit=500", "auditor"))) == before


def test_bad_answers_and_unknown_demands(api_env: ApiEnv) -> None:
    env = api_env
    assert env.call("GET", "/demands/999999", "psb").json()["error"]["code"] == "DEMAND_NOT_FOUND"
    demand = publish(env, "psb", "hrss")
    for body in (
        {"answer": "declined"},
        {"answer": "declined", "decline_reason": "whim"},
        {"answer": "new_resource"},
        {"answer": "new_resource", "resource_id": 1, "decline_reason": "not_held"},
    ):
        response = env.call("POST", f"/demands/{demand['id']}/answer", "hrss", json=body)
        assert (response.status_code, response.json()["error"]["code"]) == (422, "VALIDATION_ERROR"), body
    missing = env.call("POST", f"/demands/{demand['id']}/answer", "hrss",
                       json={"answer": "existing_resource", "resource_id": 2**40})  # fmt: skip
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "RESOURCE_NOT_FOUND")
    assert env.call("POST", "/demands", "auditor", json={}).status_code == 403


def test_mutual_evaluation_after_a_delivery_once_per_period(api_env: ApiEnv) -> None:
    env = api_env
    grant = grant_between(env, "hrss", "psb")
    agreement_id = grant["agreement_id"]
    path = f"/agreements/{agreement_id}/evaluations"
    no_delivery = env.call("POST", path, "psb", json={
        "delivery_id": b32(), "timeliness": 5, "completeness": 4, "accuracy": 3})  # fmt: skip
    assert no_delivery.json()["error"]["code"] == "DELIVERY_NOT_FOUND"
    delivery = delivery_between(env, "hrss", "psb", grant)
    body = {"delivery_id": delivery["delivery_id"], "timeliness": 5, "completeness": 4, "accuracy": 3,
            "comment": "按时交付，字段齐全"}  # fmt: skip
    for bad, code in (
        ({**body, "accuracy": 6}, "VALIDATION_ERROR"),
        ({**body, "accuracy": 0}, "VALIDATION_ERROR"),
        ({k: v for k, v in body.items() if k != "accuracy"}, "VALIDATION_ERROR"),
    ):
        assert env.call("POST", path, "psb", json=bad).json()["error"]["code"] == code
    # A delivery under another agreement is no evidence for this one.
    elsewhere = delivery_between(env, "hrss", "psb")
    wrong = env.call("POST", path, "psb", json={**body, "delivery_id": elsewhere["delivery_id"]})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (409, "NO_DELIVERY_UNDER_AGREEMENT")

    scored = ok(env.call("POST", path, "psb", json=body), 201)["record"]
    assert scored["scored_side"] == "provider" and scored["scored"] == env.departments["HRSS"]
    assert scored["scores"] == {"timeliness": 5, "completeness": 4, "accuracy": 3}
    assert scored["comment"]["document"] == {"comment": "按时交付，字段齐全"}
    twice = env.call("POST", path, "psb", json=body)
    assert (twice.status_code, twice.json()["error"]["code"]) == (409, "ALREADY_SCORED")
    assert twice.json()["error"]["message"].startswith(
        f"the provider of agreement {agreement_id} was already evaluated in this evaluation period"
    )

    by_provider = ok(env.call("POST", path, "hrss", json={
        "delivery_id": delivery["delivery_id"], "purpose_compliance": 4}), 201)["record"]  # fmt: skip
    assert by_provider["scored_side"] == "consumer" and by_provider["scores"] == {"purpose_compliance": 4}
    listed = ok(env.call("GET", path, "auditor"))
    assert [e["scored_side"] for e in listed] == ["provider", "consumer"]
    assert pages(env, path, "psb", limit=1) == [[e] for e in listed]
    # Departments outside the agreement see neither the agreement nor its scores, and cannot score.
    assert env.call("GET", path, "health").json()["error"]["code"] == "AGREEMENT_NOT_FOUND"
    assert env.call("POST", path, "health", json=body).json()["error"]["code"] == "AGREEMENT_NOT_FOUND"


def test_a_score_of_the_other_sides_is_refused_not_dropped(api_env: ApiEnv) -> None:
    """The consumer scores timeliness, completeness and accuracy, the provider purpose compliance: a score
    of the other side's was taken and dropped (the evaluation recorded without it), and so were texts that
    show in another order than they are hashed in. Each is refused naming the field, nothing recorded."""
    env = api_env
    grant = grant_between(env, "hrss", "psb")
    path = f"/agreements/{grant['agreement_id']}/evaluations"
    delivery = delivery_between(env, "hrss", "psb", grant)
    by_consumer = {"delivery_id": delivery["delivery_id"], "timeliness": 5, "completeness": 4, "accuracy": 3}
    by_provider = {"delivery_id": delivery["delivery_id"], "purpose_compliance": 4}
    for who, body, field in (
        ("psb", {**by_consumer, "purpose_compliance": 1}, "purpose_compliance"),
        ("hrss", {**by_provider, "accuracy": 1}, "accuracy"),
        ("hrss", {**by_provider, "timeliness": 5, "completeness": 5}, "timeliness"),
        ("psb", {**by_consumer, "comment": "准时\u202e交付"}, "comment"),
        ("psb", {**by_consumer, "comment": " \n "}, "comment"),
    ):
        refused = env.call("POST", path, who, json=body)
        assert refused.status_code == 422, refused.text
        assert (refused.json()["error"]["code"], refused.json()["error"]["field"]) == (
            "VALIDATION_ERROR",
            field,
        )
    assert ok(env.call("GET", path, "auditor")) == []
    ok(env.call("POST", path, "psb", json=by_consumer), 201)
    ok(env.call("POST", path, "hrss", json=by_provider), 201)


def test_an_answers_note_shows_in_the_order_it_is_hashed_in(api_env: ApiEnv) -> None:
    demand = publish(api_env, "psb", "hrss")
    body = {"answer": "declined", "decline_reason": "not_held", "note": "本局不\u202e持有该数据"}
    refused = api_env.call("POST", f"/demands/{demand['id']}/answer", "hrss", json=body)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", "note")
    assert "U+202E is a bidirectional control" in error["message"]
    blank = api_env.call("POST", f"/demands/{demand['id']}/answer", "hrss", json={**body, "note": "\u3000 "})
    assert (blank.status_code, blank.json()["error"]["field"]) == (422, "note"), blank.text
    assert ok(api_env.call("GET", f"/demands/{demand['id']}", "hrss"))["answer"] is None
    lines = "本局不持有该数据。\n请向市场监管局申请。"
    answered = ok(
        api_env.call("POST", f"/demands/{demand['id']}/answer", "hrss", json={**body, "note": lines})
    )
    assert answered["record"]["answer"]["note"]["document"] == {"note": lines}


def test_mutual_evaluation_of_an_agreement_delivered_only_through_receipts(api_env: ApiEnv) -> None:
    """Deliveries at volume count: a receipt in an anchored batch is the evidence (its batch is what the
    contract checks), for both sides; a receipt of another agreement's grant, or none at all, is not."""
    env = api_env
    gid, receipts = anchored_batch(env, 2)
    agreement_id = ok(env.call("GET", f"/grants/{gid}", "psb"))["agreement_id"]
    path = f"/agreements/{agreement_id}/evaluations"
    scores = {"timeliness": 4, "completeness": 5, "accuracy": 5}
    nothing = env.call("POST", path, "hrss", json={"delivery_id": b32(), **scores})
    assert (nothing.status_code, nothing.json()["error"]["code"]) == (404, "DELIVERY_NOT_FOUND")
    _, elsewhere = anchored_batch(env, 1)
    wrong = env.call("POST", path, "hrss", json={"delivery_id": elsewhere[0]["delivery_id"], **scores})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (409, "NO_DELIVERY_UNDER_AGREEMENT")

    evidence = {"delivery_id": receipts[1]["delivery_id"], **scores}
    scored = ok(env.call("POST", path, "hrss", json=evidence), 201)
    assert (scored["record"]["scored_side"], scored["record"]["scores"]) == ("provider", scores)
    by_provider = ok(env.call("POST", path, "psb", json={
        "delivery_id": receipts[0]["delivery_id"], "purpose_compliance": 3}), 201)["record"]  # fmt: skip
    assert (by_provider["scored_side"], by_provider["scores"]) == ("consumer", {"purpose_compliance": 3})
    assert [e["scored_side"] for e in ok(env.call("GET", path, "auditor"))] == ["provider", "consumer"]


def test_the_evaluation_period_is_the_deployed_contracts_by_the_chains_clock(api_env: ApiEnv) -> None:
    """One place holds the period's length, the contract, and the API says it with the current period by the
    chain's latest block time: the console and the CLI read it there, and an evaluation recorded now is
    numbered as it says."""
    env = api_env
    deployment = load_deployment(env.settings.home)
    assert deployment.sharing_practice is not None
    practice = LedgerClient(env.setup.client.endpoint, load_artifact("SharingPractice").abi).at(
        deployment.sharing_practice.address
    )
    period = ok(env.call("GET", "/evaluation-period", "hrss"))
    length = int(practice.call("evaluationPeriod"))
    chain_time = period["chain_time"]
    current = chain_time // length
    assert period == {"length_seconds": length, "current": current, "starts_at": current * length,
                      "ends_at": (current + 1) * length, "chain_time": chain_time,
                      "presentation_notice_seconds": PRESENTATION_NOTICE_S,
                      "min_present_within_seconds": MIN_PRESENT_WITHIN_S}  # fmt: skip
    assert chain_time <= _chain_now(env)
    assert ok(env.call("GET", "/evaluation-period", "auditor"))["length_seconds"] == length
    assert env.call("GET", "/evaluation-period", "governor-1").status_code == 403
    code, shown = _cli(env, "psb", "evaluation", "period")
    assert code == 0 and (shown["length_seconds"], shown["current"]) == (length, period["current"])
    # An evaluation recorded now carries that period.
    grant = grant_between(env, "hrss", "psb")
    delivery = delivery_between(env, "hrss", "psb", grant)
    scores = {"delivery_id": delivery["delivery_id"], "timeliness": 3, "completeness": 3, "accuracy": 3}
    scored = ok(env.call("POST", f"/agreements/{grant['agreement_id']}/evaluations", "psb", json=scores), 201)
    assert scored["record"]["period"] == ok(env.call("GET", "/evaluation-period", "psb"))["current"]


def test_agreement_without_grant_cannot_be_scored(api_env: ApiEnv) -> None:
    agreement = agreement_between(api_env, "hrss", "psb")
    response = api_env.call("POST", f"/agreements/{agreement['id']}/evaluations", "psb", json={
        "delivery_id": b32(), "timeliness": 5, "completeness": 4, "accuracy": 3})  # fmt: skip
    assert response.status_code == 404


def _cli(env: ApiEnv, who: str, *args: str) -> tuple[int, Any]:
    from tests.cli import dxl

    code, out, err = dxl(*args, "--api", env.url, "--token", env.tokens["demo-" + who], "--json")
    return code, json.loads(out) if out.strip() else err


def _cli_plain(*args: str) -> tuple[int, Any]:
    from tests.cli import dxl

    code, out, err = dxl(*args, "--json")
    return code, json.loads(out) if out.strip() else err


def test_cli_reads_the_api_and_token_from_a_dotenv_file(
    api_env: ApiEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README: settings come from the environment or a .env file in the working directory, for every command
    alike, DXL_API_URL and DXL_TOKEN too. The commands' --api and --token read the process environment
    alone: a .env file naming them was ignored, and the command called http://127.0.0.1:8000 with no token."""
    from tests.cli import dxl

    for variable in ("DXL_API_URL", "DXL_TOKEN", "DXL_API_PORT"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"DXL_API_URL={api_env.url}\nDXL_TOKEN={api_env.tokens['demo-auditor']}\n")
    demand = publish(api_env, "civil", "hrss")
    code, out, err = dxl("demand", "list", "--json", "--publisher", "CIVIL")
    assert code == 0, out + err
    assert demand["id"] in [d["id"] for d in json.loads(out)], out
    # An option given still wins over the file.
    code, out, err = dxl("demand", "list", "--json", "--token", "dxl_not-a-token")
    assert code == 2 and "UNAUTHENTICATED" in out + err, out + err


def test_cli_publishes_answers_and_scores(api_env: ApiEnv) -> None:
    env = api_env
    code, published = _cli(
        env, "health", "demand", "publish", "--title", DEMAND["title"], "--purpose", DEMAND["purpose"],
        "--legal-basis", DEMAND["legal_basis"], "--due", "2099-01-01", "--to", "hrss", "--field", "身份证号",
    )  # fmt: skip
    assert code == 0, published
    demand = published["record"]
    assert demand["document"]["title"] == DEMAND["title"] and demand["document"]["fields"] == ["身份证号"]
    resource_id = register(env, "hrss")
    from tests.cli import dxl

    # Said as recorded, as publish says it: the demand, its transaction and the note kept with the answer (the
    # note was not said).
    code, out, err = dxl(
        "demand", "answer", str(demand["id"]), "--new-resource", str(resource_id),
        "--note", "已编目，按有条件共享申请", "--api", env.url, "--token", env.tokens["demo-hrss"],
    )  # fmt: skip
    assert code == 0, out + err
    answered, note = out.rstrip("\n").split("\n")
    assert re.fullmatch(
        rf"answered demand {demand['id']}: .* — from HEALTH to HRSS; new_resource \(resource {resource_id}\);"
        r" due 2099-01-01T00:00:00Z; text verified \(tx 0x[0-9a-f]{64}\)",
        answered,
    ), out
    assert note == "answer note: 已编目，按有条件共享申请 (text verified)", out
    code, refused = _cli(env, "hrss", "demand", "answer", str(demand["id"]), "--decline", "not_held")
    assert code == 2 and refused["error"] == "DEMAND_ALREADY_ANSWERED"
    code, usage = _cli(env, "hrss", "demand", "answer", str(demand["id"]))
    assert code == 2 and usage["error"] == "USAGE_ERROR"
    code, shown = _cli(env, "auditor", "demand", "show", str(demand["id"]))
    assert code == 0 and shown["verified"] is True
    assert shown["answer"]["note"]["document"] == {"note": "已编目，按有条件共享申请"}, shown
    assert shown["answer"]["note"]["verified"] is True
    assert shown["status"] == "new_resource", shown
    code, out, err = dxl("demand", "show", str(demand["id"]), "--api", env.url, "--token",
                         env.tokens["demo-auditor"])  # fmt: skip
    assert code == 0 and "\nanswer note: 已编目，按有条件共享申请 (text verified)\n" in out, out + err
    # The list's department filters take a code, as `--to` does and the API's filters do, or an id: they took
    # an id alone, and `--publisher HEALTH` was a usage error.
    health = ok(env.call("GET", "/departments", "auditor"))
    health_id = next(d["id"] for d in health if d["code"] == "HEALTH")
    for publisher in ("HEALTH", "health", str(health_id)):
        code, listed = _cli(env, "auditor", "demand", "list", "--publisher", publisher, "--addressee", "HRSS")
        assert code == 0 and demand["id"] in [d["id"] for d in listed], (publisher, listed)
        assert {(d["publisher"], d["addressee"]) for d in listed} == {(health_id, demand["addressee"])}
    code, refused = _cli(env, "auditor", "demand", "list", "--addressee", "NOPE")
    assert code == 2 and refused["error"] == "DEPARTMENT_NOT_FOUND", refused

    grant = grant_between(env, "hrss", "health")
    delivery = delivery_between(env, "hrss", "health", grant)
    # Said as recorded, the comment too (it was not said).
    code, out, err = dxl(
        "evaluation", "add", str(grant["agreement_id"]), "--delivery", delivery["delivery_id"],
        "--timeliness", "4", "--completeness", "5", "--accuracy", "5", "--comment", "数据准确",
        "--api", env.url, "--token", env.tokens["demo-health"],
    )  # fmt: skip
    assert code == 0, out + err
    scored, comment = out.rstrip("\n").split("\n")
    assert re.fullmatch(
        rf"agreement {grant['agreement_id']}: provider HRSS scored timeliness=4, completeness=5, accuracy=5 "
        r"\(period \d+, tx 0x[0-9a-f]{64}\)",
        scored,
    ), out
    assert comment == "comment: 数据准确 (text verified)", out
    code, listed = _cli(env, "auditor", "evaluation", "list", str(grant["agreement_id"]))
    assert code == 0 and len(listed) == 1
    # The list's text says the comment under the scores, as the service answers it.
    code, out, err = dxl("evaluation", "list", str(grant["agreement_id"]), "--api", env.url, "--token",
                         env.tokens["demo-auditor"])  # fmt: skip
    assert code == 0, out + err
    scores, comment = out.rstrip("\n").split("\n")
    assert scores.endswith(": timeliness=4, completeness=5, accuracy=5"), out
    assert comment == "  comment: 数据准确 (text verified)", out


def test_cli_lines_name_departments_by_code_and_every_demand_its_due_date(api_env: ApiEnv) -> None:
    """People know a department by its code, and every department option of dxl takes one: the lines of
    `dxl demand`, `dxl request` and `dxl evaluation list` named departments by id ("from department 4 to
    department 2", "provider 2 scored by 4"). A demand's line said its due date only once overdue; people plan
    by it before. --json keeps the API's ids."""
    from tests.cli import dxl

    env = api_env
    to_samr, to_anyone = publish(env, "civil", "samr"), publish(env, "civil", None)
    civil = ("--api", env.url, "--token", env.tokens["demo-civil"])
    for demand, to in ((to_samr, "SAMR"), (to_anyone, "anyone")):
        code, out, err = dxl("demand", "show", str(demand["id"]), *civil)
        assert code == 0, out + err
        said = f"demand {demand['id']}: {DEMAND['title']} — from CIVIL to {to}; open"
        assert out.splitlines()[0] == f"{said}; due {_iso(demand['due_by'])}; text verified", out
    code, listed = _cli(env, "civil", "demand", "show", str(to_samr["id"]))
    assert code == 0, listed
    assert (listed["publisher"], listed["addressee"]) == (env.departments["CIVIL"], env.departments["SAMR"])

    request = request_access(env, "civil", register(env, "hrss"))
    code, out, err = dxl("request", "show", str(request["id"]), *civil)
    assert code == 0, out + err
    assert out.startswith(f"request {request['id']}: resource {request['resource_id']} from CIVIL to HRSS; "
                          "pending; decision due "), out  # fmt: skip

    grant = grant_between(env, "hrss", "civil")
    delivery = delivery_between(env, "hrss", "civil", grant)
    path = f"/agreements/{grant['agreement_id']}/evaluations"
    ok(env.call("POST", path, "civil", json={"delivery_id": delivery["delivery_id"], "timeliness": 5,
                                             "completeness": 4, "accuracy": 5}), 201)  # fmt: skip
    code, out, err = dxl("evaluation", "list", str(grant["agreement_id"]), *civil)
    assert code == 0, out + err
    assert re.fullmatch(
        r"period \d+: provider HRSS scored by CIVIL: timeliness=5, completeness=4, accuracy=5", out.strip()
    ), out


def test_cli_says_an_inspections_times_in_iso_utc_and_json_keeps_unix_seconds(api_env: ApiEnv) -> None:
    """`dxl inspection open` and `show` said the period's bounds and the presentation deadline as Unix seconds
    ("deliveries in [1796424601, 1796424602) ... present by 1796425212"); people read ISO 8601 UTC, and
    --json keeps the API's integers. The refusal of an outcome while the provider may still present names
    the deadline the same way."""
    from tests.cli import dxl

    env = api_env
    with own_period(env) as (period_from, period_to):
        delivery_between(env, "hrss", "psb")
    auditor = ("--api", env.url, "--token", env.tokens["demo-auditor"])
    opening = (
        "inspection",
        "open",
        "--from",
        _iso(period_from),
        "--to",
        _iso(period_to),
        "--sample-size",
        "1",
    )
    # Ten minutes to present: an inspection no provider could fail, refused with the least the API takes.
    code, out, err = dxl(*opening, "--present-within", "600", *auditor)
    assert code != 0 and f"at least {MIN_PRESENT_WITHIN_S} s" in err, out + err
    code, out, err = dxl(*opening, "--present-within", str(MIN_PRESENT_WITHIN_S), *auditor)
    assert code == 0, out + err
    inspection = re.match(r"inspection (\d+): open;", out)
    assert inspection is not None, out
    code, shown = _cli(env, "auditor", "inspection", "show", inspection[1])
    assert code == 0 and (shown["period_from"], shown["period_to"]) == (period_from, period_to), shown
    assert type(shown["present_by"]) is int, shown
    said = (f"deliveries in [{_iso(period_from)}, {_iso(period_to)}), sample of 1 seeded by block "
            f"{shown['seed_block']}; present by {_iso(shown['present_by'])}")  # fmt: skip
    assert said in out.splitlines()[0], out
    code, out, err = dxl("inspection", "show", inspection[1], *auditor)
    assert code == 0 and said in out.splitlines()[0], out + err
    mine(env, 2)
    drawn = ok(env.call("POST", f"/inspections/{inspection[1]}/draw", "auditor"))["record"]
    sampled = drawn["sample"][0]["delivery_id"]
    # The sampled delivery's provider by code, as people know it (it said "provider 2").
    provider = next(c for c, i in env.departments.items() if i == drawn["sample"][0]["provider"])
    code, out, err = dxl("inspection", "show", inspection[1], *auditor)
    assert code == 0 and f"\n  {sampled} provider {provider}: presented -, outcome -" in out, out + err
    code, out, err = dxl("inspection", "outcome", inspection[1], "--delivery", sampled, *auditor)
    assert code == 2, out + err
    assert f"may still be presented until {_iso(shown['present_by'])}" in err, err


def test_cli_opens_whole_evaluation_periods_by_name_and_its_refusal_says_the_bounds_taken(
    api_env: ApiEnv,
) -> None:
    """`dxl inspection open` took --from/--to dates alone, and the ledger takes whole evaluation periods only:
    a bound off the grid, or a period not over, was refused with the API's message and no bound it would take.
    --period (last, or a date in the period) and --periods name whole periods; --from/--to still give exact
    bounds, and their refusal says the nearest the ledger takes and the last closed period."""
    from tests.cli import dxl

    env, length = api_env, EVALUATION_PERIOD
    with own_period(env) as (period_from, period_to):
        delivery_between(env, "hrss", "psb")
    auditor = ("--sample-size", "1", "--api", env.url, "--token", env.tokens["demo-auditor"])
    last = f"the last closed one, --period last, is {_iso(period_from)} to {_iso(period_to)}"
    for start, end, nearest in (
        (period_from + 3600, period_to, f"--from {_iso(period_from)} --to {_iso(period_to)} (1 period)"),
        (period_from - length, period_to + length,
         f"--from {_iso(period_from - length)} --to {_iso(period_to)} (2 periods)"),
    ):  # fmt: skip
        code, out, err = dxl("inspection", "open", "--from", _iso(start), "--to", _iso(end), *auditor)
        assert code == 2 and "INVALID_INSPECTION" not in out, out + err
        assert f"the nearest are {nearest}; {last}" in " ".join(err.split()), err
    opened = []
    for named in (("--period", "last"), ("--period", _iso(period_from + 3600), "--periods", "2"), ()):
        code, out, err = dxl("inspection", "open", *named, *auditor, "--json")
        assert code == 0, out + err
        opened.append(json.loads(out)["record"])
    assert [(i["period_from"], i["period_to"]) for i in opened] == [
        (period_from, period_to), (period_from - length, period_to), (period_from, period_to),
    ]  # fmt: skip
    code, out, err = dxl("inspection", "open", "--from", _iso(period_from), *auditor)
    assert code == 2 and "--from and --to go together" in err, out + err


def _real_delivery(
    env: ApiEnv, grant: dict[str, Any], tmp: Path, n: int
) -> tuple[dict[str, Any], Path, Path]:
    """A delivery whose commitment is a real payload's, with the provider-signed manifest beside it."""
    payload = tmp / f"d{n}.csv"
    payload.write_text(f"id,name\n{n},张三{n}\n{n + 1},李四\n", encoding="utf-8")
    c = commit_payload(payload, salt=new_salt(), chunking=Chunking(PayloadFormat.CSV), keep_leaf_hashes=True)
    delivery_id = new_delivery_id(grant["provider"])
    manifest = sign_manifest(build_manifest(c, delivery_id=delivery_id, grant_id=grant["id"]),
                             env.keystore.unlock("dept-hrss"))  # fmt: skip
    path = tmp / f"d{n}.manifest.json"
    write_manifest(path, manifest)
    body = {"delivery_id": "0x" + delivery_id.hex(), "grant_id": grant["id"],
            "commitment": "0x" + c.root.hex(), "byte_size": c.byte_size, "record_count": c.record_count,
            "hash_algorithm": "sha256"}  # fmt: skip
    return ok(env.call("POST", "/deliveries", "hrss", json=body), 201)["record"], payload, path


def test_sampling_inspection_end_to_end(api_env: ApiEnv, tmp_path: Path) -> None:
    env = api_env
    grant = grant_between(env, "hrss", "psb")
    # A whole evaluation period holding this test's deliveries only, over when the inspection opens (the
    # sample is drawn from every delivery of the period).
    with own_period(env) as (period_from, period_to):
        made = [_real_delivery(env, grant, tmp_path, n) for n in range(4)]
    ids = {d["delivery_id"]: (payload, manifest) for d, payload, manifest in made}

    # Presentations close at the deadline, by the chain's clock: the least time to present the service takes
    # (the presentation notice and a day: a sample drawn with less left is never not presented), passed below
    # by moving the node's clock, not a slow machine's seconds.
    body = {"period_from": period_from, "period_to": period_to, "sample_size": 3, "seed_delay_blocks": 2,
            "present_within": MIN_PRESENT_WITHIN_S}  # fmt: skip
    assert env.call("POST", "/inspections", "psb", json=body).status_code == 403
    future = env.call(
        "POST", "/inspections", "auditor", json={**body, "period_to": period_to + 86400 * 10**4}
    )
    assert (future.status_code, future.json()["error"]["code"]) == (422, "INVALID_INSPECTION")
    # A seed block the opening's own block could reach is refused before anything is sent.
    next_block = env.call("POST", "/inspections", "auditor", json={**body, "seed_delay_blocks": 1})
    assert (next_block.status_code, next_block.json()["error"]["code"]) == (422, "VALIDATION_ERROR")
    opened = ok(env.call("POST", "/inspections", "auditor", json=body), 201)["record"]
    inspection = opened["id"]
    assert opened["status"] == "open" and opened["sample"] == [] and opened["seed"] is None
    early = env.call("POST", f"/inspections/{inspection}/draw", "auditor")
    assert (early.status_code, early.json()["error"]["code"]) == (409, "SEED_UNAVAILABLE")
    mine(env, 2)
    # Anyone may draw, a department as well as an auditor: the opening auditor cannot hold a sample back.
    drawn_by_hrss = ok(env.call("POST", f"/inspections/{inspection}/draw", "hrss"))
    drawn, drawn_tx = drawn_by_hrss["record"], drawn_by_hrss["transaction"]
    assert drawn["status"] == "drawn" and drawn["population_size"] >= 4
    sample = [s["delivery_id"] for s in drawn["sample"]]
    assert len(sample) == 3 == len(set(sample))
    # The same sample, drawn twice and recomputed from the chain alone by the verifier (and the CLI). HRSS
    # provided every delivery of the period, so it reads the whole sample; PSB, their consumer, none of it.
    assert [
        s["delivery_id"] for s in ok(env.call("GET", f"/inspections/{inspection}", "hrss"))["sample"]
    ] == sample
    assert ok(env.call("GET", f"/inspections/{inspection}", "psb"))["sample"] == []
    deployment = load_deployment(env.settings.home)
    assert deployment.sharing_practice is not None
    reader = LedgerReader(env.settings.rpc_url or env.setup.client.endpoint.rpc_url, deployment.address,
                          from_block=deployment.block_number)  # fmt: skip
    derived = derive_sample(reader, deployment.sharing_practice.address, inspection)
    assert ["0x" + d.hex() for d in derived.sample] == sample
    # Read from a block after the period began, the population would lack its deliveries: refused.
    late = LedgerReader(reader.rpc_url, deployment.address, from_block=drawn["seed_block"])
    with pytest.raises(ChainCheckError, match="would miss deliveries of inspection"):
        derive_sample(late, deployment.sharing_practice.address, inspection)
    pool = population(reader, period_from, period_to)
    assert set(ids) <= {"0x" + d.hex() for d in pool}
    # The contract's derivation (3: stratified by provider; HRSS provided every delivery of the period).
    assert derived.version == 3
    assert draw_sample(derived.inspection.seed, inspection, pool, 3, version=3) == list(derived.sample)
    code, out = _cli_plain("inspection", "sample", str(inspection), "--rpc", reader.rpc_url,
                           "--ledger", deployment.address, "--practice", deployment.sharing_practice.address,
                           "--from-block", str(deployment.block_number))  # fmt: skip
    assert code == 0 and out["sample"] == sample
    assert out["node"]["rpc_url"] == reader.rpc_url and out["node"]["block"] >= drawn["seed_block"], out
    # Drawn again: the answer is the draw that fixed the seed, whoever asks (the service's drawer may have
    # been first), never a second seed.
    redraw = ok(env.call("POST", f"/inspections/{inspection}/draw", "auditor"))
    assert (
        redraw["transaction"] == drawn_tx and [s["delivery_id"] for s in redraw["record"]["sample"]] == sample
    )

    passed, failed, absent = sample
    outside = next(d for d in ids if d not in sample)
    # Not presented yet, before the deadline: no outcome can be recorded.
    too_early = env.call(
        "POST", f"/inspections/{inspection}/outcomes", "auditor", json={"delivery_id": absent}
    )
    assert (too_early.status_code, too_early.json()["error"]["code"]) == (409, "INVALID_OUTCOME")

    def present(delivery: str, who: str = "hrss", tamper: bool = False) -> Any:
        payload, manifest = ids[delivery]
        raw = payload.read_bytes() + (b"9,forged\n" if tamper else b"")
        return env.call("POST", f"/inspections/{inspection}/presentations", who, json={
            "delivery_id": delivery, "manifest": json.loads(manifest.read_text()),
            "payload_base64": base64.b64encode(raw).decode()})  # fmt: skip

    assert present(outside).json()["error"]["code"] == "NOT_SAMPLED"
    # Another department's sampled delivery, its consumer's too, answers as a delivery outside the sample: the
    # sample a department reads holds only what it provided (403 NOT_A_PARTY told it the delivery was drawn,
    # and told a department party to neither side that the id was a delivery).
    for who in ("psb", "civil"):
        theirs, unsampled = present(passed, who), present(outside, who)
        assert (theirs.status_code, theirs.json()["error"]["code"]) == (409, "NOT_SAMPLED"), theirs.text
        assert theirs.text.replace(passed, "<id>") == unsampled.text.replace(outside, "<id>")
    presented = present(passed)
    assert ok(presented)["verdict"]["status"] == "MATCH"
    assert str(env.settings.rpc_url).rstrip("/") not in presented.text, presented.text
    assert ok(present(failed, tamper=True))["verdict"]["status"] == "MISMATCH"
    # A presentation while the outcome is being recorded waits for it, and then is closed: written meanwhile,
    # it would replace the verdict the outcome's evidence hash commits to (a pass kept beside a MISMATCH).
    answers: dict[str, Any] = {}
    outcome_path = f"/inspections/{inspection}/outcomes"
    rpc = env.setup.client.w3.provider
    rpc.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        waiting = in_pool(env)
        recording = threading.Thread(target=lambda: answers.update(
            outcome=env.call("POST", outcome_path, "auditor", json={"delivery_id": passed})))  # fmt: skip
        recording.start()
        until(lambda: in_pool(env) > waiting, "the outcome's transaction sent")
        presenting = threading.Thread(target=lambda: answers.update(presented=present(passed, tamper=True)))
        presenting.start()
        presenting.join(1.0)  # a presentation on its own is answered well within this
        rpc.make_request("evm_mine", [])  # type: ignore[arg-type]
    finally:
        rpc.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    recording.join(30)
    presenting.join(30)
    ok(answers["outcome"])
    closed = answers["presented"]
    assert (closed.status_code, closed.json().get("error", {}).get("code")) == (409, "PRESENTATION_CLOSED"), (
        closed.text
    )
    ok(env.call("POST", outcome_path, "auditor", json={"delivery_id": failed}))
    twice = env.call("POST", f"/inspections/{inspection}/outcomes", "auditor", json={"delivery_id": passed})
    assert (twice.status_code, twice.json()["error"]["code"]) == (409, "INVALID_OUTCOME")
    # Once its outcome is on chain a delivery is not presented again: the kept verdict is the one the
    # outcome's evidence hash commits to (a tampered payload after a pass, a good one after a failure).
    for delivery, tamper in ((passed, True), (failed, False)):
        again = present(delivery, tamper=tamper)
        assert (again.status_code, again.json()["error"]["code"]) == (409, "PRESENTATION_CLOSED")

    # Past the deadline by the node's clock: too late to present, an outcome of not presented instead.
    def overdue() -> set[str]:
        read = ok(env.call("GET", f"/inspections/{inspection}", "auditor"))["sample"]
        listed = next(i for i in ok(env.call("GET", "/inspections", "hrss")) if i["id"] == inspection)[
            "sample"
        ]
        assert [s["overdue"] for s in listed] == [s["overdue"] for s in read]
        return {s["delivery_id"] for s in read if s["overdue"]}

    assert overdue() == set()
    chain_now = int(env.setup.client.w3.eth.get_block("latest")["timestamp"])
    pass_time(env, max(0, drawn["present_by"] - chain_now) + 1)
    late = present(absent)
    assert (late.status_code, late.json()["error"]["code"]) == (409, "PRESENTATION_CLOSED")
    # Every read of the inspection marks it, as the provider's scorecard below counts it.
    assert overdue() == {absent}
    # Not presented, and no outcome recorded yet: the provider's scorecard says so, until the auditor does.
    query = f"/audit/scorecard?department=HRSS&from={_iso(period_from)}&to={_iso(drawn['present_by'] + 3600)}"
    unrecorded = ok(env.call("GET", query, "auditor"))["practice"]["inspections"]["overdue_deliveries"]
    assert {"inspection_id": inspection, "delivery_id": absent} in unrecorded
    assert {d["delivery_id"] for d in unrecorded if d["inspection_id"] == inspection} == {absent}
    final = ok(
        env.call("POST", f"/inspections/{inspection}/outcomes", "auditor", json={"delivery_id": absent})
    )
    outcomes = {s["delivery_id"]: (s["presented"], s["outcome"]) for s in final["record"]["sample"]}
    assert outcomes == {
        passed: ("MATCH", "passed"),
        failed: ("MISMATCH", "failed"),
        absent: (None, "not_presented"),
    }
    assert overdue() == set()
    card = ok(env.call("GET", query, "auditor"))["practice"]["inspections"]
    assert all(d["inspection_id"] != inspection for d in card["overdue_deliveries"])
    assert card["not_presented"] >= 1


def _real_receipts(
    env: ApiEnv, grant: dict[str, Any], tmp: Path, n: int
) -> list[tuple[dict[str, Any], Path, Path]]:
    """``n`` payloads delivered as receipts in one request (one batch), each with its provider-signed
    manifest: each receipt's ``GET /receipts/{id}`` answer once final, its payload and manifest."""
    made, bodies = [], []
    for i in range(n):
        payload = tmp / f"r{i}.csv"
        payload.write_text(f"id,name\n{i},王五{i}\n", encoding="utf-8")
        c = commit_payload(
            payload, salt=new_salt(), chunking=Chunking(PayloadFormat.CSV), keep_leaf_hashes=True
        )
        delivery_id = new_delivery_id(grant["provider"])
        manifest = tmp / f"r{i}.manifest.json"
        signed = sign_manifest(
            build_manifest(c, delivery_id=delivery_id, grant_id=grant["id"]), env.keystore.unlock("dept-hrss")
        )
        write_manifest(manifest, signed)
        bodies.append({"delivery_id": "0x" + delivery_id.hex(), "grant_id": grant["id"],
                       "commitment": "0x" + c.root.hex(), "byte_size": c.byte_size,
                       "record_count": c.record_count})  # fmt: skip
        made.append((payload, manifest))
    ok(env.call("POST", "/receipts", "hrss", json={"receipts": bodies}), 202)

    def final() -> list[dict[str, Any]] | None:
        found = [ok(env.call("GET", f"/receipts/{b['delivery_id']}", "hrss")) for b in bodies]
        return found if all(r["status"] == "final" for r in found) else None

    answers = until(final, "the receipts' batch to be mined")
    return [(answer, payload, manifest) for answer, (payload, manifest) in zip(answers, made, strict=True)]


def test_sampling_inspection_drawsAnchoredReceiptsEachAsADelivery_checkedByInclusionProof(
    api_env: ApiEnv, tmp_path: Path
) -> None:
    """An inspection's population holds every receipt anchored in its period beside the ledger's deliveries
    (derivation versions 2 and 3), so receipts are drawn as single deliveries are and a provider moving to
    receipts does not shrink its inspected share. A drawn receipt is named by its slot (grant and sequence),
    presented with its payload and manifest, checked by its inclusion proof against the anchored batch, and
    its outcome recorded on chain. Before, the population was the ledger's deliveries alone: one here, not
    four."""
    from node.deploy import anchors_client
    from verifier.sampling import receipt_slot, sample_version

    env = api_env
    grant = grant_between(env, "hrss", "psb")
    with own_period(env) as (period_from, period_to):
        single, single_payload, single_manifest = _real_delivery(env, grant, tmp_path, 90)
        receipts = _real_receipts(env, grant, tmp_path, 3)
    first = receipts[0][0]["batch"]["first_sequence"]
    anchored_at = int(
        anchors_client(env.setup.client.endpoint, env.settings.home).call("batch", grant["id"], first)[2]
    )
    assert period_from <= anchored_at < period_to
    body = {"period_from": period_from, "period_to": period_to, "sample_size": 4, "seed_delay_blocks": 2,
            "present_within": MIN_PRESENT_WITHIN_S}  # fmt: skip
    inspection = ok(env.call("POST", "/inspections", "auditor", json=body), 201)["record"]["id"]
    mine(env, 2)
    drawn = ok(env.call("POST", f"/inspections/{inspection}/draw", "auditor"))["record"]
    slots = {receipt_slot(grant["id"], r["sequence"]).hex(): r for r, _p, _m in receipts}
    assert drawn["population_size"] == 4, drawn
    by_id = {s["delivery_id"]: s for s in drawn["sample"]}
    assert set(by_id) == {single["delivery_id"], *("0x" + k for k in slots)}
    hrss = env.departments["HRSS"]
    for key, receipt in slots.items():
        entry = by_id["0x" + key]
        assert (entry["provider"], entry["grant_id"], entry["sequence"]) == (
            hrss,
            grant["id"],
            receipt["sequence"],
        )
    assert by_id[single["delivery_id"]]["grant_id"] is None
    # From a node alone: the contract names the derivation and its anchors; the same sample.
    deployment = load_deployment(env.settings.home)
    assert deployment.sharing_practice is not None and deployment.receipt_anchors is not None
    reader = LedgerReader(str(env.settings.rpc_url), deployment.address, from_block=deployment.block_number)
    assert sample_version(reader.rpc, deployment.sharing_practice.address) == (
        3,
        deployment.receipt_anchors.address,
    )
    derived = derive_sample(reader, deployment.sharing_practice.address, inspection)
    assert ["0x" + d.hex() for d in derived.sample] == [s["delivery_id"] for s in drawn["sample"]]
    assert derived.version == 3 and derived.population_size == 4

    def present(slot: str, payload: Path, manifest: Path, tamper: bool = False) -> dict[str, Any]:
        raw = payload.read_bytes() + (b"9,forged\n" if tamper else b"")
        sent = {"delivery_id": "0x" + slot, "manifest": json.loads(manifest.read_text()),
                "payload_base64": base64.b64encode(raw).decode()}  # fmt: skip
        verdict: dict[str, Any] = ok(
            env.call("POST", f"/inspections/{inspection}/presentations", "hrss", json=sent)
        )["verdict"]
        return verdict

    (k0, r0), (k1, _r1), (k2, _r2) = slots.items()
    _a0, p0, m0 = receipts[0]
    _a1, p1, m1 = receipts[1]
    verdict = present(k0, p0, m0)
    details = verdict["anchor"]["details"]
    assert verdict["status"] == "MATCH", verdict
    assert (details["recorded_as"], details["proof_checked"], details["grant_id"], details["sequence"]) == (
        "receipt", True, grant["id"], r0["sequence"])  # fmt: skip
    assert present(k1, p1, m1, tamper=True)["status"] == "MISMATCH"
    # Another receipt's payload and manifest for a drawn slot: not the receipt drawn.
    other = present(k2, p0, m0)
    assert (other["status"], [f["code"] for f in other["findings"]][-1]) == (
        "MISMATCH",
        "NOT_THE_DRAWN_RECEIPT",
    )
    # The single delivery's manifest for a receipt's slot neither.
    assert present(k2, single_payload, single_manifest)["status"] == "MISMATCH"
    outcome_path = f"/inspections/{inspection}/outcomes"
    final = ok(env.call("POST", outcome_path, "auditor", json={"delivery_id": "0x" + k0}))["record"]
    final = ok(env.call("POST", outcome_path, "auditor", json={"delivery_id": "0x" + k1}))["record"]
    outcomes = {s["delivery_id"]: (s["presented"], s["outcome"]) for s in final["sample"]}
    assert (outcomes["0x" + k0], outcomes["0x" + k1]) == (("MATCH", "passed"), ("MISMATCH", "failed"))
    # The scorecard counts them: outcomes of drawn receipts are sampled outcomes.
    since, until_ = (datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                     for t in (period_from - 86400, _chain_now(env) + 86400))  # fmt: skip
    ok(env.call("POST", "/audit/index", "auditor"))
    card = ok(env.call("GET", f"/audit/scorecard?department=HRSS&from={since}&to={until_}", "auditor"))
    assert card["practice"]["inspections"]["failed"] >= 1 and card["practice"]["inspections"]["passed"] >= 1
    # The provider's audit report carries them (a slot names no department: its grant's provider), and
    # `dxl audit verify` recomputes the sample, receipts included, from the node.
    from tests.cli import dxl

    code, _out, err = dxl(
        "audit", "report", "--out", tmp_path / "r", "--department", "HRSS", "--to", "2200-01-01"
    )
    assert code == 0, err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    drawn_rows = {
        r["fields"]["deliveryId"]
        for r in report["practice"]["rows"]
        if r["event"] == "InspectionOutcomeRecorded"
    }
    assert {"0x" + k0, "0x" + k1} <= drawn_rows
    code, out, err = dxl(
        "audit", "verify", tmp_path / "r" / "report.json", "--rpc", str(env.settings.rpc_url), "--json"
    )
    assert code == 0, out + err


def test_sampling_inspection_stratifiedByProvider_oneProvidersReceiptsLeaveTheOthersDeliveryItsDraw(
    api_env: ApiEnv, tmp_path: Path
) -> None:
    """Derivation version 3 draws round by round over the period's providers: HRSS's batch of three receipts
    and its delivery (four entries) take one draw of two, PSB's one delivery the other, whatever the seed.
    Drawn as one pool (version 2), PSB's delivery escaped a sample of two from these five three times in five,
    and a batch of a million receipts hid it for good (``tests/verifier/test_sampling.py``)."""
    from verifier.sampling import derive_sample

    env = api_env
    grant = grant_between(env, "hrss", "psb")
    with own_period(env) as (period_from, period_to):
        delivery_between(env, "hrss", "psb", grant)
        ours = delivery_between(env, "psb", "hrss")
        _real_receipts(env, grant, tmp_path, 3)
    body = {"period_from": period_from, "period_to": period_to, "sample_size": 2, "seed_delay_blocks": 2,
            "present_within": MIN_PRESENT_WITHIN_S}  # fmt: skip
    inspection = ok(env.call("POST", "/inspections", "auditor", json=body), 201)["record"]["id"]
    mine(env, 2)
    drawn = ok(env.call("POST", f"/inspections/{inspection}/draw", "auditor"))["record"]
    assert drawn["population_size"] == 5, drawn
    hrss, psb = env.departments["HRSS"], env.departments["PSB"]
    assert sorted(s["provider"] for s in drawn["sample"]) == sorted([hrss, psb]), drawn["sample"]
    assert ours["delivery_id"] in {s["delivery_id"] for s in drawn["sample"]}
    # PSB reads its own sampled delivery (to present it), and the verifier draws the same from the chain.
    assert [s["delivery_id"] for s in ok(env.call("GET", f"/inspections/{inspection}", "psb"))["sample"]] == [
        ours["delivery_id"]
    ]
    deployment = load_deployment(env.settings.home)
    assert deployment.sharing_practice is not None
    reader = LedgerReader(str(env.settings.rpc_url), deployment.address, from_block=deployment.block_number)
    derived = derive_sample(reader, deployment.sharing_practice.address, inspection)
    assert derived.version == 3
    assert ["0x" + d.hex() for d in derived.sample] == [s["delivery_id"] for s in drawn["sample"]]


def test_derive_sample_refuses_a_practice_contract_serving_another_ledger(api_env: ApiEnv) -> None:
    """A practice contract's inspections and seeds are its own ledger's: read beside another ledger, its seed
    drew that ledger's deliveries, a sample no one inspected, without a word."""
    env = api_env
    period_from, period_to = closed_period(env)
    body = {"period_from": period_from, "period_to": period_to, "sample_size": 1, "seed_delay_blocks": 2}
    inspection = ok(env.call("POST", "/inspections", "auditor", json=body), 201)["record"]["id"]
    mine(env, 3)
    ok(env.call("POST", f"/inspections/{inspection}/draw", "auditor"))
    deployment = load_deployment(env.settings.home)
    assert deployment.sharing_practice is not None
    practice = deployment.sharing_practice.address
    # Another ledger on the same node, founded by an account of its own.
    founder = Account.create()
    w3 = env.setup.client.w3
    w3.provider.make_request("anvil_setBalance", [founder.address, hex(10**20)])  # type: ignore[arg-type]
    artifact = load_artifact("DataExchangeLedger")
    client = LedgerClient(env.setup.client.endpoint, artifact.abi)
    founded = client.deploy(founder, artifact.bytecode, [founder.address], 1)
    other = str(founded.contract_address)
    rpc = env.settings.rpc_url or env.setup.client.endpoint.rpc_url
    with pytest.raises(ChainCheckError, match=f"serves ledger {deployment.address}, not {other}"):
        derive_sample(LedgerReader(rpc, other, from_block=founded.block_number), practice, inspection)
    code, err = _cli_plain("inspection", "sample", str(inspection), "--rpc", rpc, "--ledger", other,
                           "--practice", practice, "--from-block", str(founded.block_number))  # fmt: skip
    assert code != 0 and f"serves ledger {deployment.address}" in json.dumps(err), err
    # Beside its own ledger it is read as before.
    own = LedgerReader(rpc, deployment.address, from_block=deployment.block_number)
    assert derive_sample(own, practice, inspection).inspection.status == "DRAWN"


def test_the_service_draws_an_inspection_once_its_seed_block_is_mined(api_env: ApiEnv) -> None:
    """Nobody has to remember to draw within the 256 blocks whose hash the EVM knows: the service looks for
    open inspections and draws each once its seed block is mined (here one look at a time; ``dxl run`` looks
    every DXL_INSPECTION_DRAW_INTERVAL seconds), and a later draw through the API answers that draw."""
    env = api_env
    period_from, period_to = closed_period(env)
    body = {"period_from": period_from, "period_to": period_to, "sample_size": 1, "seed_delay_blocks": 2}
    inspection = ok(env.call("POST", "/inspections", "auditor", json=body), 201)["record"]["id"]
    # The service as `dxl run` starts it, its drawer's looks made here rather than on its clock.
    looks = {"inspection_draw_interval": 3600, "chain_watch_interval": 0}
    app = create_app(env.settings.model_copy(update=looks))
    with ServerThread(app):
        drawer = app.state.dxl.extra["inspection_drawer"]
        assert isinstance(drawer, InspectionDrawer)
        head = env.setup.client.block_number()
        seed_block = ok(env.call("GET", f"/inspections/{inspection}", "psb"))["seed_block"]
        if head <= seed_block:  # the seed block, or a block on top of it, is still to come: nothing is drawn
            assert inspection not in drawer.tick()
            assert ok(env.call("GET", f"/inspections/{inspection}", "psb"))["status"] == "open"
            mine(env, seed_block + 1 - head)
        # Drawn with it: any inspection a test before left open whose seed block is mined too.
        head = env.setup.client.block_number()
        listed = ok(env.call("GET", "/inspections", "auditor", params={"limit": 500}))
        due = sorted(i["id"] for i in listed if i["status"] == "open" and i["seed_block"] < head)
        assert inspection in due and drawer.tick() == due
        shown = ok(env.call("GET", f"/inspections/{inspection}", "auditor"))
        assert shown["status"] == "drawn" and shown["seed"] is not None
        assert drawer.tick() == []  # drawn once: not looked at again
    again = ok(env.call("POST", f"/inspections/{inspection}/draw", "hrss"))
    hrss = env.departments["HRSS"]  # a department's answer shows the sampled deliveries it provided
    assert again["record"]["seed"] == shown["seed"]
    assert again["record"]["sample"] == [s for s in shown["sample"] if s["provider"] == hrss]
    drew = env.setup.client.w3.eth.get_transaction(again["transaction"]["hash"])
    assert drew["blockNumber"] == again["transaction"]["block_number"]


def test_a_draw_that_loses_the_race_to_another_answers_the_draw_that_won(api_env: ApiEnv) -> None:
    """The service's drawer (or any member) draws while a department's draw is under way: the department's
    transaction, checked on a head where the inspection was still open, reverts in the block behind the
    other. The seed is fixed all the same, so the answer is the draw that fixed it, not a 409."""
    env = api_env
    period_from, period_to = closed_period(env)
    body = {"period_from": period_from, "period_to": period_to, "sample_size": 1, "seed_delay_blocks": 2}
    inspection = ok(env.call("POST", "/inspections", "auditor", json=body), 201)["record"]["id"]
    mine(env, 3)
    deployment = load_deployment(env.settings.home)
    assert deployment.sharing_practice is not None
    client = env.setup.client
    practice = LedgerClient(client.endpoint, load_artifact("SharingPractice").abi).at(
        deployment.sharing_practice.address
    )
    psb = env.setup.keystore.unlock("dept-psb")
    rpc = client.w3.provider

    def pool() -> int:
        return int(str(rpc.make_request("txpool_status", [])["result"]["pending"]), 16)  # type: ignore[arg-type]

    def until_pool(size: int) -> None:
        deadline = time.monotonic() + 30
        while pool() < size:
            assert time.monotonic() < deadline, "the draw never reached the node"
            time.sleep(0.05)

    answers: list[Any] = []
    waiting = pool()
    rpc.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        first = practice.submit(psb, practice.build(str(psb.address), "drawSample", inspection))
        until_pool(waiting + 1)
        drawer = threading.Thread(
            target=lambda: answers.append(env.call("POST", f"/inspections/{inspection}/draw", "hrss"))
        )
        drawer.start()
        until_pool(waiting + 2)  # both sent; the first in line draws, the second reverts
        rpc.make_request("evm_mine", [])  # type: ignore[arg-type]
        drawer.join(timeout=30)
    finally:
        rpc.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    won = ok(answers[0])
    assert won["transaction"]["hash"] == first.tx_hash
    assert won["record"]["status"] == "drawn" and won["record"]["seed"] is not None


def test_an_inspection_of_a_period_begun_before_the_ledger_was_deployed_reads_its_sample(
    api_env: ApiEnv,
) -> None:
    """A period such as "this month" may begin before the ledger existed: the blocks before its deployment
    hold none of its deliveries, so the sample read from the deployment block is the whole one (it answered
    503, every inspection's list with it, and `dxl inspection sample` refused). A reader starting after the
    deployment block still refuses: it would miss deliveries of the period."""
    env = api_env
    deployment = load_deployment(env.settings.home)
    assert deployment.sharing_practice is not None
    w3 = env.setup.client.w3
    before = int(w3.eth.get_block(deployment.block_number - 1)["timestamp"])
    length = evaluation_period_length(env)
    delivery_between(env, "samr", "civil")
    # Every whole period from the one the ledger was deployed in to the current one, over when the
    # inspection opens.
    period_from, period_to = before // length * length, (_chain_now(env) // length + 1) * length
    pass_past(env, period_to - 1)
    body = {"period_from": period_from, "period_to": period_to, "sample_size": 1, "seed_delay_blocks": 2,
            "present_within": MIN_PRESENT_WITHIN_S}  # fmt: skip
    inspection = ok(env.call("POST", "/inspections", "auditor", json=body), 201)["record"]["id"]
    mine(env, 3)
    drawn = ok(env.call("POST", f"/inspections/{inspection}/draw", "auditor"))["record"]
    assert drawn["status"] == "drawn" and len(drawn["sample"]) == 1
    assert ok(env.call("GET", f"/inspections/{inspection}", "auditor"))["sample"] == drawn["sample"]
    assert any(i["id"] == inspection for i in ok(env.call("GET", "/inspections", "auditor")))
    rpc = env.settings.rpc_url or env.setup.client.endpoint.rpc_url
    reader = LedgerReader(rpc, deployment.address, from_block=deployment.block_number)
    derived = derive_sample(reader, deployment.sharing_practice.address, inspection)
    assert ["0x" + d.hex() for d in derived.sample] == [s["delivery_id"] for s in drawn["sample"]]
    late = LedgerReader(rpc, deployment.address, from_block=deployment.block_number + 1)
    with pytest.raises(ChainCheckError, match="would miss deliveries of inspection"):
        derive_sample(late, deployment.sharing_practice.address, inspection)
    # Its outcome counts on the provider's scorecard, whose samples are read from the ledger's deployment
    # block (not the practice contract's, deployed after it).
    chain_now = _chain_now(env)
    pass_time(env, max(0, drawn["present_by"] - chain_now) + 1)
    sampled = drawn["sample"][0]
    ok(
        env.call(
            "POST",
            f"/inspections/{inspection}/outcomes",
            "auditor",
            json={"delivery_id": sampled["delivery_id"]},
        )
    )
    code = next(c for c, i in env.departments.items() if i == sampled["provider"])
    card = ok(env.call("GET", f"/audit/scorecard?department={code}", "auditor"))
    assert card["practice"]["inspections"]["not_presented"] >= 1


def _chain_now(env: ApiEnv) -> int:
    return int(env.setup.client.w3.eth.get_block("latest")["timestamp"])


def test_an_inspection_the_contract_would_refuse_is_refused_at_the_door(api_env: ApiEnv) -> None:
    """A period that ends after the chain's latest block (a few seconds ahead of its clock) or runs backwards
    is refused by the API's own validation, with the rule the contract applies, before anything is sent (no
    revert is named)."""
    env = api_env
    _, current = closed_period(env)  # the current period starts where the last closed one ends
    end = current + evaluation_period_length(env)
    now = _chain_now(env)
    body = {"period_from": current, "period_to": end, "sample_size": 1, "seed_delay_blocks": 2}
    ahead = env.call("POST", "/inspections", "auditor", json=body)
    assert (ahead.status_code, ahead.json()["error"]["code"]) == (422, "INVALID_INSPECTION")
    error = ahead.json()["error"]
    assert (error["field"], error["chain_time"], error.get("revert")) == ("period_to", now, None)
    assert error["message"].startswith(
        f"the inspected period must be over by the chain's clock: period_to {end}"
    )
    backwards = env.call(
        "POST", "/inspections", "auditor", json={**body, "period_from": current, "period_to": current}
    )
    assert (backwards.status_code, backwards.json()["error"]["code"]) == (422, "VALIDATION_ERROR")
    assert "period_from must be before period_to" in backwards.json()["error"]["message"]


def test_an_inspection_of_a_period_narrowed_around_a_delivery_is_refused_and_nothing_is_sent(
    api_env: ApiEnv,
) -> None:
    """The inspected period is over when the inspection opens, so its auditor knows every delivery in it: a
    period of one second around one delivery among several made that delivery the whole "random" sample, and
    one ending a second before it spared it. An inspection covers whole evaluation periods (both bounds on
    the grid ``GET /evaluation-period`` gives): any other bound is 422 ``INVALID_INSPECTION`` naming it, the
    period it falls in and the length, before anything is sent; the whole period draws from all of them."""
    env = api_env
    grant = grant_between(env, "hrss", "psb")
    with own_period(env) as (period_from, period_to):
        made = [delivery_between(env, "hrss", "psb", grant) for _ in range(2)]
        pass_time(env, 60)  # blocks may share a second: the chosen delivery's is its own
        chosen = delivery_between(env, "hrss", "psb", grant)
        pass_time(env, 60)
        made += [chosen, delivery_between(env, "hrss", "psb", grant)]
    at, length = chosen["recorded_at"], evaluation_period_length(env)
    count = len(ok(env.call("GET", "/inspections", "auditor", params={"limit": 500})))
    body = {"sample_size": 1, "seed_delay_blocks": 2, "present_within": MIN_PRESENT_WITHIN_S}
    for (narrow_from, narrow_to), field, bound in (
        ((at, at + 1), "period_from", at),  # the chosen delivery alone
        ((period_from, at), "period_to", at),  # every delivery of the period but the chosen one
        ((period_from, period_to - 1), "period_to", period_to - 1),
    ):
        refused = env.call("POST", "/inspections", "auditor",
                           json={**body, "period_from": narrow_from, "period_to": narrow_to})  # fmt: skip
        error = refused.json()["error"]
        assert (refused.status_code, error["code"], error["field"]) == (422, "INVALID_INSPECTION", field), (
            error
        )
        assert (error["evaluation_period"], error.get("revert")) == (length, None), error
        assert error["message"] == (
            f"an inspection covers whole evaluation periods of {length} s, from the epoch: {field} {bound} "
            f"({_iso(bound)}) falls inside the one from {period_from} ({_iso(period_from)}) to {period_to} "
            f"({_iso(period_to)})"
        ), error
    assert len(ok(env.call("GET", "/inspections", "auditor", params={"limit": 500}))) == count
    assert _claims_left(env) == []
    opened = ok(env.call("POST", "/inspections", "auditor",
                         json={**body, "sample_size": 2, "period_from": period_from, "period_to": period_to}),
                201)["record"]  # fmt: skip
    mine(env, 3)
    drawn = ok(env.call("POST", f"/inspections/{opened['id']}/draw", "auditor"))["record"]
    assert drawn["population_size"] == 4
    assert {s["delivery_id"] for s in drawn["sample"]} <= {d["delivery_id"] for d in made}
    # Every scorecard of the period of the draw names the inspection with the population it sampled.
    ok(env.call("POST", "/audit/index", "auditor"))
    query = f"/audit/scorecard?department=PSB&from={_iso(period_to)}&to={_iso(_chain_now(env) + 1)}"
    inspected = ok(env.call("GET", query, "auditor"))["practice"]["inspections"]["inspected"]
    assert {"inspection_id": opened["id"], "period_from": period_from, "period_to": period_to,
            "sample_size": 2, "population_size": 4} in inspected, inspected  # fmt: skip


def test_inspection_not_drawn_within_the_blockhash_window_expires_for_good(api_env: ApiEnv) -> None:
    """An auditor who could compute the sample from the seed block's hash and dislike it cannot let the
    inspection lapse unseen and open another: past 256 blocks it reads expired, and nobody can draw it."""
    env = api_env
    period_from, period_to = closed_period(env)
    body = {"period_from": period_from, "period_to": period_to, "sample_size": 2, "seed_delay_blocks": 2}
    opened = ok(env.call("POST", "/inspections", "auditor", json=body), 201)["record"]
    inspection = opened["id"]
    mine(env, 2)  # the seed block is mined: its hash is known, and the inspection still open
    assert ok(env.call("GET", f"/inspections/{inspection}", "psb"))["status"] == "open"
    # The 256 blocks whose hash the EVM knows pass with the draw never sent. The list (read from the audit
    # index) and the contract's view tell open from expired at the same block: the 256th after the seed's.
    provider = env.setup.client.w3.provider
    for status in ("open", "expired"):
        left = opened["seed_block"] + 255 + (status == "expired") - int(env.setup.client.w3.eth.block_number)
        provider.make_request("anvil_mine", [hex(left)])  # type: ignore[arg-type]
        listed = ok(env.call("GET", "/inspections", "auditor"))
        assert next(i for i in listed if i["id"] == inspection)["status"] == status
        assert ok(env.call("GET", f"/inspections/{inspection}", "auditor"))["status"] == status
    expired = ok(env.call("GET", f"/inspections/{inspection}", "psb"))
    assert (expired["status"], expired["seed"], expired["sample"]) == ("expired", None, [])
    listed = ok(env.call("GET", "/inspections", "auditor"))
    assert next(i for i in listed if i["id"] == inspection)["status"] == "expired"
    for who in ("auditor", "hrss"):
        late = env.call("POST", f"/inspections/{inspection}/draw", who)
        assert (late.status_code, late.json()["error"]["code"]) == (409, "INSPECTION_STATUS_MISMATCH")
        assert "expired" in late.json()["error"]["message"]
    # Past the service too: the contract refuses the draw as expired, not as a seed still to come.
    deployment = load_deployment(env.settings.home)
    assert deployment.sharing_practice is not None
    with pytest.raises(ChainCheckError, match="expired"):
        reader = LedgerReader(env.settings.rpc_url or env.setup.client.endpoint.rpc_url, deployment.address,
                              from_block=deployment.block_number)  # fmt: skip
        derive_sample(reader, deployment.sharing_practice.address, inspection)
    # It stays on the ledger, expired, with the time it expired: what the scorecard counts it by.
    assert ok(env.call("GET", f"/inspections/{inspection}", "auditor"))["status"] == "expired"
    client = env.setup.client
    practice = LedgerClient(client.endpoint, load_artifact("SharingPractice").abi).at(
        deployment.sharing_practice.address
    )
    practice_reader = PracticeReader(
        practice, client, from_block=deployment.block_number, ledger_from_block=deployment.block_number
    )
    record = next(i for i in practice_reader.inspections() if i.inspection_id == inspection)
    w3 = client.w3
    assert record.expired_at == w3.eth.get_block(opened["seed_block"] + 256)["timestamp"]


@pytest.mark.parametrize("within", [600, 2 * 86400, MIN_PRESENT_WITHIN_S - 1])
def test_an_inspection_its_providers_could_never_fail_to_present_is_refused(
    api_env: ApiEnv, within: int
) -> None:
    """A sample drawn less than the notice before its deadline is never recorded not presented, and the draw
    comes after the opening: ten minutes or two days to present opened an inspection no provider could fail,
    and nothing told the auditor. Refused 422 on ``present_within`` with the least it takes, before anything
    is sent; the least is accepted (the other tests open with it)."""
    env = api_env
    period_from, period_to = closed_period(env)
    body = {"period_from": period_from, "period_to": period_to, "sample_size": 1, "present_within": within}
    head = env.setup.client.block_number()
    count = len(ok(env.call("GET", "/inspections", "auditor", params={"limit": 500})))
    refused = env.call("POST", "/inspections", "auditor", json=body)
    error = refused.json()["error"]
    assert (refused.status_code, error["code"], error["field"]) == (422, "VALIDATION_ERROR", "present_within")
    assert f"at least {MIN_PRESENT_WITHIN_S} s (4 days)" in error["message"], error
    assert env.setup.client.block_number() == head
    assert len(ok(env.call("GET", "/inspections", "auditor", params={"limit": 500}))) == count
    schema = ok(env.call("GET", "/openapi.json", "auditor"))["components"]["schemas"]["InspectionCreate"]
    assert schema["properties"]["present_within"]["minimum"] == MIN_PRESENT_WITHIN_S


def test_an_opening_refused_in_its_block_names_the_contracts_error(api_env: ApiEnv) -> None:
    """The opening passes the checks on the head, then its block's time is past its presentation deadline:
    the mined transaction reverts, replayed by the journal's (the ledger's) client, and the answer names the
    practice contract's error through the one error table, not LEDGER_REJECTED with a bare revert."""
    env = api_env
    rpc = env.setup.client.w3.provider
    now = _chain_now(env)
    period_from, period_to = closed_period(env)
    body = {"period_from": period_from, "period_to": period_to, "sample_size": 2, "seed_delay_blocks": 2,
            "present_within": MIN_PRESENT_WITHIN_S}  # fmt: skip
    answers: list[Any] = []
    key = {"Idempotency-Key": f"refused-opening-{now}"}
    pending = int(str(rpc.make_request("txpool_status", [])["result"]["pending"]), 16)  # type: ignore[arg-type]
    rpc.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    # The write is estimated on the pending block: its time is pinned within the deadline (an idle node's
    # next block would carry its clock's time, however far past the head's), so the check passes there.
    rpc.make_request("evm_setNextBlockTimestamp", [now + 1])  # type: ignore[arg-type]
    try:
        opener = threading.Thread(
            target=lambda: answers.append(env.call("POST", "/inspections", "auditor", json=body, headers=key))
        )
        opener.start()
        deadline = time.monotonic() + 30
        while int(str(rpc.make_request("txpool_status", [])["result"]["pending"]), 16) == pending:  # type: ignore[arg-type]
            assert time.monotonic() < deadline, "the opening never reached the node"
            time.sleep(0.05)
        rpc.make_request("evm_setNextBlockTimestamp", [now + MIN_PRESENT_WITHIN_S + 3600])  # type: ignore[arg-type]
        rpc.make_request("evm_mine", [])  # type: ignore[arg-type]
        opener.join(timeout=30)
    finally:
        rpc.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    refused = answers[0]
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "INVALID_INSPECTION")
    assert refused.json()["error"]["revert"] == "PracticeInvalidInspection"
    assert "presentBy" in refused.json()["error"]["message"]
    assert refused.json()["error"]["field"] == "present_within"
    assert _claims_left(env) == []
    # The key's retry is told the same named refusal.
    again = env.call("POST", "/inspections", "auditor", json=body, headers=key)
    assert (again.status_code, again.json()) == (422, refused.json())


def test_without_the_practice_contract_its_routes_answer_503(api_env: ApiEnv, tmp_path: Path) -> None:
    """A deployment record older than the practice contract: the API starts, and says what is missing."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    home = tmp_path / "home"
    shutil.copytree(
        api_env.settings.home, home, ignore=shutil.ignore_patterns("*.sqlite3*", "node", "demo-tokens.json")
    )
    record = json.loads((home / "deployment.json").read_text())
    record.pop("sharing_practice")
    (home / "deployment.json").write_text(json.dumps(record))
    settings = api_env.settings.model_copy(update={"home": home, "database_url": None})
    with TestClient(create_app(settings)) as client:
        token = ensure_demo_tokens(settings)["demo-psb"]
        for path in ("/demands", "/inspections/1"):
            response = client.get(path, headers={"Authorization": f"Bearer {token}"})
            assert (response.status_code, response.json()["error"]["code"]) == (503, "PRACTICE_NOT_DEPLOYED")
    missing = api_env.call("GET", "/inspections/424242", "auditor")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "INSPECTION_NOT_FOUND")


def test_scorecard_counts_a_demand_met_once_its_resource_is_delivered(api_env: ApiEnv) -> None:
    env = api_env
    demand = publish(env, "psb", "hrss")
    resource_id = register(env, "hrss")
    ok(env.call("POST", f"/demands/{demand['id']}/answer", "hrss",
                json={"answer": "new_resource", "resource_id": resource_id}))  # fmt: skip
    # The period in block time: the module's node may run ahead of this machine's clock.
    since, until = (datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                    for t in (demand["published_at"], demand["published_at"] + 86400))  # fmt: skip
    query = f"/audit/scorecard?department=HRSS&from={since}&to={until}"

    def practice() -> dict[str, Any]:
        ok(env.call("POST", "/audit/index", "auditor"))
        return dict(ok(env.call("GET", query, "auditor"))["practice"])

    before = practice()["demands_received"]
    assert before["total"] >= 1 and before["new_resource"] >= 1
    # Delivered to the publisher under an agreement on that resource: now the demand is met.
    req = request_access(env, "psb", resource_id)
    agreement = concluded(env, req, "hrss", "psb")
    grant = grant_under(env, "hrss", agreement)
    delivery = delivery_between(env, "hrss", "psb", grant)
    scores = {"delivery_id": delivery["delivery_id"], "timeliness": 2, "completeness": 2, "accuracy": 2}
    ok(env.call("POST", f"/agreements/{agreement['id']}/evaluations", "psb", json=scores), 201)
    after = practice()
    assert after["demands_received"]["met"] == before["met"] + 1
    assert after["evaluations"]["as_provider"]["count"] >= 1
    # A department reads its own scorecard and the consortium's, not another's.
    assert env.call("GET", "/audit/scorecard?department=HRSS", "psb").status_code == 403


def test_a_scorecard_reads_the_practice_contract_in_round_trips_not_growing_with_its_demands(
    api_env: ApiEnv,
) -> None:
    """The scorecard reads every demand and inspection of the practice contract, the parties of every
    agreement scored, and the time of every block an answer or a score was logged in. Read one request
    each, a card cost a round trip per demand: over a remote node, its latency times the demands. Read in
    JSON-RPC batches, eight more demands answered and three more agreements scored cost no more round trips
    (the figures stay the chain's: every view and log is still read). Eight show a round trip a demand as
    plainly as twenty did (eight trips more, against none), every batch holding up to 500 requests; each
    demand is two writes here and a read in every later test of the module that lists them all."""
    env = api_env
    client = env.setup.client
    deployment = load_deployment(env.settings.home)
    assert deployment.sharing_practice is not None
    practice_address = deployment.sharing_practice.address

    def read() -> tuple[Counter[str], Counter[str], int]:
        """Round trips and JSON-RPC requests (by method) of one read of the facts a scorecard counts, and how
        many demands it read."""
        with RpcProxy(client.endpoint.rpc_url) as proxy:
            endpoint = replace(client.endpoint, rpc_url=proxy.url, failover_urls=())
            ledger = LedgerClient(endpoint, client.abi).at(deployment.address)
            practice = ledger.for_abi(load_artifact("SharingPractice").abi).at(practice_address)
            start = deployment.block_number
            reader = PracticeReader(practice, ledger, from_block=start, ledger_from_block=start)
            proxy.posts.clear()
            proxy.asked.clear()
            facts = reader.facts()
            return Counter(proxy.posts), Counter(proxy.asked), len(facts.demands)

    def recorded(demands: int, evaluations: int) -> None:
        """``demands`` demands answered, and ``evaluations`` deliveries scored under as many agreements."""
        for _ in range(demands):
            demand = publish(env, "psb", "hrss")
            ok(env.call("POST", f"/demands/{demand['id']}/answer", "hrss",
                        json={"answer": "declined", "decline_reason": "not_held"}))  # fmt: skip
        for _ in range(evaluations):
            agreement = concluded(env, request_access(env, "psb", register(env, "hrss")), "hrss", "psb")
            delivery = delivery_between(env, "hrss", "psb", grant_under(env, "hrss", agreement))
            scores = {
                "delivery_id": delivery["delivery_id"],
                "timeliness": 4,
                "completeness": 4,
                "accuracy": 4,
            }
            ok(env.call("POST", f"/agreements/{agreement['id']}/evaluations", "psb", json=scores), 201)

    # At least one of each to read, whatever ran before in the module.
    recorded(1, 1)
    trips, asked, demands = read()
    recorded(8, 3)
    trips_after, asked_after, demands_after = read()
    assert demands_after == demands + 8
    # Each demand and scored agreement, and the time of the block its answer was logged in, is still read
    # from the chain ...
    assert asked_after["eth_call"] >= asked["eth_call"] + 11
    assert asked_after["eth_getBlockByNumber"] >= asked["eth_getBlockByNumber"] + 8
    # ... in as many round trips as before (logs are read by block ranges: a range more may start).
    for method in ("eth_call", "eth_getBlockByNumber"):
        assert trips_after[method] == trips[method], (method, trips, trips_after)


def _iso(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_delivery_mined_before_the_answer_in_the_same_block_does_not_meet_the_demand(
    api_env: ApiEnv,
) -> None:
    """Demand met asks for a delivery after the answer. Block times are whole seconds several blocks (and
    every transaction of a block) share: compared by time, a delivery mined before the answer in the same
    second met it. Chain order (block, then log index) tells them apart."""
    env = api_env
    demand = publish(env, "psb", "hrss")
    resource_id = register(env, "hrss")
    req = request_access(env, "psb", resource_id)
    agreement = concluded(env, req, "hrss", "psb")
    grant = grant_under(env, "hrss", agreement)
    # The delivery sent first, then the answer; both mined in one block, in that order.
    answers: dict[str, Any] = {}
    body = {"delivery_id": "0x" + new_delivery_id(grant["provider"]).hex(), "grant_id": grant["id"],
            "commitment": b32(), "byte_size": 10, "record_count": 1}  # fmt: skip
    rpc = env.setup.client.w3.provider
    rpc.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        waiting = in_pool(env)
        delivering = threading.Thread(
            target=lambda: answers.update(delivery=env.call("POST", "/deliveries", "hrss", json=body))
        )
        delivering.start()
        until(lambda: in_pool(env) > waiting, "the delivery's transaction sent")
        answering = threading.Thread(target=lambda: answers.update(answer=env.call(
            "POST", f"/demands/{demand['id']}/answer", "hrss",
            json={"answer": "new_resource", "resource_id": resource_id})))  # fmt: skip
        answering.start()
        until(lambda: in_pool(env) > waiting + 1, "the answer's transaction sent")
        mine(env)
    finally:
        rpc.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    delivering.join(30)
    answering.join(30)
    receipts = [
        env.setup.client.w3.eth.get_transaction_receipt(ok(answers[k], s)["transaction"]["hash"])
        for k, s in (("delivery", 201), ("answer", 200))
    ]
    assert receipts[0]["blockNumber"] == receipts[1]["blockNumber"]
    assert receipts[0]["transactionIndex"] < receipts[1]["transactionIndex"]
    query = f"/audit/scorecard?department=HRSS&from={_iso(demand['published_at'])}"
    ok(env.call("POST", "/audit/index", "auditor"))
    received = ok(env.call("GET", query, "auditor"))["practice"]["demands_received"]
    assert demand["id"] in received["unmet_demand_ids"]
    # A delivery after the answer meets it.
    delivery_between(env, "hrss", "psb", grant)
    received = ok(env.call("GET", query, "auditor"))["practice"]["demands_received"]
    assert demand["id"] not in received["unmet_demand_ids"]


def test_a_scorecard_reads_the_index_and_the_practice_contract_at_one_moment(
    api_env: ApiEnv, tmp_path: Path
) -> None:
    """The scorecard's demands and evaluations come from the practice contract, read at the chain's head, and
    its deliveries from the audit index, which follows the chain a moment behind. A service whose index had
    not followed the last blocks yet showed an evaluation of a delivery its card did not count, and the
    demand that delivery met as unmet; the card now brings the index up to the head first. This service's
    index never follows by itself (``DXL_AUDIT_FOLLOW_INTERVAL=0``), so the lag is here for good."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    env = api_env
    pass_time(env, 2)
    home = tmp_path / "home"
    shutil.copytree(
        env.settings.home, home, ignore=shutil.ignore_patterns("*.sqlite3*", "node", "demo-tokens.json")
    )
    settings = env.settings.model_copy(
        update={"home": home, "database_url": None, "audit_follow_interval": 0.0}
    )
    demand = publish(env, "psb", "hrss")
    resource_id = register(env, "hrss")
    ok(env.call("POST", f"/demands/{demand['id']}/answer", "hrss",
                json={"answer": "new_resource", "resource_id": resource_id}))  # fmt: skip
    req = request_access(env, "psb", resource_id)
    agreement = concluded(env, req, "hrss", "psb")
    grant = grant_under(env, "hrss", agreement)
    with TestClient(create_app(settings)) as client:
        headers = {"Authorization": f"Bearer {ensure_demo_tokens(settings)['demo-auditor']}"}
        assert client.post("/audit/index", headers=headers).status_code == 200
        # After the index's last sync: the delivery meeting the demand, and the consumer's score of it.
        delivery = delivery_between(env, "hrss", "psb", grant)
        ok(
            env.call(
                "POST",
                f"/agreements/{agreement['id']}/evaluations",
                "psb",
                json={
                    "delivery_id": delivery["delivery_id"],
                    "timeliness": 4,
                    "completeness": 4,
                    "accuracy": 4,
                },
            ),
            201,
        )
        query = f"/audit/scorecard?department=HRSS&from={_iso(demand['published_at'])}"
        card = client.get(query, headers=headers).json()
    practice = card["practice"]
    assert practice["evaluations"]["as_provider"]["count"] == 1
    assert card["deliveries"]["sent"] == 1
    assert (practice["demands_received"]["met"], practice["demands_received"]["unmet_demand_ids"]) == (1, [])


def _opened_drawable_past_its_deadline(env: ApiEnv) -> tuple[dict[str, Any], dict[str, Any]]:
    """An inspection of a period holding one delivery of HRSS's to PSB (under the grant returned), its
    presentation deadline passed before its seed block was mined, the seed block and one on top mined: it
    can be drawn now, too late for its providers to present."""
    grant = grant_between(env, "hrss", "psb")
    with own_period(env) as (period_from, period_to):
        delivery_between(env, "hrss", "psb", grant)
    body = {"period_from": period_from, "period_to": period_to, "sample_size": 50, "seed_delay_blocks": 2,
            "present_within": MIN_PRESENT_WITHIN_S}  # fmt: skip
    opened = ok(env.call("POST", "/inspections", "auditor", json=body), 201)["record"]
    pass_past(env, opened["present_by"])  # the deadline passes before the seed block is mined
    mine(env, 3)  # the seed block, and a block on top of it
    return opened, grant


def test_a_sample_drawn_after_its_deadline_is_overdue_nowhere_and_not_recorded_as_not_presented(
    api_env: ApiEnv,
) -> None:
    """An inspection whose seed block came after its presentation deadline: its providers learned the
    sample too late to present. The contract takes no not-presented outcome for it, so the service shows
    none of its deliveries overdue and refuses to record one, naming the late draw."""
    env = api_env
    opened, _ = _opened_drawable_past_its_deadline(env)
    drawn = ok(env.call("POST", f"/inspections/{opened['id']}/draw", "auditor"))["record"]
    assert drawn["sample"] and not any(s["overdue"] for s in drawn["sample"])
    sampled = drawn["sample"][0]["delivery_id"]
    refused = env.call(
        "POST", f"/inspections/{opened['id']}/outcomes", "auditor", json={"delivery_id": sampled}
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "INVALID_OUTCOME")
    assert "after its deadline" in refused.json()["error"]["message"]


@pytest.mark.parametrize(
    "verdict",
    ["[]", "not json", "[" * 200_000 + "]" * 200_000],
    ids=["a-list", "not-json", "nested-deeper-than-json-is-read"],
)
def test_a_kept_verdict_edited_into_no_json_object_reads_as_one_judged_at_no_block(
    api_env: ApiEnv, verdict: str
) -> None:
    """A presentation's verdict is text of the service's database; a row edited into something that is no
    JSON object made every read of its inspection, and the list of inspections, answer 500 for every reader
    (text nested some 100,000 deep stopped the service). It reads as what it is: a presentation kept, whose
    verdict names no block."""
    env = api_env
    opened, _ = _opened_drawable_past_its_deadline(env)
    drawn = ok(env.call("POST", f"/inspections/{opened['id']}/draw", "auditor"))["record"]
    sampled = drawn["sample"][0]
    sql(env, "INSERT INTO api_inspection_presentations (inspection_id, delivery_id, status, verdict, "
        "presented_at) VALUES (:i, :d, 'MATCH', :v, '2026-01-01 00:00:00')",
        i=opened["id"], d=sampled["delivery_id"], v=verdict)  # fmt: skip
    read = ok(env.call("GET", f"/inspections/{opened['id']}", "auditor"))
    (shown,) = [s for s in read["sample"] if s["delivery_id"] == sampled["delivery_id"]]
    assert shown["presented"] is None  # no verdict can be read of it, whatever its status column says
    provider = next(code for code, i in env.departments.items() if i == sampled["provider"]).lower()
    assert ok(env.call("GET", f"/inspections/{opened['id']}", provider))["id"] == opened["id"]
    assert opened["id"] in {
        i["id"] for i in ok(env.call("GET", "/inspections", "auditor", params={"limit": 500}))
    }
    # Gone again: the module's other tests list every inspection.
    sql(env, "DELETE FROM api_inspection_presentations WHERE inspection_id = :i", i=opened["id"])


def test_an_outcome_follows_the_verdict_kept_not_a_status_column_edited_beside_it(api_env: ApiEnv) -> None:
    """A kept presentation holds its verdict and, beside it, the verdict's status: the service read the
    status column to call for an outcome, so a row whose column was edited to MATCH beside a verdict that
    says MISMATCH was recorded on chain as passed, with the evidence hash of the mismatch. The verdict, whose
    hash the outcome records, is what calls for the outcome."""
    env = api_env
    opened, _ = _opened_drawable_past_its_deadline(env)
    drawn = ok(env.call("POST", f"/inspections/{opened['id']}/draw", "auditor"))["record"]
    sampled = drawn["sample"][0]
    verdict = json.dumps({"block": 1, "status": "MISMATCH"}, sort_keys=True, separators=(",", ":"))
    sql(env, "INSERT INTO api_inspection_presentations (inspection_id, delivery_id, status, verdict, "
        "presented_at) VALUES (:i, :d, 'MATCH', :v, '2026-01-01 00:00:00')",
        i=opened["id"], d=sampled["delivery_id"], v=verdict)  # fmt: skip
    read = ok(env.call("GET", f"/inspections/{opened['id']}", "auditor"))
    (shown,) = [s for s in read["sample"] if s["delivery_id"] == sampled["delivery_id"]]
    assert shown["presented"] == "MISMATCH"
    path = f"/inspections/{opened['id']}/outcomes"
    recorded = ok(env.call("POST", path, "auditor", json={"delivery_id": sampled["delivery_id"]}))["record"]
    (outcome,) = [s for s in recorded["sample"] if s["delivery_id"] == sampled["delivery_id"]]
    assert (outcome["outcome"], outcome["outcome_as_checked"]) == ("failed", True)


def test_an_auditor_cannot_record_not_presented_for_a_sample_drawn_with_no_time_left_to_present(
    api_env: ApiEnv,
) -> None:
    """The deadline is the auditor's to set, counted from the opening, and the providers learn their sample
    only at the draw: a deadline a few seconds past the seed block's time had the sample drawn with seconds
    left, and the auditor recorded every sampled delivery not presented, on each provider's card, for a
    deadline no provider could meet. A sample drawn less than ``PRESENTATION_NOTICE_S`` before its deadline
    is now overdue nowhere and not recorded as not presented (the contract refuses it too); what a provider
    does present in the time left is still judged and recorded."""
    env = api_env
    grant = grant_between(env, "hrss", "psb")
    with own_period(env) as (period_from, period_to):
        delivery_between(env, "hrss", "psb", grant)
    body = {"period_from": period_from, "period_to": period_to, "sample_size": 50, "seed_delay_blocks": 2,
            "present_within": MIN_PRESENT_WITHIN_S}  # fmt: skip
    opened = ok(env.call("POST", "/inspections", "auditor", json=body), 201)["record"]
    # The service takes no deadline closer than the notice and a day, but the draw is anyone's to make, late:
    # the seed block is mined ten minutes before the deadline (its hash is known for 256 blocks).
    pass_past(env, opened["present_by"] - 600)
    mine(env, 3)
    drawn = ok(env.call("POST", f"/inspections/{opened['id']}/draw", "auditor"))["record"]
    assert drawn["sample"] and _chain_now(env) <= opened["present_by"]
    pass_past(env, opened["present_by"])
    shown = ok(env.call("GET", f"/inspections/{opened['id']}", "auditor"))
    assert shown["sample"] and not any(s["overdue"] for s in shown["sample"]), shown
    sampled = shown["sample"][0]["delivery_id"]
    refused = env.call(
        "POST", f"/inspections/{opened['id']}/outcomes", "auditor", json={"delivery_id": sampled}
    )
    error = refused.json()["error"]
    assert (refused.status_code, error["code"]) == (409, "INVALID_OUTCOME"), error
    assert "less than 3 days before its deadline" in error["message"], error
    assert ok(env.call("GET", f"/inspections/{opened['id']}", "auditor"))["sample"][0]["outcome"] is None
    ok(env.call("POST", "/audit/index", "auditor"))
    query = (f"/audit/scorecard?department=HRSS&from={_iso(opened['present_by'] - 60)}"
             f"&to={_iso(_chain_now(env) + 1)}")  # fmt: skip
    card = ok(env.call("GET", query, "auditor"))["practice"]["inspections"]
    assert all(d["inspection_id"] != opened["id"] for d in card["overdue_deliveries"]), card


def test_a_delivery_inspected_again_counts_once_on_its_providers_card(api_env: ApiEnv) -> None:
    """The auditor chooses the inspected period and may open as many inspections of it as it likes: a
    period holding a few deliveries, inspected twice, draws the same ones twice. Counted per outcome, one
    delivery not presented counted twice on its provider's card (a failure multiplied at will), and a good
    delivery passed again and again outweighed any failure. A delivery counts once, by the outcome first
    recorded for it in the card's period."""
    env = api_env
    grant = grant_between(env, "hrss", "psb")
    with own_period(env) as (period_from, period_to):
        delivered = delivery_between(env, "hrss", "psb", grant)
    body = {"period_from": period_from, "period_to": period_to, "sample_size": 50,
            "seed_delay_blocks": 2, "present_within": MIN_PRESENT_WITHIN_S}  # fmt: skip
    opened = [ok(env.call("POST", "/inspections", "auditor", json=body), 201)["record"] for _ in range(2)]
    mine(env, 3)
    drawn = [ok(env.call("POST", f"/inspections/{i['id']}/draw", "auditor"))["record"] for i in opened]
    for d in drawn:
        assert delivered["delivery_id"] in {s["delivery_id"] for s in d["sample"]}
    pass_past(env, max(i["present_by"] for i in opened))
    recorded_from = _chain_now(env)  # the outcomes' blocks come at this time or later
    for i in opened:
        one = {"delivery_id": delivered["delivery_id"]}
        ok(env.call("POST", f"/inspections/{i['id']}/outcomes", "auditor", json=one))
    ok(env.call("POST", "/audit/index", "auditor"))
    query = f"/audit/scorecard?department=HRSS&from={_iso(recorded_from)}&to={_iso(_chain_now(env) + 2)}"
    card = ok(env.call("GET", query, "auditor"))["practice"]["inspections"]
    assert (card["sampled_outcomes"], card["not_presented"], card["pass_rate"]) == (1, 1, 0.0), card


def test_outcomes_are_sent_with_the_key_of_the_auditor_that_opened_the_inspection(api_env: ApiEnv) -> None:
    """A service started holding a second auditor's key, whose address sorts before the opener's, acts as
    that auditor; the contract takes outcomes only from the inspection's opener while it is an auditor, so
    the service records them with the opener's key (with the key it acts as, they were refused 403, every
    outcome of the opener's inspections unrecordable through it)."""
    env = api_env
    opener = to_checksum_address(env.setup.report.auditor)
    second = next(a for a in iter(Account.create, None) if a.address.lower() < opener.lower())

    def govern(action: str, account: str) -> None:
        body = {"action": action, "account": account}
        proposal = ok(env.call("POST", "/governance/proposals", "governor-1", json=body), 201)["record"]
        ok(env.call("POST", f"/governance/proposals/{proposal['id']}/approve", "governor-2"))

    grant = grant_between(env, "hrss", "psb")
    with own_period(env) as (period_from, period_to):
        delivery_between(env, "hrss", "psb", grant)
    body = {"period_from": period_from, "period_to": period_to, "sample_size": 1, "seed_delay_blocks": 2,
            "present_within": MIN_PRESENT_WITHIN_S}  # fmt: skip
    opened = ok(env.call("POST", "/inspections", "auditor", json=body), 201)["record"]
    assert to_checksum_address(opened["auditor"]) == opener
    mine(env, 3)
    drawn = ok(env.call("POST", f"/inspections/{opened['id']}/draw", "auditor"))["record"]
    sampled = drawn["sample"][0]["delivery_id"]
    env.keystore.create("second-auditor", private_key=bytes(second.key))
    govern("grant_auditor", second.address)
    try:
        pass_past(env, opened["present_by"])  # unpresented: the outcome called for is not presented
        with ServerThread(create_app(env.settings)) as url:
            record = f"{url}/inspections/{opened['id']}/outcomes"
            answer = env.client.post(record, headers=env.headers("auditor"), json={"delivery_id": sampled})
        assert [s["outcome"] for s in ok(answer)["record"]["sample"]] == ["not_presented"]
    finally:
        govern("revoke_auditor", second.address)
        env.keystore.path("second-auditor").unlink()


def test_a_closed_periods_scorecard_never_changes_an_inspection_drawn_after_it_adds_nothing(
    api_env: ApiEnv,
) -> None:
    """A closed period's card is read, more happens on the chain, and it reads the same. An inspection opened
    in the period, its presentation deadline in the period too, but drawn after the period's end (its sample
    fixed by a seed block before the draw) added its sampled deliveries to the closed card as overdue: the
    sample is known from the draw's block on, and a card counts only what the chain held by its end."""
    env = api_env
    opened, grant = _opened_drawable_past_its_deadline(env)
    query = f"/audit/scorecard?from={_iso(opened['present_by'] - 30)}&to={_iso(opened['present_by'] + 1)}"
    closed = ok(env.call("GET", query, "auditor"))
    assert ok(env.call("GET", f"/inspections/{opened['id']}", "auditor"))["status"] == "open"
    # After the period: the draw, a delivery, a demand and its answer.
    drawn = ok(env.call("POST", f"/inspections/{opened['id']}/draw", "auditor"))["record"]
    assert drawn["status"] == "drawn" and drawn["sample"]
    delivery_between(env, "hrss", "psb", grant)
    demand = publish(env, "psb", "hrss")
    ok(env.call("POST", f"/demands/{demand['id']}/answer", "hrss",
                json={"answer": "declined", "decline_reason": "not_held"}))  # fmt: skip
    pass_time(env, 2)
    assert ok(env.call("GET", query, "auditor")) == closed
    hrss = ok(env.call("GET", query + "&department=HRSS", "auditor"))["practice"]["inspections"]
    assert hrss["overdue"] == 0


def test_a_closed_periods_card_leaves_out_what_its_end_second_adds_later(api_env: ApiEnv) -> None:
    """A period ``[from, to)`` is closed once the chain's clock reads ``to``; blocks of that same second may
    still come, and what they hold is after the period. The card was evaluated at ``to`` inclusive, so a
    request decided and a demand answered in a later block of second ``to`` changed the closed card."""
    env = api_env
    demand = publish(env, "psb", "hrss")
    resource_id = register(env, "hrss")
    req = request_access(env, "psb", resource_id)
    pass_time(env, 2)
    end = _chain_now(env)
    query = f"/audit/scorecard?department=HRSS&from={_iso(demand['published_at'])}&to={_iso(end)}"
    closed = ok(env.call("GET", query, "auditor"))
    assert closed["practice"]["demands_received"]["open"] >= 1 and closed["requests"]["pending"] >= 1
    rpc = env.setup.client.w3.provider
    decline = {"answer": "declined", "decline_reason": "not_held"}
    writes = ((f"/requests/{req['id']}/approve", None), (f"/demands/{demand['id']}/answer", decline))
    for path, body in writes:
        rpc.make_request("evm_setNextBlockTimestamp", [end])  # type: ignore[arg-type]
        written = ok(env.call("POST", path, "hrss", json=body))
        assert env.setup.client.w3.eth.get_block(written["transaction"]["block_number"])["timestamp"] == end
    assert ok(env.call("GET", query, "auditor")) == closed


def test_a_demand_not_answered_by_its_due_date_reads_overdue_and_counts_on_the_addressees_scorecard(
    api_env: ApiEnv,
) -> None:
    """The contract takes a late answer (better late than never), so the due date is enforced by being
    seen: every reader's view of the demand, the CLI's line and the addressee's scorecard say it is overdue,
    after the answer too; a demand answered in time is not."""
    from tests.cli import dxl

    env = api_env
    in_time = publish(env, "civil", "samr")
    ok(env.call("POST", f"/demands/{in_time['id']}/answer", "samr",
                json={"answer": "declined", "decline_reason": "held_elsewhere"}))  # fmt: skip
    body: dict[str, Any] = {
        "document": DEMAND,
        "addressee": "SAMR",
        "due_by": env.setup.client.next_block_time() + DEMAND_NOTICE_S + 60,
    }
    demand = ok(env.call("POST", "/demands", "civil", json=body), 201)["record"]
    assert (demand["status"], demand["overdue"]) == ("open", False)
    pass_past(env, body["due_by"] + 60)
    for who in ("civil", "samr", "auditor", "health"):
        got = ok(env.call("GET", f"/demands/{demand['id']}", who))
        assert (got["status"], got["overdue"]) == ("open", True), who
    listed = ok(env.call("GET", f"/demands?addressee={env.departments['SAMR']}", "samr"))
    overdue = {d["id"]: d["overdue"] for d in listed}
    assert (overdue[demand["id"]], overdue[in_time["id"]]) == (True, False)
    code, out, err = dxl("demand", "show", str(demand["id"]), "--api", env.url, "--token",
                         env.tokens["demo-samr"])  # fmt: skip
    said = f"from CIVIL to SAMR; open; OVERDUE: due {_iso(body['due_by'])}; text verified"
    assert code == 0 and said in out, out + err

    late = ok(env.call("POST", f"/demands/{demand['id']}/answer", "samr",
                       json={"answer": "declined", "decline_reason": "not_held"}))["record"]  # fmt: skip
    assert (late["status"], late["overdue"]) == ("declined", True)
    ok(env.call("POST", "/audit/index", "auditor"))
    query = (f"/audit/scorecard?department=SAMR&from={_iso(in_time['published_at'])}"
             f"&to={_iso(env.setup.client.head_time() + 1)}")  # fmt: skip
    received = ok(env.call("GET", query, "auditor"))["practice"]["demands_received"]
    assert (
        demand["id"] in received["overdue_demand_ids"] and in_time["id"] not in received["overdue_demand_ids"]
    )
    assert received["overdue"] == len(received["overdue_demand_ids"])
    # Neither is met (both declined): the assessor has both ids to follow up.
    assert {demand["id"], in_time["id"]} <= set(received["unmet_demand_ids"])
    assert received["met"] == received["total"] - len(received["unmet_demand_ids"])


def test_a_publisher_cannot_make_the_addressee_overdue_before_it_could_answer(api_env: ApiEnv) -> None:
    """The due date is the publisher's to choose, and it marks a late addressee overdue on its scorecard. Due
    a second after publication, a demand was overdue before its addressee could answer, however promptly: any
    department could mark any other late on as many demands as it cared to publish. The service and the
    contract refuse a due date less than a week (``DEMAND_NOTICE_S``) after the block the demand is mined in,
    naming ``due_by`` and the earliest it takes, and nothing is published; a week to the second is taken."""
    env = api_env
    before = len(ok(env.call("GET", "/demands?limit=500", "auditor")))
    earliest = env.setup.client.next_block_time()
    for due_by in (earliest + 1, earliest + 86400, earliest + DEMAND_NOTICE_S - 1):
        body = {"document": DEMAND, "addressee": "SAMR", "due_by": due_by}
        refused = env.call("POST", "/demands", "civil", json=body)
        error = refused.json()["error"]
        assert (refused.status_code, error["code"], error["field"]) == (422, "INVALID_FIELD", "due_by"), error
        assert "less than 7 days to answer" in error["message"], error
        assert error["earliest_due_by"] == error["next_block_time"] + DEMAND_NOTICE_S > due_by, error
    assert len(ok(env.call("GET", "/demands?limit=500", "auditor"))) == before
    from tests.cli import dxl

    due = datetime.fromtimestamp(earliest + 86400, UTC).strftime("%Y-%m-%d")
    code, out, err = dxl("demand", "publish", "--title", DEMAND["title"], "--purpose", DEMAND["purpose"],
                         "--legal-basis", DEMAND["legal_basis"], "--to", "SAMR", "--due", due,
                         "--api", env.url, "--token", env.tokens["demo-civil"])  # fmt: skip
    assert code != 0 and "less than 7 days to answer" in out + err, out + err
    assert len(ok(env.call("GET", "/demands?limit=500", "auditor"))) == before
    # A week to the second from the block it is mined in: the addressee has its week, then may be overdue.
    # A few seconds ahead of the head and this machine's clock: the service's check reads either.
    at = max(env.setup.client.next_block_time(), env.setup.client.head_time() + 1) + 5
    env.setup.client.w3.provider.make_request("evm_setNextBlockTimestamp", [at])  # type: ignore[arg-type]
    body = {"document": DEMAND, "addressee": "SAMR", "due_by": at + DEMAND_NOTICE_S}
    demand = ok(env.call("POST", "/demands", "civil", json=body), 201)["record"]
    assert (demand["published_at"], demand["due_by"], demand["overdue"]) == (at, at + DEMAND_NOTICE_S, False)


def test_a_demand_cannot_be_addressed_to_a_suspended_department(api_env: ApiEnv) -> None:
    """A suspended department cannot answer (the ledger refuses its every write), yet a demand could be
    addressed to it: overdue a week later, unmet on its card, however soon it was reinstated, and any
    department could so pile demands on one while governance had it suspended. The console offered active
    departments only; the service and the contract now refuse the others (409 DEPARTMENT_NOT_ACTIVE naming
    ``addressee``), and take the demand again once it is reinstated."""
    env = api_env
    samr = env.departments["SAMR"]

    def govern(action: str) -> None:
        body = {"action": action, "department_id": samr}
        proposal = ok(env.call("POST", "/governance/proposals", "governor-1", json=body), 201)["record"]
        ok(env.call("POST", f"/governance/proposals/{proposal['id']}/approve", "governor-2"))

    before = len(ok(env.call("GET", "/demands?limit=500", "auditor")))
    due_by = env.setup.client.next_block_time() + 30 * 86400
    body = {"document": DEMAND, "addressee": "SAMR", "due_by": due_by}
    govern("suspend_department")
    try:
        refused = env.call("POST", "/demands", "civil", json=body)
        error = refused.json()["error"]
        refusal = (refused.status_code, error["code"], error["field"])
        assert refusal == (409, "DEPARTMENT_NOT_ACTIVE", "addressee"), error
        assert "SAMR" in error["message"], error
        assert len(ok(env.call("GET", "/demands?limit=500", "auditor"))) == before
    finally:
        govern("reinstate_department")
    ok(env.call("POST", "/demands", "civil", json=body), 201)


def test_each_pair_of_departments_weighs_once_and_the_cli_reads_the_scorecard_http_does(
    api_env: ApiEnv, tmp_path: Path
) -> None:
    """A consumer with two agreements with a provider scores it twice in a period (once per agreement, as the
    contract allows); another, with one, once. The provider's averages weigh each scoring department once,
    so two 5s from CIVIL and a 1 from PSB average 3.0, not 3.67. The CLI's scorecard, computed from the
    same index and node, is the HTTP one, figure for figure; and the figures are those an assessor
    recomputes from the period's verified audit report."""
    from tests.cli import dxl

    env = api_env
    pass_time(env, 2)
    since = env.setup.client.head_time()
    for consumer, score in (("civil", 5), ("civil", 5), ("psb", 1)):
        grant = grant_between(env, "health", consumer)
        delivery = delivery_between(env, "health", consumer, grant)
        scores = {"timeliness": score, "completeness": score, "accuracy": score}
        ok(env.call("POST", f"/agreements/{grant['agreement_id']}/evaluations", consumer,
                    json={"delivery_id": delivery["delivery_id"], **scores}), 201)  # fmt: skip
    pass_time(env, 2)
    # A closed period: evaluated at its end, whenever and by whichever path it is read.
    period = ("--from", _iso(since), "--to", _iso(env.setup.client.head_time()))
    ok(env.call("POST", "/audit/index", "auditor"))
    http = ok(
        env.call("GET", f"/audit/scorecard?department=HEALTH&from={period[1]}&to={period[3]}", "auditor")
    )
    assert http["practice"]["evaluations"]["as_provider"] == {
        "count": 3, "scorers": 2, "reciprocal": 0, "timeliness": 3.0, "completeness": 3.0, "accuracy": 3.0,
    }  # fmt: skip
    assert http["deliveries"]["sent"] == 3
    code, out, err = dxl("audit", "scorecard", "--department", "HEALTH", *period, "--json")
    assert code == 0, err
    # Figure for figure the HTTP card, and the node it read and the block it holds at beside it.
    shown = json.loads(out)
    read = shown.pop("node")
    assert shown == http
    held = env.setup.client.w3.eth.get_block(read["block"])
    assert (read["rpc_url"], read["block_timestamp"]) == (str(env.settings.rpc_url), held["timestamp"])

    # An assessor recomputes the figures from the period's audit report, once the report verifies against
    # the node: HEALTH's deliveries, and the scores of the agreements it provides, each pair once.
    code, out, err = dxl("audit", "report", "--out", tmp_path / "r", "--department", "HEALTH", *period)
    assert code == 0, err
    rpc = env.settings.rpc_url or env.setup.client.endpoint.rpc_url
    code, out, err = dxl("audit", "verify", tmp_path / "r" / "report.json", "--rpc", rpc)
    assert code == 0, out + err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    health = env.departments["HEALTH"]
    sent = [r for r in report["rows"] if r["event"] == "DeliveryRecorded" and r["provider_id"] == health]
    provided = {r["agreement_id"] for r in report["rows"] if r["event"] == "AgreementConcluded"
                and r["provider_id"] == health}  # fmt: skip
    by_pair: dict[int, list[int]] = {}
    for row in report["practice"]["rows"]:
        f = row["fields"]
        if row["event"] == "EvaluationRecorded" and f["side"] == 0 and f["agreementId"] in provided:
            by_pair.setdefault(f["scorer"], []).append(f["timeliness"])
    recomputed = sum(sum(v) / len(v) for v in by_pair.values()) / len(by_pair)
    card = http["practice"]["evaluations"]["as_provider"]
    assert (len(sent), sum(map(len, by_pair.values())), len(by_pair), round(recomputed, 3)) == (
        http["deliveries"]["sent"], card["count"], card["scorers"], card["timeliness"],
    )  # fmt: skip


def test_two_departments_scoring_each_other_5_in_a_loop_are_one_reciprocal_voice_as_the_chain_holds(
    api_env: ApiEnv,
) -> None:
    """HRSS and CIVIL each consume the other's data and score each other 5 on everything; PSB, HRSS's other
    consumer, scores it 1. HRSS's card gives the loop one voice among two (3.0, not 3.67) and says that
    voice was returned (``reciprocal``): CIVIL's card rests on HRSS's 5s alone, and says so. Every figure is
    recomputed here from the practice contract's own ``EvaluationRecorded`` logs and the agreements' parties,
    not from the service's index."""
    env = api_env
    pass_time(env, 2)
    since = env.setup.client.head_time()
    for provider, consumer, score in (("hrss", "civil", 5), ("civil", "hrss", 5), ("hrss", "psb", 1)):
        grant = grant_between(env, provider, consumer)
        delivery = delivery_between(env, provider, consumer, grant)["delivery_id"]
        path = f"/agreements/{grant['agreement_id']}/evaluations"
        ok(
            env.call(
                "POST",
                path,
                consumer,
                json={"delivery_id": delivery, "timeliness": score, "completeness": score, "accuracy": score},
            ),
            201,
        )
        ok(env.call("POST", path, provider, json={"delivery_id": delivery, "purpose_compliance": 5}), 201)
    pass_time(env, 2)
    until_ = env.setup.client.head_time()
    ok(env.call("POST", "/audit/index", "auditor"))

    def card(code: str) -> dict[str, Any]:
        query = f"/audit/scorecard?department={code}&from={_iso(since)}&to={_iso(until_)}"
        return dict(ok(env.call("GET", query, "auditor"))["practice"]["evaluations"])

    # From the chain alone: the period's scores, the agreements' parties, each pair's mean, returned pairs.
    deployment = load_deployment(env.settings.home)
    assert deployment.sharing_practice is not None
    w3 = env.setup.client.w3
    practice = w3.eth.contract(address=to_checksum_address(deployment.sharing_practice.address),
                               abi=load_artifact("SharingPractice").abi)  # fmt: skip
    scores: dict[int, dict[tuple[int, int], list[int]]] = {0: {}, 1: {}}  # side -> (scorer, scored) -> scores
    for log in practice.events.EvaluationRecorded().get_logs(
        from_block=deployment.sharing_practice.block_number
    ):
        if not since <= w3.eth.get_block(log["blockNumber"])["timestamp"] < until_:
            continue
        a = log["args"]
        agreement = ok(env.call("GET", f"/agreements/{a['agreementId']}", "auditor"))
        scored = agreement["provider"] if a["side"] == 0 else agreement["consumer"]
        score = a["timeliness"] if a["side"] == 0 else a["purposeCompliance"]
        scores[a["side"]].setdefault((a["scorer"], scored), []).append(score)

    def recomputed(department: int, side: int) -> tuple[int, int, float]:
        pairs = {pair: v for pair, v in scores[side].items() if pair[1] == department}
        returned = [pair for pair in pairs if (pair[1], pair[0]) in scores[side]]
        mean = sum(sum(v) / len(v) for v in pairs.values()) / len(pairs)
        return len(pairs), len(returned), round(mean, 3)

    hrss, civil = env.departments["HRSS"], env.departments["CIVIL"]
    got_hrss, got_civil = card("HRSS"), card("CIVIL")
    assert recomputed(hrss, 0) == (2, 1, 3.0)
    for department, got in ((hrss, got_hrss), (civil, got_civil)):
        provider, consumer = got["as_provider"], got["as_consumer"]
        assert (provider["scorers"], provider["reciprocal"], provider["timeliness"]) == recomputed(
            department, 0
        )
        assert (consumer["scorers"], consumer["reciprocal"], consumer["purpose_compliance"]) == recomputed(
            department, 1
        )
    assert (got_civil["as_provider"]["scorers"], got_civil["as_provider"]["reciprocal"]) == (1, 1)
    assert got_civil["as_provider"]["timeliness"] == 5.0


def test_a_publishers_audit_report_holds_the_answer_to_its_demand(api_env: ApiEnv, tmp_path: Path) -> None:
    """A demand's answer concerns its publisher as much as the answerer: the publisher's report carries the
    answer beside the demand (it carried the demand alone), for a demand addressed to no one too, also when
    the demand was published before the report's period; `dxl audit verify` re-derives the same rows."""
    from tests.cli import dxl

    env = api_env
    addressed, to_no_one = publish(env, "civil", "psb"), publish(env, "civil", None)
    held = register(env, "hrss")
    pass_time(env, 2)
    since = env.setup.client.head_time()
    # The addressee declines; a demand to no one is answered with a resource (declined by no one).
    for demand, answerer, body in (
        (addressed, "psb", {"answer": "declined", "decline_reason": "not_held"}),
        (to_no_one, "hrss", {"answer": "new_resource", "resource_id": held}),
    ):
        ok(env.call("POST", f"/demands/{demand['id']}/answer", answerer, json=body))
    ok(env.call("POST", "/audit/index", "auditor"))
    rpc = env.settings.rpc_url or env.setup.client.endpoint.rpc_url
    out_dir = tmp_path / "r"
    code, out, err = dxl("audit", "report", "--out", out_dir, "--department", "CIVIL", "--from", _iso(since),
                         "--to", "2200-01-01")  # fmt: skip
    assert code == 0, err
    rows = json.loads((out_dir / "report.json").read_text())["practice"]["rows"]
    answered = {
        r["fields"]["demandId"]: r["fields"]["answeredBy"] for r in rows if r["event"] == "DemandAnswered"
    }
    assert answered == {addressed["id"]: env.departments["PSB"], to_no_one["id"]: env.departments["HRSS"]}
    code, out, err = dxl("audit", "verify", out_dir / "report.json", "--rpc", rpc)
    assert code == 0 and ": report verified" in out, out + err


def test_an_audit_report_holds_rejections_and_withdrawals_and_verify_rechecks_them(
    api_env: ApiEnv, tmp_path: Path
) -> None:
    """A rejection concerns the rejected answerer as much as the publisher, a withdrawal the addressee as
    much: each one's report carries the row (a demand to no one's answerer is no party to its publication),
    and `dxl audit verify` re-derives them and names a changed reason code."""
    from tests.cli import dxl

    env = api_env
    pass_time(env, 2)
    since = env.setup.client.head_time()
    to_no_one, to_samr = publish(env, "health", None), publish(env, "health", "samr")
    unfit = register(env, "civil")
    ok(env.call("POST", f"/demands/{to_no_one['id']}/answer", "civil",
                json={"answer": "new_resource", "resource_id": unfit}))  # fmt: skip
    ok(env.call("POST", f"/demands/{to_no_one['id']}/reject", "health", json={"reason": "not_current"}))
    ok(env.call("POST", f"/demands/{to_samr['id']}/withdraw", "health"))
    ok(env.call("POST", "/audit/index", "auditor"))
    rpc = env.settings.rpc_url or env.setup.client.endpoint.rpc_url
    for code_, expected in (
        ("CIVIL", ["DemandAnswered", "DemandAnswerRejected"]),
        ("SAMR", ["DemandPublished", "DemandWithdrawn"]),
    ):
        out_dir = tmp_path / code_
        code, out, err = dxl("audit", "report", "--out", out_dir, "--department", code_,
                             "--from", _iso(since), "--to", "2200-01-01")  # fmt: skip
        assert code == 0, err
        report = json.loads((out_dir / "report.json").read_text())
        rows = [r for r in report["practice"]["rows"] if r["event"].startswith("Demand")]
        assert [r["event"] for r in rows] == expected, rows
        code, out, err = dxl("audit", "verify", out_dir / "report.json", "--rpc", rpc)
        assert code == 0 and ": report verified" in out, out + err
    rejected = next(r for r in report_rows(tmp_path / "CIVIL") if r["event"] == "DemandAnswerRejected")
    assert rejected["fields"]["reasonCode"] == int(RejectionReason.NOT_CURRENT)
    report = json.loads((tmp_path / "CIVIL" / "report.json").read_text())
    for row in report["practice"]["rows"]:
        if row["event"] == "DemandAnswerRejected":
            row["fields"]["reasonCode"] = int(RejectionReason.INCOMPLETE)
    (tmp_path / "CIVIL" / "report.json").write_text(json.dumps(report))
    code, out, _ = dxl("audit", "verify", tmp_path / "CIVIL" / "report.json", "--rpc", rpc)
    assert code == 1 and "reasonCode" in out, out


def report_rows(out_dir: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((out_dir / "report.json").read_text())["practice"]["rows"]
    return rows


def test_demand_met_is_the_chains_figure_end_to_end(api_env: ApiEnv) -> None:
    """Five demands of one period: answered with a new resource then delivered to the publisher (met); with an
    existing resource delivered before the answer, and after it to another department only (not met);
    declined; left open; addressed to no one, answered and delivered (met). The consortium's and each
    addressee's demand met are recomputed from the practice contract's views and the ledger's
    ``DeliveryRecorded`` logs read with web3, not from the service's index."""
    env = api_env
    pass_time(env, 2)
    since = env.setup.client.head_time()

    def exchange(provider: str, consumer: str, resource_id: int) -> dict[str, Any]:
        req = request_access(env, consumer, resource_id)
        ok(env.call("POST", f"/requests/{req['id']}/approve", provider))
        ok(env.call("POST", f"/requests/{req['id']}/signatures", consumer, json={}))
        agreement = ok(env.call("POST", f"/requests/{req['id']}/signatures", provider, json={}))["agreement"]
        body = {"agreement_id": agreement["id"], "expires_at": agreement["valid_until"]}
        return dict(ok(env.call("POST", "/grants", provider, json=body), 201)["record"])

    def answer(demand: dict[str, Any], who: str, body: dict[str, Any]) -> None:
        ok(env.call("POST", f"/demands/{demand['id']}/answer", who, json=body))

    existing = register(env, "samr")
    to_publisher_early = exchange("samr", "psb", existing)
    to_other = exchange("samr", "health", existing)
    met_new, existing_d, declined, open_d = (
        publish(env, "psb", to) for to in ("hrss", "samr", "civil", "civil")
    )
    to_no_one = publish(env, "psb", None)
    delivery_between(env, "samr", "psb", to_publisher_early)  # before the answer: does not meet it
    pass_time(env, 2)  # block times are whole seconds: "before" is an earlier second
    answer(existing_d, "samr", {"answer": "existing_resource", "resource_id": existing})
    delivery_between(env, "samr", "health", to_other)  # after it, to another department only
    new = register(env, "hrss")
    answer(met_new, "hrss", {"answer": "new_resource", "resource_id": new})
    delivery_between(env, "hrss", "psb", exchange("hrss", "psb", new))
    answer(declined, "civil", {"answer": "declined", "decline_reason": "not_held"})
    civil_new = register(env, "civil")
    answer(to_no_one, "civil", {"answer": "new_resource", "resource_id": civil_new})
    delivery_between(env, "civil", "psb", exchange("civil", "psb", civil_new))
    pass_time(env, 2)
    until_ = env.setup.client.head_time()

    # The chain alone: every demand of the period as the contract's view holds it, every delivery by its
    # grant's agreement (resource, consumer) and block time.
    deployment = load_deployment(env.settings.home)
    assert deployment.sharing_practice is not None
    w3 = env.setup.client.w3
    practice = w3.eth.contract(address=to_checksum_address(deployment.sharing_practice.address),
                               abi=load_artifact("SharingPractice").abi)  # fmt: skip
    ledger = w3.eth.contract(
        address=to_checksum_address(deployment.address), abi=load_artifact("DataExchangeLedger").abi
    )
    delivered = []
    for log in ledger.events.DeliveryRecorded().get_logs(from_block=deployment.block_number):
        agreement = ledger.functions.agreement(
            ledger.functions.grant(log["args"]["grantId"]).call()[0]
        ).call()
        delivered.append((agreement[1], agreement[3], w3.eth.get_block(log["blockNumber"])["timestamp"]))
    demands = {}
    for number in range(1, practice.functions.demandCount().call() + 1):
        d = practice.functions.demand(number).call()
        if since <= d[2] < until_:
            demands[number] = d
    assert set(demands) == {d["id"] for d in (met_new, existing_d, declined, open_d, to_no_one)}

    def met(d: Any) -> bool:  # publisher 0, answer 6, answered at 8, resource 9 (Demand's field order)
        return d[6] in (1, 2) and any(
            (resource, consumer) == (d[9], d[0]) and d[8] <= at <= until_
            for resource, consumer, at in delivered
        )

    def card(code: str | None) -> dict[str, Any]:
        where = "" if code is None else f"department={code}&"
        query = f"/audit/scorecard?{where}from={_iso(since)}&to={_iso(until_)}"
        return dict(ok(env.call("GET", query, "auditor"))["practice"]["demands_received"])

    consortium = card(None)
    unmet = sorted(n for n, d in demands.items() if not met(d))
    assert unmet == sorted([existing_d["id"], declined["id"], open_d["id"]])
    figures = (consortium["total"], consortium["met"], consortium["met_rate"], consortium["unmet_demand_ids"])
    assert figures == (5, 2, 0.4, unmet)
    for code, addressed in (
        ("HRSS", [met_new]),
        ("SAMR", [existing_d]),
        ("CIVIL", [declined, open_d, to_no_one]),
    ):
        got = card(code)
        ids = [d["id"] for d in addressed]
        assert (got["total"], got["met"], got["unmet_demand_ids"]) == (
            len(ids), sum(met(demands[i]) for i in ids), [i for i in sorted(ids) if not met(demands[i])],
        ), code  # fmt: skip


def test_audit_report_carries_the_practice_and_verify_rechecks_it(api_env: ApiEnv, tmp_path: Path) -> None:
    from tests.cli import dxl

    env = api_env
    demand = publish(env, "health", "samr")
    ok(env.call("POST", f"/demands/{demand['id']}/answer", "samr",
                json={"answer": "declined", "decline_reason": "not_held"}))  # fmt: skip
    ok(env.call("POST", "/audit/index", "auditor"))
    # Up to a far end: tests sharing the module's node move its clock past the wall clock, the default end.
    code, out, err = dxl(
        "audit", "report", "--out", tmp_path / "r", "--department", "SAMR", "--to", "2200-01-01", "--json"
    )
    assert code == 0, err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    rows = report["practice"]["rows"]
    mine = [r for r in rows if r["fields"].get("demandId") == demand["id"]]
    assert [r["event"] for r in mine] == ["DemandPublished", "DemandAnswered"]
    assert mine[1]["fields"]["declineCode"] == int(DeclineReason.NOT_HELD)
    # SAMR's report holds only its own practice rows: no evaluation or inspection it is no party to (an
    # outcome of an inspection that drew one of SAMR's deliveries, as an earlier test's may, is its own).
    samr = env.departments["SAMR"]
    others = [r for r in rows if not r["event"].startswith("Demand")]
    assert all(
        r["event"] == "InspectionOutcomeRecorded" and int(r["fields"]["deliveryId"][2:10], 16) == samr
        for r in others
    ), others
    rpc = env.settings.rpc_url or env.setup.client.endpoint.rpc_url
    for name in ("report.json", "report.csv"):
        code, out, err = dxl("audit", "verify", tmp_path / "r" / name, "--rpc", rpc, "--json")
        assert code == 0 and json.loads(out)["practice_events"] == len(rows), out + err
    code, out, _ = dxl("audit", "verify", tmp_path / "r" / "report.json", "--rpc", rpc)
    # (an inspection an earlier test let expire is named too: the auditor's conduct shows in any report)
    assert code == 0 and f", {len(rows)} practice events re-derived" in out and ": report verified" in out, (
        out
    )
    mine[1]["fields"]["declineCode"] = 1 + int(DeclineReason.NOT_HELD)
    rows.remove(mine[0])
    (tmp_path / "r" / "report.json").write_text(json.dumps(report))
    code, out, _ = dxl("audit", "verify", tmp_path / "r" / "report.json", "--rpc", rpc)
    assert code == 1 and "declineCode" in out and "missing practice row: DemandPublished" in out


def _mined_later(env: ApiEnv, send: Any, at: int) -> Any:
    """``send()``'s answer when its transaction, checked on the head and sent, is mined in a block whose time
    is ``at``: the node's clock moved between the service's check and the mining."""
    rpc = env.setup.client.w3.provider
    answers: list[Any] = []
    waiting = in_pool(env)
    rpc.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        sender = threading.Thread(target=lambda: answers.append(send()))
        sender.start()
        until(lambda: in_pool(env) > waiting, "the write reached the node's pool", timeout=30)
        rpc.make_request("evm_setNextBlockTimestamp", [at])  # type: ignore[arg-type]
        mine(env)
        sender.join(timeout=30)
    finally:
        rpc.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    assert answers, "the write never answered"
    return answers[0]


def _claims_left(env: ApiEnv) -> list[Any]:
    """Idempotency claims without a kept answer, and journaled transactions not known mined (the journal would
    send them again)."""
    import sqlite3

    with sqlite3.connect(env.settings.home / "dxl.sqlite3") as conn:
        claims = conn.execute("SELECT key FROM api_idempotency WHERE status_code IS NULL").fetchall()
        unsettled = conn.execute("SELECT tx_hash FROM api_tx_journal WHERE status = 'sent'").fetchall()
    return claims + unsettled


def test_a_due_day_passed_between_the_check_and_the_mining_is_refused_naming_due_by(api_env: ApiEnv) -> None:
    env = api_env
    before = len(ok(env.call("GET", "/demands?limit=500", "auditor")))
    due_by = env.setup.client.next_block_time() + DEMAND_NOTICE_S + 60
    key = {"Idempotency-Key": f"due-by-race-{due_by}"}
    body = {"document": DEMAND, "due_by": due_by}
    # Mined a minute after the service's check: the due date is then a second short of a week away.
    refused = _mined_later(
        env, lambda: env.call("POST", "/demands", "psb", json=body, headers=key), due_by - DEMAND_NOTICE_S + 1
    )
    error = refused.json()["error"]
    assert (refused.status_code, error["code"], error.get("field")) == (422, "INVALID_FIELD", "due_by"), error
    assert error["revert"] == "PracticeInvalidField" and "due date" in error["message"], error
    assert len(ok(env.call("GET", "/demands?limit=500", "auditor"))) == before
    assert _claims_left(env) == []
    # The key keeps the refusal: its retry is told the same, and sends nothing.
    again = env.call("POST", "/demands", "psb", json=body, headers=key)
    assert (again.status_code, again.json()) == (422, refused.json())
    assert len(ok(env.call("GET", "/demands?limit=500", "auditor"))) == before


def _pages_read_at(env: ApiEnv, path: str, who: str, **params: Any) -> tuple[list[list[Any]], set[int]]:
    """Every page of a list (as :func:`pages`) and the blocks its pages say they were read at."""
    found, blocks, response = [], set(), env.call("GET", path, who, params=params)
    while True:
        found.append(ok(response))
        blocks.add(int(response.headers["X-Indexed-Block"]))
        following = response.links.get("next")
        if following is None:
            return found, blocks
        response = env.call("GET", following["url"], who)


def test_demand_lists_and_inspections_answer_what_the_chain_says_record_by_record(api_env: ApiEnv) -> None:
    """GET /demands (every filter, every page) and GET /inspections read the audit index, healed and brought
    up to the chain's head first: the very records, in the same order, that the chain's views answer one by
    one (GET /demands/{id} and GET /inspections/{id}, which read the contract), a demand published and
    answered a moment before included, and each page names the block it was read at (``X-Indexed-Block``)."""
    from node.deploy import practice_client

    env = api_env
    practice = practice_client(env.setup.client.endpoint, env.settings.home)
    samr, civil = env.departments["SAMR"], env.departments["CIVIL"]
    made = [publish(env, who, to) for who, to in (("samr", "civil"), ("civil", "samr"), ("samr", None),
                                                   ("civil", "samr"), ("samr", "civil"))]  # fmt: skip
    period_from, period_to = closed_period(env)
    body = {"period_from": period_from, "period_to": period_to, "sample_size": 1, "seed_delay_blocks": 200}
    ok(env.call("POST", "/inspections", "auditor", json=body), 201)  # open until 200 blocks are mined
    for demand, who in ((made[1], "samr"), (made[4], "civil")):
        ok(env.call("POST", f"/demands/{demand['id']}/answer", who,
                    json={"answer": "declined", "decline_reason": "not_held"}))  # fmt: skip
    filters: list[dict[str, Any]] = [
        {}, {"publisher": samr}, {"addressee": civil}, {"open": "true"}, {"publisher": civil, "open": "true"},
        {"addressee": samr, "open": "false"}, {"publisher": samr, "addressee": civil},
    ]  # fmt: skip

    def kept(d: dict[str, Any], flt: dict[str, Any]) -> bool:
        return (
            d["publisher"] == flt.get("publisher", d["publisher"])
            and d["addressee"] == flt.get("addressee", d["addressee"])
            and (flt.get("open") != "true" or d["status"] == "open")
        )

    readers = ("auditor", "hrss")
    for _ in range(5):  # read again if a block was mined meanwhile (the service's drawer draws on its own)
        head = int(env.setup.client.w3.eth.block_number)
        demands = [ok(env.call("GET", f"/demands/{n}", "auditor"))
                   for n in range(int(practice.call("demandCount")), 0, -1)]  # fmt: skip
        inspections = {
            who: [ok(env.call("GET", f"/inspections/{n}", who))
                  for n in range(int(practice.call("inspectionCount")), 0, -1)]
            for who in readers
        }  # fmt: skip
        listed = {str(flt): _pages_read_at(env, "/demands", "psb", limit=2, **flt) for flt in filters}
        listed_inspections = {who: _pages_read_at(env, "/inspections", who, limit=2) for who in readers}
        if int(env.setup.client.w3.eth.block_number) == head:
            break
    assert demands[0]["id"] == made[-1]["id"] and demands[0]["status"] == "declined" == demands[3]["status"]
    for flt in filters:
        got, blocks = listed[str(flt)]
        assert [d for page in got for d in page] == [d for d in demands if kept(d, flt)], flt
        assert all(len(page) <= 2 for page in got) and blocks == {head}
    # Run after the module's other tests, the inspections compared are open, drawn and expired, with outcomes.
    assert inspections["auditor"]
    for who in readers:
        got, blocks = listed_inspections[who]
        assert [i for page in got for i in page] == inspections[who] and blocks == {head}


def test_an_audit_database_indexed_without_the_practice_contract_reindexes_from_its_deployment(
    api_env: ApiEnv, tmp_path: Path
) -> None:
    """An audit database made before the sharing practice was indexed (its progress names none) re-reads
    the chain from the practice contract's deployment block once, and then matches the chain (``dxl audit
    check``, against the deployment's contracts), every demand published so far listed."""
    from node.audit import practice_index
    from node.audit.check import check_store
    from node.audit.events import EventCodec
    from node.audit.indexer import CompanionSource, Indexer, read_progress
    from node.audit.service import ledger_abi
    from node.audit.store import open_store
    from node.deploy import practice_client
    from node.rpc import JsonRpc

    publish(api_env, "psb", "hrss")
    deployment = load_deployment(api_env.settings.home)
    assert deployment.sharing_practice is not None
    recorded = deployment.sharing_practice
    source = CompanionSource(recorded.address, recorded.block_number)
    engine = open_store(f"sqlite:///{tmp_path / 'audit.sqlite3'}")
    codec = EventCodec(ledger_abi())

    def indexer(rpc: JsonRpc, practice: CompanionSource | None) -> Indexer:
        return Indexer(engine, rpc, codec, contract=deployment.address, chain_id=deployment.chain_id,
                       start_block=deployment.block_number, practice=practice)  # fmt: skip

    def listed() -> list[int]:
        page = practice_index.demands(engine, practice_index.DemandFilter(), limit=500)
        return [d.demand_id for d in page.items]

    with JsonRpc(str(api_env.settings.rpc_url)) as rpc:
        head = rpc.block_number()
        indexer(rpc, None).sync(to_block=head)
        before = read_progress(engine)
        assert listed() == [] and before is not None and before.practice is None
        indexer(rpc, source).sync(to_block=head)
        progress = read_progress(engine)
        assert progress is not None and (progress.practice, progress.last_block) == (source.address, head)
        count = int(practice_client(api_env.setup.client.endpoint, api_env.settings.home).call("demandCount"))
        assert listed() == list(range(count, 0, -1)) and count >= 1
        result = check_store(engine, rpc, codec)
        assert result.ok and result.events_checked > 0, [d.describe() for d in result.differences]
    engine.dispose()


def test_an_agreements_evaluations_answer_what_the_contract_recorded_page_by_page(api_env: ApiEnv) -> None:
    """GET /agreements/{id}/evaluations reads the audit index, healed and brought up to the chain's head
    first: every page, for the auditor and for either party, holds the agreement's own ``EvaluationRecorded``
    logs as the contract emitted them, in order (scores given a moment before included), the contract's
    ``scored(agreement, period, side)`` view confirming each, and names the block it was read at
    (``X-Indexed-Block``). A cursor names a position in the list, as before; a department outside the
    agreement sees nothing."""
    from node.audit.queries import encode_cursor
    from node.deploy import practice_client

    env = api_env
    grant = grant_between(env, "hrss", "psb")
    other = grant_between(env, "hrss", "psb")  # scored in between: never in the first agreement's list
    agreement_id = grant["agreement_id"]
    path = f"/agreements/{agreement_id}/evaluations"
    assert ok(env.call("GET", path, "auditor")) == []
    for g, scorer, body in (
        (grant, "psb", {"timeliness": 5, "completeness": 4, "accuracy": 3, "comment": "按时交付"}),
        (other, "psb", {"timeliness": 2, "completeness": 2, "accuracy": 2}),
        (grant, "hrss", {"purpose_compliance": 4, "comment": "用途相符"}),
        (other, "hrss", {"purpose_compliance": 1}),
    ):
        delivery = delivery_between(env, "hrss", "psb", g)["delivery_id"]
        ok(env.call("POST", f"/agreements/{g['agreement_id']}/evaluations", scorer,
                    json={"delivery_id": delivery, **body}), 201)  # fmt: skip

    deployment = load_deployment(env.settings.home)
    assert deployment.sharing_practice is not None
    practice = practice_client(env.setup.client.endpoint, env.settings.home)
    contract = env.setup.client.w3.eth.contract(
        address=to_checksum_address(deployment.sharing_practice.address),
        abi=load_artifact("SharingPractice").abi,
    )
    logs = contract.events.EvaluationRecorded().get_logs(
        from_block=deployment.sharing_practice.block_number, argument_filters={"agreementId": agreement_id}
    )
    parties = ok(env.call("GET", f"/agreements/{agreement_id}", "auditor"))
    expected = []
    for log in logs:
        a = log["args"]
        assert practice.call("scored", agreement_id, a["period"], a["side"]) is True
        provider_side = a["side"] == 0
        scores = {k: a[k] for k in ("timeliness", "completeness", "accuracy")}
        if not provider_side:
            scores = {"purpose_compliance": a["purposeCompliance"]}
        expected.append({
            "agreement_id": agreement_id, "period": a["period"],
            "scored_side": "provider" if provider_side else "consumer", "scorer": a["scorer"],
            "scored": parties["provider"] if provider_side else parties["consumer"],
            "scores": scores,
            "comment_hash": "0x" + bytes(a["commentHash"]).hex(), "block_number": log["blockNumber"],
        })  # fmt: skip
    assert [e["scored_side"] for e in expected] == ["provider", "consumer"]

    def shown(e: dict[str, Any]) -> dict[str, Any]:
        comment = e.pop("comment")
        e["comment_hash"] = "0x" + "00" * 32 if comment is None else comment["hash"]
        return e

    last = logs[-1]["blockNumber"]
    for who in ("auditor", "psb", "hrss"):
        for limit in (1, 2, 500):
            got, blocks = _pages_read_at(env, path, who, limit=limit)
            assert [shown(e) for page in got for e in page] == expected, (who, limit)
            assert all(len(page) <= limit for page in got) and min(blocks) >= last
    whole = ok(env.call("GET", path, "psb"))
    comments = [{"comment": "按时交付"}, {"comment": "用途相符"}]
    assert [c["comment"] and c["comment"]["document"] for c in whole] == comments
    # A cursor handed out when the list was read from the chain: the position the page ended on.
    assert [shown(e) for e in ok(env.call("GET", path, "psb", params={"cursor": encode_cursor(0)}))] == (
        expected[1:]
    )
    for cursor in (encode_cursor(len(expected)), encode_cursor(2**40)):
        past = env.call("GET", path, "auditor", params={"cursor": cursor})
        assert (past.status_code, past.json()["error"]["field"]) == (422, "cursor")
    outside = env.call("GET", path, "health")
    assert (outside.status_code, outside.json()["error"]["code"]) == (404, "AGREEMENT_NOT_FOUND")


def _without_functions(code: bytes, names: set[str]) -> bytes:
    """``code`` with the dispatcher's selector of each function of ``names`` moved one down: calls of them
    reach no function and revert without a reason, as in a SharingPractice built before they existed, and
    every other call is routed as before (no other selector lies between the two values)."""
    from node.deploy import _abi_type

    functions = [e for e in load_artifact("SharingPractice").abi if e.get("type") == "function"]
    selectors = {keccak(f"{e['name']}({','.join(_abi_type(i) for i in e['inputs'])})".encode())[:4]: e["name"]
                 for e in functions}  # fmt: skip
    for selector, name in selectors.items():
        if name in names:
            moved = (int.from_bytes(selector, "big") - 1).to_bytes(4, "big")
            assert moved not in selectors and b"\x63" + selector in code
            code = code.replace(b"\x63" + selector, b"\x63" + moved)
    return code


@contextmanager
def _older_practice(
    env: ApiEnv, tmp_path: Path, names: set[str]
) -> Iterator[tuple[Any, Callable[[str], dict[str, str]]]]:
    """A service on the module's deployment whose SharingPractice, its records kept, is of a build without
    the functions ``names`` (deployed by an older dxl and kept on upgrade), for the ``with`` body: the
    contract is given such code (its dispatcher without them) and the service starts on a record of it, with
    a database of its own; yields its client and the headers of a demo principal ("psb"). The code is
    restored after."""
    from fastapi.testclient import TestClient

    from node.deploy import offers_function

    home = tmp_path / "home"
    shutil.copytree(
        env.settings.home, home, ignore=shutil.ignore_patterns("*.sqlite3*", "node", "demo-tokens.json")
    )
    record = json.loads((home / "deployment.json").read_text())
    address = to_checksum_address(record["sharing_practice"]["address"])
    current = bytes(env.setup.client.w3.eth.get_code(address))
    older = _without_functions(current, names)
    assert not any(offers_function(older, load_artifact("SharingPractice").abi, name) for name in names)
    record["sharing_practice"]["code_hash"] = "0x" + keccak(older).hex()  # as the older build's record says
    (home / "deployment.json").write_text(json.dumps(record))
    settings = env.settings.model_copy(update={"home": home, "database_url": None})
    provider = env.setup.client.w3.provider
    provider.make_request("anvil_setCode", [address, "0x" + older.hex()])  # type: ignore[arg-type]
    try:
        with TestClient(create_app(settings)) as client:
            tokens = ensure_demo_tokens(settings)
            yield client, lambda who: {"Authorization": f"Bearer {tokens[f'demo-{who}']}"}
    finally:
        provider.make_request("anvil_setCode", [address, "0x" + current.hex()])  # type: ignore[arg-type]


def _refused_as_older(response: Any, operation: str, name: str) -> None:
    error = response.json()["error"]
    assert response.status_code == 409, response.text
    assert error["code"] == "PRACTICE_PREDATES_OPERATION", error
    assert f"kept on upgrade, predates {operation}: it has no {name}" in error["message"], error


def test_a_practice_contract_older_than_rejection_and_withdrawal_refuses_them_by_name(
    api_env: ApiEnv, tmp_path: Path
) -> None:
    """A SharingPractice deployed by an older dxl and kept on upgrade has no ``rejectAnswer`` and no
    ``withdrawDemand``: sent anyway, each reverted without a reason and the publisher read a bare 409
    LEDGER_REJECTED. The service says the deployed contract predates the operation, and sends nothing."""
    env = api_env
    answered = publish(env, "psb", "hrss")
    ok(env.call("POST", f"/demands/{answered['id']}/answer", "hrss",
                json={"answer": "new_resource", "resource_id": register(env, "hrss")}))  # fmt: skip
    unanswered = publish(env, "psb", "hrss")
    with _older_practice(env, tmp_path, {"rejectAnswer", "withdrawDemand"}) as (client, headers):
        psb = headers("psb")
        head = env.setup.client.block_number()
        rejected = client.post(
            f"/demands/{answered['id']}/reject", headers=psb, json={"reason": "incomplete"}
        )
        _refused_as_older(rejected, "the rejection of an answer", "rejectAnswer")
        withdrawn = client.post(f"/demands/{unanswered['id']}/withdraw", headers=psb)
        _refused_as_older(withdrawn, "the withdrawal of a demand", "withdrawDemand")
        assert env.setup.client.block_number() == head  # nothing sent
        shown = client.get(f"/demands/{answered['id']}", headers=psb).json()
        assert shown["answer"]["answered_by"] == env.departments["HRSS"] and shown["rejections"] == []


def test_a_practice_contract_older_than_evaluation_by_batch_refuses_a_receipt_by_the_same_code(
    api_env: ApiEnv, tmp_path: Path
) -> None:
    """A receipt delivered at volume offered as an evaluation's evidence to a SharingPractice older than
    evaluation by batch: refused as the rejection and the withdrawal are on such a contract (it answered
    NO_DELIVERY_UNDER_AGREEMENT, as if the receipt were not under the agreement)."""
    env = api_env
    grant = grant_between(env, "psb", "hrss")
    with _older_practice(env, tmp_path, {"scoreProviderForBatch", "scoreConsumerForBatch"}) as (
        client,
        headers,
    ):
        body = receipt_body(grant)
        sent = client.post("/receipts", headers=headers("psb"), json={"receipts": [body]})
        assert sent.status_code == 202, sent.text
        hrss, ids = headers("hrss"), {"delivery_ids": [body["delivery_id"]]}

        def final() -> bool:
            found = client.post("/receipts/lookup", headers=hrss, json=ids).json()["receipts"]
            return [r["status"] for r in found] == ["final"]

        until(final, "the batch to be mined")
        scores = {"timeliness": 4, "completeness": 5, "accuracy": 5}
        path = f"/agreements/{grant['agreement_id']}/evaluations"
        scored = client.post(path, headers=hrss, json={"delivery_id": body["delivery_id"], **scores})
        evidence = f"receipt {body['delivery_id']} (it takes a ledger delivery only)"
        _refused_as_older(scored, f"evaluation on the evidence of {evidence}", "scoreProviderForBatch")
        assert scored.json()["error"]["field"] == "delivery_id"

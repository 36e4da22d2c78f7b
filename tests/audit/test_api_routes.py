"""The /audit routes: history, provenance, scorecard; 404 and 422 with error codes; parties only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.auth import Principal, Role, issue_token
from api.settings import ApiSettings
from node.audit.events import EventCodec
from node.audit.queries import department_id, encode_cursor
from node.audit.service import AuditContext
from node.endpoint import NodeEndpoint
from node.rpc import JsonRpc
from tests.audit.audit_scenario import Scenario, period_end
from tests.cli import dxl
from tests.pdf import pdf_text


@pytest.fixture(scope="module")
def indexed(indexed_for_reading: Engine) -> Engine:
    """Every test here only reads the index: one for the module (tests/audit/conftest.py)."""
    return indexed_for_reading


class AuditClient(TestClient):
    """The module's app, with the headers of a token of each caller its tests speak as."""

    tokens: dict[str, str]

    def headers_for(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture(scope="module")
def client(
    indexed: Engine,
    codec: EventCodec,
    abi: list[dict[str, Any]],
    scenario: Scenario,
    tmp_path_factory: pytest.TempPathFactory,
    node_endpoint: NodeEndpoint,
) -> Iterator[AuditClient]:
    """One app for the module, as one service answers many requests: the routes only read the index, and
    each test's requests carry the tokens made here."""
    tmp_path = tmp_path_factory.mktemp("audit-routes")
    settings = ApiSettings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'api.sqlite3'}")
    app = create_app(settings, connect=False)
    with AuditClient(app) as c:
        state = app.state.dxl
        state.extra["audit"] = AuditContext(
            engine=indexed, rpc_url=node_endpoint.rpc_url, chain_id=scenario.client.chain_id,
            contract=scenario.contract, start_block=scenario.start_block, codec=codec, abi=abi,
            settings=settings,
        )  # fmt: skip
        with state.sessions() as session:
            tokens = {
                "auditor": issue_token(session, principal=Principal(Role.AUDITOR), name="a"),
                "TAX": issue_token(session, principal=Principal(Role.DEPARTMENT, department="TAX"), name="t"),
                "STATS": issue_token(
                    session, principal=Principal(Role.DEPARTMENT, department="STATS"), name="s"
                ),
            }
            session.commit()
        c.tokens = tokens
        yield c


def test_history_pages_and_filters(client: AuditClient) -> None:
    auth = client.headers_for("auditor")
    first = client.get("/audit/history", params={"department": "HEALTH", "limit": 2}, headers=auth)
    assert first.status_code == 200 and len(first.json()["items"]) == 2
    second = client.get(
        "/audit/history", params={"department": "HEALTH", "limit": 2, "cursor": first.json()["next_cursor"]},
        headers=auth,
    )  # fmt: skip
    assert second.json()["items"][0]["location"] != first.json()["items"][-1]["location"]
    only = client.get("/audit/history", params={"event": "DeliveryDisputed"}, headers=auth).json()["items"]
    assert [i["event"] for i in only] == ["DeliveryDisputed"]


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/audit/history", {"cursor": "garbage"}, 422, "VALIDATION_ERROR"),
        # A cursor of the right form for a position past the index's signed 64-bit integers (a 500 before).
        ("/audit/history", {"cursor": encode_cursor(2**63)}, 422, "VALIDATION_ERROR"),
        ("/audit/history", {"event": "Nope"}, 422, "VALIDATION_ERROR"),
        ("/audit/history", {"event": ["DeliveryRecorded"] * 2}, 422, "VALIDATION_ERROR"),
        ("/audit/history", {"from": "yesterday"}, 422, "VALIDATION_ERROR"),
        ("/audit/history", {"department": "NOPE"}, 404, "DEPARTMENT_NOT_FOUND"),
        # Digits that are not ASCII ("²" passes str.isdigit, not int()) are neither a code nor an id.
        ("/audit/history", {"counterpart": "²"}, 422, "VALIDATION_ERROR"),
        ("/audit/scorecard", {"department": "٣"}, 422, "VALIDATION_ERROR"),
        ("/audit/history", {"department": "health"}, 422, "VALIDATION_ERROR"),
        ("/audit/provenance/0x" + "11" * 32, {}, 404, "NOT_FOUND"),
        ("/audit/provenance/0x1234", {}, 422, "VALIDATION_ERROR"),
        ("/audit/deliveries/0x" + "11" * 32 + "/provenance", {}, 404, "DELIVERY_NOT_FOUND"),
        ("/audit/scorecard", {"from": "2026-02-01", "to": "2026-01-01"}, 422, "VALIDATION_ERROR"),
        # uint64 ids past the index's signed 64-bit integers: nothing there (the database cannot bind them)
        (f"/audit/receipt-batches/{2**64 - 2}/0/provenance", {}, 404, "RECEIPT_BATCH_NOT_FOUND"),
    ],
)
def test_bad_input(client: AuditClient, path: str, params: dict[str, Any], status: int, code: str) -> None:
    response = client.get(path, params=params, headers=client.headers_for("auditor"))
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize(
    ("path", "name", "value"),
    [("/audit/history", "from", "0001-01-01"), ("/audit/history", "to", "1969-12-31T23:59:59Z"),
     ("/audit/scorecard", "from", "0001-01-01T00:00:00+23:59")],
)  # fmt: skip
def test_a_moment_before_1970_is_refused_naming_its_parameter(
    client: AuditClient, path: str, name: str, value: str
) -> None:
    """The chain's clock starts at the Unix epoch: an earlier moment is refused under the parameter's own
    name (not ``from_time``, the index's)."""
    response = client.get(path, params={name: value}, headers=client.headers_for("auditor"))
    assert response.status_code == 422, response.text
    assert (response.json()["error"]["code"], response.json()["error"]["field"]) == ("VALIDATION_ERROR", name)


def test_history_period_in_lower_case_rfc3339_is_the_same_period(client: AuditClient) -> None:
    auth = client.headers_for("auditor")
    upper = client.get("/audit/history", params={"from": "2000-01-01T00:00:00Z"}, headers=auth)
    lower = client.get("/audit/history", params={"from": "2000-01-01t00:00:00z"}, headers=auth)
    assert upper.status_code == lower.status_code == 200, lower.text
    assert lower.json() == upper.json()


@pytest.mark.parametrize("param", ["resource", "agreement"])
def test_history_filter_past_the_indexed_range_is_empty(client: AuditClient, param: str) -> None:
    response = client.get("/audit/history", params={param: 2**64 - 1}, headers=client.headers_for("auditor"))
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []


def test_provenance_only_for_parties(client: AuditClient, scenario: Scenario, indexed: Engine) -> None:
    path = "/audit/provenance/0x" + scenario.commitments["d1"].hex()
    ok = client.get(path, headers=client.headers_for("TAX"))
    assert ok.status_code == 200 and ok.json()["deliveries"][0]["status"] == "acknowledged"
    # Not a party: answered exactly as a commitment nothing recorded.
    hidden = client.get(path, headers=client.headers_for("STATS"))
    unknown = client.get("/audit/provenance/0x" + "11" * 32, headers=client.headers_for("STATS"))
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json()["error"]["code"] == unknown.json()["error"]["code"] == "NOT_FOUND"
    assert hidden.text.replace(path.rsplit("/", 1)[1], "<c>") == unknown.text.replace("0x" + "11" * 32, "<c>")
    other = client.get("/audit/history", params={"department": "HEALTH"}, headers=client.headers_for("TAX"))
    assert other.status_code == 403
    # Its own history by its id, as a scorecard takes it: the same as by its code.
    tax = department_id(indexed, "TAX")
    by_id = client.get("/audit/history", params={"department": str(tax)}, headers=client.headers_for("TAX"))
    by_code = client.get("/audit/history", params={"department": "TAX"}, headers=client.headers_for("TAX"))
    assert by_id.status_code == by_code.status_code == 200, by_id.text
    assert by_id.json() == by_code.json()


def test_scorecard(client: AuditClient, scenario: Scenario) -> None:
    card = client.get(
        "/audit/scorecard",
        params={"department": "HEALTH", "to": period_end(scenario)},
        headers=client.headers_for("auditor"),
    )
    assert card.status_code == 200
    assert card.json()["requests"]["received"] == 4


def test_a_scorecard_names_its_department_by_code_and_id_however_asked(
    client: AuditClient, scenario: Scenario, indexed: Engine
) -> None:
    """Asked by code or by id, the card names its department the same way, by both (it answered the id
    alone, so a card asked for by code did not say the code it was asked for); the consortium's names none."""
    health = department_id(indexed, "HEALTH")
    auditor, to = client.headers_for("auditor"), period_end(scenario)
    cards = [
        client.get("/audit/scorecard", params={"department": named, "to": to}, headers=auditor)
        for named in ("HEALTH", str(health))
    ]
    assert [c.status_code for c in cards] == [200, 200], cards[0].text
    by_code, by_id = (c.json() for c in cards)
    assert by_code["department"] == by_id["department"] == {"id": health, "code": "HEALTH"}
    assert by_code == by_id
    consortium = client.get("/audit/scorecard", params={"to": to}, headers=auditor).json()
    assert consortium["department"] is None


def test_an_open_period_is_evaluated_on_the_chain_clock(
    client: AuditClient, scenario: Scenario, rpc: JsonRpc
) -> None:
    # The node's clock an hour ahead of this machine's, as after a deadline test or on a skewed node: a
    # scorecard with no end asked for counts what the chain holds up to its head, not up to time.time().
    rpc.call("evm_increaseTime", 3600)
    rpc.call("evm_mine")
    head = int(rpc.call("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
    auditor = client.headers_for("auditor")
    card = client.get("/audit/scorecard", params={"department": "HEALTH"}, headers=auditor).json()
    assert card["period"]["evaluated_at"] >= head and card["period"]["to"] > head
    closed = client.get(
        "/audit/scorecard", params={"department": "HEALTH", "to": period_end(scenario)}, headers=auditor
    ).json()
    assert card["requests"]["received"] == closed["requests"]["received"] == 4
    assert card["resources"] == closed["resources"] and card["resources"]["total"] >= 1


def test_a_period_ending_at_the_epoch_is_empty_not_open(client: AuditClient) -> None:
    # "to=1970-01-01" is the Unix time 0, a given end: the period before it is empty, not "up to now".
    auditor = client.headers_for("auditor")
    response = client.get("/audit/scorecard", params={"to": "1970-01-01"}, headers=auditor)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_provenance_of_an_uploaded_payload(client: AuditClient, scenario: Scenario) -> None:
    import base64
    import json

    body = {
        "manifest": json.loads((scenario.home / "d1.manifest.json").read_text()),
        "payload_base64": base64.b64encode((scenario.home / "d1.csv").read_bytes()).decode(),
    }
    found = client.post("/audit/provenance/payload", json=body, headers=client.headers_for("TAX"))
    assert found.status_code == 200, found.text
    assert found.json()["matches_manifest"] and found.json()["deliveries"][0]["delivery_id"]
    bad = client.post("/audit/provenance/payload", json={**body, "payload_base64": "***"},
                      headers=client.headers_for("TAX"))  # fmt: skip
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "VALIDATION_ERROR"


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every plain value of a JSON scorecard by its path (``requests.rejected``, ``a.b[0].c``)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
        for i, item in enumerate(value):
            yield from _leaves(item, f"{path}[{i}]")
    else:
        yield path, value


def test_a_scorecard_as_pdf_holds_the_json_scorecards_figures(
    client: AuditClient, scenario: Scenario
) -> None:
    auditor = client.headers_for("auditor")
    params = {"department": "HEALTH", "to": period_end(scenario)}
    card = client.get("/audit/scorecard", params=params, headers=auditor).json()
    answer = client.get("/audit/scorecard", params={**params, "format": "pdf"}, headers=auditor)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    end = datetime.fromtimestamp(card["period"]["to"], UTC).date().isoformat()
    assert (
        answer.headers["content-disposition"]
        == f'attachment; filename="scorecard-HEALTH-1970-01-01-{end}.pdf"'
    )
    lines = pdf_text(answer.content)
    assert lines[:2] == ["Scorecard", "Department: HEALTH (id 1)"], lines[:2]
    period = next(line for line in lines if line.startswith("Period: "))
    assert period.startswith(f"Period: 1970-01-01T00:00:00Z to {end}T"), period
    # Where the figures were read: the ledger contract, the block the index held (the chain's head here).
    at = scenario.client.block_number()
    assert f"ledger {scenario.contract}, block {at} (" in next(line for line in lines if "ledger" in line)
    # Every indicator of the JSON card (the CSV's rows), with its value, one row each.
    table = lines[lines.index(next(x for x in lines if x.startswith("indicator "))) + 1 :]
    shown = dict([*line.split(None, 1), ""][:2] for line in table if line and not line[0].isspace())
    leaves = list(_leaves(card))
    assert len(leaves) > 40 and len(shown) == len(leaves), sorted(set(shown) ^ {p for p, _ in leaves})
    for path, value in leaves:
        if value is None or isinstance(value, str):
            assert shown[path] == (value or ""), path
        elif isinstance(value, list):
            assert shown[path].split() == [str(v) for v in value], path
        else:
            assert float(shown[path]) == value, (path, shown[path], value)
    assert shown["requests.rejected"] == "1" and card["requests"]["rejected"] == 1
    # The charts' data drawn as bars, beside the figures they show.
    assert any(line.split() == ["rejected", "1"] for line in lines), lines
    # The same card at the same block: the same bytes (no creation time, no random document id).
    again = client.get("/audit/scorecard", params={**params, "format": "pdf"}, headers=auditor)
    assert again.content == answer.content


def test_a_scorecard_pdf_in_chinese(client: AuditClient, scenario: Scenario) -> None:
    params = {"department": "TAX", "to": period_end(scenario), "format": "pdf", "lang": "zh"}
    answer = client.get("/audit/scorecard", params=params, headers=client.headers_for("TAX"))
    assert answer.status_code == 200, answer.text
    lines = pdf_text(answer.content)
    assert lines[0] == "考核评分" and lines[1].startswith("部门：TAX (id "), lines[:2]
    assert any(line.startswith("期间：1970-01-01T00:00:00Z 至 ") for line in lines), lines
    assert "收到的申请" in lines and "全部指标" in lines
    received = client.get(
        "/audit/scorecard", params={**params, "format": "json"}, headers=client.headers_for("TAX")
    )
    count = received.json()["requests"]["received"]
    assert any(line.split() == ["收到", str(count)] for line in lines), lines


def test_a_department_gets_no_other_departments_scorecard_pdf(
    client: AuditClient, scenario: Scenario
) -> None:
    params = {"department": "HEALTH", "to": period_end(scenario), "format": "pdf"}
    refused = client.get("/audit/scorecard", params=params, headers=client.headers_for("TAX"))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN", refused.text
    assert not refused.content.startswith(b"%PDF")
    del params["department"]
    consortium = client.get("/audit/scorecard", params=params, headers=client.headers_for("TAX"))
    assert consortium.status_code == 200 and consortium.headers["content-type"] == "application/pdf"


def test_dxl_audit_scorecard_writes_the_apis_pdf(
    client: AuditClient,
    scenario: Scenario,
    indexed: Engine,
    node_endpoint: NodeEndpoint,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``dxl audit scorecard --pdf`` and ``GET /audit/scorecard?format=pdf``: one generator, the same file
    from the same index at the same block."""
    for name, value in (
        ("DXL_HOME", str(scenario.home)), ("DXL_RPC_URL", node_endpoint.rpc_url),
        ("DXL_CHAIN_ID", str(node_endpoint.chain_id)), ("DXL_DATABASE_URL", str(indexed.url)),
    ):  # fmt: skip
        monkeypatch.setenv(name, value)
    end, path = period_end(scenario), tmp_path / "card.pdf"
    code, out, err = dxl(
        "audit", "scorecard", "--department", "HEALTH", "--to", end, "--lang", "zh", "--pdf", path
    )
    assert code == 0 and f"PDF written to {path}" in out, out + err
    params = {"department": "HEALTH", "to": end, "format": "pdf", "lang": "zh"}
    answer = client.get("/audit/scorecard", params=params, headers=client.headers_for("auditor"))
    assert answer.status_code == 200 and path.read_bytes() == answer.content
    code, out, err = dxl("audit", "scorecard", "--lang", "fr", "--pdf", path)
    assert code == 2 and "fr" in err, out + err

"""The exchanges the console's browser tests walk through, built on the demo consortium through the API.

* HEALTH asks HRSS for social insurance records (conditional): HRSS approves, both sign, HRSS grants and
  delivers a real CSV payload with a signed manifest, and HEALTH acknowledges it with the root it computed.
* CIVIL asks PSB for household registration (unconditional, approved on arrival): PSB delivers a JSON Lines
  payload, and CIVIL disputes it with another root.
* SAMR's request for the social insurance records is rejected by HRSS, so scorecards show a rejection.
* HRSS also sends HEALTH three receipts at volume (``POST /receipts``), anchored in one batch that HEALTH
  acknowledges, so the agreement's timeline has an anchored batch too.
* governor-1 proposes to appoint an auditor and leaves it open, so governance has a proposal to approve.
* The sharing practice (``practice``): HEALTH asks HRSS for data and HRSS answers with its resource at the
  end (delivered before the answer: not met yet); CIVIL
  asks PSB with an answer due a week later (the least notice the ledger gives an addressee), left unanswered
  until it is overdue; SAMR asks any department.
  The auditor opens two inspections of the whole evaluation periods holding the deliveries above (the clock
  passed to their end), every delivery sampled: one with a month to present,
  in which HRSS presents its CSV delivery (MATCH), and one with the least time to present the service takes
  (the notice a sampled provider is given from the draw, and a day), whose deadline the clock then passes.
  Then HRSS delivers the CSV payload to HEALTH again, in the
  current evaluation period, and scores HEALTH's purpose compliance on it, leaving HEALTH's score of HRSS to
  the tests (evidence of a score is at most a period old).

At the end the audit trail is indexed up to the chain head, so every page reads all of it at once.

``python -m tests.api.console_scenario URL DXL_HOME`` builds the same on a running ``dxl run`` (its demo
tokens and keystore), for looking at the console by hand: it moves the embedded node's clock as the tests
move theirs (``DXL_RPC_URL``, default the local node), past the end of the evaluation period holding the
deliveries (an inspection covers whole periods, over: 30 days away at most, a day with
``DXL_EVALUATION_PERIOD=86400``) and past the demand's and the inspection's deadlines.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from node.keys import KeyStore
from node.types import DEMAND_NOTICE_S, MIN_PRESENT_WITHIN_S
from verifier.commitment import commit_payload, new_salt
from verifier.delivery_ids import new_delivery_id
from verifier.leaves import Chunking, PayloadFormat
from verifier.manifest import Manifest, build_manifest, sign_manifest

INSURANCE_CSV = (
    "person_id,insurance_type,contribution_base,months_paid,status\n"
    "110101199001011234,养老保险,8200.00,96,参保缴费\n"
    "110101198505052345,医疗保险,6500.00,120,参保缴费\n"
    '110101197712123456,"失业保险, 工伤保险",7300.00,15,暂停缴费\n'
    "110101200202024567,养老保险,5100.00,8,参保缴费\n"
    "110101196603036789,医疗保险,9900.00,240,退休\n"
).encode()
HOUSEHOLD_JSONL = (
    '{"person_id":"110101199001011234","name":"张伟","household_id":"H-0001","address":"东城区"}\n'
    '{"person_id":"110101198505052345","name":"王芳","household_id":"H-0002","address":"西城区"}\n'
    '{"person_id":"110101197712123456","name":"李娜","household_id":"H-0003","address":"朝阳区"}\n'
).encode()


@dataclass
class Delivered:
    """One delivered payload: its bytes, its signed manifest and what the chain recorded."""

    payload: bytes
    manifest: dict[str, Any]
    record: dict[str, Any]

    @property
    def delivery_id(self) -> str:
        return str(self.record["delivery_id"])

    def tampered(self) -> bytes:
        """The payload with one record changed (its third line), same size: what a verifier must catch."""
        lines = self.payload.split(b"\n")
        lines[2] = lines[2].replace(b"0", b"9", 1)
        assert lines[2] != self.payload.split(b"\n")[2]
        return b"\n".join(lines)


@dataclass
class Practice:
    """The demands and inspections of the scenario, by what the tests look for."""

    answered_demand: int = 0  # HEALTH -> HRSS, answered with HRSS's resource
    overdue_demand: int = 0  # CIVIL -> PSB, unanswered past its due time
    open_demand: int = 0  # SAMR -> any department
    inspection: int = 0  # a month to present; HRSS presented its CSV delivery
    lapsed_inspection: int = 0  # its deadline passed with nothing presented


@dataclass
class Scenario:
    acknowledged: Delivered
    disputed: Delivered
    #: A delivery of HRSS to HEALTH in the evaluation period the scenario ends in: the evidence of the
    #: agreement's scores (evidence is at most a period old, and the inspected deliveries are older).
    evidence: Delivered
    agreements: dict[str, int] = field(default_factory=dict)  # "HEALTH<-HRSS" -> agreement id
    receipt_batch: dict[str, Any] = field(default_factory=dict)
    rejected_request: int = 0
    open_proposal: int = 0
    practice: Practice = field(default_factory=Practice)


class _Api:
    def __init__(self, client: httpx.Client, tokens: dict[str, str]) -> None:
        self.client = client
        self.tokens = tokens

    def __call__(self, method: str, path: str, who: str, body: Any = None, status: int = 200) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens['demo-' + who]}"}
        if method != "GET":
            headers["Idempotency-Key"] = secrets.token_hex(16)
        response = self.client.request(method, path, headers=headers, json=body)
        assert response.status_code == status, f"{method} {path} as {who}: {response.text}"
        return response.json()


def _b32() -> str:
    return "0x" + secrets.token_hex(32)


def _terms(api: _Api, resource_id: int) -> dict[str, Any]:
    """Readable sharing terms asking for the first two fields of the resource's catalog document."""
    columns = api("GET", f"/resources/{resource_id}", "auditor")["metadata"]["csvw:column"]
    return {
        "csvw:column": [{"csvw:name": c["csvw:name"]} for c in columns[:2]],
        "dcatap:applicableLegislation": "《社会保险法》第七十五条",
        "dcat:mediaType": "text/csv",
        "dct:accrualPeriodicity": "P1D",
        "odrl:delayPeriod": "PT4H",
        "odrl:permission": ["use"],
        "odrl:prohibition": ["distribute"],
        "dxl:retentionDays": 180,
        "odrl:duty": {
            "odrl:assigner": "每日更新参保数据",
            "odrl:assignee": "仅用于医保结算资格核验，到期删除",
        },
    }


def _agreement(
    api: _Api,
    consumer: str,
    provider: str,
    resource_id: int,
    purpose: str,
    terms: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An agreement concluded by custodied signatures: over readable ``terms``, or over bare hashes."""
    now = int(time.time())
    stated: dict[str, Any] = {"terms": terms} if terms else {"scope_hash": _b32(), "terms_hash": _b32()}
    request = api("POST", "/requests", consumer, {
        "resource_id": resource_id, "purpose": purpose, **stated,
        "valid_from": now - 3600, "valid_until": now + 180 * 86400,
    }, status=201)["record"]  # fmt: skip
    if request["status"] != "approved":
        api("POST", f"/requests/{request['id']}/approve", provider)
    api("POST", f"/requests/{request['id']}/signatures", consumer, {})
    outcome = api("POST", f"/requests/{request['id']}/signatures", provider, {})
    assert outcome["status"] == "concluded", outcome
    return dict(outcome["agreement"])


def _deliver(
    api: _Api, keystore: KeyStore, agreement: dict[str, Any], codes: tuple[str, str], payload: bytes, fmt: str
) -> Delivered:
    provider, consumer = codes
    grant = api("POST", "/grants", provider.lower(), {
        "agreement_id": agreement["id"], "expires_at": agreement["valid_until"],
    }, status=201)["record"]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="dxl-console-") as tmp:
        path = Path(tmp) / f"payload.{fmt}"
        path.write_bytes(payload)
        commitment = commit_payload(
            path, salt=new_salt(), chunking=Chunking(PayloadFormat(fmt)), keep_leaf_hashes=True
        )
    manifest: Manifest = build_manifest(
        commitment,
        delivery_id=new_delivery_id(agreement["provider"]),
        agreement_id=agreement["id"],
        grant_id=grant["id"],
        provider=provider,
        consumer=consumer,
    )
    manifest = sign_manifest(manifest, keystore.unlock(f"dept-{provider.lower()}"))
    record = api("POST", "/deliveries", provider.lower(), {
        "delivery_id": "0x" + manifest.delivery_id.hex(), "grant_id": grant["id"],
        "commitment": "0x" + manifest.root.hex(), "byte_size": manifest.byte_size,
        "record_count": manifest.record_count,
    }, status=201)["record"]  # fmt: skip
    return Delivered(payload, manifest.to_dict(), record)


def _receipts(api: _Api, agreement: dict[str, Any], grant_id: int) -> dict[str, Any]:
    """Three receipts posted at volume, waited for until their batch is anchored, then acknowledged."""
    bodies = [
        {"delivery_id": "0x" + new_delivery_id(agreement["provider"]).hex(), "grant_id": grant_id,
         "commitment": _b32(), "byte_size": 2048, "record_count": 4}
        for _ in range(3)
    ]  # fmt: skip
    api("POST", "/receipts", "hrss", {"receipts": bodies}, status=202)
    ids = {"delivery_ids": [b["delivery_id"] for b in bodies]}
    deadline = time.monotonic() + 30
    while True:
        found = api("POST", "/receipts/lookup", "health", ids)["receipts"]
        if len(found) == 3 and all(r["status"] == "final" for r in found):
            break
        assert time.monotonic() < deadline, f"receipts not anchored: {found}"
        time.sleep(0.1)
    batch = dict(found[0]["batch"])
    api("POST", f"/receipts/batches/{grant_id}/{batch['first_sequence']}/acknowledge", "health")
    return batch


DEMAND = {
    "title": "就业失业登记信息", "purpose": "医疗救助对象就业状况核对",
    "legal_basis": "《社会救助暂行办法》第十一条", "fields": ["公民身份号码", "就业状态", "登记日期"],
}  # fmt: skip


def _practice(
    api: _Api,
    resources: dict[str, int],
    agreement: int,
    good: Delivered,
    bad: Delivered,
    pass_past: Callable[[int], None],
    *,
    waits_a_week: bool,
) -> Practice:
    """The demands, the evaluation and the inspections of the module docstring. Deadlines are set by the
    chain's clock (a delivery's ``recorded_at``, a demand's ``published_at``), which a test node may run ahead
    of this machine's, and passed on it (``pass_past``). ``waits_a_week``: the clock can pass the overdue
    demand's week and the second inspection's four days (a test node's can; on the wall clock they are not
    waited for: the demand reads due, not overdue, and the second inspection's sample is still to present)."""
    # Every delivery from the acknowledged CSV to the disputed JSON Lines, the receipts between them too: the
    # whole evaluation periods holding them (an inspection covers whole periods), over when it is opened.
    length = int(api("GET", "/evaluation-period", "auditor")["length_seconds"])
    period = {"period_from": int(good.record["recorded_at"]) // length * length,
              "period_to": (int(bad.record["recorded_at"]) // length + 1) * length}  # fmt: skip
    pass_past(period["period_to"] - 1)
    # Due a month after the period's end, where the clock now is.
    month = period["period_to"] + 30 * 86400
    demand = {"document": DEMAND, "addressee": "HRSS", "due_by": month}
    answered = api("POST", "/demands", "health", demand, status=201)["record"]
    chain_now = int(answered["published_at"])
    opened = [
        api(
            "POST",
            "/inspections",
            "auditor",
            {**period, "sample_size": 50, "present_within": within},
            status=201,
        )
        # A month: the clock passes the overdue demand's week below, and HRSS presents after it.
        for within in (30 * 86400, MIN_PRESENT_WITHIN_S)
    ]
    # The writes below are the blocks after the inspections' seed blocks that the draws need (a test node
    # mines one per transaction, `dxl run` every 0.25 s).
    household = {
        "title": "户籍人口变动信息",
        "purpose": "低保对象户籍核查",
        "legal_basis": "《户口登记条例》",
    }
    demand = {"document": household, "addressee": "PSB", "due_by": chain_now + DEMAND_NOTICE_S + 3}
    overdue = api("POST", "/demands", "civil", demand, status=201)["record"]
    employers = {"title": "企业社保缴费人数", "purpose": "企业信用评价", "legal_basis": "《公示条例》"}
    anyone = api("POST", "/demands", "samr", {"document": employers, "due_by": month}, status=201)["record"]
    # Drawn before the second inspection's deadline (a sample drawn after it was presentable by no one, and
    # the contract takes no not-presented outcome for it); then the clock passes that deadline and the
    # demand's due time.
    drawn = [api("POST", f"/inspections/{i['record']['id']}/draw", "auditor")["record"] for i in opened]
    deadline = int(opened[1]["record"]["present_by"])
    if waits_a_week:
        pass_past(max(int(overdue["due_by"]), deadline))
    csv = good.delivery_id
    assert csv in {x["delivery_id"] for x in drawn[0]["sample"]}, drawn[0]
    payload = base64.b64encode(good.payload).decode()
    presented = {"delivery_id": csv, "manifest": good.manifest, "payload_base64": payload}
    api("POST", f"/inspections/{drawn[0]['id']}/presentations", "hrss", presented)
    return Practice(answered["id"], overdue["id"], anyone["id"], drawn[0]["id"], drawn[1]["id"])


def _wait_past(api: _Api, moment: int) -> None:
    """Wait on the wall clock until the chain's latest block is past ``moment`` (a node mining at intervals,
    as under `dxl run`, stamps its blocks with this machine's clock)."""
    while int(api("GET", "/evaluation-period", "auditor")["chain_time"]) <= moment:
        time.sleep(0.25)


def build(
    client: httpx.Client,
    tokens: dict[str, str],
    keystore: KeyStore,
    pass_past: Callable[[int], None] | None = None,
) -> Scenario:
    """Walk the exchanges of the module docstring through the API; returns what the tests look for.

    ``pass_past(moment)`` brings the chain's clock past a block time the scenario waits for (a demand's due
    time, an inspection's deadline): tests move the node's clock; without it the wall clock is waited on."""
    api = _Api(client, tokens)
    passed = pass_past or (lambda moment: _wait_past(api, moment))
    api("POST", "/audit/index", "auditor")  # the catalog list reads the audit index: bring it to the head
    resources = {r["owner_code"]: r["id"] for r in api("GET", "/resources", "auditor") if r["metadata"]}
    health = _agreement(api, "health", "hrss", resources["HRSS"], "医保结算资格核验 (eligibility check)",
                        _terms(api, resources["HRSS"]))  # fmt: skip
    good = _deliver(api, keystore, health, ("HRSS", "HEALTH"), INSURANCE_CSV, "csv")
    api("POST", f"/deliveries/{good.delivery_id}/acknowledge", "health", {
        "consumer_commitment": good.record["commitment"]})  # fmt: skip
    batch = _receipts(api, health, good.record["grant_id"])
    civil = _agreement(api, "civil", "psb", resources["PSB"], "低保对象户籍核查 (household check)")
    bad = _deliver(api, keystore, civil, ("PSB", "CIVIL"), HOUSEHOLD_JSONL, "jsonl")
    api("POST", f"/deliveries/{bad.delivery_id}/dispute", "civil", {"consumer_commitment": _b32()})
    # The chain's clock, which a test node runs ahead of this machine's by the weeks tests pass on it.
    now = max(int(time.time()), int(api("GET", "/evaluation-period", "auditor")["chain_time"]))
    rejected = api("POST", "/requests", "samr", {
        "resource_id": resources["HRSS"], "purpose": "企业用工核查 (employer audit)", "scope_hash": _b32(),
        "terms_hash": _b32(), "valid_from": now - 3600, "valid_until": now + 30 * 86400,
    }, status=201)["record"]  # fmt: skip
    api("POST", f"/requests/{rejected['id']}/reject", "hrss", {"reason_code": 3})
    practice = _practice(api, resources, health["id"], good, bad, passed, waits_a_week=pass_past is not None)
    if pass_past is not None:
        # The tests' scores come minutes later: at the start of an evaluation period, they are scored in the
        # period HRSS's score below is (against `dxl run`, whose clock is the wall clock's, not waited for).
        clock = api("GET", "/evaluation-period", "auditor")
        pass_past(int(clock["ends_at"]) - 1)
    evidence = _deliver(api, keystore, health, ("HRSS", "HEALTH"), INSURANCE_CSV, "csv")
    score = {"delivery_id": evidence.delivery_id, "purpose_compliance": 5, "comment": "按约定用途使用"}
    api("POST", f"/agreements/{health['id']}/evaluations", "hrss", score, status=201)
    # HRSS answers HEALTH's demand with the resource it has delivered to HEALTH, nothing delivered since: an
    # answer not met yet (met once a delivery follows it).
    answer = {
        "answer": "existing_resource",
        "resource_id": resources["HRSS"],
        "note": "已编目，按有条件共享申请",
    }
    api("POST", f"/demands/{practice.answered_demand}/answer", "hrss", answer)
    # Proposed once the practice's week has passed on the clock: a proposal left open that long expires.
    appoint = {"action": "grant_auditor", "account": "0x" + secrets.token_hex(20)}
    proposal = api("POST", "/governance/proposals", "governor-1", appoint, status=201)["record"]
    api("POST", "/audit/index", "auditor")
    return Scenario(
        receipt_batch=batch,
        acknowledged=good,
        disputed=bad,
        evidence=evidence,
        agreements={"HEALTH<-HRSS": health["id"], "CIVIL<-PSB": civil["id"]},
        rejected_request=rejected["id"],
        open_proposal=proposal["id"],
        practice=practice,
    )


def main(argv: list[str]) -> None:
    import json

    from node.keys import development_passphrase

    url, home = argv[0], Path(argv[1])
    tokens = {k: v["token"] for k, v in json.loads((home / "secrets/demo-tokens.json").read_text()).items()}
    keystore = KeyStore(home / "keys", development_passphrase(home / "secrets/keystore-passphrase"))
    out = Path(argv[2]) if len(argv) > 2 else Path(tempfile.mkdtemp(prefix="dxl-console-files-"))
    # Made before the exchanges are built: a minute of them was lost to a directory that did not exist.
    out.mkdir(parents=True, exist_ok=True)
    from node.rpc import JsonRpc

    def pass_past(moment: int) -> None:
        # The embedded node of `dxl run` (anvil): its next block carries the time asked for, then is mined.
        with JsonRpc(os.environ.get("DXL_RPC_URL", "http://127.0.0.1:8545")) as rpc:
            head = int(rpc.call("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
            rpc.call("evm_setNextBlockTimestamp", max(moment, head) + 1)
            rpc.call("evm_mine")

    with httpx.Client(base_url=url, timeout=120) as client:
        scenario = build(client, tokens, keystore, pass_past)
    for name, d in (("acknowledged.csv", scenario.acknowledged), ("disputed.jsonl", scenario.disputed)):
        (out / name).write_bytes(d.payload)
        (out / f"{name}.manifest.json").write_text(json.dumps(d.manifest, indent=2, ensure_ascii=False))
        (out / f"tampered-{name}").write_bytes(d.tampered())
    print(f"agreements {scenario.agreements}, proposal {scenario.open_proposal}; files in {out}")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Sharing terms people can read: a request's terms document is stored by the service, its canonical hash is
the request's terms hash (and the data list's the scope hash), both departments sign over them, and reads of
the request, its signing data and its agreement say whether the stored text still hashes to the chain's."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.api.api_helpers import ApiEnv, b32, catalog_document, concluded, ok, period, sql

# One deployment per module: keep the module's tests on one xdist worker.
pytestmark = pytest.mark.xdist_group("api-sharing-terms")

PURPOSE = "核验居住证申领人的参保状态 — «naïve» 𠀀"
FIELDS = ["公民身份号码", "参保状态", "参保起始日期"]


def canonical_hash(doc: dict[str, Any]) -> str:
    """The documented canonical form, computed independently of the service's code."""
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return "0x" + hashlib.sha256(raw).hexdigest()


def terms(*fields: str, **extra: Any) -> dict[str, Any]:
    return {
        "csvw:column": [{"csvw:name": f} for f in (fields or FIELDS[:2])],
        "dcatap:applicableLegislation": "《居住证暂行条例》第十二条",
        "dcat:mediaType": "application/json",
        "dct:accrualPeriodicity": "P1D",
        "odrl:delayPeriod": "PT4H",
        "odrl:permission": ["use"],
        "odrl:prohibition": ["distribute"],
        "dxl:retentionDays": 180,
        "odrl:duty": {
            "odrl:assigner": "每日更新参保状态，接口可用率不低于99%。",
            "odrl:assignee": "仅用于居住证审核；到期删除；不得向第三方提供。",
        },
        **extra,
    }


def catalogued(env: ApiEnv, owner: str = "hrss") -> int:
    """A resource of ``owner`` whose catalog document lists :data:`FIELDS`."""
    columns = [{"csvw:name": f, "csvw:datatype": "string"} for f in FIELDS]
    body = {
        "metadata": catalog_document("社会保险参保信息（条款）", **{"csvw:column": columns}),
        "schema_hash": b32(), "share_type": "conditional", "sensitivity": 1,
    }  # fmt: skip
    return int(ok(env.call("POST", "/resources", owner, json=body), 201)["record"]["id"])


def request_body(env: ApiEnv, resource_id: int, **fields: Any) -> dict[str, Any]:
    valid_from, valid_until = period(env)
    return {
        "resource_id": resource_id, "purpose": PURPOSE, "terms": terms(),
        "valid_from": valid_from, "valid_until": valid_until, **fields,
    }  # fmt: skip


def test_chinese_terms_round_trip_are_signed_and_read_back_verified(api_env: ApiEnv) -> None:
    env = api_env
    resource_id = catalogued(env)
    body = request_body(env, resource_id, terms=terms(*FIELDS))
    stored = {**body["terms"], "odrl:purpose": PURPOSE}
    response = env.call("POST", "/requests", "psb", json=body)
    record = ok(response, 201)["record"]
    assert PURPOSE.encode("utf-8") in response.content and "参保状态".encode() in response.content
    assert record["terms"] == {"hash": canonical_hash(stored), "document": stored, "verified": True}
    assert record["terms_hash"] == canonical_hash(stored)
    assert record["scope_hash"] == canonical_hash({"csvw:column": body["terms"]["csvw:column"]})
    on_chain = env.setup.client.call("request", record["id"])
    assert "0x" + bytes(on_chain[-1]).hex() == record["terms_hash"]  # termsHash, the view's last field
    assert ok(env.call("GET", f"/requests/{record['id']}", "hrss"))["terms"]["document"] == stored

    ok(env.call("POST", f"/requests/{record['id']}/approve", "hrss"))
    signing = ok(env.call("GET", f"/requests/{record['id']}/terms", "psb"))
    assert signing["terms"]["document"] == stored and signing["terms"]["verified"] is True
    assert signing["typed_data"]["message"]["termsHash"] == record["terms_hash"]
    assert signing["typed_data"]["message"]["scopeHash"] == record["scope_hash"]
    ok(env.call("POST", f"/requests/{record['id']}/signatures", "psb", json={}))
    outcome = ok(env.call("POST", f"/requests/{record['id']}/signatures", "hrss", json={}))
    agreement = outcome["agreement"]
    assert agreement["terms"]["document"] == stored and agreement["terms"]["verified"] is True
    read = env.call("GET", f"/agreements/{agreement['id']}", "auditor")
    assert ok(read)["terms"]["document"] == stored
    assert "仅用于居住证审核".encode() in read.content  # the bytes on the wire, not only the parsed value

    requests = {r["id"]: r for r in ok(env.call("GET", "/requests", "psb", params=env.indexed()))}
    assert requests[record["id"]]["terms"]["document"] == stored
    agreements = {a["id"]: a for a in ok(env.call("GET", "/agreements", "hrss", params=env.indexed()))}
    assert agreements[agreement["id"]]["terms"] == agreement["terms"]


def test_tampered_stored_terms_read_unverified(api_env: ApiEnv) -> None:
    env = api_env
    record = ok(env.call("POST", "/requests", "psb", json=request_body(env, catalogued(env))), 201)["record"]
    agreement = concluded(env, record, "hrss", "psb")
    edited = copy.deepcopy(record["terms"]["document"])
    edited["dxl:retentionDays"] = 36500
    edited["odrl:prohibition"] = []
    sql(env, "UPDATE api_catalog_documents SET document = :d WHERE metadata_hash = :h",
        d=json.dumps(edited, ensure_ascii=False), h=record["terms_hash"])  # fmt: skip

    for path, who in ((f"/requests/{record['id']}", "psb"), (f"/agreements/{agreement['id']}", "auditor"),
                      (f"/requests/{record['id']}/terms", "hrss")):  # fmt: skip
        read = ok(env.call("GET", path, who))["terms"]
        assert (read["verified"], read["document"]["dxl:retentionDays"]) == (False, 36500), path
    listed = {a["id"]: a for a in ok(env.call("GET", "/agreements", "auditor", params=env.indexed()))}
    assert listed[agreement["id"]]["terms"]["verified"] is False
    listed = {r["id"]: r for r in ok(env.call("GET", "/requests", "auditor", params=env.indexed()))}
    assert listed[record["id"]]["terms"]["verified"] is False


def test_a_request_by_hashes_only_has_no_terms(api_env: ApiEnv) -> None:
    env = api_env
    body = request_body(env, catalogued(env), scope_hash=b32(), terms_hash=b32())
    del body["terms"]
    record = ok(env.call("POST", "/requests", "psb", json=body), 201)["record"]
    assert record["terms"] is None
    ok(env.call("POST", f"/requests/{record['id']}/approve", "hrss"))
    assert ok(env.call("GET", f"/requests/{record['id']}/terms", "psb"))["terms"] is None


def test_any_field_may_be_requested_of_a_resource_registered_by_hash(api_env: ApiEnv) -> None:
    env = api_env
    body = {"metadata_hash": b32(), "schema_hash": b32(), "share_type": "conditional"}
    resource_id = ok(env.call("POST", "/resources", "hrss", json=body), 201)["record"]["id"]
    record = ok(env.call("POST", "/requests", "psb", json=request_body(
        env, resource_id, terms=terms("任意字段"))), 201)["record"]  # fmt: skip
    assert record["terms"]["verified"] is True


@pytest.mark.parametrize(
    ("listed", "requested"),
    [("\u00e9tat", "e\u0301tat"), ("e\u0301tat", "\u00e9tat")],
    ids=["nfc-nfd", "nfd-nfc"],
)
def test_a_field_is_requested_by_its_name_however_its_accent_is_encoded(
    api_env: ApiEnv, listed: str, requested: str
) -> None:
    """The catalog lists "état" with its accent as one code point (or as "e" and a combining accent), and the
    consumer's system writes it the other way (macOS writes names decomposed): the same name, as the catalog
    and the data list count names (one "état" twice is refused as a field named twice). The request was
    refused TERMS_FIELD_UNKNOWN, "lists no field 'état'; its fields: état". The terms keep the name as
    written, and their hash with it."""
    env = api_env
    columns = [{"csvw:name": listed, "csvw:datatype": "string"}]
    body = {"metadata": catalog_document("编码（条款）", **{"csvw:column": columns}),
            "schema_hash": b32(), "share_type": "conditional", "sensitivity": 1}  # fmt: skip
    resource_id = ok(env.call("POST", "/resources", "hrss", json=body), 201)["record"]["id"]
    asked = terms(requested)
    record = ok(env.call("POST", "/requests", "psb", json=request_body(env, resource_id, terms=asked)), 201)
    stored = record["record"]["terms"]
    assert stored["verified"] is True and stored["document"]["csvw:column"] == [{"csvw:name": requested}]
    assert stored["hash"] == canonical_hash({**asked, "odrl:purpose": PURPOSE})


def _stored_documents(env: ApiEnv) -> int:
    engine = create_engine(env.settings.effective_database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM api_catalog_documents")).scalar_one())
    finally:
        engine.dispose()


def _sent_by_psb(env: ApiEnv) -> int:
    """Transactions the requester's custodied key has sent, pending included: unchanged, nothing was sent."""
    address = env.keystore.address("dept-psb")
    return int(env.setup.client.w3.eth.get_transaction_count(address, "pending"))  # type: ignore[arg-type]


BAD = [
    ("unknown field", {"terms": terms("公民身份号码", "婚姻状况")}, "TERMS_FIELD_UNKNOWN",
     "terms.csvw:column.1.csvw:name", "婚姻状况"),
    ("period over", {"valid_from": 100, "valid_until": 200}, "INVALID_PERIOD", "valid_until", "already past"),
    ("terms and hashes", {"terms_hash": "0x" + "11" * 32}, "VALIDATION_ERROR", None, "not both"),
    ("no terms, one hash", {"terms": None, "scope_hash": "0x" + "11" * 32}, "VALIDATION_ERROR", None,
     "both scope_hash and terms_hash"),
    ("field twice", {"terms": terms("参保状态", "参保状态")}, "VALIDATION_ERROR", None, "twice"),
    # The same name composed and decomposed (NFC, NFD): one field that reads the same twice.
    ("field twice, composed and decomposed", {"terms": terms("\u00e9tat", "e\u0301tat")}, "VALIDATION_ERROR",
     None, "twice"),
    ("empty data list", {"terms": terms(**{"csvw:column": []})}, "VALIDATION_ERROR", "csvw:column", None),
    ("bad duration", {"terms": terms(**{"odrl:delayPeriod": "4 hours"})}, "VALIDATION_ERROR",
     "odrl:delayPeriod", None),
    ("duration of nothing", {"terms": terms(**{"dct:accrualPeriodicity": "PT"})}, "VALIDATION_ERROR",
     "dct:accrualPeriodicity", "at least one length"),
    ("permitted and prohibited", {"terms": terms(**{"odrl:prohibition": ["use"]})}, "VALIDATION_ERROR",
     None, "both permitted and prohibited: use"),
    ("unknown action", {"terms": terms(**{"odrl:permission": ["sell"]})}, "VALIDATION_ERROR",
     "odrl:permission", None),
    ("retention 0", {"terms": terms(**{"dxl:retentionDays": 0})}, "VALIDATION_ERROR",
     "dxl:retentionDays", None),
    ("retention as text", {"terms": terms(**{"dxl:retentionDays": "180"})}, "VALIDATION_ERROR",
     "dxl:retentionDays", None),
    # api/README: "1 to 36,500" days and "1 to 500 distinct field names".
    ("retention over 36,500 days", {"terms": terms(**{"dxl:retentionDays": 36_501})}, "VALIDATION_ERROR",
     "dxl:retentionDays", None),
    ("501 fields", {"terms": terms(*[f"字段{i}" for i in range(501)])}, "VALIDATION_ERROR", "csvw:column",
     None),
    ("duty too long", {"terms": terms(**{"odrl:duty": {"odrl:assigner": "责" * 2001, "odrl:assignee": "x"}})},
     "VALIDATION_ERROR", "odrl:assigner", None),
    ("unknown term", {"terms": terms(**{"odrl:price": "0"})}, "VALIDATION_ERROR", "odrl:price", None),
    ("bad media type", {"terms": terms(**{"dcat:mediaType": "CSV please"})}, "VALIDATION_ERROR",
     "dcat:mediaType", None),
    # Both departments read the terms before they sign them: text that shows in another order than it is
    # hashed and signed in ("Trojan Source") is refused, as in a catalog description or a demand.
    ("purpose out of order", {"purpose": "仅用于\u202e核验参保状态"}, "VALIDATION_ERROR", "purpose",
     "U+202E is a bidirectional control"),
    ("purpose of spaces alone", {"purpose": " \t "}, "VALIDATION_ERROR", "purpose", "white space alone"),
    ("legal basis out of order",
     {"terms": terms(**{"dcatap:applicableLegislation": "《条例》\u2067第十二条\u2069"})},
     "VALIDATION_ERROR", "dcatap:applicableLegislation", "U+2067 is a bidirectional control"),
    ("duty out of order",
     {"terms": terms(**{"odrl:duty": {"odrl:assigner": "每日\u202d更新", "odrl:assignee": "x"}})},
     "VALIDATION_ERROR", "odrl:assigner", "U+202D is a bidirectional control"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "change", "code", "field", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_terms_are_refused_and_nothing_is_recorded(
    api_env: ApiEnv, case: str, change: dict[str, Any], code: str, field: str | None, message: str | None
) -> None:
    env = api_env
    resource_id = catalogued(env)
    body = {k: v for k, v in {**request_body(env, resource_id), **change}.items() if v is not None}
    before = (_stored_documents(env), _sent_by_psb(env))
    response = env.call("POST", "/requests", "psb", json=body)
    error = response.json()["error"]
    assert (response.status_code, error["code"]) == (422, code), response.text
    if field is not None:
        assert field in (error.get("field") or ""), error
    if message is not None:
        assert message in error["message"], error
    assert (_stored_documents(env), _sent_by_psb(env)) == before


def test_cli_requests_with_a_terms_file_and_shows_them(api_env: ApiEnv, tmp_path: Path) -> None:
    from tests.cli import dxl

    env = api_env
    resource_id = catalogued(env)
    path = tmp_path / "条款.json"
    path.write_text(json.dumps(terms(*FIELDS), ensure_ascii=False, indent=2), encoding="utf-8")
    auth = ("--api", env.url, "--token", env.tokens["demo-psb"])

    def create() -> tuple[int, Any, str]:
        code, out, err = dxl(
            "request", "create", str(resource_id), "--purpose", PURPOSE, "--terms", str(path),
            "--valid-from", "2030-01-01", "--valid-until", "2031-01-01", *auth, "--json",
        )  # fmt: skip
        return code, json.loads(out) if out.strip() else None, err

    code, written, err = create()
    assert code == 0, err
    record = written["record"]
    assert record["terms"]["document"] == {**terms(*FIELDS), "odrl:purpose": PURPOSE}
    code, out, err = dxl("request", "show", str(record["id"]), *auth)
    assert code == 0 and "terms (verified)" in out and "参保起始日期" in out, err

    path.write_text(json.dumps(terms("婚姻状况"), ensure_ascii=False), encoding="utf-8")
    code, refused, _ = create()
    assert (code, refused["error"]) == (2, "TERMS_FIELD_UNKNOWN")
    path.write_text("{not json", encoding="utf-8")
    code, refused, _ = create()
    assert (code, refused["error"]) == (2, "USAGE_ERROR")
    # Nested past the standard library parser's recursion: a RecursionError traceback (exit 1) before.
    path.write_text("[" * 300_000, encoding="utf-8")
    code, refused, _ = create()
    assert (code, refused["error"]) == (2, "USAGE_ERROR") and "nested more than 256" in refused["message"]


def _documented_body(operation: str) -> dict[str, Any]:
    """The JSON example api/README.md shows under ``operation`` (a ```json block that starts with it)."""
    readme = (Path(__file__).resolve().parents[2] / "api" / "README.md").read_text(encoding="utf-8")
    block = readme.split(f"```json\n{operation}\n", 1)[1].split("```", 1)[0]
    return dict(json.loads(block.replace('"0x…"', json.dumps(b32()))))


def test_the_documented_catalog_entry_and_request_are_taken_as_written(api_env: ApiEnv) -> None:
    """api/README.md's examples are what a new user posts first on `make run`: the catalog entry (its elided
    schema hash filled in) reads back as sent, and the request for the demo's social insurance records is
    taken. The request named fields its resource's document does not list (their Chinese descriptions),
    refused `TERMS_FIELD_UNKNOWN`, and a resource the demo ledger does not have. The rest of the flow follows
    on the day it is run: approved, signed, granted (the example's validity began in 2030, so the grant was
    refused `AGREEMENT_OUTSIDE_VALIDITY` until then)."""
    env = api_env
    entry = _documented_body("POST /resources")
    record = ok(env.call("POST", "/resources", "psb", json=entry), 201)["record"]
    assert record["metadata"] == entry["metadata"] and record["verified"] is True
    body = _documented_body("POST /requests")
    resource = ok(env.call("GET", f"/resources/{body['resource_id']}", "civil"))
    assert resource["metadata"]["dct:title"] == "社会保险参保缴费信息"
    request = ok(env.call("POST", "/requests", "civil", json=body), 201)["record"]
    assert request["terms"]["document"] == {**body["terms"], "odrl:purpose": body["purpose"]}
    assert request["terms"]["verified"] is True
    agreement = concluded(env, request, "hrss", "civil")
    grant = {"agreement_id": agreement["id"], "expires_at": body["valid_until"]}
    granted = ok(env.call("POST", "/grants", "hrss", json=grant), 201)["record"]
    assert granted["agreement_id"] == agreement["id"]


def test_the_documented_bounds_of_the_terms_are_taken(api_env: ApiEnv) -> None:
    """The other side of the refusals above: 36,500 days of retention and 500 fields are taken (a resource
    registered by hash lists no fields, so any name may be requested)."""
    body = {"metadata_hash": b32(), "schema_hash": b32(), "share_type": "conditional", "sensitivity": 1}
    resource_id = ok(api_env.call("POST", "/resources", "hrss", json=body), 201)["record"]["id"]
    longest = terms(*[f"字段{i}" for i in range(500)], **{"dxl:retentionDays": 36_500})
    request = request_body(api_env, resource_id, terms=longest)
    record = ok(api_env.call("POST", "/requests", "psb", json=request), 201)["record"]
    assert len(record["terms"]["document"]["csvw:column"]) == 500
    assert record["terms"]["document"]["dxl:retentionDays"] == 36_500

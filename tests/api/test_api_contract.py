"""What the API promises its callers beyond single routes: bodies typed strictly, protocol errors with stable
codes, one answer for "not yours" and "does not exist", governors reading what they approve, and who reads
which scorecard."""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account

from node.types import GovernanceAction
from tests.api.api_helpers import (
    ApiEnv,
    b32,
    catalog_document,
    delivery_between,
    ok,
    pass_time,
    period,
    register,
    request_access,
)

# One deployment per module: keep the module's tests on one xdist worker.
pytestmark = pytest.mark.xdist_group("api-contract")


@pytest.fixture(scope="module")
def exchange(api_env: ApiEnv) -> dict[str, Any]:
    """One HRSS → PSB exchange with a delivery, indexed by the audit trail."""
    delivery = delivery_between(api_env, "hrss", "psb")
    ok(api_env.call("POST", "/audit/index", "auditor"))
    grant = ok(api_env.call("GET", f"/grants/{delivery['grant_id']}", "auditor"))
    agreement = ok(api_env.call("GET", f"/agreements/{grant['agreement_id']}", "auditor"))
    return {"delivery": delivery, "grant": grant, "agreement": agreement}


def _counts(env: ApiEnv) -> tuple[int, int, int]:
    # Lists read the audit index: bring it up to the chain's head first, so that the counts before and after a
    # refused write differ only by what that write did, not by earlier writes the follower indexed meanwhile.
    head = {"limit": 500, "min_block": env.setup.client.w3.eth.block_number}
    return (
        len(ok(env.call("GET", "/resources", "auditor", params=head))),
        len(ok(env.call("GET", "/requests", "auditor", params=head))),
        len(ok(env.call("GET", "/grants", "auditor", params=head))),
    )


# --- strict types -------------------------------------------------------------------------------------------


def _valid_body(env: ApiEnv, exchange: dict[str, Any], path: str) -> dict[str, Any]:
    if path == "/requests":
        return {
            "resource_id": exchange["agreement"]["resource_id"], "purpose": "p", "scope_hash": b32(),
            "terms_hash": b32(), "valid_from": period(env)[0], "valid_until": period(env)[1],
        }  # fmt: skip
    if path == "/resources":
        return {"metadata_hash": b32(), "schema_hash": b32(), "share_type": "conditional", "sensitivity": 1}
    return {"agreement_id": exchange["agreement"]["id"], "expires_at": period(env, 1)[1]}


@pytest.mark.parametrize("value", [True, "4", 4.0, "0x4"])
@pytest.mark.parametrize(
    ("path", "who", "field"),
    [("/requests", "psb", "resource_id"), ("/resources", "hrss", "sensitivity"),
     ("/grants", "hrss", "agreement_id"), ("/requests", "psb", "valid_until")],
)  # fmt: skip
def test_a_non_integer_for_an_integer_is_refused_and_nothing_written(
    api_env: ApiEnv, exchange: dict[str, Any], path: str, who: str, field: str, value: object
) -> None:
    """``true`` or ``"4"`` for an integer is a 422 naming the field, never a write with a coerced value."""
    ok(api_env.call("POST", path, who, json=_valid_body(api_env, exchange, path)), 201)  # the body is valid
    before = _counts(api_env)
    sent = _valid_body(api_env, exchange, path)
    sent[field] = value
    response = api_env.call("POST", path, who, json=sent)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert response.json()["error"]["field"] == field
    assert _counts(api_env) == before


def test_a_string_for_a_boolean_or_an_integer_elsewhere_is_refused(api_env: ApiEnv) -> None:
    response = api_env.call("POST", "/requests/1/reject", "hrss", json={"reason_code": "7"})
    assert response.status_code == 422 and response.json()["error"]["field"] == "reason_code"
    before = ok(api_env.call("GET", "/governance/proposals", "auditor", params=api_env.indexed()))
    response = api_env.call(
        "POST", "/governance/proposals", "governor-1",
        json={"action": "suspend_department", "department_id": "2"},
    )  # fmt: skip
    assert response.status_code == 422 and response.json()["error"]["field"].endswith("department_id")
    assert ok(api_env.call("GET", "/governance/proposals", "auditor", params=api_env.indexed())) == before


@pytest.mark.parametrize("action", ["grant_auditor", "revoke_auditor"])
def test_an_auditor_proposal_for_the_zero_address_is_refused(api_env: ApiEnv, action: str) -> None:
    """No account is address zero: the contract refuses to give it a role and it holds none to take away, so
    such a proposal could only be refused by the approval that would carry it out, a week of votes later."""
    before = ok(api_env.call("GET", "/governance/proposals", "auditor", params=api_env.indexed()))
    body = {"action": action, "account": "0x" + "00" * 20}
    response = api_env.call("POST", "/governance/proposals", "governor-1", json=body)
    assert response.status_code == 422, response.text
    assert (response.json()["error"]["code"], response.json()["error"]["field"]) == (
        "VALIDATION_ERROR",
        f"{action}.account",
    )
    assert ok(api_env.call("GET", "/governance/proposals", "auditor", params=api_env.indexed())) == before


# --- protocol errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [("DELETE", "/resources", {"GET", "POST"}), ("PATCH", "/grants/1", {"GET"}),
     ("GET", "/grants/1/revoke", {"POST"}), ("PUT", "/healthz", {"GET"}),
     ("DELETE", "/governance/proposals", {"GET", "POST"}),
     # A literal path is not taken for an id of the template beside it.
     ("GET", "/deliveries/batch", {"POST"})],
)  # fmt: skip
def test_method_not_allowed_names_the_allowed_methods(
    api_env: ApiEnv, method: str, path: str, allow: set[str]
) -> None:
    api_env.call("POST", "/grants/1/revoke", "psb", headers={"Idempotency-Key": "method-test"})
    # With an Idempotency-Key already used for another request: still a 405, nothing else is judged.
    response = api_env.call(method, path, "psb", headers={"Idempotency-Key": "method-test"})
    assert response.status_code == 405 and response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert {m.strip() for m in response.headers["allow"].split(",")} == allow


def test_every_path_refuses_every_method_it_does_not_declare_naming_those_it_does(api_env: ApiEnv) -> None:
    """Over the whole document (what the schemathesis coverage phase checks under ``make fuzz``): each path,
    its parameters given as 1, answers each method it does not declare 405 with ``Allow`` naming those it
    does, before any token is looked at."""
    document = ok(api_env.client.get("/openapi.json"))
    checked = 0
    for template, operations in document["paths"].items():
        path = re.sub(r"\{[^}]+\}", "1", template)
        declared = {method.upper() for method in operations if method != "parameters"}
        for method in {"GET", "POST", "PUT", "DELETE", "PATCH"} - declared:
            response = api_env.call(method, path, None)
            assert response.status_code == 405, (method, path, response.text)
            assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED", (method, path)
            assert {m.strip() for m in response.headers["allow"].split(",")} == declared, (method, path)
            checked += 1
    assert checked > 100, checked


@pytest.mark.parametrize(
    "raw",
    [b'{"metadata_hash": "\xff"}', b"\xc3\x28", b"\x80\x81\x82", '{"a": "é"}'.encode("latin-1")],
    ids=["invalid-byte-in-string", "bad-continuation", "lone-continuations", "latin-1"],
)
def test_a_body_that_is_not_utf8_is_a_422(api_env: ApiEnv, raw: bytes) -> None:
    before = _counts(api_env)
    response = api_env.client.post(
        "/resources", content=raw, headers={**api_env.headers("psb"), "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert response.json()["error"]["field"] == "body"
    assert _counts(api_env) == before


def _duplicated(key: str, first: str, last: str, rest: str = "") -> bytes:
    """An object naming ``key`` twice, ``rest`` (other members) between (``json.dumps`` cannot write one)."""
    return ("{" + ", ".join(m for m in (f'"{key}": {first}', rest, f'"{key}": {last}') if m) + "}").encode()


@pytest.mark.parametrize(
    ("path", "who", "raw"),
    [
        ("/resources", "psb", lambda: _duplicated(
            "share_type", '"not_shared"', '"unconditional"',
            f'"metadata_hash": "{b32()}", "schema_hash": "{b32()}"')),
        # In a nested object: the catalog document, whose canonical JSON is hashed on chain.
        ("/resources", "psb", lambda: b'{"share_type": "not_shared", "schema_hash": "%s", "metadata": %s}' % (
            b32().encode(), json.dumps(catalog_document("x")).replace(
                '"dct:title": "x"', '"dct:title": "x", "dct:title": "y"').encode())),
        ("/grants", "hrss", lambda: _duplicated("agreement_id", "1", "2", '"expires_at": 1099511627776')),
        ("/receipts", "hrss", lambda: _duplicated(
            "receipts", "[]", json.dumps([{"delivery_id": b32(), "grant_id": 1, "commitment": b32(),
                                          "byte_size": 1}]))),
        ("/receipts", "hrss", lambda: b'{"receipts": [%s]}' % _duplicated(
            "grant_id", "1", "2", f'"delivery_id": "{b32()}", "commitment": "{b32()}", "byte_size": 1')),
    ],
    ids=["top-level", "in-the-catalog-document", "grant-id", "receipts-list", "in-a-receipt"],
)  # fmt: skip
def test_a_key_given_twice_is_a_422_and_nothing_is_recorded(
    api_env: ApiEnv, path: str, who: str, raw: Any
) -> None:
    """JSON leaves a repeated name's meaning open (RFC 8259 4: parsers keep the first, the last or fail), so a
    proxy, a signer or a log may read another value than the service would have: refused, naming the name."""
    before, head = _counts(api_env), api_env.setup.client.w3.eth.block_number
    body = raw()
    response = api_env.client.post(
        path, content=body, headers={**api_env.headers(who), "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", "body") and "twice" in error["message"]
    assert _counts(api_env) == before and api_env.setup.client.w3.eth.block_number == head
    ids = [d.decode() for d in re.findall(rb'"delivery_id": "(0x[0-9a-f]{64})"', body)]
    if ids:
        lookup = {"delivery_ids": ids}
        assert ok(api_env.call("POST", "/receipts/lookup", who, json=lookup)) == {"receipts": []}


@pytest.mark.parametrize(
    ("path", "who", "raw"),
    [
        # The standard library's parser recursed once per level on the C stack: this took the process down.
        ("/verify", "psb", b'{"manifest": ' + b"[" * 1_000_000 + b"]" * 1_000_000 + b"}"),
        # Before the token is looked at: FastAPI parses the body first.
        ("/verify", None, b'{"manifest": ' + b"[" * 1_000_000 + b"}"),
        ("/resources", "psb", b"[" * 60_000),
        ("/resources/import", "psb",
         json.dumps({"csv": "id,metadata\r\n1," + "[" * 100_000 + "\r\n"}).encode()),
        # A field past the csv module's bound (128 KiB; a registered document is under the 64 KiB body limit).
        ("/resources/import", "psb",
         json.dumps({"csv": "id,metadata\r\n1," + "[" * 1_000_000 + "\r\n"}).encode()),
    ],
    ids=["manifest", "no-token", "unclosed", "csv-import", "csv-field-too-long"],
)  # fmt: skip
def test_json_nested_past_1024_levels_is_a_422_and_the_service_stays_up(
    api_env: ApiEnv, path: str, who: str | None, raw: bytes
) -> None:
    response = api_env.client.post(
        path, content=raw, headers={**api_env.headers(who), "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert response.json()["error"]["field"] == ("csv" if path == "/resources/import" else "body")
    assert ok(api_env.client.get("/healthz"))["status"] == "ok"


@pytest.mark.parametrize(
    "content_type",
    [
        # FastAPI reads the header with email.message, which strips Unicode spaces (NBSP, NEL) too: it parsed
        # this body as JSON while the nesting check, stripping ASCII spaces only, took it for something else.
        [(b"content-type", b"application/json\xa0")],
        [(b"content-type", b"\x85application/vnd.dxl+json")],
        # Starlette reads the first of a repeated header; the check read the last.
        [(b"content-type", b"application/json"), (b"content-type", b"text/plain")],
    ],
    ids=["nbsp", "nel", "repeated"],
)
def test_a_body_fastapi_parses_as_json_is_checked_as_json(
    api_env: ApiEnv, content_type: list[tuple[bytes, bytes]]
) -> None:
    """Every body FastAPI will parse as JSON passes the nesting bound first, however its Content-Type is
    spelled: one request without a token took the whole service down (SIGSEGV) before."""
    raw = b'{"manifest": ' + b"[" * 1_000_000 + b"]" * 1_000_000 + b"}"
    response = api_env.client.post("/verify", content=raw, headers=content_type)
    assert response.status_code == 422, response.text
    assert (response.json()["error"]["code"], response.json()["error"]["field"]) == (
        "VALIDATION_ERROR",
        "body",
    )
    assert ok(api_env.client.get("/healthz"))["status"] == "ok"


@pytest.mark.parametrize(
    ("who", "path"),
    [("psb", "/grants/1_0"), ("psb", "/grants/+1"), ("psb", "/grants/1.0"), ("psb", "/grants/%201"),
     ("psb", "/requests/1e0"), ("psb", "/deliveries?grant_id=1_0"), ("psb", "/resources?limit=0_1"),
     ("psb", "/departments/+1"), ("psb", "/audit/history?resource=1.0"), ("psb", "/demands?publisher=%2B1"),
     ("governor-1", "/governance/proposals/1.0"), ("psb", "/audit/receipt-batches/1/0_0/provenance")],
)  # fmt: skip
def test_an_integer_in_a_path_or_query_is_decimal_digits(api_env: ApiEnv, who: str, path: str) -> None:
    """An id is written in digits: "1_0" is not id 10 nor "1.0", "+1" or " 1" id 1 (pydantic's lax parsing
    of text took all four), as in a body "4" or 4.0 is not 4."""
    response = api_env.call("GET", path, who)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_integer_parameters_declare_their_bounds(api_env: ApiEnv) -> None:
    """Every integer parameter states its bounds in JSON Schema's words (``minimum``/``maximum``), which the
    fuzzer reads; never ``ge``/``le``, which it ignores (it then sent id 0 as valid)."""
    spec = ok(api_env.client.get("/openapi.json"))
    unbounded = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for param in op.get("parameters", []):
                text = json.dumps(param["schema"])
                if '"integer"' in text and ('"ge"' in text or '"le"' in text or '"minimum"' not in text):
                    unbounded.append(f"{method.upper()} {path} {param['name']}: {text}")
    assert not unbounded, "\n".join(unbounded)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_json_in_another_unicode_encoding_is_a_422(api_env: ApiEnv, encoding: str) -> None:
    """JSON between systems is UTF-8 (RFC 8259 8.1); a body in UTF-16 or UTF-32 is refused as one in any other
    encoding is, whatever its Content-Type's charset says."""
    before = _counts(api_env)
    body = {"metadata_hash": b32(), "schema_hash": b32(), "share_type": "not_shared"}
    response = api_env.client.post(
        "/resources",
        content=json.dumps(body).encode(encoding),
        headers={**api_env.headers("psb"), "Content-Type": f"application/json; charset={encoding}"},
    )
    assert response.status_code == 422, response.text
    assert (response.json()["error"]["code"], response.json()["error"]["field"]) == (
        "VALIDATION_ERROR",
        "body",
    )
    assert _counts(api_env) == before


@pytest.mark.parametrize("charset", ["latin-1", "GBK", '"iso-8859-1"', "no-such-charset"])
def test_json_declared_in_another_charset_is_a_422(api_env: ApiEnv, charset: str) -> None:
    """The body is read as UTF-8 whatever its Content-Type says, so one declared in another charset is
    refused, naming it: its bytes were read as UTF-8 when they were, and Latin-1's "Ã©" (or a GBK text whose
    bytes are also UTF-8) recorded as "é", a text the client did not send, its hash on chain."""
    before = _counts(api_env)
    body = {"metadata_hash": b32(), "schema_hash": b32(), "share_type": "not_shared"}
    response = api_env.client.post(
        "/resources",
        content=json.dumps(body).encode(),
        headers={**api_env.headers("psb"), "Content-Type": f"application/json; charset={charset}"},
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", "body")
    assert charset.strip('"') in error["message"] and "UTF-8" in error["message"]
    assert _counts(api_env) == before
    # UTF-8 declared, in any of its names, is the body as read.
    for utf8 in ("utf-8", "UTF8", '"utf-8"'):
        declared = {**api_env.headers("psb"), "Content-Type": f"application/json; charset={utf8}"}
        sent = api_env.client.post(
            "/resources", content=json.dumps({**body, "metadata_hash": b32()}), headers=declared
        )
        assert sent.status_code == 201, sent.text


@pytest.mark.parametrize("encoding", ["gzip", "GZIP", "deflate", "br"])
def test_a_body_sent_encoded_is_a_422_naming_its_content_encoding(api_env: ApiEnv, encoding: str) -> None:
    """The service decodes no Content-Encoding: a client compressing its body was told "the body is not valid
    JSON" of a body that was, once decoded. The refusal names the encoding; nothing is recorded, and the same
    body sent unencoded (or declared ``identity``) is taken."""
    before = _counts(api_env)
    body = json.dumps({"metadata_hash": b32(), "schema_hash": b32(), "share_type": "not_shared"}).encode()
    headers = {**api_env.headers("psb"), "Content-Type": "application/json", "Content-Encoding": encoding}
    response = api_env.client.post("/resources", content=gzip.compress(body), headers=headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", "body")
    assert f"Content-Encoding: {encoding}" in error["message"] and "unencoded" in error["message"], error
    assert _counts(api_env) == before
    identity = {**headers, "Content-Encoding": "identity"}
    sent = api_env.client.post("/resources", content=body, headers=identity)
    assert sent.status_code == 201, sent.text


# --- "not yours" answers as "does not exist" ----------------------------------------------------------------


def _unknown(kind: str) -> str:
    return b32() if kind in ("delivery", "commitment") else "999999"


def _same_answer(mine: httpx.Response, unknown: httpx.Response, known_id: str, unknown_id: str) -> None:
    assert mine.status_code == unknown.status_code == 404, (mine.text, unknown.text)
    assert mine.headers["content-type"] == unknown.headers["content-type"]
    assert mine.text.replace(known_id, "<id>") == unknown.text.replace(unknown_id, "<id>")


@pytest.mark.parametrize(
    ("kind", "method", "template", "body"),
    [
        ("request", "GET", "/requests/{id}", None),
        ("request", "GET", "/requests/{id}/terms", None),
        ("request", "POST", "/requests/{id}/approve", None),
        ("request", "POST", "/requests/{id}/reject", {"reason_code": 3}),
        ("request", "POST", "/requests/{id}/signatures", {}),
        ("agreement", "GET", "/agreements/{id}", None),
        ("agreement", "POST", "/agreements/{id}/suspend", None),
        ("agreement", "POST", "/agreements/{id}/revoke", None),
        ("agreement", "POST", "/grants", {"agreement_id": "{id}", "expires_at": 2**40}),
        ("grant", "GET", "/grants/{id}", None),
        ("grant", "POST", "/grants/{id}/revoke", None),
        ("grant", "POST", "/deliveries", {"delivery_id": "new", "grant_id": "{id}", "commitment": "new",
                                          "byte_size": 1}),
        ("delivery", "GET", "/deliveries/{id}", None),
        ("delivery", "POST", "/deliveries/{id}/acknowledge", {}),
        ("delivery", "POST", "/deliveries/{id}/dispute", {"consumer_commitment": "new"}),
        ("delivery", "GET", "/audit/deliveries/{id}/provenance", None),
        ("commitment", "GET", "/audit/provenance/{id}", None),
    ],
)  # fmt: skip
def test_another_departments_exchange_answers_as_an_unknown_id(
    api_env: ApiEnv,
    exchange: dict[str, Any],
    kind: str,
    method: str,
    template: str,
    body: dict[str, Any] | None,
) -> None:
    """CIVIL, party to nothing of the HRSS → PSB exchange, gets for its ids exactly what it gets for ids that
    do not exist, reading or writing; nothing is sent to the chain."""
    known = {
        "request": str(exchange["agreement"]["request_id"]),
        "agreement": str(exchange["agreement"]["id"]),
        "grant": str(exchange["grant"]["id"]),
        "delivery": exchange["delivery"]["delivery_id"],
        "commitment": exchange["delivery"]["commitment"],
    }[kind]
    unknown = _unknown(kind)
    fresh = {"new": b32()}

    def send(ident: str) -> httpx.Response:
        payload = None
        if body is not None:
            payload = {
                k: (int(ident) if v == "{id}" else fresh.get(v, v) if isinstance(v, str) else v)
                for k, v in body.items()
            }
        return api_env.call(method, template.replace("{id}", ident), "civil", json=payload)

    before = ok(api_env.call("GET", f"/grants/{exchange['grant']['id']}", "auditor"))
    _same_answer(send(known), send(unknown), known, unknown)
    code = "NOT_FOUND" if kind == "commitment" else f"{kind.upper()}_NOT_FOUND"
    assert send(known).json()["error"]["code"] == code
    assert ok(api_env.call("GET", f"/grants/{exchange['grant']['id']}", "auditor")) == before


def test_evidence_from_another_departments_exchange_answers_as_an_unknown_delivery(
    api_env: ApiEnv, exchange: dict[str, Any]
) -> None:
    """PSB scores its own agreement (HRSS → PSB) naming as evidence a delivery between two other departments:
    it gets exactly what it gets for a delivery id that does not exist, and nothing is recorded. Before, 409
    NO_DELIVERY_UNDER_AGREEMENT ("… was not made under agreement N") told it the id was another exchange's
    delivery, where 404 DELIVERY_NOT_FOUND answered an id that is none."""
    elsewhere = delivery_between(api_env, "civil", "samr")["delivery_id"]
    unknown = b32()
    path = f"/agreements/{exchange['agreement']['id']}/evaluations"
    before = ok(api_env.call("GET", path, "psb"))

    def score(delivery_id: str) -> httpx.Response:
        scores = {"timeliness": 3, "completeness": 3, "accuracy": 3}
        return api_env.call("POST", path, "psb", json={"delivery_id": delivery_id, **scores})

    _same_answer(score(elsewhere), score(unknown), elsewhere, unknown)
    assert score(elsewhere).json()["error"]["code"] == "DELIVERY_NOT_FOUND"
    assert ok(api_env.call("GET", path, "psb")) == before


def test_parties_still_read_and_are_refused_by_role(api_env: ApiEnv, exchange: dict[str, Any]) -> None:
    """The consumer reads the exchange; the provider's actions are refused to it as NOT_A_PARTY (it knows the
    exchange exists), not hidden."""
    grant_id = exchange["grant"]["id"]
    assert ok(api_env.call("GET", f"/grants/{grant_id}", "psb"))["id"] == grant_id
    response = api_env.call("POST", f"/grants/{grant_id}/revoke", "psb")
    assert response.status_code == 403 and response.json()["error"]["code"] == "NOT_A_PARTY"


# --- scorecards ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "department", "status"),
    [
        ("auditor", "HRSS", 200), ("auditor", None, 200), ("hrss", "HRSS", 200), ("hrss", None, 200),
        ("hrss", str(2), 200), ("psb", "HRSS", 403), ("civil", "HRSS", 403), ("governor-1", "HRSS", 403),
        (None, "HRSS", 401),
    ],
)  # fmt: skip
def test_scorecards_are_read_by_auditors_and_their_own_department(
    api_env: ApiEnv, exchange: dict[str, Any], who: str | None, department: str | None, status: int
) -> None:
    if department == "2":
        department = str(api_env.departments["HRSS"])
    # One fixed period for both reads: with the default end ("now") two reads a second apart differ.
    end = datetime.now(UTC).replace(microsecond=0).isoformat()
    period = {"from": "2000-01-01T00:00:00+00:00", "to": end}
    params = period if department is None else {"department": department, **period}
    response = api_env.call("GET", "/audit/scorecard", who, params=params)
    assert response.status_code == status, response.text
    if status == 403:
        assert response.json()["error"]["code"] == "FORBIDDEN"
    if status == 200 and department is not None:
        assert response.json() == ok(api_env.call("GET", "/audit/scorecard", "auditor", params=params))


def test_the_consortiums_scorecard_lists_a_department_only_records_of_its_own_exchanges(
    api_env: ApiEnv, exchange: dict[str, Any]
) -> None:
    """The consortium's card is aggregates over every department, naming none (api/README.md, note 3). Read
    by a department, it also listed the records behind them: the requests other departments answered late
    (whose ids GET /requests/{id} answers to it as ids that do not exist), the resources other departments
    share with each other, and each department's requests made and approved. Its counts stay the
    consortium's; the ids and the figures by department are the reader's own."""
    late = request_access(api_env, "psb", register(api_env, "samr"))  # pending: late for a deadline of 0 days
    pass_time(api_env, 2)
    head = datetime.fromtimestamp(api_env.setup.client.head_time() + 1, UTC).isoformat()
    query = {"deadline_days": 0, "from": "2000-01-01T00:00:00+00:00", "to": head}
    whole = ok(api_env.call("GET", "/audit/scorecard", "auditor", params=query))
    read = ok(api_env.call("GET", "/audit/scorecard", "civil", params=query))
    hidden = api_env.call("GET", f"/requests/{late['id']}", "civil")
    assert (hidden.status_code, hidden.json()["error"]["code"]) == (404, "REQUEST_NOT_FOUND")
    assert late["id"] in whole["requests"]["overdue_request_ids"]
    assert late["id"] not in read["requests"]["overdue_request_ids"]
    listed = read["requests"]["overdue_request_ids"]
    assert read["requests"] == {**whole["requests"], "overdue_request_ids": listed}
    shared = exchange["agreement"]["resource_id"]  # HRSS's, shared with PSB
    assert shared in whole["catalog_shared"]["resource_ids"]
    assert shared not in read["catalog_shared"]["resource_ids"]
    assert read["catalog_shared"]["shared"] == whole["catalog_shared"]["shared"]
    psb, civil = str(api_env.departments["PSB"]), str(api_env.departments["CIVIL"])
    assert psb in whole["demand_satisfaction"] and set(read["demand_satisfaction"]) <= {civil}


# --- governance proposals -----------------------------------------------------------------------------------


def _propose(env: ApiEnv, body: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = ok(env.call("POST", "/governance/proposals", "governor-1", json=body), 201)[
        "record"
    ]
    return record


def test_governors_list_proposals_with_their_full_parameters(
    api_env: ApiEnv, exchange: dict[str, Any]
) -> None:
    signer, key = Account.create().address, b32()
    admit = _propose(api_env, {"action": "admit_department", "code": "TAX", "name": "Taxation bureau",
                               "signer": signer.lower(), "encryption_key": key})  # fmt: skip
    civil = api_env.departments["CIVIL"]
    suspend = _propose(api_env, {"action": "suspend_department", "department_id": civil})
    agreement_id = exchange["agreement"]["id"]
    revoke = _propose(api_env, {"action": "revoke_agreement", "agreement_id": agreement_id})
    auditor = _propose(api_env, {"action": "grant_auditor", "account": signer})

    ids = [admit["id"], suspend["id"], revoke["id"], auditor["id"]]
    listed = {
        p["id"]: p
        for p in ok(api_env.call("GET", "/governance/proposals", "governor-2", params=api_env.indexed()))
    }
    assert ids == sorted(listed)[-4:]
    listed = {i: listed[i] for i in ids}
    assert all(p["status"] == "open" and p["approvals"] == 1 and p["threshold"] == 2 for p in listed.values())
    assert listed[admit["id"]]["parameters"] == {
        "department_id": None, "code": "TAX", "name": "Taxation bureau", "signer": signer,
        "encryption_key": key, "contract_signer": False, "account": None, "threshold": None,
        "agreement_id": None,
    }  # fmt: skip
    assert listed[admit["id"]]["action"] == "admit_department"
    target = listed[suspend["id"]]
    assert target["parameters"]["department_id"] == civil
    assert (target["department"]["code"], target["department"]["status"]) == ("CIVIL", "active")
    revoked = listed[revoke["id"]]
    assert revoked["parameters"]["agreement_id"] == agreement_id
    assert revoked["agreement"] == ok(api_env.call("GET", f"/agreements/{agreement_id}", "auditor"))
    assert listed[auditor["id"]]["parameters"]["account"] == signer
    # The single look-up answers the same as the list.
    assert (
        ok(api_env.call("GET", f"/governance/proposals/{admit['id']}", "governor-2")) == listed[admit["id"]]
    )
    # Whose approval stands: the proposer's (approving again is refused), not governor 2's; no one else's.
    assert all(p["approved_by_you"] is False for p in listed.values())
    one = f"/governance/proposals/{admit['id']}"
    assert ok(api_env.call("GET", one, "governor-1"))["approved_by_you"] is True
    mine = ok(api_env.call("GET", "/governance/proposals", "governor-1", params=api_env.indexed()))
    assert {p["id"] for p in mine if p["approved_by_you"]} >= set(ids)
    assert api_env.call("POST", f"{one}/approve", "governor-1").json()["error"]["code"] == "ALREADY_APPROVED"
    assert ok(api_env.call("GET", one, "auditor"))["approved_by_you"] is None

    # Approved by the second governor: executed, no longer open.
    approved = ok(api_env.call("POST", f"/governance/proposals/{admit['id']}/approve", "governor-2"))[
        "record"
    ]
    assert (approved["status"], approved["executed"], approved["approved_by_you"]) == ("executed", True, True)
    open_now = ok(
        api_env.call("GET", "/governance/proposals", "auditor", params=api_env.indexed(status="open"))
    )
    assert [p["id"] for p in open_now][:3] == [auditor["id"], revoke["id"], suspend["id"]]
    assert all(p["status"] == "open" for p in open_now) and admit["id"] not in {p["id"] for p in open_now}
    executed = ok(
        api_env.call("GET", "/governance/proposals", "governor-1", params=api_env.indexed(status="executed"))
    )
    assert [p["id"] for p in executed][:1] == [admit["id"]]
    assert all(p["status"] == "executed" for p in executed)
    assert [p["id"] for p in ok(api_env.call("GET", "/governance/proposals?limit=1", "auditor"))] == [
        auditor["id"]
    ]


@pytest.mark.parametrize(("who", "status"), [("psb", 403), (None, 401)])
def test_proposals_are_not_listed_to_departments(api_env: ApiEnv, who: str | None, status: int) -> None:
    response = api_env.call("GET", "/governance/proposals", who)
    assert response.status_code == status


def test_an_unknown_proposal_status_is_refused(api_env: ApiEnv) -> None:
    response = api_env.call("GET", "/governance/proposals?status=pending", "auditor")
    assert response.status_code == 422 and response.json()["error"]["field"] == "status"


def test_a_proposal_left_at_threshold_is_carried_out_by_execute(api_env: ApiEnv) -> None:
    """A proposal whose standing approvals reach the threshold without its last approval having executed it
    (the threshold lowered since, here by governors through the ledger: the API proposes no threshold change)
    is carried out by ``POST /governance/proposals/{id}/execute``, by another governor than its proposer;
    before, it is ``409 PROPOSAL_BELOW_THRESHOLD``. The module's threshold is restored after."""
    client = api_env.setup.client
    g1, g2 = (api_env.keystore.unlock(name) for name in ("governor-1", "governor-2"))
    auditor = Account.create().address
    proposal = _propose(api_env, {"action": "grant_auditor", "account": auditor})
    path = f"/governance/proposals/{proposal['id']}"
    below = api_env.call("POST", f"{path}/execute", "governor-2")
    assert (below.status_code, below.json()["error"]["code"]) == (409, "PROPOSAL_BELOW_THRESHOLD")

    def set_threshold(value: int, *approvers: Any) -> None:
        data = abi_encode(["uint8"], [value])
        created = client.transact(g1, "propose", int(GovernanceAction.SET_THRESHOLD), data)
        for approver in approvers:
            client.transact(approver, "approve", created.event("ProposalCreated").args["proposalId"])
        assert client.call("threshold") == value

    set_threshold(1, g2)
    try:
        standing = ok(api_env.call("GET", path, "governor-2"))
        assert (standing["status"], standing["approvals"], standing["threshold"]) == ("open", 1, 1)
        assert not client.call("hasRole", client.call("AUDITOR_ROLE"), auditor)
        executed = ok(api_env.call("POST", f"{path}/execute", "governor-2"))
        assert executed["transaction"]["hash"] and executed["record"]["executed"] is True
        assert executed["record"]["status"] == "executed"
        assert client.call("hasRole", client.call("AUDITOR_ROLE"), auditor)
        again = api_env.call("POST", f"{path}/execute", "governor-1")
        assert (again.status_code, again.json()["error"]["code"]) == (409, "PROPOSAL_EXECUTED")
    finally:
        set_threshold(2)  # at threshold 1 the proposer's own approval carries it


def test_a_mistyped_filter_on_a_list_is_a_422_naming_it(api_env: ApiEnv, exchange: dict[str, Any]) -> None:
    """Ignored, ``departmnet`` would answer everyone's history to a reader who asked for one department's."""
    response = api_env.call("GET", "/audit/history", "auditor", params={"departmnet": "PSB", "limit": 5})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", "departmnet")
    assert "did you mean 'department'" in error["message"]


@pytest.mark.parametrize(
    ("path", "who", "query", "name"),
    [("/audit/history", "auditor", "department=PSB&department=HRSS", "department"),
     ("/audit/history", "auditor", "limit=5&event=GrantIssued&limit=500", "limit"),
     ("/resources/export", "auditor", "format=csv&format=json", "format"),
     ("/demands", "auditor", "open=true&open=false", "open"),
     ("/resources", "auditor", "q=户籍&q=", "q")],
    ids=["department", "limit", "format", "open", "q"],
)  # fmt: skip
def test_a_parameter_taking_one_value_given_twice_is_a_422_naming_it(
    api_env: ApiEnv, path: str, who: str, query: str, name: str
) -> None:
    """Which of two values a route takes is its framework's choice (the last), not the client's: a reader
    asking for PSB's and HRSS's history was answered HRSS's alone, a CSV export asked for was JSON."""
    response = api_env.call("GET", f"{path}?{query}", who)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", name)
    assert f"{name!r} is given 2 times" in error["message"]


@pytest.mark.parametrize(
    "query",
    ["resource=0", "agreement=0", f"resource={2**64}", f"agreement={2**64}", f"agreement={2**70}"],
)
def test_history_by_an_id_no_record_can_have_is_a_422_as_on_every_list(api_env: ApiEnv, query: str) -> None:
    """Records are numbered from 1 and the ledger's ids are uint64, as every list's filter by an id holds
    (GET /deliveries?grant_id=0 is a 422): the history answered such a filter with an empty page."""
    name = query.partition("=")[0]
    for path in ("/audit/history", "/deliveries" if name == "agreement" else "/requests"):
        sent = query.replace(name, f"{name}_id") if path != "/audit/history" else query
        response = api_env.call("GET", f"{path}?{sent}", "auditor")
        assert response.status_code == 422, (path, response.text)
        assert response.json()["error"]["field"] == sent.partition("=")[0]


def test_a_parameter_taking_a_list_is_given_as_often_as_needed(
    api_env: ApiEnv, exchange: dict[str, Any]
) -> None:
    query = "event=GrantIssued&event=DeliveryRecorded&event=AgreementConcluded&limit=500"
    events = ok(api_env.call("GET", f"/audit/history?{query}", "auditor"))["items"]
    assert {e["event"] for e in events} == {"AgreementConcluded", "DeliveryRecorded", "GrantIssued"}


def test_declared_query_parameters_are_taken_as_before(api_env: ApiEnv, exchange: dict[str, Any]) -> None:
    agreement = exchange["agreement"]["id"]
    declared = {"department": "PSB", "agreement": agreement, "event": ["DeliveryRecorded", "GrantIssued"],
                "from": "2000-01-01", "limit": 5}  # fmt: skip
    events = ok(api_env.call("GET", "/audit/history", "auditor", params=declared))["items"]
    assert events and {e["event"] for e in events} <= {"DeliveryRecorded", "GrantIssued"}
    assert {e["agreement_id"] for e in events} == {agreement}


def test_an_unknown_parameter_on_a_single_read_is_a_422_naming_it(
    api_env: ApiEnv, exchange: dict[str, Any]
) -> None:
    path = f"/grants/{exchange['grant']['id']}"
    assert ok(api_env.call("GET", path, "psb"))["id"] == exchange["grant"]["id"]
    for who in ("psb", None):  # refused before the token is looked at: the parameters are the document's
        response = api_env.call("GET", path + "?verbose", who)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == "verbose"
        assert "it takes: none" in response.json()["error"]["message"]


def test_an_unknown_parameter_on_a_write_is_refused_before_its_key_is_claimed(api_env: ApiEnv) -> None:
    key = {"Idempotency-Key": "unknown-query-1"}
    refused = api_env.call("POST", "/audit/index?dry_run=1", "auditor", headers=key)
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "dry_run"
    ok(api_env.call("POST", "/audit/index", "auditor", headers=key))


def test_the_console_page_is_not_an_operation_whose_query_is_judged(api_env: ApiEnv) -> None:
    assert api_env.call("GET", "/?lang=zh", None).status_code == 200


def test_every_reference_in_the_openapi_document_resolves(api_env: ApiEnv) -> None:
    """A client generated from /openapi.json (or schemathesis) follows every ``$ref``; one that points nowhere
    leaves that part of an operation undocumented (the body of POST /receipts once referenced a ``$defs`` of
    its own that the document does not have)."""
    document = ok(api_env.client.get("/openapi.json"))
    refs: list[str] = []
    stack: list[Any] = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    assert len(refs) > 50

    def resolve(ref: str) -> object:
        assert ref.startswith("#/"), ref
        found: Any = document
        for part in ref[2:].split("/"):
            assert isinstance(found, dict) and part in found, f"{ref} does not resolve"
            found = found[part]
        return found

    for ref in set(refs):
        resolve(ref)
    body = document["paths"]["/receipts"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    receipts = resolve(body["$ref"])
    assert isinstance(receipts, dict) and receipts["properties"]["receipts"]["maxItems"] == 10_000


def test_the_openapi_documents_integer_bounds_are_the_services_to_the_unit(
    api_env: ApiEnv, exchange: dict[str, Any]
) -> None:
    """FastAPI's document model holds a schema's bounds as floats: the document said a record id could be
    2**64 (the ledger's uint64 ends at 2**64 - 1) and a byte size 2**63, values the service refuses (422)."""
    document = ok(api_env.client.get("/openapi.json"))
    inexact: list[tuple[str, Any]] = []
    stack: list[Any] = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "integer":
                inexact += [(k, node[k]) for k in ("minimum", "maximum") if isinstance(node.get(k), float)]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    assert inexact == []
    schemas = document["components"]["schemas"]
    assert schemas["DeliveryCreate"]["properties"]["byte_size"]["maximum"] == 2**63 - 1
    largest = schemas["GrantCreate"]["properties"]["agreement_id"]["maximum"]
    assert largest == 2**64 - 1
    # The documented largest id is taken (an agreement the ledger does not have); one more is malformed.
    expires_at = period(api_env)[1]
    response = api_env.call(
        "POST", "/grants", "hrss", json={"agreement_id": largest, "expires_at": expires_at}
    )
    assert response.status_code == 404 and response.json()["error"]["code"] == "AGREEMENT_NOT_FOUND"
    response = api_env.call(
        "POST", "/grants", "hrss", json={"agreement_id": largest + 1, "expires_at": expires_at}
    )
    assert response.status_code == 422 and response.json()["error"]["field"] == "agreement_id"


def test_the_terms_of_a_request_not_approved_are_a_409_the_document_declares(api_env: ApiEnv) -> None:
    """Only an approved or concluded request has terms to sign; reading them for a pending or withdrawn one
    answered 409, which the document did not list for the read (schemathesis: an undocumented status)."""
    request = request_access(api_env, "psb", register(api_env, "hrss"))
    for step in ("pending", "withdrawn"):
        if step == "withdrawn":
            ok(api_env.call("POST", f"/requests/{request['id']}/withdraw", "psb"))
        response = api_env.call("GET", f"/requests/{request['id']}/terms", "psb")
        assert response.status_code == 409, (step, response.text)
        assert response.json()["error"]["code"] == "REQUEST_STATUS_MISMATCH"
    document = ok(api_env.client.get("/openapi.json"))
    declared = document["paths"]["/requests/{request_id}/terms"]["get"]["responses"]
    assert "REQUEST_STATUS_MISMATCH" in declared["409"]["description"]
    assert "x-dxl-errors" not in document["paths"]["/requests/{request_id}/terms"]["get"]

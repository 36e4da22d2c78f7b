"""The authorization matrix: every route of /openapi.json by every role, so a new endpoint is covered as soon
as it exists. Expectations follow from the route's kind (health, governance, exchange, membership; read or
write) and the role; a write route whose body has no example below fails the test until one is added."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.api.api_helpers import ApiEnv, b32, delivery_between, govern, ok, outlive_caches

# One deployment per module: keep the module's tests on one xdist worker.
pytestmark = pytest.mark.xdist_group("api-authorization")


ROLES = [None, "auditor", "governor-1", "psb", "hrss", "civil"]
EXCHANGES = {"requests", "agreements", "grants", "deliveries"}
#: Areas this module knows the read semantics of (2xx for a permitted reader with the fixture's ids); reads
#: elsewhere must only pass authorization.
OWN_AREAS = {"healthz", "me", "departments", "governance", "resources", "demands", *EXCHANGES}

#: A valid body per request schema, so permission checks are exercised past validation.
EXAMPLE_BODIES: dict[str, Any] = {
    "ResourceCreate": lambda: {"metadata_hash": b32(), "schema_hash": b32(), "share_type": "conditional"},
    "ResourceUpdate": lambda: {"metadata_hash": b32(), "schema_hash": b32(), "share_type": "conditional"},
    "RequestCreate": lambda: {"resource_id": 1, "purpose": "p", "scope_hash": b32(), "terms_hash": b32(),
                              "valid_from": 1, "valid_until": 2**40},
    "RequestReject": lambda: {"reason_code": 7},
    "SignatureCreate": lambda: {},
    "GrantCreate": lambda: {"agreement_id": 1, "expires_at": 2**40},
    "DeliveryCreate": lambda: {"delivery_id": b32(), "grant_id": 1, "commitment": b32(), "byte_size": 1},
    "DeliveryBatchCreate": lambda: {"deliveries": [EXAMPLE_BODIES["DeliveryCreate"]()]},
    "ReceiptsCreate": lambda: {"receipts": [EXAMPLE_BODIES["DeliveryCreate"]()]},
    "DeliverySettle": lambda: {},
    "DeliveryDispute": lambda: {"consumer_commitment": b32()},
    "ProposalCreate": lambda: {"action": "grant_auditor", "account": "0x" + "11" * 20},
    "PayloadProvenance": lambda: {"manifest": {}, "payload_base64": ""},
    "VerifyRequest": lambda: {"manifest": {}},
    "ReceiptLookup": lambda: {"delivery_ids": [b32()]},
    "CatalogImport": lambda: {"resources": []},
    "DemandCreate": lambda: {"document": {"title": "t", "purpose": "p", "legal_basis": "l"}, "due_by": 2**40},
    "DemandAnswerCreate": lambda: {"answer": "declined", "decline_reason": "not_held"},
    "DemandRejectionCreate": lambda: {"reason": "incomplete"},
    "EvaluationCreate": lambda: {"delivery_id": b32(), "purpose_compliance": 3},
    "InspectionCreate": lambda: {"period_from": 0, "period_to": 30 * 86400, "sample_size": 1},
    "PresentationCreate": lambda: {"delivery_id": b32(), "manifest": {}, "payload_base64": ""},
    "OutcomeCreate": lambda: {"delivery_id": b32()},
}  # fmt: skip


@pytest.fixture(scope="module")
def exchange(api_env: ApiEnv) -> dict[str, Any]:
    """One HRSS → PSB exchange with a delivery: the ids the matrix fills into paths."""
    delivery = delivery_between(api_env, "hrss", "psb")
    # The audit index is current whatever the background follower has done so far.
    ok(api_env.call("POST", "/audit/index", "auditor"))
    grant = ok(api_env.call("GET", f"/grants/{delivery['grant_id']}", "auditor"))
    agreement = ok(api_env.call("GET", f"/agreements/{grant['agreement_id']}", "auditor"))
    demand = ok(api_env.call("POST", "/demands", "psb", json={
        "document": {"title": "t", "purpose": "p", "legal_basis": "l"}, "due_by": 2**40, "addressee": "HRSS",
    }), 201)["record"]  # fmt: skip
    return {
        "request_id": agreement["request_id"], "agreement_id": agreement["id"], "grant_id": grant["id"],
        "delivery_id": delivery["delivery_id"], "resource_id": agreement["resource_id"],
        "commitment": delivery["commitment"],
        "department_id": api_env.departments["HRSS"], "proposal_id": 1, "first_sequence": 0,
        "demand_id": demand["id"], "inspection_id": 1,
    }  # fmt: skip


def _operations(api_env: ApiEnv) -> list[tuple[str, str, dict[str, Any]]]:
    spec = ok(api_env.client.get("/openapi.json"))
    return [(method.upper(), path, op) for path, ops in spec["paths"].items() for method, op in ops.items()]


def _body_schema(op: dict[str, Any]) -> str | None:
    content = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    schema = content.get("schema", {})
    ref = schema.get("$ref") or next((s.get("$ref") for s in schema.get("anyOf", []) if "$ref" in s), None)
    if ref is None and schema.get("oneOf"):
        return "ProposalCreate"
    return ref.rsplit("/", 1)[-1] if ref else None


def expected(role: str | None, method: str, path: str, op: dict[str, Any]) -> str:
    """What ``role`` must get, from the operation's declared ``x-dxl-roles``: "ok" (2xx), "401", "403", "404"
    (an exchange the department is not party to), "allowed" (anything but 401/403/5xx), or "skip" (a
    department write: it would change the fixture)."""
    roles = op["x-dxl-roles"]
    if not roles:
        return "ok"
    if role is None:
        return "401"
    kind = "governor" if role.startswith("governor") else role if role == "auditor" else "department"
    if kind not in roles:
        return "403"
    area = path.split("/")[1]
    about_the_exchange = area in EXCHANGES or "provenance" in path
    if role == "civil" and "{" in path and about_the_exchange:
        return "404"  # civil is party to nothing in the fixture exchange: it is hidden as unknown ids are
    if method != "GET":
        return "skip" if kind == "department" else "allowed"
    return "ok" if area in OWN_AREAS else "allowed"


def test_matrix_covers_every_route(api_env: ApiEnv, exchange: dict[str, Any]) -> None:
    checked = 0
    failures = []
    for method, path, op in _operations(api_env):
        unknown = [name for name in re.findall(r"\{(\w+)\}", path) if name not in exchange]
        if unknown:
            failures.append(f"{method} {path}: add a fixture value for path parameter(s) {unknown}")
            continue
        if "x-dxl-roles" not in op:
            failures.append(f"{method} {path}: the OpenAPI operation does not declare x-dxl-roles")
            continue
        url = re.sub(r"\{(\w+)\}", lambda m: str(exchange[m.group(1)]), path)
        schema = _body_schema(op)
        if method != "GET" and schema is not None and schema not in EXAMPLE_BODIES:
            failures.append(f"{method} {path}: add an example body for {schema} to EXAMPLE_BODIES")
            continue
        for role in ROLES:
            want = expected(role, method, path, op)
            if want == "skip":
                continue
            body = EXAMPLE_BODIES[schema]() if schema else None
            response = api_env.call(method, url, role, json=body)
            got = response.status_code
            code = response.json().get("error", {}).get("code") if got >= 400 else None
            good = {
                "ok": 200 <= got < 300,
                "401": got == 401 and code == "UNAUTHENTICATED",
                "403": got == 403 and code in ("FORBIDDEN", "NOT_A_PARTY"),
                "404": got == 404 and code is not None and code.endswith("NOT_FOUND"),
                "allowed": got not in (401, 403) and got < 500,
                "skip": True,
            }[want]
            checked += 1
            if not good:
                failures.append(
                    f"{role or 'anonymous'} {method} {path}: want {want}, got {got} {response.text}"
                )
    assert not failures, "\n".join(failures)
    assert checked > 100


def test_documentation_is_public_and_lists_every_route(api_env: ApiEnv) -> None:
    assert api_env.client.get("/docs").status_code == 200
    spec = ok(api_env.client.get("/openapi.json"))
    assert len(spec["paths"]) >= 20


@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Bearer dxl_not-a-token", "Basic YTpi", "Bearer " + "dxl_" + "x" * 500, "dxl_x"],
)
def test_bad_tokens_are_unauthenticated(api_env: ApiEnv, authorization: str) -> None:
    response = api_env.client.get("/resources", headers={"Authorization": authorization})
    assert response.status_code == 401 and response.json()["error"]["code"] == "UNAUTHENTICATED"
    assert response.headers["www-authenticate"] == "Bearer"


def test_department_cannot_act_as_another(api_env: ApiEnv, exchange: dict[str, Any]) -> None:
    """PSB (the consumer) tries the provider's (HRSS's) actions; nothing reaches the chain."""
    before = ok(api_env.call("GET", f"/grants/{exchange['grant_id']}", "auditor"))
    cases = [
        ("POST", f"/agreements/{exchange['agreement_id']}/suspend", None),
        ("POST", f"/grants/{exchange['grant_id']}/revoke", None),
        ("POST", "/grants", {"agreement_id": exchange["agreement_id"], "expires_at": 2**40}),
        ("POST", "/deliveries", {"delivery_id": b32(), "grant_id": exchange["grant_id"], "commitment": b32(),
                                 "byte_size": 1}),
        ("PUT", f"/resources/{exchange['resource_id']}",
         {"metadata_hash": b32(), "schema_hash": b32(), "share_type": "not_shared", "sensitivity": 1}),
    ]  # fmt: skip
    for method, path, body in cases:
        response = api_env.call(method, path, "psb", json=body)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["code"] in ("NOT_A_PARTY", "NOT_RESOURCE_OWNER")
    # HRSS (provider) may not acknowledge for PSB (consumer).
    response = api_env.call("POST", f"/deliveries/{exchange['delivery_id']}/acknowledge", "hrss", json={})
    assert response.status_code == 403 and response.json()["error"]["code"] == "NOT_A_PARTY"
    assert ok(api_env.call("GET", f"/grants/{exchange['grant_id']}", "auditor")) == before
    assert ok(api_env.call("GET", f"/agreements/{exchange['agreement_id']}", "auditor"))["status"] == "active"


def test_department_cannot_read_exchanges_of_others(api_env: ApiEnv, exchange: dict[str, Any]) -> None:
    """CIVIL neither reads the HRSS-PSB exchange by id (answered as an unknown id) nor sees it in lists; the
    parties and auditor do."""
    for path, code in ((f"/requests/{exchange['request_id']}", "REQUEST_NOT_FOUND"),
                       (f"/requests/{exchange['request_id']}/terms", "REQUEST_NOT_FOUND"),
                       (f"/agreements/{exchange['agreement_id']}", "AGREEMENT_NOT_FOUND"),
                       (f"/grants/{exchange['grant_id']}", "GRANT_NOT_FOUND"),
                       (f"/deliveries/{exchange['delivery_id']}", "DELIVERY_NOT_FOUND")):  # fmt: skip
        response = api_env.call("GET", path, "civil")
        assert response.status_code == 404 and response.json()["error"]["code"] == code, path
    civil = api_env.departments["CIVIL"]
    for collection, key in (("requests", "request_id"), ("agreements", "agreement_id"),
                            ("grants", "grant_id"), ("deliveries", "delivery_id")):  # fmt: skip
        mine = ok(api_env.call("GET", f"/{collection}", "civil"))
        assert all(civil in (r["provider"], r["consumer"]) for r in mine), collection
        ident = "delivery_id" if collection == "deliveries" else "id"
        assert exchange[key] not in {r[ident] for r in mine}
        for who in ("psb", "hrss", "auditor"):
            assert exchange[key] in {r[ident] for r in ok(api_env.call("GET", f"/{collection}", who))}


def _policy(method: str, path: str) -> list[str]:
    """The product's rules, written independently of the code: who may call an operation of the API's own
    areas (an auditor writes nothing, governors administer, departments act, exchanges are read by parties
    and auditors)."""
    area = path.split("/")[1]
    if path == "/healthz":
        return []
    if area == "governance":
        return ["governor"] if method != "GET" else ["auditor", "governor"]
    if method != "GET":
        return ["department"]
    if area in EXCHANGES:
        return ["auditor", "department"]
    return ["auditor", "department", "governor"]


def test_declared_roles_follow_the_policy(api_env: ApiEnv) -> None:
    """The roles the OpenAPI document declares (from each route's dependencies) are the product's policy, so
    a route given the wrong dependency alias fails here, not only in the matrix."""
    wrong = [
        f"{method} {path}: declares {op['x-dxl-roles']}, policy {_policy(method, path)}"
        for method, path, op in _operations(api_env)
        if path.split("/")[1] in OWN_AREAS and op["x-dxl-roles"] != _policy(method, path)
    ]
    assert not wrong, "\n".join(wrong)


def test_an_exchange_a_department_is_not_party_to_reads_exactly_as_an_unknown_id(
    api_env: ApiEnv, exchange: dict[str, Any]
) -> None:
    """api/README, note 2: a department not party to an exchange gets exactly the answer of an id that does
    not exist — status, code and body, the id it asked for aside — reading or writing, so ids in other
    departments' exchanges cannot be probed (the body was not compared)."""
    unknown = {"request_id": 10**9, "agreement_id": 10**9, "grant_id": 10**9,
               "delivery_id": "0x" + "7f" * 32}  # fmt: skip
    for method, path in (("GET", "/requests/{request_id}"), ("GET", "/requests/{request_id}/terms"),
                         ("POST", "/requests/{request_id}/approve"), ("GET", "/agreements/{agreement_id}"),
                         ("POST", "/agreements/{agreement_id}/suspend"), ("GET", "/grants/{grant_id}"),
                         ("POST", "/grants/{grant_id}/revoke"), ("GET", "/deliveries/{delivery_id}"),
                         ("POST", "/deliveries/{delivery_id}/acknowledge"),
                         ("GET", "/audit/deliveries/{delivery_id}/provenance")):  # fmt: skip
        name = path.split("{")[1].split("}")[0]
        real, fake = str(exchange[name]), str(unknown[name])
        hidden = api_env.call(
            method, path.replace(f"{{{name}}}", real), "civil", json={} if method == "POST" else None
        )
        absent = api_env.call(
            method, path.replace(f"{{{name}}}", fake), "civil", json={} if method == "POST" else None
        )
        assert hidden.status_code == absent.status_code == 404, (path, hidden.text, absent.text)
        assert hidden.text == absent.text.replace(fake, real), (path, hidden.text, absent.text)


def test_an_auditor_governance_revoked_loses_access_with_no_token_revoked(api_env: ApiEnv) -> None:
    """The `auditor` principal is the auditor whose key the service holds: once governance revokes that
    auditor on chain (`revoke_auditor`), its tokens are refused (401) within the second the service trusts
    what it read of the chain (api.receipts.grants.GRANT_CACHE_TTL_S), no operator revoking them; appointed
    again, the same token works again. Before, a revoked auditor kept reading every department's exchanges."""
    auditor = api_env.setup.report.auditor
    assert ok(api_env.call("GET", "/deliveries", "auditor")) is not None
    ok(govern(api_env, {"action": "revoke_auditor", "account": auditor}))
    try:
        outlive_caches(api_env.app)
        for path in ("/me", "/deliveries", "/inspections"):
            refused = api_env.call("GET", path, "auditor")
            assert refused.status_code == 401, (path, refused.text)
            error = refused.json()["error"]
            assert error["code"] == "UNAUTHENTICATED" and "auditor role" in error["message"], error
        assert api_env.call("GET", "/deliveries", "psb").status_code == 200  # a department is not concerned
    finally:
        ok(govern(api_env, {"action": "grant_auditor", "account": auditor}))
    outlive_caches(api_env.app)
    assert ok(api_env.call("GET", "/me", "auditor"))["role"] == "auditor"

"""GET /deliveries, /grants, /agreements, /requests, /resources, /governance/proposals: read from the audit
index, newest first, with cursor pages, filters and the same authorization as one record (a department sees
the exchanges it is party to, an auditor all, a governor none of them; everyone the catalog; governors and
auditors the proposals); ``min_block`` reads a write just made. Every record a list answers is the one its
look-up by id reads from the chain, and a list reads nothing from the chain per record."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from api.app import connect_ledger
from api.auth import Principal, Role
from api.db import make_engine, session_factory
from api.errors import ApiError
from api.ledger import LedgerService, ListPage
from node.audit.queries import CURSOR_PATTERN, ListFilter, encode_cursor
from node.audit.service import AuditContext, open_context
from tests.api.api_helpers import (
    ApiEnv,
    agreement_between,
    b32,
    catalog_document,
    delivery_id_for,
    govern,
    grant_between,
    no_database,
    ok,
    register,
    request_access,
    sql,
)
from tests.rpc_proxy import RpcProxy

# One deployment per module: keep the module's tests on one xdist worker.
pytestmark = pytest.mark.xdist_group("api-lists")


def _record(env: ApiEnv, grant: dict[str, Any], n: int) -> tuple[list[str], int]:
    """Records ``n`` deliveries under ``grant`` in one batch; their ids in order and the block they are in."""
    items = [
        {"delivery_id": delivery_id_for(grant["provider"]), "grant_id": grant["id"], "commitment": b32(),
         "byte_size": 100 + i}
        for i in range(n)
    ]  # fmt: skip
    written = ok(env.call("POST", "/deliveries/batch", "hrss", json={"deliveries": items}), 201)
    return [i["delivery_id"] for i in items], written["transaction"]["block_number"]


def _pages(
    env: ApiEnv, who: str, params: dict[str, Any], path: str = "/deliveries"
) -> list[list[dict[str, Any]]]:
    """Every page of a list, following the ``next`` links."""
    pages = []
    response = env.call("GET", path, who, params=params)
    while True:
        pages.append(ok(response))
        following = response.links.get("next")
        if following is None:
            return pages
        response = env.call("GET", following["url"], who)


@pytest.fixture(scope="module")
def recorded(api_env: ApiEnv) -> dict[str, Any]:
    """HRSS → PSB: seven deliveries under one grant (the last two settled), three under another."""
    grant, other = grant_between(api_env, "hrss", "psb"), grant_between(api_env, "hrss", "psb")
    ids, _ = _record(api_env, grant, 7)
    others, _ = _record(api_env, other, 3)
    acked = ok(api_env.call("POST", f"/deliveries/{ids[-2]}/acknowledge", "psb"))
    disputed = ok(
        api_env.call("POST", f"/deliveries/{ids[-1]}/dispute", "psb", json={"consumer_commitment": b32()})
    )
    block = max(acked["transaction"]["block_number"], disputed["transaction"]["block_number"])
    return {"grant": grant, "other": other, "ids": ids, "others": others, "block": block}


def test_a_write_just_made_is_listed_with_min_block(api_env: ApiEnv, recorded: dict[str, Any]) -> None:
    response = api_env.call(
        "GET",
        "/deliveries",
        "psb",
        params={"grant_id": recorded["grant"]["id"], "min_block": recorded["block"]},
    )
    listed = ok(response)
    assert int(response.headers["X-Indexed-Block"]) >= recorded["block"]
    # Newest first; the statuses are what the settlements made them, as GET /deliveries/{id} says.
    assert [d["delivery_id"] for d in listed] == recorded["ids"][::-1]
    assert [d["status"] for d in listed[:3]] == ["disputed", "acknowledged", "recorded"]
    for d in listed:
        assert d == ok(api_env.call("GET", f"/deliveries/{d['delivery_id']}", "psb"))


def test_pages_follow_the_next_link_without_gaps_or_repeats(
    api_env: ApiEnv, recorded: dict[str, Any]
) -> None:
    params = {"grant_id": recorded["grant"]["id"], "limit": 3, "min_block": recorded["block"]}
    pages = _pages(api_env, "auditor", params)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [d["delivery_id"] for p in pages for d in p] == recorded["ids"][::-1]


def test_filters_narrow_the_list(api_env: ApiEnv, recorded: dict[str, Any]) -> None:
    other = recorded["other"]
    base = {"min_block": recorded["block"], "limit": 500}
    by_grant = ok(api_env.call("GET", "/deliveries", "auditor", params={**base, "grant_id": other["id"]}))
    assert [d["delivery_id"] for d in by_grant] == recorded["others"][::-1]
    by_agreement = ok(
        api_env.call("GET", "/deliveries", "auditor", params={**base, "agreement_id": other["agreement_id"]})
    )
    assert {d["grant_id"] for d in by_agreement} == {other["id"]}
    as_consumer = ok(
        api_env.call("GET", "/deliveries", "auditor", params={**base, "consumer": other["provider"]})
    )
    assert not {d["delivery_id"] for d in as_consumer} & set(recorded["ids"] + recorded["others"])


@pytest.mark.parametrize(
    ("path", "name", "code"),
    [("/deliveries", "provider", "HRSS"), ("/deliveries", "consumer", "PSB"), ("/grants", "provider", "HRSS"),
     ("/grants", "consumer", "PSB"), ("/agreements", "provider", "HRSS"), ("/agreements", "consumer", "PSB"),
     ("/requests", "provider", "HRSS"), ("/requests", "consumer", "PSB"), ("/demands", "publisher", "HRSS"),
     ("/demands", "addressee", "PSB"), ("/resources", "owner", "HRSS")],
)  # fmt: skip
def test_a_department_filter_takes_a_code_or_an_id_and_refuses_one_never_admitted(
    api_env: ApiEnv, recorded: dict[str, Any], path: str, name: str, code: str
) -> None:
    """The list filters by department took an id only, and answered an empty list for a code (a 422) or an
    id no department has, as if that department had nothing: they read as ``owner`` does."""
    # The demands are read from an index brought up to the chain's head first: they take no min_block.
    base = {"limit": 500} if path == "/demands" else {"min_block": recorded["block"], "limit": 500}
    by_id = ok(api_env.call("GET", path, "auditor", params={**base, name: api_env.departments[code]}))
    assert ok(api_env.call("GET", path, "auditor", params={**base, name: code})) == by_id
    if path != "/demands":  # the module's records: HRSS provided them to PSB, and owns resources
        assert by_id and all(r[name] == api_env.departments[code] for r in by_id)
    for unknown in ("NOPE", "4000000", "0", str(2**32)):
        refused = api_env.call("GET", path, "auditor", params={**base, name: unknown})
        error = refused.json()["error"]
        assert (refused.status_code, error["code"]) == (404, "DEPARTMENT_NOT_FOUND"), refused.text
    malformed = api_env.call("GET", path, "auditor", params={**base, name: "hrss!"})
    assert (malformed.status_code, malformed.json()["error"]["field"]) == (422, name)


def test_departments_list_only_their_own_exchanges(api_env: ApiEnv, recorded: dict[str, Any]) -> None:
    mine = set(recorded["ids"] + recorded["others"])
    params = {"min_block": recorded["block"], "limit": 500}
    for who in ("hrss", "psb", "auditor"):
        assert mine <= {d["delivery_id"] for p in _pages(api_env, who, params) for d in p}
    # Another department sees none of them, also when it names their grant.
    civil = api_env.departments["CIVIL"]
    for p in _pages(api_env, "civil", params):
        assert all(civil in (d["provider"], d["consumer"]) for d in p)
    assert (
        ok(
            api_env.call(
                "GET", "/deliveries", "civil", params={**params, "grant_id": recorded["grant"]["id"]}
            )
        )
        == []
    )
    assert api_env.call("GET", "/deliveries", "governor-1").status_code == 403
    assert api_env.call("GET", "/deliveries", None).status_code == 401


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"cursor": "not-a-cursor"}, 422, "VALIDATION_ERROR"),
        # Well formed, for a position past what the index's database binds: a 500 on every list before.
        ({"cursor": encode_cursor(2**63)}, 422, "VALIDATION_ERROR"),
        ({"limit": 501}, 422, "VALIDATION_ERROR"),
        ({"grant_id": 0}, 422, "VALIDATION_ERROR"),
        ({"min_block": -1}, 422, "VALIDATION_ERROR"),
        # A block the chain has not reached: no index can hold it yet.
        ({"min_block": 10**12}, 422, "VALIDATION_ERROR"),
    ],
)
def test_bad_list_parameters_are_refused(
    api_env: ApiEnv, params: dict[str, Any], status: int, code: str
) -> None:
    response = api_env.call("GET", "/deliveries", "auditor", params=params)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


@pytest.fixture(scope="module")
def an_agreement(api_env: ApiEnv) -> dict[str, Any]:
    return agreement_between(api_env, "hrss", "psb")


#: The one list answered whole: the export of the catalog (GET /resources pages the same entries).
_UNPAGED = {"/resources/export"}


def test_every_list_is_paged_with_the_same_bounds(api_env: ApiEnv) -> None:
    """Every operation answering a JSON array takes ``limit`` (1-500) and ``cursor``: a list that grows with
    the ledger's age (inspections, demands, evaluations, departments) is never answered whole."""
    document = ok(api_env.call("GET", "/openapi.json", None))
    lists = {
        path: {p["name"]: p for p in op.get("parameters", [])}
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        if method == "get"
        and op["responses"].get("200", {}).get("content", {}).get("application/json", {}).get("schema", {})
        .get("type") == "array"
    }  # fmt: skip
    assert {"/inspections", "/demands", "/departments", "/agreements/{agreement_id}/evaluations"} <= set(
        lists
    )
    for path, params in lists.items():
        if path in _UNPAGED:
            continue
        assert {"limit", "cursor"} <= set(params), path
        # The cursor's form, so that a generated cursor is one the list reads (a string of no cursor's form
        # was refused by every list, though the document took any string).
        assert {"type": "string", "maxLength": 200, "pattern": CURSOR_PATTERN} in params["cursor"]["schema"][
            "anyOf"
        ], path
        bound = params["limit"]["schema"]
        assert (bound["minimum"], bound["maximum"], bound["default"]) == (1, 500, 100), path


@pytest.mark.parametrize("path", ["/departments", "/demands", "/inspections", "/agreements/1/evaluations"])
@pytest.mark.parametrize(
    "params",
    [{"limit": 501}, {"limit": 0}, {"limit": "1.0"}, {"cursor": "not-a-cursor"},
     # Well formed, for no record of the list.
     {"cursor": encode_cursor(2**40)}, {"cursor": encode_cursor(2**63)}],
)  # fmt: skip
def test_bad_paging_of_the_lists_read_from_the_chain_is_refused(
    api_env: ApiEnv, an_agreement: dict[str, Any], path: str, params: dict[str, Any]
) -> None:
    path = path.replace("/agreements/1/", f"/agreements/{an_agreement['id']}/")
    response = api_env.call("GET", path, "auditor", params=params)
    assert (response.status_code, response.json()["error"]["code"]) == (422, "VALIDATION_ERROR"), (
        response.text
    )
    assert response.json()["error"].get("field") in ("limit", "cursor"), response.text


def test_departments_are_listed_in_pages(api_env: ApiEnv) -> None:
    everything = ok(api_env.call("GET", "/departments", "governor-1"))
    # Every department the ledger holds: the demo consortium's, and any a test of the module admitted before.
    count = int(api_env.setup.client.call("departmentCount"))
    assert [d["id"] for d in everything] == list(range(1, count + 1))
    assert set(api_env.departments.values()) <= {d["id"] for d in everything}
    assert [p for p in _pages(api_env, "governor-1", {"limit": 2}, "/departments")] == [
        everything[i : i + 2] for i in range(0, len(everything), 2)
    ]
    # An empty cursor is the first page, as on the lists read from the audit index.
    assert ok(api_env.call("GET", "/departments", "psb", params={"cursor": ""})) == everything


@pytest.mark.parametrize("path", ["/deliveries", "/grants", "/agreements", "/requests"])
def test_a_governor_lists_no_exchanges(api_env: ApiEnv, path: str) -> None:
    assert api_env.call("GET", path, "governor-1").status_code == 403
    assert api_env.call("GET", path, None).status_code == 401


def test_grants_agreements_and_requests_are_listed_in_their_current_status(api_env: ApiEnv) -> None:
    kept, revoked = grant_between(api_env, "hrss", "psb"), grant_between(api_env, "hrss", "psb")
    ok(api_env.call("POST", f"/grants/{revoked['id']}/revoke", "hrss"))
    suspended = agreement_between(api_env, "hrss", "psb")
    last = ok(api_env.call("POST", f"/agreements/{suspended['id']}/suspend", "hrss"))["transaction"]
    params = {"min_block": last["block_number"], "limit": 500}

    grants = {g["id"]: g for g in ok(api_env.call("GET", "/grants", "psb", params=params))}
    for grant in (kept, revoked):
        assert grants[grant["id"]] == ok(api_env.call("GET", f"/grants/{grant['id']}", "psb"))
    assert (grants[kept["id"]]["revoked"], grants[revoked["id"]]["revoked"]) == (False, True)

    agreements = {a["id"]: a for a in ok(api_env.call("GET", "/agreements", "hrss", params=params))}
    ids = [kept["agreement_id"], revoked["agreement_id"], suspended["id"]]
    for agreement_id in ids:
        assert agreements[agreement_id] == ok(api_env.call("GET", f"/agreements/{agreement_id}", "hrss"))
    assert agreements[suspended["id"]]["status"] == "suspended"

    requests = {r["id"]: r for r in ok(api_env.call("GET", "/requests", "auditor", params=params))}
    for agreement_id in ids:
        request_id = agreements[agreement_id]["request_id"]
        assert requests[request_id] == ok(api_env.call("GET", f"/requests/{request_id}", "auditor"))
        assert requests[request_id]["status"] == "concluded"

    # Newest first, one by one through the next links, and none of it to a department not party to it.
    for path in ("/grants", "/agreements", "/requests"):
        pages = _pages(api_env, "psb", {**params, "limit": 1}, path)
        listed = [p[0]["id"] for p in pages]
        assert all(len(p) == 1 for p in pages) and listed == sorted(listed, reverse=True)
        civil = api_env.departments["CIVIL"]
        others = ok(api_env.call("GET", path, "civil", params=params))
        assert all(civil in (r["provider"], r["consumer"]) for r in others)
    assert {revoked["id"], kept["id"]} <= {
        g["id"] for p in _pages(api_env, "psb", {**params, "limit": 1}, "/grants") for g in p
    }


@pytest.mark.parametrize("by", ["provider", "governance"])
def test_a_revoked_agreements_grants_are_listed_revoked_as_their_look_up_reads_them(
    api_env: ApiEnv, by: str
) -> None:
    """The ledger's ``grant(id)`` view reads a grant revoked once its agreement is, with no event of the
    grant's own (no ``GrantRevoked``): the list, built from the indexed events, reads the agreement's
    revocation too. Before, ``GET /grants`` listed such a grant ``revoked: false`` while ``GET /grants/{id}``
    said true."""
    grant = grant_between(api_env, "hrss", "psb")
    if by == "provider":
        revoked = ok(api_env.call("POST", f"/agreements/{grant['agreement_id']}/revoke", "hrss"))
    else:
        revoked = ok(govern(api_env, {"action": "revoke_agreement", "agreement_id": grant["agreement_id"]}))
    params = {"min_block": revoked["transaction"]["block_number"], "agreement_id": grant["agreement_id"]}
    for who in ("psb", "hrss", "auditor"):
        looked_up = ok(api_env.call("GET", f"/grants/{grant['id']}", who))
        assert looked_up["revoked"] is True
        assert ok(api_env.call("GET", "/grants", who, params=params)) == [looked_up]


def test_min_block_within_the_confirmation_depth_is_index_behind(api_env: ApiEnv, tmp_path: Path) -> None:
    # An index that stays 5 blocks behind the head (its own database, the module's chain) cannot hold the
    # head's block yet: the list says so (503, retry) instead of answering without the caller's write.
    settings = api_env.settings.model_copy(update={"audit_confirmations": 5})
    index = open_context(settings, database_url=f"sqlite:///{tmp_path / 'audit.sqlite3'}")
    ledger = connect_ledger(api_env.settings, no_database)
    head = api_env.setup.client.w3.eth.block_number
    with pytest.raises(ApiError) as caught:
        ledger.deliveries(
            principal=Principal(Role.AUDITOR),
            index=index,
            flt=ListFilter(),
            page=ListPage(limit=10, min_block=head),
        )
    assert (caught.value.code, caught.value.status) == ("INDEX_BEHIND", 503)
    assert head - 5 <= caught.value.details["indexed_block"] < head


# --- requests, the catalog and proposals: every record as the chain holds it, none of it read per record ---


@dataclass
class Counted:
    """A ledger service whose node is behind a proxy counting what it is asked; the API's audit index."""

    ledger: LedgerService
    index: AuditContext
    proxy: RpcProxy

    def node_calls(self, read: Callable[[], Any]) -> tuple[Any, dict[str, int]]:
        """What ``read`` returns and the JSON-RPC calls it made to the node, by method."""
        before = dict(self.proxy.asked)
        result = read()
        return result, {k: v - before.get(k, 0) for k, v in self.proxy.asked.items() if v != before.get(k, 0)}


@pytest.fixture(scope="module")
def counted(api_env: ApiEnv) -> Iterator[Counted]:
    with RpcProxy(str(api_env.settings.rpc_url)) as proxy:
        settings = api_env.settings.model_copy(update={"rpc_url": proxy.url})
        engine = make_engine(settings.effective_database_url)
        sessions = session_factory(engine)
        try:
            ledger = connect_ledger(settings, lambda: sessions)
            assert sum(proxy.asked.values()) > 0, "the ledger reads the chain through the proxy"
            yield Counted(ledger, open_context(api_env.settings), proxy)
        finally:
            engine.dispose()


def _everything(env: ApiEnv, path: str, who: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every record of a list, page after page, checked to come newest first with none twice."""
    listed = [r for p in _pages(env, who, params, path) for r in p]
    ids = [r["id"] for r in listed]
    assert ids == sorted(set(ids), reverse=True), ids
    return listed


def _counts(env: ApiEnv) -> dict[str, int]:
    requests, _, _ = env.setup.client.call("counts")
    return {
        "/requests": int(requests),
        "/resources": int(env.setup.client.call("resourceCount")),
        "/governance/proposals": int(env.setup.client.call("proposalCount")),
    }


@pytest.fixture(scope="module")
def statuses(api_env: ApiEnv) -> dict[str, Any]:
    """Requests in every status the ledger gives one, among them approvals on arrival that read as pending
    again (their resource no longer unconditionally shared: an update, no event of the request); resources
    with a document, a tampered document, none, and an updated entry; proposals open, executed and cancelled,
    concerning a department, an agreement and an account."""
    conditional, shared, unshared = (
        register(api_env, "hrss"),
        register(api_env, "hrss", "unconditional"),
        register(api_env, "hrss", "unconditional"),
    )
    made = {
        "pending": request_access(api_env, "psb", conditional),
        "approved": request_access(api_env, "psb", conditional),
        "rejected": request_access(api_env, "psb", conditional),
        "withdrawn": request_access(api_env, "psb", conditional),
        "on arrival": request_access(api_env, "psb", shared),
        "on arrival, unshared since": request_access(api_env, "civil", unshared),
    }
    ok(api_env.call("POST", f"/requests/{made['approved']['id']}/approve", "hrss"))
    ok(api_env.call("POST", f"/requests/{made['rejected']['id']}/reject", "hrss", json={"reason_code": 3}))
    ok(api_env.call("POST", f"/requests/{made['withdrawn']['id']}/withdraw", "psb"))
    update = {"metadata_hash": b32(), "schema_hash": b32(), "share_type": "conditional", "sensitivity": 4}
    ok(api_env.call("PUT", f"/resources/{unshared}", "hrss", json=update))
    agreement = agreement_between(api_env, "hrss", "psb")
    ok(api_env.call("POST", f"/agreements/{agreement['id']}/suspend", "hrss"))

    document = catalog_document("列表校验 " + b32()[2:10])
    body = {"metadata": document, "schema_hash": b32(), "share_type": "unconditional", "sensitivity": 1}
    documented = ok(api_env.call("POST", "/resources", "civil", json=body), 201)["record"]
    tampered = ok(api_env.call("POST", "/resources", "civil", json={**body, "metadata": {**document,
                  "dct:title": "改前"}}), 201)["record"]  # fmt: skip
    sql(api_env, "UPDATE api_catalog_documents SET document = :d WHERE metadata_hash = :h",
        d='{"dct:title": "改后"}', h=tampered["metadata_hash"])  # fmt: skip

    def propose(body: dict[str, Any]) -> dict[str, Any]:
        record: dict[str, Any] = ok(
            api_env.call("POST", "/governance/proposals", "governor-1", json=body), 201
        )["record"]
        return record

    executed = propose({"action": "grant_auditor", "account": Account.create().address})
    ok(api_env.call("POST", f"/governance/proposals/{executed['id']}/approve", "governor-2"))
    cancelled = propose({"action": "revoke_auditor", "account": api_env.setup.report.auditor})
    ok(api_env.call("POST", f"/governance/proposals/{cancelled['id']}/cancel", "governor-1"))
    propose({"action": "suspend_department", "department_id": api_env.departments["SAMR"]})
    propose({"action": "revoke_agreement", "agreement_id": agreement["id"]})
    propose({"action": "grant_auditor", "account": Account.create().address})
    return {"requests": made, "documented": documented["id"], "tampered": tampered["id"], "updated": unshared}


@pytest.mark.parametrize(
    ("path", "who"),
    [("/requests", "auditor"), ("/resources", "psb"), ("/governance/proposals", "governor-2")],
)
def test_pages_hold_every_record_as_its_look_up_reads_it_from_the_chain(
    api_env: ApiEnv, statuses: dict[str, Any], path: str, who: str
) -> None:
    # Three records a page: more pages than one, followed by their next links, against what the chain holds.
    listed = _everything(api_env, path, who, api_env.indexed(limit=3))
    count = _counts(api_env)[path]
    assert count > 6 and [r["id"] for r in listed] == list(range(count, 0, -1))
    for record in listed:
        assert record == ok(api_env.call("GET", f"{path}/{record['id']}", who)), record["id"]


def test_requests_are_listed_in_the_status_the_ledger_computes(
    api_env: ApiEnv, statuses: dict[str, Any]
) -> None:
    made = statuses["requests"]
    listed = {r["id"]: r for r in _everything(api_env, "/requests", "auditor", api_env.indexed(limit=500))}
    assert {k: listed[r["id"]]["status"] for k, r in made.items()} == {
        "pending": "pending", "approved": "approved", "rejected": "rejected", "withdrawn": "withdrawn",
        "on arrival": "approved", "on arrival, unshared since": "pending",
    }  # fmt: skip
    assert listed[made["rejected"]["id"]]["reason_code"] == 3
    # A department lists only its own requests, an auditor all of them.
    civil = api_env.departments["CIVIL"]
    mine = _everything(api_env, "/requests", "civil", api_env.indexed(limit=2))
    assert {r["id"] for r in mine} == {
        r["id"] for r in listed.values() if civil in (r["provider"], r["consumer"])
    }


def test_the_catalog_lists_each_entry_as_updated_with_its_document_checked(
    api_env: ApiEnv, statuses: dict[str, Any]
) -> None:
    listed = {
        r["id"]: r for r in _everything(api_env, "/resources", "governor-1", api_env.indexed(limit=500))
    }
    assert (listed[statuses["updated"]]["share_type"], listed[statuses["updated"]]["sensitivity"]) == (
        "conditional",
        4,
    )
    assert listed[statuses["documented"]]["verified"] is True
    assert (listed[statuses["tampered"]]["verified"], listed[statuses["tampered"]]["metadata"]) == (
        False,
        {"dct:title": "改后"},
    )


_Kept = Callable[[dict[str, Any]], bool]


@pytest.mark.parametrize(
    ("path", "params", "kept"),
    [
        ("/resources", {"share_type": "unconditional"}, lambda r: r["share_type"] == "unconditional"),
        ("/resources", {"q": "列表校验"}, lambda r: "列表校验" in (r["metadata"] or {}).get("dct:title", "")),
        ("/resources", {"owner": "HRSS", "share_type": "conditional"},
         lambda r: r["owner_code"] == "HRSS" and r["share_type"] == "conditional"),
        ("/governance/proposals", {"status": "open"}, lambda p: p["status"] == "open"),
        ("/governance/proposals", {"status": "cancelled"}, lambda p: p["status"] == "cancelled"),
    ],
)  # fmt: skip
def test_filters_on_the_current_record_page_without_gaps_or_repeats(
    api_env: ApiEnv, statuses: dict[str, Any], path: str, params: dict[str, Any], kept: _Kept
) -> None:
    # Kept only after the index was read: a page of one still ends right after the record it kept.
    params = {k: api_env.departments[v] if k == "owner" else v for k, v in params.items()}
    everything = _everything(api_env, path, "auditor", api_env.indexed(limit=500))
    wanted = [r for r in everything if kept(r)]
    assert wanted, "the module made records this filter keeps"
    assert _everything(api_env, path, "auditor", {**params, "limit": 1}) == wanted
    assert _everything(api_env, path, "auditor", {**params, "limit": 2}) == wanted


GOVERNOR_1 = Principal(Role.GOVERNOR, governor=1)


@pytest.mark.parametrize(
    ("list_", "allowed"),
    [
        # The chain's clock says which requests are overdue: one block header for the whole list.
        (lambda c, page: c.ledger.requests(principal=Principal(Role.AUDITOR), index=c.index, flt=ListFilter(),
                                            page=page), {"eth_getBlockByNumber": 1}),
        (lambda c, page: c.ledger.resources(index=c.index, page=page), {}),
        # The chain's clock says which proposals expired: one block header for the whole list.
        (lambda c, page: c.ledger.proposals(index=c.index, page=page), {"eth_getBlockByNumber": 1}),
        # A governor's: whether its own approval stands, read in the index with the approvals.
        (lambda c, page: c.ledger.proposals(index=c.index, page=page, viewer=GOVERNOR_1),
         {"eth_getBlockByNumber": 1}),
    ],
    ids=["requests", "resources", "proposals", "proposals-governor"],
)  # fmt: skip
def test_a_list_reads_nothing_from_the_chain_per_record(
    counted: Counted,
    statuses: dict[str, Any],
    list_: Callable[[Counted, ListPage], Any],
    allowed: dict[str, int],
) -> None:
    # Read once the index holds the chain's head (the follower runs a moment behind): every record the module
    # made is listed, whichever tests ran before. The index catches up through its own node, not the proxy.
    head = int(counted.ledger.client.w3.eth.block_number)
    listed, asked = counted.node_calls(lambda: list_(counted, ListPage(limit=500, min_block=head)))
    assert len(listed.items) > 6 and asked == allowed
    _, asked = counted.node_calls(lambda: list_(counted, ListPage(limit=1)))
    assert asked == allowed


def test_governors_and_departments_see_what_their_roles_allow(api_env: ApiEnv) -> None:
    for who in ("psb", "auditor", "governor-1"):
        assert api_env.call("GET", "/resources", who).status_code == 200
    assert api_env.call("GET", "/governance/proposals", "psb").status_code == 403
    for path in ("/resources", "/governance/proposals"):
        assert api_env.call("GET", path, None).status_code == 401
        for cursor in ("not-a-cursor", encode_cursor(2**63)):
            bad = api_env.call("GET", path, "auditor", params={"cursor": cursor})
            assert (bad.status_code, bad.json()["error"]["code"]) == (422, "VALIDATION_ERROR"), bad.text


def test_departments_answer_what_the_ledgers_view_says_page_by_page(api_env: ApiEnv) -> None:
    """GET /departments reads the audit index, healed and brought up to the chain's head first: every page,
    to a governor, an auditor and a department alike, holds the departments as the ledger's
    ``department(id)`` view answers them (GET /departments/{id}), in the order of admission, each admission,
    suspension, reinstatement and re-keying (a new encryption key, a new signer and key epoch) made a moment
    before included, and names the block it was read at (``X-Indexed-Block``). A cursor names the id a page
    ended on, as when the list read the chain."""
    from eth_abi.abi import encode as abi_encode

    from node.types import GovernanceAction

    env = api_env
    admitted = []
    for code in ("LISTA", "LISTB", "LISTC"):
        body = {"action": "admit_department", "code": code, "name": f"部门 {code}",
                "signer": Account.create().address, "encryption_key": b32()}  # fmt: skip
        ok(govern(env, body))
        admitted.append(next(d["id"] for d in ok(env.call("GET", "/departments?limit=500", "auditor"))
                             if d["code"] == code))  # fmt: skip
    first, second, third = admitted
    client = env.setup.client
    governors = [env.keystore.unlock(name) for name in ("governor-1", "governor-2")]

    def rekey(department: int, signer: str) -> None:
        data = abi_encode(["uint32", "address", "bytes32"], [department, signer, bytes.fromhex(b32()[2:])])
        proposed = client.transact(governors[0], "propose", GovernanceAction.REKEY_DEPARTMENT, data)
        client.transact(governors[1], "approve", proposed.event("ProposalCreated").args["proposalId"])

    same = ok(env.call("GET", f"/departments/{first}", "auditor"))["signer"]
    rekey(first, same)  # the encryption key alone
    rekey(second, Account.create().address)  # a new signer: a new key epoch
    ok(govern(env, {"action": "suspend_department", "department_id": third}))
    ok(govern(env, {"action": "suspend_department", "department_id": first}))
    reinstated = ok(govern(env, {"action": "reinstate_department", "department_id": first}))
    last = int(reinstated["transaction"]["block_number"])
    count = int(client.call("departmentCount"))
    expected = [ok(env.call("GET", f"/departments/{i}", "auditor")) for i in range(1, count + 1)]
    assert [d["status"] for d in expected[-3:]] == ["active", "active", "suspended"]
    assert expected[second - 1]["key_epoch"] == 1 and expected[first - 1]["key_epoch"] == 0
    for who in ("governor-1", "auditor", "hrss"):
        for limit in (1, 2, 500):
            got, blocks = [], set()
            response = env.call("GET", "/departments", who, params={"limit": limit})
            while True:
                got.append(ok(response))
                blocks.add(int(response.headers["X-Indexed-Block"]))
                following = response.links.get("next")
                if following is None:
                    break
                response = env.call("GET", following["url"], who)
            assert [d for page in got for d in page] == expected, (who, limit)
            assert all(len(page) <= limit for page in got) and min(blocks) >= last
    after_second = ok(env.call("GET", "/departments", "psb", params={"cursor": encode_cursor(second)}))
    assert after_second == expected[second:]
    past = env.call("GET", "/departments", "psb", params={"cursor": encode_cursor(count + 1)})
    assert (past.status_code, past.json()["error"]["field"]) == (422, "cursor")


def test_a_page_of_departments_scans_the_keystore_once(
    api_env: ApiEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether the service holds each listed department's key is answered from one scan of the keystore
    directory per page, reading again only the key files changed since the scan before: a page of departments
    whose keys it does not hold reads no key file for each of them. A key the service is given is seen at the
    next page."""
    from node.keys import KeyStore

    signers = {}
    for code in ("SCANA", "SCANB", "SCANC"):
        signers[code] = Account.create()
        body = {"action": "admit_department", "code": code, "name": f"部门 {code}",
                "signer": signers[code].address, "encryption_key": b32()}  # fmt: skip
        ok(govern(api_env, body))

    def page() -> dict[str, bool]:
        listed = ok(api_env.call("GET", "/departments", "auditor", params={"limit": 500}))
        return {d["code"]: d["custodied"] for d in listed}

    # The auditor's standing (whose key the token stands for) is read at most once a second, a keystore scan
    # of its own: held for the test, so that only the page's scans are counted, however slow the machine.
    monkeypatch.setattr("api.ledger.core.GRANT_CACHE_TTL_S", 3600.0)
    page()
    scans: list[object] = []
    reads: list[str] = []
    scan, read = KeyStore._entries, KeyStore._read

    def counted_scan(self: KeyStore) -> Any:
        scans.append(self)
        return scan(self)

    def counted_read(self: KeyStore, name: str) -> Any:
        reads.append(name)
        return read(self, name)

    monkeypatch.setattr(KeyStore, "_entries", counted_scan)
    monkeypatch.setattr(KeyStore, "_read", counted_read)
    held = page()
    assert not any(held[code] for code in signers)
    assert (len(scans), reads) == (1, [])
    api_env.keystore.create("dept-scanb", private_key=signers["SCANB"].key)
    try:
        assert page()["SCANB"]
        assert reads == ["dept-scanb"]
    finally:
        api_env.keystore.path("dept-scanb").unlink()
    assert not page()["SCANB"]

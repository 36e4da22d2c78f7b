"""GET /deliveries, /grants, /agreements, /requests: read from the audit index, newest first, with cursor
pages, filters and the same authorization as one record (a department sees the exchanges it is party to, an
auditor all, a governor none); ``min_block`` reads a write just made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from api_helpers import ApiEnv, agreement_between, b32, delivery_id_for, grant_between, ok

from api.app import connect_ledger
from api.auth import Principal, Role
from api.errors import ApiError
from node.audit.queries import ListFilter
from node.audit.service import open_context

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


def test_min_block_within_the_confirmation_depth_is_index_behind(api_env: ApiEnv, tmp_path: Path) -> None:
    # An index that stays 5 blocks behind the head (its own database, the module's chain) cannot hold the
    # head's block yet: the list says so (503, retry) instead of answering without the caller's write.
    settings = api_env.settings.model_copy(update={"audit_confirmations": 5})
    index = open_context(settings, database_url=f"sqlite:///{tmp_path / 'audit.sqlite3'}")
    ledger = connect_ledger(api_env.settings, lambda: None)
    head = api_env.setup.client.w3.eth.block_number
    with pytest.raises(ApiError) as caught:
        ledger.deliveries(
            principal=Principal(Role.AUDITOR),
            index=index,
            flt=ListFilter(),
            cursor=None,
            limit=10,
            min_block=head,
        )
    assert (caught.value.code, caught.value.status) == ("INDEX_BEHIND", 503)
    assert head - 5 <= caught.value.details["indexed_block"] < head

"""GET /resources: every entry names its owner's code, also when one list holds several owners' resources."""

from __future__ import annotations

import pytest
from api_helpers import ApiEnv, ok, register

# One deployment per module: keep the module's tests on one xdist worker.
pytestmark = pytest.mark.xdist_group("api-catalog-list")


def test_list_names_each_owner_by_its_own_code(api_env: ApiEnv) -> None:
    ids = [register(api_env, who) for who in ("psb", "hrss", "psb", "hrss")]
    listed = {r["id"]: r for r in ok(api_env.call("GET", "/resources", "auditor", params=api_env.indexed()))}
    owners = {listed[i]["owner"] for i in ids}
    assert len(owners) == 2
    codes = {o: ok(api_env.call("GET", f"/departments/{o}", "auditor"))["code"] for o in owners}
    for i in ids:
        assert listed[i]["owner_code"] == codes[listed[i]["owner"]]
        assert listed[i] == ok(api_env.call("GET", f"/resources/{i}", "auditor"))


@pytest.mark.parametrize("who", ["psb", "hrss"])
def test_owner_filter_keeps_only_that_departments_resources(api_env: ApiEnv, who: str) -> None:
    mine = register(api_env, who)
    owner = ok(api_env.call("GET", f"/resources/{mine}", "auditor"))["owner"]
    listed = ok(api_env.call("GET", "/resources", "auditor", params=api_env.indexed(owner=owner)))
    assert mine in {r["id"] for r in listed}
    assert {r["owner"] for r in listed} == {owner}


def test_owner_filter_takes_a_department_code_as_the_audit_routes_do(api_env: ApiEnv) -> None:
    """A user searches by the code people know (HRSS), as a scorecard or history is asked for; an unknown
    code is a 404 naming it, not an empty list that reads as "has nothing"."""
    mine = register(api_env, "hrss")
    owner = ok(api_env.call("GET", f"/resources/{mine}", "auditor"))["owner"]
    by_code = ok(api_env.call("GET", "/resources", "auditor", params=api_env.indexed(owner="HRSS")))
    assert by_code == ok(api_env.call("GET", "/resources", "auditor", params=api_env.indexed(owner=owner)))
    assert mine in {r["id"] for r in by_code}
    unknown = api_env.call("GET", "/resources", "auditor", params={"owner": "NOPE"})
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "DEPARTMENT_NOT_FOUND")
    assert "NOPE" in unknown.json()["error"]["message"]

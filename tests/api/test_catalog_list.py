"""GET /resources: every entry names its owner's code, also when one list holds several owners' resources."""

from __future__ import annotations

import os
from typing import Any

import pytest

from api import catalog_bench
from tests.api.api_helpers import ApiEnv, ok, register

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


@pytest.mark.parametrize("owner", ["99", "0", str(2**32), "9999999999"])
def test_owner_filter_by_an_id_no_department_has_is_a_404_as_by_an_unknown_code(
    api_env: ApiEnv, owner: str
) -> None:
    """A mistyped department id is told apart from a department with nothing in the catalog, as a mistyped
    code is and as the scorecard and history answer either: it answered an empty list (200), which reads as
    "has nothing"."""
    unknown = api_env.call("GET", "/resources", "auditor", params={"owner": owner})
    assert unknown.status_code == 404, unknown.text
    error = unknown.json()["error"]
    assert error["code"] == "DEPARTMENT_NOT_FOUND" and error["message"] == f"no department {owner}"


def test_the_catalog_benchmark_times_every_request_at_every_size(api_env: ApiEnv) -> None:
    """``dxl bench catalog`` against this module's service (SAMR's key, which no other test here writes with):
    a row per size, the catalog grown to it, every request timed, and the table the command prints."""
    ledger, samr = api_env.setup.client, api_env.keystore.unlock("dept-samr")

    def get(path: str, **query: Any) -> Any:
        response = api_env.call("GET", path, "auditor", params=query)
        assert response.status_code == 200, response.text
        return response

    def grow_to(start: int, stop: int) -> None:
        def store(entries: list[dict[str, Any]]) -> None:
            ok(api_env.call("POST", "/resources/import", "samr", json={"resources": entries}))

        catalog_bench.grow(ledger=ledger, account=samr, store=store, start=start, stop=stop)

    before = len(ok(api_env.call("GET", "/resources/export", "auditor")))
    rows = catalog_bench.measure(
        get=get,
        grow_to=grow_to,
        head=ledger.block_number,
        sizes=[4, 2],
        repeats=1,
        pid=os.getpid(),
        progress=lambda _m: None,  # the service serves from a thread of this process
    )
    assert [r["resources"] for r in rows] == [before + 2, before + 4]
    for row in rows:
        assert {name for name, _, _ in catalog_bench.REQUESTS} <= row.keys()
        assert all(row[name]["median_s"] > 0 for name, _, _ in catalog_bench.REQUESTS)
        assert all(0 < row[name]["rss_before_mib"] <= row[name]["peak_rss_mib"]
                   for name, _, _ in catalog_bench.REQUESTS)  # fmt: skip
        assert row["search_rare"]["found"] == 1  # generated document 0 carries the rare word
    results = {"repeats": 1, "load_average_at_start": [1.0, 1.0, 1.0], "sizes": rows}
    lines = catalog_bench.table(results).splitlines()
    assert len(lines) == 2 + len(rows) + 1 + len(rows) + 1 and lines[0].split()[0] == "resources"

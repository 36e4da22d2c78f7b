"""POST /verify reads its verdict at one block, the head it read as the request began, and names it: a state
change mined between that head and the reads of the verdict is not in it (the service's node is reached
through a proxy that mines it there).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from node.anvil import EmbeddedNode
from tests.api.api_helpers import (
    ApiEnv,
    api_home,
    grant_between,
    make_settings,
    ok,
    psb_delivery,
    served,
)
from tests.rpc_proxy import RpcProxy

pytestmark = pytest.mark.xdist_group("api-verify-pinned")

TEXT = b"id,value\n1,alpha\n2,beta\n"


@pytest.fixture(scope="module")
def proxied(
    embedded_node: EmbeddedNode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ApiEnv, RpcProxy]]:
    """The conftest's service on its node through a proxy, with no background reader of the node's head (the
    proxy's hook fires on the first head read after it is set: it must be the request's)."""
    with RpcProxy(embedded_node.endpoint.rpc_url) as proxy:
        base = make_settings(api_home(tmp_path_factory, "verify-pinned"), embedded_node)
        settings = base.model_copy(
            update={"rpc_url": proxy.url, "audit_follow_interval": 0, "chain_watch_interval": 0}
        )
        with served(settings, embedded_node) as env:
            yield env, proxy


def test_post_verify_acknowledgedAfterTheHeadItRead_answersTheBlockItNamesAndOnlyIt(
    proxied: tuple[ApiEnv, RpcProxy], tmp_path: Any
) -> None:
    """The consumer's acknowledgement is mined the block after the head the request read: the verdict is
    the delivery RECORDED at the block it names. Read unpinned, it would name that block and answer the
    acknowledgement of the next one: a state the chain never held at any single block."""
    api_env, proxy = proxied
    grant = grant_between(api_env, "psb", "hrss")
    payload = tmp_path / "extract.csv"
    payload.write_bytes(TEXT)
    signed = psb_delivery(api_env, payload, grant["id"])
    did, manifest, root = signed.delivery_id, signed.manifest.to_dict(), signed.body["commitment"]
    ok(api_env.call("POST", "/deliveries", "psb", json=signed.body), 201)
    acknowledged: list[dict[str, Any]] = []

    def acknowledge() -> None:
        answer = api_env.call(
            "POST", f"/deliveries/{did}/acknowledge", "hrss", json={"consumer_commitment": root}
        )
        acknowledged.append(ok(answer)["transaction"])

    proxy.after_head = acknowledge
    verdict = ok(api_env.call("POST", "/verify", "psb", json={"manifest": manifest, "commitment": root}))
    assert acknowledged and acknowledged[0]["block_number"] == verdict["block"] + 1, (acknowledged, verdict)
    details = verdict["anchor"]["details"]
    assert (verdict["status"], details["status"], details["settled"]) == ("MATCH", "RECORDED", None), verdict
    assert verdict["anchor"]["acknowledged_root"] is None
    # Asked again, the head holds the acknowledgement, and the answer names a block that does; the request's
    # view of the service's reader makes none of the reader's checks again (the node's chain id, the code).
    before = dict(proxy.asked)
    again = ok(api_env.call("POST", "/verify", "auditor", json={"manifest": manifest, "commitment": root}))
    asked = {k: v - before.get(k, 0) for k, v in proxy.asked.items() if v != before.get(k, 0)}
    assert "eth_chainId" not in asked and "eth_getCode" not in asked, asked
    assert asked.get("eth_getBlockByNumber") == 1, asked  # the head, read once
    assert again["block"] >= acknowledged[0]["block_number"], again
    assert (again["status"], again["anchor"]["details"]["status"]) == ("MATCH", "ACKNOWLEDGED"), again
    assert again["anchor"]["acknowledged_root"] == root

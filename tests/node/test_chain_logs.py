"""LedgerClient.get_logs: bounded block ranges (nodes such as Besu cap eth_getLogs), topic filters, order."""

from __future__ import annotations

import pytest
from eth_account import Account

from node.endpoint import NodeEndpoint
from node.errors import NodeError
from node.types import ShareType
from tests.contracts.conftest import Consortium, deploy


@pytest.fixture
def consortium(node_endpoint: NodeEndpoint) -> Consortium:
    governors = [Account.create() for _ in range(3)]
    members = Consortium(deploy(node_endpoint, governors, 2), governors)
    for code in ("PSB", "CIVIL"):
        members.admit(code)
    return members


def test_getLogs_sameAnswerWhateverTheRangeSize(consortium: Consortium) -> None:
    psb, civil = consortium.depts["PSB"], consortium.depts["CIVIL"]
    ids = [consortium.resource(psb if i % 2 else civil, ShareType.CONDITIONAL) for i in range(5)]
    client = consortium.client
    whole = [(e.args["resourceId"], b) for e, b in client.get_logs("ResourceRegistered", max_range=1_000_000)]
    assert [rid for rid, _ in whole] == ids
    assert len({b for _, b in whole}) == 5  # one per block under auto-mining: the ranges really split them
    # Small ranges from two blocks before the first event, not from block 0: the module's node holds every
    # other test's blocks too, and walking them all one block at a time took seconds per size.
    start = whole[0][1] - 2
    for size in (1, 2, 3):
        assert [
            (e.args["resourceId"], b)
            for e, b in client.get_logs("ResourceRegistered", from_block=start, max_range=size)
        ] == whole
        newest = [(e.args["resourceId"], b) for e, b in client.get_logs(
            "ResourceRegistered", from_block=start, newest_first=True, max_range=size
        )]  # fmt: skip
        assert newest == whole[::-1]
    # Indexed arguments filter: resources owned by PSB only.
    owned = [
        e.args["resourceId"]
        for e, _ in client.get_logs("ResourceRegistered", None, psb.id.to_bytes(32, "big"))
    ]
    assert owned == ids[1::2]
    # A block window.
    first_block = whole[1][1]
    windowed = client.get_logs(
        "ResourceRegistered", from_block=first_block, to_block=whole[3][1], max_range=2
    )
    assert [e.args["resourceId"] for e, _ in windowed] == ids[1:4]


def test_getLogs_unknownEvent_isAClearError(consortium: Consortium) -> None:
    with pytest.raises(NodeError, match="no event 'NoSuchEvent'"):
        next(consortium.client.get_logs("NoSuchEvent"))

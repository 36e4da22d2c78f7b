"""A send whose answer is lost or late is looked up by hash, never signed a second time (real anvil behind a
loopback proxy that loses or delays the answers to eth_sendRawTransaction)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account import Account

from node.anvil import EmbeddedNode
from node.chain import LedgerClient, NonceTakenError
from node.endpoint import NodeEndpoint
from tests.rpc_proxy import RpcProxy


@pytest.fixture
def proxied(embedded_node: EmbeddedNode) -> Iterator[tuple[RpcProxy, LedgerClient, LedgerClient]]:
    """A proxy on the module's node, a client through it (1 s timeout) and one straight to the node."""
    direct = embedded_node.endpoint
    with RpcProxy(direct.rpc_url) as proxy:
        through = LedgerClient(NodeEndpoint(proxy.url, direct.chain_id), [], request_timeout=1.0)
        yield proxy, through, LedgerClient(direct, [])


def test_a_late_answer_is_not_re_sent_by_web3_nor_signed_again(
    proxied: tuple[RpcProxy, LedgerClient, LedgerClient],
) -> None:
    """web3's HTTP provider re-sends a request whose answer is late; for eth_sendRawTransaction the node then
    says "already known" / "nonce too low", which must not lead to a second signed transaction."""
    proxy, client, direct = proxied
    sender = Account.create()
    proxy.delay_sends, proxy.delay_s = 1, 1.5
    result = client.transfer(sender, sender.address, 0)
    assert proxy.sends == 1
    assert direct.pending_nonce(sender.address) == 1  # one transaction, not two
    assert direct.receipt(result.tx_hash) is not None


def test_a_lost_answer_is_looked_up_by_hash(proxied: tuple[RpcProxy, LedgerClient, LedgerClient]) -> None:
    proxy, client, direct = proxied
    sender = Account.create()
    proxy.lose_sends = 1
    result = client.transfer(sender, sender.address, 0)
    assert direct.pending_nonce(sender.address) == 1 and direct.receipt(result.tx_hash) is not None
    # Sending the same bytes again is harmless: the node has them, nothing new is signed or mined.
    request = client.build(sender.address, "", to=sender.address, value=0, gas=21_000)
    signed = client.sign(sender, request, 0)
    assert signed.tx_hash == result.tx_hash
    client.send_signed(signed)
    assert direct.pending_nonce(sender.address) == 1


def test_bytes_whose_nonce_another_transaction_took_are_never_minable(
    proxied: tuple[RpcProxy, LedgerClient, LedgerClient],
) -> None:
    _, client, direct = proxied
    sender = Account.create()
    direct.transfer(sender, sender.address, 0)
    request = client.build(sender.address, "", to=sender.address, value=1, gas=21_000)
    other = client.sign(sender, request, 0)  # nonce 0 is taken by the transfer above
    with pytest.raises(NonceTakenError) as info:
        client.send_signed(other)
    assert info.value.code == "NONCE_TAKEN" and info.value.tx_hash == other.tx_hash

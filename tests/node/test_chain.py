"""The chain client against a real anvil: nonces under concurrency, revert decoding, chain id checks, events,
and the EIP-712 terms digest agreeing with the contract's."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import urllib3
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_typing import HexStr
from eth_utils.crypto import keccak
from web3.exceptions import BadFunctionCallOutput

from node.anvil import EmbeddedNode, NodeSettings, free_port
from node.chain import (
    BlockRef,
    BlockStanding,
    ErrorDecoder,
    LedgerClient,
    LedgerRevertError,
    NodeProvider,
    error_code,
    genesis_hash,
    selector_of,
)
from node.compiler import Artifact
from node.endpoint import ChainIdMismatchError, NodeEndpoint, read_head, rpc_call
from node.errors import DxlError, NodeError
from node.keys import KeyStore
from node.nonces import NonceManager, is_nonce_error
from node.paths import CONTRACTS_DIR
from node.rpc import JsonRpc, NodeHttpError, NodeTimeoutError, NodeUnreachableError, proxy_for
from node.tls import tls_context
from node.types import (
    AgreementStatus,
    DeliveryStatus,
    DepartmentStatus,
    GovernanceAction,
    RequestStatus,
    ShareType,
    SharingTerms,
    encode_code,
)

# --- connecting ---------------------------------------------------------------------------------------------


def test_connect_refuses_another_chain_id(embedded_node: EmbeddedNode, ledger_artifact: Artifact) -> None:
    real = embedded_node.endpoint
    with pytest.raises(ChainIdMismatchError) as info:
        LedgerClient(NodeEndpoint(real.rpc_url, real.chain_id + 1), ledger_artifact.abi)
    assert (info.value.expected, info.value.actual) == (real.chain_id + 1, real.chain_id)
    assert str(real.chain_id) in str(info.value) and info.value.code == "CHAIN_ID_MISMATCH"


def test_connect_to_nothing_is_a_node_error(ledger_artifact: Artifact) -> None:
    from node.anvil import free_port

    with pytest.raises(NodeError, match="unreachable"):
        LedgerClient(
            NodeEndpoint(f"http://127.0.0.1:{free_port()}", 1), ledger_artifact.abi, request_timeout=2
        )


def test_the_chains_first_block_is_the_one_block_1_names() -> None:
    block0, named = {"hash": "0x" + "0a" * 32}, "0x" + "0b" * 32
    assert genesis_hash(block0, {"result": {"parentHash": named}}) == named
    assert genesis_hash(block0, {"result": None}) == block0["hash"]  # no block 1 yet
    assert genesis_hash(block0, None) == block0["hash"]


def test_a_client_made_while_its_first_node_is_down_is_made_on_the_next(
    embedded_node: EmbeddedNode, ledger_artifact: Artifact
) -> None:
    """Made while its first URL does not answer (a service or a reader started while that node is down), the
    client moves to the next, the chain it is made on, instead of failing on what it has not read yet."""
    live = embedded_node.endpoint
    client = LedgerClient(
        NodeEndpoint(f"http://127.0.0.1:{free_port()}", live.chain_id, (live.rpc_url,)),
        ledger_artifact.abi,
        request_timeout=2,
    )
    assert client.rpc_url == live.rpc_url
    assert client.genesis_hash == LedgerClient(live, ledger_artifact.abi).genesis_hash != ""
    assert client.head().number == read_head(live.rpc_url).number  # it reads there


def test_each_read_moves_with_the_client_to_the_next_node_when_its_node_stops_answering(
    embedded_node: EmbeddedNode,
) -> None:
    """A read that finds the node in use down is asked of the node the client moved to: the head, a block, a
    batch of blocks. One that took the provider before it was tried asked it again, the down node's, and the
    client, moved back to it, failed."""
    from tests.rpc_proxy import RpcProxy

    with (
        RpcProxy(embedded_node.endpoint.rpc_url) as first,
        RpcProxy(embedded_node.endpoint.rpc_url) as second,
    ):
        endpoint = NodeEndpoint(first.url, embedded_node.endpoint.chain_id, (second.url,))
        head = LedgerClient(endpoint, [], request_timeout=2).head()
        reads: list[Callable[[LedgerClient], object]] = [
            lambda c: c.head(),
            lambda c: c.block_hash(head.number),
            lambda c: c.block_times([0, head.number]),
        ]
        for read in reads:
            first.down = False
            client = LedgerClient(endpoint, [], request_timeout=2)
            first.down = True
            read(client)
            assert (client.rpc_url, client.failovers) == (second.url, 1)


def test_a_failover_url_of_another_chain_of_the_same_id_is_never_used(
    embedded_node: EmbeddedNode, tmp_path_factory: pytest.TempPathFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A failover URL whose node serves another chain of the same id (an anvil started afresh, another local
    network): its blocks are none of this chain's. The client moved there when its node stopped answering,
    and the journal reconciled there (its blocks above that chain's head waited for, or taken as replaced by
    that chain's and their transactions sent again); a block of that chain at a height this node has not
    reached read as replacing one of this chain. The client stays on its node and says why."""
    from tests.rpc_proxy import RpcProxy

    started = rpc_call(embedded_node.endpoint.rpc_url, "eth_getBlockByNumber", ["0x0", False])
    assert isinstance(started, dict)
    # An anvil's first block carries the second it started in, and nothing else of its own: the other's is
    # set a second later (--timestamp), a chain of its own at once rather than after a wait for the clock.
    later = ("--timestamp", str(int(str(started["timestamp"]), 16) + 1))
    other = EmbeddedNode(
        tmp_path_factory.mktemp("another-chain"),
        NodeSettings(port=free_port(), extra_args=later),
        die_with_parent=True,
    )
    other.start()
    try:
        block0 = rpc_call(other.endpoint.rpc_url, "eth_getBlockByNumber", ["0x0", False])
        assert isinstance(block0, dict) and block0["hash"] != started["hash"]
        with RpcProxy(embedded_node.endpoint.rpc_url) as proxy:
            endpoint = NodeEndpoint(proxy.url, embedded_node.endpoint.chain_id, (other.endpoint.rpc_url,))
            client = LedgerClient(endpoint, [], request_timeout=2)
            head = client.head()
            rpc_call(other.endpoint.rpc_url, "anvil_mine", [hex(head.number + 10)])  # that chain is higher
            above = BlockRef(head.number + 5, "0x" + "ab" * 32)
            assert client.standing(above) is BlockStanding.NOT_YET  # not replaced by that chain's block
            proxy.down = True
            with pytest.raises(NodeError, match="unreachable"):
                client.block_number()
            assert (client.rpc_url, client.failovers) == (proxy.url, 0)
            proxy.down = False
            assert client.block_hash(head.number) == head.hash
    finally:
        other.stop()
    assert any(
        f"node {other.endpoint.rpc_url} of the endpoint serves chain id {endpoint.chain_id}" in r.getMessage()
        and "not this chain" in r.getMessage()
        for r in caplog.records
    )


def _wait_stopped(pid: int) -> None:
    """Until process ``pid`` is stopped (a signal is delivered after os.kill returns: a request sent at once
    may still be answered)."""
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
        assert time.monotonic() < deadline, f"process {pid} did not stop"
        time.sleep(0.01)


def test_a_lone_node_that_stops_answering_is_waited_for_once_per_request(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A node that hangs with its port open (anvil stopped with SIGSTOP) is waited for DXL_RPC_TIMEOUT once
    per request, a read or a write's gas estimate alike, and the request says so. Before, web3 asked a lone
    node again after each timeout: a read waited five times the setting and the pauses between (6.9 s at
    1 s)."""
    node = EmbeddedNode(tmp_path_factory.mktemp("hung"), NodeSettings(port=free_port()), die_with_parent=True)
    node.start()
    try:
        client = LedgerClient(node.endpoint, [], request_timeout=1.0)
        someone = Account.create().address
        reads: dict[str, Callable[[], int]] = {
            "eth_blockNumber": client.block_number,
            "eth_estimateGas": lambda: client.estimate_gas({"from": someone, "to": someone, "data": "0x"}),
        }
        assert node.pid is not None
        os.kill(node.pid, signal.SIGSTOP)
        try:
            _wait_stopped(node.pid)
            for method, read in reads.items():
                began = time.monotonic()
                with pytest.raises(NodeError, match=r"unreachable: ReadTimeout \(no answer within 1 s\)"):
                    read()
                waited = time.monotonic() - began
                assert 1.0 <= waited < 1.8, f"{method} waited {waited:.1f} s"
        finally:
            os.kill(node.pid, signal.SIGCONT)
        assert client.block_number() >= 0  # the same client reads again once the node answers
    finally:
        node.stop()


# --- nonces -------------------------------------------------------------------------------------------------


def test_concurrent_senders_get_gapless_nonces(ledger: LedgerClient) -> None:
    sender, target = Account.create(), Account.create()
    threads, per_thread = 4, 50
    results: list[Any] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            pending = [
                ledger.submit(sender, ledger.build(sender.address, "", to=target.address, gas=21_000))
                for _ in range(per_thread)
            ]
            results.extend(ledger.wait_all(pending))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert not errors
    assert len(results) == threads * per_thread
    nonces = sorted(int(ledger.w3.eth.get_transaction(r.tx_hash)["nonce"]) for r in results)
    assert nonces == list(range(threads * per_thread))
    assert ledger.w3.eth.get_transaction_count(sender.address) == threads * per_thread


def test_nonce_counter_resyncs_when_another_process_used_the_key(
    embedded_node: EmbeddedNode, ledger_artifact: Artifact, ledger: LedgerClient
) -> None:
    sender, target = Account.create(), Account.create()
    assert ledger.address is not None
    other = LedgerClient(embedded_node.endpoint, ledger_artifact.abi, ledger.address)
    ledger.transfer(sender, target.address, 0)  # our counter now says 1
    # The other process used nonces 1 and 2 behind our back, for other transactions (the same transfer would
    # be the very same signed bytes, which the client rightly takes as its own).
    other.transfer(sender, Account.create().address, 0)
    other.transfer(sender, Account.create().address, 0)
    result = ledger.transfer(sender, target.address, 0)  # "nonce too low" -> resync -> nonce 3
    assert ledger.w3.eth.get_transaction(HexStr(result.tx_hash))["nonce"] == 3


def test_reads_web3_must_encode_or_explain_go_through_web3(
    embedded_node: EmbeddedNode, ledger: LedgerClient
) -> None:
    """A read with arguments in a form web3 converts (a hex string for a bytes32) answers as with plain ones;
    a read of an address holding no contract fails with web3's explanation, not a decoding error."""
    code = encode_code("PSB")
    assert ledger.call("departmentByCode", "0x" + code.hex()) == ledger.call("departmentByCode", code) > 0
    empty = LedgerClient(embedded_node.endpoint, ledger.abi, "0x" + "00" * 18 + "dead")
    with pytest.raises(BadFunctionCallOutput, match="is contract deployed correctly"):
        empty.call("departmentCount")


def test_a_transaction_is_read_as_the_node_sent_it_and_an_unknown_one_is_none(
    ledger: LedgerClient, demo_keys: KeyStore
) -> None:
    """What the anchorer's recovery asks of a transaction it sent: whom it called; None for one the node does
    not know."""
    governor = demo_keys.unlock("governor-1")
    sent = ledger.submit(governor, ledger.build(governor.address, "departmentCount", gas=100_000))
    ledger.wait(sent, timeout=30)
    found = ledger.transaction(sent.tx_hash)
    assert found is not None and (found["hash"], str(found["to"]).lower()) == (
        sent.tx_hash, str(ledger.address).lower()
    )  # fmt: skip
    assert ledger.transaction("0x" + "00" * 32) is None


def test_receipts_read_in_one_batch_answer_as_receipts_read_one_by_one(
    ledger: LedgerClient, demo_keys: KeyStore
) -> None:
    """What the anchorer reads at each block for every anchor it follows: each receipt as :meth:`receipt`
    gives it, in the order asked, None for a transaction not mined."""
    governor = demo_keys.unlock("governor-1")
    sent = [
        ledger.submit(governor, ledger.build(governor.address, "departmentCount", gas=100_000))
        for _ in range(2)
    ]
    ledger.wait_all(sent, timeout=30)
    unknown = "0x" + "00" * 32
    hashes = [sent[1].tx_hash, unknown, sent[0].tx_hash]
    assert ledger.receipts(hashes) == [ledger.receipt(h) for h in hashes]
    assert ledger.receipts(hashes)[1] is None and ledger.receipts(hashes)[0] is not None


def test_nonce_manager_only_moves_forward_and_releases_last() -> None:
    node_count = {"n": 5}
    manager = NonceManager(lambda _addr: node_count["n"])
    assert [manager.reserve("a"), manager.reserve("a")] == [5, 6]
    manager.release("a", 6)
    assert manager.peek("a") == 6
    node_count["n"] = 3  # a lagging node view must not hand out 3..5 again
    assert manager.resync("a") == 6
    manager.release("a", 2)  # not the last one: forget and re-read
    assert manager.peek("a") is None


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("nonce too low", True),
        ("Nonce too low: next nonce 5, tx nonce 3", True),
        ("already known", True),
        ("replacement transaction underpriced", True),
        ("Known transaction", True),
        ("insufficient funds for gas * price + value", False),
        ("execution reverted", False),
    ],
)
def test_nonce_error_messages(message: str, expected: bool) -> None:
    assert is_nonce_error(message) is expected


# --- reverts ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("GrantExpired", "GRANT_EXPIRED"),
        ("GovernanceProposalExecuted", "PROPOSAL_EXECUTED"),
        ("CatalogUnknownResource", "RESOURCE_NOT_FOUND"),
        ("SharingNotAParty", "NOT_A_PARTY"),
        ("DepartmentUnauthorized", "FORBIDDEN"),
        ("AgreementStatusMismatch", "AGREEMENT_NOT_ACTIVE"),
        ("RequestResourceNotShared", "RESOURCE_NOT_SHARED"),
        ("DeliveryDuplicate", "DUPLICATE_DELIVERY"),
        ("AgreementInvalidSignature", "INVALID_SIGNATURE"),
        ("ECDSAInvalidSignatureS", "LEDGER_REJECTED"),
        ("AccessControlBadConfirmation", "FORBIDDEN"),
    ],
)
def test_error_codes(name: str, code: str) -> None:
    assert error_code(name) == code


def test_every_abi_error_is_decodable(ledger_artifact: Artifact) -> None:
    declared = [e for e in ledger_artifact.abi if e["type"] == "error"]
    decoder = ErrorDecoder(ledger_artifact.abi)
    assert len(decoder.by_selector) == len(declared) > 30
    assert {d.name for d in decoder.by_selector.values()} >= {
        "GrantExpired",
        "AccessControlUnauthorizedAccount",
    }


@pytest.mark.parametrize(
    ("signature", "types", "values", "name", "args", "message"),
    [
        (
            "GrantExpired(uint64,uint64)", ["uint64", "uint64"], [7, 1_790_000_000],
            "GrantExpired", {"grantId": 7, "expiredAt": 1_790_000_000},
            "grant 7 expired at 2026-09-21T14:13:20Z",
        ),
        (
            "DeliveryDuplicate(bytes32)", ["bytes32"], [b"\x11" * 32],
            "DeliveryDuplicate", {"deliveryId": b"\x11" * 32},
            "delivery 0x" + "11" * 32 + " was already recorded",
        ),
        (
            "RequestStatusMismatch(uint64,uint8,uint8)", ["uint64", "uint8", "uint8"], [3, 4, 2],
            "RequestStatusMismatch", {"requestId": 3, "status": 4, "expected": 2},
            "request 3 is concluded; this step needs it approved",
        ),
        (
            "DeliveryInvalidField(string)", ["string"], ["commitment"],
            "DeliveryInvalidField", {"field": "commitment"}, "the commitment must not be zero (commitment)",
        ),
        (
            "DepartmentAlreadyRegistered(bytes32,address)", ["bytes32", "address"],
            [b"PSB".ljust(32, b"\0"), "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"],
            "DepartmentAlreadyRegistered",
            {"code": b"PSB".ljust(32, b"\0"), "signer": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"},
            "a department with code PSB or signing address 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed is "
            "already registered",
        ),
        ("Error(string)", ["string"], ["plain reason"], "Error", {"reason": "plain reason"}, "plain reason"),
        ("Panic(uint256)", ["uint256"], [0x11], "Panic", {"code": 0x11}, "arithmetic overflow"),
    ],
)  # fmt: skip
def test_revert_data_decoding(
    ledger_artifact: Artifact,
    signature: str,
    types: list[str],
    values: list[Any],
    name: str,
    args: dict[str, Any],
    message: str,
) -> None:
    data = bytes.fromhex(selector_of(signature)[2:]) + abi_encode(types, values)
    error = ErrorDecoder(ledger_artifact.abi).decode(data)
    assert (error.error_name, error.error_args) == (name, args)
    assert message in str(error)
    assert error.selector == selector_of(signature)


@pytest.mark.parametrize(
    ("data", "selector"),
    [(b"", None), (b"\xde\xad", None), (bytes.fromhex("deadbeef") + b"\x00" * 32, "0xdeadbeef")],
)
def test_unknown_revert_data_still_raises_a_ledger_error(
    ledger_artifact: Artifact, data: bytes, selector: str | None
) -> None:
    error = ErrorDecoder(ledger_artifact.abi).decode(data)
    assert isinstance(error, DxlError) and error.error_name is None
    assert error.code == "LEDGER_REJECTED" and error.selector == selector
    if selector:
        assert selector in str(error)


def _not_a_department() -> Any:
    return Account.create()


@pytest.mark.parametrize(
    ("who", "fn", "args", "name", "expected_args", "code"),
    [
        (
            "stranger", "propose", (0, b""),
            "GovernanceUnauthorized", {"account": "{stranger}"}, "NOT_A_GOVERNOR",
        ),
        (
            "stranger", "registerResource", (b"\x01" * 32, b"\x02" * 32, 0, 1),
            "DepartmentUnauthorized", {"account": "{stranger}"}, "FORBIDDEN",
        ),
        ("governor-1", "approve", (10_000,), "GovernanceUnknownProposal", {"proposalId": 10_000}, None),
        (
            "dept-psb", "requestAccess", ("{medical}", "follow-up", b"\x01" * 32, b"\x02" * 32, 1, 2**40),
            "RequestResourceNotShared", {"resourceId": "{medical}"}, "RESOURCE_NOT_SHARED",
        ),
        (
            "dept-psb", "requestAccess", ("{household}", "own data", b"\x01" * 32, b"\x02" * 32, 1, 2**40),
            "RequestOwnResource", {"resourceId": "{household}"}, "OWN_RESOURCE",
        ),
        (
            "dept-hrss", "issueGrant", (999, 2**40),
            "AgreementUnknown", {"agreementId": 999}, "AGREEMENT_NOT_FOUND",
        ),
    ],
)  # fmt: skip
def test_estimation_reverts_are_decoded_and_nothing_is_sent(
    ledger: LedgerClient,
    demo_keys: KeyStore,
    demo_ledger: Any,
    who: str,
    fn: str,
    args: tuple[Any, ...],
    name: str,
    expected_args: dict[str, Any],
    code: str | None,
) -> None:
    account = Account.create() if who == "stranger" else demo_keys.unlock(who)
    fill = {
        "stranger": account.address,
        "medical": demo_ledger.report.resources["Medical records"],
        "household": demo_ledger.report.resources["Household registration"],
    }

    def resolve(value: Any) -> Any:
        if isinstance(value, str) and re.fullmatch(r"\{\w+\}", value):
            return fill[value[1:-1]]
        return value

    before = ledger.w3.eth.get_transaction_count(account.address)
    with pytest.raises(LedgerRevertError) as info:
        ledger.transact(account, fn, *[resolve(a) for a in args])
    error = info.value
    assert error.error_name == name
    assert error.error_args == {k: resolve(v) for k, v in expected_args.items()}
    assert error.code == (code or error_code(name))
    assert error.tx_hash is None
    assert ledger.w3.eth.get_transaction_count(account.address) == before


@pytest.mark.parametrize("batches", [True, False], ids=["batches", "no-batches"])
def test_reads_in_batches_answer_as_reads_one_by_one(
    embedded_node: EmbeddedNode, ledger: LedgerClient, batches: bool
) -> None:
    """``call_many`` and ``block_times`` answer what ``call`` and the blocks answer, in order, in one round
    trip; a node that serves no batches is asked each request alone; a revert in a batch is decoded as
    ``call`` decodes it."""
    from tests.rpc_proxy import RpcProxy

    codes = [encode_code(c) for c in ("HRSS", "PSB", "NOPE")]
    with RpcProxy(embedded_node.endpoint.rpc_url) as proxy:
        proxy.refuse_batches = not batches
        client = LedgerClient(NodeEndpoint(proxy.url, ledger.chain_id), ledger.abi, ledger.address)
        proxy.posts.clear()
        assert client.call_many("departmentByCode", [(c,) for c in codes]) == [
            ledger.call("departmentByCode", c) for c in codes
        ]
        assert client.block_times([2, 1, 2]) == {n: ledger.w3.eth.get_block(n)["timestamp"] for n in (1, 2)}
        assert (proxy.posts["eth_call"], proxy.posts["eth_getBlockByNumber"]) == (
            (1, 1) if batches else (4, 3)
        )
        with pytest.raises(LedgerRevertError) as info:
            client.call_many("grant", [(7,)])
    assert (info.value.error_name, info.value.error_args, str(info.value)) == (
        "GrantUnknown",
        {"grantId": 7},
        "grant 7 does not exist",
    )


def test_call_reverts_are_decoded(ledger: LedgerClient) -> None:
    with pytest.raises(LedgerRevertError) as info:
        ledger.call("grant", 7)
    assert (info.value.error_name, info.value.error_args, info.value.code) == (
        "GrantUnknown",
        {"grantId": 7},
        "GRANT_NOT_FOUND",
    )
    assert str(info.value) == "grant 7 does not exist"


def test_mined_revert_is_decoded_with_its_transaction(ledger: LedgerClient, demo_keys: KeyStore) -> None:
    governor = demo_keys.unlock("governor-1")
    # An explicit gas limit skips estimation, so the transaction is mined and fails on chain.
    with pytest.raises(LedgerRevertError) as info:
        ledger.transact(governor, "approve", 10_001, gas=200_000)
    error = info.value
    assert error.error_name == "GovernanceUnknownProposal" and error.error_args == {"proposalId": 10_001}
    assert error.tx_hash is not None and error.tx_hash in str(error)
    assert ledger.w3.eth.get_transaction_receipt(HexStr(error.tx_hash))["status"] == 0


def test_batch_revert_names_the_failed_transaction(ledger: LedgerClient, demo_keys: KeyStore) -> None:
    governor = demo_keys.unlock("governor-2")
    with pytest.raises(LedgerRevertError, match="proposal 20000 was never made") as info:
        ledger.send_batch([(governor, "approve", (20_000 + i,)) for i in range(3)], gas=200_000)
    assert info.value.error_name == "GovernanceUnknownProposal"
    assert info.value.error_args == {"proposalId": 20_000}


# --- results ------------------------------------------------------------------------------------------------


def test_tx_result_carries_decoded_events(ledger: LedgerClient, demo_keys: KeyStore) -> None:
    dept = demo_keys.unlock("dept-civil")
    result = ledger.transact(dept, "registerResource", keccak(b"marriage registration"), b"\x05" * 32, 1, 2)
    event = result.event("ResourceRegistered")
    assert event.args["owner"] == ledger.call("departmentByCode", encode_code("CIVIL"))
    assert event.args["shareType"] == ShareType.CONDITIONAL and event.args["metadataHash"] == keccak(
        b"marriage registration"
    )
    assert event.log_index >= 0 and event.address == ledger.address
    assert result.gas_used > 21_000 and result.block_hash.startswith("0x") and len(result.block_hash) == 66
    receipt = ledger.w3.eth.get_transaction_receipt(HexStr(result.tx_hash))
    assert (receipt["blockNumber"], receipt["gasUsed"]) == (result.block_number, result.gas_used)
    with pytest.raises(NodeError, match="no DeliveryRecorded"):
        result.event("DeliveryRecorded")


def test_transactions_are_type_2_with_explicit_chain_id(ledger: LedgerClient, demo_keys: KeyStore) -> None:
    dept = demo_keys.unlock("dept-samr")
    result = ledger.transact(dept, "registerResource", keccak(b"business licences"), b"\x06" * 32, 0, 1)
    tx = ledger.w3.eth.get_transaction(HexStr(result.tx_hash))
    assert tx["type"] == 2 and tx["chainId"] == ledger.chain_id
    # Gas limit is the estimate plus margin: the transaction did not run out.
    assert tx["gas"] > result.gas_used


# --- domain types -------------------------------------------------------------------------------------------


def _solidity_enums() -> dict[str, list[str]]:
    source = (CONTRACTS_DIR / "src" / "types" / "Ledger.sol").read_text()
    source = re.sub(r"//[^\n]*", "", source)
    return {
        m.group(1): [v.strip() for v in m.group(2).split(",") if v.strip()]
        for m in re.finditer(r"enum\s+(\w+)\s*\{([^}]*)\}", source)
    }


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


@pytest.mark.parametrize(
    "enum",
    [DepartmentStatus, ShareType, RequestStatus, AgreementStatus, DeliveryStatus, GovernanceAction],
    ids=lambda e: e.__name__,
)
def test_python_enums_mirror_solidity(enum: Any) -> None:
    members = _solidity_enums()[enum.__name__]
    assert [(m.name, m.value) for m in enum] == [(_snake(n), i) for i, n in enumerate(members)]


def test_sharing_terms_typed_data_matches_the_contract_digest(ledger: LedgerClient) -> None:
    assert ledger.address is not None
    terms = SharingTerms(
        request_id=3, resource_id=2, provider=2, consumer=1, purpose_hash=keccak(text="benefit eligibility"),
        scope_hash=b"\x0a" * 32, terms_hash=b"\x0b" * 32, metadata_hash=b"\x0c" * 32,
        schema_hash=b"\x0d" * 32, sensitivity=3, valid_from=1_800_000_000, valid_until=1_900_000_000,
        provider_key_epoch=2, consumer_key_epoch=1, deadline=1_800_100_000,
    )  # fmt: skip
    typed = terms.typed_data(chain_id=ledger.chain_id, verifying_contract=ledger.address)
    signable = encode_typed_data(full_message=typed)
    ours = keccak(b"\x19\x01" + signable.header + signable.body)
    assert ledger.call("termsDigest", terms.as_tuple()) == ours
    signer = Account.create()
    signature = signer.sign_typed_data(full_message=typed).signature
    assert Account.recover_message(signable, signature=signature) == signer.address


def test_unmined_transaction_times_out_clearly(tmp_path: Any, ledger_artifact: Artifact) -> None:
    from node.anvil import NodeSettings, free_port
    from node.chain import TransactionTimeoutError

    # A node that accepts transactions but never mines them.
    with EmbeddedNode(
        tmp_path, NodeSettings(port=free_port(), block_time=None, extra_args=("--no-mining",))
    ) as node:
        client = LedgerClient(node.endpoint, ledger_artifact.abi)
        sender = Account.create()
        pending = client.submit(sender, client.build(sender.address, "", to=sender.address, gas=21_000))
        with pytest.raises(TransactionTimeoutError) as info:
            client.wait(pending, timeout=0.5)
        assert pending.tx_hash in str(info.value) and isinstance(info.value, NodeError)
        with pytest.raises(TransactionTimeoutError):
            client.wait_all([pending], timeout=0.5)


def test_the_node_client_takes_the_environment_s_proxy_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A node reached through a proxy named in the environment still is, although the client does not read
    the environment per request (which, racing a thread that changed it, killed the API's chain watcher); a
    node the proxy is not for is reached directly, over TLS with the project's settings for HTTPS."""
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "ledger.internal")
    assert proxy_for("http://node.example:8545") == "http://proxy.example:3128"
    through = _proxy(JsonRpc("http://node.example:8545"))
    assert isinstance(through, urllib3.ProxyManager) and through.proxy is not None
    assert through.proxy.url == "http://proxy.example:3128"
    monkeypatch.setenv("HTTP_PROXY", "http://elsewhere.example:1")  # read once: later changes do not apply
    assert through.proxy.url == "http://proxy.example:3128"
    assert _proxy(JsonRpc("http://ledger.internal:8545")) is None
    tls = JsonRpc("https://ledger.internal:8545")._transports[0]
    assert tls._via is None and tls.tls is tls_context()
    monkeypatch.delenv("HTTP_PROXY")
    monkeypatch.setenv("ALL_PROXY", "http://proxy.example:3128")  # every scheme's proxy
    assert proxy_for("http://node.example:8545") == "http://proxy.example:3128"
    assert proxy_for("http://ledger.internal:8545") is None


def _proxy(client: JsonRpc) -> urllib3.ProxyManager | None:
    via = client._transports[0]._via
    return None if via is None else via.pool


class _Answers(BaseHTTPRequestHandler):
    """Answers every POST with the status its path names (``/503``), or not at all (``/silent``); records the
    authorization it was sent."""

    seen: ClassVar[list[str | None]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append(self.headers.get("Authorization"))
        if self.path == "/silent":
            time.sleep(2)
            return
        body = b'{"jsonrpc": "2.0", "id": 1, "result": "0x1"}'
        self.send_response(int(self.path.strip("/")))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_the_node_client_tells_its_failures_apart() -> None:
    """The provider's retries and the ledger client's failover tell failures apart by the one client's
    errors: a refused connection and an answer that does not come make the node unreachable (a timeout for
    the second); an error status is an answer (asked again by the provider, never by the transport)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    url = f"http://127.0.0.1:{port}"
    try:
        assert JsonRpc(url + "/200").call("eth_chainId") == "0x1"
        with pytest.raises(NodeHttpError, match="HTTP 503") as info:
            JsonRpc(url + "/503", timeout=5).call("eth_chainId")
        assert info.value.status == 503 and not isinstance(info.value, NodeUnreachableError)
        with pytest.raises(NodeTimeoutError, match=r"no answer within 0\.3 s") as late:
            JsonRpc(url + "/silent", timeout=0.3).call("eth_chainId")
        assert late.value.kind == "ReadTimeout"
        # Credentials in the URL are sent as basic authorization, not as part of the address.
        _Answers.seen.clear()
        JsonRpc(f"http://ops:s%40cret@127.0.0.1:{port}/200").call("eth_chainId")
        assert _Answers.seen == ["Basic " + base64.b64encode(b"ops:s@cret").decode()]
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(NodeUnreachableError) as refused:
        JsonRpc(url + "/200", timeout=5).call("eth_chainId")
    assert not isinstance(refused.value, TimeoutError) and refused.value.kind == "ConnectionError"
    # And the ledger client over it: a dead node is unreachable, not a timeout or an error of web3's.
    with pytest.raises(NodeError, match=f"node at {url} is unreachable: ConnectionError"):
        LedgerClient(NodeEndpoint(url, 1), [])


class _OddBlocks(BaseHTTPRequestHandler):
    """A node of chain 1 whose blocks, head and receipts are not what JSON-RPC says they are: the block its
    path names (``/no-hash``: a block without a hash; ``/short-hash``: a 4-byte one; ``/number``: a decimal
    number), a head that is not a quantity, a receipt without its hashes."""

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        good = {"number": "0x5", "hash": "0x" + "ab" * 32, "timestamp": "0x10", "transactions": []}
        odd = {
            "/no-hash": {k: v for k, v in good.items() if k != "hash"},
            "/short-hash": {**good, "hash": "0xabcdef01"},
            "/number": {**good, "number": "5"},
        }
        result = {
            "eth_chainId": "0x1",
            "eth_blockNumber": "12",
            "eth_getBlockByNumber": odd.get(self.path, good),
            "eth_getTransactionReceipt": {"status": "0x1", "blockNumber": "0x5"},
        }
        body = json.dumps(
            {"jsonrpc": "2.0", "id": request["id"], "result": result[request["method"]]}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("block", ["/no-hash", "/short-hash", "/number"])
def test_a_block_or_head_that_is_not_json_rpc_is_a_node_error_naming_the_node(block: str) -> None:
    """The client reads the head and blocks from the node's answer as it is (web3 does not format them): one
    that is not a block (no hash, a hash of another length, a number not in hex) is the node's error, as
    web3's formatting made it, not a KeyError or ValueError that an API request would answer 500."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OddBlocks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}{block}"
    try:
        client = LedgerClient(NodeEndpoint(url, 1), [])
        for read in (client.head_time, client.head, lambda: client.block_hash(5)):
            with pytest.raises(NodeError, match=f"{url} answered eth_getBlockByNumber with no usable block"):
                read()
        with pytest.raises(NodeError, match=f"{url} answered eth_blockNumber with not a hex quantity: '12'"):
            client.block_number()
        with pytest.raises(
            NodeError, match=f"{url} answered eth_getTransactionReceipt with no usable receipt"
        ):
            client.receipt("0x" + "00" * 32)
    finally:
        server.shutdown()
        server.server_close()


def test_the_ledger_client_reads_through_the_one_json_rpc_client(
    embedded_node: EmbeddedNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """web3 in the ledger client posts every request, single or batched, through the node layer's one
    JSON-RPC client (node.rpc.JsonRpc): no second transport beside it (tests/test_one_rpc_client.py holds the
    sources to that)."""
    client = LedgerClient(embedded_node.endpoint, [])
    provider = client.w3.provider
    assert isinstance(provider, NodeProvider) and isinstance(provider.client, JsonRpc)
    posted: list[str] = []
    post = JsonRpc.post

    def counted(self: JsonRpc, method: str, body: Any) -> Any:
        posted.append(method)
        return post(self, method, body)

    monkeypatch.setattr(JsonRpc, "post", counted)
    number = client.block_number()
    assert client.block_times([number]) == {number: client.head_time()}
    assert posted == ["eth_blockNumber", "eth_getBlockByNumber", "eth_getBlockByNumber"]

"""Idempotent deployment on a real node: reuse, the record's contents, refusal of mismatching records."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_typing import HexStr
from eth_utils.crypto import keccak

from node.anvil import EmbeddedNode
from node.compiler import Artifact
from node.deploy import (
    AnchorsDeployment,
    Deployment,
    DeploymentMismatchError,
    NotDeployedError,
    anchors_client,
    deploy_ledger,
    deploy_receipt_anchors,
    deployment_path,
    ledger_client,
    load_deployment,
    newer_builds,
)
from node.endpoint import NodeEndpoint, rpc_call
from node.errors import ConfigurationError
from tests.rpc_proxy import RpcProxy


@pytest.fixture
def governors() -> list[Any]:
    return [Account.create(), Account.create(), Account.create()]


def test_second_deployment_reuses_the_first(
    embedded_node: EmbeddedNode, tmp_path: Path, governors: list[Any], ledger_artifact: Artifact
) -> None:
    endpoint = embedded_node.endpoint
    addresses = [g.address for g in governors]
    first = deploy_ledger(endpoint, addresses, 2, deployer=governors[0], home=tmp_path)
    block_after_first = endpoint.verify()
    second = deploy_ledger(endpoint, addresses, 2, deployer=governors[0], home=tmp_path)
    assert (first.reused, second.reused) == (False, True)
    assert second == first and endpoint.verify() == block_after_first  # nothing was sent

    record = json.loads(deployment_path(tmp_path).read_text())
    assert record == {
        "address": first.address,
        "artifact": "DataExchangeLedger",
        "block_hash": first.block_hash,
        "block_number": first.block_number,
        "build": "cancun",  # anvil runs PUSH0: the Cancun build
        "bytecode_hash": "0x" + keccak(hexstr=ledger_artifact.bytecode).hex(),
        "chain_id": endpoint.chain_id,
        "code_hash": first.code_hash,
        "compiler_version": ledger_artifact.compiler_version,
        "deployed_at": first.deployed_at,
        "deployer": governors[0].address,
        "governors": addresses,
        "threshold": 2,
        "tx_hash": first.tx_hash,
        "version": 1,
    }
    client = ledger_client(endpoint, tmp_path)
    assert client.address == first.address
    assert client.call("threshold") == 2 and client.call("governorCount") == 3
    # A record written before there were two builds names none: it is of the Cancun build, and still opens.
    del record["build"]
    deployment_path(tmp_path).write_text(json.dumps(record))
    assert Deployment.load(deployment_path(tmp_path)).build == "cancun"
    assert ledger_client(endpoint, tmp_path).address == first.address
    receipt = client.w3.eth.get_transaction_receipt(HexStr(first.tx_hash))
    assert receipt["contractAddress"] == first.address and receipt["blockNumber"] == first.block_number


def test_receipt_anchors_deploy_once_beside_the_ledger(
    embedded_node: EmbeddedNode, tmp_path: Path, governors: list[Any]
) -> None:
    endpoint = embedded_node.endpoint
    deploy_ledger(endpoint, [g.address for g in governors], 2, deployer=governors[0], home=tmp_path)
    with pytest.raises(DeploymentMismatchError, match="names no receipt anchors"):
        anchors_client(endpoint, tmp_path)
    ledger = ledger_client(endpoint, tmp_path)
    first = deploy_receipt_anchors(ledger, deployer=governors[0], home=tmp_path)
    block_after_first = endpoint.verify()
    assert deploy_receipt_anchors(ledger, deployer=governors[0], home=tmp_path) == first
    assert endpoint.verify() == block_after_first  # reused: nothing was sent
    assert load_deployment(tmp_path).receipt_anchors == first
    anchors = anchors_client(endpoint, tmp_path)
    assert anchors.address == first.address and anchors.call("ledger") == ledger.address

    # A record naming an address without that code is replaced by a fresh deployment, the ledger kept.
    _tamper(
        deployment_path(tmp_path),
        receipt_anchors={
            **json.loads(deployment_path(tmp_path).read_text())["receipt_anchors"],
            "address": governors[1].address,
        },
    )
    with pytest.raises(DeploymentMismatchError, match="not the recorded receipt anchors"):
        anchors_client(endpoint, tmp_path)
    again = deploy_receipt_anchors(ledger, deployer=governors[0], home=tmp_path)
    assert again.address not in (first.address, governors[1].address)
    assert load_deployment(tmp_path).address == ledger.address


def test_newer_build_keeps_the_deployed_contracts(
    embedded_node: EmbeddedNode, tmp_path: Path, governors: list[Any]
) -> None:
    """An upgrade over an existing DXL_HOME whose contracts' code changed since they were deployed (the
    record's build hashes are not the current artifacts'): the deployed ledger and anchors are kept, the
    batches anchored there stay where they are, and the newer builds are named."""
    endpoint = embedded_node.endpoint
    ledger_record = deploy_ledger(
        endpoint, [g.address for g in governors], 1, deployer=governors[0], home=tmp_path
    )
    ledger = ledger_client(endpoint, tmp_path)
    anchors = deploy_receipt_anchors(ledger, deployer=governors[0], home=tmp_path)
    assert newer_builds(load_deployment(tmp_path)) == []
    path = deployment_path(tmp_path)
    older = "0x" + "11" * 32
    _tamper(
        path,
        bytecode_hash=older,
        receipt_anchors={**json.loads(path.read_text())["receipt_anchors"], "bytecode_hash": older},
    )
    head = endpoint.verify()

    assert (
        deploy_ledger(endpoint, [], 1, deployer=governors[0], home=tmp_path).address == ledger_record.address
    )
    assert deploy_receipt_anchors(ledger, deployer=governors[0], home=tmp_path).address == anchors.address
    assert endpoint.verify() == head  # nothing deployed
    kept = load_deployment(tmp_path).receipt_anchors
    assert kept is not None and kept.bytecode_hash == older
    assert anchors_client(endpoint, tmp_path).address == anchors.address
    assert ledger_client(endpoint, tmp_path).address == ledger_record.address
    assert newer_builds(load_deployment(tmp_path)) == ["DataExchangeLedger", "ReceiptAnchors"]

    # A deployed contract that lacks a function this version calls is refused, not replaced: here the record
    # names the ledger's code as the anchors contract.
    _tamper(
        path,
        receipt_anchors={
            **anchors.__dict__,
            "address": ledger_record.address,
            "code_hash": ledger_record.code_hash,
        },
    )
    before = path.read_text()
    with pytest.raises(DeploymentMismatchError, match="older build that lacks acknowledgeBatch, anchorBatch"):
        deploy_receipt_anchors(ledger, deployer=governors[0], home=tmp_path)
    with pytest.raises(DeploymentMismatchError, match="lacks acknowledgeBatch, anchorBatch"):
        anchors_client(endpoint, tmp_path)
    assert path.read_text() == before and endpoint.verify() == head


def _tamper(path: Path, **changes: Any) -> None:
    record = json.loads(path.read_text())
    record.update(changes)
    path.write_text(json.dumps(record))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"chain_id": 1}, "it is for chain id 1"),
        ({"address": "0x000000000000000000000000000000000000dEaD"}, "no contract code"),
        ({"code_hash": "0x" + "00" * 32}, "is not the recorded ledger"),
    ],
)
def test_mismatching_record_is_refused_not_overwritten(
    embedded_node: EmbeddedNode, tmp_path: Path, governors: list[Any], changes: dict[str, Any], reason: str
) -> None:
    addresses = [g.address for g in governors]
    deploy_ledger(embedded_node.endpoint, addresses, 1, deployer=governors[0], home=tmp_path)
    path = deployment_path(tmp_path)
    _tamper(path, **changes)
    tampered = path.read_text()
    with pytest.raises(DeploymentMismatchError, match=reason) as info:
        deploy_ledger(embedded_node.endpoint, addresses, 1, deployer=governors[0], home=tmp_path)
    assert "--force" in str(info.value) and info.value.code == "DEPLOYMENT_MISMATCH"
    assert path.read_text() == tampered
    with pytest.raises(DeploymentMismatchError):
        ledger_client(embedded_node.endpoint, tmp_path)

    forced = deploy_ledger(
        embedded_node.endpoint, addresses, 1, deployer=governors[0], home=tmp_path, force=True
    )
    assert not forced.reused and load_deployment(tmp_path) == forced


@pytest.mark.parametrize(
    ("governor_count", "threshold", "refusal"),
    [
        (0, 1, "threshold must be 1..0 for 0 governors"),
        (2, 0, "threshold must be 1..2 for 2 governors"),
        (2, 3, "threshold must be 1..2 for 2 governors"),
        (1, 2, "threshold must be 1..1 for 1 governor"),  # "1 governor(s)" before
    ],
    ids=["no-governors", "zero", "above-count", "above-one"],
)
def test_bad_governance_is_refused_before_sending(
    embedded_node: EmbeddedNode, tmp_path: Path, governor_count: int, threshold: int, refusal: str
) -> None:
    deployer = Account.create()
    addresses = [Account.create().address for _ in range(governor_count)]
    with pytest.raises(ConfigurationError) as refused:
        deploy_ledger(embedded_node.endpoint, addresses, threshold, deployer=deployer, home=tmp_path)
    assert str(refused.value) == refusal
    assert not deployment_path(tmp_path).exists()


@pytest.mark.parametrize(
    ("content", "error", "match"),
    [
        (None, NotDeployedError, "run `dxl deploy`"),
        ("{broken", ConfigurationError, "unreadable"),
        ('{"chain_id": 1}', ConfigurationError, "lacks"),
    ],
    ids=["missing", "not-json", "incomplete"],
)
def test_unusable_records(
    tmp_path: Path, node_endpoint: NodeEndpoint, content: str | None, error: type[Exception], match: str
) -> None:
    if content is not None:
        deployment_path(tmp_path).write_text(content)
    with pytest.raises(error, match=match):
        Deployment.load(deployment_path(tmp_path))
    with pytest.raises(error, match=match):
        ledger_client(node_endpoint, tmp_path)


def test_practice_of_an_older_build_without_evaluation_by_batch_is_kept() -> None:
    """A SharingPractice deployed before evaluation by receipt batch existed lacks only the functions added
    for it (LATER_FUNCTIONS): it is kept and serves the rest, and the service knows it lacks them. Any other
    missing function still refuses it. The code here is the dispatcher's selectors alone, which is what the
    check reads."""
    from eth_utils.crypto import keccak

    from node.compiler import load_artifact
    from node.deploy import LATER_FUNCTIONS, PRACTICE_ARTIFACT, _abi_type, _lacking_functions, offers_function

    artifact = load_artifact(PRACTICE_ARTIFACT)
    later = LATER_FUNCTIONS[PRACTICE_ARTIFACT]
    functions = [e for e in artifact.abi if e.get("type") == "function"]
    assert later <= {e["name"] for e in functions}

    def code(without: set[str]) -> bytes:
        signatures = [f"{e['name']}({','.join(_abi_type(i) for i in e['inputs'])})" for e in functions
                      if e["name"] not in without]  # fmt: skip
        return b"\x60".join(keccak(s.encode())[:4] for s in signatures)

    older = code(set(later))
    assert _lacking_functions(older, artifact) == []
    assert not offers_function(older, artifact.abi, "scoreProviderForBatch")
    assert offers_function(code(set()), artifact.abi, "scoreProviderForBatch")
    assert _lacking_functions(code({*later, "scoreProvider"}), artifact) == ["scoreProvider"]


@pytest.mark.parametrize("replaced", ["ledger", "anchors"])
def test_a_deployment_whose_block_is_replaced_after_its_receipt_records_the_code_once_mined_again(
    embedded_node: EmbeddedNode, tmp_path: Path, governors: list[Any], replaced: str
) -> None:
    """On a proof-of-authority chain under load a signer seals out of turn and drops its block a moment
    later for the one in turn (geth's Clique): the deployment's receipt is read, then its block is gone and
    the transaction is back in the pool, mined in the next block. Here the node loses the block right after
    answering the receipt (``evm_revert``) and mines the same signed bytes a second later. The record names
    the code and the block the contract is in; the code read while the address was empty made every later
    start refuse the contract (DEPLOYMENT_MISMATCH: the code is not the recorded one)."""
    node = embedded_node.endpoint.rpc_url
    addresses = [g.address for g in governors]
    with RpcProxy(node) as proxy:
        endpoint = NodeEndpoint(proxy.url, embedded_node.endpoint.chain_id)
        if replaced == "anchors":
            deploy_ledger(endpoint, addresses, 2, deployer=governors[0], home=tmp_path)
        snapshot = rpc_call(node, "evm_snapshot")
        remined = threading.Event()

        def mine_again() -> None:
            try:
                # The same signed bytes, and only they, in the next block: what anvil's pool made of the
                # reverted block (kept, dropped, or parked behind a nonce it no longer expects) is not the
                # node under test, and a transaction it dropped was never mined (seen once in a full run).
                rpc_call(node, "anvil_dropAllTransactions")
                rpc_call(node, "eth_sendRawTransaction", [proxy.raw_sent[-1]])
                rpc_call(node, "evm_mine")
            finally:  # the module's node, shared by the tests after this one: mining as before, whatever
                rpc_call(node, "evm_setAutomine", [True])
                remined.set()

        def replace_the_block() -> None:
            proxy.after_receipt = None
            rpc_call(node, "evm_setAutomine", [False])
            try:
                assert rpc_call(node, "evm_revert", [snapshot]) is True
            finally:
                threading.Timer(1.0, mine_again).start()

        proxy.after_receipt = replace_the_block
        record: Deployment | AnchorsDeployment
        try:
            if replaced == "ledger":
                record = deploy_ledger(endpoint, addresses, 2, deployer=governors[0], home=tmp_path)
                client = ledger_client(endpoint, tmp_path)
            else:
                record = deploy_receipt_anchors(
                    ledger_client(endpoint, tmp_path), deployer=governors[0], home=tmp_path
                )
                client = anchors_client(endpoint, tmp_path)
        finally:
            proxy.after_receipt = None
            assert remined.wait(10)
        assert client.address == record.address
        code = client.code_at(record.address)
        assert code and record.code_hash == "0x" + keccak(code).hex()
        receipt = client.w3.eth.get_transaction_receipt(HexStr(record.tx_hash))
        assert receipt["blockNumber"] == record.block_number
        if isinstance(record, Deployment):
            assert "0x" + bytes(receipt["blockHash"]).hex() == record.block_hash


def test_a_deployment_is_recorded_once_the_confirmation_depth_is_on_top_of_its_block(
    embedded_node: EmbeddedNode, tmp_path: Path, governors: list[Any]
) -> None:
    """With a confirmation depth (Clique), the ledger and its companions are recorded once that many blocks
    are on top of theirs: each deployment after the ledger reads the ledger's code at the head again, and the
    service at start reads them all, on a chain where a young block may still be replaced."""
    endpoint = embedded_node.endpoint
    stop = threading.Event()

    def seal() -> None:  # the node mines per transaction: blocks come on top as on an interval chain
        while not stop.wait(0.2):
            rpc_call(endpoint.rpc_url, "evm_mine")

    sealer = threading.Thread(target=seal, daemon=True)
    sealer.start()
    try:
        ledger = deploy_ledger(
            endpoint, [g.address for g in governors], 2, deployer=governors[0], home=tmp_path, confirmations=2
        )
        assert endpoint.verify() >= ledger.block_number + 2
        client = ledger_client(endpoint, tmp_path)
        anchors = deploy_receipt_anchors(client, deployer=governors[0], home=tmp_path, confirmations=2)
        assert endpoint.verify() >= anchors.block_number + 2 > ledger.block_number + 2
    finally:
        stop.set()
        sealer.join(5)

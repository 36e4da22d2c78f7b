"""A scripted exchange on a fresh ledger, driven directly with the chain client; its expected figures are
computed by hand in the tests (see test_scorecard.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from sqlalchemy import Engine

from node.audit.events import EventCodec
from node.audit.indexer import Indexer, IndexerConfig
from node.chain import LedgerClient, LedgerRevertError
from node.compiler import load_artifact
from node.deploy import deploy_ledger
from node.endpoint import NodeEndpoint
from node.rpc import JsonRpc
from node.types import DeliveryReceipt, GovernanceAction, ShareType, SharingTerms, admission_data
from verifier.commitment import commit_payload, new_salt
from verifier.leaves import Chunking, PayloadFormat
from verifier.manifest import build_manifest, write_manifest

#: Department id of HEALTH, the first department admitted and the provider of every delivery.
HEALTH_ID = 1


def period_end(s: Scenario) -> str:
    """An ISO date-time past every event of the scenario: a second after the node's latest block, or after
    now if later. A scorecard's period ends now by default, and other tests on this shared node move its clock
    ahead of the wall clock (evm_increaseTime), so the scenario's blocks can be stamped after now."""
    latest = int(s.client.w3.eth.get_block("latest")["timestamp"])
    return datetime.fromtimestamp(max(latest, int(time.time())) + 1, UTC).isoformat()


def delivery_id(name: str) -> bytes:
    """The scenario's id of delivery ``name``, in HEALTH's namespace as the ledger requires."""
    return HEALTH_ID.to_bytes(4, "big") + keccak(text=name)[4:]


@dataclass
class Scenario:
    client: LedgerClient
    contract: ChecksumAddress  # the ledger's address, which ``client`` is bound to
    start_block: int
    home: Path
    depts: dict[str, int] = field(default_factory=dict)  # code -> id
    keys: dict[str, LocalAccount] = field(default_factory=dict)
    resources: dict[str, int] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)  # name -> TxResult
    commitments: dict[str, bytes] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # tx hashes of refused deliveries


def _admit(s: Scenario, governor: LocalAccount, code: str) -> None:
    acct = Account.create()
    data = admission_data(code, f"Department {code}", acct.address, keccak(text=code))
    r = s.client.transact(governor, "propose", GovernanceAction.ADMIT_DEPARTMENT, data)
    s.depts[code] = r.event("DepartmentAdmitted").args["departmentId"]
    s.keys[code] = acct


def _resource(s: Scenario, code: str, name: str, share: ShareType) -> None:
    r = s.client.transact(
        s.keys[code], "registerResource", keccak(text=name), keccak(text=name + "schema"), share, 1
    )
    s.resources[name] = r.event("ResourceRegistered").args["resourceId"]


def _request(s: Scenario, consumer: str, resource: str, name: str) -> None:
    now = s.client.next_block_time()
    r = s.client.transact(
        s.keys[consumer],
        "requestAccess",
        s.resources[resource],
        f"purpose {name}",
        keccak(text="scope"),
        keccak(text="terms"),
        now - 60,
        now + 86_400 * 30,
    )
    s.requests[name] = r.event("AccessRequested").args["requestId"]
    s.results[name] = r


def _conclude(s: Scenario, request: str, provider: str, consumer: str) -> int:
    terms = SharingTerms.read(s.client, s.requests[request], deadline=s.client.next_block_time() + 3600)
    typed = terms.typed_data(chain_id=s.client.chain_id, verifying_contract=s.contract)
    sig_p = Account.sign_typed_data(s.keys[provider].key, full_message=typed).signature
    sig_c = Account.sign_typed_data(s.keys[consumer].key, full_message=typed).signature
    r = s.client.transact(s.keys[provider], "concludeAgreement", terms.as_tuple(), sig_p, sig_c)
    return int(r.event("AgreementConcluded").args["agreementId"])


def _deliver(s: Scenario, provider: str, grant: int, name: str, commitment: bytes | None = None) -> Any:
    commitment = commitment or keccak(text="payload " + name)
    s.commitments[name] = commitment
    r = s.client.transact(
        s.keys[provider], "recordDelivery", delivery_id(name), grant, commitment, 1, 1000, 10
    )
    s.results[name] = r
    return r


def _refused_delivery(s: Scenario, provider: str, grant: int, name: str) -> None:
    acct = s.keys[provider]
    request = s.client.build(
        acct.address,
        "recordDelivery",
        delivery_id(name),
        grant,
        keccak(text="p" + name),
        1,
        10,
        1,
        gas=300_000,
    )
    pending = s.client.submit(acct, request)
    try:
        s.client.wait(pending)
    except LedgerRevertError:
        s.refused.append(pending.tx_hash)
        return
    raise AssertionError(f"delivery {name} under grant {grant} was not refused")


def run_scenario(endpoint: NodeEndpoint, home: Path) -> Scenario:
    """HEALTH (provider) and TAX, STATS (consumers): see test_scorecard.py for the script and figures."""
    artifact = load_artifact("DataExchangeLedger")
    governor = Account.create()
    client = LedgerClient(endpoint, artifact.abi)
    dep = deploy_ledger(client, [governor.address], 1, deployer=governor, home=home, force=True)
    s = Scenario(
        client=client, contract=to_checksum_address(dep.address), start_block=dep.block_number, home=home
    )
    for code in ("HEALTH", "TAX", "STATS"):
        _admit(s, governor, code)
    _resource(s, "HEALTH", "r_cond", ShareType.CONDITIONAL)
    _resource(s, "HEALTH", "r_open", ShareType.UNCONDITIONAL)
    _resource(s, "HEALTH", "r_closed", ShareType.NOT_SHARED)
    _resource(s, "TAX", "r_tax", ShareType.CONDITIONAL)
    _request(s, "TAX", "r_cond", "q1")  # approved by HEALTH
    _request(s, "STATS", "r_cond", "q2")  # rejected by HEALTH
    _request(s, "TAX", "r_open", "q3")  # approved on arrival
    _request(s, "STATS", "r_open", "q4")  # approved on arrival
    _request(s, "HEALTH", "r_tax", "q5")  # left pending by TAX
    s.results["q1_decision"] = client.transact(s.keys["HEALTH"], "approveRequest", s.requests["q1"])
    s.results["q2_decision"] = client.transact(s.keys["HEALTH"], "rejectRequest", s.requests["q2"], 7)
    agreement = _conclude(s, "q1", "HEALTH", "TAX")
    latest = client.w3.eth.get_block("latest")["timestamp"]
    g1 = client.transact(s.keys["HEALTH"], "issueGrant", agreement, latest + 86_400).event("GrantIssued")
    g2 = client.transact(s.keys["HEALTH"], "issueGrant", agreement, latest + 3).event("GrantIssued")
    grant1, grant2 = g1.args["grantId"], g2.args["grantId"]
    # d1 carries a real payload's commitment, with its manifest next to it (provenance by file).
    payload = home / "d1.csv"
    payload.write_text("id,value\n1,alpha\n2,beta\n", encoding="utf-8")
    c = commit_payload(payload, salt=new_salt(), chunking=Chunking(PayloadFormat.CSV), keep_leaf_hashes=True)
    write_manifest(home / "d1.manifest.json", build_manifest(c, delivery_id=delivery_id("d1")))
    d1 = _deliver(s, "HEALTH", grant1, "d1", c.root).event("DeliveryRecorded").args
    d2 = _deliver(s, "HEALTH", grant1, "d2").event("DeliveryRecorded").args
    _deliver(s, "HEALTH", grant2, "d3")
    client.transact(
        s.keys["TAX"],
        "acknowledgeDelivery",
        delivery_id("d1"),
        DeliveryReceipt.from_event_args(grant1, d1).as_tuple(),
        s.commitments["d1"],
    )
    client.transact(
        s.keys["TAX"],
        "acknowledgeDelivery",
        delivery_id("d2"),
        DeliveryReceipt.from_event_args(grant1, d2).as_tuple(),
        keccak(text="something else"),
    )
    client.transact(s.keys["HEALTH"], "revokeGrant", grant1)
    _refused_delivery(s, "HEALTH", grant1, "d4")  # revoked grant
    # The next block is stamped past the expiry on the node's clock: other tests on this node move that clock
    # (evm_increaseTime, snapshots), so waiting on the wall clock proves nothing.
    head = int(client.w3.eth.get_block("latest")["timestamp"])
    client.w3.provider.make_request("evm_setNextBlockTimestamp", [max(head + 1, latest + 4)])  # type: ignore[arg-type]
    _refused_delivery(s, "HEALTH", grant2, "d5")  # expired grant
    s.results["grant1"], s.results["grant2"] = grant1, grant2
    return s


def make_indexer(
    engine: Engine,
    rpc: JsonRpc,
    codec: EventCodec,
    scenario: Scenario,
    batch_blocks: int = IndexerConfig.batch_blocks,
) -> Indexer:
    return Indexer(
        engine,
        rpc,
        codec,
        contract=scenario.contract,
        chain_id=scenario.client.chain_id,
        start_block=scenario.start_block,
        config=IndexerConfig(batch_blocks=batch_blocks),
    )

"""End to end against the real node: commit a payload, record it on the ledger, verify payload/manifest/chain.

The ledger is deployed and driven with the product's own client (``tests.contracts.conftest.Consortium``); the
check under test reads the chain only through :mod:`verifier.onchain` (web3.py and the artifact's ABI).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account

from node.endpoint import NodeEndpoint
from node.types import GovernanceAction
from tests.cli import dxl
from tests.contracts.conftest import Consortium, deploy, receipt_of
from tests.rpc_proxy import RpcProxy
from verifier.codes import VerdictStatus
from verifier.commitment import commit_payload, new_salt
from verifier.delivery_ids import new_delivery_id
from verifier.leaves import Chunking, PayloadFormat
from verifier.manifest import Manifest, build_manifest, sign_manifest, write_manifest
from verifier.onchain import ChainCheckError, LedgerReader, verify_commitment_onchain, verify_payload_onchain

pytestmark = pytest.mark.xdist_group("verifier-onchain")

ROWS = b"".join(b'{"id": %d, "benefit": "yes"}\n' % i for i in range(40))


@pytest.fixture(scope="module")
def chain(node_endpoint: NodeEndpoint) -> tuple[Consortium, int, LedgerReader]:
    """One deployed ledger for the module, a grant PSB -> HRSS, and a reader on it."""
    governors = [Account.create() for _ in range(3)]
    c = Consortium(deploy(node_endpoint, governors, 2), governors)
    for code in ("PSB", "HRSS", "CIVIL"):
        c.admit(code)
    grant = c.grant(c.depts["PSB"], c.agreement(c.depts["PSB"], c.depts["HRSS"]))
    reader = LedgerReader(node_endpoint.rpc_url, str(c.client.address), chain_id=node_endpoint.chain_id)
    return c, grant, reader


def commit(
    tmp: Path, c: Consortium, grant: int, *, signer: Any = None, data: bytes = ROWS
) -> tuple[Path, Manifest]:
    payload = tmp / "payload.jsonl"
    payload.write_bytes(data)
    com = commit_payload(
        payload, salt=new_salt(), chunking=Chunking(PayloadFormat.JSONL, 1 << 20), keep_leaf_hashes=True
    )
    m = build_manifest(
        com, delivery_id=new_delivery_id(c.depts["PSB"].id), grant_id=grant, provider="PSB", consumer="HRSS"
    )
    m = sign_manifest(m, signer or c.depts["PSB"].account)
    write_manifest(tmp / "payload.jsonl.manifest.json", m)
    return payload, m


def record(c: Consortium, m: Manifest, grant: int, **override: Any) -> Any:
    f = {"root": m.root, "size": m.byte_size, "records": m.record_count, "alg": int(m.alg)} | override
    return c.send(
        c.depts["PSB"], "recordDelivery", m.delivery_id, grant, f["root"], f["alg"], f["size"], f["records"]
    )


def test_recorded_payload_matches_with_chain_location(chain: Any, tmp_path: Path) -> None:
    c, grant, reader = chain
    payload, m = commit(tmp_path, c, grant)
    tx = record(c, m, grant)
    v = verify_payload_onchain(payload, m, reader)
    assert v.status is VerdictStatus.MATCH, v.to_json()
    assert v.anchor is not None
    d = v.anchor.details
    assert d["status"] == "RECORDED" and d["tx_hash"] == "0x" + tx.tx_hash.removeprefix("0x").lower()
    assert d["block_number"] == tx.block_number and d["block_hash"].startswith("0x")
    assert isinstance(d["log_index"], int) and v.anchor.recorded_root == m.root
    # The consumer acknowledges with its own commitment: still MATCH, now ACKNOWLEDGED.
    c.send(c.depts["HRSS"], "acknowledgeDelivery", m.delivery_id, receipt_of(tx), m.root)
    v = verify_payload_onchain(payload, m, reader)
    assert v.status is VerdictStatus.MATCH and v.anchor is not None
    assert v.anchor.details["status"] == "ACKNOWLEDGED"
    assert v.anchor.acknowledged_root == m.root


def test_flipped_byte_is_a_mismatch_naming_the_record(chain: Any, tmp_path: Path) -> None:
    c, grant, reader = chain
    payload, m = commit(tmp_path, c, grant)
    record(c, m, grant)
    data = bytearray(ROWS)
    data[ROWS.index(b'{"id": 7,') + 2] ^= 0x01
    payload.write_bytes(bytes(data))
    v = verify_payload_onchain(payload, m, reader)
    assert v.status is VerdictStatus.MISMATCH and v.differing_leaves == (7,)


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"root": b"\x11" * 32}, "CHAIN_ROOT_MISMATCH"),
        ({"size": 1}, "CHAIN_SIZE_MISMATCH"),
        ({"records": 39}, "CHAIN_RECORD_COUNT_MISMATCH"),
        ({"alg": 2}, "CHAIN_ALGORITHM_MISMATCH"),
    ],
)
def test_manifest_differing_from_the_receipt_is_a_mismatch(
    chain: Any, tmp_path: Path, override: dict[str, Any], code: str
) -> None:
    c, grant, reader = chain
    payload, m = commit(tmp_path, c, grant)
    record(c, m, grant, **override)
    v = verify_payload_onchain(payload, m, reader)
    assert v.status is VerdictStatus.MISMATCH
    assert code in {f.code for f in v.findings}, v.findings


@pytest.mark.parametrize("named", ["its own", "another"])
def test_manifest_naming_another_agreement_than_its_grants_is_a_mismatch(
    chain: Any, tmp_path: Path, named: str
) -> None:
    """The receipt names its grant only: a manifest the provider signed naming another agreement than the one
    the grant was issued under was a MATCH."""
    c, grant, reader = chain
    payload, m = commit(tmp_path, c, grant)
    record(c, m, grant)
    agreement = c.call("grant", grant)[0]
    m = m._replace(
        agreement_id=agreement if named == "its own" else agreement + 1, signer=None, signature=None
    )
    v = verify_payload_onchain(payload, sign_manifest(m, c.depts["PSB"].account), reader)
    if named == "its own":
        assert v.status is VerdictStatus.MATCH, v.to_json()
    else:
        assert v.status is VerdictStatus.MISMATCH
        assert [f.code for f in v.findings] == ["CHAIN_AGREEMENT_MISMATCH"], v.findings


class _LyingNode:
    """The reader's node, with one word of every DeliveryRecorded log it serves changed: a node an auditor was
    pointed at that serves a receipt the ledger never stored."""

    def __init__(self, rpc: Any, word: int) -> None:
        self.rpc, self.word = rpc, word

    def call(self, method: str, *params: Any) -> Any:
        answer = self.rpc.call(method, *params)
        if method == "eth_getLogs":
            for log in answer:
                words = [
                    *log["topics"][1:],
                    *(log["data"][2 + i : 66 + i] for i in range(0, len(log["data"]) - 2, 64)),
                ]
                changed = words[self.word].removeprefix("0x")
                changed = "0x" + changed[:-1] + ("1" if changed[-1] == "0" else "0")
                if self.word < len(log["topics"]) - 1:
                    log["topics"][self.word + 1] = changed
                else:
                    at = 2 + 64 * (self.word - len(log["topics"]) + 1)
                    log["data"] = log["data"][:at] + changed[2:] + log["data"][at + 64 :]
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rpc, name)


@pytest.mark.parametrize(
    "word",
    range(1, 9),
    ids=[
        "grantId",
        "commitment",
        "provider",
        "consumer",
        "hashAlgorithm",
        "byteSize",
        "recordCount",
        "recordedAt",
    ],
)
def test_a_recorded_log_the_ledgers_storage_does_not_confirm_is_never_used(
    chain: Any, tmp_path: Path, word: int
) -> None:
    """Every field of the receipt a node serves in the DeliveryRecorded log is held to the word the ledger
    stored (receiptMatches): one changed is a chain-check error, never a verdict on the changed receipt."""
    c, grant, reader = chain
    payload, m = commit(tmp_path, c, grant)
    record(c, m, grant)
    lying = LedgerReader(reader.rpc.url, reader.address, chain_id=reader.chain_id)
    lying.rpc = _LyingNode(lying.rpc, word)  # type: ignore[assignment]
    with pytest.raises(ChainCheckError, match="not confirmed by receiptMatches"):
        verify_payload_onchain(payload, m, lying)


def test_unknown_delivery_is_not_recorded(chain: Any, tmp_path: Path) -> None:
    c, grant, reader = chain
    payload, m = commit(tmp_path, c, grant)
    v = verify_payload_onchain(payload, m, reader)
    assert v.status is VerdictStatus.NOT_RECORDED and v.anchor is not None and not v.anchor.recorded


def test_consumer_dispute_is_ack_differs_with_both_commitments(chain: Any, tmp_path: Path) -> None:
    c, grant, reader = chain
    payload, m = commit(tmp_path, c, grant)
    tx = record(c, m, grant)
    theirs = b"\x42" * 32
    c.send(c.depts["HRSS"], "acknowledgeDelivery", m.delivery_id, receipt_of(tx), theirs)
    v = verify_payload_onchain(payload, m, reader)
    assert v.status is VerdictStatus.ACK_DIFFERS and v.anchor is not None
    assert v.anchor.recorded_root == m.root and v.anchor.acknowledged_root == theirs
    assert "0x" + theirs.hex() in " ".join(f.message for f in v.findings)


@pytest.mark.parametrize("who", ["outsider", "consumer", "unsigned"])
def test_manifest_not_signed_by_the_providers_chain_key_is_untrusted(
    chain: Any, tmp_path: Path, who: str
) -> None:
    c, grant, reader = chain
    signer = {"outsider": Account.create(), "consumer": c.depts["HRSS"].account, "unsigned": None}[who]
    payload, m = commit(tmp_path, c, grant, signer=signer)
    if who == "unsigned":
        m = build_manifest_unsigned(m)
    record(c, m, grant)
    v = verify_payload_onchain(payload, m, reader)
    assert v.status is VerdictStatus.UNTRUSTED, v.to_json()


def build_manifest_unsigned(m: Manifest) -> Manifest:
    return m._replace(signer=None, signature=None)


def test_commitment_only_check(chain: Any, tmp_path: Path) -> None:
    c, grant, reader = chain
    _payload, m = commit(tmp_path, c, grant)
    record(c, m, grant)
    assert verify_commitment_onchain(m, reader, commitment=m.root).status is VerdictStatus.MATCH
    assert verify_commitment_onchain(m, reader, commitment=b"\x01" * 32).status is VerdictStatus.MISMATCH
    alone = verify_commitment_onchain(m, reader)
    assert alone.status is VerdictStatus.MATCH and [f.code for f in alone.findings] == ["PAYLOAD_NOT_CHECKED"]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"chain_id": 999_999}, "chain id"), ({"contract": "0x" + "00" * 19 + "01"}, "no contract")],
)
def test_reader_refuses_wrong_chain_or_address(
    chain: Any, node_endpoint: NodeEndpoint, kwargs: dict[str, Any], needle: str
) -> None:
    c, _grant, _reader = chain
    args = {"contract": str(c.client.address)} | kwargs
    with pytest.raises(ChainCheckError, match=needle):
        LedgerReader(node_endpoint.rpc_url, **args)


def test_bounded_log_ranges_still_find_the_receipt(
    chain: Any, node_endpoint: NodeEndpoint, tmp_path: Path
) -> None:
    c, grant, _reader = chain
    payload, m = commit(tmp_path, c, grant)
    record(c, m, grant)
    small = LedgerReader(node_endpoint.rpc_url, str(c.client.address), log_range=3)
    assert verify_payload_onchain(payload, m, small).status is VerdictStatus.MATCH


# --- CLI --------------------------------------------------------------------------------------------------


def _cli(*args: Any) -> tuple[int, Any]:
    code, out, err = dxl(*args)
    try:
        return code, json.loads(out)
    except ValueError:
        return code, out + err


def _chain_args(c: Consortium, node_endpoint: NodeEndpoint) -> list[str]:
    return ["--rpc", node_endpoint.rpc_url, "--chain-id", str(node_endpoint.chain_id), "--contract",
            str(c.client.address)]  # fmt: skip


@pytest.mark.parametrize(("case", "exit_code", "status"), [
    ("recorded", 0, "MATCH"), ("flipped", 1, "MISMATCH"), ("unrecorded", 1, "NOT_RECORDED"),
])  # fmt: skip
def test_cli_verify_exit_codes(
    chain: Any, node_endpoint: NodeEndpoint, tmp_path: Path, case: str, exit_code: int, status: str
) -> None:
    c, grant, _reader = chain
    payload, m = commit(tmp_path, c, grant)
    if case != "unrecorded":
        record(c, m, grant)
    if case == "flipped":
        payload.write_bytes(b"X" + ROWS[1:])
    code, out = _cli("verify", payload, "--json", *_chain_args(c, node_endpoint))
    assert (code, out["status"], out["chain_checked"]) == (exit_code, status, True), out
    assert out["anchor"]["source"].startswith(f"chain {node_endpoint.chain_id}")
    # The node read and its head as the check began, so that the answer can be read again there.
    head = c.client.w3.eth.get_block("latest")
    assert out["node"] == {"rpc_url": node_endpoint.rpc_url, "block": head["number"],
                           "block_timestamp": head["timestamp"]}  # fmt: skip


def test_cli_verify_reads_its_answer_at_the_block_it_names(
    chain: Any, node_endpoint: NodeEndpoint, tmp_path: Path
) -> None:
    """The consumer acknowledges the delivery just after the check read the node's head: the answer is the
    delivery as it stood at the head the output names, RECORDED and unsettled. Read at the head of each read,
    it was ACKNOWLEDGED by a block after the one named: an answer that held at no block."""
    c, grant, _reader = chain
    payload, m = commit(tmp_path, c, grant)
    tx = record(c, m, grant)
    acknowledged: list[Any] = []

    def acknowledge() -> None:
        ack = c.send(c.depts["HRSS"], "acknowledgeDelivery", m.delivery_id, receipt_of(tx), m.root)
        acknowledged.append(ack)

    with RpcProxy(node_endpoint.rpc_url) as proxy:
        proxy.after_head = acknowledge
        code, out = _cli("verify", payload, "--json", "--rpc", proxy.url, "--chain-id",
                         str(node_endpoint.chain_id), "--contract", str(c.client.address))  # fmt: skip
    assert acknowledged and acknowledged[0].block_number == out["node"]["block"] + 1, out["node"]
    details = out["anchor"]["details"]
    assert (code, out["status"], details["status"], details["settled"]) == (0, "MATCH", "RECORDED", None), out
    assert out["anchor"]["acknowledged_root"] is None
    # Read again at the head now, the acknowledgement is there.
    code, out = _cli("verify", payload, "--json", *_chain_args(c, node_endpoint))
    assert (code, out["anchor"]["details"]["status"]) == (0, "ACKNOWLEDGED"), out
    assert out["anchor"]["details"]["settled"]["block_number"] == acknowledged[0].block_number


def test_a_pinned_reader_reads_a_value_set_once_at_the_head_once_its_block_is_pruned(
    chain: Any, node_endpoint: NodeEndpoint, tmp_path: Path
) -> None:
    """A node keeps the state of its last blocks only (the test node 64, as the embedded node): a check pinned
    to a block that has since fallen out of that window still reads a grant's agreement, set once at issue,
    at the head, where it is the same; a value that changes (a delivery's status) is the node's refusal, not
    a value of another block."""
    c, grant, _reader = chain
    _payload, m = commit(tmp_path, c, grant)
    record(c, m, grant)
    pinned = LedgerReader(node_endpoint.rpc_url, str(c.client.address), chain_id=node_endpoint.chain_id,
                          block=c.client.block_number())  # fmt: skip
    agreement = pinned.grant_agreement(grant)
    assert pinned.status(m.delivery_id) == 1  # RECORDED
    c.client.w3.provider.make_request("anvil_mine", [hex(80)])
    assert pinned.grant_agreement(grant) == agreement
    with pytest.raises(ChainCheckError, match="deliveryStatus"):
        pinned.status(m.delivery_id)


def test_cli_verify_unreachable_node_is_exit_2(chain: Any, tmp_path: Path) -> None:
    c, grant, _reader = chain
    payload, _m = commit(tmp_path, c, grant)
    code, out = _cli(
        "verify", payload, "--json", "--rpc", "http://127.0.0.1:9", "--contract", str(c.client.address)
    )
    assert code == 2 and out["code"] == "CHAIN_CHECK_FAILED"


def test_cli_reconcile_lists_recorded_but_missing(
    chain: Any, node_endpoint: NodeEndpoint, tmp_path: Path
) -> None:
    c, grant, _reader = chain
    _payload, m = commit(tmp_path, c, grant)
    record(c, m, grant)
    # A second delivery under the same grant whose payload never reached the directory.
    missing_id = new_delivery_id(c.depts["PSB"].id)
    c.send(c.depts["PSB"], "recordDelivery", missing_id, grant, b"\x33" * 32, 1, 10, 1)
    code, out = _cli("reconcile", tmp_path, "--json", *_chain_args(c, node_endpoint))
    assert code == 1, out
    assert [e["payload"] for e in out["matched"]] == ["payload.jsonl"]
    missing = {e["delivery_id"] for e in out["recorded_but_missing"]}
    assert "0x" + missing_id.hex() in missing and "0x" + m.delivery_id.hex() not in missing


def test_onchain_check_loads_no_api_or_service_code() -> None:
    """An auditor's copy needs web3 and the artifact only: no API, web framework or dxl chain client."""
    code = (
        "import json, sys, verifier.onchain\n"
        "print(json.dumps(sorted(n for n in sys.modules if n.split('.')[0] in "
        "('api', 'fastapi', 'starlette', 'sqlalchemy', 'typer') or n in ('node.chain', 'node.deploy'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert json.loads(out) == []


def test_cli_verify_text_output_names_the_receipt_location(
    chain: Any, node_endpoint: NodeEndpoint, tmp_path: Path
) -> None:
    c, grant, _reader = chain
    payload, m = commit(tmp_path, c, grant)
    tx = record(c, m, grant)
    code, out = _cli("verify", payload, *_chain_args(c, node_endpoint))
    assert code == 0 and out.startswith("MATCH"), out
    assert f"recorded in block {tx.block_number}" in out and tx.tx_hash.lower().removeprefix("0x") in out
    assert "RECORDED: not acknowledged by the consumer yet" in out


@pytest.mark.parametrize("agrees", [True, False], ids=["acknowledged", "disputed"])
def test_cli_verify_names_the_block_of_the_acknowledgement_not_of_the_recording(
    chain: Any, node_endpoint: NodeEndpoint, tmp_path: Path, agrees: bool
) -> None:
    c, grant, _reader = chain
    payload, m = commit(tmp_path, c, grant)
    recorded = record(c, m, grant)
    settled = c.send(
        c.depts["HRSS"], "acknowledgeDelivery", m.delivery_id, receipt_of(recorded),
        m.root if agrees else b"\x42" * 32,
    )  # fmt: skip
    assert settled.block_number > recorded.block_number
    status = "ACKNOWLEDGED" if agrees else "DISPUTED"
    code, out = _cli("verify", payload, *_chain_args(c, node_endpoint))
    assert code == (0 if agrees else 1), out
    assert f"recorded in block {recorded.block_number}" in out
    assert f"{status} in block {settled.block_number} (tx " in out, out
    assert settled.tx_hash.lower().removeprefix("0x") in out
    code, verdict = _cli("verify", payload, "--json", *_chain_args(c, node_endpoint))
    assert verdict["anchor"]["details"]["settled"]["block_number"] == settled.block_number
    assert verdict["anchor"]["details"]["block_number"] == recorded.block_number


def test_cli_offline_skips_the_chain_and_says_so(chain: Any, tmp_path: Path) -> None:
    c, grant, _reader = chain
    payload, _m = commit(tmp_path, c, grant)  # never recorded: only --offline can call it a MATCH
    code, out = _cli("verify", payload, "--offline")
    assert code == 0 and "chain    NOT CHECKED" in out, out
    code, out = _cli("verify", payload, "--offline", "--json")
    assert (code, out["status"], out["chain_checked"], out["anchor"], out["node"]) == (
        0, "MATCH", False, None, None,
    )  # fmt: skip


def test_cli_reconcile_reports_unrecorded_payloads(
    chain: Any, node_endpoint: NodeEndpoint, tmp_path: Path
) -> None:
    c, grant, _reader = chain
    commit(tmp_path, c, grant)
    code, out = _cli("reconcile", tmp_path, "--json", *_chain_args(c, node_endpoint))
    assert code == 1 and [e["payload"] for e in out["unrecorded"]] == ["payload.jsonl"], out
    assert out["matched"] == [] and out["mismatched"] == []
    assert out["node"]["rpc_url"] == node_endpoint.rpc_url
    assert out["node"]["block"] == c.client.w3.eth.block_number


def test_manifest_signed_before_the_provider_was_rekeyed_is_still_trusted(
    node_endpoint: NodeEndpoint, tmp_path: Path
) -> None:
    """The signer that counts is the provider's key when the delivery was recorded, not only today's key."""
    governors = [Account.create() for _ in range(3)]
    c = Consortium(deploy(node_endpoint, governors, 2), governors)
    psb, _hrss = c.admit("PSB"), c.admit("HRSS")
    grant = c.grant(psb, c.agreement(psb, c.depts["HRSS"]))
    payload, m = commit(tmp_path, c, grant)
    record(c, m, grant)
    reader = LedgerReader(node_endpoint.rpc_url, str(c.client.address))
    rekey = abi_encode(["uint32", "address", "bytes32"], [psb.id, Account.create().address, os.urandom(32)])
    c.govern(GovernanceAction.REKEY_DEPARTMENT, rekey)
    v = verify_payload_onchain(payload, m, reader)
    assert v.status is VerdictStatus.MATCH, v.to_json()
    assert v.anchor is not None
    assert v.anchor.details["provider_signer_at_recording"] == psb.account.address
    assert v.anchor.details["provider_signer"] != psb.account.address
    # A key that never was the provider's stays untrusted after the rekey too.
    forged = sign_manifest(build_manifest_unsigned(m), Account.create())
    assert verify_payload_onchain(payload, forged, reader).status is VerdictStatus.UNTRUSTED


def test_cli_default_ledger_is_dxl_homes_deployment(
    chain: Any, node_endpoint: NodeEndpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --contract the ledger comes from DXL_HOME/deployment.json and the node from DXL_RPC_URL."""
    from node.deploy import Deployment

    c, grant, _reader = chain
    home = tmp_path / "home"
    home.mkdir()
    record_ = Deployment(
        chain_id=node_endpoint.chain_id, address=str(c.client.address), tx_hash="0x" + "00" * 32,
        block_number=0, block_hash="0x" + "00" * 32, deployer=c.governors[0].address,
        artifact="DataExchangeLedger", bytecode_hash="0x", code_hash="0x", compiler_version="0.8.30",
        governors=[g.address for g in c.governors], threshold=2, deployed_at="2026-11-25T00:00:00Z",
    )  # fmt: skip
    (home / "deployment.json").write_text(record_.to_json(), encoding="utf-8")
    monkeypatch.setenv("DXL_HOME", str(home))
    monkeypatch.setenv("DXL_RPC_URL", node_endpoint.rpc_url)
    monkeypatch.setenv("DXL_CHAIN_ID", str(node_endpoint.chain_id))
    payload, m = commit(tmp_path, c, grant)
    record(c, m, grant)
    code, out = _cli("verify", payload, "--json")
    assert (code, out["status"], out["anchor"]["details"]["contract"]) == (0, "MATCH", str(c.client.address))


def test_shipped_ledger_abi_is_the_artifacts() -> None:
    """An installed verifier reads verifier/ledger-abi.json; it must say what the compiled ledger says."""
    script = Path(__file__).parents[2] / "scripts" / "verifier-abi.py"
    done = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_a_receipt_anchored_beside_another_ledger_is_refused(
    node_endpoint: NodeEndpoint, tmp_path: Path
) -> None:
    """A department that holds one key on two ledgers (staging and production, say) anchors a receipt beside
    the first: checked against the second with the first's anchors, its batch's parties were read as the
    second ledger's departments of the same ids and the verdict was MATCH, for a receipt that ledger never
    saw. Anchors that do not serve the ledger given are refused."""
    from tests.contracts.test_receipt_anchors import make_anchors
    from verifier.receipt_check import AnchorsReader, verify_payload_receipt
    from verifier.receipts import Receipt, ReceiptProof

    keys = {code: Account.create() for code in ("PSB", "HRSS")}
    ledgers = []
    for _ in ("staging", "production"):
        governors = [Account.create() for _ in range(3)]
        c = Consortium(deploy(node_endpoint, governors, 2), governors)
        for code, key in keys.items():
            c.admit(code, key)
        ledgers.append(c)
    staging, production = ledgers
    anchors = make_anchors(node_endpoint, staging)
    grant = staging.grant(
        staging.depts["PSB"], staging.agreement(staging.depts["PSB"], staging.depts["HRSS"])
    )
    payload, m = commit(tmp_path, staging, grant)
    receipt = Receipt(m.delivery_id, grant, m.root, int(m.alg), m.byte_size, m.record_count)
    tree, _ = anchors.anchor(grant, 0, [receipt])
    proof = ReceiptProof(receipt, 0, 0, 1, tree.root, tuple(tree.proof(0)))
    reader = AnchorsReader(node_endpoint.rpc_url, str(anchors.client.address))
    beside = LedgerReader(node_endpoint.rpc_url, str(staging.client.address), chain_id=node_endpoint.chain_id)
    assert verify_payload_receipt(payload, m, beside, reader, proof).status is VerdictStatus.MATCH
    other = LedgerReader(
        node_endpoint.rpc_url, str(production.client.address), chain_id=node_endpoint.chain_id
    )
    with pytest.raises(ChainCheckError, match="serve ledger"):
        verify_payload_receipt(payload, m, other, reader, proof)


def test_a_pinned_batch_reads_the_pinned_block(chain: Any, node_endpoint: NodeEndpoint) -> None:
    """The audit reader's batches are read at the pinned block as its single calls are: a block mined after
    the pin does not exist for it, and the head's time is the pinned block's."""
    from node.rpc import JsonRpc as AuditRpc
    from verifier.rpc import SET_ONCE

    c, _grant, _reader = chain
    pin = c.client.block_number()
    with AuditRpc(node_endpoint.rpc_url, block=pin) as rpc:
        c.client.w3.provider.make_request("evm_mine", [])
        pinned_time = int(c.client.w3.eth.get_block(pin)["timestamp"])
        assert (rpc.block_number(), rpc.head_time()) == (pin, pinned_time)
        code = c.client.w3.eth.get_code(c.client.address, pin)
        asked = [
            ("eth_getBlockByNumber", [hex(pin + 1), False]),
            ("eth_getCode", [c.client.address, SET_ONCE]),
        ]
        assert rpc.batch(asked) == [None, "0x" + code.hex()]
        assert rpc.logs(str(c.client.address), pin + 1, pin + 5) == []

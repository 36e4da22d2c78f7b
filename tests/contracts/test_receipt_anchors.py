"""Receipt anchors: Merkle batches of receipts anchored beside the ledger, proved and settled on chain."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.chain import LedgerClient, TxResult
from node.compiler import load_artifact
from node.deploy import anchors_abi
from node.endpoint import NodeEndpoint
from node.types import GovernanceAction, ShareType
from tests.contracts.conftest import DAY, Consortium, Dept, deploy, names, reverts
from tests.contracts.test_agreements_and_grants import _reclassify
from tests.contracts.test_department_registry import uint
from verifier.codes import ReceiptVerdictStatus
from verifier.delivery_ids import new_delivery_id
from verifier.errors import InvalidProofError
from verifier.hashing import HashAlgorithm
from verifier.receipt_check import AnchorsReader, check_receipt
from verifier.receipts import BatchTree, Receipt, ReceiptProof
from verifier.tree import root_from_inclusion

ANCHORED, ACKNOWLEDGED = 1, 2
#: From this many receipts per batch an anchor after a grant's first (about 109,000 gas) costs at most 100 gas
#: per receipt.
RECEIPTS_PER_100_GAS = 1200


@dataclass
class Anchors:
    ledger: Consortium
    client: LedgerClient

    def send(self, who: Dept, fn: str, *args: object) -> TxResult:
        return self.client.transact(who.account, fn, *args)

    def call(self, fn: str, *args: object) -> object:
        return self.client.call(fn, *args)

    def grant(self, *, seconds: int = DAY) -> int:
        psb, hrss = self.ledger.depts["PSB"], self.ledger.depts["HRSS"]
        return self.ledger.grant(psb, self.ledger.agreement(psb, hrss), seconds=seconds)

    def receipts(self, grant_id: int, n: int) -> list[Receipt]:
        """``n`` receipts under one of :meth:`grant`'s grants, their ids in its provider's namespace."""
        return receipts_for(grant_id, n, self.ledger.depts["PSB"].id)

    def anchor(self, grant_id: int, first: int, receipts: list[Receipt]) -> tuple[BatchTree, TxResult]:
        tree = BatchTree([r.leaf_hash() for r in receipts])
        result = self.send(self.ledger.depts["PSB"], "anchorBatch", grant_id, first, len(receipts), tree.root)
        return tree, result


def make_anchors(endpoint: NodeEndpoint, consortium: Consortium) -> Anchors:
    artifact = load_artifact("ReceiptAnchors")
    client = LedgerClient(endpoint, anchors_abi(artifact, load_artifact("DataExchangeLedger")))
    deployed = client.deploy(consortium.governors[0], artifact.bytecode, consortium.client.address)
    assert deployed.contract_address is not None
    return Anchors(consortium, client.at(deployed.contract_address))


@pytest.fixture(scope="module")
def anchors(node_endpoint: NodeEndpoint) -> Anchors:
    """One ledger (PSB provides to HRSS, CIVIL a third party) and its anchors, shared by the module's tests,
    which each use grants of their own."""
    governors = [Account.create() for _ in range(3)]
    consortium = Consortium(deploy(node_endpoint, governors, 2), governors)
    for code in ("PSB", "HRSS", "CIVIL"):
        consortium.admit(code)
    return make_anchors(node_endpoint, consortium)


def receipts_for(grant_id: int, n: int, provider: int) -> list[Receipt]:
    """``n`` receipts under the grant, their ids in the namespace of department ``provider``."""
    return [Receipt(new_delivery_id(provider), grant_id, os.urandom(32), 1, 1_000 + i, i) for i in range(n)]


def test_anchorBatch_storesBatchAdvancesSequenceAndEmits(anchors: Anchors) -> None:
    psb, hrss = anchors.ledger.depts["PSB"], anchors.ledger.depts["HRSS"]
    gid = anchors.grant()
    tree, result = anchors.anchor(gid, 0, anchors.receipts(gid, 3))
    assert names(result) == ["ReceiptBatchAnchored"]
    ev = result.event("ReceiptBatchAnchored").args
    at = anchors.ledger.client.w3.eth.get_block(result.block_number)["timestamp"]
    assert (ev["grantId"], ev["firstSequence"], ev["provider"], ev["consumer"]) == (gid, 0, psb.id, hrss.id)
    assert (ev["leafCount"], ev["root"], ev["anchoredAt"]) == (3, tree.root, at)
    assert anchors.call("batch", gid, 0) == (tree.root, 3, at, psb.id, hrss.id, ANCHORED)
    assert anchors.call("nextSequence", gid) == 3
    _, second = anchors.anchor(gid, 3, anchors.receipts(gid, 2))
    assert second.event("ReceiptBatchAnchored").args["firstSequence"] == 3
    assert anchors.call("nextSequence", gid) == 5


def test_anchorBatch_gasIndependentOfLeafCount_under100PerReceiptFrom1200(anchors: Anchors) -> None:
    gid = anchors.grant()
    anchors.anchor(gid, 0, anchors.receipts(gid, 1))  # the grant's sequence slot exists from here on
    _, one = anchors.anchor(gid, 1, anchors.receipts(gid, 1))
    _, many = anchors.anchor(gid, 2, anchors.receipts(gid, RECEIPTS_PER_100_GAS))
    # Only the calldata of the leaf count and first sequence differ (non-zero bytes): a few dozen gas.
    assert abs(many.gas_used - one.gas_used) < 100, (one.gas_used, many.gas_used)
    assert many.gas_used <= 100 * RECEIPTS_PER_100_GAS, many.gas_used


@pytest.mark.parametrize("first", [0, 2, 7])
def test_anchorBatch_notAtNextSequence_reverts(anchors: Anchors, first: int) -> None:
    gid = anchors.grant()
    anchors.anchor(gid, 0, anchors.receipts(gid, 4))
    with reverts("ReceiptBatchOutOfSequence", grantId=gid, firstSequence=first, expectedSequence=4):
        anchors.anchor(gid, first, anchors.receipts(gid, 1))
    assert anchors.call("nextSequence", gid) == 4


@pytest.mark.parametrize(("count", "root", "field"), [(0, b"\1" * 32, "leafCount"), (1, b"\0" * 32, "root")])
def test_anchorBatch_zeroField_reverts(anchors: Anchors, count: int, root: bytes, field: str) -> None:
    gid = anchors.grant()
    with reverts("ReceiptInvalidField", field=field):
        anchors.send(anchors.ledger.depts["PSB"], "anchorBatch", gid, 0, count, root)


@pytest.mark.parametrize("who", ["HRSS", "CIVIL"])
def test_anchorBatch_byOtherThanProvider_reverts(anchors: Anchors, who: str) -> None:
    gid = anchors.grant()
    dept = anchors.ledger.depts[who]
    with reverts("DepartmentUnauthorized", account=dept.account.address):
        anchors.send(dept, "anchorBatch", gid, 0, 1, b"\1" * 32)


def test_anchorBatch_unknownRevokedOrExpiredGrant_reverts(anchors: Anchors) -> None:
    psb = anchors.ledger.depts["PSB"]
    with reverts("GrantUnknown", grantId=404_404):
        anchors.send(psb, "anchorBatch", 404_404, 0, 1, b"\1" * 32)
    revoked = anchors.grant()
    anchors.ledger.send(psb, "revokeGrant", revoked)
    with reverts("GrantAlreadyRevoked", grantId=revoked):
        anchors.send(psb, "anchorBatch", revoked, 0, 1, b"\1" * 32)
    expiring = anchors.grant(seconds=2)
    expires = anchors.ledger.call("grant", expiring)[3]
    # The node's clock moves just past the expiry (the module's node is shared: as little as needed).
    w3 = anchors.ledger.client.w3
    w3.provider.make_request("evm_increaseTime", [expires - anchors.ledger.now() + 1])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    assert anchors.ledger.now() > expires
    with reverts("GrantExpired", grantId=expiring, expiredAt=expires):
        anchors.send(psb, "anchorBatch", expiring, 0, 1, b"\1" * 32)


def test_anchorBatch_agreementSuspended_reverts(anchors: Anchors) -> None:
    gid = anchors.grant()
    aid = anchors.ledger.call("grant", gid)[0]
    anchors.ledger.govern(GovernanceAction.SUSPEND_AGREEMENT, uint(aid))
    with reverts("AgreementStatusMismatch", agreementId=aid):
        anchors.anchor(gid, 0, anchors.receipts(gid, 1))


def test_anchorBatch_resourceNowNotShared_reverts(anchors: Anchors) -> None:
    """An anchor delivers under its grant as ``recordDelivery`` does: not once the resource is not shared."""
    psb = anchors.ledger.depts["PSB"]
    gid = anchors.grant()
    rid = anchors.ledger.call("agreement", anchors.ledger.call("grant", gid)[0])[1]
    _reclassify(anchors.ledger, psb, rid, ShareType.NOT_SHARED)
    with reverts("RequestResourceNotShared", resourceId=rid):
        anchors.anchor(gid, 0, anchors.receipts(gid, 1))
    assert anchors.call("nextSequence", gid) == 0
    # Shared again, the same grant anchors.
    _reclassify(anchors.ledger, psb, rid, ShareType.CONDITIONAL)
    assert names(anchors.anchor(gid, 0, anchors.receipts(gid, 1))[1]) == ["ReceiptBatchAnchored"]


@pytest.mark.parametrize("suspended", ["PSB", "HRSS"])
def test_anchorBatch_suspendedParty_reverts(
    node_endpoint: NodeEndpoint, ledger: Consortium, suspended: str
) -> None:
    own = make_anchors(node_endpoint, ledger)
    gid = own.grant()
    dept = ledger.depts[suspended]
    ledger.govern(GovernanceAction.SUSPEND_DEPARTMENT, uint(dept.id))
    with reverts("DepartmentNotActive", departmentId=dept.id):
        own.anchor(gid, 0, own.receipts(gid, 1))


def test_receiptIncluded_pythonProofsVerifyOnChain(anchors: Anchors) -> None:
    gid = anchors.grant()
    first = 0
    for size in (1, 2, 5, 13):  # a lone leaf, a pair, and right edges carried up one and two levels
        receipts = anchors.receipts(gid, size)
        tree, _ = anchors.anchor(gid, first, receipts)
        for index in sorted({0, size // 2, size - 1}):
            receipt, proof = receipts[index], tree.proof(index)
            assert anchors.call("receiptIncluded", gid, first, receipt.as_tuple(), index, proof) is True
            # The same proof for a changed receipt, another position or a shortened path proves nothing.
            forged = Receipt(
                receipt.delivery_id, gid, os.urandom(32), 1, receipt.byte_size, receipt.record_count
            )
            assert anchors.call("receiptIncluded", gid, first, forged.as_tuple(), index, proof) is False
            assert anchors.call("receiptIncluded", gid, first, receipt.as_tuple(), index + 1, proof) is False
            if proof:
                assert (
                    anchors.call("receiptIncluded", gid, first, receipt.as_tuple(), index, proof[:-1])
                    is False
                )
        first += size
    assert anchors.call("receiptLeaf", receipts[0].as_tuple()) == receipts[0].leaf_hash()
    assert anchors.call("receiptIncluded", gid, first, receipts[0].as_tuple(), 0, tree.proof(0)) is False


def test_acknowledgeBatch_consumerOnly_once(anchors: Anchors) -> None:
    psb, hrss = anchors.ledger.depts["PSB"], anchors.ledger.depts["HRSS"]
    gid = anchors.grant()
    anchors.anchor(gid, 0, anchors.receipts(gid, 4))
    with reverts("DepartmentUnauthorized", account=psb.account.address):
        anchors.send(psb, "acknowledgeBatch", gid, 0)
    with reverts("ReceiptBatchUnknown", grantId=gid, firstSequence=1):
        anchors.send(hrss, "acknowledgeBatch", gid, 1)
    result = anchors.send(hrss, "acknowledgeBatch", gid, 0)
    assert names(result) == ["ReceiptBatchAcknowledged"]
    assert result.event("ReceiptBatchAcknowledged").args["consumer"] == hrss.id
    assert anchors.call("batch", gid, 0)[5] == ACKNOWLEDGED  # type: ignore[index]
    with reverts("ReceiptBatchAlreadySettled", grantId=gid, firstSequence=0, status=ACKNOWLEDGED):
        anchors.send(hrss, "acknowledgeBatch", gid, 0)


def test_disputeReceipt_byProof_thenAcknowledgeTheRest(anchors: Anchors) -> None:
    hrss, civil = anchors.ledger.depts["HRSS"], anchors.ledger.depts["CIVIL"]
    gid = anchors.grant()
    anchors.anchor(gid, 0, anchors.receipts(gid, 2))
    receipts = anchors.receipts(gid, 5)
    tree, _ = anchors.anchor(gid, 2, receipts)
    theirs = os.urandom(32)
    target = receipts[3]
    args = (gid, 2, target.as_tuple(), 3, tree.proof(3))
    with reverts("DepartmentUnauthorized", account=civil.account.address):
        anchors.send(civil, "disputeReceipt", *args, theirs)
    with reverts("ReceiptInvalidField", field="consumerCommitment"):
        anchors.send(hrss, "disputeReceipt", *args, target.commitment)
    with reverts("ReceiptProofInvalid", grantId=gid, sequence=4):
        anchors.send(hrss, "disputeReceipt", gid, 2, target.as_tuple(), 2, tree.proof(3), theirs)
    result = anchors.send(hrss, "disputeReceipt", *args, theirs)
    assert names(result) == ["ReceiptDisputed"]
    ev = result.event("ReceiptDisputed").args
    assert (ev["grantId"], ev["sequence"], ev["deliveryId"], ev["consumer"]) == (
        gid,
        5,
        target.delivery_id,
        hrss.id,
    )
    assert (ev["recordedCommitment"], ev["consumerCommitment"]) == (target.commitment, theirs)
    assert anchors.call("receiptDisputed", gid, 5) is True
    assert anchors.call("receiptDisputed", gid, 4) is False
    with reverts("ReceiptAlreadyDisputed", grantId=gid, sequence=5):
        anchors.send(hrss, "disputeReceipt", *args, theirs)
    anchors.send(hrss, "acknowledgeBatch", gid, 2)
    with reverts("ReceiptBatchAlreadySettled", grantId=gid, firstSequence=2, status=ACKNOWLEDGED):
        anchors.send(hrss, "disputeReceipt", gid, 2, receipts[0].as_tuple(), 0, tree.proof(0), theirs)


def test_anchorBatch_sequencePastUint64_revertsNamingLeafCount(anchors: Anchors) -> None:
    """A grant numbers its receipts in uint64: a batch that would number one past the last is refused by name
    (it was an arithmetic panic, which no caller can read), and one ending just below it is taken."""
    psb = anchors.ledger.depts["PSB"]
    gid, top = anchors.grant(), 2**64 - 1
    anchors.send(psb, "anchorBatch", gid, 0, top - 1, b"\1" * 32)
    for count in (2, top):
        with reverts("ReceiptInvalidField", field="leafCount"):
            anchors.send(psb, "anchorBatch", gid, top - 1, count, b"\1" * 32)
    assert anchors.call("nextSequence", gid) == top - 1
    anchors.send(psb, "anchorBatch", gid, top - 1, 1, b"\1" * 32)
    assert anchors.call("nextSequence", gid) == top
    with reverts("ReceiptInvalidField", field="leafCount"):
        anchors.send(psb, "anchorBatch", gid, top, 1, b"\1" * 32)


@pytest.mark.parametrize("index", [3, 4, 2**64 - 1])
def test_disputeReceipt_indexOutsideBatch_revertsNamingIndex(anchors: Anchors, index: int) -> None:
    """An index past the batch names no receipt of it: refused as such, not as a proof of the receipt of
    another batch at ``firstSequence + index`` (or an arithmetic panic where that sum passes uint64)."""
    hrss = anchors.ledger.depts["HRSS"]
    gid = anchors.grant()
    anchors.anchor(gid, 0, anchors.receipts(gid, 2))
    receipts = anchors.receipts(gid, 3)
    tree, _ = anchors.anchor(gid, 2, receipts)
    anchors.anchor(gid, 5, anchors.receipts(gid, 2))
    with reverts("ReceiptInvalidField", field="index"):
        anchors.send(
            hrss, "disputeReceipt", gid, 2, receipts[0].as_tuple(), index, tree.proof(0), os.urandom(32)
        )
    assert anchors.call("receiptIncluded", gid, 2, receipts[0].as_tuple(), index, tree.proof(0)) is False


# ------------------------------------------------------------------ the chain's proof check is the verifier's

#: Batches drawn per run, each anchored (one transaction) and checked with several proofs, valid and changed.
PROOF_EXAMPLES = int(os.environ.get("DXL_PROOF_EXAMPLES", 25))
#: How a drawn proof is changed before both checks see it.
CHANGES = (
    "none", "flip a byte", "drop the last hash", "drop the first hash", "append a hash", "repeat a hash",
    "swap two hashes", "no hashes", "another index's path", "index past the batch", "index 2**64-1",
    "another receipt", "a receipt of another batch with its path", "the receipt under another grant",
    "its id in another department's namespace", "hash algorithm 0", "hash algorithm 3", "zero commitment",
)  # fmt: skip
#: How an anchored leaf may be one no single delivery of its provider could be (``_undeliverable``).
UNDELIVERABLE = ("its id in another department's namespace", "hash algorithm 0", "hash algorithm 3",
                 "hash algorithm 255", "zero commitment", "zero delivery id")  # fmt: skip


@dataclass
class DrawnBatch:
    """An anchored batch and one receipt of it with its audit path. A built batch is a whole tree over
    receipts; a wide one (up to 2**48 leaves, more than can be built) is one receipt with a drawn path whose
    root was anchored. The receipt is sometimes one no single delivery of its provider could be
    (``foreign``: an :data:`UNDELIVERABLE` field): anchored all the same, as a provider anchoring past the
    service can."""

    first: int
    size: int
    root: bytes
    receipt: Receipt
    index: int
    path: list[bytes]
    tree: BatchTree | None
    foreign: str | None


def _path_length(index: int, size: int) -> int:
    """The number of hashes in the audit path of leaf ``index`` of ``size`` (the one length accepted)."""
    for length in range(65):
        try:
            root_from_inclusion(HashAlgorithm.SHA256, index, size, bytes(32), [bytes(32)] * length)
        except InvalidProofError:
            continue
        return length
    raise AssertionError((index, size))


def _undeliverable(anchors: Anchors, receipt: Receipt, how: str) -> Receipt:
    """``receipt`` with a field the ledger refuses a delivery of its provider (:data:`UNDELIVERABLE`)."""
    if how == "its id in another department's namespace":
        return receipt._replace(delivery_id=new_delivery_id(anchors.ledger.depts["CIVIL"].id))
    if how == "zero delivery id":
        return receipt._replace(delivery_id=bytes(32))
    if how == "zero commitment":
        return receipt._replace(commitment=bytes(32))
    return receipt._replace(hash_algorithm=int(how.removeprefix("hash algorithm ")))


def _draw_batch(data: st.DataObject, anchors: Anchors, gid: int) -> DrawnBatch:
    first = int(anchors.call("nextSequence", gid))  # type: ignore[call-overload]
    foreign = data.draw(st.sampled_from([None, None, None]) | st.sampled_from(UNDELIVERABLE), "foreign")
    if data.draw(st.booleans(), "wide"):
        size = data.draw(st.integers(2, 2**48), "size")
        index = data.draw(st.sampled_from([0, size - 1]) | st.integers(0, size - 1), "index")
        receipt = anchors.receipts(gid, 1)[0]
        receipt = _undeliverable(anchors, receipt, foreign) if foreign else receipt
        path = [os.urandom(32) for _ in range(_path_length(index, size))]
        root = root_from_inclusion(HashAlgorithm.SHA256, index, size, receipt.leaf_hash(), path)
        tree = None
    else:
        size = data.draw(
            st.sampled_from([1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33]) | st.integers(1, 70), "size"
        )
        index = data.draw(st.integers(0, size - 1), "index")
        receipts = anchors.receipts(gid, size)
        if foreign:
            receipts[index] = _undeliverable(anchors, receipts[index], foreign)
        tree = BatchTree([r.leaf_hash() for r in receipts])
        receipt, path, root = receipts[index], tree.proof(index), tree.root
    anchors.send(anchors.ledger.depts["PSB"], "anchorBatch", gid, first, size, root)
    return DrawnBatch(first, size, root, receipt, index, path, tree, foreign)


def _changed(
    data: st.DataObject, anchors: Anchors, b: DrawnBatch, change: str, gid: int
) -> tuple[Receipt, int, list[bytes]]:
    receipt, index, path = b.receipt, b.index, list(b.path)
    if change == "flip a byte" and path:
        at, byte = data.draw(st.integers(0, len(path) - 1)), data.draw(st.integers(0, 31))
        path[at] = path[at][:byte] + bytes([path[at][byte] ^ 1]) + path[at][byte + 1 :]
    elif change == "drop the last hash":
        path = path[:-1]
    elif change == "drop the first hash":
        path = path[1:]
    elif change == "append a hash":
        path.append(data.draw(st.sampled_from([os.urandom(32), b.root, receipt.leaf_hash()])))
    elif change == "repeat a hash" and path:
        at = data.draw(st.integers(0, len(path) - 1))
        path.insert(at, path[at])
    elif change == "swap two hashes" and len(path) > 1:
        i, j = data.draw(st.lists(st.integers(0, len(path) - 1), min_size=2, max_size=2, unique=True))
        path[i], path[j] = path[j], path[i]
    elif change == "no hashes":
        path = []
    elif change == "another index's path" and b.size > 1:
        index = data.draw(st.integers(0, b.size - 1).filter(lambda i: i != b.index))
        if b.tree is not None:
            path = b.tree.proof(index)
    elif change == "index past the batch":
        index = data.draw(st.integers(b.size, b.size + 3))
    elif change == "index 2**64-1":
        index = 2**64 - 1
    elif change == "another receipt":
        receipt = anchors.receipts(gid, 1)[0]
    elif change == "a receipt of another batch with its path" and b.tree is not None:
        others = anchors.receipts(gid, b.size)  # the same shape, never anchored
        receipt, path = others[index], BatchTree([r.leaf_hash() for r in others]).proof(index)
    elif change == "the receipt under another grant":
        r = receipt
        receipt = Receipt(r.delivery_id, gid + 1, r.commitment, r.hash_algorithm, r.byte_size, r.record_count)
    elif change in UNDELIVERABLE:
        receipt = _undeliverable(anchors, receipt, change)
    return receipt, index, path


def _verifier_accepts(
    reader: AnchorsReader, b: DrawnBatch, receipt: Receipt, index: int, path: list[bytes]
) -> bool:
    """Whether the verifier's check against the chain (``dxl verify-receipt``) finds the receipt anchored,
    given the proof with the batch as the chain holds it."""
    proof = ReceiptProof(receipt, b.first, index, b.size, b.root, tuple(path))
    return check_receipt(proof, reader).status is ReceiptVerdictStatus.ANCHORED


@pytest.fixture
def proof_grant(anchors: Anchors) -> int:
    """A grant issued as the test starts, shared by its examples: the module's other tests move its node's
    clock, so a grant issued earlier may have expired."""
    return anchors.grant()


@pytest.fixture(scope="module")
def anchors_reader(anchors: Anchors) -> AnchorsReader:
    return AnchorsReader(anchors.client.rpc_url, str(anchors.client.address))


@settings(
    max_examples=PROOF_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_receiptIncluded_acceptsExactlyWhatTheVerifierAccepts(
    anchors: Anchors, anchors_reader: AnchorsReader, proof_grant: int, data: st.DataObject
) -> None:
    """Random batches (built trees of 1 to 70 receipts, and paths in trees of up to 2**48 leaves), each
    receipt's path as given and changed: ``receiptIncluded`` on chain and the verifier's ``check_receipt``
    (the proof by ``verify_receipt_proof``, then the anchored batch) give the same answer; the unchanged path
    is accepted by both, unless the receipt is none a delivery of its provider could be."""
    gid = proof_grant
    b = _draw_batch(data, anchors, gid)
    for change in data.draw(st.lists(st.sampled_from(CHANGES), min_size=3, max_size=6), "changes"):
        receipt, index, path = _changed(data, anchors, b, change, gid)
        on_chain = anchors.call("receiptIncluded", gid, b.first, receipt.as_tuple(), index, path)
        verifier = _verifier_accepts(anchors_reader, b, receipt, index, path)
        assert on_chain is verifier, (change, b.size, index, len(path), b.foreign)
    unchanged = anchors.call("receiptIncluded", gid, b.first, b.receipt.as_tuple(), b.index, b.path)
    assert (
        unchanged is _verifier_accepts(anchors_reader, b, b.receipt, b.index, b.path) is (b.foreign is None)
    )


@pytest.mark.parametrize(("first", "index", "count"), [(2**64, 1, 3), (2**64 - 2, 1, 3), (0, 5, 2**64)])
def test_checkReceipt_batchPast64Bits_mismatchNotAChainFailure(
    anchors: Anchors, first: int, index: int, count: int
) -> None:
    """A proof whose batch numbers receipts past 64 bits names no batch the contract can hold: its verdict is
    MISMATCH, as for any proof that does not hold, where the check asked the node for that batch and reported
    the node failing (ChainCheckError: the number does not fit the call)."""
    gid = anchors.grant()
    receipt = anchors.receipts(gid, 1)[0]
    path = [os.urandom(32) for _ in range(_path_length(index, count))]
    root = root_from_inclusion(HashAlgorithm.SHA256, index, count, receipt.leaf_hash(), path)
    proof = ReceiptProof(receipt, first, index, count, root, tuple(path))
    reader = AnchorsReader(anchors.client.rpc_url, str(anchors.client.address))
    verdict = check_receipt(proof, reader)
    assert verdict.status is ReceiptVerdictStatus.MISMATCH, verdict
    assert "64 bits" in verdict.detail


def test_settlement_afterGrantAndAgreementRevoked_stillTheConsumers(anchors: Anchors) -> None:
    """Revoking stops anchoring, not settling: the receipts were delivered while the grant was usable, so
    their consumer still disputes and acknowledges them (and only it), while their provider can anchor no
    more under the grant, nor under another grant of a revoked agreement."""
    psb, hrss = anchors.ledger.depts["PSB"], anchors.ledger.depts["HRSS"]
    gid = anchors.grant()
    receipts = anchors.receipts(gid, 3)
    tree, _ = anchors.anchor(gid, 0, receipts)
    anchors.ledger.send(psb, "revokeGrant", gid)
    with reverts("GrantAlreadyRevoked", grantId=gid):
        anchors.anchor(gid, 3, anchors.receipts(gid, 1))
    theirs = os.urandom(32)
    disputed = anchors.send(hrss, "disputeReceipt", gid, 0, receipts[1].as_tuple(), 1, tree.proof(1), theirs)
    assert names(disputed) == ["ReceiptDisputed"]
    with reverts("DepartmentUnauthorized", account=psb.account.address):
        anchors.send(psb, "acknowledgeBatch", gid, 0)
    assert names(anchors.send(hrss, "acknowledgeBatch", gid, 0)) == ["ReceiptBatchAcknowledged"]

    other = anchors.grant()
    anchors.anchor(other, 0, anchors.receipts(other, 1))
    aid = anchors.ledger.call("grant", other)[0]
    anchors.ledger.govern(GovernanceAction.REVOKE_AGREEMENT, uint(aid))
    with reverts("GrantAlreadyRevoked", grantId=other):
        anchors.anchor(other, 1, anchors.receipts(other, 1))
    assert names(anchors.send(hrss, "acknowledgeBatch", other, 0)) == ["ReceiptBatchAcknowledged"]


def test_receiptOutsideItsProvidersNamespace_noReceiptOfIt(anchors: Anchors) -> None:
    """A leaf whose delivery id is another department's (its first four bytes that department's id), anchored
    by a provider past the service, is no receipt of that provider, as the ledger refuses such a delivery
    (DeliveryIdNotProviders): not included on chain, not disputable, and MISMATCH to the verifier. Before, it
    was proved and disputed under the other department's id, and ``dxl verify-receipt`` answered ANCHORED."""
    psb, hrss, civil = (anchors.ledger.depts[c] for c in ("PSB", "HRSS", "CIVIL"))
    gid = anchors.grant()
    receipts = anchors.receipts(gid, 2)
    r = receipts[1]
    receipts[1] = Receipt(new_delivery_id(civil.id), gid, r.commitment, 1, r.byte_size, r.record_count)
    tree, _ = anchors.anchor(gid, 0, receipts)
    reader = AnchorsReader(anchors.client.rpc_url, str(anchors.client.address))
    for index, (receipt, included) in enumerate(zip(receipts, (True, False), strict=True)):
        path = tree.proof(index)
        assert anchors.call("receiptIncluded", gid, 0, receipt.as_tuple(), index, path) is included
        verdict = check_receipt(ReceiptProof(receipt, 0, index, 2, tree.root, tuple(path)), reader)
        expected = ReceiptVerdictStatus.ANCHORED if included else ReceiptVerdictStatus.MISMATCH
        assert verdict.status is expected, verdict
    theirs = receipts[1].delivery_id
    with reverts("DeliveryIdNotProviders", deliveryId=theirs, provider=psb.id):
        anchors.send(hrss, "disputeReceipt", gid, 0, receipts[1].as_tuple(), 1, tree.proof(1), os.urandom(32))
    assert anchors.call("receiptDisputed", gid, 1) is False


@pytest.mark.parametrize(
    ("how", "error", "args"),
    [("hash algorithm 0", "DeliveryUnknownHashAlgorithm", {"hashAlgorithm": 0}),
     ("hash algorithm 3", "DeliveryUnknownHashAlgorithm", {"hashAlgorithm": 3}),
     ("hash algorithm 255", "DeliveryUnknownHashAlgorithm", {"hashAlgorithm": 255}),
     ("zero commitment", "DeliveryInvalidField", {"field": "commitment"}),
     ("zero delivery id", "DeliveryIdNotProviders", {"deliveryId": bytes(32)})],
)  # fmt: skip
def test_receiptNoDeliveryCouldBe_noReceiptOfIt(
    anchors: Anchors, how: str, error: str, args: dict[str, object]
) -> None:
    """A leaf with a field ``recordDelivery`` refuses (a hash algorithm the ledger does not accept, a zero
    commitment; a zero id is in no department's namespace), anchored by a provider past the service, is no
    receipt: not included on chain, not disputable (the ledger's error for that field), MISMATCH to the
    verifier. Before, ``receiptIncluded`` was true and ``dxl verify-receipt`` answered ANCHORED. Byte size and
    record count are any uint64 to the ledger, and to the anchors."""
    psb, hrss = anchors.ledger.depts["PSB"], anchors.ledger.depts["HRSS"]
    gid = anchors.grant()
    receipts = anchors.receipts(gid, 3)
    receipts[1] = _undeliverable(anchors, receipts[1], how)
    receipts[2] = receipts[2]._replace(byte_size=2**64 - 1, record_count=2**64 - 1)
    tree, _ = anchors.anchor(gid, 0, receipts)
    reader = AnchorsReader(anchors.client.rpc_url, str(anchors.client.address))
    for index, (receipt, included) in enumerate(zip(receipts, (True, False, True), strict=True)):
        path = tree.proof(index)
        assert anchors.call("receiptIncluded", gid, 0, receipt.as_tuple(), index, path) is included
        verdict = check_receipt(ReceiptProof(receipt, 0, index, 3, tree.root, tuple(path)), reader)
        expected = ReceiptVerdictStatus.ANCHORED if included else ReceiptVerdictStatus.MISMATCH
        assert verdict.status is expected, verdict
    if error == "DeliveryIdNotProviders":
        args = {**args, "provider": psb.id}
    with reverts(error, **args):
        anchors.send(hrss, "disputeReceipt", gid, 0, receipts[1].as_tuple(), 1, tree.proof(1), os.urandom(32))
    assert anchors.call("receiptDisputed", gid, 1) is False
    disputed = anchors.send(
        hrss, "disputeReceipt", gid, 0, receipts[2].as_tuple(), 2, tree.proof(2), os.urandom(32)
    )
    assert names(disputed) == ["ReceiptDisputed"]

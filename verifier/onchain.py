"""The on-chain check: is the manifest's commitment the one recorded (and acknowledged) on the ledger?

An auditor can run this against any node by RPC URL: it talks to the ledger contract with plain JSON-RPC
(:mod:`verifier.rpc`, standard ``eth_call`` / ``eth_getLogs``, no signing, no API, no dxl service wiring) and
the ABI of the committed build artifact, encoded and decoded by :mod:`verifier.abi`. The chain is the trusted
anchor; the manifest is trusted only when it is signed by the provider department's signer *as registered on
chain*.

Checks, in order (:func:`check_onchain`):

1. ``deliveryStatus(deliveryId)``: ``None`` -> NOT_RECORDED.
2. The ``DeliveryRecorded`` log found by its ``deliveryId`` topic (bounded block ranges from the deployment
   block), rebuilt into the receipt and confirmed by ``receiptMatches(deliveryId, receipt)``: a log that the
   contract's storage does not confirm is never used.
3. The manifest's signature must recover to ``department(provider).signer`` -> else UNTRUSTED.
4. Payload (or a given commitment) against the manifest -> MISMATCH with the differing leaves.
5. Manifest against the receipt: root, byte size, record count, algorithm id, grant, the grant's agreement
   (``grant(grantId)``, read only when the manifest names one) and parties -> MISMATCH.
6. A disputed delivery -> ACK_DIFFERS with the recorded and the consumer's commitment.

Only when all agree is the verdict MATCH, with the status (RECORDED/ACKNOWLEDGED) and the chain location of
the receipt (tx hash, block number and hash, log index).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verifier import abi as abi_codec
from verifier.codes import FindingCode, RecordStatus, VerdictStatus
from verifier.errors import ManifestSignatureError, VerifierError
from verifier.eth import is_address, to_checksum_address
from verifier.manifest import Manifest, verify_manifest_signature
from verifier.rpc import DEFAULT_TIMEOUT_S, SET_ONCE, JsonRpc, RpcError, data, quantity
from verifier.verify import (
    Anchor,
    Finding,
    Verdict,
    check_delivery,
    summary,
    untrusted,
    verify_payload,
)

#: Block span of one ``eth_getLogs`` call (Besu's default ``--rpc-max-logs-range`` is 5000 blocks).
LOG_RANGE = 5000
#: At most this many recorded deliveries are listed by :meth:`LedgerReader.deliveries_for_grants`.
MAX_LISTED_DELIVERIES = 1000
#: The ledger's functions and events this module reads, shipped as package data (``ledger-abi.json``, written
#: from the build artifact by ``scripts/verifier-abi.py``) so an installed verifier needs no ``contracts/``.
LEDGER_ABI_NAMES = (
    "deliveryStatus",
    "receiptMatches",
    "department",
    "grant",
    "DeliveryRecorded",
    "DeliveryAcknowledged",
    "DeliveryDisputed",
)
LEDGER_ABI_FILE = Path(__file__).resolve().parent / "ledger-abi.json"


class ChainCheckError(VerifierError, RuntimeError):
    """Thrown when the chain cannot be consulted or answers inconsistently (unreachable node, wrong chain id,
    no contract at the address, a recorded delivery whose log cannot be found)."""

    code = "CHAIN_CHECK_FAILED"

    def __init__(self, reason: str) -> None:
        super().__init__(f"on-chain check failed: {reason}")
        self.reason = reason


def load_ledger_abi(path: str | os.PathLike[str] = LEDGER_ABI_FILE) -> list[dict[str, Any]]:
    """The ledger ABI entries the check reads: the shipped ``ledger-abi.json``, or a build artifact's ABI.

    Raises:
        ChainCheckError: the file is missing or unreadable.
    """
    try:
        loaded = json.loads(Path(path).read_text(encoding="utf-8"))
        abi = loaded["abi"] if isinstance(loaded, dict) else loaded
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ChainCheckError(f"cannot read the ledger ABI from {path}: {e}") from None
    return list(abi)


def contract_chain_id(rpc: JsonRpc, rpc_url: str, address: str, chain_id: int | None) -> int:
    """The chain id of the node behind ``rpc``, once it is known to serve code at ``address``.

    Raises:
        ChainCheckError: the node did not answer, serves another chain than ``chain_id`` (when given), or
            holds no contract at ``address``.
    """
    try:
        actual = quantity(rpc.call("eth_chainId"))
        code = data(rpc.call("eth_getCode", address, SET_ONCE))
    except (RpcError, ValueError) as e:
        raise ChainCheckError(f"node at {rpc_url} did not answer ({type(e).__name__}: {e})") from None
    if chain_id is not None and actual != chain_id:
        raise ChainCheckError(f"node at {rpc_url} serves chain id {actual}, expected {chain_id}")
    if not code:
        raise ChainCheckError(f"no contract at {address} on chain {actual}")
    return actual


def _h(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def _code(raw: bytes) -> str:
    return bytes(raw).rstrip(b"\x00").decode("ascii", errors="replace")


@dataclass(frozen=True)
class RecordedDelivery:
    """A ``DeliveryRecorded`` log and where it is on chain."""

    delivery_id: bytes
    grant_id: int
    commitment: bytes
    provider: int
    consumer: int
    hash_algorithm: int
    byte_size: int
    record_count: int
    recorded_at: int
    tx_hash: str
    block_number: int
    block_hash: str
    log_index: int

    @property
    def receipt(self) -> tuple[Any, ...]:
        """The ``DeliveryReceipt`` struct as ``receiptMatches`` takes it."""
        return (self.grant_id, self.provider, self.consumer, self.commitment, self.hash_algorithm,
                self.byte_size, self.record_count, self.recorded_at)  # fmt: skip

    def location(self) -> dict[str, Any]:
        return {"tx_hash": self.tx_hash, "block_number": self.block_number, "block_hash": self.block_hash,
                "log_index": self.log_index}  # fmt: skip


@dataclass(frozen=True)
class Dispute:
    consumer: int
    recorded_commitment: bytes
    consumer_commitment: bytes
    tx_hash: str
    block_number: int


class LedgerReader:
    """Read-only view of one ledger contract on one node: as it stands at ``block`` when one is given (or once
    ``rpc`` is pinned: :meth:`verifier.rpc.JsonRpc.pin`), else at the node's head of each read.

    Raises (constructor):
        ChainCheckError: the node is unreachable, serves another chain id than ``chain_id``, or has no code
        at ``contract``.
    """

    def __init__(
        self,
        rpc_url: str,
        contract: str,
        *,
        chain_id: int | None = None,
        from_block: int = 0,
        abi: list[dict[str, Any]] | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        log_range: int = LOG_RANGE,
        block: int | None = None,
    ) -> None:
        self.rpc = JsonRpc(rpc_url, timeout=timeout, block=block)
        self.rpc_url = rpc_url
        self.from_block = max(0, from_block)
        self.log_range = max(1, log_range)
        if not is_address(contract):
            raise ChainCheckError(f"{contract!r} is not a contract address")
        self.address = to_checksum_address(contract)
        self.chain_id = contract_chain_id(self.rpc, rpc_url, self.address, chain_id)
        entries = abi or load_ledger_abi()
        self._functions = {e["name"]: e for e in entries if e.get("type") == "function"}
        self._events = {e["name"]: e for e in entries if e.get("type") == "event"}
        self._recorded_topic = _h(abi_codec.event_topic(self._events["DeliveryRecorded"]))
        self._disputed_topic = _h(abi_codec.event_topic(self._events["DeliveryDisputed"]))
        self._acknowledged_topic = _h(abi_codec.event_topic(self._events["DeliveryAcknowledged"]))

    def view(self) -> LedgerReader:
        """This reader on a client of its own (:meth:`verifier.rpc.JsonRpc.view`), to pin without pinning this
        one: a request's view of a reader many requests share, with none of the constructor's checks made
        again (the node's chain id, the contract's code)."""
        view = copy.copy(self)
        view.rpc = self.rpc.view()
        return view

    @property
    def source(self) -> str:
        return f"chain {self.chain_id} ledger {self.address} via {self.rpc_url}"

    def _call(self, fn: str, *args: Any, block: int | str | None = None) -> Any:
        """The single return value of the view function ``fn(args)`` at ``block`` (a number or a tag such as
        :data:`~verifier.rpc.SET_ONCE`; default: latest)."""
        entry = self._functions[fn]
        at = hex(block) if isinstance(block, int) else block or "latest"
        try:
            calldata = abi_codec.selector(entry) + abi_codec.encode(entry["inputs"], args)
            call = {"to": self.address, "data": _h(calldata)}
            result = data(self.rpc.call("eth_call", call, at))
            (value,) = abi_codec.decode(entry["outputs"], result)
        except (RpcError, ValueError) as e:
            raise ChainCheckError(f"eth_call {fn} failed ({type(e).__name__}: {e})") from None
        return value

    def status(self, delivery_id: bytes) -> int:
        return int(self._call("deliveryStatus", delivery_id))

    def receipt_matches(self, delivery_id: bytes, receipt: tuple[Any, ...]) -> bool:
        return bool(self._call("receiptMatches", delivery_id, receipt))

    def department(self, department_id: int, *, block: int | None = None) -> dict[str, Any]:
        """A department as registered at ``block`` (default: now); a pruned node may refuse old blocks."""
        record = self._call("department", department_id, block=block)
        signer, status, code, name = record[0], record[1], record[2], record[4]
        return {"id": department_id, "signer": str(signer), "status": int(status), "code": _code(code),
                "name": name}  # fmt: skip

    def grant_agreement(self, grant_id: int) -> int:
        """The agreement ``grant_id`` was issued under (set once, at issue)."""
        return int(self._call("grant", grant_id, block=SET_ONCE)[0])

    def _logs(self, topics: list[Any], *, stop_after: int | None = None) -> list[dict[str, Any]]:
        """Logs of this contract with ``topics``, in block ranges of ``log_range`` from ``from_block``."""
        try:
            latest = quantity(self.rpc.call("eth_blockNumber"))
            found: list[dict[str, Any]] = []
            start = self.from_block
            while start <= latest:
                end = min(start + self.log_range - 1, latest)
                found += self.rpc.call(
                    "eth_getLogs",
                    {"address": self.address, "topics": topics, "fromBlock": hex(start), "toBlock": hex(end)},
                )
                if stop_after is not None and len(found) >= stop_after:
                    break
                start = end + 1
        except (RpcError, ValueError, TypeError) as e:
            raise ChainCheckError(f"eth_getLogs failed ({type(e).__name__}: {e})") from None
        return found

    def starts_at_deployment(self) -> bool:
        """Whether ``from_block`` is the block whose transaction created the ledger (its constructor logs the
        governors' roles there), so that no block before it holds anything of the ledger. Needs no historical
        state, which pruned nodes do not keep: the block's logs of the ledger and their transactions'
        receipts.

        Raises:
            ChainCheckError: the node fails.
        """
        block = hex(self.from_block)
        try:
            logs = self.rpc.call(
                "eth_getLogs", {"address": self.address, "fromBlock": block, "toBlock": block}
            )
            for tx_hash in dict.fromkeys(str(log["transactionHash"]) for log in logs):
                receipt = self.rpc.call("eth_getTransactionReceipt", tx_hash)
                created = (receipt or {}).get("contractAddress")
                if created and is_address(created) and to_checksum_address(created) == self.address:
                    return True
        except (RpcError, KeyError, TypeError) as e:
            raise ChainCheckError(
                f"block {self.from_block} cannot be read ({type(e).__name__}: {e})"
            ) from None
        return False

    def _decoded(self, event: str, log: dict[str, Any]) -> dict[str, Any]:
        try:
            topics = [data(t) for t in log["topics"]]
            return abi_codec.decode_log(self._events[event], topics, data(log["data"]))
        except (KeyError, TypeError, ValueError) as e:
            raise ChainCheckError(f"a {event} log does not decode ({type(e).__name__}: {e})") from None

    def _recorded(self, log: dict[str, Any]) -> RecordedDelivery:
        a = self._decoded("DeliveryRecorded", log)
        return RecordedDelivery(
            delivery_id=bytes(a["deliveryId"]), grant_id=a["grantId"], commitment=bytes(a["commitment"]),
            provider=a["provider"], consumer=a["consumer"], hash_algorithm=a["hashAlgorithm"],
            byte_size=a["byteSize"], record_count=a["recordCount"], recorded_at=a["recordedAt"],
            tx_hash=str(log["transactionHash"]).lower(), block_number=quantity(log["blockNumber"]),
            block_hash=str(log["blockHash"]).lower(), log_index=quantity(log["logIndex"]),
        )  # fmt: skip

    def recorded(self, delivery_id: bytes) -> RecordedDelivery | None:
        """The ``DeliveryRecorded`` log of ``delivery_id`` (a delivery id is recorded at most once)."""
        logs = self._logs([self._recorded_topic, _h(delivery_id)], stop_after=1)
        return self._recorded(logs[0]) if logs else None

    def dispute(self, delivery_id: bytes) -> Dispute | None:
        logs = self._logs([self._disputed_topic, _h(delivery_id)], stop_after=1)
        if not logs:
            return None
        a = self._decoded("DeliveryDisputed", logs[0])
        return Dispute(a["consumer"], bytes(a["recordedCommitment"]), bytes(a["consumerCommitment"]),
                       str(logs[0]["transactionHash"]).lower(), quantity(logs[0]["blockNumber"]))  # fmt: skip

    def acknowledgement(self, delivery_id: bytes) -> dict[str, Any] | None:
        """Where the consumer acknowledged ``delivery_id``: its transaction, block and block hash."""
        logs = self._logs([self._acknowledged_topic, _h(delivery_id)], stop_after=1)
        if not logs:
            return None
        return {"tx_hash": str(logs[0]["transactionHash"]).lower(),
                "block_number": quantity(logs[0]["blockNumber"]),
                "block_hash": str(logs[0]["blockHash"]).lower()}  # fmt: skip

    def recorded_between(self, period_from: int, period_to: int) -> list[RecordedDelivery]:
        """Every delivery recorded with ``recordedAt`` in ``[period_from, period_to)`` (block time)."""
        found = (self._recorded(log) for log in self._logs([self._recorded_topic]))
        return [r for r in found if period_from <= r.recorded_at < period_to]

    def deliveries_for_grants(
        self, grant_ids: Iterable[int], *, limit: int = MAX_LISTED_DELIVERIES
    ) -> tuple[list[RecordedDelivery], bool]:
        """Deliveries recorded under any of ``grant_ids`` (at most ``limit``; the flag says if cut short)."""
        topics = [_h(int(g).to_bytes(32, "big")) for g in sorted(set(grant_ids))]
        if not topics:
            return [], False
        logs = self._logs([self._recorded_topic, None, topics], stop_after=limit + 1)
        return [self._recorded(log) for log in logs[:limit]], len(logs) > limit


def chain_findings(
    manifest: Manifest, rec: RecordedDelivery, parties: dict[str, str], reader: LedgerReader
) -> list[Finding]:
    """Where the manifest says something other than the recorded receipt (and the agreement its grant was
    issued under, read from ``reader`` when the manifest names one)."""
    out: list[Finding] = []

    def differ(code: FindingCode, what: str, mine: Any, chain: Any) -> None:
        out.append(Finding(code, f"manifest {what} is {mine}, the chain recorded {chain}"))

    if manifest.root != rec.commitment:
        differ(FindingCode.CHAIN_ROOT_MISMATCH, "root", _h(manifest.root), _h(rec.commitment))
    if manifest.byte_size != rec.byte_size:
        differ(FindingCode.CHAIN_SIZE_MISMATCH, "byte size", manifest.byte_size, rec.byte_size)
    if manifest.record_count != rec.record_count:
        differ(
            FindingCode.CHAIN_RECORD_COUNT_MISMATCH, "record count", manifest.record_count, rec.record_count
        )
    if int(manifest.alg) != rec.hash_algorithm:
        differ(FindingCode.CHAIN_ALGORITHM_MISMATCH, "algorithm id", int(manifest.alg), rec.hash_algorithm)
    if manifest.grant_id is not None and manifest.grant_id != rec.grant_id:
        differ(FindingCode.CHAIN_GRANT_MISMATCH, "grant", manifest.grant_id, rec.grant_id)
    # The receipt names its grant only; a manifest naming another agreement than the grant's passed as MATCH.
    if manifest.agreement_id is not None:
        agreement = reader.grant_agreement(rec.grant_id)
        if manifest.agreement_id != agreement:
            differ(FindingCode.CHAIN_AGREEMENT_MISMATCH, "agreement", manifest.agreement_id, agreement)
    for role, code in (
        ("provider", FindingCode.CHAIN_PROVIDER_MISMATCH),
        ("consumer", FindingCode.CHAIN_CONSUMER_MISMATCH),
    ):
        mine = getattr(manifest, role)
        if mine is not None and mine != parties[role]:
            differ(code, role, mine, parties[role])
    return out


def not_recorded(delivery_id: bytes, source: str) -> Finding:
    """The finding of a delivery the chain does not hold, as a check against a node alone can know it: the
    ledger has no single delivery of that id, and a receipt (``POST /receipts``) is on chain only inside
    its batch's root, so it is found by its inclusion proof, which the node cannot produce; one accepted by a
    service but not anchored yet is on no chain at all."""
    return Finding(
        FindingCode.NOT_RECORDED,
        f"no delivery {_h(delivery_id)} is recorded on {source}. The chain alone cannot show a receipt "
        "posted at volume (POST /receipts): an anchored one is checked by its inclusion proof (dxl verify "
        "--receipt ANSWER.json), and one the service accepted but has not anchored yet is not on chain",
    )


def check_onchain(
    manifest: Manifest,
    reader: LedgerReader,
    offline: Callable[[str | None], Verdict],
    *,
    expected_delivery_id: bytes | None = None,
    visible: Callable[[RecordedDelivery], bool] | None = None,
) -> Verdict:
    """Refine the offline verdict with the ledger's receipt (see the module docstring for the checks).

    ``offline(expected_signer)`` produces the payload-vs-manifest verdict. It is called with ``None`` when the
    delivery is not recorded, and otherwise with the provider's on-chain signer only after the manifest's
    signature (and ``expected_delivery_id``) has been verified against that signer, so it need not verify
    them again: recovering the signer hashes the whole canonical manifest, leaf hashes included.

    A recorded delivery for which ``visible`` answers False is answered as one not recorded: a service that
    shows a department only its own exchanges answers another's delivery as an unknown one.

    Raises:
        ChainCheckError: the chain cannot be consulted, or says the delivery is recorded but its log or
        receipt cannot be confirmed.
        PayloadReadError, PayloadFormatError: from ``offline``.
    """
    did = manifest.delivery_id
    value = reader.status(did)
    if not 0 <= value < len(RecordStatus):
        raise ChainCheckError(f"deliveryStatus returned {value}, which this verifier does not know")
    status = RecordStatus.of(value)
    rec = reader.recorded(did) if status is not RecordStatus.NONE else None
    if status is not RecordStatus.NONE and rec is None:
        raise ChainCheckError(
            f"delivery {_h(did)} has status {status.value} but no DeliveryRecorded log from block "
            f"{reader.from_block} (is the deployment block right?)"
        )
    if rec is None or (visible is not None and not visible(rec)):
        anchor = Anchor(reader.source, recorded=False, details={"chain_id": reader.chain_id,
                                                                  "contract": reader.address})  # fmt: skip
        verdict = offline(None)
        return verdict.with_anchor(anchor, VerdictStatus.NOT_RECORDED, not_recorded(did, reader.source))
    if not reader.receipt_matches(did, rec.receipt):
        raise ChainCheckError(f"the DeliveryRecorded log of {_h(did)} is not confirmed by receiptMatches")
    provider, consumer = reader.department(rec.provider), reader.department(rec.consumer)
    details: dict[str, Any] = {
        "recorded_as": "delivery",
        "chain_id": reader.chain_id,
        "contract": reader.address,
        "status": status.value,
        **rec.location(),
        "grant_id": rec.grant_id,
        "provider": provider["code"],
        "consumer": consumer["code"],
        "provider_signer": provider["signer"],
        "hash_algorithm": rec.hash_algorithm,
        "byte_size": rec.byte_size,
        "record_count": rec.record_count,
        "recorded_at": rec.recorded_at,
    }
    dispute = reader.dispute(did) if status is RecordStatus.DISPUTED else None
    if status is RecordStatus.DISPUTED and dispute is None:
        raise ChainCheckError(f"delivery {_h(did)} is DISPUTED but its DeliveryDisputed log is not found")
    # Where the consumer settled it: the recording's location above is not the acknowledgement's.
    if dispute is not None:
        details["settled"] = {"tx_hash": dispute.tx_hash, "block_number": dispute.block_number}
    elif status is RecordStatus.ACKNOWLEDGED:
        settled = reader.acknowledgement(did)
        if settled is None:
            raise ChainCheckError(
                f"delivery {_h(did)} is ACKNOWLEDGED but its DeliveryAcknowledged log is not found"
            )
        details["settled"] = settled
    else:
        details["settled"] = None
    anchor = Anchor(
        reader.source,
        recorded=True,
        recorded_root=rec.commitment,
        acknowledged_root=(
            dispute.consumer_commitment
            if dispute
            else rec.commitment
            if status is RecordStatus.ACKNOWLEDGED
            else None
        ),
        details=details,
    )
    if not manifest.signed:
        return untrusted(manifest, "the manifest is not signed").with_anchor(anchor)
    signer = provider["signer"]
    if manifest.signer is not None and manifest.signer.lower() != signer.lower():
        # The provider may have been rekeyed since: the key registered when the delivery was recorded counts.
        # A node without that block's state refuses the call, and the current key alone decides.
        try:
            then = reader.department(rec.provider, block=rec.block_number)["signer"]
        except ChainCheckError:
            then = signer
        if then.lower() == manifest.signer.lower():
            signer = details["provider_signer_at_recording"] = then
    try:
        verify_manifest_signature(manifest, signer, expected_delivery_id=expected_delivery_id)
    except ManifestSignatureError as e:
        reason = f"{e.reason} (the provider {provider['code']}'s signer on chain is {provider['signer']})"
        return untrusted(manifest, reason).with_anchor(anchor)
    verdict = offline(signer)
    parties = {"provider": provider["code"], "consumer": consumer["code"]}
    findings = chain_findings(manifest, rec, parties, reader)
    if findings:
        return verdict.with_anchor(anchor, VerdictStatus.MISMATCH, *findings)
    if status is RecordStatus.DISPUTED:
        assert dispute is not None
        return verdict.with_anchor(
            anchor,
            VerdictStatus.ACK_DIFFERS,
            Finding(
                FindingCode.ACK_DIFFERS,
                f"consumer {consumer['code']} disputed: it computed "
                f"{_h(dispute.consumer_commitment)}, the provider recorded {_h(dispute.recorded_commitment)}",
            ),
        )
    return verdict.with_anchor(anchor)


def verify_payload_onchain(
    path: str | os.PathLike[str],
    manifest: Manifest,
    reader: LedgerReader,
    *,
    expected_delivery_id: bytes | None = None,
    progress: Callable[[int], None] | None = None,
    visible: Callable[[RecordedDelivery], bool] | None = None,
) -> Verdict:
    """Payload against manifest against chain (``visible`` as :func:`check_onchain` takes it).

    Raises:
        ChainCheckError: the chain cannot be consulted or is inconsistent.
        PayloadReadError, PayloadFormatError: the payload cannot be read or cut into records.
    """

    offline = payload_check(path, manifest, expected_delivery_id=expected_delivery_id, progress=progress)
    return check_onchain(
        manifest, reader, offline, expected_delivery_id=expected_delivery_id, visible=visible
    )


def verify_commitment_onchain(
    manifest: Manifest,
    reader: LedgerReader,
    *,
    commitment: bytes | None = None,
    expected_delivery_id: bytes | None = None,
    visible: Callable[[RecordedDelivery], bool] | None = None,
) -> Verdict:
    """Manifest (and optionally a commitment the client computed itself) against chain, without the payload
    (``visible`` as :func:`check_onchain` takes it).

    Raises:
        ChainCheckError: the chain cannot be consulted or is inconsistent.
    """

    offline = commitment_check(manifest, commitment=commitment, expected_delivery_id=expected_delivery_id)
    return check_onchain(
        manifest, reader, offline, expected_delivery_id=expected_delivery_id, visible=visible
    )


def payload_check(
    path: str | os.PathLike[str],
    manifest: Manifest,
    *,
    expected_delivery_id: bytes | None = None,
    progress: Callable[[int], None] | None = None,
) -> Callable[[str | None], Verdict]:
    """The offline half of a payload's check, as :func:`check_onchain` takes it: called with the provider's
    signer once the caller has verified the manifest's signature against it, else with None (the manifest
    is then checked on its own, against ``expected_delivery_id``).

    The returned function raises PayloadReadError, PayloadFormatError when the payload cannot be read or cut
    into records.
    """

    def offline(signer: str | None) -> Verdict:
        if signer is not None:  # the caller has verified the signature against this signer
            return verify_payload(path, manifest, progress=progress)
        return check_delivery(path, manifest, expected_delivery_id=expected_delivery_id, progress=progress)

    return offline


def commitment_check(
    manifest: Manifest, *, commitment: bytes | None = None, expected_delivery_id: bytes | None = None
) -> Callable[[str | None], Verdict]:
    """The offline half of a check without the payload (:func:`payload_check`'s counterpart): the manifest,
    and a commitment the client computed itself when one is given."""

    def offline(signer: str | None) -> Verdict:
        # With a signer, the caller has verified the signature against it already.
        if signer is None and manifest.signed:
            try:
                verify_manifest_signature(manifest, None, expected_delivery_id=expected_delivery_id)
            except ManifestSignatureError as e:
                return untrusted(manifest, e.reason)
        expected = summary(manifest)
        observed = dict(expected, root=_h(commitment)) if commitment is not None else {}
        status = VerdictStatus.MATCH
        findings: tuple[Finding, ...] = ()
        if commitment is None:
            # Say so plainly: without a payload or commitment, MATCH is about the manifest and the chain only.
            findings = (
                Finding(
                    FindingCode.PAYLOAD_NOT_CHECKED, "no payload or commitment given: manifest checked only"
                ),
            )
        elif commitment != manifest.root:
            status = VerdictStatus.MISMATCH
            differs = f"commitment {_h(commitment)} differs from the manifest's {_h(manifest.root)}"
            findings = (Finding(FindingCode.ROOT_MISMATCH, differs),)
        return Verdict(status, manifest.delivery_id, findings, expected=expected, observed=observed,
                       signer=manifest.signer)  # fmt: skip

    return offline

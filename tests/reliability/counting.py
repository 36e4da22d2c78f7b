"""The verdict, counted from the chain's events (never from the API's database): every acknowledged record
present exactly once, in the transaction the API answered, and nothing recorded for a refused key.

The ledger's events are read straight from the node (not through the proxy) and decoded with the contract's
ABI by web3, independently of the service's own decoder.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils.abi import event_abi_to_log_topic
from web3 import Web3
from web3.contract.contract import ContractEvent
from web3.exceptions import TransactionNotFound

from tests.reliability.records import Marker, WriteRecord, error_code

ABI_FILE = Path(__file__).resolve().parents[2] / "contracts" / "abi" / "DataExchangeLedger.json"
LOG_RANGE = 2_000


@dataclass(frozen=True)
class ChainEvent:
    name: str
    args: Mapping[str, str | int | bool]
    tx_hash: str
    block_number: int


def _plain(value: Any) -> str | int | bool:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, bool | int):
        return value
    return str(value).lower()


def read_events(rpc_url: str, address: str, from_block: int) -> list[ChainEvent]:
    """Every event of the ledger from ``from_block`` to the head, decoded."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 60}))
    abi = json.loads(ABI_FILE.read_text())
    contract = w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)
    by_topic: dict[bytes, ContractEvent] = {
        event_abi_to_log_topic(entry): contract.events[entry["name"]]()
        for entry in abi
        if entry.get("type") == "event"
    }
    head = w3.eth.block_number
    events: list[ChainEvent] = []
    for start in range(from_block, head + 1, LOG_RANGE):
        logs = w3.eth.get_logs(
            {"address": contract.address, "fromBlock": start, "toBlock": min(head, start + LOG_RANGE - 1)}
        )
        for log in logs:
            decoder = by_topic.get(bytes(log["topics"][0]))
            if decoder is None:
                continue
            decoded = decoder.process_log(log)
            events.append(
                ChainEvent(
                    name=decoded["event"],
                    args={k: _plain(v) for k, v in decoded["args"].items()},
                    tx_hash="0x" + bytes(log["transactionHash"]).hex(),
                    block_number=int(log["blockNumber"]),
                )
            )
    return events


def receipts(rpc_url: str, hashes: Iterable[str]) -> dict[str, int | None]:
    """The block of each transaction's receipt on the node, None when it has none: a second, independent look
    at the records the event count found missing."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 60}))
    found: dict[str, int | None] = {}
    for tx_hash in sorted(h for h in hashes if h):
        try:
            found[tx_hash] = int(w3.eth.get_transaction_receipt(tx_hash)["blockNumber"])  # type: ignore[arg-type]
        except TransactionNotFound:
            found[tx_hash] = None
    return found


@dataclass
class Verdict:
    """Counts of the run's outcome; ``problems`` names the first findings of each kind."""

    #: Records of writes answered 2xx that are not on the chain.
    lost: int = 0
    #: Extra copies on the chain of a write's record (a record twice counts 1).
    doubled: int = 0
    #: Answers that disagree with the chain: a 2xx naming another transaction or id than the chain's, a
    #: refused (4xx) key whose record is on the chain anyway, a key still answered "pending" after recovery.
    mismatched: int = 0
    #: Acknowledged records found once, in the answered transaction.
    confirmed: int = 0
    #: Acknowledged records found in another block than the answer said (the transaction re-mined after a
    #: lost block: same hash, so not a mismatch).
    moved: int = 0
    #: Keys whose last answer was still "ask again" or a 5xx, or that never got an answer.
    unresolved: int = 0
    problems: dict[str, list[str]] = field(default_factory=dict)
    #: Keys already counted as lost, doubled or mismatched.
    flagged: set[str] = field(default_factory=set)
    #: The transactions answered for lost records, to be looked up on the node one by one.
    lost_transactions: set[str] = field(default_factory=set)

    def note(self, kind: str, key: str, text: str) -> None:
        if kind != "unresolved":
            self.flagged.add(key)
        found = self.problems.setdefault(kind, [])
        if len(found) < 25:
            found.append(text)

    def answer_differs(self, key: str, text: str) -> None:
        """A later answer for ``key`` (a replay, a twin send) differs from its final one: one mismatch per
        key, not counted again if the chain already disagreed with that key's answer."""
        if key not in self.flagged:
            self.mismatched += 1
            self.note("answer_differs", key, text)


def _matches(marker: Marker, event: ChainEvent) -> bool:
    return event.name == marker.event and all(event.args.get(k) == _plain(v) for k, v in marker.match)


def judge(writes: Iterable[WriteRecord], events: Iterable[ChainEvent]) -> Verdict:
    """Counts every marker of every write among ``events``."""
    index: dict[tuple[str, tuple[tuple[str, str | int | bool], ...]], list[ChainEvent]] = defaultdict(list)
    wanted: set[tuple[str, tuple[str, ...]]] = set()
    writes = list(writes)
    for write in writes:
        for marker in write.markers:
            wanted.add((marker.event, tuple(k for k, _ in marker.match)))
    for event in events:
        for name, keys in wanted:
            if event.name == name:
                index[(name, tuple((k, event.args.get(k, "")) for k in keys))].append(event)

    verdict = Verdict()
    for write in writes:
        if not write.settled:
            verdict.unresolved += 1
            answer = f"{write.final_status} {error_code(write.final_body) or ''}".strip()
            verdict.note("unresolved", write.key, f"{write.kind} {write.key}: last answer {answer}")
            if write.final_status is not None and write.final_status < 500:
                # Still "pending" once the node is idle and every retry is done: an answer the chain denies.
                verdict.mismatched += 1
                verdict.note(
                    "mismatched", write.key, f"{write.kind} {write.key}: still {answer} after recovery"
                )
        for marker in write.markers:
            found = index.get((marker.event, tuple((k, _plain(v)) for k, v in marker.match)), [])
            where = f"{write.kind} {write.key} {marker.event}{dict(marker.match)}"
            if len(found) > 1:
                verdict.doubled += len(found) - 1
                verdict.note(
                    "doubled", write.key, f"{where}: {len(found)} times, tx {[e.tx_hash for e in found]}"
                )
            if write.acknowledged:
                _judge_acknowledged(verdict, write, marker, found, where)
            elif write.settled and found:
                verdict.mismatched += 1
                verdict.note(
                    "mismatched",
                    write.key,
                    f"{where}: answered {write.final_status} {error_code(write.final_body)} "
                    f"but on chain in {found[0].tx_hash}",
                )
    return verdict


def _judge_acknowledged(
    verdict: Verdict, write: WriteRecord, marker: Marker, found: list[ChainEvent], where: str
) -> None:
    if not found:
        verdict.lost += 1
        verdict.lost_transactions.add(write.answered_hash() or "")
        # The answer's own status, when it has one, says which path answered: a signature's answer
        # ("awaiting_counter_signature", "concluded" by someone else) carries no transaction either way.
        status = write.final_body.get("status") if isinstance(write.final_body, dict) else None
        answer = f"{write.final_status} {status}" if isinstance(status, str) else str(write.final_status)
        verdict.note(
            "lost", write.key, f"{where}: answered {answer} tx {write.answered_hash()}, not on chain"
        )
        return
    answered_hash, answered_id = write.answered_hash(), write.answered_id()
    event = next((e for e in found if e.tx_hash == answered_hash), None)
    if event is None:
        verdict.mismatched += 1
        verdict.note(
            "mismatched", write.key, f"{where}: answered tx {answered_hash}, chain has {found[0].tx_hash}"
        )
        return
    if marker.id_arg is not None and event.args.get(marker.id_arg) != answered_id:
        verdict.mismatched += 1
        verdict.note(
            "mismatched",
            write.key,
            f"{where}: answered id {answered_id}, chain {event.args.get(marker.id_arg)}",
        )
        return
    verdict.confirmed += 1
    block = (
        write.final_body.get("transaction", {}).get("block_number")
        if isinstance(write.final_body, dict)
        else None
    )
    if block is not None and block != event.block_number:
        verdict.moved += 1

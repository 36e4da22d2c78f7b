"""``dxl bench audit``: indexing throughput and query latency with a million delivery receipts.

What is measured: the indexer's own path — ABI decoding of raw ``eth_getLogs`` entries, lineage resolution,
row building and the batched insert with its progress update, one transaction per 5,000 events — over
synthetic logs encoded exactly as the node returns them. Sending a million transactions through a node is not
part of it (that measures the node, not the indexer). Then p50/p95 latency of history queries (department,
counterpart, resource, agreement, event type and time filters, first and later pages) and provenance queries
(random commitments) on the resulting SQLite database.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak
from sqlalchemy import update

from node.audit import models as m
from node.audit.derive import record_row
from node.audit.events import EventCodec, EventRecord
from node.audit.indexer import Indexer, IndexerConfig, analyze, load_lineage
from node.audit.queries import HistoryFilter, history, provenance
from node.audit.store import open_store
from node.rpc import JsonRpc

CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
DEPARTMENTS = 20
GRANTS = 400
EVENTS_PER_BLOCK = 50
COMMIT_EVERY = 5_000


def _topic(value: int | bytes) -> str:
    return "0x" + (value.rjust(32, b"\0") if isinstance(value, bytes) else value.to_bytes(32, "big")).hex()


def _log(
    codec: EventCodec, name: str, topics: list[Any], types: list[str], values: list[Any], n: int
) -> dict[str, Any]:
    block, index = divmod(n, EVENTS_PER_BLOCK)
    return {
        "address": CONTRACT,
        "topics": [codec.topic_of(name), *(_topic(t) for t in topics)],
        "data": "0x" + abi_encode(types, values).hex(),
        "blockNumber": hex(block + 1),
        "blockHash": "0x" + keccak(block.to_bytes(8, "big")).hex(),
        "transactionHash": "0x" + keccak(n.to_bytes(8, "big")).hex(),
        "transactionIndex": hex(index),
        "logIndex": hex(index),
    }


def synthetic_logs(codec: EventCodec, n_receipts: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """Departments, resources, requests, agreements and grants, then ``n_receipts`` deliveries of which one in
    five is acknowledged right after."""
    rnd = random.Random(seed)
    n = 0
    for d in range(1, DEPARTMENTS + 1):
        signer = keccak(d.to_bytes(4, "big"))[:20]
        code = f"D{d:02}".encode().ljust(32, b"\0")
        yield _log(
            codec,
            "DepartmentAdmitted",
            [d, code, signer],
            ["bytes32", "string"],
            [b"\1" * 32, f"Department {d}"],
            n,
        )
        n += 1
    for g in range(1, GRANTS + 1):
        provider, consumer = rnd.sample(range(1, DEPARTMENTS + 1), 2)
        yield _log(
            codec,
            "ResourceRegistered",
            [g, provider],
            ["uint8", "uint8", "bytes32", "bytes32"],
            [1, 1, keccak(g.to_bytes(8, "big")), b"\2" * 32],
            n,
        )
        n += 1
        yield _log(
            codec,
            "AccessRequested",
            [g, g, consumer],
            ["uint32", "string", "bytes32", "bytes32", "uint64", "uint64"],
            [provider, "statistics", b"\3" * 32, b"\4" * 32, 0, 2**40],
            n,
        )
        n += 1
        yield _log(codec, "RequestApproved", [g, provider], ["bool"], [False], n)
        n += 1
        yield _log(
            codec,
            "AgreementConcluded",
            [g, g, provider],
            ["uint32", "uint64", "bytes32", "uint64", "uint64", "bytes", "bytes"],
            [consumer, g, b"\5" * 32, 0, 2**40, b"\6" * 65, b"\7" * 65],
            n,
        )
        n += 1
        yield _log(codec, "GrantIssued", [g, g, consumer], ["uint32", "uint64"], [provider, 2**40], n)
        n += 1
    grants = {}
    rnd2 = random.Random(seed)
    for g in range(1, GRANTS + 1):
        grants[g] = rnd2.sample(range(1, DEPARTMENTS + 1), 2)
    for i in range(n_receipts):
        g = rnd.randint(1, GRANTS)
        provider, consumer = grants[g]
        delivery = keccak(b"d" + i.to_bytes(8, "big"))
        yield _log(
            codec,
            "DeliveryRecorded",
            [delivery, g, keccak(b"c" + i.to_bytes(8, "big"))],
            ["uint32", "uint32", "uint8", "uint64", "uint64", "uint64"],
            [provider, consumer, 1, 4096, 100, 1_700_000_000 + n // EVENTS_PER_BLOCK],
            n,
        )
        n += 1
        if i % 5 == 0:
            yield _log(codec, "DeliveryAcknowledged", [delivery, consumer], [], [], n)
            n += 1


def _pct(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def run_audit_benchmark(
    n_receipts: int = 1_000_000,
    *,
    db_path: Path | None = None,
    queries: int = 200,
    abi: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Index ``n_receipts`` synthetic delivery receipts (plus their acknowledgements and lineage) into a fresh
    SQLite database and time the queries; returns the figures."""
    from node.audit.service import ledger_abi

    codec = EventCodec(abi or ledger_abi())
    tmp = None
    if db_path is None:
        tmp = tempfile.TemporaryDirectory(prefix="dxl-audit-bench-")
        db_path = Path(tmp.name) / "audit.sqlite3"
    engine = open_store(f"sqlite:///{db_path}")
    # A progress row as the indexer keeps it, so each commit also advances it (as in production).
    # The indexer never calls the node here: _progress only writes the database.
    with JsonRpc("http://127.0.0.1:9") as unused:
        Indexer(
            engine, unused, codec, contract=CONTRACT, chain_id=1, start_block=1, config=IndexerConfig()
        )._progress()
    lineage = load_lineage(engine)
    logs = list(synthetic_logs(codec, n_receipts))
    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    events = 0

    def flush() -> None:
        with engine.begin() as c:
            c.execute(m.events.insert(), batch)
            last = batch[-1]["block_number"]
            c.execute(
                update(m.progress)
                .where(m.progress.c.id == 1)
                .values(last_block=last, last_block_hash=batch[-1]["block_hash"])
            )
        batch.clear()

    for log in logs:
        name, fields = codec.decode(log["topics"], log["data"])
        number = int(log["blockNumber"], 16)
        record = lineage.resolve(
            EventRecord(
                block_number=number,
                block_hash=log["blockHash"],
                block_time=1_700_000_000 + number,
                tx_hash=log["transactionHash"],
                tx_index=int(log["transactionIndex"], 16),
                log_index=int(log["logIndex"], 16),
                address=CONTRACT,
                event=name,
                fields=fields,
            )
        )
        batch.append(record_row(record))
        events += 1
        if len(batch) >= COMMIT_EVERY:
            flush()
    if batch:
        flush()
    index_seconds = time.perf_counter() - started
    del logs
    analyze(engine)  # what `dxl audit index` does after a large catch-up

    rnd = random.Random(11)
    known = codec.event_names
    last_time = 1_700_000_000 + events // EVENTS_PER_BLOCK
    hist: list[float] = []
    for i in range(queries):
        dept = rnd.randint(1, DEPARTMENTS)
        kind = i % 6
        flt = [
            HistoryFilter(department=dept),
            HistoryFilter(department=dept, counterpart=rnd.randint(1, DEPARTMENTS)),
            HistoryFilter(resource=rnd.randint(1, GRANTS)),
            HistoryFilter(agreement=rnd.randint(1, GRANTS)),
            HistoryFilter(department=dept, events=("DeliveryAcknowledged",)),
            HistoryFilter(
                department=dept, from_time=rnd.randint(1_700_000_000, last_time - 100), to_time=last_time
            ),
        ][kind]
        t0 = time.perf_counter()
        page = history(engine, flt, known_events=known, limit=50)
        if page.next_cursor and i % 2:
            history(engine, flt, known_events=known, cursor=page.next_cursor, limit=50)
        hist.append(time.perf_counter() - t0)
    prov: list[float] = []
    for _ in range(queries):
        i = rnd.randrange(n_receipts)
        t0 = time.perf_counter()
        provenance(engine, "0x" + keccak(b"c" + i.to_bytes(8, "big")).hex())
        prov.append(time.perf_counter() - t0)
    size = db_path.stat().st_size
    engine.dispose()
    if tmp is not None:
        tmp.cleanup()
    return {
        "receipts": n_receipts,
        "events_indexed": events,
        "index_seconds": round(index_seconds, 1),
        "events_per_second": round(events / index_seconds),
        "database_mb": round(size / 1e6),
        "history_query": _pct(hist),
        "provenance_query": _pct(prov),
    }

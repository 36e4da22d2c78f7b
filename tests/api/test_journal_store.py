"""The journal's tables on both databases the API runs on: SQLite, and PostgreSQL when
``DXL_TEST_POSTGRES_URL`` names one (scripts/ci-postgres.sh starts one). The same steps give the same rows."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils.crypto import keccak
from sqlalchemy import Engine, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from api.db import IdempotencyRecord, JournaledTransaction, init_db, session_factory, utcnow
from api.idempotency import RETENTION, Busy, ClaimOwner, IdempotencyStore, Stored, purge_expired
from api.journal import Claim, Journal, JournaledSender, Reconciler, TxStatus
from node.anvil import EmbeddedNode
from node.chain import BlockRef, LedgerClient, SignedTx
from tests.api.api_helpers import full_disk
from tests.postgres import BACKENDS, api_engine

#: ``api_idempotency`` as it was created before the journal (no ``owner``/``tx_hash`` columns).
_OLD_IDEMPOTENCY = """CREATE TABLE api_idempotency (
    id INTEGER PRIMARY KEY, principal VARCHAR(64) NOT NULL, key VARCHAR(255) NOT NULL,
    fingerprint VARCHAR(64) NOT NULL, status_code INTEGER, response_body {blob},
    created_at TIMESTAMP NOT NULL, completed_at TIMESTAMP,
    CONSTRAINT uq_api_idempotency_principal_key UNIQUE (principal, key))"""


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database holding the API's pre-journal idempotency table."""
    with api_engine(request.param, tmp_path, "journal_test") as found:
        old = _OLD_IDEMPOTENCY.format(blob="BLOB" if request.param == "sqlite" else "BYTEA")
        if request.param != "sqlite":
            old = old.replace("INTEGER PRIMARY KEY", "SERIAL PRIMARY KEY")
        with found.begin() as c:
            c.execute(text(old))
        yield found


class _SlowToActivate(ClaimOwner):
    """The first activation (the inserting request's) waits until the test lets it go."""

    def __init__(self) -> None:
        super().__init__()
        self.first = threading.Event()
        self.go = threading.Event()

    def activate(self, claim_id: int) -> bool:
        if not self.first.is_set():
            self.first.set()
            self.go.wait(10)
        return super().activate(claim_id)


def test_a_claim_just_inserted_is_not_taken_over_by_a_concurrent_request_of_the_same_process(
    engine: Engine,
) -> None:
    """Between the insert's commit and its activation the row looks like one this process abandoned; a
    second request with the same key reading it then must not take it over (both would send)."""
    init_db(engine)
    owner = _SlowToActivate()
    store = IdempotencyStore(session_factory(engine), owner)
    outcomes: dict[str, object] = {}
    first = threading.Thread(target=lambda: outcomes.update(first=store.claim("hrss", "race", "p")))
    first.start()
    assert owner.first.wait(10)
    second = threading.Thread(target=lambda: outcomes.update(second=store.claim("hrss", "race", "p")))
    second.start()
    time.sleep(0.3)  # the second request has read the row by now
    owner.go.set()
    first.join(10)
    second.join(10)
    assert isinstance(outcomes["first"], Claim)
    assert isinstance(outcomes["second"], Busy), outcomes


def test_journal_claims_and_healing_on_the_database(engine: Engine, embedded_node: EmbeddedNode) -> None:
    init_db(engine)  # adds the claim's owner and tx_hash columns to the existing table
    sessions: sessionmaker[Session] = session_factory(engine)
    store = IdempotencyStore(sessions, ClaimOwner())
    claim = store.claim("auditor", "store-1", "print")
    assert isinstance(claim, Claim)
    client = LedgerClient(embedded_node.endpoint, [])
    journal = Journal(lambda: sessions)
    sender = JournaledSender(client, journal)
    account = Account.create()
    request = client.build(account.address, "", to=account.address, value=0, gas=21_000)
    signed = sender.send(account, request, claim=claim, finish={"view": "resource"})
    result = sender.wait(signed.tx_hash)
    store.settle(claim, Stored(201, b"{}"))

    entry = journal.entry(signed.tx_hash)
    assert entry is not None and entry.status is TxStatus.MINED and entry.finish == {"view": "resource"}
    assert "0x" + keccak(entry.raw).hex() == signed.tx_hash and entry.nonce == 0
    assert journal.newest_settled() == [BlockRef(result.block_number, result.block_hash)]
    with sessions() as session:
        row = session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.key == "store-1"))
        assert row is not None and (row.tx_hash, row.status_code) == (signed.tx_hash, 201)

    # The block is declared lost: the row is open again and the claim handed back without its answer.
    assert journal.reopen([BlockRef(result.block_number, result.block_hash)]) == [signed.tx_hash]
    assert [e.tx_hash for e in journal.unsettled()] == [signed.tx_hash]
    with sessions() as session:
        row = session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.key == "store-1"))
        assert row is not None and (row.owner, row.status_code, row.response_body) == (None, None, None)
    # The node still has it: reconciliation finds the receipt and sends nothing new.
    report = Reconciler(sender).reconcile()
    assert (report.mined, report.resent, report.superseded) == (1, 0, 0)
    assert journal.unsettled() == [] and journal.next_nonces() == {account.address: 1}
    assert client.nonces.peek(account.address) == 1


def test_a_new_process_does_not_hand_out_the_nonce_of_a_journaled_transaction_the_node_lacks(
    engine: Engine, embedded_node: EmbeddedNode
) -> None:
    """A process journaled a transaction and died before sending it (or the node lost it). The next process
    signs its first transaction of that key after it, not with the node's count, which would take the
    journaled one's nonce and make it never minable; reconciliation then sends the journaled one."""
    init_db(engine)
    sessions: sessionmaker[Session] = session_factory(engine)
    journal = Journal(lambda: sessions)
    account = Account.create()
    dead = LedgerClient(embedded_node.endpoint, [])
    request = dead.build(account.address, "", to=account.address, value=0, gas=21_000)
    journaled = dead.sign(account, request, 0)
    journal.record(journaled, claim=None, finish=None)  # ... and the process died before sending it

    client = LedgerClient(embedded_node.endpoint, [])
    sender = JournaledSender(client, journal)
    other = client.build(account.address, "", to=Account.create().address, value=0, gas=21_000)
    fresh = sender.send(account, other, claim=None, finish=None)
    assert fresh.nonce == 1
    report = Reconciler(sender).reconcile()
    # The journaled one is re-sent; the fresh one too when the node had not mined it yet (it waited behind the
    # gap), which the node takes as already known. Neither is given up.
    assert report.superseded == 0 and report.resent in (1, 2)
    sender.wait(journaled.tx_hash)
    sender.wait(fresh.tx_hash)
    assert client.pending_nonce(account.address) == 2


@pytest.mark.parametrize("lost_hash", ["0x" + "00" * 32, "0x" + "ff" * 32], ids=["first", "last"])
def test_a_journaled_block_at_the_height_of_a_held_one_is_lost_and_healed(
    engine: Engine, embedded_node: EmbeddedNode, lost_hash: str
) -> None:
    """Two journaled blocks at one height: the node holds one, so it replaced the other (the node went back
    and mined that height again, a write sent before the service saw it). Whichever of the two the journal
    reads first, the chain is not taken as intact and the other block's write is sent again."""
    init_db(engine)
    sessions: sessionmaker[Session] = session_factory(engine)
    journal = Journal(lambda: sessions)
    client = LedgerClient(embedded_node.endpoint, [])
    sender = JournaledSender(client, journal)
    kept, dropped = Account.create(), Account.create()
    request = client.build(kept.address, "", to=kept.address, value=0, gas=21_000)
    held = sender.wait(sender.send(kept, request, claim=None, finish=None).tx_hash)
    lost = client.sign(dropped, client.build(dropped.address, "", to=dropped.address, value=0, gas=21_000), 0)
    journal.record(lost, claim=None, finish=None)
    journal.mark(lost.tx_hash, TxStatus.MINED, BlockRef(held.block_number, lost_hash), 0)

    assert set(journal.newest_settled()) == {
        BlockRef(held.block_number, held.block_hash),
        BlockRef(held.block_number, lost_hash),
    }
    assert sender.chain_intact() is False
    report = Reconciler(sender).reconcile()
    assert (report.reopened, report.resent) == (1, 1)
    assert sender.wait(lost.tx_hash).block_number > held.block_number
    assert sender.chain_intact() is True


def test_pages_of_settled_blocks_never_split_a_height(engine: Engine) -> None:
    """Blocks are read a page at a time, newest first; two at one height on either side of a page's end are
    both read."""
    init_db(engine)
    sessions: sessionmaker[Session] = session_factory(engine)
    journal = Journal(lambda: sessions)
    blocks = [BlockRef(n, "0x" + f"{n:02x}{fork:02x}" * 16) for n in range(1, 61) for fork in (1, 2)]
    for i, block in enumerate(blocks):
        signed = SignedTx("0x" + f"{i:064x}", bytes([i]), "0xA", i)
        journal.record(signed, claim=None, finish=None)
        journal.mark(signed.tx_hash, TxStatus.MINED, block, 0)
    read: list[BlockRef] = []
    page = journal.settled_blocks(None)
    while page:
        read += page
        page = journal.settled_blocks(page[-1])
    assert read == sorted(blocks, key=lambda b: (b.number, b.hash), reverse=True)


def test_lost_blocks_are_re_sent_in_their_first_order_across_senders(engine: Engine) -> None:
    """Within a lost block the node's order, not the journal's, is what numbered the records: two senders'
    transactions journaled in one order and mined in the other are re-sent as they were mined."""
    init_db(engine)
    sessions: sessionmaker[Session] = session_factory(engine)
    journal = Journal(lambda: sessions)
    txs = [SignedTx("0x" + f"{i:064x}", bytes([i]), sender, 0) for i, sender in ((1, "0xA"), (2, "0xB"))]
    for signed in txs:
        journal.record(signed, claim=None, finish=None)
    lost = BlockRef(7, "0x" + "77" * 32)
    journal.mark(txs[0].tx_hash, TxStatus.MINED, lost, 1)  # journaled first, mined second
    journal.mark(txs[1].tx_hash, TxStatus.MINED, lost, 0)
    unmined = SignedTx("0x" + "03" * 32, b"\x03", "0xA", 1)
    journal.record(unmined, claim=None, finish=None)
    assert sorted(journal.reopen([lost])) == sorted(t.tx_hash for t in txs)
    assert [e.tx_hash for e in journal.unsettled()] == [txs[1].tx_hash, txs[0].tx_hash, unmined.tx_hash]


def test_a_row_with_no_place_is_re_sent_before_its_sender_s_later_nonces(engine: Engine) -> None:
    """A sender's row whose block the journal never learnt (its receipt not recorded, a full disk) was mined
    before the sender's later nonces: re-sent after them (with the unplaced rows at the end), the node would
    hold those back behind the gap and mine them in a run once it filled, out of their first order. It goes
    right before its sender's first later nonce; other senders' rows keep their places."""
    init_db(engine)
    sessions: sessionmaker[Session] = session_factory(engine)
    journal = Journal(lambda: sessions)
    a0, a1, a2, b0 = (
        SignedTx("0x" + "a0" * 32, b"\xa0", "0xA", 0),
        SignedTx("0x" + "a1" * 32, b"\xa1", "0xA", 1),
        SignedTx("0x" + "a2" * 32, b"\xa2", "0xA", 2),
        SignedTx("0x" + "b0" * 32, b"\xb0", "0xB", 0),
    )
    for signed in (a0, a1, b0, a2):
        journal.record(signed, claim=None, finish=None)
    lost = BlockRef(12, "0x" + "12" * 32)
    journal.mark(b0.tx_hash, TxStatus.MINED, lost, 0)
    journal.mark(a1.tx_hash, TxStatus.MINED, lost, 1)  # a0 was mined before it; its receipt never recorded
    assert sorted(journal.reopen([lost])) == sorted([a1.tx_hash, b0.tx_hash])
    assert [e.tx_hash for e in journal.unsettled()] == [b0.tx_hash, a0.tx_hash, a1.tx_hash, a2.tx_hash]
    assert sorted(e.tx_hash for e in journal.unplaced()) == sorted(
        [a0.tx_hash, a1.tx_hash, a2.tx_hash, b0.tx_hash]
    )


def test_a_voided_transaction_s_lost_block_sends_its_standby_in_its_place(engine: Engine) -> None:
    """A reverted transaction is voided (its effect must never happen: a refused receipt anchor): the node
    losing its block, its standby transfer takes its nonce and its place in the block's order, and its own
    bytes are never sent again. A transaction whose block was lost before it could be voided is not voided:
    its bytes are on their way again, and the caller must look at what became of them."""
    init_db(engine)
    sessions: sessionmaker[Session] = session_factory(engine)
    journal = Journal(lambda: sessions)
    anchor, write = (
        SignedTx("0x" + "a1" * 32, b"\xa1", "0xA", 5),
        SignedTx("0x" + "b1" * 32, b"\xb1", "0xB", 0),
    )
    standby = SignedTx("0x" + "a2" * 32, b"\xa2", "0xA", 5)
    for signed in (write, anchor):
        journal.record(signed, claim=None, finish=None)
    lost = BlockRef(8, "0x" + "88" * 32)
    journal.mark(anchor.tx_hash, TxStatus.REVERTED, lost, 0)  # mined first, journaled second
    journal.mark(write.tx_hash, TxStatus.MINED, lost, 1)
    assert journal.void(anchor.tx_hash, standby) is True
    assert journal.void(anchor.tx_hash, standby) is True  # once voided, it stays so
    journal.mark(anchor.tx_hash, TxStatus.REVERTED, lost, 0)  # a late look at its receipt changes nothing
    assert journal.unsettled() == [] and journal.newest_settled() == [lost]
    assert journal.next_nonces() == {"0xA": 6, "0xB": 1}
    assert sorted(journal.reopen([lost])) == sorted([standby.tx_hash, write.tx_hash])
    assert [e.tx_hash for e in journal.unsettled()] == [standby.tx_hash, write.tx_hash]
    statuses = {h: e.status for h in (anchor.tx_hash, standby.tx_hash) if (e := journal.entry(h))}
    assert statuses == {anchor.tx_hash: TxStatus.SUPERSEDED, standby.tx_hash: TxStatus.SENT}
    assert journal.next_nonces() == {"0xA": 6, "0xB": 1}
    assert journal.reopen([lost]) == []  # the superseded row is no longer in the lost block
    # Reopened before it was voided: not voided, nothing journaled in its place.
    late, late_standby = (
        SignedTx("0x" + "c1" * 32, b"\xc1", "0xC", 0),
        SignedTx("0x" + "c2" * 32, b"\xc2", "0xC", 0),
    )
    journal.record(late, claim=None, finish=None)
    other = BlockRef(9, "0x" + "99" * 32)
    journal.mark(late.tx_hash, TxStatus.REVERTED, other, 0)
    assert journal.reopen([other]) == [late.tx_hash]
    assert journal.void(late.tx_hash, late_standby) is False
    assert journal.entry(late_standby.tx_hash) is None
    reopened = journal.entry(late.tx_hash)
    assert reopened is not None and reopened.status is TxStatus.SENT
    unknown = SignedTx("0x" + "d2" * 32, b"\xd2", "0xD", 0)
    assert journal.void("0x" + "d1" * 32, unknown) is True  # not journaled: nothing here sends it again
    assert journal.entry(unknown.tx_hash) is None


def test_a_lost_block_s_transactions_no_request_saw_mined_keep_their_place(engine: Engine) -> None:
    """A request answered from its receipt while another transaction before it in the block was not seen
    mined yet; the node then lost the block. The block's order was placed in the journal when the first
    receipt was seen, so the unseen transaction is re-sent first, as it was mined."""
    init_db(engine)
    sessions: sessionmaker[Session] = session_factory(engine)
    journal = Journal(lambda: sessions)
    seen = SignedTx("0x" + "0a" * 32, b"\x0a", "0xA", 0)
    unseen = SignedTx("0x" + "0b" * 32, b"\x0b", "0xB", 0)
    for signed in (seen, unseen):  # journaled in this order, mined in the other
        journal.record(signed, claim=None, finish=None)
    block = BlockRef(9, "0x" + "99" * 32)
    journal.mark(seen.tx_hash, TxStatus.MINED, block, 1)
    journal.place(block, [unseen.tx_hash, seen.tx_hash])
    entry = journal.entry(unseen.tx_hash)
    assert entry is not None and entry.status is TxStatus.SENT  # its own receipt decides its status
    assert sorted(journal.reopen([block])) == sorted([seen.tx_hash, unseen.tx_hash])
    assert [e.tx_hash for e in journal.unsettled()] == [unseen.tx_hash, seen.tx_hash]


def test_settled_journal_rows_past_retention_are_purged_with_their_keys(engine: Engine) -> None:
    """Keys are remembered a week; journaled transactions as old go with them once settled and no remaining
    key names them. Unsettled rows and rows a kept key names stay."""
    init_db(engine)
    sessions: sessionmaker[Session] = session_factory(engine)
    journal = Journal(lambda: sessions)
    block = BlockRef(3, "0x" + "33" * 32)
    old_mined, old_sent, old_named, new_mined = (
        SignedTx("0x" + f"{i:064x}", bytes([i]), "0xA", i) for i in range(1, 5)
    )
    for signed in (old_mined, old_sent, old_named, new_mined):
        journal.record(signed, claim=None, finish=None)
    for signed in (old_mined, old_named, new_mined):
        journal.mark(signed.tx_hash, TxStatus.MINED, block, signed.nonce)
    long_ago = utcnow() - RETENTION - dt.timedelta(days=1)
    with sessions() as session:
        session.execute(
            update(JournaledTransaction)
            .where(JournaledTransaction.tx_hash != new_mined.tx_hash)
            .values(created_at=long_ago)
        )
        session.add(IdempotencyRecord(principal="p", key="kept", fingerprint="f", tx_hash=old_named.tx_hash))
        session.add(
            IdempotencyRecord(
                principal="p", key="done", fingerprint="f", status_code=201, created_at=long_ago
            )
        )
        session.commit()
    assert purge_expired(sessions) == 2  # the old completed key and the old mined row nobody names
    with sessions() as session:
        left = set(session.scalars(select(JournaledTransaction.tx_hash)))
        keys = set(session.scalars(select(IdempotencyRecord.key)))
    assert left == {old_sent.tx_hash, old_named.tx_hash, new_mined.tx_hash}
    assert keys == {"kept"}


def test_a_retry_that_could_not_take_a_claim_over_on_a_full_disk_leaves_the_key_free(engine: Engine) -> None:
    """A claim handed back (its request journaled a transaction, then ended without a final answer); the retry
    that takes it over fails to commit on a full disk: once there is room, the next retry takes it, instead
    of 409 IDEMPOTENCY_IN_FLIGHT for good in this process (seen after a full make reliability run)."""
    if engine.dialect.name != "sqlite":
        pytest.skip("the full disk is a file-size limit on this process: SQLite only")
    init_db(engine)
    sessions = session_factory(engine)
    store = IdempotencyStore(sessions, ClaimOwner())
    first = store.claim("hrss", "full", "p")
    assert isinstance(first, Claim)
    raw = b"\x02journaled"
    signed = SignedTx("0x" + keccak(raw).hex(), raw, Account.create().address, 0)
    Journal(lambda: sessions).record(signed, claim=first, finish=None)
    store.settle(first, Stored(409, b"{}"))  # TRANSACTION_PENDING: handed back
    with sessions() as session:
        record = session.get(IdempotencyRecord, first.id)
        assert record is not None and record.owner is None
    with full_disk(), pytest.raises(OperationalError, match="disk"):
        store.claim("hrss", "full", "p")
    retry = store.claim("hrss", "full", "p")
    assert isinstance(retry, Claim) and retry.tx_hash == signed.tx_hash, retry

"""The receipt journal's writer against its database failing under it, on SQLite and on PostgreSQL
(``DXL_TEST_POSTGRES_URL``): a connection the server closed is replaced, and a write whose commit's answer was
lost is handed to the anchorer once the database answers again, exactly once."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from api.db import init_db, make_engine
from api.errors import ApiError
from api.receipts.input import parse_receipts
from api.receipts.journal import Journaled, ReceiptJournal
from tests.postgres import BACKENDS, api_engine, schema_url
from verifier.receipts import Receipt, leaf_hashes

GRANT, PROVIDER, CONSUMER = 7, 1, 2


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with api_engine(request.param, tmp_path, "receipt_journal_test") as found:
        init_db(found)
        yield found


class _Inbox:
    """The anchorer's side: what the journal handed over, by sequence number. The writer answers a request
    first and hands its receipts over a moment later, on its own thread: :meth:`wait` for them."""

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self._changed = threading.Condition()

    def __call__(self, journaled: list[Journaled]) -> None:
        with self._changed:
            self.seqs += [seq for j in journaled for seq in j.seqs]
            self._changed.notify_all()

    def wait(self, count: int) -> list[int]:
        """The sequence numbers handed over, once there are ``count`` (or after 10 s)."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.seqs) >= count, timeout=10)
            return list(self.seqs)


def _rows(n: int) -> list[Receipt]:
    return [Receipt(secrets.token_bytes(32), GRANT, secrets.token_bytes(32), 1, 100, 1) for _ in range(n)]


def _append(journal: ReceiptJournal, rows: list[Receipt]) -> None:
    """``journal.append`` awaited on an event loop of its own thread, as a request's would be: the test's
    thread may hold a running loop left by a test before it on the same worker."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            asyncio.run(journal.append(PROVIDER, {GRANT: CONSUMER}, rows))
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert outcome, "the journal did not answer within 30 s"
    if outcome[0] is not None:
        raise outcome[0]


def _journaled(engine: Engine) -> int:
    with engine.connect() as c:
        return int(c.execute(text("SELECT COUNT(*) FROM api_receipts")).scalar_one())


class _AnswerLost:
    """The writer's connection, whose next commit happens on the server but whose answer is lost on the way
    back (the server crashed, the network cut): the driver raises its OperationalError after the commit."""

    def __init__(self, real: Any, error: type[Exception]) -> None:
        self._real = real
        self._error = error
        self.armed = True

    def commit(self) -> None:
        self._real.commit()
        if self.armed:
            self.armed = False
            raise self._error("server closed the connection unexpectedly")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _NeverCommits(_AnswerLost):
    """The writer's connection, whose commits never reach the server."""

    def commit(self) -> None:
        raise self._error("server closed the connection unexpectedly")


@contextmanager
def _journal(engine: Engine, connection: type[_AnswerLost]) -> Iterator[tuple[ReceiptJournal, _Inbox]]:
    """A started journal whose connection is wrapped in ``connection``, and its anchorer's inbox."""
    inbox = _Inbox()
    journal = ReceiptJournal(engine, inbox)
    journal.start()
    try:
        dbapi = engine.dialect.dbapi
        assert dbapi is not None
        journal._conn = connection(journal._conn, dbapi.OperationalError)
        yield journal, inbox
    finally:
        journal.stop()


def test_the_receipts_a_body_brings_are_the_verifiers_records() -> None:
    """What ``POST /receipts`` journals is the verifier's own record of ``DeliveryRecord``'s six fields: the
    leaf the service batches is hashed by the code a verifier runs on a receipt it reads back."""
    delivery_id, commitment = secrets.token_bytes(32), secrets.token_bytes(32)
    body = {"receipts": [{"delivery_id": "0x" + delivery_id.hex(), "grant_id": 7,
                          "commitment": "0x" + commitment.hex(), "hash_algorithm": "sm3", "byte_size": 2048,
                          "record_count": 16}]}  # fmt: skip
    [parsed] = parse_receipts(body)
    assert type(parsed) is Receipt
    assert parsed == Receipt(delivery_id, 7, commitment, 2, 2048, 16)
    assert leaf_hashes([parsed]) == [Receipt.from_json(parsed.to_json()).leaf_hash()]


def test_a_commit_whose_answer_was_lost_reaches_the_anchorer_once(engine: Engine) -> None:
    with _journal(engine, _AnswerLost) as (journal, inbox):
        rows = _rows(3)
        with pytest.raises(ApiError) as refused:
            _append(journal, rows)
        # The client was told 503, nothing about the commit: for it the receipts may or may not be journaled.
        assert refused.value.code == "DATABASE_UNAVAILABLE"
        assert _journaled(engine) == 3
        # Posted again (the client's retry), they are found journaled and accepted; the anchorer gets them
        # once, when the writer settles the unsure write, not a second time for the retry.
        _append(journal, rows)
        _append(journal, _rows(2))
        handed = inbox.wait(5)
        assert handed[:3] == [0, 1, 2] and len(handed) == len(set(handed)) == 5
        assert _journaled(engine) == 5


def test_a_write_rolled_back_with_its_connection_is_not_handed_over(engine: Engine) -> None:
    """The other side of an unsure commit: the database never got it. Nothing reaches the anchorer, and the
    same receipts posted again are journaled and handed over then."""
    with _journal(engine, _NeverCommits) as (journal, inbox):
        rows = _rows(2)
        with pytest.raises(ApiError):
            _append(journal, rows)
        assert _journaled(engine) == 0
        _append(journal, rows)
        assert _journaled(engine) == 2
        assert inbox.wait(2) == [2, 3]  # the lost write's numbers stay unused


@pytest.mark.postgres
def test_the_writer_reconnects_after_the_server_closed_its_connection() -> None:
    """A PostgreSQL restart (or an administrator) ends every connection: the writer must not keep answering
    503 on its dead one."""
    # Only this test's connections are ended (named by application_name): tests on other workers share the
    # server and database, in schemas of their own.
    name = f"dxl-reconnect-{secrets.token_hex(4)}"
    with schema_url("receipt_journal_test") as url:
        engine = make_engine(f"{url}&application_name={name}")
        init_db(engine)
        inbox = _Inbox()
        journal = ReceiptJournal(engine, inbox)
        journal.start()
        try:
            _append(journal, _rows(1))
            with engine.begin() as c:
                ended = c.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                ).all()
            assert ended, "the writer's connection was not found to end"
            rows = _rows(2)
            answers = []
            for _ in range(3):
                try:
                    _append(journal, rows)
                    answers.append("accepted")
                    break
                except ApiError as exc:
                    answers.append(exc.code)
            # The first write finds the connection dead (503, nothing journaled); the next one is written.
            assert answers == ["DATABASE_UNAVAILABLE", "accepted"]
            assert _journaled(engine) == 3
            assert len(inbox.wait(3)) == 3
        finally:
            journal.stop()
            engine.dispose()

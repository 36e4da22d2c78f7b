"""Two API services on one PostgreSQL database: the second refuses to start, having done nothing.

One service per database signs, journals and anchors the ledger's writes: its nonce counters, its
transaction journal's reconciliation, its Idempotency-Key claims and its receipt sequence are its own. Two
services on one database signing for the same departments handed out the same nonces: 40 writes of one
department sent through both at once left 27 nonces journaled twice (27 signatures superseded) and one write
answered 5xx."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.db import DatabaseInUseError, JournaledTransaction, hold_database, make_engine
from node.anvil import EmbeddedNode
from tests.api.api_helpers import api_home, b32, make_settings, served
from tests.postgres import BACKENDS, api_engine, schema_url


@pytest.mark.postgres
def test_a_second_service_on_the_database_refuses_to_start_and_the_first_serves_on(
    embedded_node: EmbeddedNode, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from api.app import create_app

    with schema_url("twosvc") as url:
        settings = make_settings(api_home(tmp_path_factory, "twosvc"), embedded_node).model_copy(
            update={"database_url": url}
        )
        engine = make_engine(url)

        def journaled() -> int:
            with engine.connect() as conn:
                return int(conn.scalar(select(func.count()).select_from(JournaledTransaction)) or 0)

        def register(client: httpx.Client, headers: dict[str, str]) -> httpx.Response:
            body = {
                "metadata_hash": b32(),
                "schema_hash": b32(),
                "share_type": "conditional",
                "sensitivity": 2,
            }
            return client.post("/resources", json=body, headers=headers)

        try:
            with served(settings, embedded_node) as env:
                before = journaled()
                with pytest.raises(DatabaseInUseError) as refused, TestClient(create_app(settings)):
                    pass
                message = str(refused.value)
                assert f"dxl-api {socket.gethostname()} pid {os.getpid()}" in message
                assert "one service per database" in message and "DXL_DATABASE_URL" in message
                assert refused.value.code == "DATABASE_IN_USE"
                assert journaled() == before  # the second service sent and journaled nothing
                # The first one writes on, every nonce once.
                with ThreadPoolExecutor(8) as pool:
                    answers = list(pool.map(lambda _: register(env.client, env.headers("psb")), range(16)))
                assert [a.status_code for a in answers] == [201] * 16, [a.text for a in answers]
                with engine.connect() as conn:
                    doubled = conn.execute(
                        select(JournaledTransaction.sender, JournaledTransaction.nonce)
                        .group_by(JournaledTransaction.sender, JournaledTransaction.nonce)
                        .having(func.count() > 1)
                    ).all()
                assert doubled == []
                headers = env.headers("psb")
            # Once the first has stopped, the database is free: the next service starts and writes.
            with TestClient(create_app(settings)) as second:
                assert register(second, headers).status_code == 201
        finally:
            engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_hold_excludes_a_second_holder_of_the_same_database_only(backend: str, tmp_path: Path) -> None:
    """PostgreSQL: one holder per schema, released when its context ends (or its connection does); another
    schema of the same server is another database. SQLite: the hold is the process's, so a second one in the
    same process succeeds (another process is refused: the next test)."""
    (tmp_path / "o").mkdir()
    with api_engine(backend, tmp_path, "hold") as first, api_engine(backend, tmp_path / "o", "hold") as other:
        second = make_engine(first.url.render_as_string(hide_password=False))
        try:
            with hold_database(first), hold_database(other, wait=0):
                if backend == "postgresql":
                    with (
                        pytest.raises(DatabaseInUseError, match="runs on the API database"),
                        hold_database(second, wait=0.5),
                    ):
                        pass
                else:
                    with hold_database(second, wait=0):
                        pass
            with hold_database(second, wait=0):
                pass
        finally:
            second.dispose()


_HOLD_SQLITE = """
import sys, time
from api.db import hold_database, make_engine
with hold_database(make_engine(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_second_process_on_a_sqlite_database_is_refused_until_the_first_ends(tmp_path: Path) -> None:
    """Two services on one SQLite file (one DXL_HOME, or one DXL_DATABASE_URL) are two processes: the second
    is refused, naming the first; once the first is killed the kernel has released its lock."""
    url = f"sqlite:///{tmp_path / 'dxl.sqlite3'}"
    root = Path(__file__).resolve().parents[2]
    first = subprocess.Popen([sys.executable, "-c", _HOLD_SQLITE, url], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(root)}, cwd=root)  # fmt: skip
    engine = make_engine(url)
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == "held"
        with pytest.raises(DatabaseInUseError) as refused, hold_database(engine, wait=0.5):
            pass
        assert f"pid {first.pid}" in str(refused.value) and "dxl.sqlite3.service" in str(refused.value)
        first.kill()
        first.wait(timeout=30)
        with hold_database(engine, wait=0):
            pass
    finally:
        first.kill()
        first.wait(timeout=30)
        engine.dispose()


@pytest.mark.postgres
def test_the_hold_is_taken_again_after_its_connection_is_lost(tmp_path: Path) -> None:
    """The server ends the connection holding the lock (a restart, a cut, an administrator): the lock went
    with it, and a second service could have started beside the running one. The running one takes it again
    on a new connection, and a second service is refused again."""
    from sqlalchemy import text

    holder = text(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2"
        " AND objid = CAST(hashtext(current_schema()) AS oid)"
    )
    with api_engine("postgresql", tmp_path, "rehold") as engine, hold_database(engine, check=0.2):
        with engine.connect() as conn:
            (first,) = conn.execute(holder).scalars().all()
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            deadline = time.monotonic() + 10
            while (held := conn.execute(holder).scalars().all()) in ([], [first]):
                assert time.monotonic() < deadline, "the lock was not taken again"
                conn.rollback()
                time.sleep(0.1)
        assert held != [first]
        with pytest.raises(DatabaseInUseError), hold_database(engine, wait=0):
            pass


#: Migrates the API's and the audit trail's tables of each database named on the command line, each at its
#: own moment (a time.time() value), and prints what became of each.
_MIGRATE = """
import sys, time
from api.db import init_db, make_engine
from node.audit.store import open_store
for url, at in zip(sys.argv[1::2], sys.argv[2::2]):
    engine = make_engine(url)
    time.sleep(max(0.0, float(at) - time.time()))
    try:
        init_db(engine)
        open_store(url).dispose()
        print("ok", flush=True)
    except Exception as exc:
        print(type(exc).__name__, str(exc).splitlines()[0], flush=True)
    engine.dispose()
"""


@pytest.mark.postgres
def test_two_processes_migrating_one_new_database_at_once_both_succeed() -> None:
    """A service starting while `dxl token issue` or `dxl audit index` runs, on a database nothing made yet:
    both processes migrate it at the same moment (processes: Alembic's context is one per process), and
    neither fails on the tables the other created."""
    rounds = 6
    with ExitStack() as stack:
        urls = [stack.enter_context(schema_url("migrate")) for _ in range(rounds)]
        start = time.time() + 3  # both processes imported and connected by then
        args = [a for i, url in enumerate(urls) for a in (url, str(start + i))]
        root = Path(__file__).resolve().parents[2]
        env = {**os.environ, "PYTHONPATH": str(root)}
        children = [
            subprocess.Popen(
                [sys.executable, "-c", _MIGRATE, *args], stdout=subprocess.PIPE, text=True, env=env, cwd=root
            )
            for _ in range(2)
        ]
        answers = [child.communicate(timeout=120)[0].split("\n")[:rounds] for child in children]
    assert answers == [["ok"] * rounds] * 2

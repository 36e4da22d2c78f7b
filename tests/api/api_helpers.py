"""Helpers of the API tests: the served app (uvicorn on a free loopback port, real HTTP), the per-module
environment, and steps that build an exchange."""

from __future__ import annotations

import contextlib
import resource
import secrets
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.receipts.grants import GRANT_CACHE_TTL_S
from api.receipts.journal import receipts_table
from api.server import server_config
from api.settings import ApiSettings
from node.anvil import EmbeddedNode, free_port
from node.keys import KeyStore
from node.provision import LedgerSetup, ensure_principals
from node.tls import tls_context
from node.types import new_delivery_id
from verifier.commitment import Commitment, commit_payload, new_salt
from verifier.leaves import Chunking, PayloadFormat
from verifier.manifest import Manifest, build_manifest, sign_manifest
from verifier.receipts import Receipt

PASSPHRASE = "api-test-passphrase"


@dataclass
class ApiEnv:
    """A running API on its own deployment."""

    url: str
    settings: ApiSettings
    setup: LedgerSetup
    tokens: dict[str, str]
    client: httpx.Client
    #: The app served (in this process: its state is the running service's).
    app: Any
    departments: dict[str, int] = field(default_factory=dict)

    def headers(self, who: str | None, **extra: str) -> dict[str, str]:
        """Headers for a demo principal: "psb", "hrss", ..., "auditor", "governor-1"; None = anonymous."""
        base = {} if who is None else {"Authorization": f"Bearer {self.tokens['demo-' + who]}"}
        return {**base, **extra}

    def call(self, method: str, path: str, who: str | None, *, json: Any = None, **kw: Any) -> httpx.Response:
        return self.client.request(
            method, path, headers=self.headers(who, **kw.pop("headers", {})), json=json, **kw
        )

    @property
    def keystore(self) -> KeyStore:
        return self.setup.keystore

    def indexed(self, **params: Any) -> dict[str, Any]:
        """``params`` of a list read from the audit index with ``min_block`` the chain's head: the list holds
        every write made so far (the index follows the chain a moment behind)."""
        return {**params, "min_block": int(self.setup.client.w3.eth.block_number)}


class ServerThread:
    """uvicorn in a thread on a free port; stopped (and joined) at teardown."""

    def __init__(self, app: Any, *, trusted_proxies: str = "") -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            server_config(
                app,
                host="127.0.0.1",
                port=self.port,
                trusted_proxies=trusted_proxies,
                log_level="warning",
                lifespan="on",
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("API server failed to start (see the log above)")
            if time.monotonic() > deadline:
                raise RuntimeError("API server did not start within 60 s")
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


#: A cheap scrypt work factor for the keys tests make (the API tests' demo keys, the node tests' demo
#: consortium, the keystore's own tests): every API module serves its own deployment and the service unlocks
#: every key at start, so the product's 2**15 made key derivation most of a module's set-up. The keystore
#: format and unlocking code are the product's.
TEST_SCRYPT_N = 2**10
_demo_keys: Path | None = None


def api_home(factory: pytest.TempPathFactory, name: str) -> Path:
    """A fresh DXL_HOME holding the demo principals' keys (``PASSPHRASE``): generated once per test process,
    copied for each home, so each module's deployment has the same governors and departments' signers."""
    global _demo_keys
    if _demo_keys is None:
        keys = factory.mktemp("demo-keys") / "keys"
        ensure_principals(KeyStore(keys, PASSPHRASE, scrypt_n=TEST_SCRYPT_N))
        _demo_keys = keys
    home = factory.mktemp(name)
    shutil.copytree(_demo_keys, home / "keys")
    return home


@contextmanager
def served(settings: ApiSettings, node: EmbeddedNode) -> Iterator[ApiEnv]:
    """A ledger deployed on ``node`` for ``settings``, its demo tokens, and the app served over real HTTP.

    As under `dxl run`, the environment names the same home and node as the app's settings, so routes of
    other components that read their settings from the environment find this deployment."""
    from api.app import create_app
    from api.demo import ensure_demo_tokens
    from node.provision import setup_ledger

    setup = setup_ledger(node.endpoint, settings, dev_funding=True)
    tokens = {k: v for k, v in ensure_demo_tokens(settings).items() if v is not None}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DXL_HOME", str(settings.home))
        env.setenv("DXL_RPC_URL", str(settings.rpc_url))
        env.setenv("DXL_CHAIN_ID", str(settings.chain_id))
        env.setenv("DXL_KEYSTORE_PASSPHRASE", PASSPHRASE)
        app = create_app(settings)
        with (
            ServerThread(app, trusted_proxies=settings.api_trusted_proxies) as url,
            httpx.Client(base_url=url, timeout=120, verify=tls_context()) as client,
        ):
            yield ApiEnv(url, settings, setup, tokens, client, app, dict(setup.report.departments))


def outlive_caches(app: Any) -> None:
    """Move the served service's cache clock (:class:`api.receipts.grants.CacheClock`) past
    :data:`GRANT_CACHE_TTL_S`: the chain state it cached (grant states, the auditor's standing) is read again
    at the next request, as a second later, without waiting that second."""
    app.state.dxl.ledger.cache_clock.advance(GRANT_CACHE_TTL_S)


def make_settings(home: Path, node: EmbeddedNode, **overrides: Any) -> ApiSettings:
    endpoint = node.endpoint
    # Inspections are drawn by the tests that draw them (a drawer's thread would race the draws they check).
    return ApiSettings(
        home=home,
        rpc_url=endpoint.rpc_url,
        chain_id=endpoint.chain_id,
        keystore_passphrase=SecretStr(PASSPHRASE),
        inspection_draw_interval=0,
        **overrides,
    )


def no_database() -> sessionmaker[Session]:
    """The sessions of a ledger service built for a test that needs no database of the API's: if the service
    asks for them after all, the test fails here, not with a None somewhere else."""
    raise AssertionError("the ledger service asked for the API's database, which this test did not give it")


def delivery_id_for(provider: int) -> str:
    """A fresh delivery id in department ``provider``'s namespace, as the ledger requires."""
    return "0x" + new_delivery_id(provider).hex()


def b32() -> str:
    return "0x" + secrets.token_hex(32)


def period(env: ApiEnv, days: int = 30) -> tuple[int, int]:
    """A validity from an hour ago to ``days`` ahead on the chain's clock, which tests on the shared node move
    ahead of the wall clock."""
    now = env.setup.client.next_block_time()
    return now - 3600, now + days * 86400


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json()


def register(env: ApiEnv, who: str, share_type: str = "conditional") -> int:
    body = {"metadata_hash": b32(), "schema_hash": b32(), "share_type": share_type, "sensitivity": 2}
    return int(ok(env.call("POST", "/resources", who, json=body), 201)["record"]["id"])


def request_access(
    env: ApiEnv, who: str, resource_id: int, purpose: str = "benefit eligibility check"
) -> dict[str, Any]:
    valid_from, valid_until = period(env)
    body = {
        "resource_id": resource_id, "purpose": purpose, "scope_hash": b32(), "terms_hash": b32(),
        "valid_from": valid_from, "valid_until": valid_until,
    }  # fmt: skip
    record: dict[str, Any] = ok(env.call("POST", "/requests", who, json=body), 201)["record"]
    return record


def concluded(env: ApiEnv, request: dict[str, Any], provider: str, consumer: str) -> dict[str, Any]:
    """``request`` approved by ``provider``, then signed by ``consumer`` and ``provider`` in custody: the
    agreement concluded."""
    ok(env.call("POST", f"/requests/{request['id']}/approve", provider))
    ok(env.call("POST", f"/requests/{request['id']}/signatures", consumer, json={}))
    outcome = ok(env.call("POST", f"/requests/{request['id']}/signatures", provider, json={}))
    assert outcome["status"] == "concluded", outcome
    agreement: dict[str, Any] = outcome["agreement"]
    return agreement


def agreement_between(env: ApiEnv, provider: str, consumer: str) -> dict[str, Any]:
    """Resource of ``provider`` → request by ``consumer`` → approved → both sign in custody → agreement."""
    return concluded(env, request_access(env, consumer, register(env, provider)), provider, consumer)


def grant_under(env: ApiEnv, provider: str, agreement: dict[str, Any]) -> dict[str, Any]:
    """A grant ``provider`` issues under ``agreement``, expiring with it."""
    body = {"agreement_id": agreement["id"], "expires_at": agreement["valid_until"]}
    record: dict[str, Any] = ok(env.call("POST", "/grants", provider, json=body), 201)["record"]
    return record


def grant_between(env: ApiEnv, provider: str, consumer: str) -> dict[str, Any]:
    return grant_under(env, provider, agreement_between(env, provider, consumer))


def delivery_between(
    env: ApiEnv, provider: str, consumer: str, grant: dict[str, Any] | None = None
) -> dict[str, Any]:
    grant = grant or grant_between(env, provider, consumer)
    body = {
        "delivery_id": delivery_id_for(grant["provider"]),
        "grant_id": grant["id"],
        "commitment": b32(),
        "byte_size": 1024,
        "record_count": 3,
    }
    record: dict[str, Any] = ok(env.call("POST", "/deliveries", provider, json=body), 201)["record"]
    return record


def receipt_body(grant: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A receipt under ``grant`` (its record: ``id`` and ``provider``), with a fresh id in the provider's
    namespace, as the service requires."""
    return {"delivery_id": delivery_id_for(grant["provider"]), "grant_id": grant["id"], "commitment": b32(),
            "byte_size": 2048, "record_count": 4, **fields}  # fmt: skip


@dataclass(frozen=True)
class SignedDelivery:
    """A payload committed for a delivery of PSB's to HRSS, its manifest signed by PSB."""

    commitment: Commitment
    delivery_id: str
    manifest: Manifest
    #: The body of ``POST /deliveries``, or one receipt of ``POST /receipts``.
    body: dict[str, Any]


def psb_delivery(env: ApiEnv, payload: Path, grant_id: int) -> SignedDelivery:
    """``payload`` committed in CSV chunks (leaf hashes kept, to verify it) as a new delivery of PSB's to HRSS
    under ``grant_id``, its manifest signed with PSB's key; nothing is posted."""
    c = commit_payload(payload, salt=new_salt(), chunking=Chunking(PayloadFormat.CSV), keep_leaf_hashes=True)
    did = delivery_id_for(env.departments["PSB"])
    manifest = sign_manifest(
        build_manifest(
            c, delivery_id=bytes.fromhex(did[2:]), grant_id=grant_id, provider="PSB", consumer="HRSS"
        ),
        env.keystore.unlock("dept-psb"),
    )
    body = {"delivery_id": did, "grant_id": grant_id, "commitment": "0x" + c.root.hex(),
            "byte_size": c.byte_size, "record_count": c.record_count}  # fmt: skip
    return SignedDelivery(c, did, manifest, body)


def some_receipts(grant_id: int, n: int) -> list[Receipt]:
    """``n`` receipts of ``grant_id``, each with a fresh random id and commitment (SHA-256, 10 bytes, one
    record)."""
    return [Receipt(bytes.fromhex(b32()[2:]), grant_id, bytes.fromhex(b32()[2:]), 1, 10, 1) for _ in range(n)]


def journal_receipts(
    engine: Engine,
    receipts: Sequence[Receipt],
    *,
    seqs: Sequence[int] | None = None,
    provider: int = 1,
    consumer: int = 2,
    batch_id: int | None = None,
) -> None:
    """Write ``receipts`` into the receipt journal at ``engine`` as its writer does: numbered ``seqs`` (0, 1,
    ... unless given), from ``provider`` to ``consumer``, in batch ``batch_id`` (none unless given)."""
    rows = [
        dict(seq=q, delivery_id=r.delivery_id, provider=provider, consumer=consumer, grant_id=r.grant_id,
             commitment=r.commitment, hash_algorithm=r.hash_algorithm, byte_size=r.byte_size,
             record_count=r.record_count, accepted_at=time.time(), batch_id=batch_id)
        for q, r in zip(range(len(receipts)) if seqs is None else seqs, receipts, strict=True)
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(receipts_table.insert(), rows)


def until(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll the service's background anchoring (blocks are mined per transaction on the test node)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def anchored_batch(api_env: ApiEnv, n: int, gid: int | None = None) -> tuple[int, list[dict[str, Any]]]:
    """One final batch of ``n`` receipts under grant ``gid`` (a new PSB -> HRSS grant if None); the grant id
    and the receipts' answers."""
    grant = (
        grant_between(api_env, "psb", "hrss")
        if gid is None
        else {"id": gid, "provider": api_env.departments["PSB"]}
    )
    gid = grant["id"]
    # One request: its receipts reach the anchorer together (one journaled chunk of the grant), so they close
    # one batch whatever the machine's load. Posted one by one, a pause longer than DXL_RECEIPT_BATCH_AGE
    # between two posts closed the first receipts' batch on its own.
    bodies = [receipt_body(grant) for _ in range(n)]
    ok(api_env.call("POST", "/receipts", "psb", json={"receipts": bodies}), 202)
    ids = [b["delivery_id"] for b in bodies]

    def final() -> list[dict[str, Any]] | None:
        found = ok(api_env.call("POST", "/receipts/lookup", "hrss", json={"delivery_ids": ids}))["receipts"]
        return found if len(found) == n and all(r["status"] == "final" for r in found) else None

    receipts: list[dict[str, Any]] = until(final, "the batch to be mined")
    assert len({r["batch"]["first_sequence"] for r in receipts}) == 1, "expected one batch"
    return gid, receipts


def in_pool(env: ApiEnv) -> int:
    """Transactions waiting in the node's pool (the tests that need it stop its automatic mining)."""
    rpc = env.setup.client.w3.provider
    return int(rpc.make_request("txpool_status", [])["result"]["pending"], 16)  # type: ignore[arg-type]


def mine(env: ApiEnv, blocks: int = 1) -> None:
    for _ in range(blocks):
        env.setup.client.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def pass_time(env: ApiEnv, seconds: int) -> None:
    """Move the node's clock ``seconds`` ahead and mine a block there: deadlines pass without waiting."""
    env.setup.client.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    mine(env)


def evaluation_period_length(env: ApiEnv) -> int:
    """The deployed practice contract's evaluation period: the grid inspections cover whole periods of."""
    return int(ok(env.call("GET", "/evaluation-period", "auditor"))["length_seconds"])


def closed_period(env: ApiEnv) -> tuple[int, int]:
    """The evaluation period before the current one by the chain's clock, as ``(period_from, period_to)``:
    over, so an inspection may cover it (holding whatever the module delivered then, perhaps nothing)."""
    length = evaluation_period_length(env)
    current = env.setup.client.head_time() // length * length
    return current - length, current


@contextmanager
def own_period(env: ApiEnv) -> Iterator[tuple[int, int]]:
    """A whole evaluation period holding the deliveries made in the ``with`` body alone, as ``(period_from,
    period_to)``: the node's clock moved to the next period's start before the body, and past its end after,
    so an inspection may cover it. A module using it declares ``EVALUATION_PERIOD`` (its deployment's
    period, ``tests/api/conftest.py``): the default 30 days is not moved past on the node its tests share."""
    length = evaluation_period_length(env)
    start = (env.setup.client.head_time() // length + 1) * length
    env.setup.client.w3.provider.make_request("evm_setNextBlockTimestamp", [start])  # type: ignore[arg-type]
    mine(env)
    yield start, start + length
    pass_past(env, start + length - 1)


def pass_past(env: ApiEnv, moment: int) -> None:
    """Move the node's clock until its latest block's time is past ``moment`` (a block time: a deadline, a
    period's end). A block is never stamped before its parent, so a head mined many times a second may run
    ahead of the node's clock and one move by the difference fall short: each move mines a later block, until
    one is past."""
    while (head := env.setup.client.head_time()) <= moment:
        pass_time(env, moment - head + 1)


def issue(env: ApiEnv, principal: str, name: str) -> str:
    """Issue a token straight into the API database (what `dxl token issue` does)."""
    from api.auth import issue_token, parse_principal
    from api.db import init_db, make_engine, session_factory, session_scope

    engine = make_engine(env.settings.effective_database_url)
    try:
        init_db(engine)
        with session_scope(session_factory(engine)) as session:
            return issue_token(session, principal=parse_principal(principal), name=name)
    finally:
        engine.dispose()


def catalog_document(title: str, **extra: Any) -> dict[str, Any]:
    """A complete catalog document titled ``title`` (``extra`` adds or replaces fields)."""
    return {
        "dct:title": title,
        "dct:description": "本市户籍人口的身份与户籍登记信息。\n第二行：含全角标点，以及 emoji 🏠。",
        "dcat:keyword": ["户籍", "人口"],
        "csvw:column": [
            {"csvw:name": "person_id", "csvw:datatype": "string", "dct:description": "公民身份号码"},
            {"csvw:name": "household_id", "csvw:datatype": "string"},
        ],
        "dcat:mediaType": "text/csv",
        "dct:accrualPeriodicity": "daily",
        "dct:accessRights": "申请部门须提供法定职责依据",
        "dcat:contactPoint": {"vcard:fn": "市公安局人口管理处", "vcard:hasEmail": "hukou@psb.example.gov.cn"},
        "dcatap:applicableLegislation": "《中华人民共和国户口登记条例》",
        **extra,
    }


def sql(env: ApiEnv, statement: str, **params: Any) -> None:
    """Run ``statement`` on the API's database (what an operator, or an intruder, could do to it)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(env.settings.effective_database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(statement), params)
    finally:
        engine.dispose()


def as_token(env: ApiEnv, token: str, method: str, path: str, *, json: Any = None) -> httpx.Response:
    return env.client.request(method, path, headers={"Authorization": f"Bearer {token}"}, json=json)


def govern(env: ApiEnv, body: dict[str, Any]) -> httpx.Response:
    """Propose as governor-1 and approve as governor-2 (threshold 2); returns the approval's response."""
    proposal = ok(env.call("POST", "/governance/proposals", "governor-1", json=body), 201)["record"]
    assert proposal["approvals"] == 1 and not proposal["executed"]
    return env.call("POST", f"/governance/proposals/{proposal['id']}/approve", "governor-2")


def read_to_end(sock: socket.socket) -> bytes:
    """Everything the peer sends on ``sock`` until it closes the connection (or resets it)."""
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


def read_one_response(sock: socket.socket) -> bytes:
    """One HTTP/1.1 response on a kept-alive ``sock``: its head, then as many body bytes as its Content-Length
    says. One ``recv`` may return only the head, leaving the body to be read as the next response."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {received[:200]!r}"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed {length - len(body)} bytes short of {head[:200]!r}"
        body += chunk
    assert len(body) == length, f"more than one response: {received[:400]!r}"
    return head + b"\r\n\r\n" + body


def stored_document(env: ApiEnv, document: dict[str, Any]) -> bool:
    """Whether the service's database holds a row for ``document``'s canonical hash (the table of catalog
    documents and practice texts)."""
    from sqlalchemy import create_engine, text

    from verifier.catalog import document_hash

    engine = create_engine(env.settings.effective_database_url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text("SELECT 1 FROM api_catalog_documents WHERE metadata_hash = :h"),
                {"h": "0x" + document_hash(document).hex()},
            ).first()
    finally:
        engine.dispose()
    return found is not None


@contextmanager
def full_disk(*, at_once: bool = True) -> Iterator[Callable[[], None]]:
    """While it lasts, no file of this process may grow (a file-size limit: SQLite answers "database or disk
    is full"): from the start, or with ``at_once=False`` from when the function it yields is called (say, by
    a proxy once the node got a transaction). A write past the limit fails instead of killing the process."""
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def fill() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1, limit[1]))

    if at_once:
        fill()
    try:
        yield fill
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
        signal.signal(signal.SIGXFSZ, previous)

"""Idempotency-Key: retries return the first result and record once, also when sent concurrently."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from api.auth import Principal, Role, issue_token
from api.db import IdempotencyRecord, session_scope
from api.idempotency import fingerprint
from api.settings import ApiSettings
from tests.api.api_helpers import ApiEnv, b32, ok

# One deployment per module: keep the module's tests on one xdist worker.
pytestmark = pytest.mark.xdist_group("api-idempotency")


def _resource_count(env: ApiEnv) -> int:
    return len(ok(env.call("GET", "/resources", "auditor", params=env.indexed(limit=500))))


def _resource_body() -> dict[str, object]:
    return {"metadata_hash": b32(), "schema_hash": b32(), "share_type": "conditional", "sensitivity": 1}


def test_retry_replays_the_first_result_and_records_once(api_env: ApiEnv) -> None:
    before = _resource_count(api_env)
    body = _resource_body()
    first = api_env.call("POST", "/resources", "psb", json=body, headers={"Idempotency-Key": "retry-1"})
    second = api_env.call("POST", "/resources", "psb", json=body, headers={"Idempotency-Key": "retry-1"})
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert _resource_count(api_env) == before + 1


def test_concurrent_retries_send_one_transaction(api_env: ApiEnv) -> None:
    before = _resource_count(api_env)
    body = _resource_body()
    results: list[tuple[int, dict[str, Any]]] = []
    barrier = threading.Barrier(6)

    def send() -> None:
        barrier.wait()
        r = api_env.call("POST", "/resources", "hrss", json=body, headers={"Idempotency-Key": "burst-1"})
        results.append((r.status_code, r.json()))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [status for status, _ in results] == [201] * 6
    assert len({str(body) for _, body in results}) == 1, results
    assert _resource_count(api_env) == before + 1


def test_same_key_with_another_body_is_refused(api_env: ApiEnv) -> None:
    ok(
        api_env.call("POST", "/resources", "psb", json=_resource_body(), headers={"Idempotency-Key": "k-2"}),
        201,
    )
    again = api_env.call(
        "POST", "/resources", "psb", json=_resource_body(), headers={"Idempotency-Key": "k-2"}
    )
    assert again.status_code == 422
    assert again.json()["error"] == {
        "code": "IDEMPOTENCY_KEY_REUSED",
        "message": again.json()["error"]["message"],
        "field": "Idempotency-Key",
    }


def test_keys_are_scoped_to_the_principal(api_env: ApiEnv) -> None:
    before = _resource_count(api_env)
    body = _resource_body()
    a = ok(api_env.call("POST", "/resources", "psb", json=body, headers={"Idempotency-Key": "shared"}), 201)
    b = ok(api_env.call("POST", "/resources", "civil", json=body, headers={"Idempotency-Key": "shared"}), 201)
    assert a["record"]["id"] != b["record"]["id"]
    assert _resource_count(api_env) == before + 2


def test_an_error_result_is_replayed_too(api_env: ApiEnv) -> None:
    """A refused request is answered the same way on retry (and the retry sends nothing either)."""
    body = {**_resource_body(), "metadata_hash": "0x" + "00" * 32}
    first = api_env.call("POST", "/resources", "psb", json=body, headers={"Idempotency-Key": "bad-1"})
    second = api_env.call("POST", "/resources", "psb", json=body, headers={"Idempotency-Key": "bad-1"})
    assert first.status_code == second.status_code == 422
    assert first.json() == second.json() and first.json()["error"]["code"] == "INVALID_METADATA"


@pytest.mark.parametrize(
    ("content_type", "malformed"),
    [("text/plain", {}), ("application/json", {"sensitivity": "1"}), ("application/json", {"extra": 1})],
    ids=["body-not-declared-json", "field-of-a-wrong-type", "unknown-field"],
)
def test_a_request_refused_as_malformed_keeps_nothing_under_its_key(
    api_env: ApiEnv, content_type: str, malformed: dict[str, object]
) -> None:
    """A write refused as malformed (422 VALIDATION_ERROR, nothing sent) is corrected and sent again with the
    same key, as a retrying client keeps one key per operation. Kept under the key, the refusal was replayed
    to the corrected request (whose Content-Type the key does not tell apart) for a week, telling it to do
    what it did, or the corrected body was refused IDEMPOTENCY_KEY_REUSED: the operation could not be done
    with its key. The key is the corrected write's, replayed to its retry."""
    key = {"Idempotency-Key": f"malformed-{content_type}-{sorted(malformed)}"}
    body = _resource_body()
    sent_malformed = json.dumps({**body, **malformed}).encode()
    refused = api_env.call(
        "POST", "/resources", "psb", content=sent_malformed, headers={**key, "Content-Type": content_type}
    )
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "VALIDATION_ERROR", refused.text
    before = _resource_count(api_env)
    corrected = {**key, "Content-Type": "application/json"}
    sent = api_env.call("POST", "/resources", "psb", content=json.dumps(body).encode(), headers=corrected)
    assert sent.status_code == 201, sent.text
    assert "idempotent-replayed" not in sent.headers
    again = api_env.call("POST", "/resources", "psb", content=json.dumps(body).encode(), headers=corrected)
    assert (again.status_code, again.json()) == (201, sent.json())
    assert again.headers["idempotent-replayed"] == "true"
    assert _resource_count(api_env) == before + 1


@pytest.mark.parametrize("key", ["x" * 256, "caf\u00e9"])
def test_malformed_keys_are_refused(api_env: ApiEnv, key: str) -> None:
    response = api_env.client.post(
        "/resources",
        json=_resource_body(),
        # The key's own bytes on the wire (not a str httpx would encode as ASCII).
        headers={k.encode(): v.encode() for k, v in api_env.headers("psb").items()}
        | {b"Idempotency-Key": key.encode("utf-8")},
    )
    assert response.status_code == 422 and response.json()["error"]["field"] == "Idempotency-Key"


def test_a_key_sent_twice_is_refused_and_nothing_recorded(api_env: ApiEnv) -> None:
    """Two Idempotency-Key headers leave open which one a retry must repeat (and an intermediary may keep
    either): refused, as a malformed key is."""
    before = _resource_count(api_env)
    headers = [
        *api_env.headers("psb").items(),
        ("Idempotency-Key", "twice-1"),
        ("Idempotency-Key", "twice-2"),
    ]
    response = api_env.client.post("/resources", json=_resource_body(), headers=headers)
    assert response.status_code == 422, response.text
    assert (response.json()["error"]["code"], response.json()["error"]["field"]) == (
        "VALIDATION_ERROR", "Idempotency-Key")  # fmt: skip
    assert _resource_count(api_env) == before


def test_the_key_is_claimed_for_the_principal_that_acts(api_env: ApiEnv) -> None:
    """A request with two Authorization headers acts as no one (401, refused before the key is claimed:
    the service read the first token, a proxy may read the last); the key then belongs to whichever single
    principal uses it, and a retry as the other principal is that principal's own first request."""
    before = _resource_count(api_env)
    body = _resource_body()
    tokens = [*api_env.headers("psb").items(), *api_env.headers("hrss").items()]
    refused = api_env.client.post(
        "/resources", json=body, headers=[*tokens, ("Idempotency-Key", "two-tokens")]
    )
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "UNAUTHENTICATED", refused.text
    assert _resource_count(api_env) == before
    first = api_env.call("POST", "/resources", "psb", json=body, headers={"Idempotency-Key": "two-tokens"})
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers, first.text
    assert first.json()["record"]["owner_code"] == "PSB"
    retry = api_env.call("POST", "/resources", "psb", json=body, headers={"Idempotency-Key": "two-tokens"})
    assert retry.headers.get("idempotent-replayed") == "true" and retry.json() == first.json()
    other = api_env.call("POST", "/resources", "hrss", json=body, headers={"Idempotency-Key": "two-tokens"})
    assert other.status_code == 201 and "idempotent-replayed" not in other.headers
    assert other.json()["record"]["owner_code"] == "HRSS"
    assert _resource_count(api_env) == before + 2


@pytest.mark.parametrize(("method", "path"), [("POST", "/resources/"), ("GET", "/deliveries/")])
def test_a_path_with_a_slash_too_many_is_unknown_not_redirected(
    api_env: ApiEnv, method: str, path: str
) -> None:
    """A 307 to the other spelling sent a client that follows redirects (and resends the write with its key)
    into 422 IDEMPOTENCY_KEY_REUSED against the bodiless 307 kept as the key's answer: nothing was ever
    recorded under that key. An unknown path is a JSON 404 like any other, and nothing is recorded."""
    before = _resource_count(api_env)
    response = api_env.client.request(
        method, path, json=_resource_body() if method == "POST" else None,
        headers={**api_env.headers("psb"), "Idempotency-Key": "slash-1"}, follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "NOT_FOUND" and "location" not in response.headers
    assert _resource_count(api_env) == before


def test_retry_during_a_long_first_request_gets_409_after_waiting(tmp_path: Path) -> None:
    """A claim still in flight past the wait answers IDEMPOTENCY_IN_FLIGHT (no ledger needed to show it)."""
    settings = ApiSettings(home=tmp_path, keystore_passphrase=SecretStr("unused-passphrase"))
    app = create_app(settings, connect=False, idempotency_wait=0.3)
    with TestClient(app) as client:
        state = app.state.dxl
        with session_scope(state.sessions) as session:
            token = issue_token(session, principal=Principal(Role.DEPARTMENT, department="PSB"), name="t")
        body = b'{"metadata_hash": "0x00"}'
        with session_scope(state.sessions) as session:
            print_ = fingerprint("POST", "/resources", b"", body)
            # In flight in another live API process (on a shared database).
            session.add(
                IdempotencyRecord(
                    principal="department:PSB", key="slow", fingerprint=print_, owner="another-process"
                )
            )
        response = client.post(
            "/resources",
            content=body,
            headers={
                "Authorization": f"Bearer {token}",
                "Idempotency-Key": "slow",
                "Content-Type": "application/json",
            },
        )
        assert response.status_code == 409 and response.json()["error"]["code"] == "IDEMPOTENCY_IN_FLIGHT"
        # Without the ledger every ledger route is a clear 503, not a 500.
        response = client.get("/resources", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 503 and response.json()["error"]["code"] == "NODE_UNAVAILABLE"


def test_old_keys_are_forgotten_and_claims_of_a_dead_process_resolved_at_start(tmp_path: Path) -> None:
    import datetime as dt

    from api.db import init_db, make_engine, session_factory

    settings = ApiSettings(home=tmp_path, keystore_passphrase=SecretStr("unused-passphrase"))
    engine = make_engine(settings.effective_database_url)
    init_db(engine)
    # api/README: an answer is kept 7 days.
    now = dt.datetime.now(dt.UTC)
    old, younger = now - dt.timedelta(days=7, hours=1), now - dt.timedelta(days=6, hours=23)
    with session_scope(session_factory(engine)) as session:
        session.add(
            IdempotencyRecord(
                principal="auditor", key="old", fingerprint="f", status_code=201, created_at=old
            )
        )
        session.add(
            IdempotencyRecord(
                principal="auditor", key="new", fingerprint="f", status_code=201, created_at=younger
            )
        )
        # Claims of a process that died: one had sent nothing, the other had journaled its transaction.
        session.add(IdempotencyRecord(principal="auditor", key="idle", fingerprint="f", owner="dead"))
        session.add(
            IdempotencyRecord(
                principal="auditor", key="sent", fingerprint="f", owner="dead", tx_hash="0x" + "1" * 64
            )
        )
    with TestClient(create_app(settings, connect=False)):
        pass
    with session_factory(engine)() as session:
        from sqlalchemy import select

        rows = {r.key: r for r in session.scalars(select(IdempotencyRecord))}
    # Forgotten after the retention; released at start when nothing was sent (the retry runs the write);
    # handed back when a transaction was journaled (the retry finishes that transaction, never a new one).
    assert sorted(rows) == ["new", "sent"]
    assert rows["sent"].owner is None and rows["sent"].status_code is None
    engine.dispose()


def test_a_pending_answer_is_never_kept_though_its_transaction_was_mined_meanwhile(tmp_path: Path) -> None:
    """The request answered 409 TRANSACTION_PENDING (the node stopped answering while it waited), and its
    transaction was mined and marked so before the answer was settled: the claim is handed back, so that the
    client's retry finishes the write instead of replaying the 409 for good (what a full reliability run
    found: a resource on chain whose key answered 409 after every retry). A final 409 stays kept."""
    from sqlalchemy import select

    from api.db import JournaledTransaction, init_db, make_engine, session_factory
    from api.errors import error_body
    from api.idempotency import ClaimOwner, IdempotencyStore, Stored
    from api.journal import Claim, TxStatus

    engine = make_engine(f"sqlite:///{tmp_path / 'api.sqlite3'}")
    init_db(engine)
    sessions = session_factory(engine)
    store = IdempotencyStore(sessions, ClaimOwner())
    answers = {
        "pending": error_body("TRANSACTION_PENDING", "journaled, not confirmed", tx_hash="0x" + "ab" * 32),
        "conflict": error_body("LEDGER_REJECTED", "the ledger rejected the transaction"),
    }
    for key, answer in answers.items():
        claim = store.claim("department:PSB", key, "f")
        assert isinstance(claim, Claim)
        tx_hash = "0x" + hashlib.sha256(key.encode()).hexdigest()
        with session_scope(sessions) as session:
            session.add(JournaledTransaction(tx_hash=tx_hash, sender="0x" + "1" * 40, nonce=len(key),
                                             raw=b"\x01", status=TxStatus.MINED.value))  # fmt: skip
            record = session.get(IdempotencyRecord, claim.id)
            assert record is not None
            record.tx_hash = tx_hash
        store.settle(claim, Stored(409, json.dumps(answer).encode()))
    with sessions() as session:
        rows = {r.key: r for r in session.scalars(select(IdempotencyRecord))}
    assert rows["pending"].status_code is None and rows["pending"].owner is None
    assert rows["conflict"].status_code == 409
    retry = store.claim("department:PSB", "pending", "f")  # the retry takes the journaled transaction over
    assert isinstance(retry, Claim) and retry.tx_hash == rows["pending"].tx_hash
    assert isinstance(store.claim("department:PSB", "conflict", "f"), Stored)
    engine.dispose()


def _keys_stored(env: ApiEnv) -> set[str]:
    from sqlalchemy import select

    from api.db import make_engine, session_factory

    engine = make_engine(env.settings.effective_database_url)
    try:
        with session_scope(session_factory(engine)) as session:
            return set(session.scalars(select(IdempotencyRecord.key)))
    finally:
        engine.dispose()


def test_a_key_of_255_printable_characters_is_taken(api_env: ApiEnv) -> None:
    """api/README: "up to 255 printable ASCII" (256 is refused above)."""
    key = "~" + "k" * 253 + "!"
    assert len(key) == 255
    first = api_env.call(
        "POST", "/resources", "psb", json=(body := _resource_body()), headers={"Idempotency-Key": key}
    )
    again = api_env.call("POST", "/resources", "psb", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 201, first.text
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == first.json()


@pytest.mark.parametrize(
    ("who", "path", "bodies"),
    [
        (
            "psb",
            "/receipts/lookup",
            ({"delivery_ids": ["0x" + "01" * 32]}, {"delivery_ids": ["0x" + "02" * 32]}),
        ),
        ("auditor", "/audit/index", (None, None)),
        ("psb", "/no-such-route", ({"a": 1}, {"a": 2})),
    ],
)
def test_the_posts_that_record_nothing_twice_ignore_the_key_and_store_no_answer(
    api_env: ApiEnv, who: str, path: str, bodies: tuple[Any, Any]
) -> None:
    """api/README (Retries): the POSTs whose operation declares no Idempotency-Key, and unknown paths, ignore
    it: a key kept there stored every such answer for a week (a look-up of 1,000 receipts with their proofs
    each). Sent twice with the same key and another body, each request is answered as itself, neither
    replayed nor refused `IDEMPOTENCY_KEY_REUSED`, and no key is stored."""
    key = f"ignored-{path.strip('/').replace('/', '-')}"
    answers = [
        api_env.call("POST", path, who, json=body, headers={"Idempotency-Key": key}) for body in bodies
    ]
    assert [a.status_code for a in answers] == [answers[0].status_code] * 2
    assert answers[0].status_code in (200, 404), answers[0].text
    assert all("Idempotent-Replayed" not in a.headers for a in answers)
    assert all(a.json().get("error", {}).get("code") != "IDEMPOTENCY_KEY_REUSED" for a in answers)
    assert key not in _keys_stored(api_env)

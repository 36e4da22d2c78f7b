"""``POST /verify`` (api/routes/verify.py) on a real deployment: the same verdicts as ``dxl verify``.

The router is mounted on a bare FastAPI app with the API's error handlers, token check and a ledger service on
this module's own deployment, so the test does not depend on how api/app.py assembles its routers.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.auth import Principal, Role, issue_token
from api.db import init_db, make_engine, session_factory, session_scope
from api.deps import AppState
from api.errors import install_error_handlers
from api.ledger import Custody, LedgerService
from api.routes import verify as verify_route
from api.settings import ApiSettings
from node.endpoint import NodeEndpoint
from node.keys import KeyStore
from node.types import GovernanceAction
from tests.contracts.conftest import Consortium, deploy
from verifier.commitment import commit_payload, new_salt
from verifier.delivery_ids import new_delivery_id
from verifier.leaves import Chunking, PayloadFormat
from verifier.manifest import Manifest, build_manifest, sign_manifest

pytestmark = pytest.mark.xdist_group("verifier-onchain-api")

ROWS = b"".join(b'{"n": %d}\n' % i for i in range(12))


@pytest.fixture(scope="module")
def env(node_endpoint: NodeEndpoint, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    governors = [Account.create() for _ in range(3)]
    c = Consortium(deploy(node_endpoint, governors, 2), governors)
    for code in ("PSB", "HRSS", "SAMR"):
        c.admit(code)
    grant = c.grant(c.depts["PSB"], c.agreement(c.depts["PSB"], c.depts["HRSS"]))
    home = tmp_path_factory.mktemp("verify-api")
    engine = make_engine(f"sqlite:///{home / 'api.db'}")
    init_db(engine)
    sessions = session_factory(engine)
    with session_scope(sessions) as s:
        tokens = {
            "auditor": issue_token(s, principal=Principal(Role.AUDITOR), name="aud"),
            "governor": issue_token(s, principal=Principal(Role.GOVERNOR, governor=1), name="gov"),
            **{
                code.lower(): issue_token(s, principal=Principal(Role.DEPARTMENT, department=code), name=code)
                for code in ("PSB", "HRSS", "SAMR")
            },
        }
    custody = Custody(keystore=KeyStore(home / "keys", "pw"), governors={})
    # An auditor token stands for the auditor whose key the service holds while it holds the role.
    auditor = custody.keystore.create("auditor")
    c.govern(GovernanceAction.GRANT_AUDITOR, abi_encode(["address"], [auditor]))
    ledger = LedgerService(client=c.client, custody=custody, sessions=lambda: sessions)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(verify_route.router)
    app.state.dxl = AppState(engine=engine, sessions=sessions, settings=ApiSettings(home=home), ledger=ledger)
    with TestClient(app) as client:
        yield {"c": c, "grant": grant, "client": client, "tokens": tokens, "home": home}
    engine.dispose()


def _manifest(env: dict[str, Any], *, record: bool = True) -> Manifest:
    c: Consortium = env["c"]
    path = env["home"] / f"p-{os.urandom(4).hex()}.jsonl"
    path.write_bytes(ROWS)
    com = commit_payload(path, salt=new_salt(), chunking=Chunking(PayloadFormat.JSONL), keep_leaf_hashes=True)
    m = build_manifest(
        com,
        delivery_id=new_delivery_id(c.depts["PSB"].id),
        grant_id=env["grant"],
        provider="PSB",
        consumer="HRSS",
    )
    m = sign_manifest(m, c.depts["PSB"].account)
    if record:
        c.send(c.depts["PSB"], "recordDelivery", m.delivery_id, env["grant"], m.root, 1, m.byte_size,
               m.record_count)  # fmt: skip
    return m


def _post(env: dict[str, Any], body: dict[str, Any], who: str | None = "auditor") -> Any:
    headers = {"Authorization": f"Bearer {env['tokens'][who]}"} if who else {}
    return env["client"].post("/verify", json=body, headers=headers)


def _body(m: Manifest, **extra: Any) -> dict[str, Any]:
    return {"manifest": json.loads(m.to_json()), **extra}


@pytest.mark.parametrize(
    ("payload", "commitment", "record", "status"),
    [
        (ROWS, None, True, "MATCH"),
        (b"x" + ROWS[1:], None, True, "MISMATCH"),
        (None, "root", True, "MATCH"),
        (None, "0x" + "ab" * 32, True, "MISMATCH"),
        (None, None, True, "MATCH"),
        (ROWS, None, False, "NOT_RECORDED"),
    ],
)
def test_verdicts(
    env: dict[str, Any], payload: bytes | None, commitment: str | None, record: bool, status: str
) -> None:
    m = _manifest(env, record=record)
    extra: dict[str, Any] = {}
    if payload is not None:
        extra["payload_base64"] = base64.b64encode(payload).decode()
    if commitment is not None:
        extra["commitment"] = "0x" + m.root.hex() if commitment == "root" else commitment
    r = _post(env, _body(m, **extra))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == status, r.json()
    if status == "MATCH":
        assert r.json()["anchor"]["details"]["status"] == "RECORDED"


@pytest.mark.parametrize(
    ("mutate", "http", "code"),
    [
        (lambda b: b | {"manifest": {"schema": "nope"}}, 422, "VALIDATION_ERROR"),
        (lambda b: b | {"payload_base64": "***"}, 422, "VALIDATION_ERROR"),
        (lambda b: b | {"payload_base64": "", "commitment": "0x" + "00" * 32}, 422, "VALIDATION_ERROR"),
    ],
)
def test_bad_requests(env: dict[str, Any], mutate: Any, http: int, code: str) -> None:
    r = _post(env, mutate(_body(_manifest(env, record=False))))
    assert (r.status_code, r.json()["error"]["code"]) == (http, code), r.text


@pytest.mark.parametrize(("who", "http"), [(None, 401), ("governor", 403)])
def test_needs_an_exchange_reader(env: dict[str, Any], who: str | None, http: int) -> None:
    assert _post(env, _body(_manifest(env, record=False)), who).status_code == http


@pytest.mark.parametrize("with_payload", [True, False])
def test_a_department_verifies_only_its_own_deliveries(env: dict[str, Any], with_payload: bool) -> None:
    """Its parties get the verdict; another department gets what a delivery never recorded gets (an unknown
    id's answer, as every read of an exchange it is not party to), naming none of its chain data."""
    recorded, never = _manifest(env), _manifest(env, record=False)
    extra = {"payload_base64": base64.b64encode(ROWS).decode()} if with_payload else {}
    for party in ("psb", "hrss", "auditor"):
        answer = _post(env, _body(recorded, **extra), party).json()
        assert (answer["status"], answer["anchor"]["recorded"]) == ("MATCH", True), (party, answer)
    outsider = _post(env, _body(recorded, **extra), "samr").json()
    unknown = _post(env, _body(never, **extra), "samr").json()
    assert (outsider["status"], outsider["anchor"]) == ("NOT_RECORDED", unknown["anchor"])
    codes = [f["code"] for f in outsider["findings"]]
    assert codes == [f["code"] for f in unknown["findings"]] and "NOT_RECORDED" in codes

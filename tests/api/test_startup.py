"""Start-up (key custody, wrong passphrase), tokens (hashed, revocable, demo tokens shown once) and key
secrecy."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from typer.testing import CliRunner

from api.app import ROUTERS, connect_ledger, create_app
from api.auth import Principal, Role, TokenError, authenticate, hash_token, parse_principal, revoke_token
from api.db import ApiToken, make_engine, session_factory
from api.demo import DEMO_TOKENS_FILE, ApiDatabaseLostError, demo_principals, ensure_demo_tokens
from api.ledger import Custody
from api.settings import ApiSettings
from dxl.app import app
from node.deploy import NotDeployedError, load_deployment
from node.errors import ConfigurationError
from node.keys import KeystoreError
from node.provision import DEPARTMENTS, GOVERNORS
from tests.api.api_helpers import ApiEnv, as_token, issue, no_database, ok
from tests.rpc_proxy import RpcProxy

# One deployment per module: keep the module's tests on one xdist worker.
pytestmark = pytest.mark.xdist_group("api-startup")


def test_wrong_passphrase_stops_the_start_with_a_clear_error(api_env: ApiEnv) -> None:
    wrong = api_env.settings.model_copy(update={"keystore_passphrase": SecretStr("not-the-passphrase")})
    with pytest.raises(KeystoreError) as caught:
        connect_ledger(wrong, no_database)
    message = str(caught.value)
    assert "wrong passphrase" in message and "not-the-passphrase" not in message
    with pytest.raises(KeystoreError), TestClient(create_app(wrong)):
        pass


def test_a_confirmation_depth_an_auto_mining_node_never_reaches_stops_the_start(api_env: ApiEnv) -> None:
    """The test node mines a block per transaction and no other: with DXL_CONFIRMATIONS=2 a write alone
    would wait for ever for the two blocks on top of it (TRANSACTION_PENDING on every retry). The start is
    refused, naming both settings, before any key is unlocked or anything written."""
    deep = api_env.settings.model_copy(update={"confirmations": 2})
    with pytest.raises(ConfigurationError) as caught:
        connect_ledger(deep, no_database)
    message = str(caught.value)
    assert "DXL_CONFIRMATIONS=2" in message and "DXL_RPC_URL" in message, message
    assert str(api_env.settings.rpc_url) in message and "--block-time" in message
    with pytest.raises(ConfigurationError), TestClient(create_app(deep)):
        pass


def test_dxl_deploy_refuses_a_depth_an_auto_mining_node_never_reaches(
    api_env: ApiEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``dxl deploy`` asks first and writes nothing: before, it waited out its timeout for blocks that never
    came, with the contract deployed and no record of it."""
    monkeypatch.setenv("DXL_HOME", str(tmp_path))
    monkeypatch.setenv("DXL_RPC_URL", str(api_env.settings.rpc_url))
    monkeypatch.setenv("DXL_CHAIN_ID", str(api_env.settings.chain_id))
    monkeypatch.setenv("DXL_CONFIRMATIONS", "1")
    result = CliRunner().invoke(app, ["deploy", "--json"])
    assert result.exit_code == 2, result.output
    error = json.loads(result.output)
    assert error["error"] == "CONFIGURATION_ERROR" and "DXL_CONFIRMATIONS=1" in error["message"], error
    assert not (tmp_path / "deployment.json").exists() and not (tmp_path / "keys").exists()


def test_dxl_deploy_waits_for_the_node_as_long_as_dxl_rpc_timeout_says(
    api_env: ApiEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deployment's client is made with the operator's wait: with DXL_RPC_TIMEOUT=1, a node that answers
    its gas estimate 20 s late is given up on after a second, and ``dxl deploy`` says so (NODE_UNAVAILABLE,
    naming the node and the wait), with nothing recorded. Before, ``deploy_ledger`` made its own client,
    which waited its 30 s default whatever the setting."""
    import time

    monkeypatch.setenv("DXL_HOME", str(tmp_path))
    monkeypatch.setenv("DXL_CHAIN_ID", str(api_env.settings.chain_id))
    monkeypatch.setenv("DXL_RPC_TIMEOUT", "1")
    with RpcProxy(str(api_env.settings.rpc_url)) as proxy:
        proxy.method_delay_s = {"eth_estimateGas": 20.0}
        monkeypatch.setenv("DXL_RPC_URL", proxy.url)
        began = time.monotonic()
        result = CliRunner().invoke(app, ["deploy", "--json"])
        took = time.monotonic() - began
    assert result.exit_code == 2, result.output
    error = json.loads(result.output)
    assert error["error"] == "NODE_UNAVAILABLE", error
    assert f"node at {proxy.url} is unreachable: ReadTimeout (no answer within 1 s)" in error["message"], (
        error
    )
    # Keys made, the chain's build probed, the estimate waited for once (a request given up on is not asked
    # again of the same node): seconds of their own, but not the 20 a 30 s wait would have waited out.
    assert took < 20.0, f"dxl deploy waited {took:.1f} s"
    assert not (tmp_path / "deployment.json").exists()


def test_every_app_serves_the_routes_its_modules_built_at_import(tmp_path: Path) -> None:
    """Each app serves the very route objects its routers' modules built at import, every one, in the
    routers' order, before and after its first request: an included router's routes are built again for each
    app that includes it, on the app's first request (some 80 ms of CPU a start, api.app.ROUTERS)."""
    settings = ApiSettings(
        home=tmp_path,
        keystore_passphrase=SecretStr("unused-passphrase"),
        audit_follow_interval=0,
        inspection_draw_interval=0,
    )
    built = [id(route) for router in ROUTERS for route in router.routes]
    assert len(built) > 60
    for _ in range(2):
        served_app = create_app(settings, connect=False)
        assert [id(route) for route in served_app.routes if id(route) in built] == built
        with TestClient(served_app) as client:
            assert client.get("/healthz").status_code in (200, 503)
            assert client.get("/openapi.json").status_code == 200
        assert [id(route) for route in served_app.routes if id(route) in built] == built


def test_missing_deployment_stops_the_start(api_env: ApiEnv, tmp_path: Path) -> None:
    elsewhere = api_env.settings.model_copy(update={"home": tmp_path})
    with pytest.raises(NotDeployedError) as caught:
        connect_ledger(elsewhere, no_database)
    assert caught.value.code == "NOT_DEPLOYED" and str(tmp_path) in str(caught.value)


def test_governors_are_the_deployment_records_not_the_demo_names(api_env: ApiEnv) -> None:
    keystore = api_env.keystore
    record = load_deployment(api_env.settings.home)
    by_address = {keystore.address(name): name for name in keystore.names()}
    service = connect_ledger(api_env.settings, no_database)
    assert service.custody.governors == {
        i: by_address[address] for i, address in enumerate(record.governors, start=1)
    }
    # Governor N is whoever the record lists N-th, whatever its key is called; an address the keystore holds
    # no key for is not custodied.
    stranger = "0x" + "11" * 20
    custody = Custody.of_deployment(keystore, [record.governors[1], stranger, record.governors[0]])
    assert custody.governors == {1: by_address[record.governors[1]], 3: by_address[record.governors[0]]}


def test_demo_tokens_are_issued_once_and_remembered_0600(api_env: ApiEnv) -> None:
    names = set(demo_principals())
    assert names == {f"demo-{d.code.lower()}" for d in DEPARTMENTS} | {
        f"demo-governor-{i}" for i in range(1, len(GOVERNORS) + 1)
    } | {"demo-auditor"}
    assert set(api_env.tokens) == names  # the fixture's first call issued all of them
    assert ensure_demo_tokens(api_env.settings) == dict.fromkeys(
        names
    )  # second call: nothing new, nothing shown
    path = api_env.settings.secrets_dir / DEMO_TOKENS_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    remembered = json.loads(path.read_text())
    assert {n: r["token"] for n, r in remembered.items()} == api_env.tokens
    me = ok(as_token(api_env, remembered["demo-hrss"]["token"], "GET", "/me"))
    assert (me["principal"], me["department_id"]) == ("department:HRSS", api_env.departments["HRSS"])


def test_tokens_are_stored_only_as_hashes(api_env: ApiEnv) -> None:
    engine = make_engine(api_env.settings.effective_database_url)
    try:
        with session_factory(engine)() as session:
            rows = list(session.scalars(select(ApiToken)))
    finally:
        engine.dispose()
    stored = {bytes(r.token_hash) for r in rows}
    for token in api_env.tokens.values():
        assert hash_token(token) in stored
        # api/README: random (32 bytes), stored only as SHA-256.
        assert hashlib.sha256(token.encode()).digest() in stored
        assert token.startswith("dxl_") and len(base64.urlsafe_b64decode(token[4:] + "=")) == 32
    assert len(set(api_env.tokens.values())) == len(api_env.tokens)
    raw = api_env.settings.home.joinpath("dxl.sqlite3").read_bytes()
    assert not any(token.encode() in raw for token in api_env.tokens.values())


def test_revoked_token_is_refused(api_env: ApiEnv) -> None:
    from api.auth import revoke_token
    from api.db import session_scope

    token = issue(api_env, "auditor", "short-lived")
    assert ok(as_token(api_env, token, "GET", "/me"))["role"] == "auditor"
    engine = make_engine(api_env.settings.effective_database_url)
    try:
        with session_scope(session_factory(engine)) as session:
            revoke_token(session, name="short-lived")
    finally:
        engine.dispose()
    response = as_token(api_env, token, "GET", "/me")
    assert response.status_code == 401 and response.json()["error"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PSB", Principal(Role.DEPARTMENT, department="PSB")),
        ("psb", Principal(Role.DEPARTMENT, department="PSB")),
        ("department:HRSS", Principal(Role.DEPARTMENT, department="HRSS")),
        ("governor:2", Principal(Role.GOVERNOR, governor=2)),
        ("auditor", Principal(Role.AUDITOR)),
        ("governor:0", TokenError),
        ("governor:x", TokenError),
        ("", TokenError),
        ("two words", TokenError),
        ("A" * 33, TokenError),
        # Only ASCII names a principal: a long s (U+017F) upper-cases to "S", a superscript two is a digit
        # int() refuses (a ValueError out of `dxl token issue`), an Arabic-Indic one a digit it reads as 1.
        ("p\u017fb", TokenError),
        ("\uff30\uff33\uff22", TokenError),
        ("governor:\u00b2", TokenError),
        ("governor:\u0661", TokenError),
        ("governor:" + "9" * 5000, TokenError),
    ],
)
def test_parse_principal(text: str, expected: Principal | type[Exception]) -> None:
    if isinstance(expected, Principal):
        assert parse_principal(text) == expected
    else:
        with pytest.raises(expected):
            parse_principal(text)


def test_no_response_contains_a_key(api_env: ApiEnv) -> None:
    """Private keys (signing and X25519) never appear in what the API sends, whoever asks."""
    keystore = api_env.keystore
    secrets_hex = []
    for name in keystore.names():
        secrets_hex.append(bytes(keystore.unlock(name).key).hex())
    spec = ok(api_env.client.get("/openapi.json"))
    texts = [json.dumps(spec)]
    for path, ops in spec["paths"].items():
        if "get" in ops and "{" not in path:
            for who in ("auditor", "psb", "governor-1"):
                texts.append(api_env.call("GET", path, who).text)
    for text in texts:
        lowered = text.lower()
        assert not any(secret in lowered for secret in secrets_hex)


def _backup_sqlite(source: Path, target: Path) -> None:
    """What README's 'Where state lives' says to run: SQLite's online backup, safe while the API runs."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def test_a_deleted_api_database_stops_the_start_instead_of_reissuing_demo_tokens(tmp_path: Path) -> None:
    settings = ApiSettings(home=tmp_path)
    issued = ensure_demo_tokens(settings)
    assert all(issued.values())
    database = tmp_path / "dxl.sqlite3"
    record = settings.secrets_dir / DEMO_TOKENS_FILE
    _backup_sqlite(database, tmp_path / "backup.sqlite3")
    remembered = record.read_bytes()

    database.unlink()
    with pytest.raises(ApiDatabaseLostError) as caught:
        ensure_demo_tokens(settings)
    assert caught.value.code == "API_DATABASE_LOST"
    assert str(record) in caught.value.message and "demo-psb" in caught.value.message
    assert "dxl_" not in caught.value.message  # names, never tokens
    engine = make_engine(settings.effective_database_url)
    try:
        with session_factory(engine)() as session:
            assert list(session.scalars(select(ApiToken))) == []  # nothing was issued
    finally:
        engine.dispose()
    assert record.read_bytes() == remembered

    # Restored from the backup: the same tokens work again and none is issued.
    database.unlink()
    _backup_sqlite(tmp_path / "backup.sqlite3", database)
    assert ensure_demo_tokens(settings) == dict.fromkeys(issued)
    engine = make_engine(settings.effective_database_url)
    try:
        with session_factory(engine)() as session:
            principal = authenticate(session, str(issued["demo-hrss"]))
    finally:
        engine.dispose()
    assert principal is not None and principal.department == "HRSS"

    # Asked for explicitly (the record moved away): new tokens, recorded anew.
    database.unlink()
    record.rename(tmp_path / "old-demo-tokens.json")
    fresh = ensure_demo_tokens(settings)
    assert all(fresh.values()) and set(fresh.values()).isdisjoint(issued.values())
    assert {n: r["token"] for n, r in json.loads(record.read_text()).items()} == fresh


def test_a_revoked_demo_token_is_not_mistaken_for_a_lost_database(tmp_path: Path) -> None:
    settings = ApiSettings(home=tmp_path)
    ensure_demo_tokens(settings)
    engine = make_engine(settings.effective_database_url)
    try:
        with session_factory(engine)() as session:
            revoke_token(session, name="demo-psb")
            session.commit()
    finally:
        engine.dispose()
    assert ensure_demo_tokens(settings) == dict.fromkeys(demo_principals())

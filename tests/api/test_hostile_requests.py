"""Requests a hostile department or an outsider would send: cheap to send, costly or revealing to answer.
Each is answered with a declared 4xx before the work it would cost, and records nothing."""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from api.app import create_app
from api.limits import MAX_PAYLOAD_LEAVES
from api.server import KEEP_ALIVE_SECONDS, BoundedHttpToolsProtocol
from api.settings import ApiSettings
from node.anvil import EmbeddedNode, free_port
from tests.api.api_helpers import (
    ApiEnv,
    ServerThread,
    api_home,
    b32,
    delivery_between,
    grant_between,
    make_settings,
    mine,
    ok,
    own_period,
    read_one_response,
    read_to_end,
    register,
    request_access,
    served,
    until,
)
from tests.rpc_proxy import RpcProxy

# One deployment per module: keep the module's tests on one xdist worker.
pytestmark = pytest.mark.xdist_group("api-hostile-requests")


@pytest.fixture(scope="module")
def proxy(embedded_node: EmbeddedNode) -> Iterator[RpcProxy]:
    """Between the service and its node: counts what the service asks the node."""
    with RpcProxy(embedded_node.endpoint.rpc_url) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def api_env(
    embedded_node: EmbeddedNode, proxy: RpcProxy, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiEnv]:
    home = api_home(tmp_path_factory, "api-hostile")
    # Its inspections cover whole periods of its tests' own deliveries: a day passes on the shared node.
    settings = make_settings(home, embedded_node, evaluation_period=86400)
    # The service asks the node only what requests make it ask: no follower or watcher in the background.
    quiet = {"rpc_url": proxy.url, "audit_follow_interval": 0, "chain_watch_interval": 0}
    with served(settings.model_copy(update=quiet), embedded_node) as env:
        yield env


def _manifest(fmt: str, byte_size: int, leaves: int, chunk_size: int = 1) -> dict[str, Any]:
    """An unsigned manifest whose fields agree with each other (so it is read, and its payload hashed)."""
    return {
        "schema": "dxl.manifest/1", "delivery_id": "0x" + "00" * 32, "agreement_id": None, "grant_id": None,
        "provider": None, "consumer": None, "salt": "0x" + "11" * 32,
        "algorithm": {"name": "sha256", "id": 1},
        "chunking": {"format": fmt, "chunk_size": chunk_size}, "leaf_count": leaves, "byte_size": byte_size,
        "record_count": 0 if fmt == "bytes" else leaves, "root": "0x" + "22" * 32,
        "created_at": "2026-01-01T00:00:00Z",
    }  # fmt: skip


def _payload_body(fmt: str, payload: bytes) -> dict[str, Any]:
    leaves = len(payload) if fmt == "bytes" else payload.count(b"\n")
    encoded = base64.b64encode(payload).decode()
    return {"manifest": _manifest(fmt, len(payload), leaves), "payload_base64": encoded}


@pytest.mark.parametrize("path", ["/verify", "/audit/provenance/payload"])
@pytest.mark.parametrize(
    ("fmt", "unit"), [("bytes", b"\x00"), ("jsonl", b"\n")], ids=["one-byte-chunks", "empty-lines"]
)
def test_a_payload_of_more_leaves_than_a_request_hashes_is_refused_before_hashing(
    api_env: ApiEnv, path: str, fmt: str, unit: bytes
) -> None:
    """1-byte chunks (or empty JSON lines) make a check cost per byte sent: a 6 MB payload was 11.5 s of
    the service's CPU and 540 MB. Past ``MAX_PAYLOAD_LEAVES`` it is 413 PAYLOAD_TOO_MANY_LEAVES at once."""
    over = _payload_body(fmt, unit * (MAX_PAYLOAD_LEAVES + 1))
    started = time.monotonic()
    refused = api_env.call("POST", path, "auditor", json=over)
    assert refused.status_code == 413, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["field"]) == ("PAYLOAD_TOO_MANY_LEAVES", "payload_base64")
    assert (error["leaves"], error["limit"]) == (MAX_PAYLOAD_LEAVES + 1, MAX_PAYLOAD_LEAVES)
    huge = _payload_body(fmt, unit * 2_000_000)
    refused = api_env.call("POST", path, "auditor", json=huge)
    assert refused.json()["error"]["code"] == "PAYLOAD_TOO_MANY_LEAVES"
    assert time.monotonic() - started < 5, "refused without hashing the leaves"
    # At the limit the payload is checked: a verdict (the manifest's root is not the payload's), or for the
    # provenance no delivery recorded the recomputed commitment.
    at_limit = api_env.call("POST", path, "auditor", json=_payload_body(fmt, unit * MAX_PAYLOAD_LEAVES))
    if path == "/verify":
        assert ok(at_limit)["status"] == "MISMATCH"
    else:
        assert (at_limit.status_code, at_limit.json()["error"]["code"]) == (404, "NOT_FOUND"), at_limit.text


def _drawn_inspection(env: ApiEnv) -> tuple[int, dict[str, str]]:
    """A drawn inspection of a period holding an HRSS delivery to PSB and a PSB delivery to CIVIL; its id,
    and each sampled delivery's provider code."""
    hrss, psb = grant_between(env, "hrss", "psb"), grant_between(env, "psb", "civil")
    with own_period(env) as (period_from, period_to):  # the period holds this test's deliveries only
        delivery_between(env, "hrss", "psb", hrss)
        delivery_between(env, "psb", "civil", psb)
    body = {"period_from": period_from, "sample_size": 2, "period_to": period_to,
            "seed_delay_blocks": 2}  # fmt: skip
    inspection = ok(env.call("POST", "/inspections", "auditor", json=body), 201)["record"]["id"]
    mine(env, 2)
    drawn = ok(env.call("POST", f"/inspections/{inspection}/draw", "auditor"))["record"]
    codes = {v: k for k, v in env.departments.items()}
    return inspection, {s["delivery_id"]: codes[s["provider"]] for s in drawn["sample"]}


def test_inspection_samples_are_read_by_auditors_whole_and_by_a_department_for_its_own_deliveries(
    api_env: ApiEnv, proxy: RpcProxy
) -> None:
    """A sample names deliveries between departments, and what their providers presented (a verdict only
    the service holds): an auditor reads it whole, a department only the sampled deliveries it provided,
    which it must present; governors read no inspection (403 FORBIDDEN, as for exchanges and scorecards).
    Every department read the whole sample before, and a governor every inspection."""
    env = api_env
    inspection, providers = _drawn_inspection(env)
    assert sorted(providers.values()) == ["HRSS", "PSB"]
    whole = ok(env.call("GET", f"/inspections/{inspection}", "auditor"))
    assert {s["delivery_id"] for s in whole["sample"]} == set(providers)
    for who in ("psb", "hrss", "civil"):
        own = {d for d, code in providers.items() if code == who.upper()}
        one = ok(env.call("GET", f"/inspections/{inspection}", who))
        assert {s["delivery_id"] for s in one["sample"]} == own, who
        assert {k: v for k, v in one.items() if k != "sample"} == {
            k: v for k, v in whole.items() if k != "sample"
        }
        (listed,) = [i for i in ok(env.call("GET", "/inspections", who)) if i["id"] == inspection]
        assert listed == one
    # Drawn again by a department (anyone may draw): the answer shows what its reads show.
    again = ok(env.call("POST", f"/inspections/{inspection}/draw", "civil"))
    assert again["record"]["sample"] == []
    for path in (f"/inspections/{inspection}", "/inspections"):
        refused = env.call("GET", path, "governor-1")
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "FORBIDDEN")


def test_a_drawn_sample_is_derived_once_and_read_alike_after(api_env: ApiEnv, proxy: RpcProxy) -> None:
    """Each read of a drawn inspection derived its sample again from the chain (about 22 requests to the
    node, three of them log queries over the period), and a list did so for every inspection: the sample is
    fixed once drawn, so it is derived once. A read asks the node for the inspection, its outcomes and the
    latest block's time (which its overdue marks are read on); a list for each inspection and, once, every
    outcome and the time."""
    env = api_env
    inspection, _ = _drawn_inspection(env)
    _drawn_inspection(env)
    first = ok(env.call("GET", f"/inspections/{inspection}", "auditor"))
    listed = ok(env.call("GET", "/inspections", "auditor"))
    assert len(listed) >= 2
    before = proxy.asked.copy()
    for _ in range(5):
        assert ok(env.call("GET", f"/inspections/{inspection}", "auditor")) == first
    asked = proxy.asked - before
    assert asked["eth_getLogs"] <= 5 and sum(asked.values()) <= 5 * 4, asked
    before = proxy.asked.copy()
    assert ok(env.call("GET", "/inspections", "auditor")) == listed
    asked = proxy.asked - before
    assert asked["eth_getLogs"] <= 1 and sum(asked.values()) <= 4 + len(listed), asked


def _kept_keys(env: ApiEnv) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(env.settings.effective_database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM api_idempotency")).scalar_one())
    finally:
        engine.dispose()


def test_an_idempotency_key_is_kept_only_by_a_route_that_takes_one(api_env: ApiEnv) -> None:
    """A lookup, a check or an unknown path with a fresh key each time kept each answer for a week (a lookup
    of 1,000 receipts with their proofs per request): the API database grew by whatever anyone sent. Routes
    that take no key ignore it; a write that takes one still keeps its answer."""
    env = api_env
    kept = _kept_keys(env)
    lookup = {"delivery_ids": ["0x" + "ab" * 32] * 1000}
    for i in range(5):
        for path, body in (
            ("/receipts/lookup", lookup),
            ("/verify", {"manifest": {}}),
            ("/no/such/route", {}),
        ):
            answer = env.call(
                "POST", path, "psb", json=body, headers={"Idempotency-Key": f"fresh-{path}-{i}"}
            )
            assert "idempotent-replayed" not in answer.headers and answer.status_code < 500, answer.text
    # The same key with another body is no reuse where no key is taken: the request is answered as sent.
    again = env.call("POST", "/receipts/lookup", "psb", json={"delivery_ids": ["0x" + "cd" * 32]},
                     headers={"Idempotency-Key": "fresh-/receipts/lookup-0"})  # fmt: skip
    assert ok(again) == {"receipts": []}
    assert _kept_keys(env) == kept
    resource = {
        "metadata_hash": "0x" + "00" * 32,
        "schema_hash": "0x" + "11" * 32,
        "share_type": "conditional",
    }
    refused = env.call("POST", "/resources", "psb", json=resource, headers={"Idempotency-Key": "a-write"})
    assert refused.json()["error"]["code"] == "INVALID_METADATA"
    assert _kept_keys(env) == kept + 1


def test_terms_signed_for_another_chain_or_deployment_are_refused_and_nothing_is_kept(
    api_env: ApiEnv,
) -> None:
    """The department's own key over the request's terms, but bound to another chain id, another ledger
    address, or a later deadline than the terms say: none recovers to its signer over these terms (422
    INVALID_SIGNATURE), none is kept as its half of the agreement; the terms as served are taken."""
    env = api_env
    req = request_access(env, "psb", register(env, "hrss"))
    ok(env.call("POST", f"/requests/{req['id']}/approve", "hrss"))
    signing = ok(env.call("GET", f"/requests/{req['id']}/terms", "psb"))
    typed = signing["typed_data"]
    key = env.keystore.unlock("dept-psb")
    domain = typed["domain"]
    forged = {
        "another chain": {**typed, "domain": {**domain, "chainId": int(domain["chainId"]) + 1}},
        "another ledger": {**typed, "domain": {**domain, "verifyingContract": "0x" + "11" * 20}},
        "later deadline": {
            **typed,
            "message": {**typed["message"], "deadline": int(typed["message"]["deadline"]) + 1},
        },
    }
    for what, message in forged.items():
        signature = key.sign_typed_data(full_message=copy.deepcopy(message)).signature.to_0x_hex()
        refused = env.call("POST", f"/requests/{req['id']}/signatures", "psb", json={"signature": signature})
        assert (refused.status_code, refused.json()["error"]["code"]) == (422, "INVALID_SIGNATURE"), what
        assert ok(env.call("GET", f"/requests/{req['id']}/terms", "psb"))["signed_by"] == [], what
    signature = key.sign_typed_data(full_message=copy.deepcopy(typed)).signature.to_0x_hex()
    taken = ok(env.call("POST", f"/requests/{req['id']}/signatures", "psb", json={"signature": signature}))
    assert taken["status"] == "awaiting_counter_signature" and taken["signing"]["signed_by"] == ["consumer"]


class _QuickHead(BoundedHttpToolsProtocol):
    """The service's protocol with its head timeout shortened, so a test need not wait ten seconds."""

    head_timeout = 0.5


def test_a_head_held_back_is_answered_408_and_its_connection_closed(tmp_path: Path) -> None:
    """uvicorn timed out only a connection idle between requests: one that opened and sent nothing, or a
    head a byte at a time, held its socket for good (a few thousand took every descriptor the server had).
    A head is due within the timeout of the opening, or of its first byte for a later request; a body within
    its own timeout of the head (a byte at a time, it was read for as long as the client liked)."""
    settings = ApiSettings(  # no ledger: the protocol answers before any route would need one
        home=tmp_path,
        keystore_passphrase=SecretStr("unused-passphrase"),
        audit_follow_interval=0,
        inspection_draw_interval=0,
    )
    app = create_app(settings, connect=False, body_timeout=2.0)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", http=_QuickHead)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        until(lambda: server.started, "the server to start")
        address = ("127.0.0.1", port)
        with socket.create_connection(address, timeout=10) as silent:
            started = time.monotonic()
            answer = read_to_end(silent)  # sends nothing at all
        assert 0.4 < time.monotonic() - started < 5
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert json.loads(body)["error"]["code"] == "REQUEST_TIMEOUT"
        _carries_the_security_headers(answer)
        with socket.create_connection(address, timeout=10) as trickle:
            trickle.sendall(b"GET /healthz HTTP/1.1\r\nHost: dxl\r\n\r\n")  # answered at once
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                for byte in b"GET /healthz HTTP/1.1\r\nHost: dxl\r\n":  # the next head, a byte at a time
                    time.sleep(0.05)
                    trickle.sendall(bytes([byte]))
            answer = read_to_end(trickle)
        assert answer.startswith(b"HTTP/1.1 200 ") and b"HTTP/1.1 408 " in answer, answer[:400]
        with socket.create_connection(address, timeout=10) as slow_body:
            slow_body.sendall(b"POST /verify HTTP/1.1\r\nHost: dxl\r\nContent-Type: application/json\r\n"
                              b"Content-Length: 2\r\nConnection: close\r\n\r\n")  # fmt: skip
            time.sleep(1.0)
            slow_body.sendall(b"{}")
            answer = read_to_end(slow_body)
        assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]  # the body's request was answered
        with socket.create_connection(address, timeout=10) as trickle:
            trickle.sendall(b"POST /verify HTTP/1.1\r\nHost: dxl\r\nContent-Type: application/json\r\n"
                            b"Content-Length: 1000\r\n\r\n")  # fmt: skip
            started = time.monotonic()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                while not select.select([trickle], [], [], 0.1)[0] and time.monotonic() - started < 8:
                    trickle.sendall(b" ")  # a byte of body every tenth of a second
            answer = read_to_end(trickle)
        assert 1.5 < time.monotonic() - started < 8
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 ") and b"connection: close" in head.lower(), answer[:200]
        assert json.loads(body)["error"]["code"] == "REQUEST_TIMEOUT"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_an_idle_connection_outlives_a_pooling_clients_own_expiry(tmp_path: Path) -> None:
    """httpx drops a pooled connection idle for 5 s, uvicorn closed one idle for 5 s: a request sent on a
    connection at that moment met the server's close and was lost ("server disconnected without sending a
    response"). The server keeps an idle connection open past the client's expiry, so the client closes
    first; the second request here, after 5.5 s idle on one socket, is answered."""
    client_expiry = httpx.Limits().keepalive_expiry
    assert client_expiry is not None and client_expiry < KEEP_ALIVE_SECONDS
    settings = ApiSettings(  # no ledger: /healthz answers without one
        home=tmp_path,
        keystore_passphrase=SecretStr("unused-passphrase"),
        audit_follow_interval=0,
        inspection_draw_interval=0,
    )
    with ServerThread(create_app(settings, connect=False)) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            request = b"GET /healthz HTTP/1.1\r\nHost: dxl\r\n\r\n"
            sock.sendall(request)
            first = read_one_response(sock)
            assert first.startswith(b"HTTP/1.1 200 "), first[:200]
            time.sleep(5.5)
            sock.sendall(request)
            second = read_one_response(sock)
        assert second.startswith(b"HTTP/1.1 200 "), second[:200]


@pytest.mark.parametrize(
    "name",
    [
        "Public\u202eSecurity",
        "Bureau\x1b[2J",
        "Two\nlines",
        "Tab\tbed",
        "Zero\u200bwidth",
        "Bidi\u2066isolate",
        "Line\u2028separator",
        "Paragraph\u2029separator",
        "Trailing space ",
        "\u3000Ideographic space",
        "   ",
        "\u200d",
        "\u200c\u200d",
    ],
    ids=[
        "right-to-left-override",
        "terminal-escape",
        "newline",
        "tab",
        "zero-width-space",
        "bidi-isolate",
        "line-separator",
        "paragraph-separator",
        "trailing-space",
        "leading-ideographic-space",
        "blank",
        "joiner-alone",
        "joiners-alone",
    ],
)
def test_a_department_name_that_would_read_otherwise_is_refused_and_nothing_proposed(
    api_env: ApiEnv, name: str
) -> None:
    """A department's name is kept on chain and read by governors before they approve: a bidirectional
    override shows its letters in another order, a terminal escape clears the screen it is printed on. One
    line of visible text, in any script, is taken; anything else is 422 before a proposal is made."""
    env = api_env
    body = {
        "action": "admit_department",
        "code": "NAMED",
        "signer": "0x" + "12" * 20,
        "encryption_key": b32(),
    }
    before = len(ok(env.call("GET", "/governance/proposals", "governor-1")))
    refused = env.call("POST", "/governance/proposals", "governor-1", json={**body, "name": name})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == "admit_department.name"
    assert len(ok(env.call("GET", "/governance/proposals", "governor-1"))) == before


def test_a_department_name_in_any_script_is_taken(api_env: ApiEnv) -> None:
    """Joiners that Arabic, Persian and Indic scripts and emoji need are text, not controls."""
    persian = "\u0648\u0632\u0627\u0631\u062a\u200c\u062e\u0627\u0646\u0647"  # a word joined by a ZWNJ
    name = f"市公安局 · {persian} · \U0001f469\u200d\U0001f4bc Bureau"
    body = {"action": "admit_department", "code": "SCRIPTS", "signer": "0x" + "13" * 20,
            "encryption_key": b32(), "name": name}  # fmt: skip
    proposed = ok(api_env.call("POST", "/governance/proposals", "governor-1", json=body), 201)
    assert proposed["record"]["parameters"]["name"] == name


@pytest.mark.parametrize(
    "raw",
    [
        b"FOO /resources HTTP/1.1\r\nHost: dxl\r\n\r\n",
        b"POST /resources HTTP/1.1\r\nHost: dxl\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\n{}\r\n0\r\n\r\n",
        b"POST /resources HTTP/1.1\r\nHost: dxl\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\n{}",
        b"POST /resources HTTP/1.1\r\nHost: dxl\r\nContent-Length: -1\r\n\r\n",
        b"POST /resources HTTP/1.1\r\nHost: dxl\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        b"GET /resources/\xff HTTP/1.1\r\nHost: dxl\r\n\r\n",
    ],
    ids=[
        "unknown-method",
        "length-and-chunked",
        "two-lengths",
        "negative-length",
        "bad-chunk",
        "raw-byte-in-path",
    ],
)
def test_a_request_that_is_not_http_is_answered_400_with_the_error_body(api_env: ApiEnv, raw: bytes) -> None:
    """The parser's refusals were uvicorn's line of plain text, with no code a client could switch on."""
    port = int(api_env.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(raw)
        answer = read_to_end(conn)  # the connection is closed after the answer
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"content-type: application/json" in head.lower(), answer
    error = json.loads(body)["error"]
    assert error["code"] == "MALFORMED_REQUEST" and "not well-formed HTTP/1.1" in error["message"], error


def _carries_the_security_headers(answer: bytes) -> None:
    """api/README (Tokens): every answer carries these, a data answer's policy being `default-src 'none'`."""
    head = answer.partition(b"\r\n\r\n")[0].lower().split(b"\r\n")[1:]
    headers = dict(line.split(b": ", 1) for line in head)
    assert (headers.get(b"cache-control"), headers.get(b"x-content-type-options")) == (
        b"no-store",
        b"nosniff",
    )
    assert (headers.get(b"x-frame-options"), headers.get(b"referrer-policy")) == (b"deny", b"no-referrer")
    assert headers.get(b"content-security-policy") == b"default-src 'none'; frame-ancestors 'none'", answer


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /healthz HTTP/1.1\r\nHost: dxl\r\nX-Padding: " + b"a" * 70_000 + b"\r\n\r\n", b"431"),
        (b"BREW /resources HTTP/1.1\r\nHost: dxl\r\n\r\n", b"400"),
    ],
    ids=["head-too-large", "not-http"],
)
def test_the_answers_the_protocol_writes_itself_carry_the_security_headers(
    api_env: ApiEnv, raw: bytes, status: bytes
) -> None:
    """The answers written before any route runs (a head over its bound, a request that is not HTTP) carry
    the headers every answer does: they were written without them."""
    port = int(api_env.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(raw)
        answer = read_to_end(conn)
    assert answer.startswith(b"HTTP/1.1 " + status + b" "), answer[:200]
    _carries_the_security_headers(answer)


@pytest.mark.parametrize(("who", "status", "code"), [(None, 401, "UNAUTHENTICATED"), ("psb", 200, None)])
def test_a_websocket_handshake_is_answered_as_the_plain_request_it_also_is(
    api_env: ApiEnv, who: str | None, status: int, code: str | None
) -> None:
    """The service has no WebSocket route: uvicorn upgraded the connection and the app refused the handshake,
    a 403 with no body and no code, whatever the token."""
    port = int(api_env.url.rsplit(":", 1)[1])
    token = f"Authorization: Bearer {api_env.tokens['demo-' + who]}\r\n".encode() if who else b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"GET /me HTTP/1.1\r\nHost: dxl\r\n" + token + b"Upgrade: websocket\r\n"
                     b"Connection: Upgrade, close\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     b"Sec-WebSocket-Version: 13\r\n\r\n")  # fmt: skip
        answer = read_to_end(conn)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status), answer
    assert json.loads(body).get("error", {}).get("code") == code, body


@pytest.mark.parametrize("ident", [2**64, 2**256 - 1], ids=["2**64", "uint256-max"])
def test_a_manifest_with_ids_past_64_bits_is_checked(api_env: ApiEnv, ident: int) -> None:
    """A manifest's ids are uint256, as ``dxl verify`` reads them: no delivery on chain (its ids are uint64)
    can carry them, and the verdict says the delivery is not recorded, not that the body is not JSON."""
    body = {"manifest": {**_manifest("bytes", 0, 0), "agreement_id": ident, "grant_id": ident}}
    assert ok(api_env.call("POST", "/verify", "auditor", json=body))["status"] == "NOT_RECORDED"


def test_a_number_past_any_field_is_refused_as_such(api_env: ApiEnv) -> None:
    """Valid JSON, refused for what it holds: an id of 400 digits, past a double's range."""
    raw = json.dumps({"manifest": _manifest("bytes", 0, 0)}).replace(
        '"agreement_id": null', '"agreement_id": 1' + "0" * 400
    )
    response = api_env.call(
        "POST", "/verify", "auditor", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", "body")
    assert error["message"].startswith("the body holds a number too large for any field"), error["message"]


def test_two_authorization_headers_are_refused_before_either_is_acted_on(api_env: ApiEnv) -> None:
    """A request acts as one principal: of two tokens, the service took the first and a proxy in front of it
    may log or check the last. Refused 401 before anything looks at either, nor its Idempotency-Key claimed
    (a retry with one token is a first request), nothing recorded."""
    psb, hrss = (f"Bearer {api_env.tokens['demo-' + who]}" for who in ("psb", "hrss"))
    for pair in ([psb, hrss], [psb, psb], [psb, "Bearer nope"]):
        response = api_env.client.get("/me", headers=[("Authorization", value) for value in pair])
        assert response.status_code == 401, response.text
        error = response.json()["error"]
        assert error["code"] == "UNAUTHENTICATED" and "one Authorization header" in error["message"]
    body = {"metadata_hash": b32(), "schema_hash": b32(), "share_type": "not_shared"}
    key = ("Idempotency-Key", "two-tokens-" + b32()[2:12])
    refused = api_env.client.post(
        "/resources", json=body, headers=[("Authorization", psb), ("Authorization", hrss), key]
    )
    assert refused.status_code == 401, refused.text
    taken = api_env.client.post("/resources", json=body, headers=[("Authorization", psb), key])
    assert taken.status_code == 201 and "idempotent-replayed" not in taken.headers, taken.text

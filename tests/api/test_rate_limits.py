"""Request rates over real HTTP: one principal over its rate, and an address whose requests keep failing
authentication, are refused 429 with Retry-After before anything runs; the others are served."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from api.auth import issue_token, parse_principal
from api.db import make_engine, session_factory
from api.settings import ApiSettings
from node.anvil import EmbeddedNode
from node.tls import tls_context
from tests.api.api_helpers import ApiEnv, api_home, b32, make_settings, ok, served
from tests.rpc_proxy import RpcProxy

pytestmark = pytest.mark.xdist_group("api-rate-limits")


@contextmanager
def _served_with(node: EmbeddedNode, factory: pytest.TempPathFactory, **limits: Any) -> Iterator[ApiEnv]:
    settings = make_settings(api_home(factory, "api-rates"), node)
    quiet = {"audit_follow_interval": 0, "chain_watch_interval": 0, "inspection_draw_interval": 0, **limits}
    with served(settings.model_copy(update=quiet), node) as env:
        yield env


def _resources(env: ApiEnv) -> int:
    return len(ok(env.call("GET", "/resources", "auditor", params=env.indexed(limit=500))))


def _refused(response: httpx.Response, code: str) -> int:
    assert response.status_code == 429, f"{response.status_code}: {response.text}"
    assert response.json()["error"]["code"] == code, response.text
    wait = int(response.headers["Retry-After"])
    assert 1 <= wait == response.json()["error"]["retry_after"]
    return wait


def test_a_principal_over_its_rate_is_refused_429_and_nothing_recorded_while_the_others_are_served(
    embedded_node: EmbeddedNode, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with _served_with(embedded_node, tmp_path_factory, api_rate_limit=2, api_rate_burst=5) as env:
        before = _resources(env)
        for _ in range(5):
            ok(env.call("GET", "/me", "psb"))
        _refused(env.call("GET", "/me", "psb"), "RATE_LIMITED")
        # Another principal draws on a budget of its own.
        for _ in range(5):
            ok(env.call("GET", "/me", "hrss"))
        # A second token of the same department does not bring a second budget.
        with session_factory(make_engine(env.settings.effective_database_url))() as session:
            second = issue_token(session, principal=parse_principal("PSB"), name="psb-second")
            session.commit()
        other = {"Authorization": f"Bearer {second}"}
        _refused(env.client.get("/me", headers=other), "RATE_LIMITED")  # its first request included
        # A write refused for its rate records nothing, and its key is not taken: the retry after the wait
        # does the work once.
        body = {"metadata_hash": b32(), "schema_hash": b32(), "share_type": "conditional", "sensitivity": 2}
        key = {"Idempotency-Key": "rate-limited-write"}
        wait = _refused(env.call("POST", "/resources", "psb", json=body, headers=key), "RATE_LIMITED")
        assert _resources(env) == before
        time.sleep(wait)
        created = env.call("POST", "/resources", "psb", json=body, headers=key)
        assert created.status_code == 201, created.text
        assert "idempotent-replayed" not in created.headers
        assert _resources(env) == before + 1


def _new_token(env: ApiEnv, principal: str, name: str) -> dict[str, str]:
    with session_factory(make_engine(env.settings.effective_database_url))() as session:
        token = issue_token(session, principal=parse_principal(principal), name=name)
        session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_a_new_tokens_first_requests_are_charged_to_its_principal_one_by_one_or_all_at_once(
    embedded_node: EmbeddedNode, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A token the service has not answered yet draws on its principal's budget from its first request: its
    first request, and every request it sends before the first answer, ran free of any rate."""
    with _served_with(embedded_node, tmp_path_factory, api_rate_limit=0.05, api_rate_burst=4) as env:
        one_by_one = _new_token(env, "HEALTH", "health-new")
        for _ in range(4):
            ok(env.client.get("/me", headers=one_by_one))
        _refused(env.client.get("/me", headers=one_by_one), "RATE_LIMITED")

        at_once = _new_token(env, "SAMR", "samr-new")
        start = threading.Barrier(8)

        def me() -> int:
            with httpx.Client(base_url=env.url, timeout=30, verify=tls_context()) as client:
                start.wait()
                return client.get("/me", headers=at_once).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = sorted(pool.map(lambda _: me(), range(8)))
        assert statuses == [200] * 4 + [429] * 4, statuses
        # A write of a token never answered before is refused for its principal's rate, recording nothing.
        writer = _new_token(env, "SAMR", "samr-writer")
        body = {"metadata_hash": b32(), "schema_hash": b32(), "share_type": "conditional", "sensitivity": 2}
        before = _resources(env)
        _refused(env.client.post("/resources", json=body, headers=writer), "RATE_LIMITED")
        assert _resources(env) == before


def test_an_address_failing_authentication_is_refused_429_and_tokens_known_good_are_not(
    embedded_node: EmbeddedNode, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with _served_with(
        embedded_node, tmp_path_factory, api_auth_failure_limit=1, api_auth_failure_burst=5
    ) as env:
        ok(env.call("GET", "/me", "psb"))  # known good from now on
        made_up = {"Authorization": "Bearer dxl_" + "A" * 43}
        for _ in range(5):
            assert env.client.get("/me", headers=made_up).status_code == 401
        wait = _refused(env.client.get("/me", headers=made_up), "AUTHENTICATION_RATE_LIMITED")
        _refused(env.client.get("/me"), "AUTHENTICATION_RATE_LIMITED")  # no token at all
        # A valid token not used yet from this address waits with the bad ones; one known good does not.
        _refused(env.call("GET", "/me", "hrss"), "AUTHENTICATION_RATE_LIMITED")
        for _ in range(10):
            ok(env.call("GET", "/me", "psb"))
        time.sleep(wait)  # one failure's worth refilled
        ok(env.call("GET", "/me", "hrss"))
        assert env.client.get("/me", headers=made_up).status_code == 401
        _refused(env.client.get("/me", headers=made_up), "AUTHENTICATION_RATE_LIMITED")


@pytest.mark.parametrize("trusted", ["", "127.0.0.1"], ids=["no-proxy", "behind-a-proxy"])
def test_failed_authentications_count_against_the_peer_unless_a_trusted_proxy_names_the_client(
    embedded_node: EmbeddedNode, tmp_path_factory: pytest.TempPathFactory, trusted: str
) -> None:
    """A local client naming a new address in X-Forwarded-For each time got a fresh budget of failed
    authentications each time (uvicorn believes that header from 127.0.0.1 by default); the header is believed
    only from a proxy the operator named."""
    with _served_with(
        embedded_node,
        tmp_path_factory,
        api_auth_failure_limit=0.01,
        api_auth_failure_burst=3,
        api_trusted_proxies=trusted,
    ) as env:
        made_up = {"Authorization": "Bearer dxl_" + "B" * 43}
        answers = [
            env.client.get("/me", headers={**made_up, "X-Forwarded-For": f"198.51.100.{n}"}).status_code
            for n in range(1, 6)
        ]
        if trusted:
            assert answers == [401] * 5  # each client its own budget, as the proxy names them
        else:
            assert answers == [401] * 3 + [429] * 2  # one peer, one budget, whatever the header says


def test_a_principal_past_its_concurrency_waits_its_turn_while_the_others_are_served(
    embedded_node: EmbeddedNode, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """One department's slow requests held every thread of the service (48 concurrent checks of 8 MB
    payloads took another department's GET /me from 5 ms to 4 s): past its concurrency, a principal's next
    request waits for one of its own to finish, and another principal's does not wait."""
    with (
        RpcProxy(embedded_node.endpoint.rpc_url) as proxy,
        _served_with(embedded_node, tmp_path_factory, api_concurrency=1, rpc_url=proxy.url) as env,
    ):
        ok(env.call("GET", "/me", "psb"))
        ok(env.call("GET", "/me", "hrss"))
        proxy.delay_s, proxy.delay_sends = 3.0, 1  # PSB's write waits 3 s for the node's answer
        body = {"metadata_hash": b32(), "schema_hash": b32(), "share_type": "conditional", "sensitivity": 2}
        written: list[httpx.Response] = []
        slow = threading.Thread(
            target=lambda: written.append(env.call("POST", "/resources", "psb", json=body))
        )
        slow.start()
        try:
            time.sleep(0.5)  # the write is in progress, its transaction sent
            started = time.monotonic()
            ok(env.call("GET", "/me", "hrss"))
            assert time.monotonic() - started < 1.5
            started = time.monotonic()
            ok(env.call("GET", "/me", "psb"))  # its turn comes once the write is answered
            assert time.monotonic() - started > 1.5
        finally:
            slow.join()
        assert written[0].status_code == 201, written[0].text
        assert proxy.sends == 1


def test_token_buckets_refill_at_their_rate_and_keep_only_the_newest_keys() -> None:
    """A flood of new keys (addresses, say) forgets the oldest rather than growing the process."""
    from api.limits import TokenBuckets
    from api.settings import Rate

    buckets = TokenBuckets(Rate(per_second=2, burst=3), max_keys=100)
    assert [buckets.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a", 0.0) == pytest.approx(0.5) == buckets.wait("a", 0.0)
    assert buckets.take("a", 0.5) == 0.0  # one refilled in half a second
    buckets.charge("b", 0.0)
    assert buckets.wait("b", 0.0) == 0.0
    for key in range(1_000):
        buckets.charge(key, 1.0)
    assert buckets.wait("a", 1.0) == 0.0 and len(buckets._buckets) == 100  # "a" forgotten: full again


@pytest.mark.parametrize("value", ["localhost", "10.0.0.0/33", "127.0.0.1,,nope"])
def test_a_trusted_proxy_that_is_not_an_address_is_refused_at_start(value: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="a trusted proxy is an address, a network or"):
        ApiSettings(home=tmp_path, api_trusted_proxies=value)
    assert ApiSettings(home=tmp_path, api_trusted_proxies="127.0.0.1, 10.0.0.0/8").api_trusted_proxies

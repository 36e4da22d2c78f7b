"""The API's audit follower: deliveries reach /audit/history without anyone indexing by hand; POST
/audit/index stays safe beside it; it stops at shutdown; interval 0 disables it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.demo import ensure_demo_tokens
from api.settings import ApiSettings, load_api_settings
from node.anvil import EmbeddedNode
from node.audit.follower import AuditFollower, redact
from node.errors import ConfigurationError
from node.provision import setup_ledger
from node.tls import tls_context
from tests.api.api_helpers import ApiEnv, ServerThread, api_home, delivery_between, make_settings, ok

# One deployment per module: keep the module's tests on one xdist worker.
pytestmark = pytest.mark.xdist_group("audit-follower")

#: Bound of every wait for the follower; generous for a loaded 2-core machine, never reached when it works.
WAIT = 20.0


@pytest.mark.parametrize(("interval", "runs"), [(0.2, True), (0.0, False)])
def test_the_follower_stops_at_shutdown_and_zero_disables_it(
    tmp_path: Path, interval: float, runs: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A process runs one follower, and another app of this worker (this module's served one, a session's API)
    # may hold the slot: this app gets a free slot of its own, whatever ran before; the holder is restored.
    monkeypatch.setattr("node.audit.follower._running", None)
    # No deployment in this home: the follower keeps failing (and backing off) without ending the app.
    settings = ApiSettings(
        home=tmp_path, database_url=f"sqlite:///{tmp_path / 'api.sqlite3'}", audit_follow_interval=interval
    )
    app = create_app(settings, connect=False)
    with TestClient(app) as client:
        follower = app.state.dxl.extra["audit_follower"]
        assert (follower is not None) == runs
        if follower is not None:
            deadline = time.monotonic() + WAIT
            while follower.failures == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert follower.failures >= 1 and follower.alive
        assert client.get("/healthz").status_code == 200
    if follower is not None:
        assert not follower.alive


@dataclass
class FollowedApi(ApiEnv):
    """The module's service, with its app: the tests read the follower it runs."""

    app: FastAPI = field(kw_only=True)


@pytest.fixture(scope="module")
def served(embedded_node: EmbeddedNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FollowedApi]:
    base = make_settings(api_home(tmp_path_factory, "follower-home"), embedded_node)
    settings = base.model_copy(update={"audit_follow_interval": 0.2})
    setup = setup_ledger(embedded_node.endpoint, settings, dev_funding=True)
    tokens = {k: v for k, v in ensure_demo_tokens(settings).items() if v is not None}
    # The audit context is opened from the settings the app is given (nothing in the environment names them).
    app = create_app(settings)
    with ServerThread(app) as url, httpx.Client(base_url=url, timeout=120, verify=tls_context()) as client:
        served = FollowedApi(url, settings, setup, tokens, client, dict(setup.report.departments), app=app)
        yield served
    follower = app.state.dxl.extra["audit_follower"]
    assert isinstance(follower, AuditFollower) and not follower.alive


def _delivered(env: ApiEnv, delivery_id: str) -> list[dict[str, Any]]:
    page = ok(
        env.call("GET", "/audit/history", "auditor", params={"event": "DeliveryRecorded", "limit": 500})
    )
    return [i for i in page["items"] if i["delivery_id"] == delivery_id]


def _wait_for(env: ApiEnv, delivery_id: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        found = _delivered(env, delivery_id)
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(
        f"delivery {delivery_id} not in /audit/history within {WAIT} s (the follower did not index it)"
    )


def test_a_recorded_delivery_reaches_history_without_indexing_by_hand(served: FollowedApi) -> None:
    follower = served.app.state.dxl.extra["audit_follower"]
    assert isinstance(follower, AuditFollower) and follower.alive and follower.interval == 0.2
    record = delivery_between(served, "hrss", "psb")
    [item] = _wait_for(served, record["delivery_id"])
    assert item["location"]["block_number"] == record["recorded_in_block"]
    assert item["commitment"] == record["commitment"]


def test_index_by_hand_is_safe_while_the_follower_runs(served: FollowedApi) -> None:
    """Manual syncs race the follower on fresh blocks: every one answers 200 and no event is stored twice."""
    record = delivery_between(served, "hrss", "psb")
    answers: list[int] = []

    def index() -> None:
        for _ in range(3):
            answers.append(served.call("POST", "/audit/index", "auditor").status_code)

    threads = [threading.Thread(target=index) for _ in range(3)]
    for t in threads:
        t.start()
    delivery_between(served, "psb", "hrss")  # more blocks while the syncs run
    for t in threads:
        t.join(timeout=WAIT)
    assert answers == [200] * 9
    assert len(_wait_for(served, record["delivery_id"])) == 1
    follower = served.app.state.dxl.extra["audit_follower"]
    assert follower.alive and follower.failures == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2.5", 2.5),
        ("0", 0.0),
        ("-1", ConfigurationError),
        ("soon", ConfigurationError),
        ("inf", ConfigurationError),
    ],
)
def test_follow_interval_setting(monkeypatch: pytest.MonkeyPatch, value: str, expected: Any) -> None:
    monkeypatch.setenv("DXL_AUDIT_FOLLOW_INTERVAL", value)
    if isinstance(expected, type):
        with pytest.raises(expected, match="DXL_AUDIT_FOLLOW_INTERVAL"):
            load_api_settings()
    else:
        assert load_api_settings().audit_follow_interval == expected


@pytest.mark.parametrize(
    ("text", "logged"),
    [
        ("no usable JSON-RPC answer from https://ops:s3cret@node:8545: refused", "https://***@node:8545"),
        ("no usable JSON-RPC answer from http://127.0.0.1:8545: refused", "http://127.0.0.1:8545"),
    ],
)
def test_failures_are_logged_without_url_credentials(text: str, logged: str) -> None:
    assert logged in redact(text) and "s3cret" not in redact(text)


def test_only_one_follower_per_process(served: FollowedApi, tmp_path: Path) -> None:
    settings = ApiSettings(
        home=tmp_path, database_url=f"sqlite:///{tmp_path / 'api.sqlite3'}", audit_follow_interval=0.2
    )
    second = create_app(settings, connect=False)
    with TestClient(second):
        assert second.state.dxl.extra["audit_follower"] is None
    assert served.app.state.dxl.extra["audit_follower"].alive

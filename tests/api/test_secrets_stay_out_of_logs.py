"""Key custody: private keys, the keystore passphrase and API tokens never reach the logs, whatever happens.

The service logs at DEBUG here (every logger, uvicorn's included) while a whole exchange runs, plus the error
paths most likely to echo their input: a wrong token, a malformed body, a contract revert, a forged signature.
"""

from __future__ import annotations

import logging

import pytest

from tests.api.api_helpers import PASSPHRASE, ApiEnv, delivery_between, grant_between

# One deployment per module: keep the module's tests on one xdist worker.
pytestmark = pytest.mark.xdist_group("api-secrets-in-logs")


def delivery(grant_id: int) -> dict[str, object]:
    return {
        "delivery_id": "0x" + "ab" * 32,
        "grant_id": grant_id,
        "commitment": "0x" + "cd" * 32,
        "byte_size": 1,
    }


def test_no_secret_is_ever_logged(api_env: ApiEnv, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        delivery_between(api_env, "psb", "hrss")
        grant = grant_between(api_env, "psb", "hrss")
        statuses = [
            api_env.call("POST", f"/grants/{grant['id']}/revoke", "psb").status_code,
            api_env.client.get(
                "/resources", headers={"Authorization": "Bearer dxl_not-a-real-token"}
            ).status_code,
            api_env.call("POST", "/resources", "psb", json={"metadata_hash": "0x12"}).status_code,
            api_env.call("POST", "/deliveries", "psb", json=delivery(grant["id"])).status_code,
            api_env.call(
                "POST", "/requests/1/signatures", "hrss", json={"signature": "0x" + "11" * 65}
            ).status_code,
        ]
    assert statuses[0] == 200 and statuses[1] == 401 and statuses[2] == 422
    assert (
        400 <= statuses[3] < 500 and 400 <= statuses[4] < 500
    )  # revoked grant; forged or misplaced signature

    secrets = {"passphrase": PASSPHRASE}
    for name in api_env.keystore.names():
        key = bytes(api_env.keystore.unlock(name).key).hex()
        secrets[f"{name} key"] = key
    secrets.update({f"token {name}": token for name, token in api_env.tokens.items()})
    text = caplog.text.lower()
    assert len(caplog.records) > 0, "nothing was logged: the check would prove nothing"
    leaked = [what for what, secret in secrets.items() if secret.lower() in text]
    assert not leaked, f"secrets in the logs: {leaked}"

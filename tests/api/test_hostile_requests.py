"""Requests a hostile department or an outsider would send: cheap to send, costly or revealing to answer.
Each is answered with a declared 4xx before the work it would cost, and records nothing."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from api_helpers import ApiEnv, ok

from api.limits import MAX_PAYLOAD_LEAVES

# One deployment per module: keep the module's tests on one xdist worker.
pytestmark = pytest.mark.xdist_group("api-hostile-requests")


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
    huge = _payload_body(fmt, unit * 6_000_000)
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

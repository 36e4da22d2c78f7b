"""The audit decoder agrees with web3's event decoding on every log of the scenario, and refuses malformed
words instead of guessing."""

from __future__ import annotations

from typing import Any

import pytest

from node.audit.errors import AuditError
from node.audit.events import EventCodec
from tests.audit.audit_scenario import Scenario


def _web3_view(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


def test_decoder_matches_web3_on_every_scenario_log(scenario: Scenario, codec: EventCodec) -> None:
    w3 = scenario.client.w3
    logs = w3.eth.get_logs({"address": scenario.contract, "fromBlock": scenario.start_block,
                            "toBlock": "latest"})  # fmt: skip
    reference = scenario.client.decode_logs(logs)
    assert len(reference) == len(logs) > 30
    for log, ref in zip(logs, reference, strict=True):
        name, fields = codec.decode(
            ["0x" + bytes(t).hex() for t in log["topics"]], "0x" + bytes(log["data"]).hex()
        )
        assert name == ref.name
        assert fields == {k: _web3_view(v) for k, v in ref.args.items()}


@pytest.mark.parametrize(
    ("event", "topics", "data", "message"),
    [
        ("GrantRevoked", ["0x" + "ff" * 32, "0x" + "00" * 31 + "01"], "0x", "above its width"),
        (
            "RequestApproved",
            ["0x" + "00" * 31 + "01", "0x" + "00" * 31 + "02"],
            "0x" + "00" * 31 + "02",
            "neither 0 nor 1",
        ),
        (
            "RequestApproved",
            ["0x" + "00" * 31 + "01", "0x" + "00" * 31 + "02"],
            "0x" + "00" * 31,
            "bytes, expected",
        ),
        ("GrantRevoked", ["0x" + "00" * 31 + "01"], "0x", "indexed topics"),
    ],
)
def test_malformed_logs_are_refused(
    codec: EventCodec, event: str, topics: list[str], data: str, message: str
) -> None:
    with pytest.raises(AuditError, match=message):
        codec.decode([codec.topic_of(event), *topics], data)


def test_unknown_topic(codec: EventCodec) -> None:
    with pytest.raises(AuditError, match="not an event"):
        codec.decode(["0x" + "12" * 32], "0x")

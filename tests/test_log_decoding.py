"""One decoder of the contracts' logs: the verifier's (``verifier/abi.py``).

``dxl verify`` reads with it, the chain client's ``decode_logs`` / ``get_logs`` (``node/chain.py``) and the
audit trail's codec (``node/audit/events.py``, its one-word fast paths the verifier's word decoders) decode
with it, so that a log reads the same to the service, the audit trail and an auditor. web3's event decoding
is imported nowhere, and every event of every contract decodes alike through the audit codec and the
verifier's decoder, from logs encoded by eth-abi, a library apart.
"""

from __future__ import annotations

import ast
from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from node.audit.events import EventCodec
from node.compiler import load_artifact
from node.paths import PROJECT_ROOT
from verifier import abi as abi_codec
from verifier.eth import to_checksum_address

CONTRACTS = ("DataExchangeLedger", "ReceiptAnchors", "SharingPractice")
#: web3's event decoding: the module and the names that decode a log by an event's ABI.
WEB3_EVENT_DECODING = {"web3._utils.events", "get_event_data", "process_log", "process_receipt"}


def _web3_event_decoding(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = {node.module} | {a.name for a in node.names}
            found += [(node.lineno, n) for n in sorted(names & WEB3_EVENT_DECODING)]
        elif isinstance(node, ast.Attribute) and node.attr in WEB3_EVENT_DECODING:
            found.append((node.lineno, node.attr))
    return found


def test_no_module_decodes_logs_with_web3() -> None:
    found = {
        f"{path.relative_to(PROJECT_ROOT)}:{line}": name
        for top in ("node", "api", "dxl", "verifier")
        for path in sorted((PROJECT_ROOT / top).rglob("*.py"))
        for line, name in _web3_event_decoding(ast.parse(path.read_text(encoding="utf-8")))
    }
    assert found == {}
    probe = "from web3._utils.events import get_event_data\nx = contract.events.E().process_log(log)\n"
    assert [n for _, n in _web3_event_decoding(ast.parse(probe))] == ["get_event_data", "web3._utils.events",
                                                                      "process_log"]  # fmt: skip


def _value(abi_type: str, n: int) -> Any:
    """A value of ``abi_type`` that differs from one parameter to the next (``n``)."""
    if abi_type.startswith("uint"):
        return (1 << int(abi_type[4:] or 256)) - 1 - n  # the widest value the type holds, near enough
    if abi_type.startswith("int"):
        return -(1 << (int(abi_type[3:] or 256) - 1)) + n
    if abi_type == "bool":
        return n % 2 == 1
    if abi_type == "address":
        return to_checksum_address(bytes([n + 1]) * 20)
    if abi_type == "string":
        return f"数据 {n}"
    if abi_type == "bytes":
        return bytes(range(n, n + 40))
    if abi_type.startswith("bytes"):
        return bytes([n + 7]) * int(abi_type[5:])
    raise AssertionError(f"no sample value for {abi_type}")


def _canonical(value: Any) -> Any:
    """As the audit codec gives a field: bytes as 0x-hex, the rest as they are."""
    return "0x" + value.hex() if isinstance(value, bytes) else value


def _events() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{name}.{e['name']}", e)
        for name in CONTRACTS
        for e in load_artifact(name).abi
        if e.get("type") == "event" and not e.get("anonymous")
    ]


@pytest.mark.parametrize(("label", "event"), _events(), ids=[label for label, _ in _events()])
def test_every_event_decodes_alike_through_the_audit_codec_and_the_verifiers_decoder(
    label: str, event: dict[str, Any]
) -> None:
    inputs = event["inputs"]
    values = {p["name"]: _value(abi_codec.type_of(p), i) for i, p in enumerate(inputs)}
    topics = [abi_codec.event_topic(event)]
    for p in (p for p in inputs if p["indexed"]):
        t, v = abi_codec.type_of(p), values[p["name"]]
        encoded = v.encode() if t == "string" else v
        topics.append(keccak(encoded) if t in ("string", "bytes") else abi_encode([t], [v]))
    plain = [p for p in inputs if not p["indexed"]]
    data = abi_encode([abi_codec.type_of(p) for p in plain], [values[p["name"]] for p in plain])

    verified = abi_codec.decode_log(event, topics, data)
    name, fields = EventCodec([event]).decode(["0x" + t.hex() for t in topics], "0x" + data.hex())

    assert name == event["name"]
    assert fields == {k: _canonical(v) for k, v in verified.items()}
    hashed = {p["name"] for p in inputs if p["indexed"] and abi_codec.type_of(p) in ("string", "bytes")}
    assert {k: v for k, v in verified.items() if k not in hashed} == {
        k: v for k, v in values.items() if k not in hashed
    }

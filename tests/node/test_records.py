"""The typed records of the ledger's views (``node.types``) decode the fields the ABI declares, in its order.

A field added to, moved in or renamed in a Solidity struct fails here instead of being read into the wrong
attribute by position at run time.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
from eth_utils.address import to_checksum_address

from node.compiler import load_artifact
from node.types import (
    AccessRequest,
    Agreement,
    Department,
    Grant,
    InvalidCodeError,
    Proposal,
    Resource,
    admission_data,
)

Record = Department | Resource | AccessRequest | Agreement | Grant | Proposal
RECORDS: list[type[Record]] = [Department, Resource, AccessRequest, Agreement, Grant, Proposal]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _view_fields(view: str) -> list[str]:
    abi = load_artifact("DataExchangeLedger").abi
    (fn,) = [e for e in abi if e.get("type") == "function" and e["name"] == view]
    outputs = fn["outputs"]
    # A struct comes back as one tuple output; the proposal view answers its fields as separate outputs.
    params = outputs[0]["components"] if len(outputs) == 1 and outputs[0]["type"] == "tuple" else outputs
    return [_snake(p["name"]) for p in params]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.__name__)
def test_record_fields_follow_the_view_abi(record: type[Record]) -> None:
    fields = [f.name for f in dataclasses.fields(record)]
    assert fields[0] == "id"
    assert fields[1:] == _view_fields(record.VIEW)


def test_decode_turns_statuses_into_enums_and_addresses_into_checksums() -> None:
    raw = ("0x" + "ab" * 20, 2, b"PSB".ljust(32, b"\0"), b"\x01" * 32, "公安局", 3, False)
    dept = Department.decode(7, raw)
    assert (dept.id, dept.code, dept.status.name, dept.key_epoch) == (7, "PSB", "SUSPENDED", 3)
    assert dept.signer == to_checksum_address(raw[0]) != raw[0]
    with pytest.raises(ValueError):
        Grant.decode(1, (1, 2, 3))  # a tuple of another shape is refused, never read short


@pytest.mark.parametrize("code", ["tax", "TAX.GOV", "TAX-1", "1TAX", "T" * 33, "PSB\n", ""])
def test_admission_is_only_under_a_code_a_manifest_can_name(code: str) -> None:
    """The contract stores any non-zero bytes32, but a department admitted under a code outside
    verifier.departments' rule could never be named by its deliveries' manifests."""
    with pytest.raises(InvalidCodeError, match="upper-case letter"):
        admission_data(code, "Tax office", "0x" + "ab" * 20, b"\x01" * 32)
    assert admission_data("TAX_2", "Tax office", "0x" + "ab" * 20, b"\x01" * 32)

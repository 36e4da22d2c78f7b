"""The verifier's own Keccak, EIP-55, EIP-191 and ABI code agree with eth-account, eth-utils and eth-abi."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi.abi import decode as ref_decode
from eth_abi.abi import encode as ref_encode
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils.address import to_checksum_address as ref_checksum
from eth_utils.crypto import keccak as ref_keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier import abi
from verifier.eth import (
    SECP256K1_N,
    address_of_key,
    is_address,
    is_checksum_address,
    keccak,
    recover_personal_signer,
    sign_personal_message,
    to_checksum_address,
)
from verifier.onchain import load_ledger_abi

keys = st.integers(min_value=1, max_value=SECP256K1_N - 1).map(lambda k: k.to_bytes(32, "big"))


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=300), key=keys)
def test_signatures_match_eth_account_both_ways(data: bytes, key: bytes) -> None:
    account = Account.from_key(key)
    assert keccak(data) == ref_keccak(data)
    assert address_of_key(key) == account.address
    ours = sign_personal_message(data, key)
    assert ours == bytes(account.sign_message(encode_defunct(primitive=data)).signature)
    assert recover_personal_signer(data, ours) == account.address
    assert Account.recover_message(encode_defunct(primitive=data), signature=ours) == account.address


@settings(max_examples=60, deadline=None)
@given(raw=st.binary(min_size=20, max_size=20))
def test_checksum_addresses_match_eth_utils(raw: bytes) -> None:
    expected = ref_checksum(raw)
    assert to_checksum_address(raw) == to_checksum_address("0x" + raw.hex()) == expected
    assert is_checksum_address(expected) and is_address(expected) and is_address(expected.lower())
    swapped = expected[:2] + expected[2:].swapcase()
    assert not is_checksum_address(swapped) or swapped == expected


def test_an_address_is_its_digits_and_nothing_after() -> None:
    address = ref_checksum(b"\x11" * 20)
    assert is_address(address) and is_checksum_address(address)
    # A pattern's "$" also matches before a final newline.
    assert not is_address(address + "\n") and not is_checksum_address(address + "\n")
    with pytest.raises(ValueError, match="not an address"):
        to_checksum_address(address + "\n")


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (b"\x01" * 64, "65 bytes"),
        (b"\x01" * 64 + b"\x1d", "v is 29"),
        (b"\x00" * 32 + b"\x01" * 32 + b"\x1b", "out of range"),
        (b"\x01" * 32 + b"\xff" * 32 + b"\x1b", "out of range"),
    ],
)
def test_malformed_signatures_are_refused(signature: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        recover_personal_signer(b"manifest", signature)


def test_invalid_private_keys_are_refused() -> None:
    for key in (b"\x00" * 32, b"\xff" * 32, b"\x01" * 31):
        with pytest.raises(ValueError, match="private key"):
            address_of_key(key)


# --- ABI ---------------------------------------------------------------------------------------------------

LEDGER = load_ledger_abi()
ENTRIES = {e["name"]: e for e in LEDGER if e.get("type") in ("function", "event")}
STATIC_TYPES = ["uint8", "uint32", "uint64", "uint256", "int32", "bool", "address", "bytes32", "bytes4"]


def _value(t: str) -> st.SearchStrategy[Any]:
    if t.startswith("uint"):
        return st.integers(min_value=0, max_value=2 ** int(t[4:]) - 1)
    if t.startswith("int"):
        bits = int(t[3:])
        return st.integers(min_value=-(2 ** (bits - 1)), max_value=2 ** (bits - 1) - 1)
    if t == "bool":
        return st.booleans()
    if t == "address":
        return st.binary(min_size=20, max_size=20).map(ref_checksum)
    if t == "string":
        return st.text(max_size=80)
    if t == "bytes":
        return st.binary(max_size=80)
    return st.binary(min_size=int(t[5:]), max_size=int(t[5:]))


@st.composite
def typed_values(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[Any]]:
    """A parameter list of elementary types, strings, bytes and one level of tuples, with values."""
    params: list[dict[str, Any]] = []
    values: list[Any] = []
    for i in range(draw(st.integers(min_value=1, max_value=5))):
        if draw(st.booleans()):
            kinds = st.sampled_from([*STATIC_TYPES, "string", "bytes"])
            inner = [draw(kinds) for _ in range(draw(st.integers(1, 3)))]
            components = [{"name": f"c{j}", "type": t} for j, t in enumerate(inner)]
            params.append({"name": f"p{i}", "type": "tuple", "components": components})
            values.append(tuple(draw(_value(t)) for t in inner))
        else:
            t = draw(st.sampled_from([*STATIC_TYPES, "string", "bytes"]))
            params.append({"name": f"p{i}", "type": t})
            values.append(draw(_value(t)))
    return params, values


def _checksummed(params: list[dict[str, Any]], values: Any) -> tuple[Any, ...]:
    """eth-abi's decoded values with addresses in EIP-55 form, as web3 (and the verifier) return them."""
    out: list[Any] = []
    for p, v in zip(params, values, strict=True):
        if p["type"] == "tuple":
            out.append(_checksummed(p["components"], v))
        else:
            out.append(ref_checksum(v) if p["type"] == "address" else v)
    return tuple(out)


@settings(max_examples=150, deadline=None)
@given(case=typed_values())
def test_abi_codec_matches_eth_abi(case: tuple[list[dict[str, Any]], list[Any]]) -> None:
    params, values = case
    types = [abi.type_of(p) for p in params]
    encoded = ref_encode(types, values)
    assert abi.encode(params, values) == encoded
    assert abi.decode(params, encoded) == _checksummed(params, ref_decode(types, encoded))


def test_ledger_entries_the_verifier_reads_round_trip() -> None:
    department = ENTRIES["department"]
    value = ("0x" + "ab" * 20, 1, b"PSB".ljust(32, b"\0"), b"\x07" * 32, "Public security", 3, False)
    encoded = ref_encode([abi.type_of(p) for p in department["outputs"]], [value])
    assert abi.decode(department["outputs"], encoded) == ((ref_checksum(value[0]), *value[1:]),)
    assert abi.signature(ENTRIES["receiptMatches"]) == (
        "receiptMatches(bytes32,(uint64,uint32,uint32,bytes32,uint8,uint64,uint64,uint64))"
    )
    assert abi.selector(ENTRIES["deliveryStatus"]) == ref_keccak(text="deliveryStatus(bytes32)")[:4]


@pytest.mark.parametrize(
    ("params", "data", "message"),
    [
        ([{"type": "uint8"}], (256).to_bytes(32, "big"), "does not fit"),
        ([{"type": "bool"}], (2).to_bytes(32, "big"), "neither 0 nor 1"),
        ([{"type": "address"}], b"\x01" * 32, "address word 0101.* has non-zero padding"),
        # Refused by the audit trail's codec, which decodes with the same words: a bytes4 with bytes after its
        # four is not one a contract emitted, nor an int8 word that is not a sign extension.
        ([{"type": "bytes4"}], b"\x01" * 5 + b"\x00" * 27, "bytes4 word .* has non-zero padding"),
        ([{"type": "int8"}], b"\x00" * 31 + b"\x80", "not a sign-extended int8"),
        ([{"type": "uint256"}], b"\x00" * 31, "too short"),
        ([{"type": "string"}], (32).to_bytes(32, "big") + (99).to_bytes(32, "big"), "too short"),
        ([{"type": "uint256[]"}], b"\x00" * 64, "arrays"),
    ],
)
def test_abi_decode_refuses_bad_data(params: list[dict[str, Any]], data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        abi.decode(params, data)


def test_decode_log_checks_topic_and_count() -> None:
    event = ENTRIES["DeliveryDisputed"]
    topics = [abi.event_topic(event), b"\x11" * 32, (7).to_bytes(32, "big")]
    body = b"\x22" * 32 + b"\x33" * 32
    assert abi.decode_log(event, topics, body) == {
        "deliveryId": b"\x11" * 32, "consumer": 7, "recordedCommitment": b"\x22" * 32,
        "consumerCommitment": b"\x33" * 32,
    }  # fmt: skip
    with pytest.raises(ValueError, match="not a DeliveryDisputed log"):
        abi.decode_log(event, [b"\x00" * 32, *topics[1:]], body)
    with pytest.raises(ValueError, match="indexed parameters"):
        abi.decode_log(event, topics[:2], body)

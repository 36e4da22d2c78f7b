"""node.functions against web3's own contract calls: for every function of every ABI the contracts ship, the
same calldata as ``contract.encode_abi`` and ``functions[name](*args).call()``, and the same result, in the
same shape, from the same answer. web3 talks here to a provider that records the request and plays back an
answer (no node needed: what is compared is web3's encoding and decoding, nothing the node does)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

import pytest
from eth_utils.abi import get_abi_output_types
from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import InvalidAddress, MismatchedABI
from web3.providers.base import BaseProvider
from web3.types import RPCEndpoint, RPCResponse

from node.functions import ContractFunctions
from node.paths import CONTRACTS_DIR

ABIS = sorted((CONTRACTS_DIR / "abi").glob("*.json"))
ADDRESS = to_checksum_address("0x" + "5a" * 20)


class PlaybackProvider(BaseProvider):
    """Answers ``eth_call`` with ``answer`` and keeps the transaction it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = b""
        self.asked: dict[str, Any] = {}

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        if method == "eth_chainId":
            return {"jsonrpc": "2.0", "id": 1, "result": "0x1"}
        assert method == "eth_call", method
        self.asked = params[0]
        return {"jsonrpc": "2.0", "id": 1, "result": "0x" + self.answer.hex()}


def sample(param: Mapping[str, Any], seed: int) -> Any:
    """A value of ``param``'s type in the plain form, different for each ``seed``."""
    kind = str(param["type"])
    if kind.endswith("]"):
        item = {**param, "type": kind[: kind.rindex("[")]}
        size = kind[kind.rindex("[") + 1 : -1]
        return [sample(item, seed + i + 1) for i in range(int(size) if size else 2)]
    if kind == "tuple":
        return tuple(sample(c, seed * 7 + i) for i, c in enumerate(param["components"]))
    if kind == "address":
        return to_checksum_address(bytes((seed + i) % 256 for i in range(20)))
    if kind == "bool":
        return seed % 2 == 1
    if kind == "string":
        return f"档案 {seed}"
    if kind == "bytes":
        return bytes((seed * 3 + i) % 256 for i in range(seed % 40 + 1))
    if kind.startswith("bytes"):
        return bytes((seed * 5 + i) % 256 for i in range(int(kind[5:])))
    bits = int(kind.lstrip("uint") or 256)
    value = (seed * 0x9E3779B97F4A7C15 + 1) % 2 ** (bits - 1)
    return -value if kind.startswith("int") and seed % 2 else value


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (a list where web3 gives a tuple is a difference)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def functions_of(path: Any) -> list[dict[str, Any]]:
    return [e for e in json.loads(path.read_text(encoding="utf-8")) if e["type"] == "function"]


@pytest.mark.parametrize("path", ABIS, ids=[p.stem for p in ABIS])
def test_every_function_encodes_and_decodes_as_web3_does(path: Any) -> None:
    abi = json.loads(path.read_text(encoding="utf-8"))
    provider = PlaybackProvider()
    w3 = Web3(provider)
    contract = w3.eth.contract(address=ADDRESS, abi=abi)
    functions = ContractFunctions(abi, w3.codec, lambda: cast("Contract", w3.eth.contract(abi=abi)))
    entries = functions_of(path)
    assert entries
    for n, entry in enumerate(entries):
        name = entry["name"]
        args = [sample(p, n * 31 + i) for i, p in enumerate(entry["inputs"])]
        data = functions.plain_calldata(name, args)
        assert data is not None, name  # the plain form is encoded here, not handed back to web3
        assert data == contract.encode_abi(name, args=args), name

        outputs = [sample(p, n * 17 + i + 5) for i, p in enumerate(entry["outputs"])]
        provider.answer = w3.codec.encode(get_abi_output_types(entry), outputs)  # type: ignore[arg-type]
        expected = contract.functions[name](*args).call()
        assert provider.asked["data"] == data, name
        assert same(functions.result(name, provider.answer), expected), name


def test_other_forms_of_arguments_go_through_web3() -> None:
    """What web3 converts (hex strings for bytes) or refuses (a lower-case address, a wrong count, a value out
    of range) is left to it: the same calldata, or web3's own error."""
    abi = json.loads((CONTRACTS_DIR / "abi" / "DataExchangeLedger.json").read_text(encoding="utf-8"))
    contract = Web3().eth.contract(abi=abi)
    functions = ContractFunctions(abi, contract.w3.codec, lambda: cast("Contract", contract))
    governor = to_checksum_address("0x" + "ab" * 20)
    role = bytes(range(32))

    as_hex = ["0x" + role.hex(), governor]
    assert functions.plain_calldata("hasRole", as_hex) is None
    assert functions.calldata("hasRole", as_hex) == contract.encode_abi("hasRole", args=as_hex)
    assert functions.calldata("hasRole", as_hex) == functions.plain_calldata("hasRole", [role, governor])
    as_bytes_address = [role, bytes.fromhex("ab" * 20)]
    assert functions.plain_calldata("hasRole", as_bytes_address) == contract.encode_abi(
        "hasRole", args=as_bytes_address
    )

    assert functions.plain_calldata("hasRole", [role, governor.lower()]) is None
    with pytest.raises(InvalidAddress, match="only accepts checksum addresses"):
        functions.calldata("hasRole", [role, governor.lower()])
    for refused in ([role], [role, governor, 1]):
        assert functions.plain_calldata("hasRole", refused) is None
        with pytest.raises(MismatchedABI):
            functions.calldata("hasRole", refused)
    assert functions.plain_calldata("grant", [2**64]) is None
    with pytest.raises(MismatchedABI):
        functions.calldata("grant", [2**64])

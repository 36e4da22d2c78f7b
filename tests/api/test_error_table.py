"""The one table from contract errors to error codes, held to the compiled ABIs and to the API's codes."""

from __future__ import annotations

import json

import pytest

from api.errors import ERRORS, revert_to_api_error
from node.chain import LedgerRevertError
from node.contract_errors import REVERT_CODES, UNLISTED, describe_revert, error_code
from node.paths import ARTIFACTS_DIR


def _declared_errors() -> set[str]:
    """Every custom error any compiled contract declares (OpenZeppelin's included)."""
    names: set[str] = set()
    for path in ARTIFACTS_DIR.glob("*.json"):
        artifact = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(artifact, dict):
            names |= {e["name"] for e in artifact.get("abi", []) if e.get("type") == "error"}
    return names


def test_every_declared_error_has_exactly_one_row_and_every_row_a_declared_error() -> None:
    declared = _declared_errors()
    assert len(declared) > 30
    assert sorted(declared - set(REVERT_CODES)) == [], "add these errors to node/contract_errors.py"
    assert sorted(set(REVERT_CODES) - declared) == [], "no compiled contract declares these any more"


def test_every_code_is_one_the_api_documents() -> None:
    assert sorted({*REVERT_CODES.values(), UNLISTED} - set(ERRORS)) == []
    assert all(ERRORS[code].status < 500 for code in {*REVERT_CODES.values(), UNLISTED})


@pytest.mark.parametrize("name", [*sorted(REVERT_CODES), "NotAnErrorOfTheLedger", None])
def test_the_chain_client_and_the_api_give_one_code(name: str | None) -> None:
    revert = LedgerRevertError(name, {})
    assert revert.code == revert_to_api_error(revert).code == error_code(name)


def test_department_unauthorized_reads_the_same_everywhere() -> None:
    revert = LedgerRevertError("DepartmentUnauthorized", {"account": "0x" + "11" * 20})
    assert revert.code == revert_to_api_error(revert).code == "FORBIDDEN"


def _declared_inputs() -> dict[str, list[tuple[str, str]]]:
    """Each custom error's parameters (name, ABI type), as the compiled ABIs declare them."""
    inputs: dict[str, list[tuple[str, str]]] = {}
    for path in ARTIFACTS_DIR.glob("*.json"):
        artifact = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(artifact, dict):
            for e in artifact.get("abi", []):
                if e.get("type") == "error":
                    inputs[e["name"]] = [(i["name"], i["type"]) for i in e.get("inputs", [])]
    return inputs


#: An address as a decoder may hand it over (all lower case), and its EIP-55 spelling.
ADDRESS = "0x" + "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
CHECKSUMMED = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
#: A department code as the contract carries it (bytes32, zero-padded ASCII).
CODE = b"PSB".ljust(32, b"\0")


def _arguments(params: list[tuple[str, str]]) -> dict[str, object]:
    """Arguments of each declared type, as the chain client decodes them."""
    args: dict[str, object] = {}
    for name, kind in params:
        if kind == "address":
            args[name] = ADDRESS
        elif kind == "string":
            args[name] = "periodTo" if name == "field" else "x" * 40
        elif kind == "bytes32":
            args[name] = CODE if name == "code" else b"\x07" * 32
        else:
            args[name] = 1
    return args


def test_the_abis_declare_errors_of_every_contract() -> None:
    declared = _declared_inputs()
    for one_of_each in ("DepartmentAlreadyRegistered", "ReceiptBatchUnknown", "PracticeUnknownDemand"):
        assert one_of_each in declared


@pytest.mark.parametrize("name", sorted(_declared_inputs()))
def test_every_contract_error_reads_as_a_sentence(name: str) -> None:
    """Every error of the ledger's, the receipt anchors' and the practice contract's ABIs reaches a person
    through the API or the CLI: each reads as a sentence built from the arguments the contract declares
    (department codes as text, addresses checksummed), never as the raw error."""
    params = _declared_inputs()[name]
    args = _arguments(params)
    assert describe_revert(name, args) is not None, f"add a sentence for {name} to REVERT_MESSAGES"
    message = revert_to_api_error(LedgerRevertError(name, args)).message
    assert name not in message and "ledger rejected" not in message and "=" not in message
    assert LedgerRevertError(name, args).message == message  # the CLI reads the same sentence
    assert "0x" + CODE.hex()[:6] not in message.lower(), message  # never 0x5053… for PSB
    if ("code", "bytes32") in params:
        assert "PSB" in message
    if any(kind == "address" for _, kind in params):
        assert CHECKSUMMED in message and ADDRESS not in message

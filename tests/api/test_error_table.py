"""The one table from contract errors to error codes, held to the compiled ABIs and to the API's codes."""

from __future__ import annotations

import json

import pytest

from api.errors import ERRORS, revert_to_api_error
from node.chain import LedgerRevertError
from node.contract_errors import REVERT_CODES, UNLISTED, error_code
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


def _declared_inputs() -> dict[str, list[str]]:
    """Each custom error's parameter names, as the compiled ABIs declare them."""
    inputs: dict[str, list[str]] = {}
    for path in ARTIFACTS_DIR.glob("*.json"):
        artifact = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(artifact, dict):
            for e in artifact.get("abi", []):
                if e.get("type") == "error":
                    inputs[e["name"]] = [i["name"] for i in e.get("inputs", [])]
    return inputs


@pytest.mark.parametrize("name", sorted(n for n in REVERT_CODES if n.startswith("Practice")))
def test_practice_errors_read_as_sentences(name: str) -> None:
    """A department meets every practice error through the API: each reads as a sentence built from the
    arguments the contract declares, not as the raw error."""
    args: dict[str, object] = {param: 1 for param in _declared_inputs()[name]}
    if "field" in args:
        args["field"] = "periodTo"
    if "deliveryId" in args:
        args["deliveryId"] = b"\x07" * 32
    message = revert_to_api_error(LedgerRevertError(name, args)).message
    assert name not in message and "ledger rejected" not in message and "=" not in message
    assert LedgerRevertError(name, args).message == message  # the CLI reads the same sentence

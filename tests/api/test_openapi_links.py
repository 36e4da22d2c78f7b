"""The OpenAPI document's links (``api.openapi.ANSWERS``) hold to the routes: each names an operation the
document has, parameters and body fields that operation takes, and a field of the answer it starts from, of a
type the target accepts. A link that names nothing is not an error to schemathesis: its stateful phase would
leave it out (or stop) rather than say so, so a route or a field renamed must fail here."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from api.app import create_app
from api.openapi import ANSWERS

Document = dict[str, Any]
_RESPONSE_BODY = "$response.body#"


@pytest.fixture(scope="module")
def document() -> Document:
    return create_app(connect=False).openapi()


def _operations(document: Document) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def _resolved(document: Document, schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        found: Any = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            found = found[part]
        schema = found
    return schema


def _options(document: Document, schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The non-null alternatives of ``schema`` (a nullable field is ``anyOf`` it and null)."""
    schema = _resolved(document, schema)
    # A body's own properties beside a oneOf or anyOf: the alternatives only say which of them go together
    # (api/models.py, e.g. a request's terms or their hashes).
    alternatives = None if "properties" in schema else schema.get("anyOf", schema.get("oneOf"))
    found = [_resolved(document, s) for s in alternatives or [schema]]
    return [s for s in found if s.get("type") != "null"]


def _field(document: Document, schema: dict[str, Any], pointer: str) -> dict[str, Any] | None:
    """The schema of what ``pointer`` (a JSON pointer) names in a value of ``schema``; None if no value of the
    schema has it."""
    for segment in pointer.removeprefix("/").split("/") if pointer else ():
        step = None
        for option in _options(document, schema):
            if segment.isdigit() and option.get("type") == "array" and "items" in option:
                step = option["items"]
            elif segment in option.get("properties", {}):
                step = option["properties"][segment]
            if step is not None:
                break
        if step is None:
            return None
        schema = step
    return schema


def _types(document: Document, schema: dict[str, Any]) -> set[str]:
    return {str(option.get("type")) for option in _options(document, schema)}


def link_problems(document: Document) -> list[str]:
    """What is wrong with the document's links, one line each; [] when every link holds."""
    problems: list[str] = []
    operations = dict(_operations(document))
    by_id = {operation["operationId"]: (label, operation) for label, operation in operations.items()}
    for source, operation in operations.items():
        for status, response in operation["responses"].items():
            answer = response.get("content", {}).get("application/json", {}).get("schema", {})
            for name, link in response.get("links", {}).items():
                where = f"{source} [{status}] {name}"
                if link.get("operationId") not in by_id:
                    problems.append(f"{where}: no operation {link.get('operationId')!r}")
                    continue
                target, taken = by_id[link["operationId"]]
                parameters = {f"{p['in']}.{p['name']}": p["schema"] for p in taken.get("parameters", ())}
                body = taken.get("requestBody", {}).get("content", {}).get("application/json", {})
                fields = {
                    key: value
                    for option in _options(document, body.get("schema", {}))
                    for key, value in option.get("properties", {}).items()
                }
                given = [
                    (f"parameter {p}", parameters.get(p), e) for p, e in link.get("parameters", {}).items()
                ]
                given += [
                    (f"body field {f}", fields.get(f), e) for f, e in link.get("requestBody", {}).items()
                ]
                if not given:
                    problems.append(f"{where}: gives {target} nothing")
                for what, accepts, expression in given:
                    if accepts is None:
                        problems.append(f"{where}: {target} takes no {what}")
                        continue
                    if not expression.startswith(_RESPONSE_BODY):
                        problems.append(f"{where}: {what} from {expression!r}, not from the answer's body")
                        continue
                    held = _field(document, answer, expression.removeprefix(_RESPONSE_BODY))
                    if held is None:
                        problems.append(
                            f"{where}: the answer has no {expression.removeprefix(_RESPONSE_BODY)}"
                        )
                    elif not _types(document, held) & _types(document, accepts):
                        problems.append(
                            f"{where}: {what} of {target} takes {sorted(_types(document, accepts))}, "
                            f"the answer's {expression} is {sorted(_types(document, held))}"
                        )
    return problems


def test_every_link_names_an_operation_what_it_takes_and_a_field_its_answer_has(document: Document) -> None:
    assert link_problems(document) == []
    linked = {
        label: sum(len(r.get("links", {})) for r in operation["responses"].values())
        for label, operation in _operations(document)
    }
    # Every answer the table names leads somewhere.
    assert {label for label in ANSWERS if not linked[label]} == set()
    assert sum(linked.values()) > 150


def test_every_operation_on_a_record_is_reached_by_a_link(document: Document) -> None:
    """An operation that takes a record's id in its path is where a stateful walk goes next: each is the
    target of some link, so a route added without one is noticed."""
    targets = {
        link["operationId"]
        for _, operation in _operations(document)
        for response in operation["responses"].values()
        for link in response.get("links", {}).values()
    }
    unreached = [
        label
        for label, operation in _operations(document)
        if any(p["in"] == "path" for p in operation.get("parameters", ()))
        and operation["operationId"] not in targets
    ]
    assert unreached == []


def _fields(document: Document, model: str) -> dict[str, Any]:
    """The properties of a model's component in ``document``, to change in place."""
    fields: dict[str, Any] = document["components"]["schemas"][model]["properties"]
    return fields


def _rename(mapping: dict[str, Any], old: str, new: str) -> None:
    mapping[new] = mapping.pop(old)


# What a change elsewhere would do to the links, and what the check must then say.
_BREAKS: list[tuple[str, Callable[[Document], None], str]] = [
    (
        "a field of an answer renamed",
        lambda d: _rename(_fields(d, "RequestPublic"), "id", "request_id"),
        "GET /requests/{request_id} [200] approve_request: the answer has no /id",
    ),
    (
        "a nested field renamed",
        lambda d: _rename(_fields(d, "ReceiptBatchPublic"), "first_sequence", "first"),
        "GET /receipts/{delivery_id} [200] acknowledge_batch: the answer has no /batch/first_sequence",
    ),
    (
        "a body field renamed",
        lambda d: _rename(_fields(d, "GrantCreate"), "agreement_id", "agreement"),
        "GET /agreements/{agreement_id} [200] issue_grant: POST /grants takes no body field agreement_id",
    ),
    (
        "an operation's id changed",
        lambda d: d["paths"]["/grants/{grant_id}"]["get"].update(operationId="read_grant"),
        "POST /grants [201] get_grant: no operation 'get_grant_grants__grant_id__get'",
    ),
    (
        "a field's type changed",
        lambda d: _fields(d, "DeliveryPublic")["grant_id"].update(type="string"),
        "GET /deliveries/{delivery_id} [200] get_grant: parameter path.grant_id of GET /grants/{grant_id} "
        "takes ['integer'], the answer's $response.body#/grant_id is ['string']",
    ),
]


@pytest.mark.parametrize(("change", "breaks", "reported"), _BREAKS, ids=[b[0] for b in _BREAKS])
def test_a_link_broken_by_a_change_is_reported(
    document: Document, change: str, breaks: Callable[[Document], None], reported: str
) -> None:
    changed = copy.deepcopy(document)
    breaks(changed)
    assert reported in link_problems(changed), change

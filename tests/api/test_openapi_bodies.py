"""The OpenAPI document's request bodies take what the routes take. Where a body's model refuses a
combination of fields (one form or the other, a field a choice needs, an action listed twice, a duration
that names no length), the document's schema refuses it too, so that a client, or schemathesis, reading the
document knows which bodies a route takes (``tests/api/test_fuzz.py`` counts how many of its valid requests
the routes refused). Each body below is judged by the document's schema and by the route's model: they
must agree."""

from __future__ import annotations

import time
import types
import typing
from typing import Any

import jsonschema_rs
import pytest
from pydantic import AfterValidator, BaseModel, ValidationError

from api import models
from api.app import create_app
from tests.api.api_helpers import catalog_document
from verifier.commitment import commit_payload
from verifier.errors import ManifestError
from verifier.leaves import Chunking, PayloadFormat
from verifier.manifest import build_manifest, parse_manifest

H = "0x" + "ab" * 32
REQUEST = {"resource_id": 2, "purpose": "residence permit review", "valid_from": 1, "valid_until": 2}
TERMS = {
    "csvw:column": [{"csvw:name": "person_id"}],
    "dcatap:applicableLegislation": "Residence Permit Regulation, art. 12",
    "dcat:mediaType": "application/json",
    "dct:accrualPeriodicity": "P1D",
    "odrl:delayPeriod": "PT4H",
    "odrl:permission": ["use", "aggregate"],
    "odrl:prohibition": ["distribute"],
    "dxl:retentionDays": 180,
    "odrl:duty": {"odrl:assigner": "daily updates", "odrl:assignee": "deleted at expiry"},
}
DEMAND = {"title": "Property register", "description": "By id number.\nSecond line.",
          "purpose": "Housing review", "legal_basis": "Housing Regulation, art. 12"}  # fmt: skip
DECLINED = {"answer": "declined", "decline_reason": "not_held"}
RESOURCE = {"schema_hash": H, "share_type": "conditional"}
OPEN_DOCUMENT = {k: v for k, v in catalog_document("Household register").items() if k != "dct:accessRights"}

CASES: list[tuple[type[BaseModel], dict[str, Any], bool]] = [
    # A request gives its terms, or both of their hashes.
    (models.RequestCreate, {**REQUEST, "terms": TERMS}, True),
    (models.RequestCreate, {**REQUEST, "terms": TERMS, "scope_hash": None, "terms_hash": None}, True),
    (models.RequestCreate, {**REQUEST, "scope_hash": H, "terms_hash": H}, True),
    (models.RequestCreate, {**REQUEST, "scope_hash": H, "terms_hash": H, "terms": None}, True),
    (models.RequestCreate, REQUEST, False),
    (models.RequestCreate, {**REQUEST, "scope_hash": H}, False),
    (models.RequestCreate, {**REQUEST, "scope_hash": H, "terms_hash": None}, False),
    (models.RequestCreate, {**REQUEST, "terms": TERMS, "terms_hash": H}, False),
    (models.RequestCreate, {**REQUEST, "terms": None}, False),
    # Terms list each action once, and name durations of some length.
    (models.RequestCreate, {**REQUEST, "terms": {**TERMS, "odrl:permission": ["use", "use"]}}, False),
    (models.RequestCreate, {**REQUEST, "terms": {**TERMS, "odrl:prohibition": ["modify", "modify"]}}, False),
    (models.RequestCreate, {**REQUEST, "terms": {**TERMS, "odrl:delayPeriod": "P"}}, False),
    (models.RequestCreate, {**REQUEST, "terms": {**TERMS, "odrl:delayPeriod": "PT"}}, False),
    (models.RequestCreate, {**REQUEST, "terms": {**TERMS, "dct:accrualPeriodicity": "P1DT"}}, False),
    (models.RequestCreate, {**REQUEST, "terms": {**TERMS, "dct:accrualPeriodicity": "P1DT4H"}}, True),
    # A demand's answer: a decline with its reason, or a resource.
    (models.DemandAnswerCreate, DECLINED, True),
    (models.DemandAnswerCreate, {**DECLINED, "resource_id": None}, True),
    (models.DemandAnswerCreate, {"answer": "declined"}, False),
    (models.DemandAnswerCreate, {**DECLINED, "resource_id": 1}, False),
    (models.DemandAnswerCreate, {"answer": "declined", "resource_id": 1}, False),
    (models.DemandAnswerCreate, {"answer": "new_resource", "resource_id": 1}, True),
    (models.DemandAnswerCreate,
     {"answer": "existing_resource", "resource_id": 2, "decline_reason": None}, True),
    (models.DemandAnswerCreate, {"answer": "new_resource"}, False),
    (models.DemandAnswerCreate, {**DECLINED, "answer": "new_resource", "resource_id": 1}, False),
    # A text that may run over lines says something: not white space alone.
    (models.DemandCreate, {"document": DEMAND, "due_by": 2}, True),
    (models.DemandCreate, {"document": {**DEMAND, "description": " \n "}, "due_by": 2}, False),
    (models.DemandCreate, {"document": {**DEMAND, "description": ""}, "due_by": 2}, False),
    (models.DemandCreate, {"document": {**DEMAND, "purpose": "\t"}, "due_by": 2}, False),
    # A catalog import: entries or a CSV text.
    (models.CatalogImport, {"resources": []}, True),
    (models.CatalogImport, {"csv": "id,metadata\n"}, True),
    (models.CatalogImport, {"csv": "id,metadata\n", "resources": None}, True),
    (models.CatalogImport, {}, False),
    (models.CatalogImport, {"resources": None, "csv": None}, False),
    (models.CatalogImport, {"resources": [], "csv": "id,metadata\n"}, False),
    # A resource: its document or its document's hash; a conditional one's document says its conditions.
    (models.ResourceCreate, {**RESOURCE, "metadata_hash": H}, True),
    (models.ResourceCreate, {**RESOURCE, "metadata_hash": H, "metadata": None}, True),
    (models.ResourceCreate, {**RESOURCE, "metadata": catalog_document("Household register")}, True),
    (models.ResourceCreate, RESOURCE, False),
    (models.ResourceCreate, {**RESOURCE, "metadata": None, "metadata_hash": None}, False),
    (models.ResourceCreate, {**RESOURCE, "metadata": OPEN_DOCUMENT}, False),
    (models.ResourceCreate, {**RESOURCE, "metadata": {**OPEN_DOCUMENT, "dct:accessRights": None}}, False),
    (models.ResourceCreate, {**RESOURCE, "share_type": "unconditional", "metadata": OPEN_DOCUMENT}, True),
    (models.ResourceUpdate, {**RESOURCE, "sensitivity": 2, "metadata_hash": H}, True),
    (models.ResourceUpdate, {**RESOURCE, "sensitivity": 2}, False),
    (models.ResourceUpdate, {**RESOURCE, "sensitivity": 2, "metadata": OPEN_DOCUMENT}, False),
    (models.ResourceUpdate, {**RESOURCE, "metadata_hash": H}, False),
]  # fmt: skip


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(connect=False).openapi()


def _taken_by_model(model: type[BaseModel], body: dict[str, Any]) -> bool:
    try:
        model.model_validate(body)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(("model", "body", "taken"), CASES)
def test_the_document_takes_the_bodies_the_route_takes(
    document: dict[str, Any], model: type[BaseModel], body: dict[str, Any], taken: bool
) -> None:
    # The document as the root, so that its components' references resolve.
    schema = {**document, "$ref": f"#/components/schemas/{model.__name__}"}
    assert _taken_by_model(model, body) is taken
    assert jsonschema_rs.Draft202012Validator(schema).is_valid(body) is taken


#: The checks of a text's characters (api/models.py), which read a string and fail on anything else.
TEXT_CHECKS = (models.PlainLine, models.InOrderText)


def _checked_texts_that_may_be_null() -> list[str]:
    found = []
    for model in _service_models():
        for name, field in model.model_fields.items():
            admits_null = typing.get_origin(field.annotation) in (typing.Union, types.UnionType) and type(
                None
            ) in typing.get_args(field.annotation)
            checks = [m for m in field.metadata if isinstance(m, AfterValidator) and m in TEXT_CHECKS]
            if admits_null and checks:
                found.append(f"{model.__name__}.{name}")
    return found


def _service_models() -> list[type[BaseModel]]:
    return [
        value
        for value in vars(models).values()
        if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == models.__name__
    ]


def test_a_text_check_reads_the_text_not_a_null_the_document_allows() -> None:
    """An optional text is null or a text, and only the text is checked: a check of its characters put on
    the whole field (``Annotated[str | None, ..., InOrderText]``) was run on null and answered 500 (a demand's
    description, a demand answer's note, an evaluation's comment; schemathesis sent null, which the document
    allows). ``Annotated[str, ..., InOrderText] | None`` checks the text alone."""
    assert len(_service_models()) > 50
    assert _checked_texts_that_may_be_null() == []


def test_the_examples_name_records_of_the_demo_ledger(document: dict[str, Any]) -> None:
    """The examples a client (or the fuzz run) takes from the document name what the demo ledger holds: a
    resource another department than its owner may request, an admitted department, a due day ahead."""
    from node.provision import DEPARTMENTS, RESOURCES

    schemas = document["components"]["schemas"]
    (resource_id,) = schemas["RequestCreate"]["properties"]["resource_id"]["examples"]
    assert (
        RESOURCES[resource_id - 1].owner != "PSB"
        and RESOURCES[resource_id - 1].share_type.name != "NOT_SHARED"
    )
    addressee = schemas["DemandCreate"]["properties"]["addressee"]
    assert addressee["examples"] == [models.DEMO_ADDRESSEE] and models.DEMO_ADDRESSEE in {
        d.code for d in DEPARTMENTS
    }
    # A period that holds the wall clock for decades (the test nodes' clocks run ahead of it by days at most).
    assert schemas["DemandCreate"]["properties"]["due_by"]["examples"] == [models.EXAMPLE_END]
    request = schemas["RequestCreate"]["properties"]
    assert (request["valid_from"]["examples"], request["valid_until"]["examples"]) == (
        [models.EXAMPLE_START],
        [models.EXAMPLE_END],
    )
    assert models.EXAMPLE_START < time.time() < time.time() + 50 * 365 * 86400 < models.EXAMPLE_END


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    payload = tmp_path_factory.mktemp("manifest") / "rows.jsonl"
    payload.write_bytes(b'{"person_id": "110101199003071234"}\n')
    chunking = Chunking(PayloadFormat.JSONL)
    commitment = commit_payload(payload, salt=b"\x07" * 32, chunking=chunking, keep_leaf_hashes=True)
    return build_manifest(commitment, delivery_id=b"\xab" * 32, provider="PSB", consumer="HRSS").to_dict()


@pytest.mark.parametrize(
    ("model", "extra"),
    [("VerifyRequest", {}), ("PayloadProvenance", {"payload_base64": "e30K"}),
     ("PresentationCreate", {"payload_base64": "e30K", "delivery_id": H})],
)  # fmt: skip
def test_a_manifest_in_a_body_is_the_verifiers_json_schema(
    document: dict[str, Any], manifest: dict[str, Any], model: str, extra: dict[str, Any]
) -> None:
    """POST /verify, POST /audit/provenance/payload and a presentation to an inspection take a delivery
    manifest, which the verifier reads field by field (``parse_manifest``): the document says so with the
    verifier's own JSON Schema (``verifier/manifest.schema.json``), where it said any object. A manifest the
    verifier reads is one the document takes; one it refuses for a missing, unknown or misspelt field the
    document refuses too."""
    assert document["components"]["schemas"][model]["properties"]["manifest"]["$ref"] == (
        "#/components/schemas/Manifest"
    )
    schema = {**document, "$ref": f"#/components/schemas/{model}"}
    validator = jsonschema_rs.Draft202012Validator(schema)
    parse_manifest(manifest)
    assert validator.is_valid({**extra, "manifest": manifest})
    without_root = {k: v for k, v in manifest.items() if k != "root"}
    for refused in ({}, {**manifest, "schema": "dxl.manifest/2"}, without_root, {**manifest, "extra": 1}):
        with pytest.raises(ManifestError):
            parse_manifest(refused)
        assert not validator.is_valid({**extra, "manifest": refused})

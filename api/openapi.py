"""The OpenAPI document, made to say what the service does: per operation, the roles it admits
(``x-dxl-roles``) and every error status it can answer, each with the one error body and the codes of
:data:`api.errors.ERRORS` that carry that status.

Statuses follow from what an operation depends on, read from its dependencies rather than listed by hand, so a
new route is documented as soon as it exists: a token (401), a role check (403), the ledger or the audit trail
(404 for ids, 503 when the node is down), parameters or a body (422), a body (413), a write (409 for state
conflicts and ``Idempotency-Key`` in flight, 422 for a reused key), a token looked up in the API database
(503 when it cannot be used), and on every operation a request that is not well-formed HTTP (400), a
request line and headers over their limit or late (431, 408), a query parameter the operation does not
declare (422) and a request over its rate (429).
``tests/api/test_fuzz.py`` holds the running service to it with schemathesis. A 500 is never declared: it is a
bug.

Links (:data:`ANSWERS`, :data:`BODY_KEYS`) say which operations an answer leads to and with which of its
values: the exchange's chain from a resource registered to a delivery acknowledged, as a client walks it and
as schemathesis's stateful phase follows it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, routing
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

import verifier
from api.auth import Role
from api.deps import roles_of
from api.errors import ERRORS
from api.models import MANIFEST_COMPONENT, MANIFEST_MARK, ErrorPublic, ReceiptsCreate

ERROR_SCHEMA_REF = "#/components/schemas/ErrorPublic"
#: Bodies a route reads by hand (no model per item, for speed) and documents by this model, referenced from
#: its ``openapi_extra`` as ``#/components/schemas/<name>``: FastAPI adds only the models routes take.
DOCUMENTED_BODIES = (ReceiptsCreate,)
#: Set to True on a dependency through which an operation reads the chain or the audit trail: ids it names may
#: be unknown (404), the node may be down (503).
LEDGER_DEPENDENCY = "dxl_reads_ledger"
#: The key of a route's ``openapi_extra`` (:func:`answers`) naming error codes its handler answers beyond what
#: its dependencies, parameters and method tell (:func:`error_statuses`): a read refused for the state of its
#: record.
ROUTE_ERRORS = "x-dxl-errors"
#: FastAPI's own validation-error schemas, replaced by the API's single error body.
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def install_openapi(app: FastAPI) -> None:
    """Replaces ``app.openapi`` with a generator that adds roles and error responses to every operation."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            _exact_integer_bounds(schema)
            _add_error_schema(schema)
            for model in DOCUMENTED_BODIES:
                _add_model_schema(schema, model.__name__, model.model_json_schema(ref_template=_REF_TEMPLATE))
            _add_manifest_schema(schema)
            # The handler's name of each operation, which names the links that lead to it.
            names: dict[str, str] = {}
            # Route contexts, not app.routes: included routers are nested, and only a context carries the
            # dependencies the router added.
            for route in routing.iter_route_contexts(app.routes):
                if not isinstance(route.original_route, routing.APIRoute) or not route.include_in_schema:
                    continue
                roles = roles_of(route.dependant)
                for method in route.methods or ():
                    operation = schema["paths"].get(route.path_format, {}).get(method.lower())
                    if operation is None:
                        continue
                    names[f"{method} {route.path_format}"] = route.original_route.name
                    operation["x-dxl-roles"] = roles or []
                    own = {ERRORS[code].status for code in operation.pop(ROUTE_ERRORS, ())}
                    _declare_errors(
                        operation, error_statuses(route.dependant, method, operation, roles) | own
                    )
            _add_links(schema, names)
            for name in _FASTAPI_VALIDATION_SCHEMAS:
                schema["components"]["schemas"].pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def answers(*codes: str) -> dict[str, Any]:
    """The ``openapi_extra`` of a route whose handler also answers ``codes`` (keys of :data:`ERRORS`)."""
    unknown = [code for code in codes if code not in ERRORS]
    if unknown:
        raise ValueError(f"unknown API error codes {unknown}")
    return {ROUTE_ERRORS: list(codes)}


def error_statuses(
    dependant: Any, method: str, operation: dict[str, Any], roles: list[str] | None
) -> set[int]:
    """The error statuses an operation can answer, from its dependencies, parameters and method."""
    deps = list(_dependencies(dependant))
    reads_ledger = any(getattr(dep.call, LEDGER_DEPENDENCY, False) for dep in deps)
    has_body = "requestBody" in operation
    has_input = has_body or bool(operation.get("parameters"))
    write = method.upper() != "GET"
    # Any request's line and headers may be malformed, over the limit of api/server.py, or late, whoever sends
    # them; any request may be over its principal's rate, or come from an address over its failed
    # authentications'; any request's query may name a parameter the operation does not declare (422,
    # api.errors.MethodGuardMiddleware).
    statuses: set[int] = {400, 408, 422, 429, 431}
    if roles is not None:  # it needs a token
        statuses.add(401)
        # Narrower than "any principal": a role check refuses the others; a department principal may also be
        # refused an exchange it is party to but not in this role (NOT_A_PARTY).
        if roles is not None and set(roles) != {r.value for r in Role}:
            statuses.add(403)
    if reads_ledger or roles is not None:
        # The node is down, or the API database (tokens are looked up there) cannot be used.
        statuses.add(503)
    # Unknown ids, and a department token whose code the ledger has not admitted.
    if reads_ledger and (has_input or roles is None or Role.DEPARTMENT.value in roles):
        statuses.add(404)
    if has_body:
        statuses.add(413)
    if write:
        statuses.add(409)
    return statuses


def _dependencies(dependant: Any) -> Iterable[Any]:
    stack = [dependant]
    while stack:
        dep = stack.pop()
        yield dep
        stack.extend(getattr(dep, "dependencies", []))


_REF_TEMPLATE = "#/components/schemas/{model}"


def _add_model_schema(schema: dict[str, Any], name: str, generated: dict[str, Any]) -> None:
    """A model's JSON schema as the component ``name``, the models it uses beside it (pydantic nests them
    under ``$defs``, which a reference from elsewhere in the document cannot reach)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(generated.pop("$defs", {}))
    components[name] = generated


def _add_manifest_schema(schema: dict[str, Any]) -> None:
    """The verifier's JSON Schema of a delivery manifest as the component :data:`MANIFEST_COMPONENT`, which
    the bodies that carry one reference (``api.models.ManifestDocument``); its definitions beside it, named
    ``Manifest.<name>``, and its references to them rewritten to point there."""
    document = json.loads(MANIFEST_SCHEMA_FILE.read_text(encoding="utf-8"))
    definitions = document.pop("$defs", {})
    for key in ("$schema", "$id"):
        document.pop(key, None)

    def moved(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: (
                    _MANIFEST_DEF.sub(rf"#/components/schemas/{MANIFEST_COMPONENT}.\1", v)
                    if k == "$ref"
                    else moved(v)
                )
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [moved(item) for item in node]
        return node

    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in definitions.items():
        components[f"{MANIFEST_COMPONENT}.{name}"] = moved(definition)
    components[MANIFEST_COMPONENT] = moved(document)

    def referenced(node: Any) -> Any:
        """``node`` with each schema marked :data:`MANIFEST_MARK` a reference to the component."""
        if isinstance(node, dict):
            if node.get(MANIFEST_MARK):
                kept = {k: v for k, v in node.items() if k in ("title", "description")}
                return {"$ref": f"#/components/schemas/{MANIFEST_COMPONENT}", **kept}
            return {k: referenced(v) for k, v in node.items()}
        if isinstance(node, list):
            return [referenced(item) for item in node]
        return node

    for name in list(components):
        components[name] = referenced(components[name])


#: The verifier's JSON Schema of a delivery manifest (shipped with the verifier package).
MANIFEST_SCHEMA_FILE = Path(verifier.__file__).with_name("manifest.schema.json")
_MANIFEST_DEF = re.compile(r"^#/\$defs/([A-Za-z0-9_]+)$")


#: A schema's numeric bounds. FastAPI's OpenAPI model holds them as floats, exact only to 2**53: the document
#: said a record id (at most 2**64 - 1, uint64 on chain) could be 2**64, and a byte size 2**63, values the
#: service refuses (422).
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


def _exact_integer_bounds(schema: dict[str, Any]) -> None:
    """Puts back in the models' components the integer bounds their models declare, where the document holds
    them as floats. A float is replaced only by the integer it is the rounding of."""
    models = _service_models()
    for name, component in schema.get("components", {}).get("schemas", {}).items():
        # FastAPI names a model that reads differently as a body and as an answer "<Name>-Input"/"-Output".
        base, _, side = name.partition("-")
        model = models.get(base)
        if model is not None:
            mode: JsonSchemaMode = "serialization" if side == "Output" else "validation"
            _copy_bounds(component, model.model_json_schema(mode=mode, ref_template=_REF_TEMPLATE))


def _service_models() -> dict[str, type[BaseModel]]:
    """The service's pydantic models (bodies, answers and what they hold) by class name."""
    found: dict[str, type[BaseModel]] = {}
    stack = list(BaseModel.__subclasses__())
    while stack:
        model = stack.pop()
        stack.extend(model.__subclasses__())
        if model.__module__.partition(".")[0] == "api":
            found.setdefault(model.__name__, model)
    return found


def _copy_bounds(document: Any, exact: Any) -> None:
    if isinstance(document, dict) and isinstance(exact, dict):
        for key, value in document.items():
            bound = exact.get(key)
            if key in _BOUNDS and type(bound) is int and isinstance(value, float) and float(bound) == value:
                document[key] = bound
            else:
                _copy_bounds(value, bound)
    elif isinstance(document, list) and isinstance(exact, list) and len(document) == len(exact):
        for item, bound in zip(document, exact, strict=True):
            _copy_bounds(item, bound)


def _add_error_schema(schema: dict[str, Any]) -> None:
    _add_model_schema(schema, "ErrorPublic", ErrorPublic.model_json_schema(ref_template=_REF_TEMPLATE))
    detail = schema["components"]["schemas"]["ErrorDetail"]
    # The code is one of the table's, so a response with any other fails the document's own schema.
    detail["properties"]["code"] = {"type": "string", "enum": sorted(ERRORS), "title": "Code"}


_ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {"headers": {"WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}}}},
    429: {
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before the request is taken again",
                "schema": {"type": "integer", "minimum": 1},
                "required": True,
            }
        }
    },
}


def _declare_errors(operation: dict[str, Any], statuses: set[int]) -> None:
    responses = operation.setdefault("responses", {})
    for status in sorted(statuses):
        codes = sorted(code for code, spec in ERRORS.items() if spec.status == status)
        responses[str(status)] = {
            "description": "Error; `error.code` is one of " + ", ".join(f"`{c}`" for c in codes),
            "content": {"application/json": {"schema": {"$ref": ERROR_SCHEMA_REF}}},
            **(_ERROR_HEADERS.get(status, {})),
        }


#: The records an operation's success answer holds, by the name an operation takes each one's key under (a
#: path parameter, or a field of :data:`BODY_KEYS`), with the JSON pointer into the answer that holds it: a
#: written record under ``/record``, a list's first item under ``/0``. An answer leads (an OpenAPI link) to
#: every other operation whose keys it holds all of: the exchange's chain, resource → request → decision and
#: terms → agreement → grant → delivery or receipt → acknowledgement, dispute or provenance, and beside it
#: governance, demands and inspections.
ANSWERS: dict[str, dict[str, str]] = {
    "GET /me": {"department_id": "/department_id"},
    "GET /departments": {"department_id": "/0/id"},
    "POST /governance/proposals": {"proposal_id": "/record/id"},
    "GET /governance/proposals": {"proposal_id": "/0/id"},
    "GET /governance/proposals/{proposal_id}": {"proposal_id": "/id"},
    "POST /governance/proposals/{proposal_id}/approve": {"proposal_id": "/record/id"},
    "POST /resources": {"resource_id": "/record/id"},
    "GET /resources": {"resource_id": "/0/id"},
    "GET /resources/{resource_id}": {"resource_id": "/id"},
    "PUT /resources/{resource_id}": {"resource_id": "/record/id"},
    "POST /requests": {"request_id": "/record/id", "resource_id": "/record/resource_id"},
    "GET /requests": {"request_id": "/0/id"},
    "GET /requests/{request_id}": {"request_id": "/id", "resource_id": "/resource_id"},
    "POST /requests/{request_id}/approve": {"request_id": "/record/id"},
    "GET /requests/{request_id}/terms": {"request_id": "/request_id", "agreement_id": "/agreement_id"},
    "POST /requests/{request_id}/signatures": {"agreement_id": "/agreement/id"},
    "GET /agreements": {"agreement_id": "/0/id"},
    "GET /agreements/{agreement_id}": {
        "agreement_id": "/id", "request_id": "/request_id", "resource_id": "/resource_id"
    },
    "POST /agreements/{agreement_id}/suspend": {"agreement_id": "/record/id"},
    "POST /grants": {"grant_id": "/record/id", "agreement_id": "/record/agreement_id"},
    "GET /grants": {"grant_id": "/0/id"},
    "GET /grants/{grant_id}": {"grant_id": "/id", "agreement_id": "/agreement_id"},
    "POST /deliveries": {
        "delivery_id": "/record/delivery_id", "grant_id": "/record/grant_id",
        "commitment": "/record/commitment",
    },
    "POST /deliveries/batch": {"delivery_id": "/records/0/delivery_id", "grant_id": "/records/0/grant_id"},
    "GET /deliveries": {"delivery_id": "/0/delivery_id"},
    "GET /deliveries/{delivery_id}": {
        "delivery_id": "/delivery_id", "grant_id": "/grant_id", "commitment": "/commitment"
    },
    "POST /receipts": {"delivery_id": "/delivery_ids/0"},
    "GET /receipts/{delivery_id}": {
        "delivery_id": "/delivery_id", "grant_id": "/batch/grant_id",
        "first_sequence": "/batch/first_sequence",
    },
    "POST /demands": {"demand_id": "/record/id"},
    "GET /demands": {"demand_id": "/0/id"},
    "GET /demands/{demand_id}": {"demand_id": "/id"},
    "POST /inspections": {"inspection_id": "/record/id"},
    "GET /inspections": {"inspection_id": "/0/id"},
    "GET /inspections/{inspection_id}": {"inspection_id": "/id", "delivery_id": "/sample/0/delivery_id"},
    "POST /inspections/{inspection_id}/draw": {
        "inspection_id": "/record/id", "delivery_id": "/record/sample/0/delivery_id"
    },
}  # fmt: skip
#: Operations that take a record's key in their body (beside any in their path): the body fields a link fills,
#: merged into the rest of the body the client sends.
BODY_KEYS: dict[str, tuple[str, ...]] = {
    "POST /requests": ("resource_id",),
    "POST /grants": ("agreement_id",),
    "POST /deliveries": ("grant_id",),
    "POST /inspections/{inspection_id}/presentations": ("delivery_id",),
    "POST /inspections/{inspection_id}/outcomes": ("delivery_id",),
}


def _add_links(schema: dict[str, Any], names: dict[str, str]) -> None:
    """The links of :data:`ANSWERS` on each of those operations' success answer, each named after the handler
    it leads to (``names``, by ``"METHOD /path"``). An operation of the tables that the document does not have
    is a KeyError here: a route renamed or removed breaks the document's build, not silently a link
    (``tests/api/test_openapi_links.py`` holds the links' parameters and fields to the document)."""
    operations = {
        f"{method.upper()} {path}": operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }
    # What each operation takes a record's key under: its path parameters, and the body fields of BODY_KEYS.
    takes = {
        label: {p["name"]: f"path.{p['name']}" for p in operation.get("parameters", ()) if p["in"] == "path"}
        | {name: _BODY for name in BODY_KEYS.get(label, ())}
        for label, operation in operations.items()
    }
    if unknown := BODY_KEYS.keys() - operations.keys():
        raise KeyError(f"BODY_KEYS names operations the document does not have: {sorted(unknown)}")
    for source, held in ANSWERS.items():
        links: dict[str, Any] = {}
        for target, keys in takes.items():
            if target == source or not keys or not keys.keys() <= held.keys():
                continue
            link: dict[str, Any] = {"operationId": operations[target]["operationId"]}
            if parameters := {at: _EXPRESSION + held[key] for key, at in keys.items() if at != _BODY}:
                link["parameters"] = parameters
            if body := {key: _EXPRESSION + held[key] for key, at in keys.items() if at == _BODY}:
                link["requestBody"] = body
            links[names[target]] = link
        # Each operation has one success status, the one its links start from.
        success = next(
            answer for status, answer in operations[source]["responses"].items() if status[0] == "2"
        )
        success["links"] = links


_BODY = "body"
#: A link's runtime expression for the value at a JSON pointer into the answer's body.
_EXPRESSION = "$response.body#"

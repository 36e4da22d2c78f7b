"""Stable error codes and the one place that turns exceptions into JSON errors.

Every failure the API reports has the shape ``{"error": {"code": "UPPER_SNAKE", "message": "...", ...}}``.
Codes are part of the API contract: clients switch on them, so they never change meaning. Contract reverts are
mapped by the Solidity error name through the one table the chain client uses too
(:data:`node.contract_errors.REVERT_CODES`), everything else by the
:class:`ApiError` raised. An unexpected exception becomes a logged 500 ``INTERNAL_ERROR`` whose message says
nothing about internals; the test suite shows that no input reaches it.
"""

from __future__ import annotations

import base64
import binascii
import collections
import difflib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, routing
from fastapi._compat import field_annotation_is_sequence
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from node.contract_errors import describe_revert, error_code
from node.errors import ConfigurationError, DxlError, NodeError

log = logging.getLogger("dxl.api")


@dataclass(frozen=True)
class ErrorSpec:
    status: int
    description: str


#: Every code the API can answer with, its HTTP status and what it means. Tests iterate this table.
ERRORS: Mapping[str, ErrorSpec] = {
    # Protocol and input
    "UNAUTHENTICATED": ErrorSpec(401, "no valid bearer token was presented"),
    "FORBIDDEN": ErrorSpec(403, "the principal may not perform this operation"),
    "NOT_FOUND": ErrorSpec(404, "no such route"),
    "METHOD_NOT_ALLOWED": ErrorSpec(405, "the route does not accept this method"),
    "PAYLOAD_TOO_LARGE": ErrorSpec(413, "the request body exceeds the configured limit"),
    "PAYLOAD_TOO_MANY_LEAVES": ErrorSpec(
        413, "the payload cuts into more leaves than the service hashes for one request (`limit`)"
    ),
    "MALFORMED_REQUEST": ErrorSpec(
        400, "the request is not well-formed HTTP/1.1 (request line, a header, its length or chunks)"
    ),
    "HEADERS_TOO_LARGE": ErrorSpec(431, "the request line and headers exceed the size limit"),
    "REQUEST_TIMEOUT": ErrorSpec(408, "the request line and headers, or the body, did not arrive in time"),
    "VALIDATION_ERROR": ErrorSpec(422, "a field of the request is malformed; `field` names it"),
    "IDEMPOTENCY_KEY_REUSED": ErrorSpec(422, "an Idempotency-Key was reused for a different request"),
    "IDEMPOTENCY_IN_FLIGHT": ErrorSpec(409, "the first request with this Idempotency-Key is still running"),
    "RATE_LIMITED": ErrorSpec(
        429, "the principal sent more requests than its rate allows; retry after `Retry-After` seconds"
    ),
    "AUTHENTICATION_RATE_LIMITED": ErrorSpec(
        429,
        "too many requests from this address failed authentication; a token not known good yet is refused"
        " until `Retry-After` seconds have passed",
    ),
    # Look-ups
    "DEPARTMENT_NOT_FOUND": ErrorSpec(404, "no department with this id or code"),
    "RESOURCE_NOT_FOUND": ErrorSpec(404, "no catalog resource with this id"),
    "REQUEST_NOT_FOUND": ErrorSpec(404, "no access request with this id"),
    "AGREEMENT_NOT_FOUND": ErrorSpec(404, "no agreement with this id"),
    "GRANT_NOT_FOUND": ErrorSpec(404, "no grant with this id"),
    "DELIVERY_NOT_FOUND": ErrorSpec(404, "no delivery with this id"),
    "RECEIPT_NOT_FOUND": ErrorSpec(404, "no receipt with this id that the caller is party to"),
    "RECEIPT_BATCH_NOT_FOUND": ErrorSpec(
        404, "no anchored receipt batch of this grant starts at this sequence"
    ),
    "RECEIPT_NOT_FINAL": ErrorSpec(
        409, "the receipt's batch is not on chain yet; settle it once it is final"
    ),
    "RECEIPT_BATCH_SETTLED": ErrorSpec(409, "the consumer already acknowledged this receipt batch"),
    "RECEIPT_ALREADY_DISPUTED": ErrorSpec(409, "the receipt was already disputed"),
    "RECEIPT_PROOF_INVALID": ErrorSpec(422, "the inclusion proof does not lead to the anchored root"),
    "RECEIPT_BATCH_OUT_OF_SEQUENCE": ErrorSpec(409, "the batch does not start at the grant's next sequence"),
    "PROPOSAL_NOT_FOUND": ErrorSpec(404, "no governance proposal with this id"),
    "DEMAND_NOT_FOUND": ErrorSpec(404, "no demand with this id"),
    "INSPECTION_NOT_FOUND": ErrorSpec(404, "no sampling inspection with this id"),
    # Parties and roles
    "NOT_A_PARTY": ErrorSpec(403, "the department is not the party this operation belongs to"),
    "NOT_RESOURCE_OWNER": ErrorSpec(403, "only the owning department may change a resource"),
    "CATALOG_DOCUMENT_MISMATCH": ErrorSpec(
        422, "an imported document does not hash to its resource's metadata hash"
    ),
    "NOT_A_GOVERNOR": ErrorSpec(403, "only governors may propose or approve governance actions"),
    "NO_CUSTODIED_KEY": ErrorSpec(409, "the service holds no signing key for this principal"),
    # Ledger rules
    "RESOURCE_NOT_SHARED": ErrorSpec(409, "the resource is classified as not shared"),
    "OWN_RESOURCE": ErrorSpec(422, "a department cannot request its own resource"),
    "TERMS_FIELD_UNKNOWN": ErrorSpec(
        422, "the terms' data list names a field the resource's catalog document does not list"
    ),
    "INVALID_PERIOD": ErrorSpec(422, "the validity window is empty or already over"),
    "PURPOSE_REQUIRED": ErrorSpec(422, "a request must state its purpose"),
    "REASON_REQUIRED": ErrorSpec(422, "a rejection needs a non-zero reason code"),
    "INVALID_METADATA": ErrorSpec(422, "the metadata hash must not be zero"),
    "REQUEST_STATUS_MISMATCH": ErrorSpec(409, "the request is not in the status this operation needs"),
    "TERMS_MISMATCH": ErrorSpec(422, "the signed terms differ from the approved request"),
    "SIGNATURE_EXPIRED": ErrorSpec(422, "the signatures' deadline has passed"),
    "INVALID_SIGNATURE": ErrorSpec(
        422, "the signature is not the department's signer's signature over the terms"
    ),
    "ALREADY_SIGNED": ErrorSpec(409, "this party already signed these terms; the other party must sign"),
    "CATALOG_CHANGED": ErrorSpec(
        409, "the resource's catalog entry changed since the terms were signed; sign the current terms"
    ),
    "KEY_EPOCH_MISMATCH": ErrorSpec(
        409, "a department was re-keyed since the terms were signed; sign the current terms"
    ),
    "AGREEMENT_NOT_ACTIVE": ErrorSpec(409, "the agreement is not in the status this operation needs"),
    "AGREEMENT_OUTSIDE_VALIDITY": ErrorSpec(409, "the agreement is active but outside its validity window"),
    "INVALID_EXPIRY": ErrorSpec(422, "the grant expiry is in the past or beyond the agreement's validity"),
    "GRANT_REVOKED": ErrorSpec(409, "the grant was revoked"),
    "GRANT_EXPIRED": ErrorSpec(409, "the grant has expired"),
    "DUPLICATE_DELIVERY": ErrorSpec(409, "a delivery with this id was already recorded"),
    "DELIVERY_ID_NOT_PROVIDERS": ErrorSpec(
        422, "a delivery id must start with its provider's department id (4 bytes, big-endian)"
    ),
    "DELIVERY_ID_IN_USE": ErrorSpec(
        409,
        "the provider already used this id for a delivery of the other kind (a ledger delivery or a receipt):"
        " one id names one delivery",
    ),
    "UNKNOWN_HASH_ALGORITHM": ErrorSpec(422, "the hash algorithm id is not one the ledger knows (1, 2)"),
    "RECEIPT_MISMATCH": ErrorSpec(422, "the receipt differs from the recorded one"),
    "DELIVERY_ALREADY_SETTLED": ErrorSpec(409, "the delivery was already acknowledged or disputed"),
    "INVALID_FIELD": ErrorSpec(422, "a ledger field is empty or zero"),
    "DEPARTMENT_NOT_ACTIVE": ErrorSpec(409, "the department is suspended"),
    "DEPARTMENT_ALREADY_REGISTERED": ErrorSpec(409, "the department code or signer is already taken"),
    "DEPARTMENT_STATUS_UNCHANGED": ErrorSpec(409, "the department already has this status"),
    "GOVERNANCE_INVALID_THRESHOLD": ErrorSpec(422, "the governor set would become unusable"),
    "PROPOSAL_EXECUTED": ErrorSpec(409, "the proposal already took effect"),
    "PROPOSAL_EXPIRED": ErrorSpec(409, "the proposal's approval window closed"),
    "ALREADY_APPROVED": ErrorSpec(409, "this governor already approved the proposal"),
    "MEMBERSHIP_UNCHANGED": ErrorSpec(409, "the account already has (or lacks) this role"),
    "UNKNOWN_GOVERNANCE_ACTION": ErrorSpec(422, "the proposal names an action the ledger does not know"),
    "PROPOSAL_BELOW_THRESHOLD": ErrorSpec(409, "the proposal's standing approvals are below the threshold"),
    "PROPOSAL_CANCELLED": ErrorSpec(409, "the proposer withdrew the proposal"),
    "NOT_PROPOSER": ErrorSpec(403, "only the proposal's proposer, still a governor, may cancel it"),
    "AGREEMENT_SUSPENDED_BY_GOVERNANCE": ErrorSpec(
        409, "governance suspended the agreement; only a governance proposal reinstates it"
    ),
    "DEMAND_ALREADY_ANSWERED": ErrorSpec(409, "the demand was answered already"),
    "UNKNOWN_DECLINE_CODE": ErrorSpec(422, "a decline needs one of the declared reason codes"),
    "DECLINE_NEEDS_ADDRESSEE": ErrorSpec(
        422,
        "only the department a demand is addressed to declines it; one addressed to no department is answered"
        " with a resource",
    ),
    "ANSWER_NOT_REJECTABLE": ErrorSpec(
        409, "the demand has no answer with a resource to reject: unanswered, or declined"
    ),
    "UNKNOWN_REJECTION_CODE": ErrorSpec(422, "a rejection needs one of the declared reason codes"),
    "ANSWERER_REJECTED": ErrorSpec(
        409,
        "the publisher rejected this department's answer to the demand to no one: it answers no more",
    ),
    "DEMAND_WITHDRAWN": ErrorSpec(409, "the publisher withdrew the demand"),
    "RESOURCE_UNFIT": ErrorSpec(
        422, "the resource is not the answering department's, not shared, or not new/existing as claimed"
    ),
    "SCORE_OUT_OF_RANGE": ErrorSpec(422, "scores run from 1 to 5"),
    "NO_DELIVERY_UNDER_AGREEMENT": ErrorSpec(
        409, "no delivery under the agreement yet: evaluation follows at least one delivery"
    ),
    "ALREADY_SCORED": ErrorSpec(409, "this side of the agreement was scored already in this period"),
    "EVIDENCE_TOO_OLD": ErrorSpec(
        409, "the delivery offered as evidence was made more than one evaluation period ago"
    ),
    "INVALID_INSPECTION": ErrorSpec(
        422,
        "the inspection's period must be whole evaluation periods and closed, its seed block and deadline in "
        "the future",
    ),
    "INSPECTION_STATUS_MISMATCH": ErrorSpec(409, "the inspection is not in the status this operation needs"),
    "SEED_UNAVAILABLE": ErrorSpec(
        409, "the seed block has no block on top of it yet (its hash is known from the next block on)"
    ),
    "INVALID_OUTCOME": ErrorSpec(
        409, "the outcome was recorded already, or `not_presented` before the presentation deadline"
    ),
    "NOT_SAMPLED": ErrorSpec(409, "the delivery is not in the inspection's sample"),
    "PRESENTATION_CLOSED": ErrorSpec(
        409, "the delivery's outcome is recorded already, or its presentation deadline has passed"
    ),
    "PRACTICE_PREDATES_OPERATION": ErrorSpec(
        409,
        "the sharing practice contract beside this ledger, deployed by an older dxl and kept on upgrade, "
        "predates this operation: it lacks the function the operation calls",
    ),
    "PRACTICE_NOT_DEPLOYED": ErrorSpec(
        503, "the sharing practice contract is not deployed beside this ledger (run `dxl deploy`)"
    ),
    "LEDGER_REJECTED": ErrorSpec(409, "the ledger rejected the transaction"),
    # Infrastructure
    "TRANSACTION_PENDING": ErrorSpec(
        409, "the transaction was sent but not mined in time; `tx_hash` tells which to look for"
    ),
    "NODE_UNAVAILABLE": ErrorSpec(503, "the chain node cannot be reached"),
    "INDEX_BEHIND": ErrorSpec(
        503, "the audit index keeps its confirmation depth behind the head, short of `min_block`; retry later"
    ),
    "DATABASE_UNAVAILABLE": ErrorSpec(
        503, "the API database cannot be written (disk full, server down); nothing was sent, retry later"
    ),
    "INTERNAL_ERROR": ErrorSpec(500, "an unexpected error; it was logged"),
}


class ApiError(DxlError):
    """An error the API reports to its caller; ``code`` must be a key of :data:`ERRORS`.

    ``field`` names the offending input for validation errors; ``details`` carries values that explain it.
    """

    def __init__(
        self, code: str, message: str | None = None, *, field: str | None = None, **details: Any
    ) -> None:
        if code not in ERRORS:
            raise ValueError(f"unknown API error code {code!r}")
        super().__init__(message or ERRORS[code].description, code=code)
        self.field = field
        self.details = details

    @property
    def status(self) -> int:
        return ERRORS[self.code].status


def not_found(kind: str, ident: object) -> ApiError:
    """The one answer for an id that does not exist and for one in an exchange the caller is not party to:
    same status, code and body, so a department cannot probe which ids other departments' exchanges use."""
    return ApiError(f"{kind.upper()}_NOT_FOUND", f"no {kind} {ident}")


def base64_field(value: str, field: str) -> bytes:
    """The bytes of a base64 body field.

    Raises:
        ApiError: VALIDATION_ERROR naming ``field`` when the value is not base64.
    """
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError("VALIDATION_ERROR", f"{field} is not base64", field=field) from None


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **{k: v for k, v in extra.items() if v is not None}}}


def error_response(
    code: str, message: str | None = None, *, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    spec = ERRORS[code]
    sent = {**(headers or {}), **({"WWW-Authenticate": "Bearer"} if spec.status == 401 else {})}
    return JSONResponse(error_body(code, message or spec.description, **extra), spec.status, headers=sent)


def revert_to_api_error(exc: Exception, *, fields: Mapping[str, str] | None = None) -> ApiError:
    """Maps a chain client revert (anything with ``error_name``/``error_args``) to an :class:`ApiError`. The
    revert of a view call (``view`` set: a read, nothing was sent) says what is missing (:func:`not_found`)
    or refused, not that a transaction was rejected.

    ``fields``: the request's field for each parameter name an error's ``field`` argument may carry
    (``PracticeInvalidField("dueBy")``: ``due_by``), so that a refusal the contract makes when the
    transaction is mined names the field the caller sent, as the service's own check of it does."""
    name = str(getattr(exc, "error_name", "") or "")
    code = error_code(name)
    args = getattr(exc, "error_args", None)
    if getattr(exc, "view", None):
        # A read reverted: nothing was sent, so the answer speaks of the record, not of a transaction.
        values = _iter_args(args) if args else []
        if code.endswith("_NOT_FOUND") and values:
            return not_found(code.removesuffix("_NOT_FOUND").lower(), _plain(values[0]))
        return ApiError(code, f"the ledger refused the read: {exc}", revert=name or None)
    message = describe_revert(name, args)
    if message is None:
        message = f"ledger rejected the transaction: {name or 'revert'}"
        if args:
            message += "(" + ", ".join(_plain(a) for a in _iter_args(args)) + ")"
    named = args.get("field") if isinstance(args, Mapping) else None
    field = fields.get(named) if fields is not None and isinstance(named, str) else None
    return ApiError(code, message, field=field, revert=name or None)


def _iter_args(args: Any) -> list[Any]:
    if isinstance(args, Mapping):
        return list(args.values())
    if isinstance(args, list | tuple):
        return list(args)
    return [args]


def _plain(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


class FieldRuleError(ValueError):
    """Thrown by a body's model validator when a rule over several of its fields refuses one of them
    (``period_from`` before ``period_to`` refuses ``period_to``): pydantic places such an error on the model,
    so the answer would name the whole ``body``, or the object holding the fields, and not the field to fix.

    ``field`` is the refused field's name in the body (its alias where it has one), relative to the model.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _loc_of(error: Mapping[str, Any]) -> tuple[Any, ...]:
    """Where a validation error is: pydantic's location, down to the field a :class:`FieldRuleError` names."""
    loc = tuple(error.get("loc", ()))
    refused = error.get("ctx", {}).get("error")
    return (*loc, refused.field) if isinstance(refused, FieldRuleError) else loc


def _field_of(loc: tuple[Any, ...]) -> str:
    # ("body", "purpose") → "purpose"; ("path", "request_id") → "request_id"; ("header", "x") → "x".
    parts = (
        [str(p) for p in loc[1:]]
        if loc and loc[0] in ("body", "path", "query", "header")
        else list(map(str, loc))
    )
    return ".".join(parts) or str(loc[0] if loc else "body")


@dataclass(frozen=True)
class PathMethods:
    """A path template of the app, the methods its route takes there and the query parameters it declares."""

    regex: re.Pattern[str]
    literal: bool
    methods: frozenset[str]
    #: The names (aliases) of the query parameters the route and its dependencies declare; None for a route
    #: that is no API operation (the console's pages), whose query is not the API's to judge.
    query: frozenset[str] | None
    #: Those of them that take a list (``?event=A&event=B``), which may be given more than once.
    repeatable: frozenset[str] = frozenset()


def _declared_query(dependant: Any) -> tuple[frozenset[str], frozenset[str]]:
    """The query parameters ``dependant`` and its dependencies declare, and those that take a list."""
    names: set[str] = set()
    lists: set[str] = set()
    stack = [dependant]
    while stack:
        dep = stack.pop()
        for field in dep.query_params:
            names.add(field.alias)
            # As FastAPI decides to read every value of a parameter rather than the last.
            if field_annotation_is_sequence(field.field_info.annotation):
                lists.add(field.alias)
        stack.extend(dep.dependencies)
    return frozenset(names), frozenset(lists)


def path_methods(app: FastAPI) -> list[PathMethods]:
    """Every route of ``app`` as path pattern, methods and query parameters (included routers flattened)."""
    found = []
    for route in routing.iter_route_contexts(app.routes):
        if route.path is None or not route.methods:
            continue
        regex, _, convertors = compile_path(route.path)
        operation = isinstance(route.original_route, routing.APIRoute) and route.include_in_schema
        query, repeatable = _declared_query(route.dependant) if operation else (None, frozenset[str]())
        found.append(PathMethods(regex, not convertors, frozenset(route.methods), query, repeatable))
    return found


def serving(table: list[PathMethods], path: str) -> list[PathMethods]:
    """The routes that serve ``path``; routes spelling the path literally decide when there are any
    (``/deliveries/batch`` is not a delivery id of ``/deliveries/{delivery_id}``). Empty: no route serves the
    path at all (a 404, not a 405)."""
    matching = [p for p in table if p.regex.match(path)]
    return [p for p in matching if p.literal] or matching


def allowed_methods(table: list[PathMethods], path: str) -> set[str]:
    """The methods some route takes at ``path`` (:func:`serving`)."""
    return set().union(*(p.methods for p in serving(table, path)))


def unknown_query(routes: list[PathMethods], method: str, query_string: bytes) -> JSONResponse | None:
    """422 VALIDATION_ERROR naming the first name in ``query_string`` that no route of ``routes`` taking
    ``method`` declares, or that is given more than once where the route takes one value; None when every
    name is declared and given as often as it may be, or no API operation takes the request. A mistyped
    filter (``?departmnet=PSB``) ignored would widen the answer to everyone's records, not narrow it; of a
    filter given twice (``?department=PSB&department=HRSS``), the route would read the last alone."""
    taking = [p for p in routes if method in p.methods and p.query is not None]
    if not taking or not query_string:
        return None
    declared = frozenset[str]().union(*(p.query or () for p in taking))
    # Read as the route reads its parameters (Starlette's QueryParams), so both see the same names.
    params = QueryParams(query_string)
    name = next((n for n in params if n not in declared), None)
    if name is None:
        repeatable = frozenset[str]().union(*(p.repeatable for p in taking))
        counts = collections.Counter(n for n, _ in params.multi_items())
        twice = next((n for n, times in counts.items() if times > 1 and n not in repeatable), None)
        if twice is None:
            return None
        return error_response(
            "VALIDATION_ERROR",
            f"{twice!r} is given {counts[twice]} times: this route takes one value of it",
            field=twice,
        )
    close = difflib.get_close_matches(name, sorted(declared), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return error_response(
        "VALIDATION_ERROR",
        f"{name!r} is not a query parameter of this route (it takes: {', '.join(sorted(declared)) or 'none'})"
        + hint,
        field=name,
    )


_ALLOWED_CACHE = 4096


def _tokens_sent(scope: Scope) -> int:
    return sum(name.lower() == b"authorization" for name, _ in scope["headers"])


class MethodGuardMiddleware:
    """Answers, before anything else looks at the request, 401 for a request sending two ``Authorization``
    headers, 405 (with ``Allow``) for a method no route takes at a path some route serves, and 422 for a
    query parameter the route serving it does not declare: an ``Idempotency-Key`` or a path parameter of
    such a request is not the API's to judge, and a refusal comes before a key is claimed, so a retry with
    the request corrected is a first request.

    A request acts as one principal: of two tokens, the routes (and the rate limit, the key's claim) read the
    first, while a proxy in front of the service may log or check the last."""

    def __init__(self, app: ASGIApp, *, api: FastAPI) -> None:
        self.app = app
        self._api = api
        self._table: list[PathMethods] | None = None
        #: The routes serving each path: matching every route's pattern is not for each request of a hot path.
        self._serving: dict[str, list[PathMethods]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self._table is None:  # on the first request: every route is in place by then
                self._table = path_methods(self._api)
            path = scope["path"]
            routes = self._serving.get(path)
            if routes is None:
                routes = serving(self._table, path)
                if len(self._serving) >= _ALLOWED_CACHE:  # ids make paths many: keep the newest only
                    self._serving.clear()
                self._serving[path] = routes
            allowed = set().union(*(p.methods for p in routes))
            method = scope["method"]
            response: JSONResponse | None
            if _tokens_sent(scope) > 1:
                response = error_response(
                    "UNAUTHENTICATED", "send one Authorization header: the request acts as one principal"
                )
            elif allowed and method not in allowed:
                response = error_response(
                    "METHOD_NOT_ALLOWED",
                    f"{method} is not allowed here",
                    headers={"Allow": ", ".join(sorted(allowed))},
                )
            else:
                response = unknown_query(routes, method, scope.get("query_string", b""))
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Registers the handlers: ApiError, reverts, other DxlErrors, validation, HTTP, the 500 safety net."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.code, exc.message, field=exc.field, **exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
        if first.get("type") == "json_invalid":
            # The location is a character offset; the field at fault is the body, as for one not UTF-8.
            return error_response("VALIDATION_ERROR", "the body is not valid JSON", field="body")
        field = _field_of(_loc_of(first) or ("body",))
        message = f"{field}: {first.get('msg', 'invalid value')}"
        problems = [{"field": _field_of(_loc_of(e)), "message": e.get("msg")} for e in errors]
        return error_response("VALIDATION_ERROR", message, field=field, problems=problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # 400 is FastAPI's answer to a body it cannot decode at all (not UTF-8, UTF-16 or UTF-32): malformed
        # input like any other, so the same 422 as JSON that does not parse.
        code = {
            400: "VALIDATION_ERROR",
            401: "UNAUTHENTICATED",
            403: "FORBIDDEN",
            404: "NOT_FOUND",
            405: "METHOD_NOT_ALLOWED",
            413: "PAYLOAD_TOO_LARGE",
            422: "VALIDATION_ERROR",
        }.get(exc.status_code)
        if code is None:
            log.error("unmapped HTTP error %s: %s", exc.status_code, exc.detail)
            return error_response("INTERNAL_ERROR")
        if code == "VALIDATION_ERROR":
            return error_response(code, "the body is not valid JSON", field="body", headers=exc.headers)
        return error_response(code, str(exc.detail) if exc.detail else None, headers=exc.headers)

    @app.exception_handler(DxlError)
    async def _dxl(_request: Request, exc: DxlError) -> JSONResponse:
        if hasattr(exc, "error_name"):
            api = revert_to_api_error(exc)
            return error_response(api.code, api.message, **api.details)
        if exc.code == "TRANSACTION_TIMEOUT":
            # Sent, outcome unknown: a 4xx so that an Idempotency-Key remembers it and a retry never sends the
            # write a second time; the client follows the transaction hash instead.
            return error_response("TRANSACTION_PENDING", exc.message, tx_hash=getattr(exc, "tx_hash", None))
        if isinstance(exc, NodeError):
            log.warning("chain node unavailable: %s", exc)
            return error_response("NODE_UNAVAILABLE")
        if exc.code in ERRORS and ERRORS[exc.code].status < 500:
            return error_response(exc.code, exc.message)
        if isinstance(exc, ConfigurationError | ValueError):
            return error_response("VALIDATION_ERROR", exc.message)
        log.error("unmapped dxl error %s", exc.code, exc_info=exc)
        return error_response("INTERNAL_ERROR")

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeoutError)
    async def _database(_request: Request, exc: Exception) -> JSONResponse:
        # Disk full, database server down or every pooled connection busy: the service's state, not a bug.
        log.warning("database unavailable: %s", exc)
        return error_response("DATABASE_UNAVAILABLE")

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error", exc_info=exc)
        return error_response("INTERNAL_ERROR")

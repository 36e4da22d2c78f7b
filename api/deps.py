"""Dependencies as ``Annotated`` aliases, so route signatures read as plain types."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BeforeValidator
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.auth import Principal, Role, authenticate
from api.errors import ApiError
from api.idempotency import MAX_KEY_LENGTH, SCOPE_CLAIM, ClaimOwner
from api.ledger import AtBlock, LedgerService, Listed, ListPage
from api.limits import SCOPE_PRINCIPAL
from api.models import BYTES32_PATTERN
from api.settings import ApiSettings
from node.audit.queries import CURSOR_PATTERN, MAX_LIMIT
from verifier.departments import DEPARTMENT_CODE_PATTERN


@dataclass
class AppState:
    """What the running app holds: the database and, once connected, the ledger service."""

    engine: Engine
    sessions: sessionmaker[Session]
    #: The settings the app was started with (other components open their own stores from them).
    settings: ApiSettings
    ledger: LedgerService | None = None
    startup_error: str | None = None
    #: This process on idempotency claims.
    claims: ClaimOwner = field(default_factory=ClaimOwner)
    extra: dict[str, object] = field(default_factory=dict)


def get_state(request: Request) -> AppState:
    return request.app.state.dxl  # type: ignore[no-any-return]


# The dependencies that only look at the request or at objects in memory are coroutines: FastAPI runs a plain
# function dependency in its thread pool, a hand-over of some 0.1 ms of CPU each (a write request made three
# for these). Those that read the database or the chain stay functions, off the event loop.
async def _state(request: Request) -> AppState:
    return get_state(request)


StateDep = Annotated[AppState, Depends(_state)]


_bearer = HTTPBearer(auto_error=False, description="API token: `Authorization: Bearer dxl_...`")


def get_principal(
    state: StateDep,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The principal of the bearer token.

    The session is closed before the route runs: a route waiting for the chain must not hold a pooled
    connection, or a stalled node would exhaust the pool and fail requests that need only the database.

    Raises:
        ApiError: UNAUTHENTICATED without a token, or with an unknown or revoked one.
    """
    if credentials is None or not credentials.credentials:
        raise ApiError("UNAUTHENTICATED", "send `Authorization: Bearer <token>`")
    with state.sessions() as session:
        principal = authenticate(session, credentials.credentials)
    if principal is None:
        raise ApiError("UNAUTHENTICATED", "the bearer token is unknown or revoked")
    # An auditor's token stands for the auditor whose key the service holds, while the ledger holds it one:
    # one governance revoked loses access within a second, no operator revoking its tokens. Without a ledger
    # connected (a start that failed) nothing says who the auditor is: the routes reading the ledger answer
    # 503, those reading the audit index alone still answer.
    if principal.role is Role.AUDITOR and state.ledger is not None and state.ledger.auditor_address() is None:
        raise ApiError(
            "UNAUTHENTICATED",
            "no auditor of the ledger stands behind this token: the service holds no key that holds the "
            "ledger's auditor role (governance revoked it, or none was appointed)",
        )
    request.scope[SCOPE_PRINCIPAL] = principal.key  # the token's later requests are charged to it
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def _require(*roles: Role, what: str):  # type: ignore[no-untyped-def]
    async def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            raise ApiError("FORBIDDEN", f"{principal.key} may not {what}")
        return principal

    # Read by roles_of(): the OpenAPI document states who may call each operation (x-dxl-roles).
    check.dxl_roles = roles  # type: ignore[attr-defined]
    return check


def roles_of(dependant: Any) -> list[str] | None:
    """The roles an endpoint admits, from its dependencies: None if it needs no principal (public), else the
    narrowest role set among its role checks (every role if it only needs to be authenticated)."""
    found: list[tuple[Role, ...]] = []
    authenticated = False
    stack = [dependant]
    while stack:
        dep = stack.pop()
        call = getattr(dep, "call", None)
        if call is get_principal:
            authenticated = True
        roles = getattr(call, "dxl_roles", None)
        if roles is not None:
            found.append(roles)
        stack.extend(getattr(dep, "dependencies", []))
    if found:
        narrowest = set.intersection(*(set(r) for r in found))
        return sorted(r.value for r in narrowest)
    return sorted(r.value for r in Role) if authenticated else None


DepartmentPrincipal = Annotated[Principal, Depends(_require(Role.DEPARTMENT, what="act as a department"))]
GovernorPrincipal = Annotated[Principal, Depends(_require(Role.GOVERNOR, what="administer membership"))]
GovernanceReader = Annotated[
    Principal, Depends(_require(Role.GOVERNOR, Role.AUDITOR, what="read governance proposals"))
]
AuditorPrincipal = Annotated[Principal, Depends(_require(Role.AUDITOR, what="run the audit indexer"))]
InspectorPrincipal = Annotated[Principal, Depends(_require(Role.AUDITOR, what="run sampling inspections"))]
#: Governors are refused as on exchanges and scorecards: a sample names deliveries between departments.
InspectionReader = Annotated[
    Principal, Depends(_require(Role.DEPARTMENT, Role.AUDITOR, what="read sampling inspections"))
]
InspectionDrawer = Annotated[
    Principal, Depends(_require(Role.DEPARTMENT, Role.AUDITOR, what="draw an inspection's sample"))
]
ExchangeReader = Annotated[
    Principal, Depends(_require(Role.DEPARTMENT, Role.AUDITOR, what="read exchanges between departments"))
]


async def get_ledger(state: StateDep, request: Request) -> LedgerService:
    """The ledger service, bound to the request's idempotency claim (its writes are journaled under it)."""
    if state.ledger is None:
        raise ApiError("NODE_UNAVAILABLE", state.startup_error or "the ledger is not connected yet")
    return state.ledger.bound(request.scope.get(SCOPE_CLAIM), write=request.method in _WRITES)


_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


# Read by api.openapi: operations depending on it declare 404 (unknown ids) and 503 (node down).
get_ledger.dxl_reads_ledger = True  # type: ignore[attr-defined]
LedgerDep = Annotated[LedgerService, Depends(get_ledger)]

#: Declared on write routes so the header appears in the OpenAPI document; the middleware does the work.
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=MAX_KEY_LENGTH,
        # What the middleware takes (api.idempotency): printable ASCII; HTTP strips spaces at either end, so
        # a key neither starts nor ends with one.
        pattern=rf"^[!-~]([ -~]{{0,{MAX_KEY_LENGTH - 2}}}[!-~])?$",
        description="Retry-safe key: a retry with the same key and body gets the first result, records once.",
    ),
]


def _digits(value: Any) -> Any:
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("expected an integer in decimal digits")
    return value


#: An integer in a path or a query is written in decimal digits: pydantic's lax parsing of text took "1_0"
#: for 10 and "1.0", "+1" or " 1" for 1, where a body's "4" or 4.0 is refused. Put after ``Path``/``Query``:
#: before them, FastAPI wrote their bounds into the document as ``ge``/``le``, not ``minimum``/``maximum``.
Digits = BeforeValidator(_digits)

#: A delivery id (or a payload commitment) in a path.
DeliveryId = Annotated[str, Path(pattern=BYTES32_PATTERN, description="bytes32 delivery id")]
#: A department by its code or its id (uint32) in a query (``GET /audit/history``, ``/audit/scorecard``).
_DEPARTMENT_NAMED = rf"({DEPARTMENT_CODE_PATTERN})|(^[0-9]{{1,10}}$)"
DepartmentQuery = Annotated[str | None, Query(pattern=_DEPARTMENT_NAMED, description="code or id")]
#: A moment in a query: an ISO 8601 date or date-time (UTC when it names no zone).
IsoMoment = Annotated[
    str | None,
    Query(
        json_schema_extra={
            "anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]
        }
    ),
]

#: How many records a list endpoint answers (``?limit=``); one bound for every list.
ListLimit = Annotated[int, Query(ge=1, le=MAX_LIMIT), Digits]

#: A page cursor of a list (the ``next`` link of the page before), or of the exchange history (its
#: ``next_cursor``). Its form is in the document (``CURSOR_PATTERN``), so that a client or a fuzzer can tell a
#: cursor from any string; the route still refuses one of that form that names no page of the list.
ListCursor = Annotated[
    str | None,
    Query(
        max_length=200,
        pattern=CURSOR_PATTERN,
        description='The cursor of the page before\'s `Link: <…>; rel="next"` header (the history: its '
        "`next_cursor`); empty: the first page.",
    ),
]
#: A list's filter by an id (a grant, agreement or resource).
#: A record's uint64 id in a path: a resource, request, agreement, grant, demand or inspection.
IdPath = Annotated[int, Path(ge=1, le=2**64 - 1), Digits]
IdFilter = Annotated[int | None, Query(ge=1, le=2**64 - 1), Digits]


def _department_filter(name: str) -> Any:
    """The list filter ``?<name>=``: a department by its code (``HRSS``) or its id (``2``), as the id of an
    admitted department. One the ledger never admitted is ``404 DEPARTMENT_NOT_FOUND``
    (:meth:`LedgerService.department_named`), not an empty list that reads as a department with nothing."""

    def admitted(ledger: LedgerService, value: str | None) -> int | None:
        return None if value is None else ledger.department_named(value)

    # The query's name is the filter's (an alias): the signature is built, not written, so that each filter
    # is this one resolver under its own name in the OpenAPI document.
    keyword = inspect.Parameter.KEYWORD_ONLY
    query = Query(alias=name, pattern=_DEPARTMENT_NAMED, description="department code or id")
    admitted.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("ledger", keyword, annotation=LedgerDep),
            inspect.Parameter("value", keyword, default=None, annotation=Annotated[str | None, query]),
        ],
        return_annotation=int | None,
    )
    return Depends(admitted)


#: The list filters by department: the id of the department the query names by code or id.
OwnerFilter = Annotated[int | None, _department_filter("owner")]
ProviderFilter = Annotated[int | None, _department_filter("provider")]
ConsumerFilter = Annotated[int | None, _department_filter("consumer")]
PublisherFilter = Annotated[int | None, _department_filter("publisher")]
AddresseeFilter = Annotated[int | None, _department_filter("addressee")]
#: Read your own write: a list waits until the audit index holds this block (a write's ``block_number``).
MinBlock = Annotated[
    int | None,
    Query(
        ge=0,
        le=2**63 - 1,
        description="Bring the audit index up to this block first (the block of a write just made); "
        "503 INDEX_BEHIND if it cannot reach it yet.",
    ),
    Digits,
]


async def list_page(
    limit: ListLimit = 100, cursor: ListCursor = None, min_block: MinBlock = None
) -> ListPage:
    """The paging parameters every list read from the audit index takes."""
    return ListPage(limit=limit, cursor=cursor, min_block=min_block)


ListPageDep = Annotated[ListPage, Depends(list_page)]


async def chain_list_page(limit: ListLimit = 100, cursor: ListCursor = None) -> ListPage:
    """The paging parameters of a list read from the audit index brought up to the chain's head by each
    request itself (the demand lists, inspections, evaluations, departments): those of the other lists read
    from the audit index but ``min_block``, which they have no need of."""
    return ListPage(limit=limit, cursor=cursor)


ChainListPageDep = Annotated[ListPage, Depends(chain_list_page)]


#: The header of an answer read from the chain (one record, not a list from the audit index): the block
#: every read of it was made at, the node's head as the read began (a list's ``X-Indexed-Block`` is its
#: counterpart).
CHAIN_BLOCK_HEADER = "X-Chain-Block"
#: What a route answering :data:`CHAIN_BLOCK_HEADER` declares of its 200 in the OpenAPI document.
CHAIN_BLOCK_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            CHAIN_BLOCK_HEADER: {
                "description": "The block every read of the chain in this answer was made at: the node's "
                "head as the read began",
                "schema": {"type": "integer", "minimum": 0},
                "required": True,
            }
        }
    }
}


def chain_block_header(response: Response, read: AtBlock[Any]) -> None:
    """``X-Chain-Block`` of an answer read from the chain at one block (:class:`api.ledger.AtBlock`)."""
    response.headers[CHAIN_BLOCK_HEADER] = str(read.block)


def page_headers(request: Request, response: Response, listed: Listed[Any]) -> None:
    """The headers of one page of a list read from the audit index: ``Link: <…>; rel="next"`` (RFC 8288)
    with the next page's cursor when there is one, and ``X-Indexed-Block``, the last block the index held.

    The link is a path and query, which RFC 8288 resolves against the request's own address: an absolute one
    is built from the Host header, and behind a reverse proxy that names its upstream (nginx's default) it
    sent clients, the console's pages included, past the proxy to an address they cannot reach."""
    if listed.next_cursor is not None:
        following = request.url.include_query_params(cursor=listed.next_cursor)
        response.headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
    if listed.indexed_block is not None:
        response.headers["X-Indexed-Block"] = str(listed.indexed_block)

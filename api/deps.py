"""Dependencies as ``Annotated`` aliases, so route signatures read as plain types."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.auth import Principal, Role, authenticate
from api.errors import ApiError
from api.ledger import LedgerService


@dataclass
class AppState:
    """What the running app holds: the database and, once connected, the ledger service."""

    engine: Engine
    sessions: sessionmaker[Session]
    ledger: LedgerService | None = None
    startup_error: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


def get_state(request: Request) -> AppState:
    return request.app.state.dxl  # type: ignore[no-any-return]


StateDep = Annotated[AppState, Depends(get_state)]


def get_db(state: StateDep) -> Iterator[Session]:
    with state.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]

_bearer = HTTPBearer(auto_error=False, description="API token: `Authorization: Bearer dxl_...`")


def get_principal(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The principal of the bearer token.

    Raises:
        ApiError: UNAUTHENTICATED without a token, or with an unknown or revoked one.
    """
    if credentials is None or not credentials.credentials:
        raise ApiError("UNAUTHENTICATED", "send `Authorization: Bearer <token>`")
    principal = authenticate(session, credentials.credentials)
    if principal is None:
        raise ApiError("UNAUTHENTICATED", "the bearer token is unknown or revoked")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def _require(*roles: Role, what: str):  # type: ignore[no-untyped-def]
    def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            raise ApiError("FORBIDDEN", f"{principal.key} may not {what}")
        return principal

    return check


DepartmentPrincipal = Annotated[Principal, Depends(_require(Role.DEPARTMENT, what="act as a department"))]
GovernorPrincipal = Annotated[Principal, Depends(_require(Role.GOVERNOR, what="administer membership"))]
ExchangeReader = Annotated[
    Principal, Depends(_require(Role.DEPARTMENT, Role.AUDITOR, what="read exchanges between departments"))
]


def get_ledger(state: StateDep) -> LedgerService:
    if state.ledger is None:
        raise ApiError("NODE_UNAVAILABLE", state.startup_error or "the ledger is not connected yet")
    return state.ledger


LedgerDep = Annotated[LedgerService, Depends(get_ledger)]

#: Declared on write routes so the header appears in the OpenAPI document; the middleware does the work.
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Retry-safe key: a retry with the same key and body gets the first result, records once.",
    ),
]

"""Bearer tokens and the principals they stand for.

A token is 32 random bytes (URL-safe base64, prefixed ``dxl_``). Only its SHA-256 is stored; the plaintext is
shown once when issued. Look-up goes by the hash (an index), and the stored hash is then compared with
:func:`hmac.compare_digest` so the comparison itself leaks no timing.

Principals:

* ``department:<CODE>`` acts only as that department and reads only exchanges it is party to;
* ``auditor`` reads everything and writes only sampling inspections (with the custodied auditor key), while
  that key holds the ledger's auditor role (:meth:`api.ledger.core.LedgerCore.auditor_address`);
* ``governor:<N>`` (1-based index of the governor key) administers membership through proposals.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api.db import ApiToken, utcnow
from node.errors import DxlError
from verifier.departments import is_department_code

TOKEN_PREFIX = "dxl_"


class TokenError(DxlError, ValueError):
    """Thrown when a token cannot be issued or revoked (bad principal, duplicate name, unknown token)."""

    code = "TOKEN_ERROR"


class Role(StrEnum):
    DEPARTMENT = "department"
    AUDITOR = "auditor"
    GOVERNOR = "governor"


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: ``department`` is a department code, ``governor`` a 1-based governor index."""

    role: Role
    department: str | None = None
    governor: int | None = None
    token_name: str = ""

    @property
    def key(self) -> str:
        """The canonical string form, as stored with tokens and idempotency records."""
        if self.role is Role.DEPARTMENT:
            return f"department:{self.department}"
        if self.role is Role.GOVERNOR:
            return f"governor:{self.governor}"
        return "auditor"


def parse_principal(text: str) -> Principal:
    """Parses ``CODE``, ``department:CODE``, ``governor:N`` or ``auditor``.

    Raises:
        TokenError: the text names no principal.
    """
    raw = text.strip()
    if raw.lower() == "auditor":
        return Principal(Role.AUDITOR)
    kind, sep, rest = raw.partition(":")
    if sep and kind.lower() == "governor":
        # ASCII digits, a few: str.isdigit also takes U+00B2 (superscript two, which int() refuses) and U+0661
        # (Arabic-Indic one, which int() reads as 1).
        if not (rest.isascii() and rest.isdigit()) or len(rest) > 9 or int(rest) < 1:
            raise TokenError(f"governor principal needs a 1-based index, got {text!r} (e.g. governor:1)")
        return Principal(Role.GOVERNOR, governor=int(rest))
    code = rest if sep and kind.lower() == "department" else raw
    # Upper-cased only when ASCII: str.upper maps other letters onto codes (U+017F, a long s, becomes "S").
    code = code.upper() if code.isascii() else code
    if not is_department_code(code):
        raise TokenError(
            f"{text!r} is not a principal: use a department code (e.g. PSB), governor:N or auditor"
        )
    return Principal(Role.DEPARTMENT, department=code)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def issue_token(session: Session, *, principal: Principal, name: str) -> str:
    """Stores a new token's hash for ``principal`` under ``name``; returns the plaintext (shown once).

    Raises:
        TokenError: the name is empty or already used.
    """
    if not name.strip() or len(name) > 100:
        raise TokenError("a token needs a name of 1 to 100 characters")
    token = new_token()
    session.add(ApiToken(name=name.strip(), principal=principal.key, token_hash=hash_token(token)))
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise TokenError(f"a token named {name!r} already exists; revoke it or choose another name") from exc
    return token


def revoke_token(session: Session, *, name: str) -> None:
    """Revokes the token named ``name``.

    Raises:
        TokenError: no active token has that name.
    """
    row = session.scalar(select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None)))
    if row is None:
        raise TokenError(f"no active token named {name!r}")
    row.revoked_at = utcnow()


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def authenticate(session: Session, token: str) -> Principal | None:
    """The principal of an active token, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = hash_token(token)
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_hash, digest):
        return None
    principal = parse_principal(row.principal)
    return Principal(principal.role, principal.department, principal.governor, token_name=row.name)


def principal_key(sessions: sessionmaker[Session], token: str) -> str | None:
    """The key (:attr:`Principal.key`) of an active token's principal, or None, read in a session of its own:
    whose a request is, for the middlewares that act before the route authenticates it.

    Raises:
        SQLAlchemyError: the API database cannot be read.
    """
    with sessions() as session:
        principal = authenticate(session, token)
    return principal.key if principal else None

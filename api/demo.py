"""The demo consortium's API tokens and catalog documents: the one place of the HTTP service that knows the
demo's names (:mod:`node.provision`). ``dxl run`` seeds them; the service itself finds keys by address.

:func:`ensure_demo_tokens` issues one token per provisioned principal the first time it runs and returns the
new plaintexts (``dxl run`` prints them once); they are also written to ``DXL_HOME/secrets/demo-tokens.json``
(mode 0600) so a demo user can find them later. Tokens issued earlier are never shown again (``None``): revoke
and re-issue with ``dxl token`` to get a new one. A database that lacks tokens the file records was deleted or
replaced: that stops the start (:class:`ApiDatabaseLostError`) instead of issuing every demo token again.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from sqlalchemy import Engine, select

from api.auth import Principal, Role, issue_token
from api.catalog import DocumentStore
from api.db import ApiToken, init_db, make_engine, session_factory, session_scope
from api.settings import ApiSettings
from node.errors import ConfigurationError

DEMO_TOKENS_FILE = "demo-tokens.json"


def demo_principals() -> dict[str, Principal]:
    """Token name → principal for the demo consortium of :mod:`node.provision`."""
    from node.provision import DEPARTMENTS, GOVERNORS

    found: dict[str, Principal] = {
        f"demo-{d.code.lower()}": Principal(Role.DEPARTMENT, department=d.code) for d in DEPARTMENTS
    }
    for i, _name in enumerate(GOVERNORS, start=1):
        found[f"demo-governor-{i}"] = Principal(Role.GOVERNOR, governor=i)
    found["demo-auditor"] = Principal(Role.AUDITOR)
    return found


class ApiDatabaseLostError(ConfigurationError):
    """Thrown when the API database lacks tokens that ``demo-tokens.json`` records as issued: it was deleted
    or replaced, and issuing every demo token again would silently hand out new credentials."""

    code = "API_DATABASE_LOST"

    def __init__(self, database: str, record: Path, missing: list[str]) -> None:
        super().__init__(
            f"the API database ({database}) has no token named {', '.join(missing)}, though {record} "
            "records them as issued: the database was deleted or replaced. Restore it from its backup "
            "(README: 'Where state lives'); or, to issue new demo tokens instead, move "
            f"{record} away and start again"
        )


def ensure_demo_tokens(settings: ApiSettings) -> dict[str, str | None]:
    """Issue a token for each demo principal that has none yet; returns name → new plaintext, or None for a
    token issued earlier. New tokens are added to ``DXL_HOME/secrets/demo-tokens.json`` (0600).

    Also stores the demo resources' catalog documents, so the provisioned catalog reads as titled entries.

    Raises:
        ApiDatabaseLostError: the file records a demo token the database has no row for (revoked tokens keep
            theirs), i.e. the database was deleted or replaced; nothing is issued.
    """
    from node.provision import RESOURCES

    record = settings.secrets_dir / DEMO_TOKENS_FILE
    engine = make_engine(settings.effective_database_url)
    try:
        init_db(engine)
        result: dict[str, str | None] = {}
        with session_scope(session_factory(engine)) as session:
            existing = set(session.scalars(select(ApiToken.name)))
            missing = sorted(set(_recorded_demo_tokens(record)) - existing)
            if missing:
                raise ApiDatabaseLostError(_redacted(engine), record, missing)
            for name, principal in demo_principals().items():
                result[name] = (
                    None if name in existing else issue_token(session, principal=principal, name=name)
                )
        store = DocumentStore(lambda: session_factory(engine))
        for resource in RESOURCES:
            store.put(resource.metadata())
    finally:
        engine.dispose()
    fresh = {name: token for name, token in result.items() if token is not None}
    if fresh:
        _remember_demo_tokens(settings.secrets_dir / DEMO_TOKENS_FILE, fresh)
    return result


def _recorded_demo_tokens(path: Path) -> dict[str, object]:
    """Names → entries of the demo tokens file; empty when there is none (or it is unreadable)."""
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def _redacted(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _remember_demo_tokens(path: Path, fresh: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    known = _recorded_demo_tokens(path)
    known.update(
        {name: {"token": token, "principal": demo_principals()[name].key} for name, token in fresh.items()}
    )
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(known, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, path)

"""``dxl token issue|revoke|list``: API tokens for departments, governors and auditors.

A token is printed once, when issued; only its SHA-256 is stored (in the API database under ``DXL_HOME``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from dxl.commands.common import JsonOption, exits_on_error
from verifier.text import iso_time

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

token_app = typer.Typer(name="token", help="Issue, revoke and list API tokens.", no_args_is_help=True)


def _sessions() -> sessionmaker[Session]:
    from api.db import init_db, make_engine, session_factory
    from api.settings import load_api_settings

    settings = load_api_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.effective_database_url)
    init_db(engine)
    return session_factory(engine)


@token_app.command("issue")
def issue_command(
    principal: Annotated[
        str, typer.Option("--principal", "-p", help="Department code (PSB), governor:N or auditor.")
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="Unique token name (e.g. psb-batch-job).")],
    as_json: JsonOption = False,
) -> None:
    """Issue a token and print it once; store it now, it cannot be shown again."""
    from api.auth import issue_token, parse_principal
    from api.db import session_scope

    with exits_on_error(as_json):
        who = parse_principal(principal)
        with session_scope(_sessions()) as session:
            token = issue_token(session, principal=who, name=name)
    if as_json:
        typer.echo(json.dumps({"name": name, "principal": who.key, "token": token}))
    else:
        typer.echo(f"token {name} for {who.key} (shown once):\n{token}")


@token_app.command("revoke")
def revoke_command(
    name: Annotated[str, typer.Argument(help="Name of the token to revoke.")], as_json: JsonOption = False
) -> None:
    """Revoke a token by name; requests with it get 401 from then on."""
    from api.auth import revoke_token
    from api.db import session_scope

    with exits_on_error(as_json), session_scope(_sessions()) as session:
        revoke_token(session, name=name)
    typer.echo(json.dumps({"revoked": name}) if as_json else f"revoked {name}")


def _when(moment: datetime) -> str:
    """A token's time as dxl says every time (:func:`verifier.text.iso_time`). The column is written in UTC
    (``api.db.utcnow``); PostgreSQL hands it back with its zone, but SQLite keeps none and hands back a naive
    datetime, which ``timestamp()`` would read as the machine's local time: a naive one is UTC."""
    return iso_time(int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()))


@token_app.command("list")
def list_command(as_json: JsonOption = False) -> None:
    """List tokens (names, principals, dates; never the tokens)."""
    from api.auth import list_tokens
    from api.db import session_scope

    with exits_on_error(as_json), session_scope(_sessions()) as session:
        rows = [
            {"name": t.name, "principal": t.principal, "created_at": _when(t.created_at),
             "revoked_at": _when(t.revoked_at) if t.revoked_at else None}
            for t in list_tokens(session)
        ]  # fmt: skip
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for row in rows:
        state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
        typer.echo(f"{row['name']:<28} {row['principal']:<20} issued {row['created_at']}, {state}")


def register(app: typer.Typer) -> None:
    app.add_typer(token_app)

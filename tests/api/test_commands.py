"""``dxl token issue|list|revoke`` against a real database under a temporary DXL_HOME."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.auth import authenticate
from api.db import make_engine, session_factory
from dxl.app import app
from tests.cli import dxl as cli

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DXL_HOME", str(tmp_path))
    monkeypatch.delenv("DXL_DATABASE_URL", raising=False)
    return tmp_path


def _dxl(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_issue_list_revoke(home: Path) -> None:
    code, out = _dxl("token", "issue", "--principal", "psb", "--name", "psb-job", "--json")
    assert code == 0
    issued = json.loads(out)
    assert issued["principal"] == "department:PSB" and issued["token"].startswith("dxl_")
    engine = make_engine(f"sqlite:///{home / 'dxl.sqlite3'}")
    with session_factory(engine)() as session:
        principal = authenticate(session, issued["token"])
        assert principal is not None and principal.key == "department:PSB"
    code, out = _dxl("token", "list", "--json")
    listed = json.loads(out)
    assert [(t["name"], t["principal"], t["revoked_at"]) for t in listed] == [
        ("psb-job", "department:PSB", None)
    ]
    assert issued["token"] not in out
    assert _dxl("token", "revoke", "psb-job")[0] == 0
    with session_factory(engine)() as session:
        assert authenticate(session, issued["token"]) is None
    engine.dispose()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["issue", "--principal", "two words", "--name", "x"], "is not a principal"),
        (["issue", "--principal", "governor:0", "--name", "x"], "1-based index"),
        (["revoke", "nobody"], "no active token"),
    ],
)
def test_errors_exit_2_with_a_message(home: Path, args: list[str], message: str) -> None:
    code, out = _dxl("token", *args, "--json")
    assert code == 2 and message in json.loads(out)["message"]


def test_duplicate_name_is_refused(home: Path) -> None:
    assert _dxl("token", "issue", "-p", "auditor", "-n", "a")[0] == 0
    code, out = _dxl("token", "issue", "-p", "auditor", "-n", "a", "--json")
    assert code == 2 and json.loads(out)["error"] == "TOKEN_ERROR"


@pytest.mark.parametrize(
    "url",
    [
        "nonsense://x",
        "not a url",
        "mysql://dxl@127.0.0.1/dxl",
        "sqlite+nodriver:///x.db",
        "postgresql+psycopg2://h/d",
    ],
    ids=["unknown-scheme", "malformed", "another-database", "unknown-driver", "driver-not-installed"],
)
def test_a_database_url_dxl_cannot_use_is_one_clear_error(
    home: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """DXL_DATABASE_URL is read as the audit index reads it: SQLite or PostgreSQL, or exit 2 naming the
    setting (the API's database took any URL to SQLAlchemy, whose refusal was a page of traceback and exit 1,
    from a token command as from `dxl run`)."""
    monkeypatch.setenv("DXL_DATABASE_URL", url)
    code, out = _dxl("token", "list", "--json")
    assert code == 2, out
    error = json.loads(out)
    assert error["error"] == "CONFIGURATION_ERROR" and "DXL_DATABASE_URL" in error["message"], error


@pytest.mark.parametrize(
    "url",
    ["postgresql://dxl:hunter22@127.0.0.1:1/dxl", "sqlite:////nonexistent-dir/dxl.sqlite3"],
    ids=["server-refuses", "no-such-directory"],
)
def test_a_database_that_cannot_be_opened_is_one_clear_error(
    home: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """A DXL_DATABASE_URL naming a server that does not answer or a directory that does not exist ends a
    command in one line naming the database (its password hidden), exit 2: it was SQLAlchemy's traceback, exit
    1, from `dxl token` as from `dxl run`'s start."""
    monkeypatch.setenv("DXL_DATABASE_URL", url)
    code, out, err = cli("token", "list", "--json")
    assert code == 2 and "Traceback" not in err, err
    error = json.loads(out)
    assert error["error"] == "CONFIGURATION_ERROR", error
    assert "cannot be opened" in error["message"] and "hunter22" not in error["message"], error
    code, _, err = cli("token", "list")
    assert code == 2 and err.startswith("error: the database ") and len(err.strip().splitlines()) == 1, err

"""``dxl token issue|list|revoke`` against a real database under a temporary DXL_HOME."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.auth import authenticate
from api.db import make_engine, session_factory
from tests.cli import dxl as cli
from tests.postgres import BACKENDS, database_url
from verifier.text import iso_time


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DXL_HOME", str(tmp_path))
    monkeypatch.delenv("DXL_DATABASE_URL", raising=False)
    return tmp_path


def _dxl(*args: str) -> tuple[int, str]:
    """``dxl ARGS...`` as its entry point runs it (the command tree built once a process, not by typer's
    ``CliRunner`` for each run): the exit status and stdout then stderr."""
    code, out, err = cli(*args)
    return code, out + err


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


@pytest.fixture
def far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone eight hours east of UTC, for as long as the test runs."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.usefixtures("far_from_utc")
def test_token_list_says_its_times_as_dxl_says_every_time(
    home: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """`dxl token list` said a token's times as the database handed them back: to the microsecond, with
    `+00:00` (PostgreSQL) or no zone at all (SQLite), and its text the revocation alone. dxl says a time in
    ISO 8601 UTC to the second (`verifier.text.iso_time`), and SQLite's times, which carry no zone, are UTC
    whatever the machine's zone."""
    with database_url(backend, home / "dxl.sqlite3", "tokens") as url:
        monkeypatch.setenv("DXL_DATABASE_URL", url)
        before = int(time.time())
        for principal, name in (("psb", "psb-job"), ("hrss", "hrss-job")):
            assert _dxl("token", "issue", "--principal", principal, "--name", name)[0] == 0
        assert _dxl("token", "revoke", "psb-job")[0] == 0
        spelled = {iso_time(t) for t in range(before, int(time.time()) + 1)}
        code, out = _dxl("token", "list", "--json")
        assert code == 0, out
        listed = {t["name"]: t for t in json.loads(out)}
        revoked, active = listed["psb-job"], listed["hrss-job"]
        assert {revoked["created_at"], revoked["revoked_at"], active["created_at"]} <= spelled, listed
        assert active["revoked_at"] is None
        code, out = _dxl("token", "list")
        assert code == 0, out
        assert f" issued {revoked['created_at']}, revoked {revoked['revoked_at']}\n" in out, out
        assert f" issued {active['created_at']}, active\n" in out, out


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

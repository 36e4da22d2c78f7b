"""Schemathesis hooks of ``tests/api/test_fuzz.py`` (loaded through ``SCHEMATHESIS_HOOKS``).

A client sends an ``Idempotency-Key`` once per request it means, never the same key for two different
requests. Generated keys are short and few ("0", "A", the same boundary strings on every operation), so
keys drawn for a valid request collided with another operation's and the middleware answered 422
``IDEMPOTENCY_KEY_REUSED`` before the route ran: most writes never reached their checks. A schema-valid
key is therefore made unique, as a client's would be, in the generated phases (fuzzing, stateful: every
write then runs under a claim) and left out in the coverage phase, whose thousands of boundary cases are
about the body and the parameters (a claim is two more database commits per write). Invalid keys (negative
cases) are sent as drawn: they must still be refused. Reusing a key is tested by hand
(``tests/api/test_idempotency.py``). The coverage cases that varied only a valid key would then repeat the
default case: they are left out, which with fewer unexpected methods (``schemathesis.toml``) pays for the
requests that now reach the routes' checks (the short run's CPU stayed where it was).

JSON Schema counts ``4.0`` an integer, and schemathesis draws integers of a JSON body as whole floats half
the time; the service refuses them (422 naming the field: ``4.0`` is not ``4``,
``tests/api/test_api_contract.py``), so a valid body with three integer fields reached the route's checks one
time in eight. A valid body's whole floats are sent as the integers they are, as a client writes them;
invalid bodies are sent as drawn.

Ids drawn over a whole ``uint64`` name no record: most operations on one answered 404 and never reached the
checks behind the look-up (``make fuzz`` reported twenty such operations per role). In every run
(``DXL_FUZZ_KNOWN``, set by ``tests/api/test_fuzz.py``), half of the valid ids a fuzzed case carries in its
path or body are turned into the small ids the deployment's records have and into the delivery ids it
holds; the choice is a function of the drawn value, so a failing case replays and shrinks alike.

A full run also checks that a refused write recorded nothing (``DXL_FUZZ_DATABASE``, the URL of the service's
database, SQLite or PostgreSQL): no transaction journaled and sent, no catalog document, terms text, kept
signature, receipt or presentation stored by a write answered 4xx (``TRANSACTION_PENDING`` aside: sent, its
outcome not known yet). It writes how many refused writes it checked to ``DXL_FUZZ_CHECKED`` as the run
ends, so the test knows it ran.

Every run counts the answers it got (``DXL_FUZZ_TALLY``, a JSON file written as the run ends): by phase,
operation, whether the case was generated valid or invalid, and status. The test reports them and holds the
department's run to the success paths it reaches (``tests/api/test_fuzz.py``): a run whose valid requests
were all refused would find no 5xx where nothing ran.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import secrets
from collections import Counter
from pathlib import Path
from typing import Any

import schemathesis
from schemathesis.core.parameters import ParameterLocation
from sqlalchemy import Engine, create_engine, make_url, text

_RUN = secrets.token_hex(4)
_SEQUENCE = itertools.count()
#: The delivery ids of the run's deployment, when the run steers ids to its records (see the module).
_KNOWN: dict[str, Any] | None = json.loads(os.environ.get("DXL_FUZZ_KNOWN", "null"))
#: Path parameters and body fields that name a record by a number the ledger or the service gave it.
_NUMBERED = frozenset(
    {"agreement_id", "grant_id", "request_id", "resource_id", "proposal_id", "demand_id", "inspection_id",
     "department_id", "first_sequence"}
)  # fmt: skip
#: The records a deployment of the module has of each kind, at least: ids 1 to this.
_SMALL = 4


def _idempotency_key(headers: dict[str, Any]) -> str | None:
    return next((h for h in headers if h.lower() == "idempotency-key"), None)


@schemathesis.hook
def filter_case(ctx: Any, case: Any) -> bool:
    """Leave out a coverage case that varies only a valid key: without its key (below) it is the operation's
    default case, sent already."""
    meta = case.meta
    return not (
        meta is not None
        and meta.phase.name == "coverage"
        and getattr(meta.phase.data, "parameter", None) == "Idempotency-Key"
        and not meta.is_negative_at(ParameterLocation.HEADER)
    )


#: The service's database (a SQLAlchemy URL), when the run checks that refused writes record nothing.
_DATABASE = os.environ.get("DXL_FUZZ_DATABASE")
#: What a write leaves in the service's database, counted before and after each request.
_RECORDED = {
    "transactions": "SELECT count(*) FROM api_tx_journal WHERE status IN ('sent', 'mined')",
    "documents": "SELECT count(*) FROM api_catalog_documents",
    "signatures": "SELECT count(*) FROM api_pending_signatures",
    "receipts": "SELECT count(*) FROM api_receipts",
    "presentations": "SELECT count(*) FROM api_inspection_presentations",
}
#: Counts before each request, by case (one worker: one request at a time).
_BEFORE: dict[int, dict[str, int]] = {}
#: How many refused writes were checked.
_CHECKED = Counter[str]()


def _engine(url: str) -> Engine:
    """Reads of the service's database: a SQLite file opened read-only and patient with the service's
    commits, which lock it; a PostgreSQL schema (the URL's ``search_path``) through a pool, each count in a
    transaction of its own, which sees every commit made before it."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        read_only = parsed.set(database=f"file:{parsed.database}", query={"mode": "ro", "uri": "true"})
        return create_engine(read_only, connect_args={"timeout": 30})
    return create_engine(parsed)


_ENGINE = _engine(_DATABASE) if _DATABASE is not None else None


def _recorded() -> dict[str, int]:
    assert _ENGINE is not None
    with _ENGINE.connect() as db:
        return {name: int(db.execute(text(query)).scalar_one()) for name, query in _RECORDED.items()}


def _report_checked() -> None:
    tally = os.environ.get("DXL_FUZZ_CHECKED")
    if tally is not None:
        Path(tally).write_text(str(_CHECKED["refused writes"]), encoding="utf-8")


atexit.register(_report_checked)

#: Answers by phase, operation, mode ("positive" or "negative") and status: see the module.
_TALLY: dict[str, dict[str, dict[str, Counter[str]]]] = {}


def _report_tally() -> None:
    tally = os.environ.get("DXL_FUZZ_TALLY")
    if tally is not None:
        Path(tally).write_text(json.dumps(_TALLY, sort_keys=True), encoding="utf-8")


atexit.register(_report_tally)


@schemathesis.hook
def after_call(ctx: Any, case: Any, response: Any) -> None:
    meta = case.meta
    phase = "unknown" if meta is None else str(meta.phase.name)
    mode = "unknown" if meta is None else str(meta.generation.mode.value)
    by_operation = _TALLY.setdefault(phase, {}).setdefault(case.operation.label, {})
    by_operation.setdefault(mode, Counter())[_answer(response)] += 1


def _answer(response: Any) -> str:
    """The status, and for an error the code the body names: why a request was refused."""
    if response.status_code < 400:
        return str(response.status_code)
    try:
        error = json.loads(response.content)["error"]
    except (ValueError, KeyError, TypeError):
        return str(response.status_code)
    return f"{response.status_code} {error.get('code')} {error.get('field')}"


@schemathesis.check
def refused_write_records_nothing(ctx: Any, response: Any, case: Any) -> bool | None:
    """A write answered 4xx left nothing in the service's database (a full run; see the module)."""
    before = _BEFORE.pop(id(case), None)
    if before is None or case.method.upper() == "GET" or not 400 <= response.status_code < 500:
        return None
    if response.status_code == 409 and b"TRANSACTION_PENDING" in response.content:
        return None
    after = _recorded()
    grown = {name: after[name] - before[name] for name in after if after[name] != before[name]}
    if grown:
        raise AssertionError(f"refused with {response.status_code}, yet recorded: {grown}")
    _CHECKED["refused writes"] += 1
    return True


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    if _DATABASE is not None:
        _BEFORE[id(case)] = _recorded()
    headers = case.headers or {}
    name = _idempotency_key(headers)
    if name is None or case.meta is None or case.meta.is_negative_at(ParameterLocation.HEADER):
        return
    if case.meta.phase.name == "coverage":
        del headers[name]
    else:
        headers[name] = f"fuzz-{_RUN}-{next(_SEQUENCE)}"


def _steered(name: str, value: Any) -> Any:
    """``value`` of field ``name``, or for half the values one the deployment has (a function of
    ``value``)."""
    assert _KNOWN is not None
    if name in _NUMBERED and type(value) is int and value > _SMALL and value % 2 == 0:
        return 1 + value // 2 % _SMALL
    if name == "delivery_id" and isinstance(value, str) and len(value) == 66 and value[-1] in "02468aceACE":
        known = _KNOWN["delivery_ids"]
        return known[int(value[-2:], 16) % len(known)] if known else value
    return value


def _steer_body(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: _steer_body(v) if isinstance(v, dict | list) else _steered(k, v) for k, v in body.items()}
    if isinstance(body, list):
        return [_steer_body(item) for item in body]
    return body


def _whole_numbers_as_integers(body: Any) -> Any:
    """``body`` with each whole float (``4.0``) written as the integer it is (``4``)."""
    if isinstance(body, dict):
        return {k: _whole_numbers_as_integers(v) for k, v in body.items()}
    if isinstance(body, list):
        return [_whole_numbers_as_integers(item) for item in body]
    if type(body) is float and body.is_integer():
        return int(body)
    return body


@schemathesis.hook
def map_case(ctx: Any, case: Any) -> Any:
    """A valid body's whole floats written as integers, and a fuzzed case's valid ids steered to records the
    deployment has (see the module)."""
    meta = case.meta
    if meta is None:
        return case
    if isinstance(case.body, dict | list) and not meta.is_negative_at(ParameterLocation.BODY):
        case.body = _whole_numbers_as_integers(case.body)
    if _KNOWN is None or meta.phase.name != "fuzzing":
        return case
    if case.path_parameters and not meta.is_negative_at(ParameterLocation.PATH):
        case.path_parameters = {k: _steered(k, v) for k, v in case.path_parameters.items()}
    if isinstance(case.body, dict | list) and not meta.is_negative_at(ParameterLocation.BODY):
        case.body = _steer_body(case.body)
    return case

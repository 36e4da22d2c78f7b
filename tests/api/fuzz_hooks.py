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
"""

from __future__ import annotations

import itertools
import secrets
from typing import Any

import schemathesis
from schemathesis.core.parameters import ParameterLocation

_RUN = secrets.token_hex(4)
_SEQUENCE = itertools.count()


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


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    headers = case.headers or {}
    name = _idempotency_key(headers)
    if name is None or case.meta is None or case.meta.is_negative_at(ParameterLocation.HEADER):
        return
    if case.meta.phase.name == "coverage":
        del headers[name]
    else:
        headers[name] = f"fuzz-{_RUN}-{next(_SEQUENCE)}"

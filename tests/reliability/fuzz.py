"""schemathesis against the running service's ``/openapi.json``, every operation as every role (anonymous,
each department, the auditor, both governors): no answer may be a 5xx."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation

from tests.reliability.records import error_code, is_server_error


@dataclass
class FuzzResult:
    requests: int = 0
    operations: int = 0
    roles: int = 0
    server_errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    #: Operation-role pairs not reached within the time budget.
    skipped: int = 0
    #: Operation-role pairs whose run raised (no answer, or a generation failure); named in ``failures``.
    errors: int = 0


def fuzz(base_url: str, tokens: dict[str, str], *, examples: int, budget_s: float) -> FuzzResult:
    """``examples`` generated requests per operation and role, within ``budget_s`` seconds."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    roles: list[str | None] = [None, *sorted(tokens)]
    result = FuzzResult(operations=len(operations), roles=len(roles))
    pairs = [(operation, role) for operation in operations for role in roles]
    # Shuffled once, the same way every run: a budget that runs out leaves gaps spread over every operation.
    random.Random(0).shuffle(pairs)
    deadline = time.monotonic() + budget_s
    for operation, role in pairs:
        if time.monotonic() > deadline:
            result.skipped += 1
            continue
        try:
            _checker(operation, base_url, tokens, role, result, examples)()
        except Exception as exc:  # a generation or transport failure is reported, not a crash of the run
            result.errors += 1
            if len(result.failures) < 20:
                result.failures.append(
                    f"{role or 'anonymous'}: {operation.label}: {type(exc).__name__}: {exc}"
                )
    return result


def _checker(
    operation: APIOperation[Any, Any, Any, Any],
    base_url: str,
    tokens: dict[str, str],
    role: str | None,
    result: FuzzResult,
    examples: int,
) -> Callable[[], None]:
    headers = {} if role is None else {"Authorization": f"Bearer {tokens[role]}"}

    @given(case=operation.as_strategy())
    @settings(
        max_examples=examples, deadline=None, database=None, derandomize=True,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    def check(case: schemathesis.Case[Any]) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=120)
        result.requests += 1
        result.statuses[response.status_code] = result.statuses.get(response.status_code, 0) + 1
        try:
            code = error_code(response.json())
        except ValueError:
            code = None
        if is_server_error(response.status_code, code):
            result.server_errors += 1
            if len(result.failures) < 20:
                result.failures.append(
                    f"{role or 'anonymous'}: {case.method} {case.formatted_path} -> "
                    f"{response.status_code} {response.text[:300]}"
                )

    return check

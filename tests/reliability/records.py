"""Typed records shared by the load, the faults, the count and the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class WriteKind(StrEnum):
    RESOURCE = "resource"
    REQUEST = "request"
    APPROVE = "approve"
    SIGN = "sign"
    CONCLUDE = "conclude"
    GRANT = "grant"
    DELIVERY = "delivery"
    BATCH = "batch"
    #: ``POST /receipts``: no event per record; counted by batch (tests/reliability/receipts.py).
    RECEIPTS = "receipts"


class FaultKind(StrEnum):
    API_KILL = "api_kill"
    NODE_KILL = "node_kill"
    NODE_KILL_BEFORE_SAVE = "node_kill_before_save"
    RPC_LOST = "rpc_lost"
    RPC_DELAYED = "rpc_delayed"
    DISK_FULL = "disk_full"
    NODE_PAUSE = "node_pause"
    #: ``kill -9`` of a member of the local proof-of-authority network.
    MEMBER_KILL = "member_kill"
    #: The member the service uses cut off from the other members for a while: it answers, and its head
    #: stands still (a network partition), until it is joined again.
    MEMBER_STALL = "member_stall"
    #: ``kill -9`` of the PostgreSQL server and every backend process of it (a database crash).
    DATABASE_KILL = "database_kill"
    #: ``SIGSTOP`` of the PostgreSQL server and its backends for a while: a database that hangs.
    DATABASE_PAUSE = "database_pause"


#: Answers a client retries with the same key: the service says "not settled yet, ask again".
RETRYABLE_409_CODES = frozenset({"IDEMPOTENCY_IN_FLIGHT", "TRANSACTION_PENDING"})


@dataclass(frozen=True)
class Marker:
    """How one record of a write is found among the chain's events: the event, and argument values that only
    this write uses (a fresh random hash, or the id of the one request it acts on)."""

    event: str
    match: tuple[tuple[str, str | int], ...]
    #: The event argument that holds the id the API answered for this record (``record.id``), if any.
    id_arg: str | None = None


@dataclass(frozen=True)
class Attempt:
    """One HTTP exchange: ``status`` None when no answer came (refused, reset, timed out)."""

    started: float
    latency_s: float
    status: int | None
    code: str | None
    write: bool
    error: str | None = None


@dataclass
class WriteRecord:
    """One logical write: one Idempotency-Key, retried until a final answer."""

    key: str
    kind: WriteKind
    principal: str
    method: str
    path: str
    #: The JSON body, None for a write without one (sent identically on every retry).
    body: dict[str, Any] | None
    markers: list[Marker]
    attempts: list[Attempt] = field(default_factory=list)
    final_status: int | None = None
    final_body: Any = None

    @property
    def settled(self) -> bool:
        """A final answer the client accepts (2xx or a refusal that is not "ask again")."""
        return self.final_status is not None and is_final(self.final_status, error_code(self.final_body))

    @property
    def acknowledged(self) -> bool:
        return self.final_status is not None and 200 <= self.final_status < 300

    def answered_hash(self) -> str | None:
        body = self.final_body if isinstance(self.final_body, dict) else {}
        tx = body.get("transaction")
        return str(tx["hash"]).lower() if isinstance(tx, dict) and "hash" in tx else None

    def answered_id(self) -> int | None:
        body = self.final_body if isinstance(self.final_body, dict) else {}
        record = body.get("record") or body.get("agreement")
        return int(record["id"]) if isinstance(record, dict) and "id" in record else None


@dataclass(frozen=True)
class FaultRecord:
    kind: FaultKind
    started: float
    ended: float
    #: What was hit: a pid, a mount point, an RPC request.
    target: str
    detail: str = ""
    #: False when the fault found nothing to hit (no transaction was sent while it was armed).
    injected: bool = True


def error_code(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return str(code) if code is not None else None
    return None


def is_final(status: int, code: str | None) -> bool:
    """Whether a client stops retrying on this answer."""
    if status >= 500:
        return False
    return not (status == 409 and code in RETRYABLE_409_CODES)


def is_server_error(status: int | None, code: str | None) -> bool:
    """A 5xx that is a bug: anything but the documented 503 with a stable error code (node or storage
    unavailable: a client retries it)."""
    return status is not None and status >= 500 and not (status == 503 and code is not None)
